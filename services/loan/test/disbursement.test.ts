// Disbursement: an approved application becomes an ACTIVE loan within the call, its principal paid
// from the loan's own ledger account into the borrower's deposit account by one transfer whose id
// is fixed by the loan; retries, concurrent retries, a crash between the ledger and the loan's
// commit, and the sweeper all move the money exactly once. On 1 and 3 shards.
import { status } from '@grpc/grpc-js';
import { LoanChanged } from '@corebank/kit/gen/corebank/v1/events';
import { ApplicationState as A, LoanStatus as L } from '@corebank/kit/gen/corebank/v1/loan';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError } from '../../account/test/helpers.js';
import { SUBJECTS } from '../src/events.js';
import {
  applyingCustomer,
  TEST_SCORECARD,
  closingDay,
  publishedDeposit,
  publishedLoan,
  startLoans,
  type TestLoans,
} from './harness.js';

describe.each([1, 3])('loan disbursement on %i shard(s)', (shards) => {
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

  /** An applicant the test scorecard approves (LOW: 50 points) or refers (MEDIUM: 30), with 3,000.00 in. */
  const applicant = (tier = RiskTier.RISK_TIER_LOW) => applyingCustomer(t, { loanProductId, depositProductId, tier });

  /** Simulates a crash after the ledger transfer and before the loan's commit: the loan is pending again. */
  async function forgetDisbursement(loanId: string) {
    const db = t.app.router.byId(loanId)!.db;
    await db.transaction(async (tx) => {
      await tx('loan_instalments').where('loan_id', loanId).delete();
      await tx('loans')
        .where('id', loanId)
        .update({ status: L.LOAN_STATUS_PENDING_DISBURSEMENT, disbursed_on: null, ledger_account_id: null });
    });
  }

  it('disburses an approved application within the call, with its schedule fixed from today', async () => {
    const a = await applicant();
    const res = await t.client.applyForLoan(a.request());
    expect(res.application!.state).toBe(A.APPLICATION_STATE_APPROVED);
    const loan = res.loan!;
    const today = new Date().toISOString().slice(0, 10);
    expect(loan).toMatchObject({
      id: res.application!.loanId,
      applicationId: res.application!.id,
      customerId: a.customer.id,
      status: L.LOAN_STATUS_ACTIVE,
      principal: 500_000n,
      annualRate: '6.9',
      disbursedOn: today,
      principalOutstanding: 500_000n,
      totalPaid: 0n,
    });
    // 12 × 43,240 + 3 (the last instalment's residue) = 518,883; interest 18,883.
    expect(loan.interestOutstanding).toBe(18_883n);
    expect(loan.totalOutstanding).toBe(518_883n);

    // The money: 3,000.00 + 5,000.00 in the deposit account; the loan's ledger account owes 5,000.00.
    expect((await balances(t.bank, a.account.id)).creditsPosted).toBe(800_000n);
    const ledger = await balances(t.bank, loan.ledgerAccountId);
    expect(ledger).toMatchObject({ ownerId: a.customer.id, code: 7000, debitsPosted: 500_000n, creditsPosted: 0n });
    expect(ledger.flags!.creditsMustNotExceedDebits).toBe(true);
    const { transfer } = await t.bank.client.getTransfer({ transferId: loan.disbursementTransferId });
    expect(transfer).toMatchObject({
      debitAccountId: loan.ledgerAccountId,
      creditAccountId: a.account.id,
      amount: 500_000n,
    });

    // The schedule fixed at disbursement is the quote for today (as its version 1; a quote has none).
    const { schedule } = await t.client.getLoanSchedule({ loanId: loan.id });
    const quote = await t.client.previewSchedule({
      productId: loanProductId,
      productVersion: 1,
      amount: 500_000n,
      termMonths: 12,
      startDate: today,
    });
    expect(schedule).toEqual({ ...quote.schedule, scheduleVersion: 1 });

    const events = (await t.app.router.byId(loan.id)!.db('outbox').select('subject', 'payload').orderBy('seq')).filter(
      (r: { subject: string }) => r.subject === SUBJECTS.disbursed,
    ) as { payload: Buffer }[];
    expect(events.map((e) => LoanChanged.decode(e.payload).loan!.id)).toContain(loan.id);
  });

  it('moves the money once under retries, concurrent retries, a crash and the sweeper', async () => {
    const a = await applicant();
    const req = a.request();
    const first = await t.client.applyForLoan(req);
    const loanId = first.loan!.id;
    const after = async () => (await balances(t.bank, a.account.id)).creditsPosted;
    expect(await after()).toBe(800_000n);

    const again = await t.client.applyForLoan(req);
    expect(again.replayed).toBe(true);
    expect(again.loan).toEqual(first.loan);
    await Promise.all(Array.from({ length: 5 }, () => t.client.applyForLoan(req)));
    expect(await after()).toBe(800_000n);

    // Crash after the transfer, before the loan's commit: a retry replays the ledger's result.
    await forgetDisbursement(loanId);
    const resumed = await Promise.all(Array.from({ length: 3 }, () => t.client.applyForLoan(req)));
    expect(resumed.map((r) => r.loan!.status)).toEqual([
      L.LOAN_STATUS_ACTIVE,
      L.LOAN_STATUS_ACTIVE,
      L.LOAN_STATUS_ACTIVE,
    ]);
    expect(resumed[0]!.loan!.ledgerAccountId).toBe(first.loan!.ledgerAccountId);
    expect(await after()).toBe(800_000n);

    // The same, left to the sweeper.
    await forgetDisbursement(loanId);
    await expect
      .poll(async () => (await t.client.getLoan({ loanId })).loan!.status, { timeout: 10_000 })
      .toBe(L.LOAN_STATUS_ACTIVE);
    expect(await after()).toBe(800_000n);
    expect((await balances(t.bank, first.loan!.ledgerAccountId)).debitsPosted).toBe(500_000n);
    const { schedule } = await t.client.getLoanSchedule({ loanId });
    expect(schedule!.instalments).toHaveLength(12);

    expect((await t.bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it('disburses what a reviewer approves, and refuses a customer no longer eligible', async () => {
    const a = await applicant(RiskTier.RISK_TIER_MEDIUM);
    const { application } = await t.client.applyForLoan(a.request());
    expect(application!.state).toBe(A.APPLICATION_STATE_REFERRED);
    const res = await t.client.decideLoanApplication({
      applicationId: application!.id,
      decision: A.APPLICATION_STATE_APPROVED,
      note: 'ok',
      approvedAmount: 400_000n,
    });
    expect(res.loan).toMatchObject({
      status: L.LOAN_STATUS_ACTIVE,
      principal: 400_000n,
      principalOutstanding: 400_000n,
    });
    expect((await balances(t.bank, a.account.id)).creditsPosted).toBe(700_000n);

    const b = await applicant(RiskTier.RISK_TIER_MEDIUM);
    const referred = (await t.client.applyForLoan(b.request())).application!;
    await t.peers.people.client.freezeCustomer({ customerId: b.customer.id, reason: 'fraud check' });
    await expectRpcError(
      t.client.decideLoanApplication({
        applicationId: referred.id,
        decision: A.APPLICATION_STATE_APPROVED,
        note: 'ok',
        approvedAmount: 0n,
      }),
      status.FAILED_PRECONDITION,
      'customer_id',
      'CUSTOMER_NOT_ACTIVE',
    );
    expect((await t.client.getLoanApplication({ applicationId: referred.id })).application!.state).toBe(
      A.APPLICATION_STATE_REFERRED,
    );
  });

  it("shows a customer-bound token only its customer's loans", async () => {
    const a = await applicant();
    const b = await applicant();
    const la = (await t.client.applyForLoan(a.request())).loan!;
    const lb = (await t.client.applyForLoan(b.request())).loan!;
    const asA = await t.clientWith(['loans:read'], a.customer.id);
    expect((await asA.getLoan({ loanId: la.id })).loan!.id).toBe(la.id);
    await expectRpcError(asA.getLoan({ loanId: lb.id }), status.NOT_FOUND, 'loan_id');
    await expectRpcError(asA.getLoanSchedule({ loanId: lb.id }), status.NOT_FOUND, 'loan_id');
    const mine = await asA.listLoans({ customerId: a.customer.id, page: undefined });
    expect(mine.loans.map((l) => l.id)).toEqual([la.id]);
    await expectRpcError(
      asA.listLoans({ customerId: b.customer.id, page: undefined }),
      status.PERMISSION_DENIED,
      undefined,
      'CUSTOMER_MISMATCH',
    );
    // Pages: a second loan for a (exposure 500,000 now: -20, but an income of 2,000.00 declared: +20).
    const la2 = (await t.client.applyForLoan(a.request({ declaredMonthlyIncome: 200_000n }))).loan!;
    const p1 = await t.client.listLoans({ customerId: a.customer.id, page: { pageSize: 1, pageToken: '' } });
    const p2 = await t.client.listLoans({
      customerId: a.customer.id,
      page: { pageSize: 1, pageToken: p1.page!.nextPageToken },
    });
    expect([...p1.loans, ...p2.loans].map((l) => l.id)).toEqual([la.id, la2.id]);
    expect(p2.page!.nextPageToken).toBe('');
    await expectRpcError(t.client.getLoan({ loanId: 'nope' }), status.INVALID_ARGUMENT, 'loan_id');
  });

  it("dates a loan by the bank's business date, not the wall clock", async () => {
    // The bank on 15 March 2027 (the close of 14 March moved it there), whatever today's date is.
    await closingDay(t, '2027-03-14');
    const a = await applicant();
    const { loan } = await t.client.applyForLoan(a.request());
    expect(loan).toMatchObject({ status: L.LOAN_STATUS_ACTIVE, disbursedOn: '2027-03-15' });
    const { schedule } = await t.client.getLoanSchedule({ loanId: loan!.id });
    expect(schedule!.instalments[0]).toMatchObject({ fromDate: '2027-03-15', dueDate: '2027-04-15', days: 31 });
    expect(schedule!.instalments.at(-1)!.dueDate).toBe('2028-03-15');
    // A quote without a start date starts on the business date; a payoff is quoted as of it.
    const quote = await t.client.previewSchedule({
      productId: loanProductId,
      productVersion: 0,
      amount: 500_000n,
      termMonths: 12,
      startDate: '',
    });
    expect(quote.schedule!.instalments[0]!.fromDate).toBe('2027-03-15');
    const payoff = await t.client.getPayoffQuote({ loanId: loan!.id, asOf: '' });
    expect(payoff).toMatchObject({ asOf: '2027-03-15', principal: 500_000n, interest: 0n, total: 500_000n });
  });
});
