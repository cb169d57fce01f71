// Shared k6 code for the corebank load tests: the gRPC client, the demo data the harness loaded
// (loadtest/bench.ts writes it and passes its path in FIXTURE), transfers with exact success
// counting, and the JSON summary.
//
// Environment (the harness sets all of it; by hand: see docs/benchmarks.md):
//   ADDR          account service, host:port (default 127.0.0.1:50051)
//   TOKEN         bearer token (ES256, audience corebank.account, scopes accounts:read accounts:write
//                 transfers:write; npm run token mints one)
//   FIXTURE       path of the JSON the harness wrote: accounts by shard, cash and merchant accounts
//   SUMMARY_PATH  where handleSummary writes the JSON summary (optional)
//   P95_MS, P99_MS  latency thresholds of payments (defaults 50 and 100)
//   MAX_ERROR_RATE  error-rate threshold (default 0.01)
//   GATE_URL      optional: the harness's gate (harness/payments.ts), read by gateOpen()
/* global open, crypto */
import grpc from 'k6/net/grpc';
import http from 'k6/http';
import exec from 'k6/execution';
import { Counter, Rate } from 'k6/metrics';
import { SharedArray } from 'k6/data';
import { sleep } from 'k6';

export const ADDR = __ENV.ADDR || '127.0.0.1:50051';
const TOKEN = __ENV.TOKEN || '';
const SERVICE = 'corebank.v1.AccountService';

// Every OK transfer this test created (payments and the funding of accounts it opened itself),
// counted once per transfer id: the harness reconciles this against the journal.
export const transfersOk = new Counter('transfers_ok');
// Transfers the ledger refused (a definitive result code other than OK).
export const transfersRefused = new Counter('transfers_refused');
// Transfers whose outcome stayed unknown after every retry (must be zero for reconciliation).
export const transfersUnknown = new Counter('transfers_unknown');
export const accountsOpened = new Counter('accounts_opened');
export const retries = new Counter('grpc_retries');
// Per RPC: 1 when it failed (gRPC status not OK on the first try, or a transfer refused).
export const errors = new Rate('errors');

const client = new grpc.Client();
// Import paths are relative to the scenario script (loadtest/*.js): proto/ at the repository root.
client.load([__ENV.PROTO_DIR || '../proto'], 'corebank/v1/account.proto');

// The harness's data: account ids sorted by shard, plus per-shard offsets and GL accounts.
const fixturePath = __ENV.FIXTURE;
if (!fixturePath) throw new Error('FIXTURE is not set: run the scenarios through `npm run bench` (loadtest/bench.ts)');
export const ids = new SharedArray('accounts', () => JSON.parse(open(fixturePath)).accounts);
/** { shards: [{ index, start, end, cash, merchant }], hot: { shard, account } } */
export const meta = (() => {
  const f = JSON.parse(open(fixturePath));
  delete f.accounts;
  return f;
})();
const total = ids.length;

let connected = false;
function connect() {
  if (connected) return;
  client.connect(ADDR, { plaintext: true, timeout: '10s' });
  connected = true;
}

const params = (op, timeout = '10s') => ({
  metadata: { authorization: `Bearer ${TOKEN}` },
  tags: { op },
  timeout,
});

// The JSON mapping (protojson) gives enum names; accept numbers too in case that changes.
const OK_CODES = new Set(['TRANSFER_RESULT_CODE_OK', 1]);
export const isOk = (code) => OK_CODES.has(code);

// Statuses after which the request may or may not have been applied: retry with the same ids
// (transfer ids are idempotency keys, so a retry can never apply a transfer twice). k6 gives a
// status as a wrapped Go value, which a Set never finds: they are compared as numbers.
const RETRYABLE = new Set(
  [
    grpc.StatusUnavailable,
    grpc.StatusDeadlineExceeded,
    grpc.StatusAborted,
    grpc.StatusUnknown,
    grpc.StatusResourceExhausted,
    grpc.StatusInternal,
  ].map(Number),
);

