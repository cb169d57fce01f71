// Applies the payment service's migrations to every shard, then exits (the Helm pre-install hook).
import { createLogger, migrateAllShards, ShardRouter } from '@corebank/kit';
import { loadPaymentConfig } from './config.js';
import { paymentMigrations } from './migrations.js';
import { SERVICE } from './service.js';

const config = loadPaymentConfig();
const log = createLogger(SERVICE, config.logLevel);
const router = new ShardRouter(config.shards, config.shardUrls, 2, SERVICE);
try {
  await migrateAllShards(router, paymentMigrations, log);
} finally {
  await router.close();
}
