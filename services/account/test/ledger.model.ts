// A reference model of the ledger, written from DESIGN.md ("The ledger") and the result codes of
// proto/corebank/v1/account.proto, for the property tests. It knows nothing of databases, batches
// or SQL: one map of accounts, and per unit (shard) one of transfers and one of the refusals that
// are final for their id (a transfer id is the idempotency key within the unit of its accounts). Where the documents leave the order of the checks open,
// it follows the order the service has always answered with (so a different order is a finding
// to discuss, not noise).
import { INT64_MAX } from '@corebank/kit';
import { TransferKind as K, TransferResultCode as R } from '@corebank/kit/gen/corebank/v1/account';

export { K, R };

export interface ModelAccount {
  id: string;
  currency: string;
  shard: number;
  debitsMustNotExceedCredits: boolean;
  creditsMustNotExceedDebits: boolean;
  overdraftLimit: bigint;
  debitsPending: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  creditsPosted: bigint;
}

/** A transfer as a caller sends it (the fields of the body, and the id). */
export interface TransferReq {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
  kind: K;
  linked: boolean;
  pendingId: string;
  timeoutSeconds: number;
  code: number;
  reference: string;
}

export interface Outcome {
  code: R;
  replayed: boolean;
  /** The stored amount, for OK (a full post or a void stores the pending amount). */
  amount?: bigint;
}

interface Stored {
  id: string;
  shard: number;
  body: string;
  kind: K;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
}

/** timedout: past its timeout, but the service's sweeper has not expired it yet (the hold stays). */
type Resolution = 'posted' | 'voided' | 'expired' | 'timedout';

/**
 * Refusals that depend on balances or on a pending transfer's state: final for the id (and for
 * every id of its linked chain), so a retry gets the original answer even after balances change.
 * The other refusals are re-decided on retry. PENDING_TRANSFER_EXPIRED is in: for a caller's post
 * or void it is final (a hold past its timeout never comes back).
 */
export const FINAL_REFUSALS = new Set<R>([
  R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS,
  R.TRANSFER_RESULT_CODE_EXCEEDS_DEBITS,
  R.TRANSFER_RESULT_CODE_OVERFLOWS_BALANCE,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_POSTED,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_VOIDED,
  R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED,
]);

export const bodyOf = (t: TransferReq) =>
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
  ]);

/** Field checks that reject the whole request (INVALID_ARGUMENT) before anything is applied. */
export function invalidRequest(ts: TransferReq[]): boolean {
  return ts.some((t) => {
    const twoPhaseEnd = t.kind === K.TRANSFER_KIND_POST_PENDING || t.kind === K.TRANSFER_KIND_VOID_PENDING;
    if (!twoPhaseEnd && t.kind !== K.TRANSFER_KIND_SINGLE_PHASE && t.kind !== K.TRANSFER_KIND_PENDING) return true;
    if (t.amount < 0n || t.amount > INT64_MAX) return true;
    if (t.amount === 0n && !twoPhaseEnd) return true;
    if (twoPhaseEnd !== (t.pendingId !== '')) return true;
    if (t.timeoutSeconds && t.kind !== K.TRANSFER_KIND_PENDING) return true;
    return false;
  });
}

/** One request's transfers on one shard, with their positions in the request. */
export interface Part {
  shard: number;
  transfers: TransferReq[];
  at: number[];
}

const fail = (code: R): Outcome => ({ code, replayed: false });
const OK = R.TRANSFER_RESULT_CODE_OK;

class Failure {
  constructor(readonly code: R) {}
}

export class LedgerModel {
  accounts = new Map<string, ModelAccount>();
  /** Keyed by unit and id (see key()): a transfer id is unique within the unit of its accounts. */
  transfers = new Map<string, Stored>();
  refusals = new Map<string, { body: string; code: R }>();
  /** Of pending transfers, by their key. */
  resolutions = new Map<string, Resolution>();
  constructor(
    /** The shard an account id routes to (also for ids of accounts that do not exist). */
    readonly shardOf: (accountId: string) => number,
    readonly shards: number,
  ) {}

