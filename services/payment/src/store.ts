// Payment orders in the payments table of a shard: their creation (after the key's claim,
// keys.ts), reads and lists, and the one function every change of an order goes through
// (changeOrder: a guarded update, the state machine's check, the event, and the change's side
// effects on limits and on the original of a refund, all in one transaction).
import { createHash } from 'node:crypto';
import {
  bucketedId,
  BatchQueue,
  bind,
  distinctRounds,
  isPermanentFailure,
  retryOnConflict,
  traceCarrier,
  type OutboxEvent,
  DomainError,
  encodePageToken,
  GroupCommit,
  outboxInsert,
  preparedRaw,
  writeEvents,
  type Row,
  type Shard,
  type ShardRouter,
  type Tx,
} from '@corebank/kit';
import {
  PaymentKind as K,
  PaymentStatus as S,
  PaymentStep as P,
  type Payment,
  type PaymentRoute,
  type RiskFinding,
} from '@corebank/kit/gen/corebank/v1/payment';
import { paymentChanged, type PaymentEventName } from './events.js';
import { keyReused, requireOwnClaim, type KeyClaim, type KeyClaims } from './keys.js';
import { listPaymentsQuery, pendingQuery } from './validate.js';
import { releaseLimit } from './limits.js';
import { COUNTED_KINDS, countOrderCtes, uncountOrder } from './risk.js';
import { paymentToProto, type PaymentRow } from './proto.js';
import { NOTHING_MOVED, transition, WAITING_STEPS } from './state.js';

/**
 * An order's id: derived from the channel and its idempotency key, with the bucket of the shard
 * the order lives on in its last four hex digits (the payer's for a payment; the original's for a
 * refund or reversal), so that it routes without a lookup.
 */
export function paymentIdFor(bucket: number, channel: string, idempotencyKey: string): string {
  return bucketedId(bucket, 'payment', channel, idempotencyKey);
}

/** What a request asked for, hashed: the same key with another body is refused. */
export const bodyHashOf = (...parts: (string | bigint | number)[]): string =>
  createHash('sha256')
    .update(JSON.stringify(parts.map(String)))
    .digest('base64url');

export async function findPayment(db: Shard['db'] | Tx, id: string): Promise<PaymentRow | undefined> {
  return (await db('payments').where('id', id).first()) as PaymentRow | undefined;
}

/** The order recorded for this channel and key, compared with the request's body. */
export function replayOf(existing: PaymentRow, hash: string): { payment: Payment; replayed: true } {
  if (existing.body_hash !== hash) throw keyReused(existing.id);
  return { payment: paymentToProto(existing), replayed: true };
}

/** A new order as its creator decided it: status, first step and reason are the creator's. */
export interface NewOrder {
  id: string;
  channel: string;
  idempotencyKey: string;
  bodyHash: string;
  kind: K;
  originalPaymentId?: string;
  payerAccountId: string;
  payeeAccountId: string;
  payerCustomerId: string;
  amount: bigint;
  currency: string;
  reference: string;
  route: PaymentRoute;
  status: S;
  step: P;
  reason?: string;
  autoReleaseAt?: Date;
  riskFindings?: RiskFinding[];
  limitDay?: string | null;
  payerShard: number;
  payeeShard: number;
  /**
   * The velocity bucket a payment counts in (risk.ts): a transfer or escrow not rejected counts
   * in its customer's counters. Absent: it counts in none (refunds and reversals).
   */
  velocityBucket?: Date;
  /**
   * The creator makes the first step itself at once: the order is written with that step claimed
   * for this long (as claimStep would claim it), which saves the claim's round trip.
   */
  claimForMs?: number;
}

/** When a step is next due: a waiting step waits for its timer or for a person. */
function nextAttemptFor(step: P, autoReleaseAt: Date | null | undefined, now: Date): Date | 'infinity' {
  if (step === P.PAYMENT_STEP_AWAIT_RELEASE) return autoReleaseAt ?? now;
  if (WAITING_STEPS.includes(step)) return 'infinity';
  return now;
}

const EVENT_OF_NEW: Partial<Record<S, PaymentEventName>> = {
  [S.PAYMENT_STATUS_ACCEPTED]: 'payment_accepted',
  [S.PAYMENT_STATUS_PENDING_REVIEW]: 'payment_review_required',
  [S.PAYMENT_STATUS_REJECTED]: 'payment_rejected',
};

