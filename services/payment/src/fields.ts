// The request fields every payment RPC checks the same way, each violation naming its field.
import { bucketOfId, type Violations } from '@corebank/kit';
import type { RequestGeo } from '@corebank/kit/gen/corebank/v1/payment';

export const MAX_KEY = 128;
export const MAX_REFERENCE = 140;

export function accountIdField(v: Violations, field: string, value: string): void {
  if (!value) v.add(field, 'is required');
  else if (bucketOfId(value.toLowerCase()) === undefined) v.add(field, 'is not an account id');
}

export function keyField(v: Violations, key: string): void {
  if (!key) v.add('idempotency_key', 'is required');
  else if (key.length > MAX_KEY) v.add('idempotency_key', `must be at most ${MAX_KEY} characters`);
}

export function geoFields(v: Violations, geo: RequestGeo | undefined): void {
  if (!geo) return;
  if (!geo.sessionId) v.add('geo.session_id', 'is required with a location');
  else if (geo.sessionId.length > 128) v.add('geo.session_id', 'must be at most 128 characters');
  if (!(Math.abs(geo.latitude) <= 90)) v.add('geo.latitude', 'must be between -90 and 90');
  if (!(Math.abs(geo.longitude) <= 180)) v.add('geo.longitude', 'must be between -180 and 180');
}

export function paymentIdField(v: Violations, id: string): void {
  if (!id) v.add('payment_id', 'is required');
  else if (bucketOfId(id) === undefined) v.add('payment_id', 'is not a payment id');
}
