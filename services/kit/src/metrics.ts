// Prometheus metrics: one registry per process, served on METRICS_PORT at /metrics.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const grpcRequests = new Counter({
  name: 'grpc_server_requests_total',
  help: 'gRPC requests by service, method and status code',
  labelNames: ['service', 'method', 'code'] as const,
  registers: [registry],
});

export const grpcDuration = new Histogram({
  name: 'grpc_server_duration_seconds',
  help: 'gRPC request latency',
  labelNames: ['service', 'method'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const outboxUnsent = new Gauge({
  name: 'outbox_unsent_events',
  help: 'outbox rows not yet published to JetStream',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export const outboxOldestAge = new Gauge({
  name: 'outbox_oldest_unsent_age_seconds',
  help: 'age of the oldest unpublished outbox row (outbox lag)',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export const tlsCertificateExpiry = new Gauge({
  name: 'tls_certificate_expiry_timestamp_seconds',
  help: 'when the TLS certificate this process presents (TLS_CERT_FILE) stops being valid, as a Unix time',
  registers: [registry],
});

export const dbPoolInUse = new Gauge({
  name: 'db_pool_in_use',
  help: 'connections in use per shard pool',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export const dbPoolWaiting = new Gauge({
  name: 'db_pool_waiting',
  help: 'requests waiting for a connection per shard pool (saturation)',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export function serveMetrics(port: number, host: string): Server | undefined {
  if (port === 0) return undefined;
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  server.listen(port, host);
  return server;
}