/**
 * Writes a new order and its event. Returns undefined when an order with this id or this channel
 * and key exists already (the caller's transaction must then roll back and replay it).
 */
export async function insertOrder(tx: Tx, p: NewOrder, now: Date): Promise<PaymentRow | undefined> {
  // The row as it will be (every column is set here or has a constant default; seq is read back),
  // so the order, its event and its risk counts are one statement: one round trip.
  const row: PaymentRow = {
    seq: 0n,
    id: p.id,
    channel: p.channel,
    idempotency_key: p.idempotencyKey,
    body_hash: p.bodyHash,
    kind: p.kind,
    original_payment_id: p.originalPaymentId ?? null,
    payer_account_id: p.payerAccountId,
    payee_account_id: p.payeeAccountId,
    payer_customer_id: p.payerCustomerId,
    amount: p.amount,
    refunded_amount: 0n,
    currency: p.currency,
    reference: p.reference,
    status: p.status,
    route: p.route,
    step: p.step,
    reason: p.reason ?? '',
    note: '',
    attempts: p.claimForMs ? 1 : 0,
    next_attempt_at: p.claimForMs
      ? new Date(now.getTime() + p.claimForMs)
      : (nextAttemptFor(p.step, p.autoReleaseAt, now) as Date),
    auto_release_at: p.autoReleaseAt ?? null,
    risk_findings: p.riskFindings ?? [],
    limit_day: p.limitDay ?? null,
    review_decision: '',
    escrow_outcome: '',
    payer_shard: p.payerShard,
    payee_shard: p.payeeShard,
    created_at: now,
    updated_at: now,
    settled_at: p.status === S.PAYMENT_STATUS_REJECTED ? now : null,
  };
  const event = outboxInsert([
    paymentChanged(EVENT_OF_NEW[p.status]!, paymentToProto(row), S.PAYMENT_STATUS_UNSPECIFIED, now),
  ]);
  // A transfer or escrow not rejected counts in its customer's risk counters.
  const count =
    p.velocityBucket && COUNTED_KINDS.includes(p.kind) && !NOTHING_MOVED.includes(p.status)
      ? countOrderCtes({
          customerId: p.payerCustomerId,
          payeeAccountId: p.payeeAccountId,
          amount: p.amount,
          bucket: p.velocityBucket,
        })
      : { sql: '', bindings: [] };
  // Nothing but the insert happens when the order exists already (on conflict: no row in ins).
  const { rows } = (await preparedRaw(
    tx,
    `with ins as (
       insert into payments (id, channel, idempotency_key, body_hash, kind, original_payment_id, payer_account_id,
                             payee_account_id, payer_customer_id, amount, currency, reference, status, route, step,
                             reason, auto_release_at, risk_findings, limit_day, payer_shard, payee_shard,
                             attempts, next_attempt_at, created_at, updated_at, settled_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
               coalesce(now() + make_interval(secs => ?::float8), ?::timestamptz), ?, ?, ?)
       on conflict do nothing
       returning seq)
     ${count.sql}
     , announced as (${event.sql} where exists (select 1 from ins))
     select seq from ins`,
    bind([
      row.id,
      row.channel,
      row.idempotency_key,
      row.body_hash,
      row.kind,
      row.original_payment_id,
      row.payer_account_id,
      row.payee_account_id,
      row.payer_customer_id,
      row.amount.toString(),
      row.currency,
      row.reference,
      row.status,
      row.route,
      row.step,
      row.reason,
      row.auto_release_at,
      JSON.stringify(row.risk_findings),
      row.limit_day,
      row.payer_shard,
      row.payee_shard,
      row.attempts,
      // A claimed first step's lease runs from the transaction's start (a group commit may have
      // kept the order queued a while), by the database's clock, as claimStep's does.
      p.claimForMs ? p.claimForMs / 1000 : null,
      row.next_attempt_at,
      now,
      now,
      row.settled_at,
      ...count.bindings,
      ...event.bindings,
    ]),
  )) as { rows: { seq: bigint }[] };
  const inserted = rows[0];
  return inserted ? { ...row, seq: inserted.seq } : undefined;
}

/**
 * Thrown inside an order's transaction when the order exists already: the transaction rolls back
 * (the decision's writes, a daily limit counted, go with it) and the caller replays the order. A
 * DomainError, so that a group commit splits its batch down to this order and commits the others.
 */