  clone(): LedgerModel {
    const m = new LedgerModel(this.shardOf, this.shards);
    for (const [id, a] of this.accounts) m.accounts.set(id, { ...a });
    m.transfers = new Map(this.transfers);
    m.refusals = new Map(this.refusals);
    m.resolutions = new Map(this.resolutions);
    return m;
  }

  /** Where a transfer lives: its debit account's shard (a chain must be on one shard). */
  private key(id: string, shard: number): string {
    return `${shard}:${id}`;
  }

  /**
   * A transfer (or refusal) by id, as seen by a transfer on the given shard: the unit of a
   * transfer's accounts is its id's namespace, so another unit's ids are not seen (DESIGN.md: a
   * unit never waits on another; a ledger-wide claim would make every transfer depend on the
   * id's home shard too).
   */
  private find<T>(map: Map<string, T>, id: string, shard: number): T | undefined {
    return map.get(this.key(id, shard));
  }

  /** The stored transfers with this id (one per unit that took it). */
  stored(id: string): (Stored & { resolution?: Resolution })[] {
    return [...this.transfers.values()]
      .filter((t) => t.id === id)
      .map((t) => ({ ...t, resolution: this.resolutions.get(this.key(id, t.shard)) }));
  }

  /** The ids of pending transfers that are still open. */
  openPendings(): string[] {
    return [...this.transfers]
      .filter(([k, t]) => t.kind === K.TRANSFER_KIND_PENDING && !this.resolutions.has(k))
      .map(([, t]) => t.id);
  }

  /** A pending transfer's timeout passed: it can no longer be posted or voided; it still holds funds. */
  timeOut(pendingId: string): void {
    const p = this.stored(pendingId).find((t) => t.kind === K.TRANSFER_KIND_PENDING && !t.resolution)!;
    this.resolutions.set(this.key(pendingId, p.shard), 'timedout');
  }

  /** The ledger expires a pending transfer whose timeout passed: its hold is released. */
  expire(pendingId: string): void {
    const p = this.stored(pendingId).find(
      (t) => t.kind === K.TRANSFER_KIND_PENDING && (!t.resolution || t.resolution === 'timedout'),
    )!;
    this.resolutions.set(this.key(pendingId, p.shard), 'expired');
    this.accounts.get(p.debitAccountId)!.debitsPending -= p.amount;
    this.accounts.get(p.creditAccountId)!.creditsPending -= p.amount;
  }

  /**
   * Splits a request into linked chains and sends each to the shard of its accounts. A chain whose
   * transfers are not all on one shard is refused whole (ACCOUNTS_ON_DIFFERENT_SHARDS): crossing
   * shards is the payment saga's job. Returns those refusals and the parts to apply, per shard.
   */
  route(ts: TransferReq[]): { outcomes: (Outcome | undefined)[]; parts: Part[] } {
    const outcomes: (Outcome | undefined)[] = new Array(ts.length);
    const parts = new Map<number, Part>();
    let start = 0;
    while (start < ts.length) {
      let end = start;
      while (end < ts.length - 1 && ts[end]!.linked) end++;
      const chain = ts.slice(start, end + 1);
      let shard: number | undefined;
      const broken = chain.findIndex((t) => {
        const d = this.shardOf(t.debitAccountId);
        const c = this.shardOf(t.creditAccountId);
        if (d !== c || (shard !== undefined && shard !== d)) return true;
        shard = d;
        return false;
      });
      if (broken >= 0) {
        chain.forEach((_, k) => {
          outcomes[start + k] = fail(
            k === broken
              ? R.TRANSFER_RESULT_CODE_ACCOUNTS_ON_DIFFERENT_SHARDS
              : R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED,
          );
        });
      } else {
        const part = parts.get(shard!) ?? { shard: shard!, transfers: [], at: [] };
        chain.forEach((t, k) => {
          part.transfers.push(t);
          part.at.push(start + k);
        });
        parts.set(shard!, part);
      }
      start = end + 1;
    }
    return { outcomes, parts: [...parts.values()] };
  }

