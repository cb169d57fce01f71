// Payment events, written to the outbox in the transaction of the change they describe.
import { newEventId, subjectOf, toTimestamp, type OutboxEvent } from '@corebank/kit';
import { PaymentChanged } from '@corebank/kit/gen/corebank/v1/events';
import type { Payment, PaymentStatus } from '@corebank/kit/gen/corebank/v1/payment';

export const DOMAIN = 'payment';

/** Every event of an order (PaymentChanged, with the order as it is after the change). */
export const EVENTS = [
  'payment_accepted',
  'payment_review_required',
  'payment_approved',
  'payment_held',
  'payment_escrow_released',
  'payment_escrow_cancelled',
  'payment_disputed',
  'payment_dispute_resolved',
  'payment_credited',
  'payment_credit_failed',
  'payment_completed',
  'payment_rejected',
  'payment_cancelled',
  'payment_refunded',
  'payment_reversed',
] as const;

export type PaymentEventName = (typeof EVENTS)[number];

export function paymentChanged(name: PaymentEventName, payment: Payment, from: PaymentStatus, at: Date): OutboxEvent {
  // The shard the order lives on (and the event is written on): the payer's, or for a refund or
  // reversal its original's, whose payer is the refund's payee.
  const shard = payment.originalPaymentId ? payment.payeeShard : payment.payerShard;
  const meta = { eventId: newEventId(), occurredAt: toTimestamp(at), shard };
  return {
    id: meta.eventId,
    subject: subjectOf(DOMAIN, name),
    payload: PaymentChanged.encode({ meta, payment, from }).finish(),
  };
}