class OrderExists extends DomainError {
  constructor() {
    super('ALREADY_EXISTS', 'PAYMENT_EXISTS', 'payment_id: the order exists already');
  }
}

/**
 * A new order for a shard's group commit (orderBatches): its decision and insert run in a
 * transaction with other orders of the shard, in the order of their payer customers (whose rows
 * they lock). One whose order exists already fails alone with OrderExists (the batch splits).
 */
export interface OrderJob {
  decide: (tx: Tx) => Promise<NewOrder>;
  now: Date;
  /** The payer customer: the rows the decision locks. */
  lockKey: string;
}

export type OrderBatches = ReadonlyMap<number, GroupCommit<OrderJob, PaymentRow>>;

/** One group-commit queue per shard for new payment orders. */
export function orderBatches(router: ShardRouter, maxInFlight: number, maxBatch: number): OrderBatches {
  return new Map(
    router.shards.map((s) => [
      s.index,
      new GroupCommit<OrderJob, PaymentRow>(
        s.db,
        async (tx, jobs) => {
          const rows: PaymentRow[] = [];
          for (const job of jobs) {
            const row = await insertOrder(tx, await job.decide(tx), job.now);
            if (!row) throw new OrderExists();
            rows.push(row);
          }
          return rows;
        },
        (job) => job.lockKey,
        { name: 'payment_orders', shard: s.index },
        { maxInFlight, maxBatch },
      ),
    ]),
  );
}

/** Verdicts on a request: nothing was written, and a corrected request may use the same key. */
const REQUEST_VERDICTS = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'PERMISSION_DENIED']);

/**
 * After a request failed: when it failed with a verdict on the request and no order exists,
 * nothing was written, and the claim is given back, so a corrected request may use the key.
 */
export async function giveBackClaim(keys: KeyClaims, shard: Shard, c: KeyClaim, err: unknown): Promise<void> {
  if (!(err instanceof DomainError && REQUEST_VERDICTS.has(err.code))) return;
  if (await orderOfKey(shard.db, c.paymentId, c.channel, c.key)) return;
  await keys.release(c);
}

/**
 * Creates an order once.
 *
 * First the channel's claim on its key (keys.ts; skipped when the caller `claimed` it already):
 * a key first used for another order, on any shard, is ALREADY_EXISTS. Claiming again for the
 * same order is a no-op, so a crash between the claim and the order leaves nothing a retry cannot
 * finish. Then one transaction on `shard`: `decide` makes its checks and writes (limits, risk
 * state) and returns the order to insert. With `batch`, that transaction is the shard's group
 * commit, shared with other orders (GroupCommit: one that fails for its own data fails alone).
 *
 * When the transaction fails and the order exists by then (a concurrent request with the same key
 * wrote it first), the recorded order is replayed (refused if its body differs). When it fails
 * with a verdict on the request and no order exists, nothing was written: the claim is given
 * back, so a corrected request may use the key.
 */
export async function createOnce(
  keys: KeyClaims,
  shard: Shard,
  claim: KeyClaim,
  decide: (tx: Tx) => Promise<NewOrder>,
  now: Date,
  opts: { claimed?: boolean; batch?: { batches: OrderBatches; lockKey: string } } = {},
): Promise<{ row: PaymentRow; replayed: false } | { payment: Payment; replayed: true }> {
  const { channel, key, paymentId, bodyHash } = claim;
  if (!opts.claimed) requireOwnClaim(claim, await keys.claim(claim));
  try {
    const batches = opts.batch?.batches.get(shard.index);
    const row = batches
      ? await batches.submit({ decide, now, lockKey: opts.batch!.lockKey })
      : await shard.db.transaction(async (tx) => {
          const inserted = await insertOrder(tx, await decide(tx), now);
          if (!inserted) throw new OrderExists();
          return inserted;
        });
    return { row, replayed: false };
  } catch (err) {
    const existing = await orderOfKey(shard.db, paymentId, channel, key);
    if (existing) return replayOf(existing, bodyHash);
    // A caller that claimed the key gives it back itself (it may fail before it gets here).
    if (!opts.claimed) await giveBackClaim(keys, shard, claim, err);
    throw err;
  }
}

