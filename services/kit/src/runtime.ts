// What every service process runs around its RPCs, in one place: the shard pools (checked to be
// the shards they claim), NATS with the service's stream, the outbox relay, pool-saturation
// metrics, the /metrics endpoint, and the gRPC server whose health follows the databases and
// NATS. serve() also fixes the shutdown order: the service's own background work, the relay,
// then NATS, the pools and telemetry.
import { startServer, type RunningServer, type ServiceBinding } from './grpc/server.js';
import { tlsFromConfig, type TlsConfig } from './grpc/tls.js';
import type { Logger } from './log.js';
import { dbPoolInUse, dbPoolWaiting, serveMetrics } from './metrics.js';
import { assertShardIdentity } from './migrate.js';
import { connectNats, ensureStream, type Nats } from './nats.js';
import { OutboxRelay, type RelayOptions } from './outbox.js';
import type { ShardRouter } from './sharding.js';
import { stopTelemetry } from './telemetry.js';

export interface RuntimeConfig extends TlsConfig {
  grpcHost: string;
  grpcPort: number;
  metricsPort: number;
  maxConnectionAgeMs: number;
  shutdownGraceMs: number;
  readinessDrainMs: number;
  natsUrl: string;
  natsUser: string;
  natsPassword: string;
  relayEnabled: boolean;
  admissionMaxInFlight: number;
  admissionReadReservePercent: number;
  channelRateLimits: ReadonlyMap<string, number>;
  grpcHealthPort: number;
}

export interface Runtime {
  router: ShardRouter;
  nats: Nats;
  log: Logger;
  /** Starts the gRPC server; `stop` runs first on shutdown (the service's own background work). */
  serve(bindings: ServiceBinding[], stop?: (() => unknown)[]): Promise<RunningServer>;
}

export async function startRuntime(o: {
  service: string;
  domain: string;
  router: ShardRouter;
  config: RuntimeConfig;
  log: Logger;
  relay?: RelayOptions;
}): Promise<Runtime> {
  const { router, config, log } = o;
  // Before anything connects: a TLS setup that is missing (TLS_REQUIRED) or wrong stops the start.
  const tls = tlsFromConfig(config, log);
  await assertShardIdentity(router);
  const nats = await connectNats({
    url: config.natsUrl,
    user: config.natsUser,
    password: config.natsPassword,
    name: o.service,
  });
  await ensureStream(nats.jsm, o.domain);
  const relay = config.relayEnabled ? new OutboxRelay(router, nats.js, log, o.relay) : undefined;
  relay?.start();

  const poolTimer = setInterval(() => {
    for (const s of router.shards) {
      const pool = s.db.client.pool as { numUsed(): number; numPendingAcquires(): number } | undefined;
      if (!pool) continue;
      dbPoolInUse.set({ shard: String(s.index) }, pool.numUsed());
      dbPoolWaiting.set({ shard: String(s.index) }, pool.numPendingAcquires());
    }
  }, 5000);
  poolTimer.unref();

  return {
    router,
    nats,
    log,
    async serve(bindings, stop = []) {
      const metrics = serveMetrics(config.metricsPort, config.grpcHost);
      return startServer({
        host: config.grpcHost,
        port: config.grpcPort,
        services: bindings,
        log,
        maxConnectionAgeMs: config.maxConnectionAgeMs,
        shutdownGraceMs: config.shutdownGraceMs,
        readinessDrainMs: config.readinessDrainMs,
        ...(tls ? { tls } : {}),
        healthPort: config.grpcHealthPort,
        admission: {
          maxInFlight: config.admissionMaxInFlight,
          readReservePercent: config.admissionReadReservePercent,
          channelRates: config.channelRateLimits,
        },
        ready: async () => {
          await Promise.all(router.shards.map((s) => s.db.raw('select 1')));
          return nats.connected();
        },
        onShutdown: [
          async () => {
            for (const step of stop) await step();
            clearInterval(poolTimer);
            metrics?.close();
            await relay?.stop();
          },
          () => nats.nc.drain(),
          () => router.close(),
          () => stopTelemetry(),
        ],
      });
    },
  };
}
