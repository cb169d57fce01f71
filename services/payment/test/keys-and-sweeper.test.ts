// The payment key claims, the saga's step advances and its sweeper, on migrated payment databases
// of their own (no ledger behind them: nothing here reaches one).
import { randomUUID } from 'node:crypto';
import { createLogger, DomainError, migrateAllShards, ShardMap, ShardRouter } from '@corebank/kit';
import {
  PaymentKind as K,
  PaymentRoute,
  PaymentStatus as S,
  PaymentStep as P,
} from '@corebank/kit/gen/corebank/v1/payment';
import { countQueries, createDatabases, testAuth } from '@corebank/kit/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inject } from 'vitest';
import { Ledger } from '../src/clients/ledger.js';
import { KeyClaims } from '../src/keys.js';
import { paymentMigrations } from '../src/migrations.js';
import { Saga } from '../src/saga.js';
import {
  advance,
  bodyHashOf,
  createOnce,
  findPayment,
  insertOrder,
  paymentIdFor,
  stepAdvances,
  type NewOrder,
} from '../src/store.js';

const log = createLogger('payment', 'silent');

function order(router: ShardRouter, key: string, hash: string): NewOrder {
  const bucket = router.map.firstBucketOf(0);
  const id = paymentIdFor(bucket, 'test', key);
  return {
    id,
    channel: 'test',
    idempotencyKey: key,
    bodyHash: hash,
    kind: K.PAYMENT_KIND_TRANSFER,
    payerAccountId: randomUUID(),
    payeeAccountId: randomUUID(),
    payerCustomerId: 'c1',
    amount: 100n,
    currency: 'EUR',
    reference: '',
    route: PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD,
    status: S.PAYMENT_STATUS_ACCEPTED,
    step: P.PAYMENT_STEP_HOLD,
    payerShard: 0,
    payeeShard: 1,
  };
}

