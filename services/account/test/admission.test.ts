// Overload sheds instead of queueing: a real ledger with a small admission limit, flooded by many
// concurrent callers. Every call is answered at once, either with its results or with
// RESOURCE_EXHAUSTED and a retry hint; what was shed wrote nothing, what was admitted is in the
// journal exactly once, and retrying the shed calls with the same ids completes the work.
import { randomUUID } from 'node:crypto';
import { errorDetails } from '@corebank/kit';
import { testToken } from '@corebank/kit/testing';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';
import { openAccounts, R, transfer } from './helpers.js';

describe('admission: the ledger under a flood', () => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(2, {
      ADMISSION_MAX_IN_FLIGHT: '4',
      ADMISSION_READ_RESERVE_PERCENT: '50',
      CHANNEL_RATE_LIMITS: 'metered=5',
    });
  });
  afterAll(() => bank?.stop());

  it('sheds calls beyond the limit at once, and what it admitted is applied exactly once', async () => {
    const [payer, payee] = await openAccounts(bank, 2, { owner: `flood-${randomUUID()}`, constrained: false });
    const calls = Array.from({ length: 200 }, () => [
      transfer({ debitAccountId: payer!.id, creditAccountId: payee!.id, amount: 1n }),
    ]);
    const started = Date.now();
    const answers = await Promise.allSettled(calls.map((transfers) => bank.client.createTransfers({ transfers })));
    expect(Date.now() - started).toBeLessThan(20_000);

    const shed = answers.flatMap((a) => (a.status === 'rejected' ? [a.reason as ServiceError] : []));
    expect(shed.length).toBeGreaterThan(0);
    for (const e of shed) {
      expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
      const d = errorDetails(e);
      expect(d.reason).toBe('OVERLOADED');
      expect(d.retryAfterMs).toBeGreaterThan(0);
    }
    const applied = answers.filter((a) => a.status === 'fulfilled').length;
    expect(applied).toBeGreaterThan(0);
    for (const a of answers)
      if (a.status === 'fulfilled') expect(a.value.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect((await bank.client.getAccount({ accountId: payee!.id })).account!.creditsPosted).toBe(BigInt(applied));

    // A shed call wrote nothing: retried (with its retry hint honoured, a few at a time) it is new.
    const retried = calls.filter((_, i) => answers[i]!.status === 'rejected');
    for (let i = 0; i < retried.length; i += 2) {
      const res = await Promise.all(
        retried.slice(i, i + 2).map((transfers) => bank.client.createTransfers({ transfers })),
      );
      for (const r of res) expect(r.results[0]).toMatchObject({ code: R.TRANSFER_RESULT_CODE_OK, replayed: false });
    }
    expect((await bank.client.getAccount({ accountId: payee!.id })).account!.creditsPosted).toBe(200n);
    const inv = await bank.client.checkLedgerInvariant({});
    expect(inv.ok).toBe(true);

    // The audit trail holds each of the 200 calls that did something, once; the shed ones are
    // counted (grpc_admission_shed_total), not recorded. The records land a few ms after the answer.
    const recorded = async () => {
      const byReason = new Map<string, number>();
      for (const shard of bank.app.router.shards) {
        const rows = (await shard
          .db('audit_log')
          .where({ method: 'CreateTransfers' })
          .select('reason')
          .count({ n: '*' })
          .groupBy('reason')) as { reason: string | null; n: string }[];
        for (const r of rows) byReason.set(r.reason ?? '', (byReason.get(r.reason ?? '') ?? 0) + Number(r.n));
      }
      return byReason;
    };
    let audit = await recorded();
    for (let i = 0; i < 100 && [...audit.values()].reduce((a, b) => a + b, 0) < 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      audit = await recorded();
    }
    expect(audit.get('OVERLOADED') ?? 0).toBe(0);
    expect([...audit.values()].reduce((a, b) => a + b, 0)).toBe(200);
  });

  it('limits a channel to its rate, and leaves other channels alone', async () => {
    const metered = await testToken(['accounts:read'], undefined, { channel: 'metered' });
    const [account] = await openAccounts(bank, 1);
    const read = (token?: string) =>
      bank.client.getAccount({ accountId: account!.id }, token ? { token } : {}).then(
        () => 'ok',
        (e: ServiceError) => `${status[e.code]} ${errorDetails(e).reason}`,
      );
    const got: string[] = [];
    for (let i = 0; i < 12; i++) got.push(await read(metered));
    // A bucket of one second at 5 per second: five at once, the rest refused (a few may refill).
    expect(got.filter((g) => g === 'ok').length).toBeGreaterThanOrEqual(5);
    expect(got.filter((g) => g === 'ok').length).toBeLessThan(12);
    expect(got.filter((g) => g !== 'ok').every((g) => g === 'RESOURCE_EXHAUSTED RATE_LIMITED')).toBe(true);
    // The test's own channel has no rate.
    for (let i = 0; i < 20; i++) expect(await read()).toBe('ok');
  });
});