  /** Applies one shard's part of a request: its chains in order, each all or nothing. */
  applyPart(ts: TransferReq[]): Outcome[] {
    const outcomes: Outcome[] = new Array(ts.length);
    let start = 0;
    while (start < ts.length) {
      let end = start;
      while (end < ts.length && ts[end]!.linked) end++;
      if (end === ts.length) {
        // The request ends with linked = true.
        for (let i = start; i < ts.length; i++) outcomes[i] = fail(R.TRANSFER_RESULT_CODE_LINKED_EVENT_CHAIN_OPEN);
        break;
      }
      this.applyChain(ts.slice(start, end + 1)).forEach((o, k) => (outcomes[start + k] = o));
      start = end + 1;
    }
    return outcomes;
  }

  /** A request applied alone, its shards' parts in the given order. */
  applyRequest(ts: TransferReq[]): Outcome[] {
    const { outcomes, parts } = this.route(ts);
    for (const p of parts) this.applyPart(p.transfers).forEach((o, k) => (outcomes[p.at[k]!] = o));
    return outcomes as Outcome[];
  }

  private replay(t: TransferReq): Outcome | undefined {
    const body = bodyOf(t);
    const shard = this.shardOf(t.debitAccountId);
    const stored = this.find(this.transfers, t.id, shard);
    if (stored) {
      return stored.body === body
        ? { code: OK, replayed: true, amount: stored.amount }
        : fail(R.TRANSFER_RESULT_CODE_EXISTS_WITH_DIFFERENT_BODY);
    }
    const refused = this.find(this.refusals, t.id, shard);
    if (refused) {
      return refused.body === body
        ? { code: refused.code, replayed: true }
        : fail(R.TRANSFER_RESULT_CODE_EXISTS_WITH_DIFFERENT_BODY);
    }
    return undefined;
  }

  private applyChain(chain: TransferReq[]): Outcome[] {
    const before = this.clone();
    const created = new Set<string>();
    const outcomes: Outcome[] = [];
    for (const t of chain) {
      const prior = this.replay(t);
      if (prior) {
        outcomes.push(prior);
        if (prior.code !== OK) break;
        continue;
      }
      try {
        outcomes.push({ code: OK, replayed: false, amount: this.applyOne(t) });
        created.add(t.id);
      } catch (err) {
        if (!(err instanceof Failure)) throw err;
        outcomes.push(fail(err.code));
        break;
      }
    }
    const failed = outcomes.find((o) => o.code !== OK);
    if (!failed) return outcomes;

    // All or nothing: the chain's changes are undone.
    this.accounts = before.accounts;
    this.transfers = before.transfers;
    this.resolutions = before.resolutions;
    const result = chain.map((t, i): Outcome => {
      const o = outcomes[i];
      if (o === failed) return o;
      // A replayed success of a transfer this chain applied is undone with it.
      if (o?.replayed && !created.has(t.id)) return o;
      if (o) return fail(R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED);
      // Not reached: an id with a recorded result keeps it.
      return this.replay(t) ?? fail(R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED);
    });
    const shard = this.shardOf(chain[0]!.debitAccountId);
    if (!failed.replayed && FINAL_REFUSALS.has(failed.code)) {
      chain.forEach((t, i) => {
        const o = result[i]!;
        // An id that belongs to another body, or was recorded already, keeps what it has.
        if (o.replayed || o.code === R.TRANSFER_RESULT_CODE_EXISTS_WITH_DIFFERENT_BODY) return;
        if (this.find(this.refusals, t.id, shard) || this.find(this.transfers, t.id, shard)) return;
        this.refusals.set(this.key(t.id, shard), { body: bodyOf(t), code: o.code });
      });
    }
    return result;
  }

