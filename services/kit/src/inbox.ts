// Idempotent consumers: each processed event id is recorded in the inbox table in the same
// transaction as the event's effect, and the message is acked only after that commit, so a
// redelivery finds the id and does nothing.
import type { Consumer, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { context, propagation } from '@opentelemetry/api';
import type { Knex } from 'knex';
import { backoffMs } from './backoff.js';
import type { Logger } from './log.js';
import { streamName } from './nats.js';

/**
 * Runs effect(tx) once per (consumer, eventId). Returns false when the event was processed before.
 */
export async function processOnce(
  db: Knex,
  consumer: string,
  eventId: string,
  effect: (tx: Knex.Transaction) => Promise<void>,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const r = await tx.raw(
      `insert into inbox (consumer, event_id) values (?, ?) on conflict do nothing returning event_id`,
      [consumer, eventId],
    );
    if (!r.rows.length) return false;
    await effect(tx);
    return true;
  });
}

export interface ConsumerOptions {
  domain: string;
  durable: string;
  filterSubjects: string[];
  /** Seconds before an unacked message is redelivered. */
  ackWaitMs?: number;
  /**
   * Where a consumer created now starts: 'all' (default) replays the stream's history, which an
   * inbox needs; 'new' only takes what is published after, for a consumer that is a fast path
   * over state a sweeper owns anyway (replaying history would only re-check finished work).
   */
  startAt?: 'all' | 'new';
}

/** A durable, explicitly acked pull consumer; created if missing. */
export async function durableConsumer(
  js: JetStreamClient,
  jsm: JetStreamManager,
  o: ConsumerOptions,
): Promise<Consumer> {
  const stream = streamName(o.domain);
  const ackWait = (o.ackWaitMs ?? 30_000) * 1_000_000;
  try {
    await jsm.consumers.info(stream, o.durable);
  } catch {
    await jsm.consumers.add(stream, {
      durable_name: o.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: o.startAt === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
      // One subject goes in filter_subject: nats-server before 2.10 knows no filter_subjects.
      ...(o.filterSubjects.length === 1
        ? { filter_subject: o.filterSubjects[0] }
        : { filter_subjects: o.filterSubjects }),
      ack_wait: ackWait,
      max_deliver: -1,
    });
  }
  return js.consumers.get(stream, o.durable);
}

/**
 * Feeds messages to handle() and acks each only after handle() resolved (its commit is done);
 * a failed handle() naks with a growing delay so the message comes back later.
 */
export function runConsumer(
  consumer: Consumer,
  log: Logger,
  handle: (msg: JsMsg) => Promise<void>,
): { stop: () => Promise<void> } {
  let stopped = false;
  let messages: Awaited<ReturnType<Consumer['consume']>> | undefined;
  const done = (async () => {
    messages = await consumer.consume({ max_messages: 256 });
    for await (const msg of messages) {
      try {
        // The producer's trace context travels in the headers: the handler continues that trace.
        const carrier: Record<string, string> = {};
        for (const k of msg.headers?.keys() ?? []) carrier[k.toLowerCase()] = msg.headers!.get(k);
        await context.with(propagation.extract(context.active(), carrier), () => handle(msg));
        msg.ack();
      } catch (err) {
        log.warn({ err, subject: msg.subject, seq: msg.seq }, 'consumer: handler failed; redelivering later');
        // Later each time it fails again, so a handler that keeps failing does not spin.
        msg.nak(backoffMs(msg.info.deliveryCount - 1, { baseMs: 1000, maxMs: 30_000 }));
      }
      if (stopped) break;
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await messages?.close();
      await done.catch(() => undefined);
    },
  };
}
