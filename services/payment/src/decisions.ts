// Decisions people take on an order: the buyer confirms or disputes an escrow, the seller (or the
// channel) cancels it, the bank decides a dispute, a risk reviewer approves or rejects a held
// order. Each is a change of the order under its row lock; one that already holds answers
// changed = false, one that no longer can is FAILED_PRECONDITION naming the order's state. What
// the decision sets in motion (a credit, a void, the order's first step) is driven at once, and
// by the saga's consumer and sweeper if this process dies first.
import { DomainError, requireCustomer, type RpcContext, Violations } from '@corebank/kit';
import {
  DisputeResolution,
  PaymentKind as K,
  PaymentStatus as S,
  PaymentStep as P,
  ReviewDecision,
  type Payment,
} from '@corebank/kit/gen/corebank/v1/payment';
import { firstStep, type PaymentDeps } from './orders.js';
import { noteField, paymentIdField } from './validate.js';
import { statusName, WAITING_STEPS } from './state.js';
import { paymentToProto, type PaymentRow } from './proto.js';
import { changeOrder, findPayment, type Change } from './store.js';

/** What a decision comes to for an order as it stands. */
export type Verdict = { change: Change } | { unchanged: true };

const cannot = (row: PaymentRow, what: string, reason: string) =>
  new DomainError(
    'FAILED_PRECONDITION',
    reason,
    `payment_id: ${what} is not possible for a ${statusName(row.status)} order${row.reason ? ` (${row.reason})` : ''}`,
    [],
    { status: statusName(row.status), reason: row.reason },
  );

function checkRequest(id: string, note: string, noteRequired = false): void {
  const v = new Violations();
  paymentIdField(v, id);
  noteField(v, note, noteRequired);
  v.throwIfAny();
}

/**
 * Applies a decision to the order under its lock. `allowed` checks who may take it (it may ask the
 * ledger, so it runs before the transaction, on the order as read).
 */
async function decide(
  deps: PaymentDeps,
  rawId: string,
  ctx: RpcContext,
  allowed: (row: PaymentRow) => Promise<void> | void,
  verdictFor: (row: PaymentRow) => Verdict,
): Promise<{ payment: Payment; changed: boolean }> {
  const id = rawId.toLowerCase();
  const shard = deps.router.byId(id)!;
  const seen = await findPayment(shard.db, id);
  if (!seen) throw DomainError.notFound('payment_id', 'payment');
  await allowed(seen);
  const { row, changed } = await shard.db.transaction(async (tx) => {
    const locked = (await tx('payments').where('id', id).forUpdate().first()) as PaymentRow;
    const verdict = verdictFor(locked);
    if ('unchanged' in verdict) return { row: locked, changed: false };
    return { row: (await changeOrder(tx, locked, verdict.change))!, changed: true };
  });
  if (changed) ctx.log.info({ payment_id: id, status: S[row.status], step: P[row.step] }, 'payment decision');
  if (changed && row.step !== P.PAYMENT_STEP_DONE && !WAITING_STEPS.includes(row.step)) {
    deps.saga.expect(id, row.step);
    await deps.saga.drive(shard, id).catch((err: unknown) => {
      ctx.log.warn({ err, payment_id: id }, 'driving the decided order failed; the sweeper retries it');
      deps.saga.wakeAt(shard, Date.now());
    });
  }
  return { payment: paymentToProto((await findPayment(shard.db, id))!), changed };
}

const RELEASED = ['CONFIRMED', 'AUTO_RELEASED', 'PAY_SELLER'];

function escrowOnly(row: PaymentRow): void {
  if (row.kind !== K.PAYMENT_KIND_ESCROW) {
    throw new DomainError('FAILED_PRECONDITION', 'NOT_AN_ESCROW_PAYMENT', 'payment_id: is not an escrow payment');
  }
}

/** Whether the escrow still waits for a decision: held, and its auto-release time not reached. */
const awaiting = (row: PaymentRow, now = new Date()) =>
  row.step === P.PAYMENT_STEP_AWAIT_RELEASE && (!row.auto_release_at || row.auto_release_at > now);

const asBuyer = (ctx: RpcContext) => (row: PaymentRow) => {
  escrowOnly(row);
  requireCustomer(ctx.principal, row.payer_customer_id, 'payment_id');
};

export function confirmEscrow(deps: PaymentDeps, paymentId: string, ctx: RpcContext) {
  checkRequest(paymentId, '');
  return decide(deps, paymentId, ctx, asBuyer(ctx), (row) => {
    if (RELEASED.includes(row.escrow_outcome)) return { unchanged: true };
    if (row.step !== P.PAYMENT_STEP_AWAIT_RELEASE) throw cannot(row, 'confirming', 'ESCROW_NOT_HELD');
    return {
      change: {
        status: S.PAYMENT_STATUS_HELD,
        step: P.PAYMENT_STEP_CREDIT,
        event: 'payment_escrow_released',
        escrowOutcome: 'CONFIRMED',
      },
    };
  });
}

