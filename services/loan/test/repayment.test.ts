// RepayLoan: the default waterfall with amounts worked by hand, the ledger transfers behind it,
// overpayment refused, payoff, idempotency, refusals, concurrent repayments, a crash between the
// ledger and the commit, and customer binding. On 1 and 3 shards.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { errorDetails } from '@corebank/kit';
import { SystemAccountKind } from '@corebank/kit/gen/corebank/v1/account';
import {
  LoanStatus as L,
  RepaymentComponent as C,
  RepaymentKind as K,
  RepaymentStatus as S,
  type RepayLoanRequest,
} from '@corebank/kit/gen/corebank/v1/loan';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError } from '../../account/test/helpers.js';
import { SUBJECTS } from '../src/events.js';
import {
  TEST_SCORECARD,
  applyingCustomer,
  depositAccount,
  loanCounts,
  publishedDeposit,
  publishedLoan,
  startLoans,
  type TestLoans,
} from './harness.js';

describe.each([1, 3])('loan repayments on %i shard(s)', (shards) => {
  let t: TestLoans;
  let loanProductId: string;
  let depositProductId: string;
  beforeAll(async () => {
    t = await startLoans(shards, {
      LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD),
      DISBURSEMENT_SWEEP_INTERVAL_MS: '100',
      DISBURSEMENT_SWEEP_AGE_MS: '0',
    });
    loanProductId = (await publishedLoan(t, { annualRate: '6.9', annualRateBps: 0 })).productId;
    depositProductId = (await publishedDeposit(t)).productId;
  });
  afterAll(async () => t?.stop());

  /**
   * A LOW-tier borrower (approved: 50 points) with 3,000.00, and their disbursed loan of 5,000.00
   * over 12 months at 6.9 % (30/360, i = 0.00575): instalment 43,240; instalment 1 is interest
   * 500,000 × 0.00575 = 2,875 + principal 40,365; instalment 2 is interest 459,635 × 0.00575 =
   * 2,642.9 -> 2,643 + principal 40,597; in all 518,883 (interest 18,883).
   */
  async function borrower() {
    const {
      customer: c,
      account,
      request,
    } = await applyingCustomer(t, {
      loanProductId,
      depositProductId,
      tier: RiskTier.RISK_TIER_LOW,
    });
    const res = await t.client.applyForLoan(request());
    expect(res.loan!.status).toBe(L.LOAN_STATUS_ACTIVE);
    const repay = (amount: bigint, o: Partial<RepayLoanRequest> = {}) =>
      t.client.repayLoan({ loanId: res.loan!.id, idempotencyKey: randomUUID(), amount, fromAccountId: '', ...o });
    return { customer: c, account, loan: res.loan!, repay };
  }

  const interestIncome = async (shard: number) => {
    const { accounts } = await t.bank.client.listSystemAccounts({});
    return accounts.find(
      (s) =>
        s.kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME &&
        s.account!.shard === shard &&
        s.account!.currency === 'EUR',
    )!.account!;
  };

  it('allocates by the waterfall, books principal and interest in the ledger, refuses overpayment, pays off', async () => {
    const b = await borrower();
    const incomeBefore = (await interestIncome(b.account.shard)).creditsPosted;

    // 1,000: instalment 1's interest first (2,875 due): all 1,000 is interest.
    const r1 = await b.repay(1_000n);
    expect(r1.repayment).toMatchObject({
      status: S.REPAYMENT_STATUS_APPLIED,
      principal: 0n,
      interest: 1_000n,
      fees: 0n,
      penalties: 0n,
      principalTransferId: '',
      allocations: [{ instalment: 1, component: C.REPAYMENT_COMPONENT_INTEREST, amount: 1_000n }],
    });

    // 43,240: the rest of instalment 1 (interest 1,875, principal 40,365 = 42,240), then 1,000 of
    // instalment 2's interest (2,643 due).
    const r2 = await b.repay(43_240n);
    expect(r2.repayment!.allocations).toEqual([
      { instalment: 1, component: C.REPAYMENT_COMPONENT_INTEREST, amount: 1_875n },
      { instalment: 1, component: C.REPAYMENT_COMPONENT_PRINCIPAL, amount: 40_365n },
      { instalment: 2, component: C.REPAYMENT_COMPONENT_INTEREST, amount: 1_000n },
    ]);
    expect(r2.repayment).toMatchObject({ principal: 40_365n, interest: 2_875n });
    // Owed now: principal 500,000 - 40,365 = 459,635; interest 18,883 - 3,875 = 15,008.
    expect(r2.loan).toMatchObject({
      status: L.LOAN_STATUS_ACTIVE,
      principalOutstanding: 459_635n,
      interestOutstanding: 15_008n,
      totalOutstanding: 474_643n,
      totalPaid: 44_240n,
    });
    const { schedule } = await t.client.getLoanSchedule({ loanId: b.loan.id });
    expect(schedule!.instalments[0]).toMatchObject({ principalPaid: 40_365n, interestPaid: 2_875n });
    expect(schedule!.instalments[1]).toMatchObject({ principalPaid: 0n, interestPaid: 1_000n });

    // The ledger: 44,240 out of the deposit account; 40,365 back on the loan's account (its balance,
    // debits - credits, is the principal outstanding); 3,875 to interest income.
    expect((await balances(t.bank, b.account.id)).debitsPosted).toBe(44_240n);
    const ledger = await balances(t.bank, b.loan.ledgerAccountId);
    expect(ledger.debitsPosted - ledger.creditsPosted).toBe(459_635n);
    expect((await interestIncome(b.account.shard)).creditsPosted - incomeBefore).toBe(3_875n);
    const { transfer } = await t.bank.client.getTransfer({ transferId: r2.repayment!.principalTransferId });
    expect(transfer).toMatchObject({ debitAccountId: b.account.id, creditAccountId: b.loan.ledgerAccountId });

    // One minor unit more than is owed is refused, and nothing is written.
    const before = await loanCounts(t.app);
    const err = await expectRpcError(
      b.repay(474_644n),
      status.FAILED_PRECONDITION,
      'amount',
      'REPAYMENT_EXCEEDS_OUTSTANDING',
    );
    expect(errorDetails(err as ServiceError).metadata.outstanding).toBe('474643');
    expect(await loanCounts(t.app)).toEqual(before);

    // Exactly what is owed pays the loan off: every instalment in full, the loan's account at zero.
    const last = await b.repay(474_643n);
    expect(last.loan).toMatchObject({ status: L.LOAN_STATUS_PAID_OFF, totalOutstanding: 0n, totalPaid: 518_883n });
    const closed = await balances(t.bank, b.loan.ledgerAccountId);
    expect([closed.debitsPosted, closed.creditsPosted]).toEqual([500_000n, 500_000n]);
    expect((await interestIncome(b.account.shard)).creditsPosted - incomeBefore).toBe(18_883n);
    await expectRpcError(b.repay(1n), status.FAILED_PRECONDITION, 'loan_id', 'LOAN_NOT_ACTIVE');

    const subjects = (
      (await t.app.router.byId(b.loan.id)!.db('outbox').select('subject').orderBy('seq')) as { subject: string }[]
    ).map((r) => r.subject);
    expect(subjects.filter((s) => s === SUBJECTS.repaymentApplied).length).toBeGreaterThanOrEqual(3);
    expect(subjects).toContain(SUBJECTS.paidOff);
    expect((await t.bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it('is idempotent by loan and key, and a ledger refusal releases the allocation for good', async () => {
    const b = await borrower();
    const key = randomUUID();
    const first = await b.repay(5_000n, { idempotencyKey: key });
    const again = await b.repay(5_000n, { idempotencyKey: key });
    expect(again.replayed).toBe(true);
    expect(again.repayment).toEqual(first.repayment);
    expect((await balances(t.bank, b.account.id)).debitsPosted).toBe(5_000n);
    await expectRpcError(
      b.repay(6_000n, { idempotencyKey: key }),
      status.ALREADY_EXISTS,
      'idempotency_key',
      'REPAYMENT_EXISTS_WITH_DIFFERENT_BODY',
    );

    // From an empty account of the borrower: the ledger refuses (EXCEEDS_CREDITS); nothing stays allocated.
    const empty = await depositAccount(t, b.customer.id, depositProductId, 0n);
    const refusedKey = randomUUID();
    const refused = await b.repay(2_000n, { idempotencyKey: refusedKey, fromAccountId: empty.id });
    expect(refused.repayment).toMatchObject({ status: S.REPAYMENT_STATUS_REFUSED, refusal: 'EXCEEDS_CREDITS' });
    expect(refused.loan!.totalPaid).toBe(5_000n);
    const replay = await b.repay(2_000n, { idempotencyKey: refusedKey, fromAccountId: empty.id });
    expect(replay.repayment!.status).toBe(S.REPAYMENT_STATUS_REFUSED);
    expect((await t.client.getLoan({ loanId: b.loan.id })).loan!.totalPaid).toBe(5_000n);
  });

  it('never allocates the same amount twice under concurrent repayments', async () => {
    const b = await borrower();
    const results = await Promise.all(Array.from({ length: 10 }, () => b.repay(1_000n)));
    expect(results.every((r) => r.repayment!.status === S.REPAYMENT_STATUS_APPLIED)).toBe(true);
    // 10,000 in all: instalment 1's interest 2,875, then 7,125 of its principal.
    const { schedule, loan } = await t.client.getLoanSchedule({ loanId: b.loan.id });
    expect(schedule!.instalments[0]).toMatchObject({ interestPaid: 2_875n, principalPaid: 7_125n });
    expect(loan!.totalPaid).toBe(10_000n);
    const sum = results.reduce(
      (s, r) => ({ principal: s.principal + r.repayment!.principal, interest: s.interest + r.repayment!.interest }),
      { principal: 0n, interest: 0n },
    );
    expect(sum).toEqual({ principal: 7_125n, interest: 2_875n });
    const ledger = await balances(t.bank, b.loan.ledgerAccountId);
    expect(ledger.creditsPosted).toBe(7_125n);
    expect((await balances(t.bank, b.account.id)).debitsPosted).toBe(10_000n);
  });

  it('moves the money once when a crash leaves a repayment pending (retry and sweeper)', async () => {
    const b = await borrower();
    const key = randomUUID();
    const done = await b.repay(3_000n, { idempotencyKey: key });
    const db = t.app.router.byId(b.loan.id)!.db;
    // A crash after the ledger transfers and before the commit: the repayment is PENDING again.
    const forget = () =>
      db('loan_repayments').where('id', done.repayment!.id).update({ status: S.REPAYMENT_STATUS_PENDING });
    await forget();
    const retried = await b.repay(3_000n, { idempotencyKey: key });
    expect(retried.repayment!.status).toBe(S.REPAYMENT_STATUS_APPLIED);
    expect(retried.replayed).toBe(true);
    await forget();
    await expect
      .poll(async () => (await db('loan_repayments').where('id', done.repayment!.id).first()).status, {
        timeout: 10_000,
      })
      .toBe(S.REPAYMENT_STATUS_APPLIED);
    expect((await balances(t.bank, b.account.id)).debitsPosted).toBe(3_000n);
    expect((await t.client.getLoan({ loanId: b.loan.id })).loan!.totalPaid).toBe(3_000n);
  });

  it('quotes a payoff as of a date', async () => {
    const b = await borrower();
    const today = b.loan.disbursedOn;
    // On the disbursement date nothing has accrued: the principal alone.
    const q0 = await t.client.getPayoffQuote({ loanId: b.loan.id, asOf: '' });
    expect(q0).toMatchObject({ asOf: today, principal: 500_000n, interest: 0n, total: 500_000n });
    // On the first due date: instalment 1's whole interest (2,875); with 1,000 of it paid, 1,875.
    const { schedule } = await t.client.getLoanSchedule({ loanId: b.loan.id });
    const due1 = schedule!.instalments[0]!.dueDate;
    await b.repay(1_000n);
    const q1 = await t.client.getPayoffQuote({ loanId: b.loan.id, asOf: due1 });
    expect(q1).toMatchObject({ asOf: due1, principal: 500_000n, interest: 1_875n, total: 501_875n });
    await expectRpcError(
      t.client.getPayoffQuote({ loanId: b.loan.id, asOf: '2000-01-01' }),
      status.INVALID_ARGUMENT,
      'as_of',
    );
    await expectRpcError(
      t.client.getPayoffQuote({ loanId: b.loan.id, asOf: '2024-13-01' }),
      status.INVALID_ARGUMENT,
      'as_of',
    );
    const other = await borrower();
    const asOther = await t.clientWith(['loans:read'], other.customer.id);
    await expectRpcError(asOther.getPayoffQuote({ loanId: b.loan.id, asOf: '' }), status.NOT_FOUND, 'loan_id');
    // A paid-off loan has nothing to quote.
    const rest = (await t.client.getLoan({ loanId: b.loan.id })).loan!.totalOutstanding;
    await b.repay(rest);
    await expectRpcError(
      t.client.getPayoffQuote({ loanId: b.loan.id, asOf: '' }),
      status.FAILED_PRECONDITION,
      'loan_id',
      'LOAN_NOT_ACTIVE',
    );
  });

  it('pays a loan off today for its quote, waiving the interest not yet accrued (given back if refused)', async () => {
    const b = await borrower();
    await b.repay(1_000n); // instalment 1's interest, paid ahead
    const quote = await t.client.getPayoffQuote({ loanId: b.loan.id, asOf: '' });
    // Disbursed today: nothing has accrued, and the 1,000 paid ahead is kept: the principal alone.
    expect(quote).toMatchObject({ principal: 500_000n, interest: 0n, total: 500_000n });
    const before = await loanCounts(t.app);
    const err = await expectRpcError(
      t.client.payOff({ loanId: b.loan.id, idempotencyKey: randomUUID(), fromAccountId: '', expectedTotal: 499_999n }),
      status.FAILED_PRECONDITION,
      'expected_total',
      'PAYOFF_AMOUNT_CHANGED',
    );
    expect(errorDetails(err as ServiceError).metadata.total).toBe('500000');
    expect(await loanCounts(t.app)).toEqual(before);

    // From an empty account the ledger refuses: the waiver is given back, the schedule is whole again.
    const empty = await depositAccount(t, b.customer.id, depositProductId, 0n);
    const refused = await t.client.payOff({
      loanId: b.loan.id,
      idempotencyKey: randomUUID(),
      fromAccountId: empty.id,
      expectedTotal: 0n,
    });
    expect(refused.repayment).toMatchObject({ status: S.REPAYMENT_STATUS_REFUSED, refusal: 'EXCEEDS_CREDITS' });
    const whole = (await t.client.getLoanSchedule({ loanId: b.loan.id })).schedule!;
    expect(whole.totalInterest).toBe(18_883n);
    expect(refused.loan).toMatchObject({ status: L.LOAN_STATUS_ACTIVE, totalOutstanding: 517_883n });

    const key = randomUUID();
    const paid = await t.client.payOff({
      loanId: b.loan.id,
      idempotencyKey: key,
      fromAccountId: '',
      expectedTotal: 500_000n,
    });
    // 500,000 of principal; of the 18,883 scheduled interest 1,000 was paid and 17,883 is waived.
    expect(paid.repayment).toMatchObject({
      kind: K.REPAYMENT_KIND_PAYOFF,
      status: S.REPAYMENT_STATUS_APPLIED,
      amount: 500_000n,
      principal: 500_000n,
      interest: 0n,
      interestWaived: 17_883n,
    });
    expect(paid.loan).toMatchObject({ status: L.LOAN_STATUS_PAID_OFF, totalOutstanding: 0n, totalPaid: 501_000n });
    const after = (await t.client.getLoanSchedule({ loanId: b.loan.id })).schedule!;
    expect(after.totalInterest).toBe(1_000n);
    const ledger = await balances(t.bank, b.loan.ledgerAccountId);
    expect([ledger.debitsPosted, ledger.creditsPosted]).toEqual([500_000n, 500_000n]);
    expect((await balances(t.bank, b.account.id)).debitsPosted).toBe(501_000n);
    const again = await t.client.payOff({
      loanId: b.loan.id,
      idempotencyKey: key,
      fromAccountId: '',
      expectedTotal: 500_000n,
    });
    expect(again.replayed).toBe(true);
    expect(again.repayment).toEqual(paid.repayment);
  });

  it('names bad fields, and repays only from the borrower and for the borrower', async () => {
    const b = await borrower();
    const other = await borrower();
    const before = await loanCounts(t.app);
    await expectRpcError(b.repay(0n), status.INVALID_ARGUMENT, 'amount');
    await expectRpcError(b.repay(1n, { idempotencyKey: '' }), status.INVALID_ARGUMENT, 'idempotency_key');
    await expectRpcError(b.repay(1n, { fromAccountId: 'x' }), status.INVALID_ARGUMENT, 'from_account_id');
    await expectRpcError(b.repay(1n, { loanId: '' }), status.INVALID_ARGUMENT, 'loan_id');
    await expectRpcError(
      b.repay(1n, { fromAccountId: other.account.id }),
      status.FAILED_PRECONDITION,
      'from_account_id',
      'ACCOUNT_NOT_OWNED',
    );
    const asOther = await t.clientWith(['loans:read', 'loans:write'], other.customer.id);
    await expectRpcError(
      asOther.repayLoan({ loanId: b.loan.id, idempotencyKey: 'k', amount: 1n, fromAccountId: '' }),
      status.NOT_FOUND,
      'loan_id',
    );
    expect(await loanCounts(t.app)).toEqual(before);
    const asB = await t.clientWith(['loans:write'], b.customer.id);
    const own = await asB.repayLoan({ loanId: b.loan.id, idempotencyKey: 'k', amount: 1n, fromAccountId: '' });
    expect(own.repayment!.status).toBe(S.REPAYMENT_STATUS_APPLIED);
  });
});
