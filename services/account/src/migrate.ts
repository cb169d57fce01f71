// Applies the account service's migrations to every shard, then exits (the Helm pre-install hook).
import { createLogger, migrateAllShards, ShardRouter } from '@corebank/kit';
import { loadAccountConfig } from './config.js';
import { accountMigrations } from './migrations.js';
import { SERVICE } from './service.js';

const config = loadAccountConfig();
const log = createLogger(SERVICE, config.logLevel);
const router = new ShardRouter(config.shards, config.shardUrls, 2, SERVICE);
try {
  await migrateAllShards(router, accountMigrations, log);
} finally {
  await router.close();
}