  /** Applies one new transfer, returning the amount stored, or throws the refusal. */
  private applyOne(t: TransferReq): bigint {
    if (t.debitAccountId === t.creditAccountId) throw new Failure(R.TRANSFER_RESULT_CODE_ACCOUNTS_MUST_BE_DIFFERENT);
    const debit = this.accounts.get(t.debitAccountId);
    if (!debit) throw new Failure(R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_FOUND);
    const credit = this.accounts.get(t.creditAccountId);
    if (!credit) throw new Failure(R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_NOT_FOUND);
    if (debit.currency !== credit.currency) throw new Failure(R.TRANSFER_RESULT_CODE_CURRENCY_MISMATCH);

    let amount = t.amount;
    let pendingDelta = 0n;
    let postedDelta = 0n;
    let resolves: string | undefined;
    switch (t.kind) {
      case K.TRANSFER_KIND_SINGLE_PHASE:
        postedDelta = amount;
        break;
      case K.TRANSFER_KIND_PENDING:
        pendingDelta = amount;
        break;
      case K.TRANSFER_KIND_POST_PENDING:
      case K.TRANSFER_KIND_VOID_PENDING: {
        // Looked up in the unit of the accounts named: a pending transfer of another unit is not found.
        const p = this.find(this.transfers, t.pendingId, this.shardOf(t.debitAccountId));
        if (!p) throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_NOT_FOUND);
        if (p.kind !== K.TRANSFER_KIND_PENDING) throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_NOT_PENDING);
        const resolution = this.resolutions.get(this.key(p.id, p.shard));
        if (resolution === 'posted') throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_POSTED);
        if (resolution === 'voided') throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_VOIDED);
        if (resolution === 'expired' || resolution === 'timedout') {
          throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED);
        }
        if (p.debitAccountId !== t.debitAccountId || p.creditAccountId !== t.creditAccountId) {
          throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS);
        }
        pendingDelta = -p.amount;
        if (t.kind === K.TRANSFER_KIND_POST_PENDING) {
          if (amount === 0n) amount = p.amount;
          if (amount > p.amount) throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_PENDING_TRANSFER_AMOUNT);
          postedDelta = amount;
        } else {
          if (amount !== 0n && amount !== p.amount) {
            throw new Failure(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT);
          }
          amount = p.amount;
        }
        resolves = this.key(p.id, p.shard);
        break;
      }
      default:
        throw new Error(`the model takes no transfer of kind ${t.kind}`);
    }

    const dp = debit.debitsPending + pendingDelta;
    const dpo = debit.debitsPosted + postedDelta;
    const cp = credit.creditsPending + pendingDelta;
    const cpo = credit.creditsPosted + postedDelta;
    // Every balance, and pending + posted on each side, stays within int64.
    for (const v of [dp, dpo, cp, cpo, dp + dpo, cp + cpo]) {
      if (v > INT64_MAX) throw new Failure(R.TRANSFER_RESULT_CODE_OVERFLOWS_BALANCE);
    }
    // The flags bound a side only when a transfer adds to it; releasing or posting a hold never fails.
    const adds = pendingDelta + postedDelta > 0n;
    if (adds && debit.debitsMustNotExceedCredits && dp + dpo > debit.creditsPosted + debit.overdraftLimit) {
      throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS);
    }
    if (adds && credit.creditsMustNotExceedDebits && cp + cpo > credit.debitsPosted) {
      throw new Failure(R.TRANSFER_RESULT_CODE_EXCEEDS_DEBITS);
    }
    debit.debitsPending = dp;
    debit.debitsPosted = dpo;
    credit.creditsPending = cp;
    credit.creditsPosted = cpo;
    const shard = this.shardOf(t.debitAccountId);
    this.transfers.set(this.key(t.id, shard), {
      id: t.id,
      shard,
      body: bodyOf(t),
      kind: t.kind,
      debitAccountId: t.debitAccountId,
      creditAccountId: t.creditAccountId,
      amount,
    });
    if (resolves) this.resolutions.set(resolves, t.kind === K.TRANSFER_KIND_POST_PENDING ? 'posted' : 'voided');
    return amount;
  }
}

/** Every order of xs. */
export function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}
