// A process that only relays a service's outbox to JetStream (no gRPC): for deployments that
// scale the relay apart from the API, and for tests that kill a relay mid-stream.
import { AUDIT_DOMAIN, AUDIT_RELAY } from './audit.js';
import { exitOnSignals } from './grpc/server.js';
import { createLogger } from './log.js';
import { connectNats, ensureStream, type NatsOptions } from './nats.js';
import { OutboxRelay } from './outbox.js';
import type { ShardRouter } from './sharding.js';

export async function runRelayProcess(o: {
  service: string;
  domain: string;
  router: ShardRouter;
  nats: Omit<NatsOptions, 'name'>;
  logLevel: string;
}): Promise<void> {
  const name = `${o.service}-relay`;
  const log = createLogger(name, o.logLevel);
  const nats = await connectNats({ ...o.nats, name });
  await ensureStream(nats.jsm, o.domain);
  // Audit records go to the bank-wide audit stream (see audit.ts).
  await ensureStream(nats.jsm, AUDIT_DOMAIN);
  const relay = new OutboxRelay(o.router, nats.js, log, AUDIT_RELAY);
  relay.start();
  exitOnSignals(async () => {
    await relay.stop();
    await nats.nc.drain();
    await o.router.close();
  }, log);
}
