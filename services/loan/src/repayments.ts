// Repayments: allocated by the waterfall and booked in the ledger. A repayment is recorded
// PENDING with its allocation (under the loan's row lock, so concurrent repayments never allocate
// the same amount twice), then its ledger transfers (ids derived from the repayment id, one linked
// chain) are made, then it is APPLIED, or REFUSED with its allocation taken back. A crash or an
// outage between the steps leaves it PENDING: a retry with the same key, or the sweeper, makes the
// same transfers again, which the ledger replays.
import { createHash } from 'node:crypto';
import {
  bucketedId,
  bucketOfId,
  DomainError,
  newEventId,
  toTimestamp,
  writeEvents,
  type Logger,
  type RpcContext,
  type ShardRouter,
} from '@corebank/kit';
import { TransferKind, type Transfer } from '@corebank/kit/gen/corebank/v1/account';
import { LoanRepaymentChanged } from '@corebank/kit/gen/corebank/v1/events';
import {
  LoanStatus as L,
  RepaymentKind as K,
  RepaymentStatus as S,
  type RepayLoanResponse,
} from '@corebank/kit/gen/corebank/v1/loan';
import { CODES, type Accounts, type LedgerStep } from './clients/accounts.js';
import { payoffQuote, payoffWaivers } from './payoff.js';
import { SUBJECTS } from './events.js';
import { loanEvent } from './loans.js';
import {
  loanToProto,
  repaymentToProto,
  repaymentTransferIds,
  type LoanWithTotals,
  type RepaymentRow,
} from './proto.js';
import {
  applyAllocations,
  applyWaivers,
  dbToday,
  findLoan,
  findRepayment,
  instalmentsOf,
  lockLoan,
  REPAYMENT_COLUMNS,
} from './store.js';
import { allocate, outstanding, type Owed } from './waterfall.js';
import { partnerInterest, repaymentLegs } from './colending.js';
import { repaymentSplits } from './colending-store.js';

export interface RepaymentDeps {
  router: ShardRouter;
  accounts: Accounts;
  log: Logger;
}

export const repaymentIdFor = (loanId: string, key: string): string =>
  bucketedId(bucketOfId(loanId)!, 'loan-repayment', loanId, key);

/** What is paid: an amount by the waterfall, or the payoff of the whole loan today. */
export type Payment = { kind: 'repay'; amount: bigint } | { kind: 'payoff'; expectedTotal: bigint };

const bodyHash = (p: Payment, from: string) =>
  createHash('sha256')
    .update(JSON.stringify(p.kind === 'repay' ? [String(p.amount), from] : ['payoff', String(p.expectedTotal), from]))
    .digest('base64url');

const precondition = (reason: string, field: string, description: string, metadata: Record<string, string> = {}) =>
  new DomainError('FAILED_PRECONDITION', reason, `${field}: ${description}`, [{ field, description }], metadata);

function repaymentEvent(subject: string, r: RepaymentRow, loan: LoanWithTotals, shard: number, at: Date) {
  const meta = { eventId: newEventId(), occurredAt: toTimestamp(at), shard };
  const payload = LoanRepaymentChanged.encode({
    meta,
    repayment: repaymentToProto(r),
    loan: loanToProto(loan, shard),
  }).finish();
  return { id: meta.eventId, subject, payload };
}

