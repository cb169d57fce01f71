// The customer service's one entry point: `node dist/command.js serve|migrate|relay` (kit runCommand).
import { runCommand } from '@corebank/kit/command';

// The modules load only when runCommand asks, after telemetry has started (see kit command.ts).
await runCommand('customer', async () => {
  const [
    { ShardRouter },
    { loadCustomerConfig },
    { customerMigrations },
    { DOMAIN },
    { SERVICE, startCustomerService },
  ] = await Promise.all([
    import('@corebank/kit'),
    import('./config.js'),
    import('./migrations.js'),
    import('./events.js'),
    import('./service.js'),
  ]);
  return {
    domain: DOMAIN,
    loadConfig: loadCustomerConfig,
    migrations: customerMigrations,
    router: (config, poolMax) => new ShardRouter(config.shards, config.shardUrls, poolMax, SERVICE),
    start: startCustomerService,
  };
});
