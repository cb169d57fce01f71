// Applies the product service's migrations to the global database, then exits (the Helm pre-install hook).
import { createLogger, migrateAllShards } from '@corebank/kit';
import { globalRouter, loadProductConfig } from './config.js';
import { productMigrations } from './migrations.js';
import { SERVICE } from './service.js';

const config = loadProductConfig();
const log = createLogger(SERVICE, config.logLevel);
const router = globalRouter(config, 2, SERVICE);
try {
  await migrateAllShards(router, productMigrations, log);
} finally {
  await router.close();
}
