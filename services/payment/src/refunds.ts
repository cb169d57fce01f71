// Refunds and reversals: orders of their own that move money back from an original payment's payee
// to its payer (one transfer on one shard, the saga across two). They live beside the original, on
// its shard, so that the original's lock makes "never more than the original in total" exact under
// concurrency: every refund and reversal not rejected counts against the original's amount.
import { bucketOfId, DomainError, requireCustomer, type RpcContext, Violations } from '@corebank/kit';
import {
  PaymentKind as K,
  PaymentRoute,
  PaymentStatus as S,
  type Payment,
} from '@corebank/kit/gen/corebank/v1/payment';
import { keyField, paymentIdField, referenceField } from './validate.js';
import { firstStep, firstStepInline, type PaymentDeps } from './orders.js';
import { NOTHING_MOVED, statusName } from './state.js';
import { bodyHashOf, findPayment, paymentIdFor, refundsOf, replayOf, createOnce } from './store.js';
import { paymentToProto, type PaymentRow } from './proto.js';

const REFUNDABLE = [S.PAYMENT_STATUS_COMPLETED, S.PAYMENT_STATUS_PARTIALLY_REFUNDED];

export interface ReturnRequest {
  paymentId: string;
  idempotencyKey: string;
  /** 0: everything not yet refunded (a reversal always takes that). */
  amount: bigint;
  reference: string;
}

/** What is left to return of an original: its amount less every refund and reversal not rejected. */
function remainingOf(original: PaymentRow, returns: PaymentRow[]): bigint {
  return returns.filter((r) => !NOTHING_MOVED.includes(r.status)).reduce((left, r) => left - r.amount, original.amount);
}

/** Creates a refund (kind REFUND) or a reversal (kind REVERSAL) of a completed payment. */
export async function createReturn(
  deps: PaymentDeps,
  kind: K.PAYMENT_KIND_REFUND | K.PAYMENT_KIND_REVERSAL,
  req: ReturnRequest,
  ctx: RpcContext,
): Promise<{ order: Payment; replayed: boolean }> {
  const { router, ledger } = deps;
  const originalId = req.paymentId.toLowerCase();
  const v = new Violations();
  paymentIdField(v, originalId);
  keyField(v, req.idempotencyKey);
  if (req.amount < 0n) v.add('amount', 'must not be negative');
  if (kind === K.PAYMENT_KIND_REVERSAL && !req.reference) v.add('reference', 'is required: why the bank reverses it');
  else referenceField(v, req.reference);
  v.throwIfAny();

  const shard = router.byId(originalId)!;
  const channel = ctx.principal.channel;
  const id = paymentIdFor(bucketOfId(originalId)!, channel, req.idempotencyKey);
  const hash = bodyHashOf(K[kind], originalId, req.amount, req.reference);
  const existing = await findPayment(shard.db, id);
  if (existing) {
    requireCustomer(ctx.principal, existing.payer_customer_id, 'payment_id');
    const { payment, replayed } = replayOf(existing, hash);
    return { order: payment, replayed };
  }
  const original = await findPayment(shard.db, originalId);
  if (!original || original.original_payment_id) throw DomainError.notFound('payment_id', 'payment');
  // The money comes back from the payee: the payee's owner pays the refund.
  const payee = await ledger.account(original.payee_account_id, ctx.deadline, ctx.principal);
  if (!payee) throw DomainError.notFound('payment_id', 'payee account');
  requireCustomer(ctx.principal, payee.ownerId, 'payment_id');

  const route =
    original.payee_shard === original.payer_shard
      ? PaymentRoute.PAYMENT_ROUTE_SAME_SHARD
      : PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD;
  const created = await createOnce(
    deps.keys,
    shard,
    { channel, key: req.idempotencyKey, paymentId: id, bodyHash: hash },
    async (tx) => {
      const locked = (await tx('payments').where('id', originalId).forUpdate().first()) as PaymentRow;
      if (!REFUNDABLE.includes(locked.status)) {
        throw new DomainError(
          'FAILED_PRECONDITION',
          'PAYMENT_NOT_REFUNDABLE',
          `payment_id: a ${statusName(locked.status)} payment cannot be refunded or reversed`,
          [],
          { status: statusName(locked.status) },
        );
      }
      const remaining = remainingOf(locked, await refundsOf(tx, originalId));
      const amount = kind === K.PAYMENT_KIND_REFUND && req.amount > 0n ? req.amount : remaining;
      if (remaining <= 0n || amount > remaining) {
        throw new DomainError(
          'FAILED_PRECONDITION',
          'REFUND_EXCEEDS_PAYMENT',
          `amount: only ${remaining} of the payment's ${locked.amount} is left to return`,
          [{ field: 'amount', description: `must be at most ${remaining}` }],
          { remaining: remaining.toString() },
        );
      }
      return {
        id,
        channel,
        idempotencyKey: req.idempotencyKey,
        bodyHash: hash,
        kind,
        originalPaymentId: originalId,
        payerAccountId: original.payee_account_id,
        payeeAccountId: original.payer_account_id,
        payerCustomerId: payee.ownerId,
        amount,
        currency: original.currency,
        reference: req.reference,
        route,
        status: S.PAYMENT_STATUS_ACCEPTED,
        step: firstStep(kind, route),
        payerShard: original.payee_shard,
        payeeShard: original.payer_shard,
      };
    },
    new Date(),
  );
  if (created.replayed) return { order: created.payment, replayed: true };
  let row = created.row;
  ctx.log.info(
    { payment_id: id, original_payment_id: originalId, kind: K[kind], amount: row.amount },
    'return created',
  );
  row = await firstStepInline(deps, row, ctx);
  return { order: paymentToProto(row), replayed: false };
}
