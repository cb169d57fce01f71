// The ledger's rules, as a pure function over state loaded and locked for one batch: no I/O
// here, so every rule is decided in one place and the batch writes exactly what was decided.
import { addChecked } from '@corebank/kit';
import {
  ResultCode as R,
  TransferKind as K,
  type AccountState,
  type Entry,
  type Rejection,
  type Resolution,
  type StoredTransfer,
  type TransferInput,
  type TransferOutcome,
} from './types.js';

export interface BatchState {
  accounts: Map<string, AccountState>;
  transfers: Map<string, StoredTransfer>;
  rejections: Map<string, Rejection>;
  /** Pending transfers referenced by the batch, with how they were resolved so far. */
  pendings: Map<string, { transfer: StoredTransfer; resolution?: Resolution }>;
}

export interface BatchWrites {
  transfers: StoredTransfer[];
  entries: Entry[];
  rejections: Rejection[];
  /** Accounts whose balances changed. */
  touched: Set<string>;
  /** Pending holds opened (with a timeout) and closed by this batch. */
  holdsOpened: StoredTransfer[];
  holdsClosed: string[];
}

/** Outcomes that depend on balances or on a pending transfer's state: final for their id. */
const PERSISTED = new Set<R>([
  R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS,
  R.TRANSFER_RESULT_CODE_EXCEEDS_DEBITS,
  R.TRANSFER_RESULT_CODE_OVERFLOWS_BALANCE,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_POSTED,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_VOIDED,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED,
  R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED,
  R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_CLOSED,
  R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_CLOSED,
]);

class Failure {
  constructor(
    readonly code: R,
    readonly field: string,
  ) {}
}

type Balances = Pick<AccountState, 'debitsPending' | 'debitsPosted' | 'creditsPending' | 'creditsPosted' | 'entrySeq'>;

const snapshot = (a: AccountState): Balances => ({
  debitsPending: a.debitsPending,
  debitsPosted: a.debitsPosted,
  creditsPending: a.creditsPending,
  creditsPosted: a.creditsPosted,
  entrySeq: a.entrySeq,
});

/**
 * Applies groups of transfers in order. Each group is one request's transfers on this shard;
 * linked chains inside it succeed or fail as a whole. Returns one outcome per input, in order.
 */
export function applyBatch(
  groups: TransferInput[][],
  state: BatchState,
  now: Date,
  writes: BatchWrites,
): TransferOutcome[][] {
  return groups.map((group) => {
    const outcomes: TransferOutcome[] = new Array(group.length);
    let start = 0;
    while (start < group.length) {
      let end = start;
      while (end < group.length && group[end]!.linked) end++;
      if (end === group.length) {
        // The last transfer says "linked" but nothing follows: the chain is open.
        for (let i = start; i < group.length; i++) {
          outcomes[i] = fail(group[i]!, R.TRANSFER_RESULT_CODE_LINKED_EVENT_CHAIN_OPEN, `${group[i]!.path}.linked`);
        }
        break;
      }
      applyChain(group.slice(start, end + 1), state, now, writes).forEach((o, k) => (outcomes[start + k] = o));
      start = end + 1;
    }
    return outcomes;
  });
}

function fail(t: TransferInput, code: R, field: string): TransferOutcome {
  return { id: t.id, code, replayed: false, field };
}

function applyChain(chain: TransferInput[], state: BatchState, now: Date, writes: BatchWrites): TransferOutcome[] {
  const undo = new Map<string, Balances>();
  const pendingUndo = new Map<string, Resolution | undefined>();
  const mark = {
    transfers: writes.transfers.length,
    entries: writes.entries.length,
    holdsOpened: writes.holdsOpened.length,
    holdsClosed: writes.holdsClosed.length,
  };
  const outcomes: TransferOutcome[] = [];
  for (const t of chain) {
    const prior = replay(t, state);
    if (prior) {
      outcomes.push(prior);
      if (prior.code !== R.TRANSFER_RESULT_CODE_OK) break;
      continue;
    }
    try {
      const stored = applyOne(t, state, now, writes, undo, pendingUndo);
      state.transfers.set(stored.id, stored);
      outcomes.push({ id: t.id, code: R.TRANSFER_RESULT_CODE_OK, transfer: stored, replayed: false, field: '' });
    } catch (err) {
      if (!(err instanceof Failure)) throw err;
      outcomes.push(fail(t, err.code, err.field));
      break;
    }
  }
  const failed = outcomes.find((o) => o.code !== R.TRANSFER_RESULT_CODE_OK);
  if (!failed) return outcomes;

  // Roll the chain back: balances, pending resolutions and queued writes.
  for (const [id, b] of undo) Object.assign(state.accounts.get(id)!, b);
  for (const [id, r] of pendingUndo) state.pendings.get(id)!.resolution = r;
  for (const t of writes.transfers.slice(mark.transfers)) {
    state.transfers.delete(t.id);
    state.pendings.delete(t.id);
  }
  writes.transfers.length = mark.transfers;
  writes.entries.length = mark.entries;
  writes.holdsOpened.length = mark.holdsOpened;
  writes.holdsClosed.length = mark.holdsClosed;

  const result = chain.map((t, i): TransferOutcome => {
    const o = outcomes[i];
    if (o === failed) return o;
    if (o?.replayed) return o;
    // Members after the break that were decided before keep their recorded result.
    return (!o && replay(t, state)) || fail(t, R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED, `${t.path}.linked`);
  });
  // A refusal that depends on balances or pending state is final for every id of the chain, so a
  // retried chain gets its original results even after the balances have changed.
  if (!failed.replayed && PERSISTED.has(failed.code)) {
    chain.forEach((t, i) => {
      const o = result[i]!;
      if (o.replayed) return;
      const rej: Rejection = { id: t.id, bodyHash: t.bodyHash, result: o.code, field: o.field };
      state.rejections.set(rej.id, rej);
      writes.rejections.push(rej);
    });
  }
  return result;
}

