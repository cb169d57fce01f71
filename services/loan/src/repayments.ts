// Repayments: allocated by the waterfall and booked in the ledger. A repayment is recorded
// PENDING with its allocation (under the loan's row lock, so concurrent repayments never allocate
// the same amount twice), then its ledger transfers (ids derived from the repayment id, one linked
// chain) are made, then it is APPLIED, or REFUSED with its allocation taken back. A crash or an
// outage between the steps leaves it PENDING: a retry with the same key, or the sweeper, makes the
// same transfers again, which the ledger replays.
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
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
  readShardBusinessDate,
} from '@corebank/kit';
import { LoanRepaymentChanged } from '@corebank/kit/gen/corebank/v1/events';
import {
  LoanStatus as L,
  RepaymentKind as K,
  RepaymentStatus as S,
  type RepayLoanResponse,
} from '@corebank/kit/gen/corebank/v1/loan';
import type { Accounts, LedgerStep } from './clients/accounts.js';
import { payoffQuote, payoffWaivers } from './payoff.js';
import { SUBJECTS } from './events.js';
import { loanEvent } from './loans.js';
import { loanToProto, repaymentToProto, type LoanWithTotals, type RepaymentRow } from './proto.js';
import {
  applyAllocations,
  applyWaivers,
  findLoan,
  findRepayment,
  instalmentsOf,
  lockLoan,
  REPAYMENT_COLUMNS,
} from './store.js';
import { allocate, outstanding, type Owed } from './waterfall.js';
import { giveBack, glAccounts, recordRecovery, repaymentTransfers, takeInterest } from './receivables.js';
import type { Products } from './clients/products.js';
import { LoanRescheduled } from '@corebank/kit/gen/corebank/v1/events';
import { PrepaymentStrategy } from '@corebank/kit/gen/corebank/v1/product';
import { instalmentsToProto } from './proto.js';
import { planPrepayment, PrepaymentNotPossible, type PrepaymentPlan } from './prepayment.js';
import { findScheduleVersion, pendingPrepayment, recordReschedule, revertReschedule } from './store.js';
import { loanTermsOf, prepaymentStrategyOf, waterfallOf } from './terms.js';
import { repaymentLegs } from './colending.js';
import { repaymentSplits } from './colending-store.js';
import { repayments } from './metrics.js';

export interface RepaymentDeps {
  router: ShardRouter;
  accounts: Accounts;
  products: Products;
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