/** Repays `loan` (already checked visible to the caller). */
export async function repayLoan(
  d: RepaymentDeps,
  loan: LoanWithTotals,
  req: { idempotencyKey: string },
  payment: Payment,
  fromAccountId: string | undefined,
  ctx: RpcContext,
): Promise<RepayLoanResponse> {
  const shard = d.router.byId(loan.id)!;
  const from = fromAccountId ?? loan.repayment_account_id;
  const id = repaymentIdFor(loan.id, req.idempotencyKey);
  const hash = bodyHash(payment, from);

  const replay = async (row: RepaymentRow): Promise<RepayLoanResponse> => {
    if (row.body_hash !== hash) {
      throw new DomainError(
        'ALREADY_EXISTS',
        'REPAYMENT_EXISTS_WITH_DIFFERENT_BODY',
        'idempotency_key: this loan was repaid with this key and a different body',
        [{ field: 'idempotency_key', description: 'was used before with a different body' }],
        { repayment_id: row.id },
      );
    }
    return { ...(await settle(d, row.id, ctx.deadline)), replayed: true };
  };
  const seen = await findRepayment(shard.db, id);
  if (seen) return replay(seen);

  if (loan.status !== L.LOAN_STATUS_ACTIVE) {
    throw precondition('LOAN_NOT_ACTIVE', 'loan_id', `the loan is ${L[loan.status]}`, { status: L[loan.status] });
  }
  const field = fromAccountId ? 'from_account_id' : 'loan_id';
  const account = await d.accounts.get(from, ctx.deadline);
  if (!account) throw DomainError.notFound(field, 'account');
  if (account.ownerId !== loan.customer_id) {
    throw precondition('ACCOUNT_NOT_OWNED', field, "is not the borrower's account");
  }
  if (!account.productId) throw precondition('NOT_A_DEPOSIT_ACCOUNT', field, 'is not a deposit account');
  if (account.currency !== loan.currency) throw precondition('CURRENCY_MISMATCH', field, `is not in ${loan.currency}`);
  const income = await d.accounts.interestIncome(account.shard, loan.currency, ctx.deadline);
  const feeIncome = loan.partners?.length
    ? await d.accounts.servicingFeeIncome(account.shard, loan.currency, ctx.deadline)
    : '';

  const recorded = await shard.db.transaction(async (tx) => {
    const locked = await lockLoan(tx, loan.id);
    if (locked?.status !== L.LOAN_STATUS_ACTIVE) {
      throw precondition('LOAN_NOT_ACTIVE', 'loan_id', 'the loan is not active');
    }
    const again = await findRepayment(tx, id);
    if (again) return { row: again, fresh: false }; // a concurrent request with this key got here first
    let rows = await instalmentsOf(tx, loan.id);
    let waivers: [number, string][] = [];
    if (payment.kind === 'payoff') {
      // The interest the schedule holds beyond today's quote is waived, period by period.
      const today = await dbToday(tx);
      const quote = payoffQuote(rows, today);
      if (payment.expectedTotal > 0n && payment.expectedTotal !== quote.total) {
        throw precondition('PAYOFF_AMOUNT_CHANGED', 'expected_total', `is not today's payoff total ${quote.total}`, {
          total: String(quote.total),
        });
      }
      waivers = payoffWaivers(rows, today).map(([n, amount]) => [n, String(amount)]);
      await applyWaivers(tx, loan.id, waivers, 1n);
      rows = await instalmentsOf(tx, loan.id);
    }
    const owed: Owed[] = rows.map((i) => ({
      number: i.number,
      due: { penalty: i.penalty_due, fee: i.fee_due, interest: i.interest_due, principal: i.principal_due },
      paid: { penalty: i.penalty_paid, fee: i.fee_paid, interest: i.interest_paid, principal: i.principal_paid },
    }));
    const left = outstanding(owed);
    const amount = payment.kind === 'payoff' ? left : payment.amount;
    if (amount > left) {
      throw precondition('REPAYMENT_EXCEEDS_OUTSTANDING', 'amount', `is more than the ${left} the loan still owes`, {
        outstanding: String(left),
      });
    }
    const none = { principal: 0n, interest: 0n, fee: 0n, penalty: 0n };
    const { allocations, totals } = amount > 0n ? allocate(owed, amount) : { allocations: [], totals: none };
    const now = new Date();
    const row = {
      id,
      loan_id: loan.id,
      idempotency_key: req.idempotencyKey,
      body_hash: hash,
      from_account_id: from,
      income_account_id: income,
      amount,
      principal: totals.principal,
      interest: totals.interest,
      fees: totals.fee,
      penalties: totals.penalty,
      allocations: allocations.map(
        (a) => [a.instalment, a.component, String(a.amount)] as RepaymentRow['allocations'][0],
      ),
      status: S.REPAYMENT_STATUS_PENDING,
      refusal: '',
      kind: payment.kind === 'payoff' ? K.REPAYMENT_KIND_PAYOFF : K.REPAYMENT_KIND_REPAYMENT,
      waivers,
      created_at: now,
      updated_at: now,
    };
    await applyAllocations(tx, loan.id, row.allocations, 1n);
    const splits = await repaymentSplits(tx, locked, totals, feeIncome);
    const [inserted] = (await tx('loan_repayments')
      .insert({
        ...row,
        allocations: JSON.stringify(row.allocations),
        waivers: JSON.stringify(waivers),
        partner_splits: JSON.stringify(splits),
      })
      .returning(tx.raw(REPAYMENT_COLUMNS))) as RepaymentRow[];
    return { row: inserted!, fresh: true };
  });
  if (recorded.fresh) return { ...(await settle(d, id, ctx.deadline)), replayed: false };
  return replay(recorded.row);
}

