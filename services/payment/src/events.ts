// Payment events, written to the outbox in the transaction of the change they describe.
import { newEventId, subjectOf, toTimestamp, type OutboxEvent } from '@corebank/kit';
import { PaymentChanged } from '@corebank/kit/gen/corebank/v1/events';
import type { Payment, PaymentStatus } from '@corebank/kit/gen/corebank/v1/payment';

export const DOMAIN = 'payment';

export const EVENTS = [
  'payment_accepted',
  'payment_held',
  'payment_credited',
  'payment_credit_failed',
  'payment_completed',
  'payment_rejected',
] as const;

export type PaymentEventName = (typeof EVENTS)[number];

/** The events after which the saga has work left: its consumer listens to these. */
export const SAGA_SUBJECTS = ['payment_accepted', 'payment_held', 'payment_credited', 'payment_credit_failed'].map(
  (e) => subjectOf(DOMAIN, e),
);

export function paymentChanged(name: string, payment: Payment, from: PaymentStatus, at: Date): OutboxEvent {
  const meta = { eventId: newEventId(), occurredAt: toTimestamp(at), shard: payment.payerShard };
  return {
    id: meta.eventId,
    subject: subjectOf(DOMAIN, name),
    payload: PaymentChanged.encode({ meta, payment, from }).finish(),
  };
}