  const recovery = loan.status === L.LOAN_STATUS_WRITTEN_OFF && payment.kind === 'repay';
  if (loan.status !== L.LOAN_STATUS_ACTIVE && !recovery) {
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
  const gl = await glAccounts(d.accounts, account.shard, loan.currency, recovery, ctx.deadline);
  const income = gl.income;
  const terms = loanTermsOf(await d.products.get(loan.product_id, loan.product_version, ctx.deadline));
  const order = waterfallOf(terms);
  const strategy = payment.kind === 'repay' ? prepaymentStrategyOf(terms) : undefined;
  // A prepayment still in flight changed the schedule this repayment is allocated on: finish it first.
  const inFlight = await pendingPrepayment(shard.db, loan.id);
  if (inFlight) await settle(d, inFlight, ctx.deadline);
  const feeIncome = loan.partners?.length
    ? await d.accounts.servicingFeeIncome(account.shard, loan.currency, ctx.deadline)
    : '';

  const recorded = await shard.db.transaction(async (tx) => {
    const locked = await lockLoan(tx, loan.id);
    if (locked?.status !== (recovery ? L.LOAN_STATUS_WRITTEN_OFF : L.LOAN_STATUS_ACTIVE)) {
      throw precondition('LOAN_NOT_ACTIVE', 'loan_id', 'the loan is not active');
    }
    const again = await findRepayment(tx, id);
    if (again) return { row: again, fresh: false }; // a concurrent request with this key got here first
    if (recovery && payment.kind === 'repay') {
      const row = await recordRecovery(tx, locked, {
        id,
        key: req.idempotencyKey,
        hash,
        from,
        income,
        amount: payment.amount,
      });
      return { row, fresh: true };
    }
    if (await pendingPrepayment(tx, loan.id)) {
      throw new DomainError(
        'ABORTED',
        'PREPAYMENT_IN_FLIGHT',
        'loan_id: a prepayment of this loan is being booked; retry',
        [{ field: 'loan_id', description: 'has a prepayment being booked' }],
      );
    }
    let rows = await instalmentsOf(tx, loan.id);
    let waivers: [number, string][] = [];
    // The business date the repayment belongs to (its ledger transfers carry the ledger's own).
    const today = await readShardBusinessDate(tx);
    if (payment.kind === 'payoff') {
      // The interest the schedule holds beyond today's quote is waived, period by period.
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
    let plan: PrepaymentPlan | undefined;
    if (strategy) {
      const quote = payoffQuote(rows, today);
      if (amount > quote.total) {
        throw precondition(
          'REPAYMENT_EXCEEDS_PAYOFF',
          'amount',
          `is more than today's payoff total ${quote.total} (PayOff closes the loan)`,
          { payoff_total: String(quote.total) },
        );
      }
      try {
        plan = planPrepayment({ rows, today, amount, order, strategy, terms, loan: locked });
      } catch (e) {
        if (e instanceof PrepaymentNotPossible) throw precondition('PREPAYMENT_NOT_POSSIBLE', 'amount', e.message);
        throw e;
      }
    }
    const { allocations, totals } = plan
      ? plan
      : amount > 0n
        ? allocate(owed, amount, order)
        : { allocations: [], totals: none };
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
      interest_receivable: await takeInterest(tx, loan.id, totals.interest),
      receivable_account_id: gl.receivable,
      penalty_account_id: gl.penalty,
      prepaid_principal: plan?.prepaid ?? 0n,
      schedule_version: plan ? locked.schedule_version + 1 : 0,
      business_date: today,
    };
    if (plan) {
      await recordReschedule(tx, locked, plan, {
        repaymentId: id,
        version: row.schedule_version,
        strategy:
          strategy === 'reduceTerm'
            ? PrepaymentStrategy.PREPAYMENT_STRATEGY_REDUCE_TERM
            : PrepaymentStrategy.PREPAYMENT_STRATEGY_REDUCE_INSTALMENT,
        at: now,
      });
    }
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
    // The borrower pays the whole instalment (repaymentTransfers: principal, accrued interest out
    // of receivable, the rest to income); co-lending partners are then paid their shares
    // (repaymentLegs).
    const transfers = [...repaymentTransfers(r, loan.ledger_account_id!), ...repaymentLegs(r, r.partner_splits ?? [])];
    const step: LedgerStep = transfers.length ? await d.accounts.transfer(transfers, deadline) : { kind: 'ok' };
    countSettlement(await shard.db.transaction((tx) => recordSettlement(tx, shard.index, id, step)));
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

/** What recordSettlement recorded, for loan_repayments_total: the repayment's kind and its outcome. */
export interface Settlement {
  kind: 'repayment' | 'prepayment' | 'payoff' | 'collection' | 'recovery';
  outcome: 'applied' | 'refused';
}

const KIND_LABEL: Partial<Record<K, Settlement['kind']>> = {
  [K.REPAYMENT_KIND_PAYOFF]: 'payoff',
  [K.REPAYMENT_KIND_COLLECTION]: 'collection',
  [K.REPAYMENT_KIND_RECOVERY]: 'recovery',
};

/** Counts a recorded settlement; call it after the transaction that recorded it committed. */
export function countSettlement(s: Settlement | undefined): void {
  if (s) repayments.inc({ kind: s.kind, outcome: s.outcome });
}

/**
 * Records a PENDING repayment's ledger outcome, under its loan's lock, with its events (nothing
 * when another caller recorded it). Used by settle and by RunLoanDay's collections. Returns what
 * it recorded (undefined when another caller had), for the caller to count once committed.
 */
export async function recordSettlement(
  tx: Knex.Transaction,
  shardIndex: number,
  id: string,
  step: LedgerStep,
): Promise<Settlement | undefined> {
  await lockLoan(tx, (await findRepayment(tx, id))!.loan_id);
  const current = (await findRepayment(tx, id, true))!;
  const r = current;
  if (current.status !== S.REPAYMENT_STATUS_PENDING) return undefined; // another caller recorded it
  const now = new Date();
  const events = [];
  if (step.kind === 'refused') {
    await giveBack(tx, current);
    await applyAllocations(tx, r.loan_id, r.allocations, -1n);
    await applyWaivers(tx, r.loan_id, r.waivers, -1n);
    // A refused prepayment's reschedule is undone.
    if (r.schedule_version > 0) {
      const version = await revertReschedule(tx, r.loan_id, r.schedule_version, now);
      events.push(await rescheduledEvent(tx, r, version, true, shardIndex, now));
    }
    await tx('loan_repayments')
      .where('id', id)
      .update({ status: S.REPAYMENT_STATUS_REFUSED, refusal: step.reason, updated_at: now });
  } else {
    await tx('loan_repayments').where('id', id).update({ status: S.REPAYMENT_STATUS_APPLIED, updated_at: now });
    if (r.schedule_version > 0) events.push(await rescheduledEvent(tx, r, r.schedule_version, false, shardIndex, now));
  }
  let after = (await findLoan(tx, r.loan_id))!;
  if (step.kind === 'ok' && after.status === L.LOAN_STATUS_ACTIVE) {
    const owed =
      after.principal_outstanding + after.interest_outstanding + after.fees_outstanding + after.penalties_outstanding;
    if (owed === 0n) {
      await tx('loans')
        .where('id', r.loan_id)
        .update({ status: L.LOAN_STATUS_PAID_OFF, version: tx.raw('version + 1'), updated_at: now });
      after = (await findLoan(tx, r.loan_id))!;
      events.push(loanEvent(SUBJECTS.paidOff, loanToProto(after, shardIndex), now));
    }
  }
  const updated = (await findRepayment(tx, id))!;
  events.unshift(
    repaymentEvent(
      step.kind !== 'ok'
        ? SUBJECTS.repaymentRefused
        : r.kind === K.REPAYMENT_KIND_RECOVERY
          ? SUBJECTS.recoveryReceived
          : SUBJECTS.repaymentApplied,
      updated,
      after,
      shardIndex,
      now,
    ),
  );
  await writeEvents(tx, events);
  // A repayment that moved the schedule (prepaid principal) is a prepayment.
  const kind = KIND_LABEL[r.kind] ?? (r.schedule_version > 0 ? 'prepayment' : 'repayment');
  return { kind, outcome: step.kind === 'ok' ? 'applied' : 'refused' };
}

/** corebank.loan.loan_rescheduled: the loan and its whole schedule after schedule version `version`. */
async function rescheduledEvent(
  tx: Knex.Transaction,
  r: RepaymentRow,
  version: number,
  reverted: boolean,
  shard: number,
  at: Date,
) {
  const loan = (await findLoan(tx, r.loan_id))!;
  const v = (await findScheduleVersion(tx, r.loan_id, r.schedule_version))!;
  const meta = { eventId: newEventId(), occurredAt: toTimestamp(at), shard };
  const payload = LoanRescheduled.encode({
    meta,
    loan: loanToProto(loan, shard),
    scheduleVersion: version,
    repaymentId: r.id,
    prepaidPrincipal: reverted ? 0n : r.prepaid_principal,
    strategy: v.strategy,
    reverted,
    instalments: instalmentsToProto(loan, await instalmentsOf(tx, r.loan_id)).instalments,
  }).finish();
  return { id: meta.eventId, subject: SUBJECTS.rescheduled, payload };
}
