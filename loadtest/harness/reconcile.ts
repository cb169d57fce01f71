// Reconciliation of the payment runs against the databases themselves:
//   - every order settles (bounded wait): none left at a step other than DONE;
//   - the orders in every payment shard's `payments`, by status, against what k6 saw accepted:
//     each accepted order is there exactly once, COMPLETED or REJECTED;
//   - the ledger's journal holds exactly the transfers the orders imply, order by order (a
//     transfer's reference is `payment:<id>`): same shard COMPLETED 1 (the transfer), cross shard
//     COMPLETED 3 (hold, credit, post), REJECTED 0, or 2 for a cross-shard order whose credit
//     failed (hold, void);
//   - the in-transit accounts (ListSystemAccounts) net to zero per currency over the shards, with
//     nothing pending.
// Plus the cross-shard settle times (settled_at - created_at of completed cross-shard orders).
import pg from 'pg';
import { PaymentRoute, PaymentStatus } from '@corebank/kit/gen/corebank/v1/payment';
import { SystemAccountKind, type SystemAccount } from '@corebank/kit/gen/corebank/v1/account';

/** PAYMENT_STEP_DONE */
const DONE = 6;

/** Runs `sql` on each database and returns every row. */
export async function queryEach<T>(url: string, dbs: string[], sql: string, params: unknown[] = []): Promise<T[]> {
  const out: T[] = [];
  for (const db of dbs) {
    const c = new pg.Client(`${url}/${db}`);
    await c.connect();
    try {
      out.push(...((await c.query(sql, params)).rows as T[]));
    } finally {
      await c.end();
    }
  }
  return out;
}

