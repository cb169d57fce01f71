// The account service's one entry point: `node dist/command.js serve|migrate|relay` (kit runCommand).
import { runCommand } from '@corebank/kit/command';

// The modules load only when runCommand asks, after telemetry has started (see kit command.ts).
await runCommand('account', async () => {
  const [
    { ShardRouter },
    { loadAccountConfig },
    { accountMigrations },
    { DOMAIN },
    { SERVICE, startAccountService },
    { migrateGlobalDay },
  ] = await Promise.all([
    import('@corebank/kit'),
    import('./config.js'),
    import('./migrations.js'),
    import('./events.js'),
    import('./service.js'),
    import('./day/dates.js'),
  ]);
  return {
    domain: DOMAIN,
    loadConfig: loadAccountConfig,
    migrations: accountMigrations,
    router: (config, poolMax) => new ShardRouter(config.shards, config.shardUrls, poolMax, SERVICE),
    migrateGlobal: (config) => migrateGlobalDay(config.globalDatabaseUrl, SERVICE),
    start: startAccountService,
  };
});