/** The order with this id, or the one this channel made with this key. */
async function orderOfKey(db: Shard['db'] | Tx, id: string, channel: string, key: string) {
  return (await db('payments').where('id', id).orWhere({ channel, idempotency_key: key }).first()) as
    PaymentRow | undefined;
}

/** A customer's payments (not refunds or reversals), newest first; the page token is the last row's seq. */
export async function listPayments(
  shard: Shard,
  customerId: string,
  size: number,
  after: bigint | undefined,
): Promise<{ payments: Payment[]; nextPageToken: string }> {
  let q = shard
    .db('payments')
    .where('payer_customer_id', customerId)
    .whereIn('kind', [K.PAYMENT_KIND_TRANSFER, K.PAYMENT_KIND_ESCROW]);
  if (after !== undefined) q = q.andWhere('seq', '<', after.toString());
  const rows = (await q.orderBy('seq', 'desc').limit(size + 1)) as PaymentRow[];
  const page = rows.slice(0, size);
  return {
    payments: page.map(paymentToProto),
    nextPageToken:
      rows.length > size ? encodePageToken(listPaymentsQuery(customerId), [page.at(-1)!.seq.toString()]) : '',
  };
}

/**
 * Orders waiting at a step for a person (review, dispute), across every shard, longest waiting
 * first (updated_at: when they reached the step). The page token is the last order's (updated_at
 * in microseconds since the epoch, id): each shard continues after it, and the pages merge in
 * that order.
 */
export async function waitingOrders(
  router: ShardRouter,
  step: P,
  size: number,
  after: { us: bigint; id: string } | undefined,
): Promise<{ payments: Payment[]; nextPageToken: string }> {
  const pages = await Promise.all(
    router.shards.map(async (shard) => {
      const { rows } = await shard.db.raw(
        `select *, (extract(epoch from updated_at) * 1000000)::int8 as waiting_since from payments
          where step = ?
            ${after ? `and (updated_at, id) > (timestamptz 'epoch' + ? * interval '1 microsecond', ?)` : ''}
          order by updated_at, id limit ?`,
        after ? [step, after.us.toString(), after.id, size + 1] : [step, size + 1],
      );
      return rows as (PaymentRow & { waiting_since: bigint })[];
    }),
  );
  const merged = pages
    .flat()
    .sort((a, b) =>
      a.waiting_since === b.waiting_since ? (a.id < b.id ? -1 : 1) : a.waiting_since < b.waiting_since ? -1 : 1,
    );
  const page = merged.slice(0, size);
  const last = page.at(-1);
  return {
    payments: page.map(paymentToProto),
    nextPageToken:
      merged.length > size && last ? encodePageToken(pendingQuery(step), [last.waiting_since.toString(), last.id]) : '',
  };
}

/** The refunds and reversals of an order, oldest first. */
export async function refundsOf(db: Shard['db'] | Tx, originalId: string): Promise<PaymentRow[]> {
  return (await db('payments').where('original_payment_id', originalId).orderBy('seq')) as PaymentRow[];
}

/**
 * Claims the order's current step for leaseMs: only one driver works on a step at a time, and a
 * driver that dies leaves the step due again once the lease passes (the sweeper then takes it).
 */
export async function claimStep(shard: Shard, id: string, leaseMs: number): Promise<PaymentRow | undefined> {
  const { rows } = await shard.db.raw(
    `update payments set attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => ?)
      where id = ? and step <> ? and next_attempt_at <= now()
      returning *`,
    [leaseMs / 1000, id, P.PAYMENT_STEP_DONE],
  );
  return (rows as PaymentRow[])[0];
}

/**
 * After a transient failure: the step is due again after the backoff. updated_at stays: it says
 * since when the order is at this step, which is what the saga-age alert watches.
 */
export async function deferStep(shard: Shard, row: PaymentRow, backoffMs: number): Promise<void> {
  await shard.db.raw(
    `update payments set next_attempt_at = now() + make_interval(secs => ?)
      where id = ? and step = ?`,
    [backoffMs / 1000, row.id, row.step],
  );
}

/** A change of an order: where it goes, the event that says so, and what it records on the way. */
export interface Change {
  status: S;
  step: P;
  event: PaymentEventName;
  /** Replaces the reason; undefined keeps it (a voided hold stays rejected for the credit's failure). */
  reason?: string;
  note?: string;
  reviewDecision?: string;
  escrowOutcome?: string;
}

