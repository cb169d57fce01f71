// A product's repayment waterfall and prepayment strategy: RepayLoan allocates in the product's
// order, and an amount beyond the running instalment reschedules the rest (REDUCE_TERM or
// REDUCE_INSTALMENT), recorded as a schedule version with a loan_rescheduled event; the ledger
// agrees with the loan throughout. Amounts worked by hand below.
//
// Every loan here: 5,000.00 (500,000) over 12 months at 6.9 %, 30/360, disbursed today. Its periodic
// rate is Fineract's (6.9 / 360 / 100) x 30 = 0.00575000000001 (12 significant digits), i.e. 0.00575
// to the minor unit; the annuity instalment is 500,000 x i / (1 - (1+i)^-12) = 43,239.7 -> 43,240.
// Instalment 1: interest 500,000 x 0.00575 = 2,875, principal 43,240 - 2,875 = 40,365, leaving
// 459,635. Scheduled interest in all: 18,883.
import { randomUUID } from 'node:crypto';
import { status, type ServiceError } from '@grpc/grpc-js';
import { errorDetails } from '@corebank/kit';
import { LoanRescheduled } from '@corebank/kit/gen/corebank/v1/events';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import {
  LoanStatus as L,
  RepaymentComponent as C,
  RepaymentStatus as S,
  type RepayLoanRequest,
} from '@corebank/kit/gen/corebank/v1/loan';
import {
  DayCount,
  RepaymentPeriod,
  PrepaymentStrategy as P,
  RepaymentOrderComponent as O,
  type LoanTerms,
} from '@corebank/kit/gen/corebank/v1/product';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError } from '../../account/test/helpers.js';
import { loanProduct, loanTerms } from '../../product/test/fixtures.js';
import { SUBJECTS } from '../src/events.js';
import {
  TEST_SCORECARD,
  customer,
  depositAccount,
  loanCounts,
  publishedDeposit,
  publishedLoan,
  startLoans,
  type TestLoans,
} from './harness.js';

