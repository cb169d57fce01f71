// NATS JetStream connection and the streams the platform publishes to: one stream per domain,
// subjects corebank.<domain>.<event>, with a duplicate window that drops re-sent event ids.
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';

export interface Nats {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Whether the client is connected now (false between a disconnect and the reconnect). */
  connected: () => boolean;
}

export interface NatsOptions {
  url: string;
  user?: string;
  password?: string;
  name: string;
}

export async function connectNats(o: NatsOptions): Promise<Nats> {
  const nc = await connect({
    servers: o.url.split(','),
    name: o.name,
    ...(o.user ? { user: o.user, pass: o.password } : {}),
    maxReconnectAttempts: -1,
    // Every request (each JetStream publish a relay makes is one) would otherwise build an Error up
    // front, for the stack a failure might report: 3-5% of a relaying service's CPU in the bench's
    // profile. A failed publish is still reported, with its message, and retried.
    noAsyncTraces: true,
  });
  // The client reconnects by itself; readiness must see the gap (nc.info outlives the connection).
  let up = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') up = false;
      else if (s.type === 'reconnect') up = true;
    }
  })();
  return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc), connected: () => up && !nc.isClosed() };
}

/** How long JetStream remembers a Nats-Msg-Id: a relay restarted within it cannot publish twice. */
export const DUPLICATE_WINDOW_MS = 10 * 60 * 1000;

export const streamName = (domain: string) => `CB_${domain.toUpperCase()}`;
export const subjectOf = (domain: string, event: string) => `corebank.${domain}.${event}`;

/** Creates the domain's stream, or brings an existing one to this configuration. */
export async function ensureStream(jsm: JetStreamManager, domain: string): Promise<void> {
  const name = streamName(domain);
  const config = { subjects: [`corebank.${domain}.>`], duplicate_window: nanos(DUPLICATE_WINDOW_MS) };
  try {
    await jsm.streams.info(name);
    await jsm.streams.update(name, config);
  } catch (err) {
    if ((err as { name?: string }).name !== 'StreamNotFoundError' && !/not found/i.test(String(err))) throw err;
    await jsm.streams.add({ name, ...config });
  }
}
