// Payment orders on the payer's home shard: create (idempotent by channel and key), read, list,
// and the two writes the saga makes (claim a step, record its outcome with its event).
import { createHash } from 'node:crypto';
import { bucketedId, DomainError, toTimestamp, writeEvents, type Shard, type Row } from '@corebank/kit';
import {
  PaymentStatus as S,
  PaymentStep,
  type Payment,
  type PaymentRoute,
} from '@corebank/kit/gen/corebank/v1/payment';
import { paymentChanged } from './events.js';
import type { Next } from './state.js';

export interface PaymentRow {
  seq: bigint;
  id: string;
  channel: string;
  idempotency_key: string;
  body_hash: string;
  payer_account_id: string;
  payee_account_id: string;
  payer_customer_id: string;
  amount: bigint;
  currency: string;
  reference: string;
  status: S;
  route: PaymentRoute;
  step: PaymentStep;
  reason: string;
  attempts: number;
  next_attempt_at: Date;
  payer_shard: number;
  payee_shard: number;
  created_at: Date;
  updated_at: Date;
  settled_at: Date | null;
}

export function paymentToProto(r: PaymentRow): Payment {
  return {
    id: r.id,
    channel: r.channel,
    idempotencyKey: r.idempotency_key,
    payerAccountId: r.payer_account_id,
    payeeAccountId: r.payee_account_id,
    payerCustomerId: r.payer_customer_id,
    amount: r.amount,
    currency: r.currency,
    reference: r.reference,
    status: r.status,
    route: r.route,
    step: r.step,
    reason: r.reason,
    attempts: r.attempts,
    payerShard: r.payer_shard,
    payeeShard: r.payee_shard,
    createdAt: toTimestamp(r.created_at),
    updatedAt: toTimestamp(r.updated_at),
    ...(r.settled_at ? { settledAt: toTimestamp(r.settled_at) } : {}),
  };
}

/**
 * The payment id: derived from the channel and its idempotency key, with the payer's bucket in its
 * last four hex digits so that it routes to the payer's home shard without a lookup.
 */
export function paymentIdFor(payerBucket: number, channel: string, idempotencyKey: string): string {
  return bucketedId(payerBucket, 'payment', channel, idempotencyKey);
}

export interface PaymentBody {
  payerAccountId: string;
  payeeAccountId: string;
  amount: bigint;
  currency: string;
  reference: string;
}

export const bodyHashOf = (b: PaymentBody): string =>
  createHash('sha256')
    .update(JSON.stringify([b.payerAccountId, b.payeeAccountId, b.amount.toString(), b.currency, b.reference]))
    .digest('base64url');

export async function findPayment(shard: Shard, id: string): Promise<PaymentRow | undefined> {
  return (await shard.db('payments').where('id', id).first()) as PaymentRow | undefined;
}

/** The order recorded for this channel and key, compared with the request's body. */
export function replayOf(existing: PaymentRow, hash: string): { payment: Payment; replayed: true } {
  if (existing.body_hash !== hash) {
    throw new DomainError(
      'ALREADY_EXISTS',
      'PAYMENT_EXISTS_WITH_DIFFERENT_BODY',
      'idempotency_key: this channel made a payment with this key and a different body',
      [{ field: 'idempotency_key', description: 'was used before with a different body' }],
      { payment_id: existing.id },
    );
  }
  return { payment: paymentToProto(existing), replayed: true };
}

export interface NewPayment extends PaymentBody {
  id: string;
  channel: string;
  idempotencyKey: string;
  bodyHash: string;
  payerCustomerId: string;
  route: PaymentRoute;
  step: PaymentStep;
  payerShard: number;
  payeeShard: number;
}

