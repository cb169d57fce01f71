// The close of business end to end, on the real services (ledger with its COB workers, loan,
// product, customer) and 3 shards: each day's loans step accrues every active loan (its sub-ledger
// and the GL agree with the step's totals), the deposits step accrues and posts a daily yield, the
// gl step's trial balance balances on every shard and for the bank, every booking of the close is
// dated the day closed, and re-running a closed day changes nothing.
import { randomUUID } from 'node:crypto';
import { BusinessDayServiceClient, CloseOfBusinessState as S } from '@corebank/kit/gen/corebank/v1/day';
import { DayCount, PostingFrequency } from '@corebank/kit/gen/corebank/v1/product';
import { promisify, testChannelCredentials, testToken } from '@corebank/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SCORECARD, publishedDeposit, publishedLoan, startLoans, type TestLoans } from './harness.js';
import { addDays, borrowerWithLoan } from './day-helpers.js';

const SHARDS = 3;

describe('close of business on the real services', () => {
  let t: TestLoans;
  let day: ReturnType<typeof promisify<BusinessDayServiceClient>>;
  let first: string;

  beforeAll(async () => {
    t = await startLoans(SHARDS, { LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD) });
    day = promisify(
      new BusinessDayServiceClient(t.bank.address, testChannelCredentials(t.bank.env)),
      await testToken(),
    );
    // A daily-yield deposit product (3.65% ACT/365F: 100 a day per 1,000,000) and an annuity loan.
    const deposit = await publishedDeposit(t, {
      interestRateBps: 365,
      dayCount: DayCount.DAY_COUNT_ACT_365F,
      postingFrequency: PostingFrequency.POSTING_FREQUENCY_DAILY,
    });
    const loan = await publishedLoan(t, {
      annualRate: '9.4822',
      annualRateBps: 0,
      dayCount: DayCount.DAY_COUNT_ACT_365F,
    });
    for (let i = 0; i < 6; i++) {
      await borrowerWithLoan(t, {
        productId: loan.productId,
        depositProductId: deposit.productId,
        amount: 600_000n,
        termMonths: 6,
        repaymentFunds: 1_000_000n,
      });
    }
    // Loans are disbursed on the database's date: the first day to close.
    const { rows } = (await t.app.router.shards[0]!.db.raw(
      `select (now() at time zone 'utc')::date::text as today`,
    )) as { rows: { today: string }[] };
    first = rows[0]!.today;
    await day.setBusinessDate({ businessDate: first, force: true, idempotencyKey: randomUUID() });
  }, 240_000);
  afterAll(async () => {
    day?.close();
    await t?.stop();
  });

  async function closed(date: string) {
    for (let i = 0; i < 600; i++) {
      const { run } = await day.getCloseOfBusiness({ businessDate: date });
      if (run!.state !== S.CLOSE_OF_BUSINESS_STATE_RUNNING) return run!;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the close of ${date} did not finish`);
  }

  const total = (run: Awaited<ReturnType<typeof closed>>, step: string, name: string) =>
    run.steps
      .filter((s) => s.step === step)
      .flatMap((s) => s.totals)
      .filter((x) => x.name === name && x.currency === 'EUR')
      .reduce((n, x) => n + x.amount, 0n);

  it('closes three days: the steps reconcile with the journal and the trial balance balances', async () => {
    const last = addDays(first, 2);
    await day.runCloseOfBusiness({ through: last, idempotencyKey: randomUUID() });
    for (let d = first; d <= last; d = addDays(d, 1)) {
      const run = await closed(d);
      expect(run.state, `${d}: ${run.steps.map((s) => s.lastError).join(' ')}`).toBe(
        S.CLOSE_OF_BUSINESS_STATE_COMPLETED,
      );
      expect(run.steps.filter((s) => s.step === 'loans').reduce((n, s) => n + s.items, 0n)).toBe(6n);

      // The loans' sub-ledger for the day = the step's totals = the GL's day journal.
      let subLedger = 0n;
      for (const s of t.app.router.shards) {
        const { rows } = (await s.db.raw(
          `select coalesce(sum(amount), 0)::text as n from loan_accruals where business_date = ? and kind = 1`,
          [d],
        )) as { rows: { n: string }[] };
        subLedger += BigInt(rows[0]!.n);
      }
      // The disbursement day itself accrues nothing (no day of the period has passed yet).
      const accrued = total(run, 'loans', 'interest_accrued');
      if (d > first) expect(accrued).toBeGreaterThan(0n);
      expect(subLedger).toBe(accrued);
      const tb = await day.getTrialBalance({ businessDate: d });
      const bank = tb.balances.find((b) => b.shard === undefined)!;
      const line = (name: string) => bank.lines.find((l) => l.glAccount === name && l.currency === 'EUR');
      expect(line('LOAN_INTEREST_RECEIVABLE')?.dayDebits ?? 0n).toBe(accrued);
      // Deposits: the step's accrual = the expense booked on the day = what was posted (daily).
      const deposits = total(run, 'deposits', 'deposit_interest_accrued');
      expect(deposits).toBeGreaterThan(0n);
      expect(line('DEPOSIT_INTEREST_EXPENSE')!.dayDebits).toBe(deposits);
      expect(total(run, 'deposits', 'deposit_interest_posted')).toBe(deposits);
      // Every shard's trial balance and the bank's balance.
      expect(tb.balances).toHaveLength(SHARDS + 1);
      for (const b of tb.balances) expect(b.balanced, `shard ${b.shard}`).toBe(true);
      // Every booking of the close carries the day closed: none of the day's COB transfers is dated otherwise.
      const { rows } = (await t.bank.router.shards[0]!.db.raw(
        `select count(*)::int as n from transfers where code in (9001, 9002) and business_date <> ? and created_at > now() - interval '1 hour' and reference like ?`,
        [d, `%${d}%`],
      )) as { rows: { n: number }[] };
      expect(rows[0]!.n).toBe(0);
    }
    expect((await day.getBusinessDate({})).businessDate).toBe(addDays(last, 1));
    const check = await t.bank.client.checkLedgerInvariant({});
    expect(check.ok).toBe(true);

    // A closed day again: nothing to run, the journal unchanged.
    const count = async () => {
      let n = 0;
      for (const s of t.bank.router.shards) {
        const { rows } = (await s.db.raw(`select count(*)::int as n from transfers`)) as { rows: { n: number }[] };
        n += rows[0]!.n;
      }
      return n;
    };
    const before = await count();
    expect((await day.runCloseOfBusiness({ through: first, idempotencyKey: randomUUID() })).runs).toEqual([]);
    await new Promise((r) => setTimeout(r, 500));
    expect(await count()).toBe(before);
  }, 300_000);
});