describe.each([1, 3])('loan product settings: waterfall order, prepayment, weekly periods on %i shard(s)', (shards) => {
  let t: TestLoans;
  let depositProductId: string;
  beforeAll(async () => {
    t = await startLoans(shards, { LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD) });
    depositProductId = (await publishedDeposit(t)).productId;
  });
  afterAll(async () => t?.stop());

  const product = async (terms: Partial<LoanTerms>) =>
    (await publishedLoan(t, { annualRate: '6.9', annualRateBps: 0, ...terms })).productId;

  /** A LOW-tier borrower with 3,000.00 and their disbursed loan on `productId` (approved: 50 points). */
  async function borrower(productId: string, amount = 500_000n, term = 12, income = 0n) {
    const c = await customer(t, { tier: RiskTier.RISK_TIER_LOW });
    const account = await depositAccount(t, c.id, depositProductId, 300_000n);
    const res = await t.client.applyForLoan({
      idempotencyKey: randomUUID(),
      customerId: c.id,
      productId,
      productVersion: 0,
      amount,
      termMonths: term,
      disbursementAccountId: account.id,
      repaymentAccountId: account.id,
      declaredMonthlyIncome: income,
    });
    expect(res.loan!.status).toBe(L.LOAN_STATUS_ACTIVE);
    const repay = (amount: bigint, o: Partial<RepayLoanRequest> = {}) =>
      t.client.repayLoan({ loanId: res.loan!.id, idempotencyKey: randomUUID(), amount, fromAccountId: '', ...o });
    return { customer: c, account, loan: res.loan!, application: res.application!, repay };
  }

  /** The loan agrees with the ledger: its account's balance (debits - credits) is the principal outstanding. */
  async function agrees(loanId: string) {
    const { loan } = await t.client.getLoan({ loanId });
    const ledger = await balances(t.bank, loan!.ledgerAccountId);
    expect(ledger.debitsPosted - ledger.creditsPosted).toBe(loan!.principalOutstanding);
    expect((await t.bank.client.checkLedgerInvariant({})).ok).toBe(true);
    return loan!;
  }

  const rescheduled = async (loanId: string) =>
    (
      (await t.app.router.byId(loanId)!.db('outbox').where('subject', SUBJECTS.rescheduled).orderBy('seq')) as {
        payload: Buffer;
      }[]
    )
      .map((r) => LoanRescheduled.decode(r.payload))
      .filter((e) => e.loan!.id === loanId);

  it('allocates in the order the product states', async () => {
    const order = [O.REPAYMENT_ORDER_COMPONENT_PRINCIPAL, O.REPAYMENT_ORDER_COMPONENT_INTEREST];
    const id = await product({
      repaymentOrder: [...order, O.REPAYMENT_ORDER_COMPONENT_FEE, O.REPAYMENT_ORDER_COMPONENT_PENALTY],
    });
    const b = await borrower(id);
    // 1,000: principal first, so all of it is instalment 1's principal (40,365 due).
    const r1 = await b.repay(1_000n);
    expect(r1.repayment).toMatchObject({ principal: 1_000n, interest: 0n });
    expect(r1.repayment!.allocations).toEqual([
      { instalment: 1, component: C.REPAYMENT_COMPONENT_PRINCIPAL, amount: 1_000n },
    ]);
    // 43,240: the rest of instalment 1's principal, 40,365 - 1,000 = 39,365, then its interest
    // 2,875 (42,240 so far), then 43,240 - 42,240 = 1,000 of instalment 2's principal (40,597).
    const r2 = await b.repay(43_240n);
    expect(r2.repayment!.allocations).toEqual([
      { instalment: 1, component: C.REPAYMENT_COMPONENT_PRINCIPAL, amount: 39_365n },
      { instalment: 1, component: C.REPAYMENT_COMPONENT_INTEREST, amount: 2_875n },
      { instalment: 2, component: C.REPAYMENT_COMPONENT_PRINCIPAL, amount: 1_000n },
    ]);
    // Principal 500,000 - 41,365 = 458,635 outstanding, and the ledger says the same.
    expect((await agrees(b.loan.id)).principalOutstanding).toBe(458_635n);

    // The catalog refuses an order that is not a permutation of the four, naming the field.
    await expectRpcError(
      t.peers.catalog.client.createProduct(
        loanProduct({ loan: loanTerms({ repaymentOrder: [...order, O.REPAYMENT_ORDER_COMPONENT_PRINCIPAL] }) }),
      ),
      status.INVALID_ARGUMENT,
      'loan.repayment_order',
    );
    await expectRpcError(
      t.peers.catalog.client.createProduct(
        loanProduct({
          loan: loanTerms({
            prepaymentStrategy: P.PREPAYMENT_STRATEGY_REDUCE_TERM,
            scheduleType: 4, // FLAT
          }),
        }),
      ),
      status.INVALID_ARGUMENT,
      'loan.prepayment_strategy',
    );
  });

  it('REDUCE_TERM: the same instalment, fewer instalments', async () => {
    const b = await borrower(await product({ prepaymentStrategy: P.PREPAYMENT_STRATEGY_REDUCE_TERM }));
    // The running instalment exactly: no prepayment, the schedule unchanged.
    const exact = await b.repay(43_240n);
    expect(exact.repayment).toMatchObject({ prepaidPrincipal: 0n, scheduleVersion: 0 });
    expect(exact.loan!.scheduleVersion).toBe(1);

    // 100,000 more, on the disbursement date. Instalment 1 is paid and still running (due in a month), so
    // all 100,000 is prepaid principal, booked on instalment 1: 459,635 - 100,000 = 359,635 left.
    const r = await b.repay(100_000n);
    expect(r.repayment).toMatchObject({
      status: S.REPAYMENT_STATUS_APPLIED,
      principal: 100_000n,
      interest: 0n,
      prepaidPrincipal: 100_000n,
      scheduleVersion: 2,
      allocations: [{ instalment: 1, component: C.REPAYMENT_COMPONENT_PRINCIPAL, amount: 100_000n }],
    });
    // Instalments 2.. recomputed at 43,240 on 359,635, interest = balance x 0.00575, half-even:
    //   2: 359,635 x 0.00575 = 2,067.9 -> 2,068, principal 41,172, left 318,463
    //   3: 318,463 -> 1,831.2 -> 1,831, principal 41,409, left 277,054
    //   4: 1,593.1 -> 1,593, 41,647, 235,407     5: 1,353.6 -> 1,354, 41,886, 193,521
    //   6: 1,112.75 -> 1,113, 42,127, 151,394    7: 870.5 -> 871 (half-even: 870.51), 42,369, 109,025
    //   8: 626.9 -> 627, 42,613, 66,412          9: 381.9 -> 382, 42,858, 23,554
    //  10: 135.4 -> 135, and the last takes the 23,554 left: 23,689. Instalments 11 and 12 are gone.
    const { schedule, loan } = await t.client.getLoanSchedule({ loanId: b.loan.id });
    expect(schedule!.scheduleVersion).toBe(2);
    expect(schedule!.instalmentAmount).toBe(43_240n);
    const rows = schedule!.instalments.map((i) => [i.number, i.principalDue, i.interestDue, i.outstandingAfter]);
    expect(rows).toEqual([
      [1, 140_365n, 2_875n, 359_635n],
      [2, 41_172n, 2_068n, 318_463n],
      [3, 41_409n, 1_831n, 277_054n],
      [4, 41_647n, 1_593n, 235_407n],
      [5, 41_886n, 1_354n, 193_521n],
      [6, 42_127n, 1_113n, 151_394n],
      [7, 42_369n, 871n, 109_025n],
      [8, 42_613n, 627n, 66_412n],
      [9, 42_858n, 382n, 23_554n],
      [10, 23_554n, 135n, 0n],
    ]);
    // Principal still sums to the loan's; interest 2,875 + 9,974 = 12,849 (was 18,883).
    expect(schedule!.totalPrincipal).toBe(500_000n);
    expect(schedule!.totalInterest).toBe(12_849n);
    expect(loan).toMatchObject({ principalOutstanding: 359_635n, interestOutstanding: 9_974n, scheduleVersion: 2 });
    await agrees(b.loan.id);
    const [event] = await rescheduled(b.loan.id);
    expect(event).toMatchObject({
      scheduleVersion: 2,
      repaymentId: r.repayment!.id,
      prepaidPrincipal: 100_000n,
      strategy: P.PREPAYMENT_STRATEGY_REDUCE_TERM,
      reverted: false,
    });
    expect(event!.instalments).toHaveLength(10);
  });

  it('REDUCE_INSTALMENT: the same number of instalments, a lower instalment', async () => {
    const b = await borrower(await product({ prepaymentStrategy: P.PREPAYMENT_STRATEGY_REDUCE_INSTALMENT }));
    // 143,240 at once: instalment 1 (2,875 interest + 40,365 principal = 43,240), then 100,000 prepaid.
    const r = await b.repay(143_240n);
    expect(r.repayment).toMatchObject({ principal: 140_365n, interest: 2_875n, prepaidPrincipal: 100_000n });
    expect(r.repayment!.allocations).toEqual([
      { instalment: 1, component: C.REPAYMENT_COMPONENT_INTEREST, amount: 2_875n },
      { instalment: 1, component: C.REPAYMENT_COMPONENT_PRINCIPAL, amount: 40_365n },
      { instalment: 1, component: C.REPAYMENT_COMPONENT_PRINCIPAL, amount: 100_000n },
    ]);
    // 359,635 over the 11 instalments left: 359,635 x 0.00575 / (1 - 1.00575^-11) = 33,832.9 -> 33,833.
    //   2: 2,068 interest (as above), principal 31,765, left 327,870
    //   3: 327,870 x 0.00575 = 1,885.25 -> 1,885, 31,948, 295,922
    //   ... each period's interest on its balance, principal 33,833 - interest ...
    //  10: 100,341 x 0.00575 = 576.96 -> 577, 33,256, 67,085
    //  11: 67,085 x 0.00575 = 385.7 -> 386, 33,447, 33,638
    //  12: 33,638 x 0.00575 = 193.4 -> 193, and the last takes the 33,638 left: 33,831.
    const { schedule } = await t.client.getLoanSchedule({ loanId: b.loan.id });
    expect(schedule!.instalmentAmount).toBe(33_833n);
    const rows = schedule!.instalments.map((i) => [i.number, i.principalDue, i.interestDue, i.outstandingAfter]);
    expect(rows).toEqual([
      [1, 140_365n, 2_875n, 359_635n],
      [2, 31_765n, 2_068n, 327_870n],
      [3, 31_948n, 1_885n, 295_922n],
      [4, 32_131n, 1_702n, 263_791n],
      [5, 32_316n, 1_517n, 231_475n],
      [6, 32_502n, 1_331n, 198_973n],
      [7, 32_689n, 1_144n, 166_284n],
      [8, 32_877n, 956n, 133_407n],
      [9, 33_066n, 767n, 100_341n],
      [10, 33_256n, 577n, 67_085n],
      [11, 33_447n, 386n, 33_638n],
      [12, 33_638n, 193n, 0n],
    ]);
    // Interest 2,875 + 12,526 = 15,401.
    expect(schedule!.totalInterest).toBe(15_401n);
    expect((await agrees(b.loan.id)).principalOutstanding).toBe(359_635n);
  });

  it('refuses more than the payoff, and undoes a reschedule the ledger refuses', async () => {
    const b = await borrower(await product({ prepaymentStrategy: P.PREPAYMENT_STRATEGY_REDUCE_INSTALMENT }));
    // Today's payoff: 500,000 (nothing accrued on the disbursement date). One more is refused; nothing written.
    const before = await loanCounts(t.app);
    const err = await expectRpcError(
      b.repay(500_001n),
      status.FAILED_PRECONDITION,
      'amount',
      'REPAYMENT_EXCEEDS_PAYOFF',
    );
    expect(errorDetails(err as ServiceError).metadata.payoff_total).toBe('500000');
    expect(await loanCounts(t.app)).toEqual(before);

    // From an empty account: the ledger refuses; the allocation is taken back and the schedule is
    // put back as it was, as version 3.
    const original = (await t.client.getLoanSchedule({ loanId: b.loan.id })).schedule!;
    const empty = await depositAccount(t, b.customer.id, depositProductId, 0n);
    const key = randomUUID();
    const refused = await b.repay(143_240n, { fromAccountId: empty.id, idempotencyKey: key });
    expect(refused.repayment).toMatchObject({ status: S.REPAYMENT_STATUS_REFUSED, scheduleVersion: 2 });
    const back = await t.client.getLoanSchedule({ loanId: b.loan.id });
    expect(back.schedule!.instalments).toEqual(original.instalments);
    expect(back.schedule!.instalmentAmount).toBe(43_240n);
    expect(back.loan).toMatchObject({ scheduleVersion: 3, totalPaid: 0n, principalOutstanding: 500_000n });
    const events = await rescheduled(b.loan.id);
    expect(events.map((e) => [e.scheduleVersion, e.reverted])).toEqual([[3, true]]);
    // The same key again replays the refusal; the schedule stays.
    const replay = await b.repay(143_240n, { fromAccountId: empty.id, idempotencyKey: key });
    expect(replay).toMatchObject({ replayed: true, repayment: { status: S.REPAYMENT_STATUS_REFUSED } });
    await agrees(b.loan.id);

    // A prepayment from the funded account then reschedules as version 4; replayed by its key.
    const k2 = randomUUID();
    const ok = await b.repay(143_240n, { idempotencyKey: k2 });
    expect(ok.repayment).toMatchObject({ status: S.REPAYMENT_STATUS_APPLIED, scheduleVersion: 4 });
    const again = await b.repay(143_240n, { idempotencyKey: k2 });
    expect(again.replayed).toBe(true);
    expect(again.repayment).toEqual(ok.repayment);
    expect((await balances(t.bank, b.account.id)).debitsPosted).toBe(143_240n);
    expect((await agrees(b.loan.id)).principalOutstanding).toBe(359_635n);
  });

  it('books concurrent prepayments of one loan one after the other, never allocating twice', async () => {
    const b = await borrower(await product({ prepaymentStrategy: P.PREPAYMENT_STRATEGY_REDUCE_TERM }));
    // Five of 50,000 at once; one that finds another's prepayment still being booked is ABORTED
    // (PREPAYMENT_IN_FLIGHT) and retried with its key, as a channel does.
    const once = async (key: string): Promise<void> => {
      try {
        await b.repay(50_000n, { idempotencyKey: key });
      } catch (err) {
        if ((err as ServiceError).code !== status.ABORTED) throw err;
        await new Promise((r) => setTimeout(r, 20));
        return once(key);
      }
    };
    await Promise.all(Array.from({ length: 5 }, () => once(randomUUID())));
    // 250,000 in all: instalment 1's 43,240 (the first one to be booked), then 206,760 prepaid.
    const { schedule, loan } = await t.client.getLoanSchedule({ loanId: b.loan.id });
    expect(loan).toMatchObject({ totalPaid: 250_000n, scheduleVersion: 6 });
    expect(schedule!.instalments[0]).toMatchObject({
      interestPaid: 2_875n,
      principalPaid: 40_365n + 206_760n,
      principalDue: 40_365n + 206_760n,
      outstandingAfter: 500_000n - 40_365n - 206_760n,
    });
    expect(schedule!.totalPrincipal).toBe(500_000n);
    expect((await agrees(b.loan.id)).principalOutstanding).toBe(500_000n - 247_125n);
    expect((await balances(t.bank, b.account.id)).debitsPosted).toBe(250_000n);
  });

  it('WEEKLY: the term in weeks, a 364-day year, as Fineract schedules it', async () => {
    const id = await product({
      annualRate: '10',
      repaymentPeriod: RepaymentPeriod.REPAYMENT_PERIOD_WEEKLY,
      dayCount: DayCount.DAY_COUNT_ACT_364,
      minTermMonths: 4,
      maxTermMonths: 52,
    });
    // 1,000.00 at 10 % over 10 weeks, ACT/364. Fineract's weekly rate: (10 / 364) / 100 =
    // 0.000274725274725 a day (12 significant digits), x 7 = 0.00192307692308 (= 10 % x 7 / 364).
    // Instalment 100,000 x i / (1 - (1+i)^-10) = 10,105.8 -> 10,106. Every period is 7 days, so:
    //   1: 100,000 x i = 192.3 -> 192, principal 9,914, left 90,086
    //   2:  90,086 x i = 173.2 -> 173, 9,933, 80,153    3: 154.1 -> 154, 9,952, 70,201
    //   4: 135.0 -> 135, 9,971, 60,230                   5: 115.8 -> 116, 9,990, 50,240
    //   6:  96.6 ->  97, 10,009, 40,231                  7:  77.4 ->  77, 10,029, 30,202
    //   8:  58.1 ->  58, 10,048, 20,154                  9:  38.8 ->  39, 10,067, 10,087
    //  10:  19.4 ->  19, and the last takes the 10,087 left: 10,106. Interest in all 1,060.
    const expected = [
      [9_914n, 192n, 90_086n],
      [9_933n, 173n, 80_153n],
      [9_952n, 154n, 70_201n],
      [9_971n, 135n, 60_230n],
      [9_990n, 116n, 50_240n],
      [10_009n, 97n, 40_231n],
      [10_029n, 77n, 30_202n],
      [10_048n, 58n, 20_154n],
      [10_067n, 39n, 10_087n],
      [10_087n, 19n, 0n],
    ];
    const amounts = (s: { instalments: { principalDue: bigint; interestDue: bigint; outstandingAfter: bigint }[] }) =>
      s.instalments.map((i) => [i.principalDue, i.interestDue, i.outstandingAfter]);
    const preview = await t.client.previewSchedule({
      productId: id,
      productVersion: 0,
      amount: 100_000n,
      termMonths: 10,
      startDate: '2024-01-01',
    });
    expect(amounts(preview.schedule!)).toEqual(expected);
    expect(preview.schedule).toMatchObject({ instalmentAmount: 10_106n, totalInterest: 1_060n });
    expect(preview.schedule!.instalments.map((i) => i.dueDate)).toEqual([
      '2024-01-08',
      '2024-01-15',
      '2024-01-22',
      '2024-01-29',
      '2024-02-05',
      '2024-02-12',
      '2024-02-19',
      '2024-02-26',
      '2024-03-04',
      '2024-03-11',
    ]);

    // A loan on it: the same amounts, due every 7 days from today. The scorecard weighs a month of
    // instalments against the monthly income: 10,106 x 52 / 12 = 43,792.7 -> 43,793.
    const b = await borrower(id, 100_000n, 10, 200_000n);
    expect(b.application.reasons.find((r) => r.code === 'INSTALMENT_TO_INCOME')!.detail).toMatch(/^instalment 43793 /);
    const { schedule } = await t.client.getLoanSchedule({ loanId: b.loan.id });
    expect(amounts(schedule!)).toEqual(expected);
    expect(schedule!.instalments.every((i) => i.days === 7)).toBe(true);
    expect(schedule!.instalments[0]!.fromDate).toBe(b.loan.disbursedOn);

    // A term outside the product's weeks is refused naming term_months; ACT_364 is for weekly products only.
    await expectRpcError(
      t.client.previewSchedule({ productId: id, productVersion: 0, amount: 100_000n, termMonths: 53, startDate: '' }),
      status.FAILED_PRECONDITION,
      'term_months',
      'OUTSIDE_PRODUCT_RANGE',
    );
    await expectRpcError(
      t.peers.catalog.client.createProduct(loanProduct({ loan: loanTerms({ dayCount: DayCount.DAY_COUNT_ACT_364 }) })),
      status.INVALID_ARGUMENT,
      'loan.day_count',
    );
  });
});
