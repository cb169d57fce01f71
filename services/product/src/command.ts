// The product service's one entry point: `node dist/command.js serve|migrate|relay` (kit runCommand).
import { runCommand } from '@corebank/kit/command';

// The modules load only when runCommand asks, after telemetry has started (see kit command.ts).
await runCommand('product', async () => {
  const [{ globalRouter, loadProductConfig }, { productMigrations }, { DOMAIN }, { SERVICE, startProductService }] =
    await Promise.all([
      import('./config.js'),
      import('./migrations.js'),
      import('./events.js'),
      import('./service.js'),
    ]);
  return {
    domain: DOMAIN,
    loadConfig: loadProductConfig,
    migrations: productMigrations,
    // Its data is global: the one global database, as a one-shard router.
    router: (config, poolMax) => globalRouter(config, poolMax, SERVICE),
    start: startProductService,
  };
});
