// Conversions between ledger rows and the wire messages.
import { toTimestamp } from '@corebank/kit';
import type { Account, Transfer } from '@corebank/kit/gen/corebank/v1/account';
import type { StoredTransfer } from './ledger/types.js';

export interface AccountRow {
  id: string;
  owner_id: string;
  currency: string;
  code: number;
  debits_must_not_exceed_credits: boolean;
  credits_must_not_exceed_debits: boolean;
  overdraft_limit: bigint;
  minimum_balance: bigint;
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
  system: boolean;
  reference: string;
  created_at: Date;
  body_hash: string;
  product_id: string;
  product_version: number;
  debits_blocked: boolean;
  closed: boolean;
}

export function accountToProto(r: AccountRow, shard: number): Account {
  return {
    id: r.id,
    ownerId: r.owner_id,
    currency: r.currency,
    code: r.code,
    flags: {
      debitsMustNotExceedCredits: r.debits_must_not_exceed_credits,
      creditsMustNotExceedDebits: r.credits_must_not_exceed_debits,
    },
    overdraftLimit: r.overdraft_limit,
    minimumBalance: r.minimum_balance,
    debitsPending: r.debits_pending,
    debitsPosted: r.debits_posted,
    creditsPending: r.credits_pending,
    creditsPosted: r.credits_posted,
    createdAt: toTimestamp(r.created_at),
    system: r.system,
    shard,
    reference: r.reference,
    productId: r.product_id,
    productVersion: r.product_version,
    debitsBlocked: r.debits_blocked,
    closed: r.closed,
  };
}

export function transferToProto(t: StoredTransfer): Transfer {
  return {
    id: t.id,
    debitAccountId: t.debitAccountId,
    creditAccountId: t.creditAccountId,
    amount: t.amount,
    kind: t.kind,
    linked: t.linked,
    pendingId: t.pendingId ?? '',
    timeoutSeconds: t.timeoutSeconds,
    code: t.code,
    reference: t.reference,
    currency: t.currency,
    createdAt: toTimestamp(t.createdAt),
    businessDate: t.businessDate,
    ...(t.expiresAt ? { expiresAt: toTimestamp(t.expiresAt) } : {}),
  };
}
