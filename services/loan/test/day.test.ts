// RunLoanDay: daily interest accruals that sum exactly to each period's scheduled interest for
// annuity and flat schedules under every day count; instalments collected on their due date, in
// full and in part; a re-run (and a concurrent duplicate) that changes nothing; and the ledger's
// GL accounts reconciled with the loans' sub-ledger. On 1 and 3 shards.
import { status } from '@grpc/grpc-js';
import { DayCount, ScheduleType } from '@corebank/kit/gen/corebank/v1/product';
import { RepaymentKind as K } from '@corebank/kit/gen/corebank/v1/loan';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError } from '../../account/test/helpers.js';
import { accruedInPeriod } from '../src/day.js';
import { TEST_SCORECARD, closingDay, publishedDeposit, publishedLoan, startLoans, type TestLoans } from './harness.js';
import { accrualsOf, addDays, borrowerWithLoan, expectReconciled, glSnapshot, runDay, runDays } from './day-helpers.js';

describe('accruedInPeriod', () => {
  it('is the straight line over the period, half-even, and all of it on the due date', () => {
    // 2,875 over 31 days: after 10 days 2,875 × 10 / 31 = 927.419… -> 927; after 31: 2,875.
    expect(accruedInPeriod(2875n, '2026-01-01', '2026-02-01', '2026-01-11')).toBe(927n);
    expect(accruedInPeriod(2875n, '2026-01-01', '2026-02-01', '2026-02-01')).toBe(2875n);
    // 5 over 2 days: after 1 day 2.5 -> 2 (half to even); 15 over 2: 7.5 -> 8.
    expect(accruedInPeriod(5n, '2026-01-01', '2026-01-03', '2026-01-02')).toBe(2n);
    expect(accruedInPeriod(15n, '2026-01-01', '2026-01-03', '2026-01-02')).toBe(8n);
    expect(accruedInPeriod(15n, '2026-01-01', '2026-01-03', '2025-12-31')).toBe(0n);
  });
});