/** The recorded result of an id seen before (in the journal, the rejections, or earlier in this batch). */
function replay(t: TransferInput, state: BatchState): TransferOutcome | undefined {
  const stored = state.transfers.get(t.id);
  if (stored) {
    return stored.bodyHash === t.bodyHash
      ? { id: t.id, code: R.TRANSFER_RESULT_CODE_OK, transfer: stored, replayed: true, field: '' }
      : fail(t, R.TRANSFER_RESULT_CODE_EXISTS_WITH_DIFFERENT_BODY, `${t.path}.id`);
  }
  const rej = state.rejections.get(t.id);
  if (rej) {
    return rej.bodyHash === t.bodyHash
      ? { id: t.id, code: rej.result, replayed: true, field: rej.field }
      : fail(t, R.TRANSFER_RESULT_CODE_EXISTS_WITH_DIFFERENT_BODY, `${t.path}.id`);
  }
  return undefined;
}

function applyOne(
  t: TransferInput,
  state: BatchState,
  now: Date,
  writes: BatchWrites,
  undo: Map<string, Balances>,
  pendingUndo: Map<string, Resolution | undefined>,
): StoredTransfer {
  const p = t.path;
  if (t.debitAccountId === t.creditAccountId)
    throw new Failure(R.TRANSFER_RESULT_CODE_ACCOUNTS_MUST_BE_DIFFERENT, `${p}.credit_account_id`);
  const debit = state.accounts.get(t.debitAccountId);
  if (!debit) throw new Failure(R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_FOUND, `${p}.debit_account_id`);
  const credit = state.accounts.get(t.creditAccountId);
  if (!credit) throw new Failure(R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_NOT_FOUND, `${p}.credit_account_id`);
  if (debit.currency !== credit.currency)
    throw new Failure(R.TRANSFER_RESULT_CODE_CURRENCY_MISMATCH, `${p}.credit_account_id`);
  if (t.actingCustomerId !== undefined && debit.ownerId !== t.actingCustomerId) {
    throw new Failure(R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_OWNED, `${p}.debit_account_id`);
  }
  // Releasing a hold (void, expiry) is always allowed: it gives funds back.
  const releases = t.kind === K.TRANSFER_KIND_VOID_PENDING || t.kind === K.TRANSFER_KIND_EXPIRE_PENDING;
  if (!releases) {
    if (debit.closed) throw new Failure(R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_CLOSED, `${p}.debit_account_id`);
    if (credit.closed) throw new Failure(R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_CLOSED, `${p}.credit_account_id`);
    // A frozen owner's funds cannot leave; a hold taken before the freeze may still be posted.
    if (debit.debitsBlocked && t.kind !== K.TRANSFER_KIND_POST_PENDING) {
      throw new Failure(R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED, `${p}.debit_account_id`);
    }
  }

  let amount = t.amount;
  // Changes to [debitsPending, debitsPosted, creditsPending, creditsPosted] on each side.
  let pendingDelta = 0n;
  let postedDelta = 0n;
  let pending: { transfer: StoredTransfer; resolution?: Resolution } | undefined;
  let expiresAt: Date | null = null;

  switch (t.kind) {
    case K.TRANSFER_KIND_SINGLE_PHASE:
      postedDelta = amount;
      break;
    case K.TRANSFER_KIND_PENDING:
      pendingDelta = amount;
      if (t.timeoutSeconds > 0) expiresAt = new Date(now.getTime() + t.timeoutSeconds * 1000);
      break;
    case K.TRANSFER_KIND_POST_PENDING:
    case K.TRANSFER_KIND_VOID_PENDING:
    case K.TRANSFER_KIND_EXPIRE_PENDING: {
      pending = state.pendings.get(t.pendingId!);
      if (!pending) throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_NOT_FOUND, `${p}.pending_id`);
      const pt = pending.transfer;
      if (pt.kind !== K.TRANSFER_KIND_PENDING)
        throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_NOT_PENDING, `${p}.pending_id`);
      if (pending.resolution === 'posted')
        throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_POSTED, `${p}.pending_id`);
      if (pending.resolution === 'voided')
        throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_VOIDED, `${p}.pending_id`);
      if (pending.resolution === 'expired')
        throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED, `${p}.pending_id`);
      const timedOut = pt.expiresAt !== null && pt.expiresAt.getTime() <= now.getTime();
      if (t.kind === K.TRANSFER_KIND_EXPIRE_PENDING ? !timedOut : timedOut) {
        throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED, `${p}.pending_id`);
      }
      if (pt.debitAccountId !== t.debitAccountId || pt.creditAccountId !== t.creditAccountId) {
        throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS, `${p}.debit_account_id`);
      }
      pendingDelta = -pt.amount;
      if (t.kind === K.TRANSFER_KIND_POST_PENDING) {
        if (amount === 0n) amount = pt.amount;
        if (amount > pt.amount)
          throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_PENDING_TRANSFER_AMOUNT, `${p}.amount`);
        postedDelta = amount;
      } else {
        if (amount !== 0n && amount !== pt.amount) {
          throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT, `${p}.amount`);
        }
        amount = pt.amount;
      }
      break;
    }
    default:
      throw new Error(`unreachable transfer kind ${t.kind}`);
  }

  const next = (a: AccountState, side: 'debits' | 'credits') => {
    const dp = side === 'debits' ? addChecked(a.debitsPending, pendingDelta) : a.debitsPending;
    const dpo = side === 'debits' ? addChecked(a.debitsPosted, postedDelta) : a.debitsPosted;
    const cp = side === 'credits' ? addChecked(a.creditsPending, pendingDelta) : a.creditsPending;
    const cpo = side === 'credits' ? addChecked(a.creditsPosted, postedDelta) : a.creditsPosted;
    if (dp === undefined || dpo === undefined || cp === undefined || cpo === undefined) {
      throw new Failure(R.TRANSFER_RESULT_CODE_OVERFLOWS_BALANCE, `${p}.amount`);
    }
    // Totals of pending + posted must stay in int64 too.
    if (addChecked(dp, dpo) === undefined || addChecked(cp, cpo) === undefined) {
      throw new Failure(R.TRANSFER_RESULT_CODE_OVERFLOWS_BALANCE, `${p}.amount`);
    }
    return { debitsPending: dp, debitsPosted: dpo, creditsPending: cp, creditsPosted: cpo };
  };
  const d = next(debit, 'debits');
  const c = next(credit, 'credits');
  // Limits are checked only when a transfer adds to the constrained side; releasing a hold never fails.
  if (
    debit.debitsMustNotExceedCredits &&
    pendingDelta + postedDelta > 0n &&
    d.debitsPending + d.debitsPosted > d.creditsPosted + debit.overdraftLimit
  ) {
    throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS, `${p}.amount`);
  }
  if (
    credit.creditsMustNotExceedDebits &&
    pendingDelta + postedDelta > 0n &&
    c.creditsPending + c.creditsPosted > c.debitsPosted
  ) {
    throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_DEBITS, `${p}.amount`);
  }

  for (const a of [debit, credit]) if (!undo.has(a.id)) undo.set(a.id, snapshot(a));
  Object.assign(debit, d);
  Object.assign(credit, c);
  writes.touched.add(debit.id).add(credit.id);

  const stored: StoredTransfer = {
    id: t.id,
    debitAccountId: t.debitAccountId,
    creditAccountId: t.creditAccountId,
    amount,
    currency: debit.currency,
    kind: t.kind,
    linked: t.linked,
    pendingId: t.pendingId,
    timeoutSeconds: t.timeoutSeconds,
    expiresAt,
    code: t.code,
    reference: t.reference,
    bodyHash: t.bodyHash,
    createdAt: now,
  };
  writes.transfers.push(stored);
  if (pending) {
    pendingUndo.set(pending.transfer.id, pending.resolution);
    pending.resolution =
      t.kind === K.TRANSFER_KIND_POST_PENDING
        ? 'posted'
        : t.kind === K.TRANSFER_KIND_VOID_PENDING
          ? 'voided'
          : 'expired';
    writes.holdsClosed.push(pending.transfer.id);
  }
  if (t.kind === K.TRANSFER_KIND_PENDING) {
    // A new pending transfer can be posted or voided later in the same batch.
    state.pendings.set(stored.id, { transfer: stored });
    if (expiresAt) writes.holdsOpened.push(stored);
  }
  for (const [a, other, sign] of [
    [debit, credit, -1n],
    [credit, debit, 1n],
  ] as const) {
    a.entrySeq += 1n;
    writes.entries.push({
      accountId: a.id,
      seq: a.entrySeq,
      transferId: stored.id,
      counterpartyId: other.id,
      postedChange: sign * postedDelta,
      pendingChange: sign * pendingDelta,
      debitsPending: a.debitsPending,
      debitsPosted: a.debitsPosted,
      creditsPending: a.creditsPending,
      creditsPosted: a.creditsPosted,
      createdAt: now,
    });
  }
  return stored;
}
