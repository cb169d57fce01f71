import { TransferKind, TransferResultCode as R } from '@corebank/kit/gen/corebank/v1/account';

export { TransferKind, R as ResultCode };

/** An account row as locked for a batch. Balances change in memory, then are written once. */
export interface AccountState {
  id: string;
  ownerId: string;
  currency: string;
  debitsMustNotExceedCredits: boolean;
  creditsMustNotExceedDebits: boolean;
  overdraftLimit: bigint;
  debitsPending: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  creditsPosted: bigint;
  entrySeq: bigint;
  debitsBlocked: boolean;
  closed: boolean;
}

/** A validated transfer request: the caller's fields, normalised. */
export interface TransferInput {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
  kind: TransferKind;
  linked: boolean;
  pendingId: string | null;
  timeoutSeconds: number;
  code: number;
  reference: string;
  bodyHash: string;
  /** Request path of this transfer, e.g. "transfers[3]", for result fields. */
  path: string;
  /** Set when the caller's token is bound to a customer: the debit account must be theirs. */
  actingCustomerId?: string;
}

/** A journal row. */
export interface StoredTransfer {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
  currency: string;
  kind: TransferKind;
  linked: boolean;
  pendingId: string | null;
  timeoutSeconds: number;
  expiresAt: Date | null;
  code: number;
  reference: string;
  bodyHash: string;
  createdAt: Date;
}

export interface Rejection {
  id: string;
  bodyHash: string;
  result: R;
  field: string;
}

export interface Entry {
  accountId: string;
  seq: bigint;
  transferId: string;
  counterpartyId: string;
  postedChange: bigint;
  pendingChange: bigint;
  debitsPending: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  creditsPosted: bigint;
  createdAt: Date;
}

export type Resolution = 'posted' | 'voided' | 'expired';

export interface TransferOutcome {
  id: string;
  code: R;
  transfer?: StoredTransfer;
  replayed: boolean;
  field: string;
}
