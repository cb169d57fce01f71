// The ledger's rules, as a pure function over state loaded and locked for one batch: no I/O
// here, so every rule is decided in one place and the batch writes exactly what was decided.
// The checks run in the order TransferResultCode documents in proto/corebank/v1/account.proto.
import { addChecked } from '@corebank/kit';
import { splitChains } from './chains.js';
import {
  refusalFor,
  ResultCode as R,
  TransferKind as K,
  type AccountState,
  type BatchClock,
  type Entry,
  type Rejection,
  type Resolution,
  type StoredTransfer,
  type TransferInput,
  type TransferOutcome,
} from './types.js';

export interface PendingState {
  transfer: StoredTransfer;
  resolution?: Resolution;
}

export interface BatchState {
  accounts: Map<string, AccountState>;
  transfers: Map<string, StoredTransfer>;
  rejections: Map<string, Rejection>;
  /** Pending transfers referenced by the batch, with how they were resolved so far. */
  pendings: Map<string, PendingState>;
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

export const emptyWrites = (): BatchWrites => ({
  transfers: [],
  entries: [],
  rejections: [],
  touched: new Set(),
  holdsOpened: [],
  holdsClosed: [],
});

/** Outcomes that depend on balances or on a pending transfer's state: final for their id. */
const PERSISTED = new Set<R>([
  R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS,
  R.TRANSFER_RESULT_CODE_EXCEEDS_DEBITS,
  R.TRANSFER_RESULT_CODE_BELOW_MINIMUM_BALANCE,
  R.TRANSFER_RESULT_CODE_OVERFLOWS_BALANCE,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_POSTED,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_VOIDED,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED,
  R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED,
  R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_CLOSED,
  R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_CLOSED,
]);

/** A rule refused the transfer. `final`: the refusal is recorded for its id (see PERSISTED). */
class Failure {
  constructor(
    readonly code: R,
    readonly field: string,
    readonly final = PERSISTED.has(code),
  ) {}
}

/**
 * Applies groups of transfers in order. Each group is one request's transfers on this shard;
 * linked chains inside it succeed or fail as a whole. Returns one outcome per input, in order.
 * `clock` is the batch transaction's: the database's `now` decides every time question, and every
 * journal row carries the shard's business date as the transaction read it.
 */
export function applyBatch(
  groups: TransferInput[][],
  state: BatchState,
  clock: BatchClock,
  writes: BatchWrites,
): TransferOutcome[][] {
  return groups.map((group) =>
    splitChains(group).flatMap((chain) =>
      chain.open
        ? chain.transfers.map((t) => fail(t, R.TRANSFER_RESULT_CODE_LINKED_EVENT_CHAIN_OPEN, `${t.path}.linked`))
        : applyChain(chain.transfers, state, clock, writes),
    ),
  );
}

const fail = (t: TransferInput, code: R, field: string): TransferOutcome => ({
  id: t.id,
  code,
  replayed: false,
  field,
});

/**
 * A linked chain's changes, staged apart from the batch's state: merged into it when every member
 * succeeded, simply dropped when one failed, so a failed chain leaves nothing to undo.
 */
class ChainOverlay {
  private readonly accounts = new Map<string, AccountState>();
  private readonly resolutions = new Map<string, Resolution>();
  private readonly opened = new Map<string, PendingState>();
  private readonly stored = new Map<string, StoredTransfer>();
  private readonly writes = emptyWrites();

  constructor(private readonly base: BatchState) {}

  /** The account as this chain sees it (a private copy, changed freely until commit). */
  account(id: string): AccountState | undefined {
    let a = this.accounts.get(id);
    if (!a) {
      const loaded = this.base.accounts.get(id);
      if (!loaded) return undefined;
      a = { ...loaded };
      this.accounts.set(id, a);
    }
    return a;
  }

  pending(id: string): PendingState | undefined {
    // A transfer of this batch that is not pending is still found, so that it is NOT_PENDING.
    const stored = this.transfer(id);
    const p = this.opened.get(id) ?? this.base.pendings.get(id) ?? (stored ? { transfer: stored } : undefined);
    const resolution = this.resolutions.get(id);
    return p && resolution ? { ...p, resolution } : p;
  }

  transfer(id: string): StoredTransfer | undefined {
    return this.stored.get(id) ?? this.base.transfers.get(id);
  }

  /** Records a transfer decided OK, with its two entries and the holds it opens or closes. */
  record(t: StoredTransfer, entries: [Entry, Entry], closes?: { pendingId: string; as: Resolution }): void {
    this.stored.set(t.id, t);
    this.writes.transfers.push(t);
    this.writes.entries.push(...entries);
    if (closes) {
      this.resolutions.set(closes.pendingId, closes.as);
      this.writes.holdsClosed.push(closes.pendingId);
    }
    if (t.kind === K.TRANSFER_KIND_PENDING) {
      // A new pending transfer can be posted or voided later in the same batch.
      this.opened.set(t.id, { transfer: t });
      if (t.expiresAt) this.writes.holdsOpened.push(t);
    }
  }