/**
 * A unary call. Returns { res, definitive }: res is the response when the status is OK (else
 * null); definitive is false when the outcome is unknown (a retryable status on every attempt).
 * With retry, calls that may or may not have been applied are sent again unchanged.
 * `failedIf(res)` lets the caller count an OK response as an error (a refused transfer).
 */
export function call(method, req, op, { retry = false, discard = false, failedIf } = {}) {
  connect();
  const p = params(op);
  if (discard) p.discardResponseMessage = true;
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = client.invoke(`${SERVICE}/${method}`, req, p);
    } catch (e) {
      // A broken connection throws instead of returning a status: treat it as UNAVAILABLE.
      console.warn(`${method}: ${e}`);
      res = { status: grpc.StatusUnavailable };
    }
    if (res && res.status === grpc.StatusOK) {
      if (attempt === 0) errors.add(failedIf && failedIf(res) ? 1 : 0, { op });
      return { res, definitive: true };
    }
    if (attempt === 0) errors.add(1, { op });
    const status = res ? Number(res.status) : -1;
    const retryable = RETRYABLE.has(status);
    if (!retry || !retryable || attempt >= 5) {
      if (attempt === 0 || !retryable)
        console.warn(`${method} failed: status ${status} ${res && res.error ? JSON.stringify(res.error) : ''}`);
      return { res: null, definitive: !retryable };
    }
    retries.add(1, { op });
    sleep(0.05 * (attempt + 1));
  }
}

export function uuid() {
  if (typeof crypto !== 'undefined' && crypto.randomUUID) return crypto.randomUUID();
  const h = '0123456789abcdef';
  let s = '';
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) s += '-';
    else if (i === 14) s += '4';
    else if (i === 19) s += h[8 + Math.floor(Math.random() * 4)];
    else s += h[Math.floor(Math.random() * 16)];
  }
  return s;
}

export const transfer = (debit, credit, amount, reference = '') => ({
  id: uuid(),
  debit_account_id: debit,
  credit_account_id: credit,
  amount: String(amount), // int64: a string in the JSON mapping
  kind: 'TRANSFER_KIND_SINGLE_PHASE',
  code: 1,
  reference,
});

/**
 * Sends transfers in one CreateTransfers call, retrying unknown outcomes with the same ids, and
 * counts each transfer exactly once: OK (new or replayed after a lost reply), refused, or unknown.
 * Returns the number that are OK.
 */
export function createTransfers(transfers, op) {
  const refused = (res) => res.message.results.some((r) => !isOk(r.code));
  const { res, definitive } = call('CreateTransfers', { transfers }, op, { retry: true, failedIf: refused });
  if (!res) {
    // A definitive error status (INVALID_ARGUMENT, PERMISSION_DENIED, ...) writes nothing.
    (definitive ? transfersRefused : transfersUnknown).add(transfers.length, { op });
    return 0;
  }
  let ok = 0;
  for (const r of res.message.results) {
    if (isOk(r.code)) ok++;
    else transfersRefused.add(1, { op, code: String(r.code) });
  }
  if (ok) transfersOk.add(ok, { op });
  return ok;
}

export const randInt = (n) => Math.floor(Math.random() * n);
const amount = () => 1 + randInt(100);

/** A random account index, and the shard entry it lies in. */
export function randomAccount() {
  const k = randInt(total);
  const shard = meta.shards.find((s) => k >= s.start && k < s.end);
  return { id: ids[k], k, shard };
}

/** Another random account on the same shard. */
export function peerOf(a) {
  const n = a.shard.end - a.shard.start;
  let j = a.shard.start + randInt(n - 1);
  if (j >= a.k) j++;
  return ids[j];
}

/** One payment between two random customers on the same shard. */
export function uniformPayment(op = 'transfer') {
  const a = randomAccount();
  return createTransfers([transfer(a.id, peerOf(a), amount(), 'bench payment')], op);
}

/**
 * n payments between random customers in one CreateTransfers call, as a channel's gateway sends
 * them when it aggregates its customers' payments (each pair on one shard; the call may span shards).
 */