/**
 * Makes a PENDING repayment's ledger transfers and records the outcome (idempotent; any number of
 * callers at once). Returns the repayment and the loan as they are afterwards. A ledger that
 * cannot be reached throws: the repayment stays PENDING for a retry.
 */
export async function settle(d: RepaymentDeps, id: string, deadline?: Date) {
  const shard = d.router.byId(id)!;
  const r = (await findRepayment(shard.db, id))!;
  if (r.status === S.REPAYMENT_STATUS_PENDING) {
    const loan = (await findLoan(shard.db, r.loan_id))!;
    const ids = repaymentTransferIds(r.id);
    const transfer = (tid: string, credit: string, amount: bigint, code: number): Transfer => ({
      id: tid,
      debitAccountId: r.from_account_id,
      creditAccountId: credit,
      amount,
      kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
      linked: false,
      pendingId: '',
      timeoutSeconds: 0,
      code,
      reference: `loan ${r.loan_id} repayment ${r.id}`,
      currency: '',
    });
    // Co-lending: the partners' interest goes to them (repaymentLegs), not to the bank's income.
    const incomeAmount = r.interest + r.fees + r.penalties - partnerInterest(r.partner_splits ?? []);
    const transfers = [
      ...(r.principal > 0n
        ? [transfer(ids.principal, loan.ledger_account_id!, r.principal, CODES.repaymentPrincipal)]
        : []),
      ...(incomeAmount > 0n ? [transfer(ids.income, r.income_account_id, incomeAmount, CODES.repaymentInterest)] : []),
      ...repaymentLegs(r, r.partner_splits ?? []),
    ];
    const step: LedgerStep = transfers.length ? await d.accounts.transfer(transfers, deadline) : { kind: 'ok' };
    await shard.db.transaction(async (tx) => {
      await lockLoan(tx, r.loan_id);
      const current = (await findRepayment(tx, id, true))!;
      if (current.status !== S.REPAYMENT_STATUS_PENDING) return; // another caller recorded it
      const now = new Date();
      if (step.kind === 'refused') {
        await applyAllocations(tx, r.loan_id, r.allocations, -1n);
        await applyWaivers(tx, r.loan_id, r.waivers, -1n);
        await tx('loan_repayments')
          .where('id', id)
          .update({ status: S.REPAYMENT_STATUS_REFUSED, refusal: step.reason, updated_at: now });
      } else {
        await tx('loan_repayments').where('id', id).update({ status: S.REPAYMENT_STATUS_APPLIED, updated_at: now });
      }
      let after = (await findLoan(tx, r.loan_id))!;
      const events = [];
      if (step.kind === 'ok' && after.status === L.LOAN_STATUS_ACTIVE) {
        const owed =
          after.principal_outstanding +
          after.interest_outstanding +
          after.fees_outstanding +
          after.penalties_outstanding;
        if (owed === 0n) {
          await tx('loans')
            .where('id', r.loan_id)
            .update({ status: L.LOAN_STATUS_PAID_OFF, version: tx.raw('version + 1'), updated_at: now });
          after = (await findLoan(tx, r.loan_id))!;
          events.push(loanEvent(SUBJECTS.paidOff, loanToProto(after, shard.index), now));
        }
      }
      const updated = (await findRepayment(tx, id))!;
      events.unshift(
        repaymentEvent(
          step.kind === 'ok' ? SUBJECTS.repaymentApplied : SUBJECTS.repaymentRefused,
          updated,
          after,
          shard.index,
          now,
        ),
      );
      await writeEvents(tx, events);
    });
    const done = (await findRepayment(shard.db, id))!;
    d.log.info(
      { repayment_id: id, loan_id: r.loan_id, status: S[done.status], refusal: done.refusal || undefined },
      'loan repayment',
    );
  }
  const repayment = (await findRepayment(shard.db, id))!;
  const loan = (await findLoan(shard.db, repayment.loan_id))!;
  return { repayment: repaymentToProto(repayment), loan: loanToProto(loan, shard.index) };
}
