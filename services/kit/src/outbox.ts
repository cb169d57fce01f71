// Transactional outbox: a state change and its event commit together; a relay publishes the
// rows to JetStream with Nats-Msg-Id = event id and marks them sent. A relay killed between
// publish and mark re-sends on restart, and the stream's duplicate window drops the copy.
import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { context, propagation } from '@opentelemetry/api';
import type { Knex } from 'knex';
import { backoffMs } from './backoff.js';
import { bind } from './db.js';
import type { Logger } from './log.js';
import { outboxOldestAge, outboxUnsent } from './metrics.js';
import type { Shard, ShardRouter } from './sharding.js';

export interface OutboxEvent {
  id: string;
  subject: string;
  payload: Uint8Array;
  /**
   * The trace context of the request that caused the event (see traceCarrier). Absent: the
   * context active when the event is written, which is right only when one request writes it.
   */
  trace?: Record<string, string>;
}

/** The active trace context as message headers (traceparent, tracestate), to stamp on events later. */
export function traceCarrier(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

export const newEventId = (): string => randomUUID();

/**
 * The outbox insert as a statement with its bindings, for callers that fold it into a larger
 * statement (one round trip for a whole ledger batch).
 */
export function outboxInsert(events: OutboxEvent[]): { sql: string; bindings: unknown[] } {
  let active: string | undefined;
  return {
    sql: `insert into outbox (id, subject, payload, headers)
          select * from unnest(?::uuid[], ?::text[], ?::bytea[], ?::jsonb[])`,
    bindings: [
      events.map((e) => e.id),
      events.map((e) => e.subject),
      events.map((e) => Buffer.from(e.payload)),
      events.map((e) => (e.trace ? JSON.stringify(e.trace) : (active ??= JSON.stringify(traceCarrier())))),
    ],
  };
}

/** Writes events in the caller's transaction; they are published only if it commits. */
export async function writeEvents(tx: Knex.Transaction | Knex, events: OutboxEvent[]): Promise<void> {
  if (!events.length) return;
  const { sql, bindings } = outboxInsert(events);
  await tx.raw(sql, bind(bindings));
}

interface OutboxRow {
  seq: bigint;
  id: string;
  subject: string;
  payload: Buffer;
  headers: Record<string, string>;
}

export interface RelayOptions {
  batchSize?: number;
  idleMs?: number;
  /** Sent rows are kept this long for inspection, then deleted. */
  retainSentMs?: number;
}

export class OutboxRelay {
  private running = false;
  private loops: Promise<void>[] = [];
  private wake: (() => void)[] = [];

  constructor(
    private readonly router: ShardRouter,
    private readonly js: JetStreamClient,
    private readonly log: Logger,
    private readonly opts: RelayOptions = {},
  ) {}

  start(): void {
    this.running = true;
    this.loops = this.router.shards.map((s) => this.loop(s));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake.forEach((w) => w());
    await Promise.all(this.loops);
  }

  private async loop(shard: Shard): Promise<void> {
    let lastCleanup = 0;
    let failures = 0;
    while (this.running) {
      let sent = 0;
      const idleMs = this.opts.idleMs ?? 50;
      let waitMs = idleMs;
      try {
        sent = await this.relayOnce(shard);
        failures = 0;
        if (Date.now() - lastCleanup > 60_000) {
          lastCleanup = Date.now();
          await this.cleanup(shard);
        }
      } catch (err) {
        // NATS or the shard is away: back off instead of retrying every idle tick (and logging each).
        waitMs = backoffMs(failures++, { baseMs: Math.max(idleMs, 50), maxMs: 5_000 });
        this.log.warn({ err, shard: shard.index, retry_in_ms: waitMs }, 'outbox relay: publish failed; will retry');
      }
      if (sent === 0 && this.running) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, waitMs);
          this.wake.push(() => (clearTimeout(t), resolve()));
        });
        this.wake = [];
      }
    }
  }

  /** Publishes one batch from one shard; returns how many rows were sent. */
  async relayOnce(shard: Shard): Promise<number> {
    return shard.db.transaction(async (tx) => {
      // One active relay per service and shard across replicas keeps the stream in outbox order
      // (keyed by schema: services sharing a database relay independently).
      const lock = await tx.raw(
        `select pg_try_advisory_xact_lock(hashtext('corebank.outbox.relay.' || current_schema())) as ok`,
      );
      if (!(lock.rows[0] as { ok: boolean }).ok) return 0;
      const { rows } = (await tx.raw(
        `select seq, id, subject, payload, headers from outbox where sent_at is null order by seq limit ?`,
        [this.opts.batchSize ?? 500],
      )) as { rows: OutboxRow[] };
      if (!rows.length) return 0;
      // Published in seq order over one connection, so the stream keeps that order; acks awaited together.
      await Promise.all(
        rows.map((r) => {
          const h = natsHeaders();
          for (const [k, v] of Object.entries(r.headers)) h.set(k, v);
          return this.js.publish(r.subject, r.payload, { msgID: r.id, headers: h, timeout: 10_000 });
        }),
      );
      await tx.raw(`update outbox set sent_at = now() where seq = any(?::bigint[])`, [
        rows.map((r) => r.seq.toString()),
      ]);
      return rows.length;
    });
  }

  private async cleanup(shard: Shard): Promise<void> {
    const retain = this.opts.retainSentMs ?? 24 * 3600 * 1000;
    await shard.db.raw(`delete from outbox where sent_at < now() - make_interval(secs => ?)`, [retain / 1000]);
    const { rows } = await shard.db.raw(
      `select count(*) as n, coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as age
         from outbox where sent_at is null`,
    );
    const r = rows[0] as { n: bigint; age: number };
    outboxUnsent.set({ shard: String(shard.index) }, Number(r.n));
    outboxOldestAge.set({ shard: String(shard.index) }, r.age);
  }
}
