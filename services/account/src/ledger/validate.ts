// Request validation for transfers: any violation rejects the whole request with
// INVALID_ARGUMENT naming every bad field, before anything is read or written. Every field is
// bounded to its journal column (code and timeout_seconds are uint32 on the wire but `integer` in
// PostgreSQL), so no request can make the group-commit statement fail for its neighbours.
import { createHash } from 'node:crypto';
import { DomainError, enumValue, int64, isIsoDate, repeated, text, uint32, uuid, Violations } from '@corebank/kit';
import type { Transfer } from '@corebank/kit/gen/corebank/v1/account';
import { TransferKind as K, type TransferInput } from './types.js';

export const MAX_TRANSFERS_PER_REQUEST = 8190;
const MAX_REFERENCE = 256;
/** What a caller may send; EXPIRE_PENDING is written by the ledger itself. */
const CALLER_KINDS = [
  K.TRANSFER_KIND_SINGLE_PHASE,
  K.TRANSFER_KIND_PENDING,
  K.TRANSFER_KIND_POST_PENDING,
  K.TRANSFER_KIND_VOID_PENDING,
] as const;

export function bodyHash(t: Omit<TransferInput, 'bodyHash' | 'path' | 'id' | 'actingCustomerId'>): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        t.debitAccountId,
        t.creditAccountId,
        t.amount.toString(),
        t.kind,
        t.linked,
        t.pendingId,
        t.timeoutSeconds,
        t.code,
        t.reference,
        // Only when set, so that every other transfer keeps the hash it always had.
        ...(t.businessDate ? [t.businessDate] : []),
      ]),
    )
    .digest('base64url');
}

/** The scope that lets the close of business date a booking to the day it closes. */
export const BACKDATE_SCOPE = 'ledger:close';

export function validateTransfers(
  transfers: Transfer[],
  actingCustomerId?: string,
  mayBackdate = false,
): TransferInput[] {
  const v = new Violations();
  if (!mayBackdate && transfers.some((t) => t.businessDate)) {
    throw new DomainError(
      'PERMISSION_DENIED',
      'PERMISSION_DENIED',
      `transfers[].business_date: only the close of business (scope ${BACKDATE_SCOPE}) dates a booking`,
      [{ field: 'transfers[].business_date', description: `needs the ${BACKDATE_SCOPE} scope` }],
    );
  }
  repeated(v, 'transfers', transfers, { min: 1, max: MAX_TRANSFERS_PER_REQUEST });
  const out = transfers.slice(0, MAX_TRANSFERS_PER_REQUEST).map((t, i): TransferInput => {
    const p = `transfers[${i}]`;
    const id = uuid(v, `${p}.id`, t.id) ?? '';
    const debit = uuid(v, `${p}.debit_account_id`, t.debitAccountId) ?? '';
    const credit = uuid(v, `${p}.credit_account_id`, t.creditAccountId) ?? '';
    const kind = t.kind;
    enumValue(v, `${p}.kind`, kind, K, { allowed: CALLER_KINDS });
    const twoPhaseEnd = kind === K.TRANSFER_KIND_POST_PENDING || kind === K.TRANSFER_KIND_VOID_PENDING;
    if (int64(v, `${p}.amount`, t.amount, { min: 0n }) && t.amount === 0n && !twoPhaseEnd)
      v.add(`${p}.amount`, 'must be greater than zero');
    let pendingId: string | null = null;
    if (twoPhaseEnd) pendingId = uuid(v, `${p}.pending_id`, t.pendingId) ?? null;
    else if (t.pendingId) v.add(`${p}.pending_id`, 'is only allowed with POST_PENDING or VOID_PENDING');
    if (t.timeoutSeconds && kind !== K.TRANSFER_KIND_PENDING)
      v.add(`${p}.timeout_seconds`, 'is only allowed with PENDING');
    else uint32(v, `${p}.timeout_seconds`, t.timeoutSeconds);
    uint32(v, `${p}.code`, t.code);
    text(v, `${p}.reference`, t.reference, { max: MAX_REFERENCE });
    if (t.businessDate && !isIsoDate(t.businessDate)) v.add(`${p}.business_date`, 'must be a date YYYY-MM-DD');
    const body = {
      debitAccountId: debit,
      creditAccountId: credit,
      amount: t.amount,
      kind,
      linked: t.linked,
      pendingId,
      timeoutSeconds: t.timeoutSeconds,
      code: t.code,
      reference: t.reference,
      ...(t.businessDate ? { businessDate: t.businessDate } : {}),
    };
    return {
      id,
      ...body,
      bodyHash: bodyHash(body),
      path: p,
      ...(actingCustomerId !== undefined ? { actingCustomerId } : {}),
    };
  });
  v.throwIfAny();
  return out;
}