describe('payment keys and the saga sweeper', () => {
  let router: ShardRouter;
  beforeAll(async () => {
    const id = randomUUID().slice(0, 8);
    const dbs = [`pks_${id}_s0`, `pks_${id}_s1`];
    await createDatabases(inject('pgAdminUrl'), dbs);
    router = new ShardRouter(
      ShardMap.parse('', 2),
      dbs.map((d) => `${inject('pgUrl')}/${d}`),
      4,
      'payment',
    );
    await migrateAllShards(router, paymentMigrations, log);
  });
  afterAll(async () => {
    await router?.close();
  });

  it('answers a request whose key claim is given back between statements (no TypeError)', async () => {
    const shard = router.shards[0]!;
    // A request claimed each key and is failing with a verdict: it gives its claim back. The
    // trigger gives it back right after the next claiming statement on the table, which is the
    // moment a second statement reading the claim would find nothing.
    const same = order(router, `race-${randomUUID()}`, bodyHashOf('a'));
    const other = order(router, `race-${randomUUID()}`, bodyHashOf('b'));
    // The claim lives on the shard of hash(channel, key): every shard gets the same setup.
    for (const s of router.shards) {
      await s.db.raw(`
        create or replace function give_back_claims() returns trigger language plpgsql as $$
        begin delete from payment_keys where idempotency_key like 'race-%'; return null; end $$;
        drop trigger if exists give_back_claims on payment_keys;
        create trigger give_back_claims after insert on payment_keys for each statement execute function give_back_claims();
        alter table payment_keys disable trigger give_back_claims;`);
    }
    for (const [o, claimedFor] of [
      [same, same],
      [other, { ...other, id: paymentIdFor(router.map.firstBucketOf(0), 'test', 'someone-else') }],
    ] as const) {
      for (const s of router.shards) {
        await s.db('payment_keys').insert({
          channel: 'test',
          idempotency_key: o.idempotencyKey,
          payment_id: claimedFor.id,
          body_hash: claimedFor.bodyHash,
        });
        await s.db.raw(`alter table payment_keys enable trigger give_back_claims`);
      }
      const res = createOnce(
        new KeyClaims(router),
        shard,
        { channel: 'test', key: o.idempotencyKey, paymentId: o.id, bodyHash: o.bodyHash },
        () => Promise.resolve(o),
        new Date(),
      );
      if (claimedFor === o) {
        // The claim was this very order's (a retry of it): the order is created.
        const r = await res;
        expect(r.replayed).toBe(false);
        expect((await findPayment(shard.db, o.id))?.id).toBe(o.id);
      } else {
        // Another order's claim: ALREADY_EXISTS, as when the claim stays.
        await expect(res).rejects.toSatisfy(
          (e) => e instanceof DomainError && e.code === 'ALREADY_EXISTS',
          'a DomainError ALREADY_EXISTS',
        );
      }
      for (const s of router.shards) await s.db.raw(`alter table payment_keys disable trigger give_back_claims`);
    }
  });

  it('keeps one timer per sweeper however many sweeps ran', async () => {
    const saga = new Saga(
      router,
      Ledger.connect('127.0.0.1:1', await (await testAuth()).identity('payment'), 200),
      log,
      {
        consumerName: 'unused',
        callTimeoutMs: 200,
        maxBackoffMs: 200,
        sweepIntervalMs: 2,
      },
    );
    const sweeps = vi.spyOn(saga, 'sweepOnce');
    await saga.start(undefined);
    await expect.poll(() => sweeps.mock.calls.length, { timeout: 20_000 }).toBeGreaterThan(100);
    // Stopping wakes each sleeper once: a waker kept per sweep would be called (and its timer
    // cleared) once per sweep ever made.
    const cleared = vi.spyOn(globalThis, 'clearTimeout');
    await saga.stop();
    expect(cleared.mock.calls.length).toBeLessThanOrEqual(10);
    cleared.mockRestore();
  });

  it('sleeps until the earliest due step, not the whole interval', async () => {
    for (const s of router.shards) await s.db('payments').delete();
    const shard = router.shards[1]!;
    const o = { ...order(router, randomUUID(), bodyHashOf('due')), id: randomUUID() };
    await shard.db.transaction((tx) => insertOrder(tx, o, new Date()));
    await shard
      .db('payments')
      .where('id', o.id)
      .update({ next_attempt_at: shard.db.raw(`now() + interval '1.5 s'`) });
    const saga = new Saga(
      router,
      Ledger.connect('127.0.0.1:1', await (await testAuth()).identity('payment'), 200),
      log,
      {
        consumerName: 'unused',
        callTimeoutMs: 200,
        maxBackoffMs: 60_000,
        sweepIntervalMs: 60_000,
      },
    );
    const sweeps = vi.spyOn(saga, 'sweepOnce');
    const sweepsOf = (s = shard) => sweeps.mock.calls.filter(([x]) => x === s).length;
    const started = Date.now();
    await saga.start(undefined);
    try {
      // The first sweep finds nothing due; the next one runs when the order falls due.
      await expect
        .poll(async () => (await findPayment(shard.db, o.id))!.attempts, { timeout: 6_000, interval: 50 })
        .toBeGreaterThan(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
      // Idle meanwhile: the sweep at start and the one at the due time (one more at most).
      expect(sweepsOf()).toBeLessThanOrEqual(3);
      // A shard with no order at all sleeps the whole interval.
      expect(sweepsOf(router.shards[0])).toBe(1);
    } finally {
      await saga.stop();
    }
  });

  it('claims keys that arrive together in one statement per shard, each with its own answer', async () => {
    const keys = new KeyClaims(router, { maxInFlight: 1, maxBatch: 64 });
    const claim = (key: string, paymentId: string = randomUUID(), bodyHash = 'h') => ({
      channel: 'batch',
      key,
      paymentId,
      bodyHash,
    });
    const first = claim(`k-${randomUUID()}`);
    // The same order again (a retry), and another order with the same key and another body: both
    // wait behind the first, in one batch with forty new keys.
    const retry = { ...first };
    const reused = { ...first, paymentId: randomUUID(), bodyHash: 'other' };
    const fresh = Array.from({ length: 40 }, (_, i) => claim(`m-${i}-${randomUUID()}`));
    const counter = countQueries();
    const results = await Promise.all([first, retry, reused, ...fresh].map((c) => keys.claim(c)));
    const statements = [...counter.take().byText.entries()]
      .filter(([text]) => text.startsWith('insert into payment_keys'))
      .reduce((a, [, n]) => a + n, 0);
    counter.stop();
    expect(results[0]).toMatchObject({ paymentId: first.paymentId, bodyHash: 'h', fresh: true });
    expect(results[1]).toMatchObject({ paymentId: first.paymentId, bodyHash: 'h', fresh: false });
    expect(results[2]).toMatchObject({ paymentId: first.paymentId, bodyHash: 'h', fresh: false });
    fresh.forEach((c, i) => expect(results[3 + i]).toMatchObject({ paymentId: c.paymentId, fresh: true }));
    // On each of the two shards the first key to come goes alone and what waited meanwhile in one
    // statement; the key asked twice in that batch takes one more on its shard: 5 for 43 claims.
    expect(statements).toBe(5);
    let rows = 0;
    for (const s of router.shards) {
      rows += Number(
        ((await s.db('payment_keys').where('channel', 'batch').count({ n: '*' })) as [{ n: string }])[0].n,
      );
    }
    expect(rows).toBe(41);
  });

  it('advances concurrent steps in one statement, each with its event, guarded as one alone', async () => {
    const shard = router.shards[0]!;
    const rows = [];
    for (let i = 0; i < 6; i++) {
      const o = order(router, `adv-${randomUUID()}`, bodyHashOf('a'));
      rows.push((await shard.db.transaction((tx) => insertOrder(tx, o, new Date())))!);
    }
    // The last order moved since its driver read it (another driver took its step): not advanced.
    await shard.db('payments').where('id', rows[5]!.id).update({ attempts: 3 });
    const batches = stepAdvances(router, 1, 64);
    const held = { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_CREDIT, event: 'payment_held' } as const;
    const outbox = async () => Number(((await shard.db('outbox').count({ n: '*' })) as [{ n: string }])[0].n);
    const before = await outbox();
    const counter = countQueries();
    // The first goes alone; the others wait for it and go together, the first order's twice (a
    // second driver with the same view of it): that one finds it moved.
    const results = await Promise.all([
      ...rows.map((r) => advance(shard, r, held, 5_000, batches)),
      advance(shard, rows[1]!, held, 5_000, batches),
    ]);
    const statements = [...counter.take().byText.entries()]
      .filter(([text]) => text.startsWith('with s as ( select * from unnest'))
      .reduce((a, [, n]) => a + n, 0);
    counter.stop();
    expect(results.map((r) => r?.step)).toEqual([...Array(5).fill(P.PAYMENT_STEP_CREDIT), undefined, undefined]);
    // Each advance claimed the next step for its driver (claimNextForMs).
    expect(results.slice(0, 5).every((r) => r?.claimed === true && r.attempts === 1)).toBe(true);
    expect(statements).toBe(3);
    for (const r of rows.slice(0, 5)) {
      expect(await findPayment(shard.db, r.id)).toMatchObject({ step: P.PAYMENT_STEP_CREDIT, attempts: 1 });
    }
    expect((await findPayment(shard.db, rows[5]!.id))!.step).toBe(P.PAYMENT_STEP_HOLD);
    // One event per order moved, none for the ones that were not.
    expect((await outbox()) - before).toBe(5);
  });
});