const FINAL_FOR_MONEY = [S.PAYMENT_STATUS_COMPLETED, S.PAYMENT_STATUS_REJECTED, S.PAYMENT_STATUS_CANCELLED];

/**
 * Applies a change to an order if it is still where the caller saw it (same status and step;
 * another driver or request may have moved it first: then nothing is written and the result is
 * undefined). In the same transaction: the event; a rejected or cancelled order gives its amount
 * back to the daily limit; a completed refund or reversal is added to its original.
 */
export async function changeOrder(tx: Tx, row: PaymentRow, c: Change): Promise<PaymentRow | undefined> {
  if (c.status !== row.status) transition(row.status, c.status);
  const now = new Date();
  const settles = FINAL_FOR_MONEY.includes(c.status) && !FINAL_FOR_MONEY.includes(row.status);
  const { rows } = (await tx.raw(
    `update payments set status = ?, step = ?, reason = coalesce(?, reason), note = coalesce(?, note),
            review_decision = coalesce(?, review_decision), escrow_outcome = coalesce(?, escrow_outcome),
            attempts = case when step = ? then attempts else 0 end, next_attempt_at = ?, updated_at = ?,
            settled_at = case when ? then ?::timestamptz else settled_at end
      where id = ? and step = ? and status = ?
      returning *`,
    [
      c.status,
      c.step,
      c.reason ?? null,
      c.note ?? null,
      c.reviewDecision ?? null,
      c.escrowOutcome ?? null,
      c.step,
      nextAttemptFor(c.step, row.auto_release_at, now),
      now,
      settles,
      now,
      row.id,
      row.step,
      row.status,
    ],
  )) as { rows: Row[] };
  const after = rows[0] as PaymentRow | undefined;
  if (!after) return undefined;
  await writeEvents(tx, [paymentChanged(c.event, paymentToProto(after), row.status, now)]);
  if (NOTHING_MOVED.includes(c.status) && row.limit_day) {
    await releaseLimit(tx, row.payer_account_id, row.limit_day, row.amount);
  }
  if (NOTHING_MOVED.includes(c.status) && !NOTHING_MOVED.includes(row.status) && COUNTED_KINDS.includes(row.kind)) {
    await uncountOrder(tx, {
      customerId: row.payer_customer_id,
      payeeAccountId: row.payee_account_id,
      amount: row.amount,
      createdAt: row.created_at,
    });
  }
  if (c.status === S.PAYMENT_STATUS_COMPLETED && row.original_payment_id) await addRefund(tx, after, now);
  return after;
}

/** A refund or reversal completed: its amount is added to the original, whose status follows. */
async function addRefund(tx: Tx, refund: PaymentRow, now: Date): Promise<void> {
  const original = (await tx('payments').where('id', refund.original_payment_id!).forUpdate().first()) as PaymentRow;
  const refunded = original.refunded_amount + refund.amount;
  // A reversal ends the original REVERSED; a refund that completes after a reversal only adds up.
  const status =
    refund.kind === K.PAYMENT_KIND_REVERSAL || original.status === S.PAYMENT_STATUS_REVERSED
      ? S.PAYMENT_STATUS_REVERSED
      : refunded === original.amount
        ? S.PAYMENT_STATUS_REFUNDED
        : S.PAYMENT_STATUS_PARTIALLY_REFUNDED;
  transition(original.status, status);
  const { rows } = (await tx.raw(
    `update payments set refunded_amount = ?, status = ?, updated_at = ? where id = ? returning *`,
    [refunded.toString(), status, now, original.id],
  )) as { rows: Row[] };
  const event = status === S.PAYMENT_STATUS_REVERSED ? 'payment_reversed' : 'payment_refunded';
  await writeEvents(tx, [paymentChanged(event, paymentToProto(rows[0] as PaymentRow), original.status, now)]);
}

/** Whether the saga makes a step itself, at once (not a person, a timer, or nothing left). */
const drivable = (step: P): boolean => step !== P.PAYMENT_STEP_DONE && !WAITING_STEPS.includes(step);

/**
 * A saga step's outcome, recorded with its event (see changeOrder). `claimNextForMs`: when the
 * order moves on to a step the saga makes, the same statement claims that step for the caller for
 * so long, as claimStep would (attempts 1, due after the lease): a driver that goes on with the
 * order needs no claim of its own, and no other driver takes the step meanwhile. The returned row
 * says whether it did (`claimed`). `batches`: the shard's queue of advances (stepAdvances), which
 * writes the advances of concurrent steps in one statement; absent: a statement of its own.
 */
