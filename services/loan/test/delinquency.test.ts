// Delinquency as the business date moves: days past due from the oldest unpaid instalment after
// grace_days, the buckets 0 -> 1-30 -> 31-60 -> 61-90 -> 91+ with an event on every change,
// non-performing past 90 days, instalment-overdue events, penalty interest on overdue principal
// worked out by hand, collected first by the waterfall once money arrives. On 1 and 3 shards.
import { status } from '@grpc/grpc-js';
import { LoanDelinquencyChanged, LoanInstalmentOverdue } from '@corebank/kit/gen/corebank/v1/events';
import { RepaymentKind as K } from '@corebank/kit/gen/corebank/v1/loan';
import { DayCount, ScheduleType } from '@corebank/kit/gen/corebank/v1/product';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError, fund } from '../../account/test/helpers.js';
import { loanProduct, loanTerms } from '../../product/test/fixtures.js';
import { SUBJECTS } from '../src/events.js';
import { TEST_SCORECARD, publishedDeposit, publishedLoan, startLoans, type TestLoans } from './harness.js';
import { accrualsOf, addDays, borrowerWithLoan, expectReconciled, runDay, runDays } from './day-helpers.js';

describe.each([1, 3])('delinquency on %i shard(s)', (shards) => {
  let t: TestLoans;
  let depositProductId: string;
  let productId: string;
  beforeAll(async () => {
    t = await startLoans(shards, { LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD) });
    depositProductId = (await publishedDeposit(t)).productId;
    // Equal principal (6,000.00 over 6 months: 1,000.00 of principal per instalment), 12 % a year,
    // ACT/365F, 5 grace days, penalty 10 % a year on overdue principal, the default buckets.
    productId = (
      await publishedLoan(t, {
        annualRate: '12',
        annualRateBps: 0,
        scheduleType: ScheduleType.SCHEDULE_TYPE_EQUAL_PRINCIPAL,
        dayCount: DayCount.DAY_COUNT_ACT_365F,
        graceDays: 5,
        penaltyRateBps: 0,
        penaltyRate: '10',
      })
    ).productId;
  });
  afterAll(async () => t?.stop());

  it('moves through the buckets after grace, writes the events, charges penalties worked by hand and collects them first', async () => {
    const b = await borrowerWithLoan(t, {
      productId,
      depositProductId,
      amount: 600_000n,
      termMonths: 6,
      repaymentFunds: 0n,
    });
    const loanId = b.loan.id;
    const db = t.app.router.byId(loanId)!.db;
    const periods = (await t.client.getLoanSchedule({ loanId })).schedule!.instalments;
    expect(periods.map((p) => p.principalDue)).toEqual(Array(6).fill(100_000n));
    const d1 = periods[0]!.dueDate;
    const getLoan = async () => (await t.client.getLoan({ loanId })).loan!;

    await runDays(t, b.loan.disbursedOn, d1);
    // Due and unpaid at the close of its due date: overdue, but 0 days past due.
    let loan = await getLoan();
    expect([loan.daysPastDue, loan.delinquencyBucket, loan.delinquencyAsOf]).toEqual([0, 0, d1]);

    // Grace: 5 days past due still count as 0.
    await runDays(t, addDays(d1, 1), addDays(d1, 5));
    loan = await getLoan();
    expect([loan.daysPastDue, loan.delinquencyBucket]).toEqual([0, 0]);
    expect(loan.penaltiesOutstanding).toBe(0n);

    // Day 6: 6 days past due, bucket 1-30; the first penalty day.
    await runDay(t, addDays(d1, 6));
    loan = await getLoan();
    expect([loan.daysPastDue, loan.delinquencyBucket, loan.nonPerforming]).toEqual([6, 1, false]);

    // Penalty: 100,000 overdue × 10 % / 365 a day = 27.3972… a day, cumulative, half-even:
    // day 1: 27.397 -> 27; day 2: 54.795 -> 55 (28 that day); day 3: 82.192 -> 82 (27);
    // after 10 days: 273.97 -> 274.
    await runDays(t, addDays(d1, 7), addDays(d1, 15));
    const penalties = (await accrualsOf(t, loanId)).filter((r) => r.kind === 2);
    expect(penalties.slice(0, 3).map((r) => r.amount)).toEqual([27n, 28n, 27n]);
    expect(penalties.length).toBe(10);
    expect(penalties.reduce((s, r) => s + r.amount, 0n)).toBe(274n);
    loan = await getLoan();
    expect(loan.penaltiesOutstanding).toBe(274n);
    const first = (await t.client.getLoanSchedule({ loanId })).schedule!.instalments[0]!;
    expect(first.penaltyDue).toBe(274n); // on the oldest overdue instalment
    await expectReconciled(t);

    // On to 92 days past due.
    await runDays(t, addDays(d1, 16), addDays(d1, 92));
    loan = await getLoan();
    expect([loan.daysPastDue, loan.delinquencyBucket, loan.nonPerforming]).toEqual([92, 91, true]);

    const changes = (await db('loan_delinquency_changes')
      .select(db.raw('business_date::text as date'), 'previous_bucket', 'bucket', 'days_past_due')
      .where('loan_id', loanId)
      .orderBy('business_date')) as { date: string; previous_bucket: number; bucket: number; days_past_due: number }[];
    expect(changes).toEqual([
      { date: addDays(d1, 6), previous_bucket: 0, bucket: 1, days_past_due: 6 },
      { date: addDays(d1, 31), previous_bucket: 1, bucket: 31, days_past_due: 31 },
      { date: addDays(d1, 61), previous_bucket: 31, bucket: 61, days_past_due: 61 },
      { date: addDays(d1, 91), previous_bucket: 61, bucket: 91, days_past_due: 91 },
    ]);

    // The events: one per bucket change, one per instalment overdue (on its due date).
    const outbox = (await db('outbox').select('subject', 'payload').orderBy('seq')) as {
      subject: string;
      payload: Buffer;
    }[];
    const moves = outbox
      .filter((e) => e.subject === SUBJECTS.delinquencyChanged)
      .map((e) => LoanDelinquencyChanged.decode(e.payload))
      .filter((e) => e.loan!.id === loanId);
    expect(
      moves.map((e) => [e.businessDate, e.previousBucket, e.bucket, e.daysPastDue, e.loan!.nonPerforming]),
    ).toEqual([
      [addDays(d1, 6), 0, 1, 6, false],
      [addDays(d1, 31), 1, 31, 31, false],
      [addDays(d1, 61), 31, 61, 61, false],
      [addDays(d1, 91), 61, 91, 91, true],
    ]);
    const overdue = outbox
      .filter((e) => e.subject === SUBJECTS.instalmentOverdue)
      .map((e) => LoanInstalmentOverdue.decode(e.payload))
      .filter((e) => e.loan!.id === loanId);
    const dueBy = periods.filter((p) => p.dueDate <= addDays(d1, 92));
    expect(overdue.map((e) => [e.instalment, e.businessDate])).toEqual(dueBy.map((p) => [p.number, p.dueDate]));
    expect(overdue[0]!.amountOverdue).toBe(periods[0]!.principalDue + periods[0]!.interestDue);

    // Money arrives: the next day's collection takes the penalties first (waterfall), oldest instalment first.
    const owedPenalties = (await getLoan()).penaltiesOutstanding;
    await fund(t.bank, b.repayment, 50_000n);
    const next = addDays(d1, 93);
    await runDay(t, next);
    const [collection] = (await db('loan_repayments')
      .where({ loan_id: loanId, kind: K.REPAYMENT_KIND_COLLECTION })
      .select('allocations', 'penalties', 'amount')) as {
      allocations: [number, string, string][];
      penalties: bigint;
      amount: bigint;
    }[];
    expect(collection!.amount).toBe(50_000n);
    expect(collection!.allocations[0]!.slice(0, 2)).toEqual([1, 'penalty']);
    // Every penalty accrued through the day before (all on instalment 1) was collected first.
    expect(owedPenalties).toBeGreaterThan(274n);
    expect(collection!.penalties).toBe(owedPenalties);
    await expectReconciled(t);
  });

  it('refuses delinquency buckets that do not increase, naming the field', async () => {
    const catalog = t.peers.catalog.client;
    await expectRpcError(
      catalog.createProduct(loanProduct({ loan: loanTerms({ delinquencyBuckets: [1, 31, 31] }) })),
      status.INVALID_ARGUMENT,
      'loan.delinquency_buckets',
    );
    await expectRpcError(
      catalog.createProduct(loanProduct({ loan: loanTerms({ penaltyRate: '1.5x' }) })),
      status.INVALID_ARGUMENT,
      'loan.penalty_rate',
    );
  });
});
