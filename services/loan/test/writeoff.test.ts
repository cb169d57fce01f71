// WriteOffLoan and recoveries: the principal outstanding to LOAN_LOSS_EXPENSE, accrued interest and
// penalties reversed out of income, the loan WRITTEN_OFF with its event; idempotent by key; later
// repayments are recoveries credited to LOAN_RECOVERY_INCOME, at most what was written off. On 1
// and 3 shards.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { SystemAccountKind as G } from '@corebank/kit/gen/corebank/v1/account';
import { LoanStatus as L, RepaymentKind as K, RepaymentStatus as S } from '@corebank/kit/gen/corebank/v1/loan';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError, fund } from '../../account/test/helpers.js';
import { SUBJECTS } from '../src/events.js';
import { TEST_SCORECARD, publishedDeposit, publishedLoan, startLoans, type TestLoans } from './harness.js';
import { addDays, borrowerWithLoan, expectReconciled, glBalance, runDays } from './day-helpers.js';

describe.each([1, 3])('write-off on %i shard(s)', (shards) => {
  let t: TestLoans;
  let depositProductId: string;
  let productId: string;
  beforeAll(async () => {
    t = await startLoans(shards, { LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD) });
    depositProductId = (await publishedDeposit(t)).productId;
    productId = (await publishedLoan(t, { annualRate: '6.9', annualRateBps: 0, graceDays: 0 })).productId;
  });
  afterAll(async () => t?.stop());

  it('books the loss, reverses what accrued, and takes recoveries to income', async () => {
    const b = await borrowerWithLoan(t, {
      productId,
      depositProductId,
      amount: 600_000n,
      termMonths: 6,
      repaymentFunds: 0n,
    });
    const loanId = b.loan.id;
    const shard = t.app.router.byId(loanId)!.index;
    const periods = (await t.client.getLoanSchedule({ loanId })).schedule!.instalments;
    // Through 20 days past instalment 1: its interest (600,000 × 6.9 % / 12 = 3,450) and 20 days
    // of instalment 2's accrued; penalties (5 % a year on the overdue principal) from the day after.
    await runDays(t, b.loan.disbursedOn, addDays(periods[0]!.dueDate, 20));
    const before = (await t.client.getLoan({ loanId })).loan!;
    expect(before.principalOutstanding).toBe(600_000n);
    expect(before.interestReceivable).toBeGreaterThan(3_450n);
    expect(before.penaltiesOutstanding).toBeGreaterThan(0n);
    const gl = (k: G) => glBalance(t, k, shard);
    const loss0 = await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_LOSS_EXPENSE);
    const receivable0 = await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE);
    const income0 = await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME);
    const penaltyIncome0 = await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_INCOME);

    const key = randomUUID();
    const res = await t.client.writeOffLoan({ loanId, idempotencyKey: key, reason: 'borrower insolvent' });
    expect(res.replayed).toBe(false);
    expect(res.loan!.status).toBe(L.LOAN_STATUS_WRITTEN_OFF);
    expect(res.principalWrittenOff).toBe(600_000n);
    expect(res.interestReversed).toBe(before.interestReceivable);
    expect(res.penaltiesReversed).toBe(before.penaltiesOutstanding);
    expect(res.loan!.writtenOffPrincipal).toBe(600_000n);
    expect(res.loan!.interestReceivable).toBe(0n);

    // The ledger: the loss is expense, the loan's account is at zero, the receivables are reversed out of income.
    expect((await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_LOSS_EXPENSE)) - loss0).toBe(600_000n);
    const account = await balances(t.bank, res.loan!.ledgerAccountId);
    expect(account.debitsPosted - account.creditsPosted).toBe(0n);
    expect(receivable0 - (await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE))).toBe(before.interestReceivable);
    expect((await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME)) - income0).toBe(before.interestReceivable);
    expect((await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_INCOME)) - penaltyIncome0).toBe(before.penaltiesOutstanding);
    await expectReconciled(t);

    // Idempotent by key; another key or reason is ALREADY_EXISTS; the day no longer touches the loan.
    const again = await t.client.writeOffLoan({ loanId, idempotencyKey: key, reason: 'borrower insolvent' });
    expect(again.replayed).toBe(true);
    expect(again.principalWrittenOff).toBe(600_000n);
    await expectRpcError(
      t.client.writeOffLoan({ loanId, idempotencyKey: key, reason: 'other' }),
      status.ALREADY_EXISTS,
      'idempotency_key',
    );
    const snapshot = await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE);
    await runDays(t, addDays(periods[0]!.dueDate, 21), addDays(periods[0]!.dueDate, 22));
    expect(await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE)).toBe(snapshot);

    // A recovery: 1,000.00 arrives and is repaid; all of it is LOAN_RECOVERY_INCOME.
    await fund(t.bank, b.repayment, 100_000n);
    const recovery0 = await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_RECOVERY_INCOME);
    const paid = await t.client.repayLoan({
      loanId,
      idempotencyKey: randomUUID(),
      amount: 100_000n,
      fromAccountId: '',
    });
    expect(paid.repayment!.kind).toBe(K.REPAYMENT_KIND_RECOVERY);
    expect(paid.repayment!.status).toBe(S.REPAYMENT_STATUS_APPLIED);
    expect(paid.loan!.recovered).toBe(100_000n);
    expect(recovery0 - (await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_RECOVERY_INCOME))).toBe(100_000n);
    const from = await balances(t.bank, b.repayment.id);
    expect(from.creditsPosted - from.debitsPosted).toBe(0n);
    // More than is left to recover is refused.
    await expectRpcError(
      t.client.repayLoan({ loanId, idempotencyKey: randomUUID(), amount: 10_000_000n, fromAccountId: '' }),
      status.FAILED_PRECONDITION,
    );
    // PayOff is not a recovery.
    await expectRpcError(
      t.client.payOff({ loanId, idempotencyKey: randomUUID(), fromAccountId: '', expectedTotal: 0n }),
      status.FAILED_PRECONDITION,
    );

    const db = t.app.router.byId(loanId)!.db;
    const subjects = ((await db('outbox').select('subject').orderBy('seq')) as { subject: string }[]).map(
      (e) => e.subject,
    );
    expect(subjects).toContain(SUBJECTS.writtenOff);
    expect(subjects).toContain(SUBJECTS.recoveryReceived);
    await expectReconciled(t);
  });

  it('refuses a write-off of a loan that is not active, bad input and callers without loans:admin', async () => {
    await expectRpcError(
      t.client.writeOffLoan({ loanId: 'x', idempotencyKey: 'k', reason: 'r' }),
      status.INVALID_ARGUMENT,
      'loan_id',
    );
    const b = await borrowerWithLoan(t, {
      productId,
      depositProductId,
      amount: 600_000n,
      termMonths: 6,
      repaymentFunds: 0n,
    });
    await expectRpcError(
      t.client.writeOffLoan({ loanId: b.loan.id, idempotencyKey: 'k', reason: '' }),
      status.INVALID_ARGUMENT,
      'reason',
    );
    const writer = await t.clientWith(['loans:read', 'loans:write']);
    await expectRpcError(
      writer.writeOffLoan({ loanId: b.loan.id, idempotencyKey: 'k', reason: 'r' }),
      status.PERMISSION_DENIED,
    );
    // Paid off: nothing to write off.
    await fund(t.bank, b.repayment, 700_000n);
    await t.client.payOff({
      loanId: b.loan.id,
      idempotencyKey: randomUUID(),
      fromAccountId: b.repayment.id,
      expectedTotal: 0n,
    });
    await expectRpcError(
      t.client.writeOffLoan({ loanId: b.loan.id, idempotencyKey: 'k', reason: 'r' }),
      status.FAILED_PRECONDITION,
      'loan_id',
    );
  });
});
