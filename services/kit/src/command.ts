// The one entry point of every service: `node services/<name>/dist/command.js serve|migrate|relay`
// (the image's entrypoint and the chart run exactly that). A service declares what differs, once,
// in its src/command.ts; the order of start-up, the errors and the exit codes live here.
//
// Only this file, config.js and log.js load before the command is known: telemetry must start
// before grpc-js and pg are first loaded (its instrumentation patches them as they load), so the
// rest of the kit and the service's own modules are imported after it, dynamically.
import { ConfigError } from './config.js';
import type { Logger } from './log.js';
import type { Migration } from './migrate.js';
import type { ShardRouter } from './sharding.js';

export const COMMANDS = {
  serve: 'the gRPC server, with its relay and background work',
  migrate: "apply the service's migrations to every shard, then exit",
  relay: "only the service's outbox relay to JetStream (no gRPC)",
} as const;
export type CommandName = keyof typeof COMMANDS;

/** Exit codes (sysexits.h): a wrong command line, a wrong environment, anything else. */
export const EXIT = { usage: 64, config: 78, failure: 1 } as const;

/** What every command reads from a service's configuration. */
export interface CommandConfig {
  logLevel: string;
  natsUrl: string;
  natsUser: string;
  natsPassword: string;
}

export interface ServiceDefinition<C extends CommandConfig> {
  /** The events' domain: corebank.<domain>.* in the stream CB_<DOMAIN>. */
  domain: string;
  loadConfig(env?: NodeJS.ProcessEnv): C;
  migrations: Migration[];
  /** The service's databases (its shards, or the global database as one shard) for migrate and relay. */
  router(config: C, poolMax: number): ShardRouter;
  /** Migrates what the service keeps in the global database besides its shards, if anything. */
  migrateGlobal?(config: C, log: Logger): Promise<void>;
  /** Starts everything serve runs; resolves once the gRPC server listens. */
  start(config: C, log: Logger): Promise<{ shutdown(): Promise<void> }>;
}

/** A failure the operator can act on from one line (no stack): a port in use, a bad variable. */
export class StartupError extends Error {
  override name = 'StartupError';
}

const usage = (service: string) =>
  `usage: ${service} <command>\n` +
  Object.entries(COMMANDS)
    .map(([c, what]) => `  ${c.padEnd(8)} ${what}`)
    .join('\n');

/**
 * Runs the command named in argv for a service. `load` imports the service's modules; it is
 * called only after telemetry has started (for serve). Never returns normally for serve and
 * relay: they run until SIGTERM or SIGINT.
 */
export async function runCommand<C extends CommandConfig>(
  service: string,
  load: () => Promise<ServiceDefinition<C>>,
  argv: string[] = process.argv.slice(2),
): Promise<void> {
  const [command, ...extra] = argv;
  if (!command || !(command in COMMANDS) || extra.length > 0) {
    const what = command ? `no command "${argv.join(' ')}"` : 'no command given';
    process.stderr.write(`${service}: ${what}; use one of: ${Object.keys(COMMANDS).join(', ')}\n${usage(service)}\n`);
    process.exit(EXIT.usage);
  }
  if (command === 'serve') (await import('./telemetry.js')).startTelemetry(service);

  let log: Logger | undefined;
  try {
    const def = await load();
    const config = def.loadConfig();
    const kit = await import('./index.js');
    log = kit.createLogger(command === 'serve' ? service : `${service}-${command}`, config.logLevel);
    switch (command as CommandName) {
      case 'serve': {
        const app = await def.start(config, log);
        kit.exitOnSignals(app.shutdown, log);
        return;
      }
      case 'migrate': {
        const router = def.router(config, 2);
        try {
          await kit.migrateAllShards(router, def.migrations, log);
          await def.migrateGlobal?.(config, log);
        } finally {
          await router.close();
        }
        return;
      }
      case 'relay':
        await kit.runRelayProcess({
          service,
          domain: def.domain,
          router: def.router(config, 2),
          nats: { url: config.natsUrl, user: config.natsUser, password: config.natsPassword },
          logLevel: config.logLevel,
        });
        return;
    }
  } catch (err) {
    fail(service, command, err, log);
  }
}

/**
 * A configuration error or a start-up error is one line naming what to change; anything else is
 * logged with its stack. Exits at once: a half-started service holds pools and connections that
 * would otherwise keep the process alive, failed.
 */
function fail(service: string, command: string, err: unknown, log: Logger | undefined): never {
  if (err instanceof ConfigError || err instanceof StartupError) {
    process.stderr.write(`${service} ${command}: ${err.message}\n`);
    process.exit(err instanceof ConfigError ? EXIT.config : EXIT.failure);
  }
  if (log) log.fatal({ err }, `${command} failed`);
  else process.stderr.write(`${service} ${command} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(EXIT.failure);
}
