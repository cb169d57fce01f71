// The loan service's one entry point: `node dist/command.js serve|migrate|relay` (kit runCommand).
import { runCommand } from '@corebank/kit/command';

// The modules load only when runCommand asks, after telemetry has started (see kit command.ts).
await runCommand('loan', async () => {
  const [{ ShardRouter }, { loadLoanConfig }, { loanMigrations }, { DOMAIN }, { SERVICE, startLoanService }] =
    await Promise.all([
      import('@corebank/kit'),
      import('./config.js'),
      import('./migrations.js'),
      import('./events.js'),
      import('./service.js'),
    ]);
  return {
    domain: DOMAIN,
    loadConfig: loadLoanConfig,
    migrations: loanMigrations,
    router: (config, poolMax) => new ShardRouter(config.shards, config.shardUrls, poolMax, SERVICE),
    start: startLoanService,
  };
});
