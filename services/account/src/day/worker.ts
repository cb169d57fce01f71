// A close-of-business worker: takes chunks from the CB_COB work queue, runs the chunk's step and
// records the outcome in the global database, then acks. Acking after the record means a worker
// killed at any moment loses nothing: the unacked chunk is delivered again (to any worker), and
// the step, idempotent per (business date, step, entity), books nothing twice.
import type { JsMsg } from '@nats-io/jetstream';
import { backoffMs, DomainError, type Logger, type Nats, type ShardRouter } from '@corebank/kit';
import type { Knex } from 'knex';
import { COB_MAX_DELIVER, COB_STREAM, parseChunkMessage, type CobQueue } from './queue.js';
import type { StepRunner } from './steps.js';
import { chunk, CHUNK, failChunk, finishChunk, startChunk } from './store.js';

export interface CobWorkerDeps {
  nats: Nats;
  queue: CobQueue;
  /** The global database (schema day). */
  db: Knex;
  router: ShardRouter;
  steps: Readonly<Record<string, StepRunner>>;
  log: Logger;
  /** Chunks this process runs at once. */
  concurrency: number;
}

/** A failure's reason as it is recorded: a code, never data from the chunk. */
export function failureReason(err: unknown): string {
  if (err instanceof DomainError) return `${err.code}:${err.reason}`;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code === 'string' || typeof code === 'number') return `ERROR:${String(code).slice(0, 40)}`;
  return err instanceof Error ? `ERROR:${err.name}` : 'ERROR';
}

export function startCobWorker(d: CobWorkerDeps): { stop: () => Promise<void> } {
  let stopped = false;
  const closers: (() => Promise<void>)[] = [];

  async function handle(msg: JsMsg): Promise<void> {
    const key = parseChunkMessage(msg.data);
    const row = key && (await chunk(d.db, key));
    const run = key && d.steps[key.step];
    const shard = key && d.router.shards[key.shard];
    if (!key || !row || !run || !shard) {
      d.log.warn({ subject: msg.subject, seq: msg.seq }, 'cob worker: a message for no known chunk; dropped');
      msg.term();
      return;
    }
    if (row.state === CHUNK.done) {
      msg.ack();
      return;
    }
    await startChunk(d.db, key);
    // Tells JetStream the chunk is still being worked on, so a long chunk is not redelivered.
    const alive = setInterval(() => msg.working(), d.queue.ackWaitMs / 3);
    try {
      const result = await run({ date: key.date, shard, after: row.lo, upTo: row.hi });
      await finishChunk(
        d.db,
        key,
        result.items,
        result.totals.map((t) => ({ name: t.name, currency: t.currency, amount: t.amount.toString() })),
      );
      msg.ack();
    } catch (err) {
      const final = msg.info.deliveryCount >= COB_MAX_DELIVER;
      d.log.warn({ err, ...key, delivery: msg.info.deliveryCount, final }, 'cob worker: chunk failed');
      await failChunk(d.db, key, failureReason(err), final).catch(() => undefined);
      if (final) msg.term();
      else msg.nak(backoffMs(msg.info.deliveryCount - 1, { baseMs: 200, maxMs: 3_000 }));
    } finally {
      clearInterval(alive);
    }
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      try {
        const consumer = await d.nats.js.consumers.get(COB_STREAM, d.queue.consumer);
        // One message at a time per loop: a chunk is big, and the other workers should get theirs.
        const messages = await consumer.consume({ max_messages: 1 });
        closers.push(async () => void (await messages.close()));
        for await (const msg of messages) {
          await handle(msg).catch((err) => d.log.warn({ err }, 'cob worker: could not record a chunk'));
          if (stopped) break;
        }
      } catch (err) {
        if (stopped) return;
        d.log.warn({ err }, 'cob worker: the work queue is not reachable; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  const loops = Array.from({ length: d.concurrency }, () => loop());
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(closers.map((c) => c().catch(() => undefined)));
      await Promise.all(loops.map((l) => l.catch(() => undefined)));
    },
  };
}
