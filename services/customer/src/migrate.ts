// Applies the customer service's migrations to every shard, then exits (the Helm pre-install hook).
import { createLogger, migrateAllShards, ShardRouter } from '@corebank/kit';
import { loadCustomerConfig } from './config.js';
import { customerMigrations } from './migrations.js';
import { SERVICE } from './service.js';

const config = loadCustomerConfig();
const log = createLogger(SERVICE, config.logLevel);
const router = new ShardRouter(config.shards, config.shardUrls, 2, SERVICE);
try {
  await migrateAllShards(router, customerMigrations, log);
} finally {
  await router.close();
}