export function cancelEscrow(deps: PaymentDeps, paymentId: string, note: string, ctx: RpcContext) {
  checkRequest(paymentId, note);
  return decide(
    deps,
    paymentId,
    ctx,
    async (row) => {
      escrowOnly(row);
      // The seller cancels: a customer-bound token must act for the payee's owner.
      if (ctx.principal.customerId !== undefined) {
        const payee = await deps.ledger.account(row.payee_account_id, ctx.deadline);
        requireCustomer(ctx.principal, payee?.ownerId ?? '', 'payment_id');
      }
    },
    (row) => {
      if (row.escrow_outcome === 'CANCELLED') return { unchanged: true };
      if (!awaiting(row)) throw cannot(row, 'cancelling', 'ESCROW_NOT_CANCELLABLE');
      return {
        change: {
          status: S.PAYMENT_STATUS_HELD,
          step: P.PAYMENT_STEP_VOID,
          event: 'payment_escrow_cancelled',
          reason: 'ESCROW_CANCELLED',
          note,
          escrowOutcome: 'CANCELLED',
        },
      };
    },
  );
}

export function openDispute(deps: PaymentDeps, paymentId: string, note: string, ctx: RpcContext) {
  checkRequest(paymentId, note, true);
  return decide(deps, paymentId, ctx, asBuyer(ctx), (row) => {
    if (row.escrow_outcome === 'DISPUTED') return { unchanged: true };
    if (!awaiting(row)) throw cannot(row, 'disputing', 'ESCROW_NOT_DISPUTABLE');
    return {
      change: {
        status: S.PAYMENT_STATUS_DISPUTED,
        step: P.PAYMENT_STEP_AWAIT_DISPUTE_DECISION,
        event: 'payment_disputed',
        note,
        escrowOutcome: 'DISPUTED',
      },
    };
  });
}

export function resolveDispute(
  deps: PaymentDeps,
  paymentId: string,
  resolution: DisputeResolution,
  note: string,
  ctx: RpcContext,
) {
  checkRequest(paymentId, note);
  const outcome =
    resolution === DisputeResolution.DISPUTE_RESOLUTION_REFUND_BUYER
      ? 'REFUND_BUYER'
      : resolution === DisputeResolution.DISPUTE_RESOLUTION_PAY_SELLER
        ? 'PAY_SELLER'
        : undefined;
  if (!outcome) throw DomainError.invalid([{ field: 'resolution', description: 'must be REFUND_BUYER or PAY_SELLER' }]);
  return decide(deps, paymentId, ctx, escrowOnly, (row) => {
    if (row.escrow_outcome === outcome) return { unchanged: true };
    if (row.step !== P.PAYMENT_STEP_AWAIT_DISPUTE_DECISION) throw cannot(row, 'resolving a dispute', 'NOT_DISPUTED');
    return {
      change:
        outcome === 'REFUND_BUYER'
          ? {
              status: S.PAYMENT_STATUS_DISPUTED,
              step: P.PAYMENT_STEP_VOID,
              event: 'payment_dispute_resolved',
              reason: 'DISPUTE_UPHELD',
              note,
              escrowOutcome: outcome,
            }
          : {
              status: S.PAYMENT_STATUS_HELD,
              step: P.PAYMENT_STEP_CREDIT,
              event: 'payment_dispute_resolved',
              reason: 'DISPUTE_REJECTED',
              note,
              escrowOutcome: outcome,
            },
    };
  });
}

export function reviewPayment(
  deps: PaymentDeps,
  paymentId: string,
  decision: ReviewDecision,
  note: string,
  ctx: RpcContext,
) {
  checkRequest(paymentId, note);
  const name =
    decision === ReviewDecision.REVIEW_DECISION_APPROVE
      ? 'APPROVED'
      : decision === ReviewDecision.REVIEW_DECISION_REJECT
        ? 'REJECTED'
        : undefined;
  if (!name) throw DomainError.invalid([{ field: 'decision', description: 'must be APPROVE or REJECT' }]);
  return decide(
    deps,
    paymentId,
    ctx,
    () => undefined,
    (row) => {
      if (row.review_decision === name) return { unchanged: true };
      if (row.step !== P.PAYMENT_STEP_AWAIT_REVIEW) throw cannot(row, 'reviewing', 'NOT_PENDING_REVIEW');
      return {
        change:
          name === 'APPROVED'
            ? {
                status: S.PAYMENT_STATUS_ACCEPTED,
                step: firstStep(row.kind, row.route),
                event: 'payment_approved',
                note,
                reviewDecision: name,
              }
            : {
                status: S.PAYMENT_STATUS_REJECTED,
                step: P.PAYMENT_STEP_DONE,
                event: 'payment_rejected',
                reason: 'RISK_REVIEW_REJECTED',
                note,
                reviewDecision: name,
              },
      };
    },
  );
}