describe.each([1, 3])('RunLoanDay on %i shard(s)', (shards) => {
  let t: TestLoans;
  let depositProductId: string;
  const products: Record<string, string> = {};
  beforeAll(async () => {
    t = await startLoans(shards, { LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD) });
    depositProductId = (await publishedDeposit(t)).productId;
    const annuity = ScheduleType.SCHEDULE_TYPE_EQUAL_INSTALLMENTS;
    products.annuity365 = (
      await publishedLoan(t, { annualRate: '9.4822', annualRateBps: 0, dayCount: DayCount.DAY_COUNT_ACT_365F })
    ).productId;
    products.annuity360 = (
      await publishedLoan(t, { scheduleType: annuity, dayCount: DayCount.DAY_COUNT_ACT_360 })
    ).productId;
    products.annuity30360 = (
      await publishedLoan(t, { scheduleType: annuity, dayCount: DayCount.DAY_COUNT_THIRTY_360 })
    ).productId;
    products.flat = (
      await publishedLoan(t, {
        annualRate: '12',
        annualRateBps: 0,
        scheduleType: ScheduleType.SCHEDULE_TYPE_FLAT,
        dayCount: DayCount.DAY_COUNT_ACT_360,
      })
    ).productId;
    // Every schedule type: equal principal and bullet (interest only, principal at maturity) too.
    products.equalPrincipal365 = (
      await publishedLoan(t, {
        scheduleType: ScheduleType.SCHEDULE_TYPE_EQUAL_PRINCIPAL,
        dayCount: DayCount.DAY_COUNT_ACT_365F,
      })
    ).productId;
    products.bullet30360 = (
      await publishedLoan(t, {
        annualRate: '7.25',
        annualRateBps: 0,
        scheduleType: ScheduleType.SCHEDULE_TYPE_BULLET,
        dayCount: DayCount.DAY_COUNT_THIRTY_360,
      })
    ).productId;
  });
  afterAll(async () => t?.stop());

  it('accrues each period to exactly its scheduled interest, collects due instalments in full and in part, and reconciles', async () => {
    // Loans of 6,000.00 over 6 months; their repayment accounts hold 10,000.00 (every instalment
    // collected in full), except the "short" loan's, which holds 100.00.
    const loans = [];
    for (const [name, productId] of Object.entries(products)) {
      loans.push({
        name,
        ...(await borrowerWithLoan(t, {
          productId,
          depositProductId,
          amount: 600_000n,
          termMonths: 6,
          repaymentFunds: 1_000_000n,
        })),
      });
    }
    const short = await borrowerWithLoan(t, {
      productId: products.annuity30360!,
      depositProductId,
      amount: 600_000n,
      termMonths: 6,
      repaymentFunds: 10_000n,
    });
    const start = loans[0]!.loan.disbursedOn;
    const schedule = async (id: string) => (await t.client.getLoanSchedule({ loanId: id })).schedule!.instalments;
    const first = await schedule(loans[0]!.loan.id);
    const end = first[1]!.dueDate; // through the end of period 2

    await runDays(t, start, end);

    for (const l of loans) {
      const periods = await schedule(l.loan.id);
      const rows = (await accrualsOf(t, l.loan.id)).filter((r) => r.kind === 1);
      expect(rows.every((r) => r.amount >= 0n)).toBe(true);
      for (const p of periods.slice(0, 2)) {
        // The accruals dated after the period's start, through its due date, are its interest to the cent.
        const sum = rows.filter((r) => r.date > p.fromDate && r.date <= p.dueDate).reduce((s, r) => s + r.amount, 0n);
        expect(sum, `${l.name} period ${p.number}`).toBe(p.interestDue);
        // Collected in full on its due date: nothing left on the instalment.
        expect(p.principalPaid + p.interestPaid, `${l.name} period ${p.number} paid`).toBe(
          p.principalDue + p.interestDue,
        );
      }
      // The repayment account paid exactly the two instalments.
      const account = await balances(t.bank, l.repayment.id);
      const paid = periods.slice(0, 2).reduce((s, p) => s + p.totalDue, 0n);
      expect(account.creditsPosted - account.debitsPosted).toBe(1_000_000n - paid);
      const loan = (await t.client.getLoan({ loanId: l.loan.id })).loan!;
      expect(loan.daysPastDue).toBe(0);
      expect(loan.delinquencyBucket).toBe(0);
      // Both periods' interest was accrued and collected: the receivable is back to zero.
      expect(loan.interestReceivable).toBe(0n);
    }

    // The short loan: on its first due date its 100.00 went, by the waterfall, to instalment 1's
    // interest first (6,000.00 × 6.9 % / 12 = 3,450) and the rest, 10,000 - 3,450 = 6,550, to its
    // principal; the account is empty after it and nothing more was taken.
    const shortPeriods = await schedule(short.loan.id);
    expect(shortPeriods[0]!.interestDue).toBe(3_450n);
    expect(shortPeriods[0]!.interestPaid).toBe(3_450n);
    expect(shortPeriods[0]!.principalPaid).toBe(6_550n);
    expect(shortPeriods[1]!.principalPaid + shortPeriods[1]!.interestPaid).toBe(0n);
    const empty = await balances(t.bank, short.repayment.id);
    expect(empty.creditsPosted - empty.debitsPosted).toBe(0n);
    const shortRepayments = (await t.app.router
      .byId(short.loan.id)!
      .db('loan_repayments')
      .where({ loan_id: short.loan.id })
      .select('kind', 'amount', 'status')) as { kind: number; amount: bigint; status: number }[];
    expect(shortRepayments).toEqual([{ kind: K.REPAYMENT_KIND_COLLECTION, amount: 10_000n, status: 2 }]);
    const shortLoan = (await t.client.getLoan({ loanId: short.loan.id })).loan!;
    // Due date of instalment 1 to the end of period 2: past due (the fixture's grace is 10 days).
    const late = Math.round((Date.parse(end) - Date.parse(shortPeriods[0]!.dueDate)) / 86_400_000);
    expect(shortLoan.daysPastDue).toBe(late);
    expect(shortLoan.delinquencyBucket).toBe(late >= 31 ? 31 : 1);

    await expectReconciled(t);
  });

  it('re-running a day, or running it twice at once, books nothing twice and returns the same totals', async () => {
    const date = addDays(
      (await t.client.getLoanSchedule({ loanId: (await anyLoan()).id })).schedule!.instalments[1]!.dueDate,
      1,
    );
    const firstRun = await runDay(t, date);
    const before = { gl: await glSnapshot(t), rows: await allRows() };
    const again = await runDay(t, date);
    expect(again).toEqual(firstRun);
    // Two at once, on a date not run yet.
    const next = addDays(date, 1);
    const [a, b] = await Promise.all([runDay(t, next), runDay(t, next)]);
    expect(a).toEqual(b);
    const afterNext = { gl: await glSnapshot(t), rows: await allRows() };
    expect(await runDay(t, next)).toEqual(a);
    expect({ gl: await glSnapshot(t), rows: await allRows() }).toEqual(afterNext);
    // And the first date again, after the next one: still the same.
    expect(await runDay(t, date)).toEqual(firstRun);
    expect(before.rows.filter((r) => r.date <= date)).toEqual(afterNext.rows.filter((r) => r.date <= date));
    // The day's totals are those of its sub-ledger rows.
    const interest = firstRun.reduce((s, r) => s + r.totals.reduce((x, c) => x + c.interestAccrued, 0n), 0n);
    expect(interest).toBe(
      before.rows.filter((r) => r.date === date && r.kind === 1).reduce((s, r) => s + BigInt(r.amount), 0n),
    );
    expect(firstRun.reduce((s, r) => s + r.postingsPending, 0)).toBe(0);
    await expectReconciled(t);
  });

  it('runs for named loans and an id range, and refuses bad requests naming the field', async () => {
    const loan = await anyLoan();
    const shard = t.app.router.byId(loan.id)!.index;
    const date = '2199-01-01';
    await closingDay(t, date);
    const named = await t.client.runLoanDay({ businessDate: date, shard, afterId: '', upToId: '', loanIds: [loan.id] });
    expect(named.loansProcessed).toBe(1);
    const ranged = await t.client.runLoanDay({
      businessDate: date,
      shard,
      afterId: '',
      upToId: loan.id,
      loanIds: [],
    });
    expect(ranged.loansProcessed).toBeGreaterThanOrEqual(1);
    const bad = (o: object) =>
      t.client.runLoanDay({ businessDate: date, shard: 0, afterId: '', upToId: '', loanIds: [], ...o });
    await expectRpcError(bad({ businessDate: '2026-02-30' }), status.INVALID_ARGUMENT, 'business_date');
    await expectRpcError(bad({ shard: shards }), status.INVALID_ARGUMENT, 'shard');
    await expectRpcError(bad({ afterId: 'x' }), status.INVALID_ARGUMENT, 'after_id');
    await expectRpcError(bad({ loanIds: ['nope'] }), status.INVALID_ARGUMENT, 'loan_ids[0]');
    await expectRpcError(bad({ loanIds: [loan.id], afterId: loan.id }), status.INVALID_ARGUMENT, 'loan_ids');
    const writer = await t.clientWith(['loans:read', 'loans:write']);
    await expectRpcError(
      writer.runLoanDay({ businessDate: date, shard: 0, afterId: '', upToId: '', loanIds: [] }),
      status.PERMISSION_DENIED,
    );
  });

  async function anyLoan() {
    for (const s of t.app.router.shards) {
      const row = (await s.db('loans').first('id')) as { id: string } | undefined;
      if (row) return row;
    }
    throw new Error('no loan');
  }

  async function allRows() {
    const out: { loan_id: string; date: string; kind: number; amount: string; booked: string }[] = [];
    for (const s of t.app.router.shards) {
      const { rows } = (await s.db.raw(
        `select loan_id, business_date::text as date, kind, amount::text, booked::text from loan_accruals
          order by loan_id, business_date, kind`,
      )) as { rows: typeof out };
      out.push(...rows);
    }
    return out;
  }
});
