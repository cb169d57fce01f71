// The ledger tried as a hostile or careless client would: values its columns cannot hold, which
// must fail only their own request; oversized errors, which must not break the connection; bytes
// that are not a request at all; and a clock that disagrees with the database's.
import { randomUUID } from 'node:crypto';
import { errorDetails, MAX_VIOLATIONS } from '@corebank/kit';
import { type Transfer } from '@corebank/kit/gen/corebank/v1/account';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bodyHash } from '../src/ledger/validate.js';
import type { TransferInput } from '../src/ledger/types.js';
import { startBank, type TestBank } from './bank.js';
import { balances, expectRpcError, fund, K, openAccounts, R, transfer } from './helpers.js';

const INT32_MAX = 2 ** 31 - 1;

describe('hostile input to the ledger', () => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(1);
  });
  afterAll(async () => bank?.stop());

  const pair = async () => {
    const [a, b] = await openAccounts(bank, 2);
    await fund(bank, a!, 1_000_000n);
    return [a!, b!] as const;
  };

  it.each([
    ['code', { code: 3_000_000_000 }],
    ['timeout_seconds', { kind: K.TRANSFER_KIND_PENDING, timeoutSeconds: INT32_MAX + 1 }],
    ['reference', { reference: 'nul\u0000here' }],
    ['reference', { reference: 'x'.repeat(257) }],
  ] as [string, Partial<Transfer>][])(
    'refuses a %s the journal cannot hold, naming it, while 50 concurrent good transfers all commit',
    async (field, bad) => {
      const [a, b] = await pair();
      const good = Array.from({ length: 50 }, () =>
        transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n }),
      );
      const poison = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n, ...bad });
      const calls = good.map((t) => bank.client.createTransfers({ transfers: [t] }));
      const refused = expectRpcError(
        bank.client.createTransfers({ transfers: [poison] }),
        grpc.status.INVALID_ARGUMENT,
        `transfers[0].${field}`,
      );
      calls.splice(25, 0, refused as Promise<never>);
      const results = await Promise.all(calls);
      const codes = results.flatMap((r) => (r && 'results' in r ? r.results.map((x) => x.code) : []));
      expect(codes).toEqual(good.map(() => R.TRANSFER_RESULT_CODE_OK));
      expect((await balances(bank, b.id)).creditsPosted).toBe(50n);
      await expectRpcError(bank.client.getTransfer({ transferId: poison.id }), grpc.status.NOT_FOUND);
    },
  );

  /** A transfer as the batcher takes it, with no validation in front (what validation would miss). */
  const input = (t: Transfer, path = 'transfers[0]'): TransferInput => {
    const body = {
      debitAccountId: t.debitAccountId,
      creditAccountId: t.creditAccountId,
      amount: t.amount,
      kind: t.kind,
      linked: t.linked,
      pendingId: t.pendingId || null,
      timeoutSeconds: t.timeoutSeconds,
      code: t.code,
      reference: t.reference,
    };
    return { id: t.id, ...body, bodyHash: bodyHash(body), path };
  };

  it('splits a batch the database refuses, so only the request at fault fails, naming its transfer', async () => {
    const [a, b] = await pair();
    const batcher = bank.app.batchers[0]!;
    const one = () => input(transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n }));
    // Validation would refuse these; the batcher must still keep them from failing their neighbours.
    const poisoned = [one(), { ...one(), code: 3_000_000_000, path: 'transfers[1]' }, one()];
    const goods = Array.from({ length: 40 }, () => [one(), one()]);
    const submitted = goods.map((g) => batcher.submit(g));
    const refused = batcher.submit(poisoned).then(
      () => undefined,
      (e: unknown) => e,
    );
    const outcomes = await Promise.all(submitted);
    expect(outcomes.flat().map((o) => o.code)).toEqual(goods.flat().map(() => R.TRANSFER_RESULT_CODE_OK));
    const err = (await refused) as { code: string; violations: { field: string }[] };
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', violations: [{ field: 'transfers[1]' }] });
    // Nothing of the refused request was written, not even its good transfers.
    for (const t of poisoned)
      await expectRpcError(bank.client.getTransfer({ transferId: t.id }), grpc.status.NOT_FOUND);
    expect((await balances(bank, b.id)).creditsPosted).toBe(80n);
  });

  it('answers 1,000 invalid accounts with a small error and keeps the connection usable', async () => {
    const started = Date.now();
    const err = await expectRpcError(
      bank.client.createAccounts({
        accounts: Array.from({ length: 1000 }, () => ({
          idempotencyKey: '',
          ownerId: '',
          currency: 'x'.repeat(1_000),
          code: 0,
          overdraftLimit: -1n,
          reference: 'r'.repeat(1_000),
        })),
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    const d = errorDetails(err);
    expect(d.violations.length).toBeLessThanOrEqual(MAX_VIOLATIONS + 1);
    expect(d.violations.at(-1)!.description).toMatch(/^and \d+ more violations$/);
    const raw = err.metadata.get('grpc-status-details-bin')[0] as Buffer;
    expect(raw.length).toBeLessThan(8 * 1024);
    expect(err.details.length).toBeLessThan(1024);
    expect(err.details).not.toContain('xxxxxxxxxx');
    // The same connection still answers.
    const [a] = await openAccounts(bank, 1);
    expect((await balances(bank, a!.id)).id).toBe(a!.id);
  });

  it('answers bytes that are not a request with INVALID_ARGUMENT, and the connection still works', async () => {
    const raw = new grpc.Client(bank.address, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${await bank.token()}`);
    const call = (bytes: Buffer) =>
      new Promise<grpc.ServiceError | undefined>((resolve) =>
        raw.makeUnaryRequest(
          '/corebank.v1.AccountService/CreateTransfers',
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          metadata,
          { deadline: Date.now() + 5_000 },
          (err) => resolve(err ?? undefined),
        ),
      );
    // Field 1 as a length-delimited value whose length runs past the end; then a bad wire type.
    for (const bytes of [Buffer.from([0x0a, 0xff, 0x01, 0x01]), Buffer.from([0x0f, 0x01])]) {
      const err = await call(bytes);
      expect(err?.code, err?.message).toBe(grpc.status.INVALID_ARGUMENT);
      expect(errorDetails(err!).reason).toBe('MALFORMED_REQUEST');
    }
    raw.close();
    const [a] = await openAccounts(bank, 1);
    expect((await balances(bank, a!.id)).id).toBe(a!.id);
  });
});

describe.each([
  ['behind', -5 * 60_000],
  ['ahead of', 5 * 60_000],
])('the ledger with its clock %s the database by minutes', (_, skewMs) => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(1);
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + skewMs);
  });
  afterAll(async () => {
    vi.useRealTimers();
    await bank?.stop();
  });

  it('expires holds at their timeout by the database clock and never strands one', async () => {
    const [a, b] = await openAccounts(bank, 2);
    await fund(bank, a!, 1_000n);
    const holds = Array.from({ length: 20 }, () =>
      transfer({
        debitAccountId: a!.id,
        creditAccountId: b!.id,
        amount: 10n,
        kind: K.TRANSFER_KIND_PENDING,
        timeoutSeconds: 1,
      }),
    );
    const made = await bank.client.createTransfers({ transfers: holds });
    expect(made.results.map((r) => r.code)).toEqual(holds.map(() => R.TRANSFER_RESULT_CODE_OK));
    // The sweeper (every 200 ms in tests) expires every hold about a second later.
    await expect.poll(async () => (await balances(bank, a!.id)).debitsPending, { timeout: 10_000 }).toBe(0n);
    const { rows } = await bank.router.shards[0]!.db.raw(`select count(*)::int as n from pending_holds`);
    expect(rows[0]).toEqual({ n: 0 });
    const { rows: refusals } = await bank.router.shards[0]!.db.raw(
      `select count(*)::int as n from transfer_rejections where field like 'expiry[%'`,
    );
    expect(refusals[0]).toEqual({ n: 0 });
    // Stamped by the database's clock, not the skewed one.
    const stamped = Number(made.results[0]!.transfer!.createdAt!.seconds) * 1000;
    expect(Math.abs(stamped - (Date.now() - skewMs))).toBeLessThan(60_000);
    // A post after the timeout is refused as expired; a hold with time left can still be posted.
    const late = await bank.client.createTransfers({
      transfers: [
        transfer({
          debitAccountId: a!.id,
          creditAccountId: b!.id,
          kind: K.TRANSFER_KIND_POST_PENDING,
          pendingId: holds[0]!.id,
        }),
      ],
    });
    expect(late.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED);
  });

  it('lets a hold with time left be posted', async () => {
    const [a, b] = await openAccounts(bank, 2);
    await fund(bank, a!, 1_000n);
    const hold = transfer({
      debitAccountId: a!.id,
      creditAccountId: b!.id,
      amount: 10n,
      kind: K.TRANSFER_KIND_PENDING,
      timeoutSeconds: 60,
    });
    await bank.client.createTransfers({ transfers: [hold] });
    const post = transfer({
      id: randomUUID(),
      debitAccountId: a!.id,
      creditAccountId: b!.id,
      kind: K.TRANSFER_KIND_POST_PENDING,
      pendingId: hold.id,
    });
    const res = await bank.client.createTransfers({ transfers: [post] });
    expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
  });
});
