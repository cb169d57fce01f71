// The request fields every payment RPC checks the same way, each violation naming its field and
// bounded to what its column holds (migrations.ts), with the kit's rules (no control characters).
import {
  bucketOfId,
  cursorInt,
  cursorUuid,
  readPage,
  text,
  timestampField,
  type PageQuery,
  type Violations,
} from '@corebank/kit';
import type { PageRequest } from '@corebank/kit/gen/corebank/v1/common';
import type { Timestamp } from '@corebank/kit/gen/google/protobuf/timestamp';
import type { PaymentStep, RequestGeo } from '@corebank/kit/gen/corebank/v1/payment';

export const MAX_KEY = 128;
export const MAX_REFERENCE = 140;
export const MAX_NOTE = 500;
/** payer_customer_id and customer_risk_state.customer_id: the customer id the ledger knows. */
export const MAX_CUSTOMER_ID = 128;

export function accountIdField(v: Violations, field: string, value: string): void {
  if (!value) v.add(field, 'is required');
  else if (value.length !== 36 || bucketOfId(value.toLowerCase()) === undefined) v.add(field, 'is not an account id');
}

export function keyField(v: Violations, key: string): void {
  text(v, 'idempotency_key', key, { max: MAX_KEY, required: true });
}

export function referenceField(v: Violations, reference: string, required = false): void {
  text(v, 'reference', reference, { max: MAX_REFERENCE, required });
}

/** A note is free text: line breaks are fine, other control characters are not. */
export function noteField(v: Violations, note: string, required = false): void {
  text(v, 'note', note, { max: MAX_NOTE, required, multiline: true });
}

export function customerIdField(v: Violations, customerId: string): void {
  text(v, 'customer_id', customerId, { max: MAX_CUSTOMER_ID, required: true });
}

export function timeField(v: Violations, field: string, t: Timestamp | undefined, required: boolean): boolean {
  if (!t) {
    if (required) v.add(field, 'is required');
    return false;
  }
  return timestampField(v, field, t);
}

export function geoFields(v: Violations, geo: RequestGeo | undefined): void {
  if (!geo) return;
  if (!geo.sessionId) v.add('geo.session_id', 'is required with a location');
  else text(v, 'geo.session_id', geo.sessionId, { max: 128 });
  if (!(Math.abs(geo.latitude) <= 90)) v.add('geo.latitude', 'must be between -90 and 90');
  if (!(Math.abs(geo.longitude) <= 180)) v.add('geo.longitude', 'must be between -180 and 180');
}

export function paymentIdField(v: Violations, id: string): void {
  if (!id) v.add('payment_id', 'is required');
  else if (id.length !== 36 || bucketOfId(id) === undefined) v.add('payment_id', 'is not a payment id');
}

/** ListPayments pages a customer's orders by seq (newest first): the cursor is the last seq. */
export const listPaymentsQuery = (customerId: string): PageQuery => ({ rpc: 'ListPayments', filters: [customerId] });

export function listPaymentsPage(v: Violations, customerId: string, page: PageRequest | undefined) {
  return readPage(v, page, listPaymentsQuery(customerId), ([seq, ...rest]) =>
    rest.length ? undefined : cursorInt(seq),
  );
}

/** ListPendingDecisions pages the queue of one step by (updated_at in microseconds, id). */
export const pendingQuery = (step: PaymentStep | undefined): PageQuery => ({
  rpc: 'ListPendingDecisions',
  filters: [step ?? 0],
});

export function pendingPage(v: Violations, step: PaymentStep | undefined, page: PageRequest | undefined) {
  return readPage(v, page, pendingQuery(step), ([us, id, ...rest]) => {
    const at = cursorInt(us);
    const uid = cursorUuid(id);
    return at !== undefined && uid && !rest.length ? { us: at, id: uid } : undefined;
  });
}