export async function advance(
  shard: Shard,
  row: PaymentRow,
  c: Change,
  claimNextForMs?: number,
  batches?: StepAdvances,
): Promise<(PaymentRow & { claimed?: boolean }) | undefined> {
  // A change with side effects (a limit or risk counts given back, a refund added to its
  // original) takes changeOrder's transaction.
  if (NOTHING_MOVED.includes(c.status) || (c.status === S.PAYMENT_STATUS_COMPLETED && row.original_payment_id)) {
    return shard.db.transaction((tx) => changeOrder(tx, row, c));
  }
  if (c.status !== row.status) transition(row.status, c.status);
  const planned = plannedAdvance(row, c, claimNextForMs);
  const queue = batches?.get(shard.index);
  const moved = queue ? await queue.submit(planned) : (await writeAdvances(shard, [planned]))[0];
  return moved ? planned.after : undefined;
}

/** An advance without side effects, as it will be written: the row before and after, its event. */
interface PlannedAdvance {
  row: PaymentRow;
  after: PaymentRow & { claimed?: boolean };
  event: OutboxEvent;
}

function plannedAdvance(row: PaymentRow, c: Change, claimNextForMs: number | undefined): PlannedAdvance {
  // The event is built from the row as it will be, which is exact because the update applies
  // only to the row as the caller read it (every column it does not set and the event carries is
  // either immutable or guarded: status, step, attempts, refunded_amount, and updated_at, which
  // every other change moves).
  const now = new Date();
  const settles = FINAL_FOR_MONEY.includes(c.status) && !FINAL_FOR_MONEY.includes(row.status);
  const claims = claimNextForMs !== undefined && c.step !== row.step && drivable(c.step);
  const after: PaymentRow & { claimed?: boolean } = {
    ...row,
    status: c.status,
    step: c.step,
    reason: c.reason ?? row.reason,
    note: c.note ?? row.note,
    review_decision: c.reviewDecision ?? row.review_decision,
    escrow_outcome: c.escrowOutcome ?? row.escrow_outcome,
    attempts: claims ? 1 : c.step === row.step ? row.attempts : 0,
    next_attempt_at: claims
      ? new Date(now.getTime() + claimNextForMs!)
      : (nextAttemptFor(c.step, row.auto_release_at, now) as Date),
    updated_at: now,
    settled_at: settles ? now : row.settled_at,
    ...(claims ? { claimed: true } : {}),
  };
  const event = paymentChanged(c.event, paymentToProto(after), row.status, now);
  // Stamped now, in the step's own context: the statement that writes it may carry other steps'.
  return { row, after, event: { ...event, trace: event.trace ?? traceCarrier() } };
}

/**
 * Writes advances in one statement per round (atomic by itself: no BEGIN, no COMMIT), each update
 * with its event; an order asked twice goes in a second round and finds itself moved. Returns, per
 * advance, whether its order was still where its driver saw it (and so moved).
 */
