// Request validation for transfers: any violation rejects the whole request with
// INVALID_ARGUMENT naming every bad field, before anything is read or written.
import { createHash } from 'node:crypto';
import { INT64_MAX, isUuid, Violations } from '@corebank/kit';
import type { Transfer } from '@corebank/kit/gen/corebank/v1/account';
import { TransferKind as K, type TransferInput } from './types.js';

export const MAX_TRANSFERS_PER_REQUEST = 8190;
const MAX_REFERENCE = 256;
/** code and timeout_seconds are uint32 on the wire and `integer` in the journal. */
const INT32_MAX = 2 ** 31 - 1;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

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
      ]),
    )
    .digest('base64url');
}

export function validateTransfers(transfers: Transfer[], actingCustomerId?: string): TransferInput[] {
  const v = new Violations();
  if (transfers.length === 0) v.add('transfers', 'must hold at least one transfer');
  if (transfers.length > MAX_TRANSFERS_PER_REQUEST)
    v.add('transfers', `must hold at most ${MAX_TRANSFERS_PER_REQUEST} transfers`);
  const out = transfers.map((t, i): TransferInput => {
    const p = `transfers[${i}]`;
    const id = t.id.toLowerCase();
    if (!t.id) v.add(`${p}.id`, 'is required (a UUID chosen by the caller: the idempotency key)');
    else if (!isUuid(id)) v.add(`${p}.id`, 'must be a UUID');
    const debit = t.debitAccountId.toLowerCase();
    const credit = t.creditAccountId.toLowerCase();
    if (!debit) v.add(`${p}.debit_account_id`, 'is required');
    else if (!isUuid(debit)) v.add(`${p}.debit_account_id`, 'must be a UUID');
    if (!credit) v.add(`${p}.credit_account_id`, 'is required');
    else if (!isUuid(credit)) v.add(`${p}.credit_account_id`, 'must be a UUID');
    const kind = t.kind;
    const twoPhaseEnd = kind === K.TRANSFER_KIND_POST_PENDING || kind === K.TRANSFER_KIND_VOID_PENDING;
    if (kind === K.TRANSFER_KIND_UNSPECIFIED || kind === K.TRANSFER_KIND_EXPIRE_PENDING || !(kind in K)) {
      v.add(`${p}.kind`, 'must be SINGLE_PHASE, PENDING, POST_PENDING or VOID_PENDING');
    }
    if (t.amount < 0n) v.add(`${p}.amount`, 'must not be negative');
    else if (t.amount > INT64_MAX) v.add(`${p}.amount`, 'overflows int64');
    else if (t.amount === 0n && !twoPhaseEnd) v.add(`${p}.amount`, 'must be greater than zero');
    const pendingId = t.pendingId.toLowerCase();
    if (twoPhaseEnd) {
      if (!pendingId) v.add(`${p}.pending_id`, 'is required to post or void');
      else if (!isUuid(pendingId)) v.add(`${p}.pending_id`, 'must be a UUID');
    } else if (pendingId) {
      v.add(`${p}.pending_id`, 'is only allowed with POST_PENDING or VOID_PENDING');
    }
    if (t.timeoutSeconds && kind !== K.TRANSFER_KIND_PENDING)
      v.add(`${p}.timeout_seconds`, 'is only allowed with PENDING');
    else if (t.timeoutSeconds > INT32_MAX) v.add(`${p}.timeout_seconds`, `must be at most ${INT32_MAX}`);
    if (t.code > INT32_MAX) v.add(`${p}.code`, `must be at most ${INT32_MAX}`);
    if (t.reference.length > MAX_REFERENCE) v.add(`${p}.reference`, `must be at most ${MAX_REFERENCE} characters`);
    else if (CONTROL.test(t.reference)) v.add(`${p}.reference`, 'must not hold control characters');
    const body = {
      debitAccountId: debit,
      creditAccountId: credit,
      amount: t.amount,
      kind,
      linked: t.linked,
      pendingId: pendingId || null,
      timeoutSeconds: t.timeoutSeconds,
      code: t.code,
      reference: t.reference,
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