  /** The chain succeeded: its changes become the batch's. */
  commit(writes: BatchWrites): void {
    for (const [id, a] of this.accounts) {
      Object.assign(this.base.accounts.get(id)!, a);
      if (this.writes.touched.has(id)) writes.touched.add(id);
    }
    for (const [id, p] of this.opened) this.base.pendings.set(id, p);
    for (const [id, r] of this.resolutions) this.base.pendings.get(id)!.resolution = r;
    for (const [id, t] of this.stored) this.base.transfers.set(id, t);
    writes.transfers.push(...this.writes.transfers);
    writes.entries.push(...this.writes.entries);
    writes.holdsOpened.push(...this.writes.holdsOpened);
    writes.holdsClosed.push(...this.writes.holdsClosed);
  }

  touch(...ids: string[]): void {
    for (const id of ids) this.writes.touched.add(id);
  }
}

function applyChain(
  chain: TransferInput[],
  state: BatchState,
  clock: BatchClock,
  writes: BatchWrites,
): TransferOutcome[] {
  const overlay = new ChainOverlay(state);
  const outcomes: TransferOutcome[] = [];
  let failure: { outcome: TransferOutcome; final: boolean } | undefined;
  for (const t of chain) {
    const prior = replay(t, state, overlay);
    if (prior) {
      outcomes.push(prior);
      if (prior.code !== R.TRANSFER_RESULT_CODE_OK) {
        failure = { outcome: prior, final: false };
        break;
      }
      continue;
    }
    try {
      const stored = applyOne(t, overlay, clock);
      outcomes.push({ id: t.id, code: R.TRANSFER_RESULT_CODE_OK, transfer: stored, replayed: false, field: '' });
    } catch (err) {
      if (!(err instanceof Failure)) throw err;
      failure = { outcome: fail(t, err.code, err.field), final: err.final };
      outcomes.push(failure.outcome);
      break;
    }
  }
  if (!failure) {
    overlay.commit(writes);
    return outcomes;
  }

  // The overlay is dropped: nothing of the chain is written.
  const failed = failure.outcome;
  const result = chain.map((t, i): TransferOutcome => {
    const o = outcomes[i];
    // A replay of a member staged earlier in this chain replays nothing: that member is undone too.
    const recorded = state.transfers.has(t.id) || state.rejections.has(t.id);
    if (o === failed || (o?.replayed && recorded)) return o!;
    // Members after the break that were decided before keep their recorded result.
    return (!o && replay(t, state)) || fail(t, R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED, `${t.path}.linked`);
  });
  // A refusal that depends on balances or pending state is final for every id of the chain, so a
  // retried chain gets its original results even after the balances have changed.
  if (failure.final) {
    chain.forEach((t, i) => {
      const o = result[i]!;
      // Once per id, and never over an id that already has a recorded result.
      if (o.replayed || state.transfers.has(t.id) || state.rejections.has(t.id)) return;
      const rej: Rejection = { id: t.id, bodyHash: t.bodyHash, result: o.code, field: o.field };
      state.rejections.set(rej.id, rej);
      writes.rejections.push(rej);
    });
  }
  return result;
}

/** The recorded result of an id seen before (in the journal, the rejections, or earlier in this batch). */
function replay(t: TransferInput, state: BatchState, overlay?: ChainOverlay): TransferOutcome | undefined {
  const stored = overlay ? overlay.transfer(t.id) : state.transfers.get(t.id);
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

/** What a transfer does to the balances of its two accounts. */
interface Movement {
  /** The amount journaled (for a post, what is posted; for a void or expiry, the hold's amount). */
  amount: bigint;
  /** Change to debits_pending of the debit account and credits_pending of the credit account. */
  pendingDelta: bigint;
  /** Change to debits_posted of the debit account and credits_posted of the credit account. */
  postedDelta: bigint;
  expiresAt: Date | null;
  /** The pending transfer this one resolves, and how. */
  closes?: { pendingId: string; as: Resolution };
}

type Balances = Pick<AccountState, 'debitsPending' | 'debitsPosted' | 'creditsPending' | 'creditsPosted'>;

/**
 * A booking the close of business dates itself may carry the day being closed (the eve of the
 * shard's business date, until the day's general-ledger step closes it) or the business date.
 * Not final: the same id may be booked on an open day later.
 */
function checkBusinessDate(t: TransferInput, clock: BatchClock): void {
  if (!t.businessDate || t.businessDate === clock.businessDate) return;
  const eve = new Date(Date.parse(`${clock.businessDate}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
  if (t.businessDate !== eve || (clock.closedThrough !== '' && t.businessDate <= clock.closedThrough)) {
    throw new Failure(R.TRANSFER_RESULT_CODE_BUSINESS_DATE_CLOSED, `${t.path}.business_date`);
  }
}

/** Decides one transfer against the chain's view of the state and records it there; throws a Failure. */
function applyOne(t: TransferInput, overlay: ChainOverlay, clock: BatchClock): StoredTransfer {
  const { debit, credit } = accountsOf(t, overlay);
  checkAccountsAcceptIt(t, debit, credit);
  checkBusinessDate(t, clock);
  const move = movementOf(t, overlay, clock.now);
  const d = balancesAfter(debit, 'debits', move, t.path);
  const c = balancesAfter(credit, 'credits', move, t.path);
  checkLimits(t, debit, d, credit, c, move);
  Object.assign(debit, d);
  Object.assign(credit, c);
  overlay.touch(debit.id, credit.id);
  return record(t, overlay, debit, credit, move, clock);
}

/** Both accounts exist, differ, share a currency, and a customer-bound caller owns the debit one. */
function accountsOf(t: TransferInput, overlay: ChainOverlay): { debit: AccountState; credit: AccountState } {
  const p = t.path;
  if (t.debitAccountId === t.creditAccountId)
    throw new Failure(R.TRANSFER_RESULT_CODE_ACCOUNTS_MUST_BE_DIFFERENT, `${p}.credit_account_id`);
  const debit = overlay.account(t.debitAccountId);
  if (!debit) throw new Failure(R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_FOUND, `${p}.debit_account_id`);
  const credit = overlay.account(t.creditAccountId);
  if (!credit) throw new Failure(R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_NOT_FOUND, `${p}.credit_account_id`);
  if (debit.currency !== credit.currency)
    throw new Failure(R.TRANSFER_RESULT_CODE_CURRENCY_MISMATCH, `${p}.credit_account_id`);
  if (t.actingCustomerId !== undefined && debit.ownerId !== t.actingCustomerId)
    throw new Failure(R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_OWNED, `${p}.debit_account_id`);
  return { debit, credit };
}

/** Closed accounts take nothing and a frozen owner's funds cannot leave; releasing a hold is always allowed. */
function checkAccountsAcceptIt(t: TransferInput, debit: AccountState, credit: AccountState): void {
  if (t.kind === K.TRANSFER_KIND_VOID_PENDING || t.kind === K.TRANSFER_KIND_EXPIRE_PENDING) return;
  const p = t.path;
  if (debit.closed) throw new Failure(R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_CLOSED, `${p}.debit_account_id`);
  if (credit.closed) throw new Failure(R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_CLOSED, `${p}.credit_account_id`);
  // A hold taken before the freeze may still be posted.
  if (debit.debitsBlocked && t.kind !== K.TRANSFER_KIND_POST_PENDING)
    throw new Failure(R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED, `${p}.debit_account_id`);
}

function movementOf(t: TransferInput, overlay: ChainOverlay, now: Date): Movement {
  switch (t.kind) {
    case K.TRANSFER_KIND_SINGLE_PHASE:
      return { amount: t.amount, pendingDelta: 0n, postedDelta: t.amount, expiresAt: null };
    case K.TRANSFER_KIND_PENDING:
      return {
        amount: t.amount,
        pendingDelta: t.amount,
        postedDelta: 0n,
        expiresAt: t.timeoutSeconds > 0 ? new Date(now.getTime() + t.timeoutSeconds * 1000) : null,
      };
    case K.TRANSFER_KIND_POST_PENDING:
    case K.TRANSFER_KIND_VOID_PENDING:
    case K.TRANSFER_KIND_EXPIRE_PENDING:
      return resolutionOf(t, t.kind, overlay, now);
    default:
      // Validation lets no other kind through; a TypeError is what the batcher treats as this request's fault.
      throw new TypeError(`unreachable transfer kind ${t.kind}`);
  }
}

/** Posting, voiding or expiring a pending transfer: only an open hold, on its own accounts. */
function resolutionOf(t: TransferInput, kind: Resolution, overlay: ChainOverlay, now: Date): Movement {
  const p = t.path;
  const pending = overlay.pending(t.pendingId!);
  if (!pending) throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_NOT_FOUND, `${p}.pending_id`);
  const hold = pending.transfer;
  if (hold.kind !== K.TRANSFER_KIND_PENDING)
    throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_NOT_PENDING, `${p}.pending_id`);
  if (pending.resolution !== undefined) throw new Failure(refusalFor(pending.resolution), `${p}.pending_id`);
  const timedOut = hold.expiresAt !== null && hold.expiresAt.getTime() <= now.getTime();
  if (kind === K.TRANSFER_KIND_EXPIRE_PENDING && !timedOut) {
    // Too early to expire: time will make a later attempt succeed, so this refusal is not recorded.
    throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED, `${p}.pending_id`, false);
  }
  if (kind !== K.TRANSFER_KIND_EXPIRE_PENDING && timedOut)
    throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED, `${p}.pending_id`);
  if (hold.debitAccountId !== t.debitAccountId || hold.creditAccountId !== t.creditAccountId)
    throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS, `${p}.debit_account_id`);
  const closes = { pendingId: hold.id, as: kind };
  if (kind === K.TRANSFER_KIND_POST_PENDING) {
    const amount = t.amount === 0n ? hold.amount : t.amount;
    if (amount > hold.amount) throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_PENDING_TRANSFER_AMOUNT, `${p}.amount`);
    return { amount, pendingDelta: -hold.amount, postedDelta: amount, expiresAt: null, closes };
  }
  if (t.amount !== 0n && t.amount !== hold.amount)
    throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT, `${p}.amount`);
  return { amount: hold.amount, pendingDelta: -hold.amount, postedDelta: 0n, expiresAt: null, closes };
}

/** One side's balances after the movement; every balance and every pending + posted total stays in int64. */
function balancesAfter(a: AccountState, side: 'debits' | 'credits', m: Movement, path: string): Balances {
  const pending = side === 'debits' ? 'debitsPending' : 'creditsPending';
  const posted = side === 'debits' ? 'debitsPosted' : 'creditsPosted';
  const next: Balances = {
    debitsPending: a.debitsPending,
    debitsPosted: a.debitsPosted,
    creditsPending: a.creditsPending,
    creditsPosted: a.creditsPosted,
  };
  const p = addChecked(a[pending], m.pendingDelta);
  const q = addChecked(a[posted], m.postedDelta);
  if (p === undefined || q === undefined || addChecked(p, q) === undefined)
    throw new Failure(R.TRANSFER_RESULT_CODE_OVERFLOWS_BALANCE, `${path}.amount`);
  next[pending] = p;
  next[posted] = q;
  return next;
}

/**
 * The accounts' limits, checked only when the transfer adds to the constrained side (releasing or
 * posting a hold never fails): debits within credits plus the overdraft, credits within debits,
 * and the balance left at or above the account's minimum.
 */
function checkLimits(
  t: TransferInput,
  debit: AccountState,
  d: Balances,
  credit: AccountState,
  c: Balances,
  m: Movement,
) {
  if (m.pendingDelta + m.postedDelta <= 0n) return;
  const p = t.path;
  const debits = d.debitsPending + d.debitsPosted;
  if (debit.debitsMustNotExceedCredits && debits > d.creditsPosted + debit.overdraftLimit)
    throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS, `${p}.amount`);
  if (credit.creditsMustNotExceedDebits && c.creditsPending + c.creditsPosted > c.debitsPosted)
    throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_DEBITS, `${p}.amount`);
  if (debit.minimumBalance > 0n && d.creditsPosted - debits < debit.minimumBalance)
    throw new Failure(R.TRANSFER_RESULT_CODE_BELOW_MINIMUM_BALANCE, `${p}.amount`);
}

/** The journal row and the two entries (each with its account's balances after it). */
function record(
  t: TransferInput,
  overlay: ChainOverlay,
  debit: AccountState,
  credit: AccountState,
  m: Movement,
  { now, businessDate }: BatchClock,
): StoredTransfer {
  const stored: StoredTransfer = {
    id: t.id,
    debitAccountId: t.debitAccountId,
    creditAccountId: t.creditAccountId,
    amount: m.amount,
    currency: debit.currency,
    kind: t.kind,
    linked: t.linked,
    pendingId: t.pendingId,
    timeoutSeconds: t.timeoutSeconds,
    expiresAt: m.expiresAt,
    code: t.code,
    reference: t.reference,
    bodyHash: t.bodyHash,
    createdAt: now,
    businessDate: t.businessDate ?? businessDate,
  };
  const entry = (a: AccountState, other: AccountState, sign: bigint): Entry => {
    a.entrySeq += 1n;
    return {
      accountId: a.id,
      seq: a.entrySeq,
      transferId: stored.id,
      counterpartyId: other.id,
      postedChange: sign * m.postedDelta,
      pendingChange: sign * m.pendingDelta,
      debitsPending: a.debitsPending,
      debitsPosted: a.debitsPosted,
      creditsPending: a.creditsPending,
      creditsPosted: a.creditsPosted,
      createdAt: now,
    };
  };
  overlay.record(stored, [entry(debit, credit, -1n), entry(credit, debit, 1n)], m.closes);
  return stored;
}
