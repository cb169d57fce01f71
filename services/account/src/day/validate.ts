// Request checks of BusinessDayService, and the idempotency keys of its two commands.
import { createHash } from 'node:crypto';
import { DomainError, isIsoDate, text, Violations } from '@corebank/kit';
import type { RunCloseOfBusinessRequest, SetBusinessDateRequest } from '@corebank/kit/gen/corebank/v1/day';
import type { Knex } from 'knex';
import { claimKey } from './store.js';

function date(v: Violations, field: string, value: string, required: boolean): void {
  if (!text(v, field, value, { max: 10, required })) return;
  if (!isIsoDate(value)) v.add(field, 'must be a date YYYY-MM-DD');
}

const key = (v: Violations, value: string) => text(v, 'idempotency_key', value, { max: 128, required: true });

export function validateSetBusinessDate(req: SetBusinessDateRequest): void {
  const v = new Violations();
  date(v, 'business_date', req.businessDate, true);
  key(v, req.idempotencyKey);
  v.throwIfAny();
}

export function validateRunCloseOfBusiness(req: RunCloseOfBusinessRequest): void {
  const v = new Violations();
  date(v, 'through', req.through, false);
  key(v, req.idempotencyKey);
  v.throwIfAny();
}

export function validateBusinessDate(value: string, field = 'business_date'): void {
  const v = new Violations();
  date(v, field, value, true);
  v.throwIfAny();
}

/** Claims the request's key; ALREADY_EXISTS when the key was used with another request. */
export async function claimIdempotencyKey(db: Knex, rpc: string, idempotencyKey: string, body: unknown): Promise<void> {
  const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  if (!(await claimKey(db, idempotencyKey, rpc, hash))) {
    throw new DomainError('ALREADY_EXISTS', 'IDEMPOTENCY_KEY_REUSED', 'idempotency_key: used with another request', [
      { field: 'idempotency_key', description: 'used with another request' },
    ]);
  }
}
