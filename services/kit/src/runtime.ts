// What every service process runs around its RPCs, in one place: the shard pools (checked to be
// the shards they claim), NATS with the service's stream, the outbox relay, pool-saturation
// metrics, the /metrics endpoint, and the gRPC server whose health follows the databases and
// NATS. serve() also fixes the shutdown order: the service's own background work, the relay,
// then NATS, the pools and telemetry.
import { AUDIT_DOMAIN, AUDIT_RELAY, AuditTrail, auditServiceBinding } from './audit.js';
import { startServer, type RunningServer, type ServiceBinding } from './grpc/server.js';
import { tlsFromConfig, type TlsConfig } from './grpc/tls.js';
import { usePreparedStatements } from './db.js';
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
  admissionLatencyTargetMs: number;
  channelRateLimits: ReadonlyMap<string, number>;
  grpcHealthPort: number;
  auditRetentionDays: number;
  auditFlushMs: number;
  auditBatchSize: number;
  auditBufferMax: number;
  dbPreparedStatements: boolean;
}

export interface Runtime {
  router: ShardRouter;
  nats: Nats;
  log: Logger;
  /** The service's audit trail (every binding served records into it). */
  audit: AuditTrail;
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
  usePreparedStatements(config.dbPreparedStatements);
  await assertShardIdentity(router);
  const nats = await connectNats({
    url: config.natsUrl,
    user: config.natsUser,
    password: config.natsPassword,
    name: o.service,
  });
  await ensureStream(nats.jsm, o.domain);
  await ensureStream(nats.jsm, AUDIT_DOMAIN);
  // The service's events and its audit records' events, one relay (AUDIT_RELAY).
  const relay = config.relayEnabled ? new OutboxRelay(router, nats.js, log, { ...AUDIT_RELAY, ...o.relay }) : undefined;
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

  const audit = new AuditTrail(
    router,
    o.domain,
    log,
    {
      flushMs: config.auditFlushMs,
      batchSize: config.auditBatchSize,
      bufferMax: config.auditBufferMax,
      retentionDays: config.auditRetentionDays,
    },
    (shard) => relay?.wakeShard(shard),
  );

  return {
    router,
    nats,
    log,
    audit,
    async serve(bindings, stop = []) {
      const metrics = serveMetrics(config.metricsPort, config.grpcHost);
      // Every service records into its audit trail and serves ListAuditRecords over it.
      const served = [...bindings];
      if (bindings[0]) served.push(auditServiceBinding(router, bindings[0].verifier, log));
      for (const b of served) b.audit = audit;
      audit.start();
      return startServer({
        host: config.grpcHost,
        port: config.grpcPort,
        services: served,
        log,
        maxConnectionAgeMs: config.maxConnectionAgeMs,
        shutdownGraceMs: config.shutdownGraceMs,
        readinessDrainMs: config.readinessDrainMs,
        ...(tls ? { tls } : {}),
        healthPort: config.grpcHealthPort,
        admission: {
          maxInFlight: config.admissionMaxInFlight,
          readReservePercent: config.admissionReadReservePercent,
          latencyTargetMs: config.admissionLatencyTargetMs,
          channelRates: config.channelRateLimits,
        },
        ready: async () => {
          await Promise.all(router.shards.map((s) => s.db.raw('select 1')));
          return nats.connected();
        },
        onShutdown: [
          async () => {
            for (const step of stop) await step();
            // After the server drained: every call has handed over its record.
            await audit.stop();
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
