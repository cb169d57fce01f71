// Ledger events, one per journal row, written to the outbox in the batch's transaction.
import { newEventId, subjectOf, toTimestamp, type OutboxEvent } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import {
  AccountOpened,
  AccountUpdated,
  PendingTransferPosted,
  PendingTransferVoided,
  TransferPending,
  TransferPosted,
  type EventMeta,
} from '@corebank/kit/gen/corebank/v1/events';
import { transferToProto } from './proto.js';
import { TransferKind as K, type StoredTransfer } from './ledger/types.js';

export const DOMAIN = 'account';

export const SUBJECTS = {
  accountOpened: subjectOf(DOMAIN, 'account_opened'),
  accountUpdated: subjectOf(DOMAIN, 'account_updated'),
  transferPosted: subjectOf(DOMAIN, 'transfer_posted'),
  transferPending: subjectOf(DOMAIN, 'transfer_pending'),
  pendingPosted: subjectOf(DOMAIN, 'pending_posted'),
  pendingVoided: subjectOf(DOMAIN, 'pending_voided'),
  pendingExpired: subjectOf(DOMAIN, 'pending_expired'),
} as const;

function meta(shard: number, at: Date): EventMeta {
  return { eventId: newEventId(), occurredAt: toTimestamp(at), shard };
}

export function accountOpenedEvent(account: Account, shard: number, at: Date): OutboxEvent {
  const m = meta(shard, at);
  return {
    id: m.eventId,
    subject: SUBJECTS.accountOpened,
    payload: AccountOpened.encode({ meta: m, account }).finish(),
  };
}

export function accountUpdatedEvent(account: Account, shard: number, at: Date): OutboxEvent {
  const m = meta(shard, at);
  return {
    id: m.eventId,
    subject: SUBJECTS.accountUpdated,
    payload: AccountUpdated.encode({ meta: m, account }).finish(),
  };
}

export function transferEvent(t: StoredTransfer, pending: StoredTransfer | undefined, shard: number): OutboxEvent {
  const m = meta(shard, t.createdAt);
  const transfer = transferToProto(t);
  const p = pending ? transferToProto(pending) : undefined;
  switch (t.kind) {
    case K.TRANSFER_KIND_SINGLE_PHASE:
      return {
        id: m.eventId,
        subject: SUBJECTS.transferPosted,
        payload: TransferPosted.encode({ meta: m, transfer }).finish(),
      };
    case K.TRANSFER_KIND_PENDING:
      return {
        id: m.eventId,
        subject: SUBJECTS.transferPending,
        payload: TransferPending.encode({ meta: m, transfer }).finish(),
      };
    case K.TRANSFER_KIND_POST_PENDING:
      return {
        id: m.eventId,
        subject: SUBJECTS.pendingPosted,
        payload: PendingTransferPosted.encode({ meta: m, transfer, pending: p }).finish(),
      };
    default: {
      const expired = t.kind === K.TRANSFER_KIND_EXPIRE_PENDING;
      return {
        id: m.eventId,
        subject: expired ? SUBJECTS.pendingExpired : SUBJECTS.pendingVoided,
        payload: PendingTransferVoided.encode({ meta: m, transfer, pending: p, expired }).finish(),
      };
    }
  }
}
