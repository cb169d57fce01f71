import { PendingStatus, TransferKind, TransferResultCode as R } from '@corebank/kit/gen/corebank/v1/account';

export { TransferKind, R as ResultCode };

/** An account row as locked for a batch. Balances change in memory, then are written once. */
export interface AccountState {
  id: string;
  ownerId: string;
  currency: string;
  debitsMustNotExceedCredits: boolean;
  creditsMustNotExceedDebits: boolean;
  overdraftLimit: bigint;
  /** The posted balance (credits - debits, less debits pending) a debit may not take it below; 0: none. */
  minimumBalance: bigint;
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
  /** The day being closed, for a booking the close of business makes (scope ledger:close). */
  businessDate?: string;
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
  /** The business date the booking belongs to (YYYY-MM-DD), the shard's when it was written. */
  businessDate: string;
}

/** A batch transaction's clock: the database's time and the shard's business date. */
export interface BatchClock {
  now: Date;
  businessDate: string;
  /** The last day whose general-ledger step closed it on this shard ('' : none). */
  closedThrough: string;
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

/** How a pending transfer was resolved: the kind of the transfer that closed it. */
export type Resolution =
  | TransferKind.TRANSFER_KIND_POST_PENDING
  | TransferKind.TRANSFER_KIND_VOID_PENDING
  | TransferKind.TRANSFER_KIND_EXPIRE_PENDING;

/** The one place that says what each resolution means, for the rules and for readers. */
const RESOLUTIONS: Record<Resolution, { status: PendingStatus; refusal: R }> = {
  [TransferKind.TRANSFER_KIND_POST_PENDING]: {
    status: PendingStatus.PENDING_STATUS_POSTED,
    refusal: R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_POSTED,
  },
  [TransferKind.TRANSFER_KIND_VOID_PENDING]: {
    status: PendingStatus.PENDING_STATUS_VOIDED,
    refusal: R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_VOIDED,
  },
  [TransferKind.TRANSFER_KIND_EXPIRE_PENDING]: {
    status: PendingStatus.PENDING_STATUS_EXPIRED,
    refusal: R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED,
  },
};

export const isResolution = (kind: number): kind is Resolution => kind in RESOLUTIONS;

/** What a later post, void or expiry of a pending transfer resolved this way is told. */
export const refusalFor = (r: Resolution): R => RESOLUTIONS[r].refusal;

/** A pending transfer's status, from the kind of the transfer that resolved it (null: still open). */
export function pendingStatusOf(kind: TransferKind, resolvedBy: number | null): PendingStatus {
  if (kind !== TransferKind.TRANSFER_KIND_PENDING) return PendingStatus.PENDING_STATUS_UNSPECIFIED;
  if (resolvedBy === null) return PendingStatus.PENDING_STATUS_PENDING;
  return isResolution(resolvedBy) ? RESOLUTIONS[resolvedBy].status : PendingStatus.PENDING_STATUS_UNSPECIFIED;
}

export interface TransferOutcome {
  id: string;
  code: R;
  transfer?: StoredTransfer;
  replayed: boolean;
  field: string;
}