export function uniformPayments(n, op = 'transfer') {
  const ts = [];
  for (let i = 0; i < n; i++) {
    const a = randomAccount();
    ts.push(transfer(a.id, peerOf(a), amount(), 'bench payment'));
  }
  return createTransfers(ts, op);
}

/** One payment from a random customer of shard `shard` (an entry of meta.shards) to `credit`. */
export function paymentTo(shard, credit, op = 'transfer') {
  const k = shard.start + randInt(shard.end - shard.start);
  return createTransfers([transfer(ids[k], credit, amount(), 'bench payment')], op);
}

export const scenarioName = () => exec.scenario.name;

/** Thresholds every scenario carries: errors, payment latency, no unknown outcomes. */
export function thresholds(extra = {}) {
  const p95 = Number(__ENV.P95_MS || 50);
  const p99 = Number(__ENV.P99_MS || 100);
  return {
    errors: [`rate<${Number(__ENV.MAX_ERROR_RATE || 0.01)}`],
    transfers_unknown: ['count==0'],
    'grpc_req_duration{op:transfer}': [`p(95)<${p95}`, `p(99)<${p99}`],
    // Not limits: these make k6 report the per-operation counts in the summary.
    'transfers_ok{op:transfer}': ['count>=0'],
    'transfers_ok{op:fund}': ['count>=0'],
    ...extra,
  };
}

export const summaryTrendStats = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

/** The JSON summary goes to SUMMARY_PATH; a short line goes to stdout. */
export function summary(data) {
  const m = data.metrics;
  const v = (name, key) => (m[name] && m[name].values ? m[name].values[key] : undefined);
  const d = (x) => (x === undefined ? '-' : x.toFixed(1));
  const line =
    `${__ENV.SCENARIO_LABEL || 'k6'}: transfers_ok=${v('transfers_ok', 'count') || 0}` +
    ` (${d(v('transfers_ok', 'rate'))}/s) refused=${v('transfers_refused', 'count') || 0}` +
    ` unknown=${v('transfers_unknown', 'count') || 0} errors=${d(100 * (v('errors', 'rate') || 0))}%` +
    ` transfer p50/p95/p99=${d(v('grpc_req_duration{op:transfer}', 'med'))}/${d(v('grpc_req_duration{op:transfer}', 'p(95)'))}/${d(v('grpc_req_duration{op:transfer}', 'p(99)'))} ms` +
    ` dropped=${v('dropped_iterations', 'count') || 0}\n`;
  const out = { stdout: line };
  if (__ENV.SUMMARY_PATH) out[__ENV.SUMMARY_PATH] = JSON.stringify(data, null, 1);
  return out;
}

/** Numeric env with a default. */
export const num = (name, dflt) => (__ENV[name] !== undefined && __ENV[name] !== '' ? Number(__ENV[name]) : dflt);
/** Load-generator VUs: one gRPC connection and one request in flight each (like pgbench clients). */
export const vus = () => num('VUS', 64);
export const duration = () => `${num('DURATION', 30)}s`;

const GATE_URL = __ENV.GATE_URL || '';
/** Without GATE_URL: always open. With it: wait (k6 still starting), go, stop (final). */
let gateState = GATE_URL ? 'wait' : 'go';
let gateAskedAt = 0;
/**
 * Whether this iteration should do its work: what the harness's gate (GATE_URL) says, asked at most
 * every 250 ms per VU, so a run can start and stop on the harness's word (cob.ts runs payments for
 * as long as the close of business takes). Once it said stop, no iteration starts an order again.
 */
export function gateOpen() {
  if (GATE_URL && gateState !== 'stop' && Date.now() - gateAskedAt >= 250) {
    const res = http.get(GATE_URL, { tags: { op: 'gate' }, timeout: '2s' });
    if (res.status === 200 && ['wait', 'go', 'stop'].includes(res.body)) gateState = res.body;
    gateAskedAt = Date.now();
  }
  return gateState === 'go';
}
