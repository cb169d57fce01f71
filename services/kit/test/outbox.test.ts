// The outbox relay against real PostgreSQL and NATS: idle it sleeps (no polling), a NOTIFY wakes
// the right shard at once, its LISTEN connections come back by themselves, a backlog goes in
// order, one round trip per batch, its reads step over rows already sent, and cleanup deletes
// through indexes, in bounded batches, by one replica at a time.
import { randomUUID } from 'node:crypto';
import type { Subscription } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inject } from 'vitest';
import {
  connectNats,
  createLogger,
  ensureStream,
  migrateAllShards,
  newEventId,
  OutboxRelay,
  ShardMap,
  ShardRouter,
  streamName,
  writeEvents,
  type Nats,
} from '../src/index.js';
import { createDatabases } from '../src/testing/infra.js';
import { countQueries } from '../src/testing/queries.js';

const log = createLogger('kittest', 'silent');

describe('outbox relay', () => {
  const domain = `kt${randomUUID().slice(0, 8)}`;
  let router: ShardRouter;
  let nats: Nats;
  let sub: Subscription;
  const received: string[] = [];
  beforeAll(async () => {
    const dbs = [`${domain}_s0`, `${domain}_s1`];
    await createDatabases(inject('pgAdminUrl'), dbs);
    router = new ShardRouter(
      ShardMap.parse('', 2),
      dbs.map((d) => `${inject('pgUrl')}/${d}`),
      4,
      'kittest',
    );
    await migrateAllShards(router, [], log);
    nats = await connectNats({ url: inject('natsUrl'), name: 'kittest' });
    await ensureStream(nats.jsm, domain);
    sub = nats.nc.subscribe(`corebank.${domain}.>`);
    void (async () => {
      for await (const m of sub) received.push(m.headers?.get('Nats-Msg-Id') ?? '');
    })();
  });
  afterAll(async () => {
    sub?.unsubscribe();
    await nats?.jsm.streams.delete(streamName(domain)).catch(() => undefined);
    await nats?.nc.close();
    await router?.close();
  });

  const emit = async (shard: number) => {
    const id = newEventId();
    await router.shards[shard]!.db.transaction((tx) =>
      writeEvents(tx, [{ id, subject: `corebank.${domain}.test`, payload: new Uint8Array([1]) }]),
    );
    return id;
  };

  it('sleeps while idle, publishes at once on NOTIFY, shard by shard, and stops at once', async () => {
    const relay = new OutboxRelay(router, nats.js, log, { pollMs: 60_000 });
    const looks = vi.spyOn(relay, 'relayOnce');
    relay.start();
    try {
      await expect.poll(() => relay.listening.every(Boolean), { timeout: 10_000 }).toBe(true);
      const before = looks.mock.calls.length;
      await new Promise((r) => setTimeout(r, 1_500));
      // Idle: no look at the outbox in 1.5 s (the poll before NOTIFY looked every 50 ms).
      expect(looks.mock.calls.length - before).toBeLessThanOrEqual(1);
      // Each shard's notification wakes that shard's loop, however often the other one woke.
      for (let i = 0; i < 6; i++) {
        const started = Date.now();
        const id = await emit(i % 2);
        await expect.poll(() => received.includes(id), { timeout: 2_000, interval: 10 }).toBe(true);
        expect(Date.now() - started).toBeLessThan(1_000);
      }
    } finally {
      const stopping = Date.now();
      await relay.stop();
      expect(Date.now() - stopping).toBeLessThan(2_000);
    }
  });

  it('relays a backlog in order, each batch marked sent in the round trip that reads the next', async () => {
    const ids = Array.from({ length: 350 }, () => newEventId());
    await router.shards[0]!.db.transaction((tx) =>
      writeEvents(
        tx,
        ids.map((id) => ({ id, subject: `corebank.${domain}.test`, payload: new Uint8Array([2]) })),
      ),
    );
    const counter = countQueries();
    const relay = new OutboxRelay(router, nats.js, log, { pollMs: 60_000, batchSize: 100, listen: false });
    relay.start();
    try {
      await expect.poll(() => ids.every((id) => received.includes(id)), { timeout: 10_000 }).toBe(true);
      // The stream keeps the outbox's order.
      expect(received.filter((id) => ids.includes(id))).toEqual(ids);
      await expect
        .poll(async () => (await router.shards[0]!.db('outbox').whereNull('sent_at').count())[0])
        .toEqual({
          count: 0n,
        });
      const all = counter.take().byText;
      const texts = [...all.entries()].filter(([t]) => t.includes(' outbox'));
      counter.stop();
      const n = (start: string) => texts.filter(([t]) => t.startsWith(start)).reduce((sum, [, c]) => sum + c, 0);
      // Four batches (100, 100, 100, 50): one read alone, three marks each with the next read,
      // the last mark with its COMMIT; then the full batches' wake-up finds nothing. Both shards
      // are counted (shard 1 read once, empty), so at most one more look at each.
      expect(n('update outbox set sent_at = now() where seq = any')).toBe(4);
      expect(texts.filter(([t]) => /; commit; begin/.test(t)).reduce((sum, [, c]) => sum + c, 0)).toBe(3);
      const reads = [...all.entries()]
        .filter(([t]) => t.startsWith('begin; set local enable_bitmapscan = off; select seq, id, subject'))
        .reduce((sum, [, c]) => sum + c, 0);
      expect(reads).toBeGreaterThanOrEqual(1);
      expect(reads).toBeLessThanOrEqual(4);
    } finally {
      counter.stop();
      await relay.stop();
    }
  });

  it('steps over the index entries of rows it marked sent without visiting the table', async () => {
    // 10,000 rows relayed and marked: until vacuum the unsent index keeps an entry for each.
    const db = router.shards[1]!.db;
    await db.raw(`alter table outbox set (autovacuum_enabled = false)`);
    try {
      const ids = Array.from({ length: 10_000 }, () => newEventId());
      await db.transaction((tx) =>
        writeEvents(
          tx,
          ids.map((id) => ({ id, subject: `corebank.${domain}.test`, payload: new Uint8Array([3]) })),
        ),
      );
      const relay = new OutboxRelay(router, nats.js, log, { pollMs: 60_000, batchSize: 500, listen: false });
      relay.start();
      try {
        await expect.poll(() => ids.every((id) => received.includes(id)), { timeout: 20_000 }).toBe(true);
      } finally {
        await relay.stop();
      }
      // A read as the relay makes it, after the relay's own reads: they marked the entries of the
      // rows they saw sent as dead, so it touches a few index pages, not every page of the table.
      const conn = await db.client.acquireConnection();
      try {
        const pagesRead = async () => {
          await conn.query('begin; set local enable_bitmapscan = off');
          const { rows } = await conn.query(
            `explain (analyze, buffers, format json) select seq from outbox where sent_at is null order by seq limit 500`,
          );
          await conn.query('commit');
          const plan = (rows[0] as { 'QUERY PLAN': { Plan: { 'Shared Hit Blocks': number } }[] })['QUERY PLAN'][0]!;
          return plan.Plan['Shared Hit Blocks'];
        };
        // Measured: 29 pages; 143 when the relay's reads were bitmap scans, which mark nothing.
        expect(await pagesRead()).toBeLessThan(60);
      } finally {
        await db.client.releaseConnection(conn);
      }
    } finally {
      await db.raw(`alter table outbox reset (autovacuum_enabled)`);
    }
  });

  it('listens again after its LISTEN connections are cut, and publishes what came meanwhile', async () => {
    const relay = new OutboxRelay(router, nats.js, log, { pollMs: 60_000 });
    relay.start();
    try {
      await expect.poll(() => relay.listening.every(Boolean), { timeout: 10_000 }).toBe(true);
      for (const s of router.shards) {
        await s.db.raw(
          `select pg_terminate_backend(pid) from pg_stat_activity
            where datname = current_database() and application_name like '%-listen'`,
        );
      }
      const id = await emit(1);
      await expect.poll(() => relay.listening.every(Boolean), { timeout: 10_000 }).toBe(true);
      // Written while nobody listened: the reconnect's wake-up publishes it, not the 60 s poll.
      await expect.poll(() => received.includes(id), { timeout: 5_000, interval: 20 }).toBe(true);
      const later = await emit(0);
      await expect.poll(() => received.includes(later), { timeout: 2_000, interval: 10 }).toBe(true);
    } finally {
      await relay.stop();
    }
  });

  it('deletes old sent rows and old inbox rows through indexes, in bounded batches, one replica at a time', async () => {
    const shard = router.shards[0]!;
    const db = shard.db;
    await db.raw(
      `insert into outbox (id, subject, payload, sent_at)
       select gen_random_uuid(), 'x', '\\x01', now() - interval '2 days' from generate_series(1, 12000)`,
    );
    await db.raw(`insert into outbox (id, subject, payload, sent_at) values (gen_random_uuid(), 'x', '\\x01', now())`);
    await db.raw(
      `insert into inbox (consumer, event_id, processed_at)
       select 'c', gen_random_uuid(), now() - interval '30 days' from generate_series(1, 300)
       union all select 'c', gen_random_uuid(), now() from generate_series(1, 5)`,
    );
    await db.raw('analyze outbox; analyze inbox');
    const plan = (await db.raw(
      `explain select seq from outbox where sent_at < now() - interval '1 day' order by sent_at limit 5000`,
    )) as { rows: { 'QUERY PLAN': string }[] };
    expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('outbox_sent');

    const relay = new OutboxRelay(router, nats.js, log, { cleanupMaxRows: 10_000 });
    // Another replica holds the cleanup lock: this one deletes nothing.
    const other = await db.client.acquireConnection();
    try {
      await other.query('begin');
      await other.query(`select pg_advisory_xact_lock(hashtext('corebank.outbox.cleanup.' || current_schema()))`);
      await other.query(`select pg_advisory_xact_lock(hashtext('corebank.inbox.cleanup.' || current_schema()))`);
      expect(await relay.cleanup(shard)).toEqual({ outbox: 0, inbox: 0 });
    } finally {
      await other.query('rollback');
      await db.client.releaseConnection(other);
    }
    expect(await relay.cleanup(shard)).toEqual({ outbox: 10_000, inbox: 300 });
    expect(await relay.cleanup(shard)).toEqual({ outbox: 2_000, inbox: 0 });
    const left = (await db.raw(`select count(*)::int as n from outbox`)) as { rows: { n: number }[] };
    expect(left.rows[0]!.n).toBeGreaterThanOrEqual(1);
    const inbox = (await db.raw(`select count(*)::int as n from inbox`)) as { rows: { n: number }[] };
    expect(inbox.rows[0]!.n).toBe(5);
  });
});
