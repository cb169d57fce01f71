// Customer events, written to the outbox in the transaction of the change they describe.
import { newEventId, subjectOf, toTimestamp, type OutboxEvent } from '@corebank/kit';
import type { Customer, CustomerStatus, KycStatus, RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import {
  CustomerCreated,
  CustomerKycChanged,
  CustomerRiskTierChanged,
  CustomerStatusChanged,
  CustomerUpdated,
  type EventMeta,
} from '@corebank/kit/gen/corebank/v1/events';

export const DOMAIN = 'customer';

export const SUBJECTS = {
  created: subjectOf(DOMAIN, 'customer_created'),
  updated: subjectOf(DOMAIN, 'customer_updated'),
  kycChanged: subjectOf(DOMAIN, 'kyc_changed'),
  statusChanged: subjectOf(DOMAIN, 'status_changed'),
  riskTierChanged: subjectOf(DOMAIN, 'risk_tier_changed'),
} as const;

/**
 * The customer as events carry it: without contact details (email, phone, address). Events travel
 * far (every consumer, the stream's retention); a consumer that needs to reach the customer asks
 * GetCustomer. Identity numbers are never in a Customer at all (only the last four digits).
 */
export const published = (c: Customer): Customer => ({ ...c, contact: undefined });

function meta(c: Customer, at: Date): EventMeta {
  return { eventId: newEventId(), occurredAt: toTimestamp(at), shard: c.shard };
}

const event = (m: EventMeta, subject: string, payload: Uint8Array): OutboxEvent => ({
  id: m.eventId,
  subject,
  payload,
});

export function customerCreated(customer: Customer, at: Date): OutboxEvent {
  const m = meta(customer, at);
  return event(m, SUBJECTS.created, CustomerCreated.encode({ meta: m, customer: published(customer) }).finish());
}

export function customerUpdated(customer: Customer, changedFields: string[], at: Date): OutboxEvent {
  const m = meta(customer, at);
  return event(
    m,
    SUBJECTS.updated,
    CustomerUpdated.encode({ meta: m, customer: published(customer), changedFields }).finish(),
  );
}

export function kycChanged(customer: Customer, from: KycStatus, to: KycStatus, reason: string, at: Date): OutboxEvent {
  const m = meta(customer, at);
  return event(
    m,
    SUBJECTS.kycChanged,
    CustomerKycChanged.encode({ meta: m, customer: published(customer), from, to, reason }).finish(),
  );
}

export function statusChanged(
  customer: Customer,
  from: CustomerStatus,
  to: CustomerStatus,
  reason: string,
  at: Date,
): OutboxEvent {
  const m = meta(customer, at);
  return event(
    m,
    SUBJECTS.statusChanged,
    CustomerStatusChanged.encode({ meta: m, customer: published(customer), from, to, reason }).finish(),
  );
}

export function riskTierChanged(
  customer: Customer,
  from: RiskTier,
  to: RiskTier,
  reason: string,
  at: Date,
): OutboxEvent {
  const m = meta(customer, at);
  return event(
    m,
    SUBJECTS.riskTierChanged,
    CustomerRiskTierChanged.encode({ meta: m, customer: published(customer), from, to, reason }).finish(),
  );
}
