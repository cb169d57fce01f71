// The account service's background work and reports at low cost: holds expire when they are due
// although the sweeper's safety-net interval is long, and the invariant check compares each
// account's balances with its journal (per account, not by summing the whole journal).
import { PendingStatus } from '@corebank/kit/gen/corebank/v1/account';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';
import { balances, fund, K, openAccounts, R, transfer } from './helpers.js';

describe('account background work', () => {
  let bank: TestBank;
  beforeAll(async () => {
    // A safety net far longer than the test: only the wake-up at the hold's expiry can void it.
    bank = await startBank(1, { EXPIRY_SWEEP_INTERVAL_MS: '600000' });
  });
  afterAll(async () => {
    await bank?.stop();
  });

  it('expires a hold when it falls due, not at the next safety-net sweep', async () => {
    const [a, b] = await openAccounts(bank, 2, { constrained: true });
    await fund(bank, a!, 500n);
    const hold = transfer({
      debitAccountId: a!.id,
      creditAccountId: b!.id,
      amount: 200n,
      kind: K.TRANSFER_KIND_PENDING,
      timeoutSeconds: 1,
    });
    const res = await bank.client.createTransfers({ transfers: [hold] });
    expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect((await balances(bank, a!.id)).debitsPending).toBe(200n);
    await expect
      .poll(async () => (await bank.client.getTransfer({ transferId: hold.id })).pendingStatus, {
        timeout: 8_000,
        interval: 100,
      })
      .toBe(PendingStatus.PENDING_STATUS_EXPIRED);
    expect((await balances(bank, a!.id)).debitsPending).toBe(0n);
  });

  it('finds an account whose balances drifted from its journal, even when the totals still balance', async () => {
    const [a, b] = await openAccounts(bank, 2);
    await fund(bank, a!, 1_000n);
    const move = await bank.client.createTransfers({
      transfers: [transfer({ debitAccountId: a!.id, creditAccountId: b!.id, amount: 300n })],
    });
    expect(move.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
    const db = bank.router.shards[0]!.db;
    // 100 of a's credits moved to b behind the journal's back: every per-currency total is unchanged.
    await db.raw(`update accounts set credits_posted = credits_posted - 100 where id = ?`, [a!.id]);
    await db.raw(`update accounts set credits_posted = credits_posted + 100 where id = ?`, [b!.id]);
    try {
      const inv = await bank.client.checkLedgerInvariant({});
      expect(inv.ok).toBe(false);
      const eur = inv.totals.find((t) => t.currency === 'EUR' && t.shard === undefined)!;
      expect(eur.balanced).toBe(true);
      expect(eur.journalMatchesBalances).toBe(false);
    } finally {
      await db.raw(`update accounts set credits_posted = credits_posted + 100 where id = ?`, [a!.id]);
      await db.raw(`update accounts set credits_posted = credits_posted - 100 where id = ?`, [b!.id]);
    }
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it('does next to nothing while idle', async () => {
    const db = bank.router.shards[0]!.db;
    const commits = async () =>
      Number(
        (
          (await db.raw(`select xact_commit from pg_stat_database where datname = current_database()`)) as {
            rows: { xact_commit: bigint }[];
          }
        ).rows[0]!.xact_commit,
      );
    // After the tests above (the expiry sweeper has woken, and found no hold left). Statistics
    // are flushed by each backend about once a second: let the earlier work's settle.
    await new Promise((r) => setTimeout(r, 2_000));
    const before = await commits();
    await new Promise((r) => setTimeout(r, 3_000));
    // A few for the health probe and the reads here; polling every 50 ms would be 100s.
    expect((await commits()) - before).toBeLessThan(25);
  });
});