async function writeAdvances(shard: Shard, planned: PlannedAdvance[]): Promise<boolean[]> {
  const moved = new Array<boolean>(planned.length).fill(false);
  const entries = planned.map((p, i) => ({ p, i }));
  for (const round of distinctRounds(entries, ({ p }) => p.row.id)) {
    const col = <T>(f: (p: PlannedAdvance) => T): T[] => round.map(({ p }) => f(p));
    const { rows } = await retryOnConflict(() =>
      preparedRaw(
        shard.db,
        `with s as (
           select * from unnest(?::uuid[], ?::smallint[], ?::smallint[], ?::int[], ?::bigint[], ?::timestamptz[],
                                ?::smallint[], ?::smallint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int[],
                                ?::timestamptz[], ?::timestamptz[], ?::timestamptz[],
                                ?::uuid[], ?::text[], ?::bytea[], ?::jsonb[])
             as s(id, was_step, was_status, was_attempts, was_refunded, was_updated,
                  status, step, reason, note, review_decision, escrow_outcome, attempts,
                  next_attempt_at, updated_at, settled_at,
                  event_id, subject, payload, headers)),
         moved as (
           update payments p
              set status = s.status, step = s.step, reason = s.reason, note = s.note,
                  review_decision = s.review_decision, escrow_outcome = s.escrow_outcome, attempts = s.attempts,
                  next_attempt_at = s.next_attempt_at, updated_at = s.updated_at, settled_at = s.settled_at
             from s
            where p.id = s.id and p.step = s.was_step and p.status = s.was_status and p.attempts = s.was_attempts
              and p.refunded_amount = s.was_refunded and p.updated_at = s.was_updated
           returning p.id),
         announced as (
           insert into outbox (id, subject, payload, headers)
           select s.event_id, s.subject, s.payload, s.headers from s join moved on moved.id = s.id)
         select id from moved`,
        [
          col((p) => p.row.id),
          col((p) => p.row.step),
          col((p) => p.row.status),
          col((p) => p.row.attempts),
          col((p) => p.row.refunded_amount.toString()),
          col((p) => p.row.updated_at),
          col((p) => p.after.status),
          col((p) => p.after.step),
          col((p) => p.after.reason),
          col((p) => p.after.note),
          col((p) => p.after.review_decision),
          col((p) => p.after.escrow_outcome),
          col((p) => p.after.attempts),
          col((p) => p.after.next_attempt_at),
          col((p) => p.after.updated_at),
          col((p) => p.after.settled_at),
          col((p) => p.event.id),
          col((p) => p.event.subject),
          col((p) => Buffer.from(p.event.payload)),
          col((p) => JSON.stringify(p.event.trace)),
        ],
      ),
    );
    const ids = new Set((rows as { id: string }[]).map((r) => r.id));
    for (const { p, i } of round) moved[i] = ids.has(p.row.id);
  }
  return moved;
}

/**
 * One queue per shard for saga step advances (the kit's BatchQueue): under load, the advances of
 * the steps a shared CreateTransfers call answered go in one statement, one round trip and one
 * WAL flush for many orders.
 */
export type StepAdvances = ReadonlyMap<number, BatchQueue<PlannedAdvance, boolean>>;

export function stepAdvances(router: ShardRouter, maxInFlight: number, maxBatch: number): StepAdvances {
  return new Map(
    router.shards.map((s) => [
      s.index,
      new BatchQueue<PlannedAdvance, boolean>((planned) => writeAdvances(s, planned), {
        maxInFlight,
        maxBatch,
        // An advance PostgreSQL refuses for its own data is refused alone.
        splits: isPermanentFailure,
      }),
    ]),
  );
}

/** Orders with saga work left whose next attempt is due (retries, dead drivers, escrow timers), oldest due first. */
export async function dueOrders(shard: Shard, limit: number): Promise<string[]> {
  const rows = (await shard
    .db('payments')
    .select('id')
    .whereNot('step', P.PAYMENT_STEP_DONE)
    .andWhere('next_attempt_at', '<=', shard.db.fn.now())
    .orderBy('next_attempt_at')
    .limit(limit)) as { id: string }[];
  return rows.map((r) => r.id);
}

/**
 * Milliseconds until the shard's earliest due step (0 when one is due; Infinity when none is
 * scheduled). By the database's clock, which decides due-ness in dueOrders and claimStep.
 */
export async function nextDueInMs(shard: Shard): Promise<number> {
  const { rows } = await shard.db.raw(
    `select (extract(epoch from min(next_attempt_at) - now()) * 1000)::float8 as ms
       from payments where step <> ${P.PAYMENT_STEP_DONE} and next_attempt_at < 'infinity'`,
  );
  const ms = (rows as { ms: number | null }[])[0]?.ms;
  // No row: min() is null (which greatest() would turn into 0, a busy loop).
  return ms === null || ms === undefined ? Infinity : Math.max(0, Math.ceil(ms));
}

/**
 * How many orders of a shard have saga work left, and for how many seconds the oldest of them has
 * been at its step (a saga that stopped moving grows old; one waiting for a person, review or
 * dispute, or for its escrow timer is not saga backlog).
 */
export async function sagaBacklog(shard: Shard): Promise<{ n: number; age: number }> {
  const { rows } = await shard.db.raw(
    `select count(*) as n, coalesce(extract(epoch from now() - min(updated_at)), 0)::float8 as age
       from payments where step not in (${[P.PAYMENT_STEP_DONE, ...WAITING_STEPS].join(',')})`,
  );
  const r = (rows as { n: bigint; age: number }[])[0]!;
  return { n: Number(r.n), age: r.age };
}
