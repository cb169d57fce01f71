// Shared k6 code for the payment scenarios (loadtest/payments.js): CreatePayment through the
// payment service, with exact counting of orders for the harness's reconciliation.
//
// Environment (the harness sets it; see also lib/bank.js, whose fixture and helpers this shares):
//   PAYMENT_ADDR          payment service, host:port
//   TOKEN                 bearer token with payments:write
//   CROSS_PCT             share of orders whose payee is on another shard than the payer (0-100, default 50)
//   SHED_RETRIES          how often a shed call (RESOURCE_EXHAUSTED, OVERLOADED or RATE_LIMITED) is sent
//                         again after its retry hint before the order counts as shed (default 2)
//
// Every order gets a fresh idempotency key. A call whose outcome is unknown (UNAVAILABLE,
// DEADLINE_EXCEEDED, a broken connection, ...) is sent again with the SAME key and body, so the
// order exists at most once; a replayed answer counts the order once. A shed call wrote nothing:
// it is sent again (same key) after the hint at most SHED_RETRIES times, then counted as shed,
// unless an earlier attempt of the order had an unknown outcome (then it is retried until it has
// a definitive answer, within a bound, or counted unknown).
import grpc from 'k6/net/grpc';
import { sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { errors, ids, meta, num, randInt, uuid } from './bank.js';

const TOKEN = __ENV.TOKEN || '';
const ADDR = __ENV.PAYMENT_ADDR || '127.0.0.1:50054';
const METHOD = 'corebank.v1.PaymentService/CreatePayment';

/** Orders the payment service accepted (an OK response), once per idempotency key, by route asked and status answered. */
export const accepted = new Counter('payments_accepted');
/** Orders refused with a definitive error status (INVALID_ARGUMENT, NOT_FOUND, ...): nothing written. */
export const refused = new Counter('payments_refused');
/** Orders given up after SHED_RETRIES shed answers: nothing written. */
export const shed = new Counter('payments_shed');
/** Orders whose outcome stayed unknown after every retry: must be zero for the reconciliation. */
export const unknown = new Counter('payments_unknown');
/** Every RESOURCE_EXHAUSTED answer (by reason), retried or not. */
export const shedCalls = new Counter('payment_shed_calls');
export const retries = new Counter('payment_retries');
/** Latency of admitted calls only (OK answers), ms: shed answers are fast and would flatter it. */
export const admittedMs = new Trend('payment_admitted_ms', true);
// `errors` (lib/bank.js), per order: 1 when it did not end accepted (refused, unknown; shed orders
// are counted apart).

const client = new grpc.Client();
client.load([__ENV.PROTO_DIR || '../proto'], 'corebank/v1/payment.proto');
let connected = false;

const CROSS_PCT = num('CROSS_PCT', 50);
const SHED_RETRIES = num('SHED_RETRIES', 2);
/** Retries of an order whose outcome is unknown (each after a short backoff or the server's hint). */
const UNKNOWN_RETRIES = 8;

// k6 gives a status as a wrapped Go value: compare them as numbers.
const UNCERTAIN = new Set(
  [
    grpc.StatusUnavailable,
    grpc.StatusDeadlineExceeded,
    grpc.StatusAborted,
    grpc.StatusUnknown,
    grpc.StatusInternal,
    grpc.StatusResourceExhausted, // unless its reason says it was shed at admission (below)
  ].map(Number),
);

/**
 * The reason and retry hint (ms) of an error answer. k6 cannot decode the google.rpc.Status
 * details (res.error is empty for them), but the trailer grpc-status-details-bin comes through as
 * a binary string: the ErrorInfo's reason and its metadata retry_after_ms are plain text in it.
 */
export function errorInfo(res) {
  const out = { reason: '', retryMs: undefined };
  const raw = res && res.trailers && res.trailers['grpc-status-details-bin'];
  const bin = Array.isArray(raw) ? String(raw[0] || '') : String(raw || '');
  const reason = /(OVERLOADED|RATE_LIMITED)/.exec(bin);
  if (reason) out.reason = reason[1];
  const hint = /retry_after_ms[\s\S]{2}(\d+)/.exec(bin);
  if (hint) out.retryMs = Number(hint[1]);
  return out;
}

const SHED_REASONS = new Set(['OVERLOADED', 'RATE_LIMITED']);

/**
 * One payment order. Returns the Payment message when accepted, else null. Counts the order once:
 * accepted (tags op, route, status), refused, shed or unknown.
 */
export function createPayment(payer, payee, amount, route, op = 'payment') {
  if (!connected) {
    client.connect(ADDR, { plaintext: true, timeout: '10s' });
    connected = true;
  }
  const req = {
    idempotency_key: uuid(),
    payer_account_id: payer,
    payee_account_id: payee,
    amount: String(amount),
    currency: 'EUR',
    reference: 'bench payment',
  };
  const params = { metadata: { authorization: `Bearer ${TOKEN}` }, tags: { op }, timeout: '10s' };
  let uncertain = false;
  let sheds = 0;
  let unknowns = 0;
  for (;;) {
    let res;
    const t0 = Date.now();
    try {
      res = client.invoke(METHOD, req, params);
    } catch (e) {
      console.warn(`CreatePayment: ${e}`);
      res = { status: grpc.StatusUnavailable };
    }
    const ms = Date.now() - t0;
    if (res && res.status === grpc.StatusOK) {
      const p = res.message.payment;
      admittedMs.add(ms, { op });
      accepted.add(1, { op, route, status: String(p.status) });
      errors.add(0, { op });
      return p;
    }
    const status = res ? Number(res.status) : -1;
    const info = errorInfo(res);
    if (status === Number(grpc.StatusResourceExhausted) && SHED_REASONS.has(info.reason)) {
      shedCalls.add(1, { op, reason: info.reason });
      sheds++;
      // Nothing was written by a shed call; an earlier attempt with an unknown outcome may have.
      if (sheds <= SHED_RETRIES || (uncertain && sheds + unknowns <= UNKNOWN_RETRIES)) {
        retries.add(1, { op, why: 'shed' });
        sleep((info.retryMs ?? 100) / 1000);
        continue;
      }
      if (uncertain) {
        unknown.add(1, { op });
        errors.add(1, { op });
      } else shed.add(1, { op, reason: info.reason });
      return null;
    }
    if (UNCERTAIN.has(status)) {
      uncertain = true;
      unknowns++;
      if (sheds + unknowns <= UNKNOWN_RETRIES) {
        retries.add(1, { op, why: 'unknown' });
        sleep(info.retryMs !== undefined ? info.retryMs / 1000 : 0.05 * unknowns);
        continue;
      }
      console.warn(
        `CreatePayment: outcome unknown after ${unknowns} tries: status ${status} ${JSON.stringify(res.error)}`,
      );
      unknown.add(1, { op });
      errors.add(1, { op });
      return null;
    }
    // A definitive refusal (bad input, not found, permission, already exists with another body).
    console.warn(`CreatePayment refused: status ${status} ${JSON.stringify(res && res.error)} ${info.reason}`);
    refused.add(1, { op, code: String(status) });
    errors.add(1, { op });
    return null;
  }
}

const total = ids.length;
const amount = () => 1 + randInt(100);
const shardOf = (k) => meta.shards.find((s) => k >= s.start && k < s.end);
const inShard = (s) => ids[s.start + randInt(s.end - s.start)];
/** A shard other than s, at random (s itself with one shard). */
function otherShard(s) {
  if (meta.shards.length < 2) return s;
  let j = randInt(meta.shards.length - 1);
  if (j >= s.index) j++;
  return meta.shards[j];
}
/** Cross shard with probability CROSS_PCT %. */
const crossNow = () => meta.shards.length > 1 && randInt(100) < CROSS_PCT;

/** A payment between two random customers, same shard or not as CROSS_PCT says. */
export function uniformPayment(op = 'payment') {
  const k = randInt(total);
  const s = shardOf(k);
  if (crossNow()) return createPayment(ids[k], inShard(otherShard(s)), amount(), 'cross', op);
  let j = s.start + randInt(s.end - s.start - 1);
  if (j >= k) j++;
  return createPayment(ids[k], ids[j], amount(), 'same', op);
}

/** A payment from a random customer to `payee` (on shard `shard`), the payer's shard as CROSS_PCT says. */
export function paymentTo(shard, payee, op = 'payment') {
  const cross = crossNow();
  const s = cross ? otherShard(shard) : shard;
  return createPayment(inShard(s), payee, amount(), cross ? 'cross' : 'same', op);
}

/** A payment from `payer` (on shard `shard`) to a random customer, the payee's shard as CROSS_PCT says. */
export function paymentFrom(shard, payer, op = 'payment') {
  const cross = crossNow();
  const s = cross ? otherShard(shard) : shard;
  return createPayment(payer, inShard(s), amount(), cross ? 'cross' : 'same', op);
}

/** Thresholds of the payment scenarios (reported by the harness; fatal only in the smoke). */
export function paymentThresholds() {
  const p95 = Number(__ENV.P95_MS || 50);
  const p99 = Number(__ENV.P99_MS || 100);
  return {
    errors: [`rate<${Number(__ENV.MAX_ERROR_RATE || 0.01)}`],
    payments_unknown: ['count==0'],
    'payment_admitted_ms{op:payment}': [`p(95)<${p95}`, `p(99)<${p99}`],
    // Not limits: these make k6 report the per-tag counts in the summary.
    'payments_accepted{route:same}': ['count>=0'],
    'payments_accepted{route:cross}': ['count>=0'],
    'payment_shed_calls{reason:OVERLOADED}': ['count>=0'],
    'payment_shed_calls{reason:RATE_LIMITED}': ['count>=0'],
  };
}

/** The JSON summary goes to SUMMARY_PATH; a short line goes to stdout. */
export function paymentSummary(data) {
  const m = data.metrics;
  const v = (name, key) => (m[name] && m[name].values ? m[name].values[key] : undefined);
  const d = (x) => (x === undefined ? '-' : x.toFixed(1));
  const line =
    `${__ENV.SCENARIO_LABEL || 'k6'}: payments_accepted=${v('payments_accepted', 'count') || 0}` +
    ` (${d(v('payments_accepted', 'rate'))}/s; same ${v('payments_accepted{route:same}', 'count') || 0}, cross ${v('payments_accepted{route:cross}', 'count') || 0})` +
    ` refused=${v('payments_refused', 'count') || 0} shed=${v('payments_shed', 'count') || 0}` +
    ` (calls ${v('payment_shed_calls', 'count') || 0}) unknown=${v('payments_unknown', 'count') || 0}` +
    ` p50/p95/p99=${d(v('payment_admitted_ms', 'med'))}/${d(v('payment_admitted_ms', 'p(95)'))}/${d(v('payment_admitted_ms', 'p(99)'))} ms` +
    ` dropped=${v('dropped_iterations', 'count') || 0}\n`;
  const out = { stdout: line };
  if (__ENV.SUMMARY_PATH) out[__ENV.SUMMARY_PATH] = JSON.stringify(data, null, 1);
  return out;
}
