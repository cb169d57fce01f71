// The close of business's work queue: JetStream stream CB_COB (work-queue retention: a chunk is
// removed once a worker acks it), one message per chunk. Any number of workers (account service
// replicas with COB_WORKER_ENABLED) pull from one durable consumer, so they share the work; a
// worker that dies mid-chunk never acks, and the chunk comes back to another after the ack wait.
import { AckPolicy, DeliverPolicy, RetentionPolicy, type JetStreamClient } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Nats } from '@corebank/kit';
import type { ChunkKey } from './store.js';

export const COB_STREAM = 'CB_COB';

/** Where one bank's chunks go, and its workers' durable consumer (installationId in store.ts). */
export interface CobQueue {
  subject: string;
  consumer: string;
  /** A worker that neither acks nor reports progress for this long is taken for dead (COB_ACK_WAIT_MS). */
  ackWaitMs: number;
}

export const cobQueue = (installation: string, ackWaitMs: number): CobQueue => ({
  subject: `corebank.cob.chunk.${installation}`,
  consumer: `cob-${installation}`,
  ackWaitMs,
});
/** Deliveries of one chunk before it is marked failed (the run then fails; re-running retries it). */
export const COB_MAX_DELIVER = 8;

export async function ensureCobQueue(nats: Nats, q: CobQueue): Promise<void> {
  const config = { subjects: [`corebank.cob.>`], duplicate_window: nanos(2 * 60_000) };
  try {
    await nats.jsm.streams.info(COB_STREAM);
  } catch {
    await nats.jsm.streams
      .add({ name: COB_STREAM, retention: RetentionPolicy.Workqueue, ...config })
      .catch(async (err: unknown) => {
        // Another replica created it first.
        if (!/already in use|exists/i.test(String(err))) throw err;
      });
  }
  try {
    await nats.jsm.consumers.info(COB_STREAM, q.consumer);
  } catch {
    await nats.jsm.consumers
      .add(COB_STREAM, {
        durable_name: q.consumer,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: q.subject,
        ack_wait: nanos(q.ackWaitMs),
        max_deliver: COB_MAX_DELIVER,
        // A chunk is big: let each worker hold few at a time so that the others get their share.
        max_ack_pending: 1000,
      })
      .catch((err: unknown) => {
        if (!/already in use|exists/i.test(String(err))) throw err;
      });
  }
}

/**
 * Queues chunks. The message id names the chunk and its attempt, so a coordinator that restarts
 * and queues again within the duplicate window adds nothing, while a failed chunk queued by a
 * later run (attempt + 1) goes out again.
 */
export async function queueChunks(
  js: JetStreamClient,
  q: CobQueue,
  chunks: (ChunkKey & { attempts: number })[],
): Promise<void> {
  await Promise.all(
    chunks.map((c) =>
      js.publish(q.subject, JSON.stringify({ date: c.date, step: c.step, shard: c.shard, chunk: c.chunk }), {
        msgID: `${q.subject}/${c.date}/${c.step}/${c.shard}/${c.chunk}/${c.attempts}`,
      }),
    ),
  );
}

/** A queued message's chunk, or undefined for a malformed one (which is dropped). */
export function parseChunkMessage(data: Uint8Array): ChunkKey | undefined {
  try {
    const m = JSON.parse(new TextDecoder().decode(data)) as Partial<ChunkKey>;
    if (
      typeof m.date === 'string' &&
      typeof m.step === 'string' &&
      Number.isInteger(m.shard) &&
      Number.isInteger(m.chunk)
    ) {
      return { date: m.date, step: m.step, shard: m.shard!, chunk: m.chunk! };
    }
  } catch {
    // fall through
  }
  return undefined;
}
