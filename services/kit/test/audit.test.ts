// The audit trail's writer against real PostgreSQL, without a server: records are batched per
// shard and all written by stop(); hostile text (NUL, megabytes) is cleaned, not refused; a full
// buffer drops and counts; the shard rule; the idempotency-key rule; which methods are reads.
import { randomUUID } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import {
  auditRecordsDropped,
  AuditTrail,
  bucketedId,
  createLogger,
  idempotencyKeyOf,
  isReadOnlyMethod,
  migrateAllShards,
  ShardMap,
  ShardRouter,
  type AuditedCall,
} from '../src/index.js';
import { createDatabases } from '../src/testing/infra.js';

const log = createLogger('kittest', 'silent');

describe('audit trail writer', () => {
  const domain = `au${randomUUID().slice(0, 8)}`;
  let router: ShardRouter;
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
  });
  afterAll(() => router?.close());

  const call = (o: Partial<AuditedCall> = {}): AuditedCall => ({
    service: 'corebank.v1.TestService',
    method: 'DoThing',
    principal: { channel: 'mobile', scopes: new Set(), customerId: 'cust-1' },
    request: { idempotencyKey: 'k' },
    code: 0,
    reason: '',
    metadata: new Metadata(),
    ...o,
  });
  const count = async () => {
    let n = 0;
    for (const s of router.shards) n += Number(((await s.db('audit_log').count({ n: '*' })) as [{ n: string }])[0].n);
    return n;
  };

  it('batches, writes everything on stop, and cleans hostile text', async () => {
    const trail = new AuditTrail(router, domain, log, {
      flushMs: 1_000,
      batchSize: 10_000,
      bufferMax: 10_000,
      retentionDays: 0,
    });
    const before = await count();
    const key = `a\u0000b${'x'.repeat(1 << 20)}`;
    for (let i = 0; i < 200; i++) {
      trail.record(call({ principal: { channel: 'mobile\u0000', scopes: new Set(), customerId: `cust-${i}` } }));
    }
    trail.record(call({ request: { idempotencyKey: key }, reason: 'R\u0001' }));
    expect(await count()).toBe(before); // still buffered (flushMs 1 s)
    await trail.stop();
    expect(await count()).toBe(before + 201);
    const rows = (await Promise.all(router.shards.map((s) => s.db('audit_log').where('method', 'DoThing')))).flat() as {
      idempotency_key: string;
      channel: string;
      reason: string | null;
    }[];
    const hostile = rows.find((r) => r.idempotency_key.startsWith('a'))!;
    expect(hostile.idempotency_key).toBe(`a\uFFFDb${'x'.repeat(1021)}`);
    expect(hostile.reason).toBe('R\uFFFD');
    expect(rows.filter((r) => r !== hostile).every((r) => r.channel === 'mobile\uFFFD')).toBe(true);
    // Both shards got records (customers hash to both), each with its event in audit_outbox.
    for (const s of router.shards) {
      const [{ n }] = (await s.db('audit_outbox').count({ n: '*' })) as [{ n: string }];
      const [{ m }] = (await s.db('audit_log').count({ m: '*' })) as [{ m: string }];
      expect(Number(n)).toBeGreaterThan(0);
      expect(n).toBe(m);
    }
    // After stop nothing more is taken.
    trail.record(call());
    expect(await count()).toBe(before + 201);
  });

  it('drops and counts beyond a full buffer', async () => {
    const trail = new AuditTrail(router, domain, log, {
      flushMs: 1_000,
      batchSize: 10_000,
      bufferMax: 5,
      retentionDays: 0,
    });
    const dropped = (await auditRecordsDropped.get()).values[0]?.value ?? 0;
    const before = await count();
    for (let i = 0; i < 8; i++) trail.record(call());
    await trail.stop();
    expect(await count()).toBe(before + 5);
    expect((await auditRecordsDropped.get()).values[0]!.value - dropped).toBe(3);
  });

  it('puts a record on the shard it acted on', () => {
    const trail = new AuditTrail(router, domain, log, { flushMs: 5, batchSize: 1, bufferMax: 1, retentionDays: 0 });
    const owner = (shard: number) => {
      for (;;) {
        const c = randomUUID();
        if (router.byCustomer(c).index === shard) return c;
      }
    };
    const on1 = owner(1);
    const account1 = bucketedId(router.map.firstBucketOf(1), 'acct');
    const none = { principal: undefined };
    expect(trail.shardOf(call({ ...none, shard: 1, request: {} }))).toBe(1);
    expect(trail.shardOf(call({ principal: { channel: 'm', scopes: new Set(), customerId: on1 } }))).toBe(1);
    expect(trail.shardOf(call({ ...none, request: { customerId: on1 } }))).toBe(1);
    expect(trail.shardOf(call({ ...none, request: { ownerId: on1 } }))).toBe(1);
    expect(trail.shardOf(call({ ...none, request: { payerAccountId: account1 } }))).toBe(1);
    expect(trail.shardOf(call({ ...none, request: { transfers: [{ id: 'x', debitAccountId: account1 }] } }))).toBe(1);
    expect(trail.shardOf(call({ ...none, request: {} }))).toBe(0);
    expect(trail.shardOf(call({ ...none, shard: 7, request: {} }))).toBe(0); // no such shard: the default
  });

  it('takes the idempotency key by one rule, and records reads only on failed authentication', () => {
    expect(idempotencyKeyOf({ idempotencyKey: 'k1', externalReference: 'r' })).toBe('k1');
    expect(idempotencyKeyOf({ externalReference: 'ref-1' })).toBe('ref-1');
    const ids = Array.from({ length: 40 }, () => randomUUID());
    const key = idempotencyKeyOf({ transfers: ids.map((id) => ({ id })) });
    expect(key.length).toBeLessThanOrEqual(1024);
    const kept = key.split(',');
    expect(kept.at(-1)).toBe(`+${40 - (kept.length - 1)}`);
    expect(kept.slice(0, -1)).toEqual(ids.slice(0, kept.length - 1));
    expect(idempotencyKeyOf({ transfers: ids.slice(0, 2).map((id) => ({ id })) })).toBe(ids.slice(0, 2).join(','));
    expect(idempotencyKeyOf({ paymentId: 'p' })).toBe('');
    for (const m of ['GetAccount', 'ListPayments', 'CheckLedgerInvariant', 'PreviewSchedule', 'ComputeValidUntil']) {
      expect(isReadOnlyMethod(m), m).toBe(true);
    }
    for (const m of ['CreateTransfers', 'ReviewPayment', 'Checkout', 'Listen', 'SetRiskTier', 'CloseOwnerAccounts']) {
      expect(isReadOnlyMethod(m), m).toBe(false);
    }
  });
});