export async function insertPayment(
  shard: Shard,
  p: NewPayment,
): Promise<{ payment: Payment; replayed: boolean; row: PaymentRow }> {
  return shard.db.transaction(async (tx) => {
    const now = new Date();
    const inserted = (await tx('payments')
      .insert({
        id: p.id,
        channel: p.channel,
        idempotency_key: p.idempotencyKey,
        body_hash: p.bodyHash,
        payer_account_id: p.payerAccountId,
        payee_account_id: p.payeeAccountId,
        payer_customer_id: p.payerCustomerId,
        amount: p.amount.toString(),
        currency: p.currency,
        reference: p.reference,
        status: S.PAYMENT_STATUS_ACCEPTED,
        route: p.route,
        step: p.step,
        payer_shard: p.payerShard,
        payee_shard: p.payeeShard,
        next_attempt_at: now,
        created_at: now,
        updated_at: now,
      })
      .onConflict()
      .ignore()
      .returning('*')) as PaymentRow[];
    if (inserted.length) {
      const row = inserted[0]!;
      const payment = paymentToProto(row);
      await writeEvents(tx, [paymentChanged('payment_accepted', payment, S.PAYMENT_STATUS_UNSPECIFIED, now)]);
      return { payment, replayed: false, row };
    }
    // Either the same id (same channel and key) or the same (channel, key) pair: both are "this key was used".
    const existing = (await tx('payments')
      .where('id', p.id)
      .orWhere({ channel: p.channel, idempotency_key: p.idempotencyKey })
      .first()) as PaymentRow;
    return { ...replayOf(existing, p.bodyHash), row: existing };
  });
}

/** A customer's orders, newest first; the page token is the last row's seq. */
export async function listPayments(
  shard: Shard,
  customerId: string,
  size: number,
  after: bigint | undefined,
): Promise<{ payments: Payment[]; nextPageToken: string }> {
  let q = shard.db('payments').where('payer_customer_id', customerId);
  if (after !== undefined) q = q.andWhere('seq', '<', after.toString());
  const rows = (await q.orderBy('seq', 'desc').limit(size + 1)) as PaymentRow[];
  const page = rows.slice(0, size);
  return {
    payments: page.map(paymentToProto),
    nextPageToken: rows.length > size ? page[page.length - 1]!.seq.toString() : '',
  };
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
    [leaseMs / 1000, id, PaymentStep.PAYMENT_STEP_DONE],
  );
  return (rows as PaymentRow[])[0];
}

/** After a transient failure: the step is due again after the backoff. */
export async function deferStep(shard: Shard, row: PaymentRow, backoffMs: number): Promise<void> {
  await shard.db.raw(
    `update payments set next_attempt_at = now() + make_interval(secs => ?), updated_at = now()
      where id = ? and step = ?`,
    [backoffMs / 1000, row.id, row.step],
  );
}

/**
 * Records a step's outcome and its event in one transaction, if the order is still at that step
 * (another driver may have recorded it first: then nothing is written). An empty reason keeps the
 * order's reason (a voided hold stays rejected for the credit's failure).
 */
export async function advance(
  shard: Shard,
  row: PaymentRow,
  next: Next,
  reason: string,
): Promise<PaymentRow | undefined> {
  return shard.db.transaction(async (tx) => {
    const now = new Date();
    const settled = next.status === S.PAYMENT_STATUS_COMPLETED || next.status === S.PAYMENT_STATUS_REJECTED;
    const { rows } = (await tx.raw(
      `update payments set status = ?, step = ?, reason = case when ? = '' then reason else ? end, attempts = 0, next_attempt_at = ?, updated_at = ?,
              settled_at = case when ? then ?::timestamptz else settled_at end
        where id = ? and step = ?
        returning *`,
      [next.status, next.step, reason, reason, now, now, settled, now, row.id, row.step],
    )) as { rows: Row[] };
    const after = rows[0] as PaymentRow | undefined;
    if (!after) return undefined;
    await writeEvents(tx, [paymentChanged(next.event, paymentToProto(after), row.status, now)]);
    return after;
  });
}

/** Orders with work left whose next attempt is due, oldest due first. */
export async function dueOrders(shard: Shard, limit: number): Promise<string[]> {
  const rows = (await shard
    .db('payments')
    .select('id')
    .whereNot('step', PaymentStep.PAYMENT_STEP_DONE)
    .andWhere('next_attempt_at', '<=', shard.db.fn.now())
    .orderBy('next_attempt_at')
    .limit(limit)) as { id: string }[];
  return rows.map((r) => r.id);
}

/** How many orders of a shard have saga work left, and the age in seconds of the oldest. */
export async function sagaBacklog(shard: Shard): Promise<{ n: number; age: number }> {
  const { rows } = await shard.db.raw(
    `select count(*) as n, coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as age
       from payments where step <> ?`,
    [PaymentStep.PAYMENT_STEP_DONE],
  );
  const r = (rows as { n: bigint; age: number }[])[0]!;
  return { n: Number(r.n), age: r.age };
}