/** Waits until no order has a step left to do (at most timeoutMs); returns how many still had one. */
export async function waitSettled(
  url: string,
  paymentDbs: string[],
  timeoutMs: number,
): Promise<{ unsettled: number; waitedMs: number }> {
  const start = Date.now();
  for (;;) {
    const rows = await queryEach<{ n: string }>(
      url,
      paymentDbs,
      `/* bench-harness */ select count(*)::text as n from payment.payments where step <> ${DONE}`,
    );
    const unsettled = rows.reduce((n, r) => n + Number(r.n), 0);
    if (unsettled === 0 || Date.now() - start > timeoutMs) return { unsettled, waitedMs: Date.now() - start };
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface Percentiles {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
  };
}

/** Settle times (ms) of the completed cross-shard orders created in [from, to]. */
export async function crossShardSettle(url: string, paymentDbs: string[], from: Date, to: Date): Promise<Percentiles> {
  const rows = await queryEach<{ ms: number }>(
    url,
    paymentDbs,
    `select extract(epoch from (settled_at - created_at)) * 1000 as ms from payment.payments
      where route = $1 and status = $2 and created_at between $3 and $4 and settled_at is not null`,
    [PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD, PaymentStatus.PAYMENT_STATUS_COMPLETED, from, to],
  );
  return percentiles(rows.map((r) => Number(r.ms)));
}

export interface PaymentReconciliation {
  ok: boolean;
  why: string[];
  /** Rows in every payment shard's `payments`. */
  orders: number;
  /** Orders k6 saw accepted (an OK response, counted once per idempotency key), all runs so far. */
  k6Accepted: number;
  byStatus: Record<string, number>;
  byRoute: Record<string, number>;
  unsettled: number;
  settleWaitMs: number;
  /** Journal transfers whose reference names a payment order, and what the orders imply. */
  journalTransfers: number;
  expectedTransfers: number;
  /** Cross-shard orders rejected after the hold (hold + void in the journal). */
  voided: number;
  /** Orders whose transfers in the journal are not what their status implies (the first few). */
  mismatched: { id: string; status: string; route: string; transfers: number }[];
  /** Per currency: in-transit credits - debits posted, summed over the shards, and pending amounts. */
  inTransit: Record<string, { net: string; pending: string }>;
}

export async function reconcilePayments(o: {
  url: string;
  paymentDbs: string[];
  accountDbs: string[];
  k6Accepted: number;
  settleTimeoutMs: number;
  systemAccounts: () => Promise<SystemAccount[]>;
}): Promise<PaymentReconciliation> {
  const why: string[] = [];
  const wait = await waitSettled(o.url, o.paymentDbs, o.settleTimeoutMs);
  if (wait.unsettled) why.push(`${wait.unsettled} orders still unsettled after ${o.settleTimeoutMs / 1000}s`);

  const orders = await queryEach<{ id: string; status: number; route: number }>(
    o.url,
    o.paymentDbs,
    'select id, status, route from payment.payments',
  );
  const perOrder = new Map<string, number>();
  for (const r of await queryEach<{ reference: string; n: string }>(
    o.url,
    o.accountDbs,
    `select reference, count(*)::text as n from account.transfers where reference like 'payment:%' group by reference`,
  )) {
    const id = r.reference.slice('payment:'.length);
    perOrder.set(id, (perOrder.get(id) ?? 0) + Number(r.n));
  }
  const journalTransfers = [...perOrder.values()].reduce((a, b) => a + b, 0);

  const byStatus: Record<string, number> = {};
  const byRoute: Record<string, number> = {};
  const mismatched: PaymentReconciliation['mismatched'] = [];
  let expected = 0;
  let voided = 0;
  let mismatches = 0;
  const cross = PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD;
  for (const r of orders) {
    const status = PaymentStatus[r.status] ?? String(r.status);
    const route = PaymentRoute[r.route] ?? String(r.route);
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    byRoute[route] = (byRoute[route] ?? 0) + 1;
    const n = perOrder.get(r.id) ?? 0;
    perOrder.delete(r.id);
    let want: number[];
    if (r.status === PaymentStatus.PAYMENT_STATUS_COMPLETED) want = [r.route === cross ? 3 : 1];
    else if (r.status === PaymentStatus.PAYMENT_STATUS_REJECTED) want = r.route === cross ? [0, 2] : [0];
    else want = []; // any other status is a failure of its own (counted below)
    if (r.status === PaymentStatus.PAYMENT_STATUS_REJECTED && r.route === cross && n === 2) voided++;
    expected += want.includes(n) ? n : (want[0] ?? n);
    if (want.length && !want.includes(n)) {
      mismatches++;
      if (mismatched.length < 5) mismatched.push({ id: r.id, status, route, transfers: n });
    }
  }
  const stray = perOrder.size;
  const final = (byStatus.PAYMENT_STATUS_COMPLETED ?? 0) + (byStatus.PAYMENT_STATUS_REJECTED ?? 0);
  if (orders.length !== o.k6Accepted)
    why.push(`${orders.length} orders in the payment shards, but k6 saw ${o.k6Accepted} accepted`);
  if (final !== orders.length)
    why.push(`${orders.length - final} orders neither COMPLETED nor REJECTED: ${JSON.stringify(byStatus)}`);
  if (mismatches)
    why.push(`${mismatches} orders whose journal transfers differ from their status (${JSON.stringify(mismatched)})`);
  if (stray) why.push(`${stray} journal references name payment orders that do not exist`);

  const inTransit: PaymentReconciliation['inTransit'] = {};
  const sums: Record<string, { net: bigint; pending: bigint }> = {};
  for (const s of await o.systemAccounts()) {
    if (s.kind !== SystemAccountKind.SYSTEM_ACCOUNT_KIND_IN_TRANSIT || !s.account) continue;
    const a = s.account;
    const t = (sums[a.currency] ??= { net: 0n, pending: 0n });
    t.net += a.creditsPosted - a.debitsPosted;
    t.pending += a.creditsPending + a.debitsPending;
  }
  for (const [cur, t] of Object.entries(sums)) {
    inTransit[cur] = { net: String(t.net), pending: String(t.pending) };
    if (t.net !== 0n || t.pending !== 0n)
      why.push(`in-transit ${cur} does not net to zero: credits - debits posted ${t.net}, pending ${t.pending}`);
  }
  return {
    ok: why.length === 0,
    why,
    orders: orders.length,
    k6Accepted: o.k6Accepted,
    byStatus,
    byRoute,
    unsettled: wait.unsettled,
    settleWaitMs: wait.waitedMs,
    journalTransfers,
    expectedTransfers: expected,
    voided,
    mismatched,
    inTransit,
  };
}

export interface PaymentDates {
  ok: boolean;
  why: string[];
  /** Payment orders' ledger transfers by business date: of orders accepted before `from`, and from then on. */
  before: Record<string, number>;
  during: Record<string, number>;
  /** Transfers dated `closed` of orders accepted after their shard's date had moved past it. */
  late: number;
}

/**
 * The business dates of the payment orders' transfers around a close of business of `closed`,
 * which moves every account shard's date to the day after before anything else: an order accepted
 * (payment.payments.created_at, taken when its request arrives) after the move of the date on the
 * shard that books a transfer of it (account.business_date.updated_at) must have that transfer
 * dated the day after. Every payment transfer must be dated `closed` or the day after. Counts are
 * split at `from` (when the close of business was asked for).
 */
export async function reconcilePaymentDates(o: {
  url: string;
  paymentDbs: string[];
  accountDbs: string[];
  closed: string;
  next: string;
  from: Date;
}): Promise<PaymentDates> {
  const accepted = new Map<string, number>();
  for (const r of await queryEach<{ id: string; at: Date }>(
    o.url,
    o.paymentDbs,
    'select id, created_at as at from payment.payments',
  ))
    accepted.set(r.id, r.at.getTime());
  const before: Record<string, number> = {};
  const during: Record<string, number> = {};
  const why: string[] = [];
  let late = 0;
  let strange = 0;
  for (const db of o.accountDbs) {
    const [moved] = await queryEach<{ date: string; at: Date }>(
      o.url,
      [db],
      `select to_char(business_date, 'YYYY-MM-DD') as date, updated_at as at from account.business_date`,
    );
    if (moved?.date !== o.next) why.push(`${db}'s business date is ${moved?.date}, not ${o.next}`);
    const movedAt = moved?.at.getTime() ?? Infinity;
    for (const t of await queryEach<{ reference: string; date: string }>(
      o.url,
      [db],
      `select reference, to_char(business_date, 'YYYY-MM-DD') as date from account.transfers
        where reference like 'payment:%'`,
    )) {
      const at = accepted.get(t.reference.slice('payment:'.length));
      if (at === undefined) continue; // a stray reference: reconcilePayments reports it
      const counts = at >= o.from.getTime() ? during : before;
      counts[t.date] = (counts[t.date] ?? 0) + 1;
      if (t.date !== o.closed && t.date !== o.next) strange++;
      if (t.date === o.closed && at > movedAt) late++;
    }
  }
  if (late)
    why.push(`${late} payment transfers dated ${o.closed} of orders accepted after their shard moved to ${o.next}`);
  if (strange) why.push(`${strange} payment transfers dated neither ${o.closed} nor ${o.next}`);
  return { ok: why.length === 0, why, before, during, late };
}
