// `npm run bench`: the benchmark harness. On this machine, in one run, it
//   1. starts PostgreSQL and nats-server (the test infrastructure: real servers on free ports),
//      migrates N shards and starts the account service as a child process (so its CPU is its own);
//      with a payment scenario also the payment, customer and product services, each its own
//      process (harness/services.ts);
//   2. loads demo data: --accounts customers, spread over the shards by owner, each funded from
//      its shard's cash account, plus one merchant account (the hot account);
//   3. runs pgbench's built-in TPC-B-like script on the same PostgreSQL server with the same
//      client count for the same duration (the yardstick);
//   4. runs the k6 scenarios (steady, peak + the latency at 70% of the peak held, hot account,
//      onboarding burst; payments through the payment service, uniform + at 70% of their capacity,
//      hot payee, hot payer, overload at 3x) against the services over gRPC;
//   5. after every run checks the ledger invariant (CheckLedgerInvariant) and reconciles the
//      journal: transfers in every shard's account.transfers table, minus the funding the harness
//      did itself and the transfers of payment orders, must equal the transfers k6 saw succeed;
//      with payments, every order k6 saw accepted settled COMPLETED or REJECTED exactly once, the
//      journal holds exactly the transfers the orders imply and the in-transit accounts net to zero
//      (harness/reconcile.ts). Any mismatch fails the run (exit 1);
//   6. prints one table (throughput, ratio to pgbench, latency percentiles, errors, CPU of every
//      process), writes the figures as JSON under loadtest/results/ and appends a dated row to
//      docs/benchmarks.md.
//
//   npm run bench -- [--shards 3] [--accounts 10000] [--clients 64] [--duration 30] [--scale N]
//                    [--scenarios steady,batched,peak,hot,onboarding,payments,payments-hot-payee,
//                    payments-hot-payer,payments-overload] [--per-request N] [--rate N] [--cross-shard-percent 50]
//                    [--payment-admission N] [--payment-latency-target MS]
//                    [--no-pgbench] [--no-record] [--cpu-prof] [--relaxed] [--json PATH]
//   npm run bench:smoke          one scenario, a few seconds at a tiny rate, same reconciliation
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { ALL_AUDIENCES, createLogger, mintToken } from '@corebank/kit';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';
import { createDatabases, createTestAuth, promisify, startNats, startPostgres } from '@corebank/kit/testing';
import { localDatabase } from '../deploy/local/env.js';
import { cpuSnapshot as snapshotOf, cpuUse, findServer, type CpuSnapshot, type CpuUse } from './harness/cpu.js';
import { findK6, K6_MISSING, k6Env, runK6 as runK6Script, type K6Summary } from './harness/k6.js';
import {
  loadAccountFixture,
  mintK6Token,
  paymentFigures,
  paymentServiceEnv,
  type Latency,
} from './harness/payments.js';
import {
  crossShardSettle,
  percentile,
  reconcilePayments,
  waitSettled,
  type Percentiles,
  type PaymentReconciliation,
} from './harness/reconcile.js';
import {
  allocatePorts,
  metricsOf,
  migrateServices,
  runChild as runChildProcess,
  serviceEnvs,
  spawnService,
  stopChild,
  waitReady,
  type BankService,
  type ServiceProcess,
} from './harness/services.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// ---------------------------------------------------------------------------------------------
// Options

const LEDGER_SCENARIOS = ['steady', 'batched', 'peak', 'hot', 'onboarding'];
const PAYMENT_SCENARIOS = ['payments', 'payments-hot-payee', 'payments-hot-payer', 'payments-overload'];
const DEFAULT_SCENARIOS = [...LEDGER_SCENARIOS, ...PAYMENT_SCENARIOS];

const { values: flags } = parseArgs({
  options: {
    shards: { type: 'string', default: '3' },
    accounts: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '64' },
    duration: { type: 'string', default: '30' },
    scale: { type: 'string' },
    scenarios: { type: 'string', default: DEFAULT_SCENARIOS.join(',') },
    'cross-shard-percent': { type: 'string', default: '50' },
    'payment-admission': { type: 'string' },
    'payment-latency-target': { type: 'string', default: '0' },
    'per-request': { type: 'string', default: '20' },
    rate: { type: 'string' },
    'no-pgbench': { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    relaxed: { type: 'boolean', default: false },
    json: { type: 'string' },
    smoke: { type: 'boolean', default: false },
  },
  strict: true,
});

const smoke = flags.smoke;
const int = (name: string, raw: string | undefined, min: number): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
};
const opts = {
  shards: int('shards', flags.shards, 1),
  accounts: smoke ? 60 : int('accounts', flags.accounts, 10),
  clients: smoke ? 2 : int('clients', flags.clients, 1),
  duration: smoke ? 5 : int('duration', flags.duration, 5),
  scenarios: smoke ? ['steady', 'payments'] : flags.scenarios!.split(',').map((s) => s.trim()),
  rate: flags.rate !== undefined ? int('rate', flags.rate, 1) : smoke ? 10 : undefined,
  pgbench: !smoke && !flags['no-pgbench'],
  record: !smoke && !flags['no-record'],
  perRequest: int('per-request', flags['per-request'], 1),
  crossShardPercent: int('cross-shard-percent', flags['cross-shard-percent'], 0),
  /** PostgreSQL durable as in production (fsync, synchronous_commit, full_page_writes on), unless --relaxed. */
  durable: !flags.relaxed,
};
for (const s of opts.scenarios) {
  if (!DEFAULT_SCENARIOS.includes(s))
    fail(`--scenarios: unknown scenario "${s}" (known: ${DEFAULT_SCENARIOS.join(',')})`);
}
if (opts.crossShardPercent > 100) fail(`--cross-shard-percent must be 0..100, got ${opts.crossShardPercent}`);
/** Whether the payment path runs: then the payment, customer and product services run too. */
const paymentsOn = opts.scenarios.some((s) => PAYMENT_SCENARIOS.includes(s));
if (opts.scenarios.includes('payments-overload') && !opts.scenarios.includes('payments') && opts.rate === undefined)
  fail('payments-overload offers 3x the payment capacity: run it with payments (which measures it), or give --rate');
// pgbench's scale: at least one branch per client (fewer serialises pgbench on the branch rows,
// which would flatter us), and at least one pgbench_accounts row (100,000 a scale) per account.
const scale = flags.scale ? int('scale', flags.scale, 1) : Math.max(opts.clients, Math.ceil(opts.accounts / 100_000));

function fail(msg: string): never {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Tools

function findPgbench(): string {
  if (process.env.PG_BIN && existsSync(join(process.env.PG_BIN, 'pgbench'))) return join(process.env.PG_BIN, 'pgbench');
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, 'bin/pgbench'))) return join(base, v, 'bin/pgbench');
  fail('pgbench not found in /usr/lib/postgresql/<version>/bin: run `npm run setup`, set PG_BIN, or pass --no-pgbench');
}

const k6 = findK6(root) ?? fail(K6_MISSING);
const pgbench = opts.pgbench ? findPgbench() : '';

// ---------------------------------------------------------------------------------------------
// The run

const stamp = new Date()
  .toISOString()
  .replace(/[:.]/g, '-')
  .replace(/-\d{3}Z$/, 'Z');
const resultsDir = join(here, 'results');
mkdirSync(resultsDir, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'corebank-bench-'));
const log = createLogger('bench', 'warn');
const say = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

const cleanups: (() => Promise<void> | void)[] = [];
let cleaning = false;
async function cleanup() {
  if (cleaning) return;
  cleaning = true;
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (err) {
      console.error('bench: cleanup:', err);
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.error(`bench: ${sig}, stopping`);
    void cleanup().then(() => process.exit(130));
  });
}

const durability = opts.durable ? 'durable' : 'relaxed (fsync, synchronous_commit, full_page_writes off)';
say(
  `corebank bench: ${opts.shards} shards, ${opts.accounts} accounts, ${opts.clients} clients, ${opts.duration}s a run, ` +
    `scenarios ${opts.scenarios.join(',')}${opts.pgbench ? `, pgbench scale ${scale}` : ''}, PostgreSQL ${durability}; ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);

// pg_stat_statements counts the statements of every database, for the queries per payment (see
// queryProbes).
const [pgServer, nats] = await Promise.all([
  startPostgres({
    durability: opts.durable ? 'durable' : 'relaxed',
    ...(paymentsOn ? { settings: { shared_preload_libraries: 'pg_stat_statements' } } : {}),
  }),
  startNats(),
]);
cleanups.push(
  () => pgServer.stop(),
  () => nats.stop(),
);
const postgresPid = findServer('postgres', pgServer.port);
const natsPid = findServer('nats-server', nats.port);

const shardDbs = Array.from({ length: opts.shards }, (_, i) => localDatabase('account', i));
const paymentDbs = Array.from({ length: opts.shards }, (_, i) => localDatabase('payment', i));
// A throwaway issuer and service keys for this run (in memory; the JWKS goes to the services inline).
const auth = await createTestAuth();
const bankServices: BankService[] = paymentsOn ? ['product', 'customer', 'account', 'payment'] : ['account'];
const ports = await allocatePorts(bankServices);
// The payment service's admission limit: every capacity run's --clients calls fit (writes may use
// 80% of the slots, the rest is kept for reads), so only the overload run, with more calls in
// flight than that, is shed (harness/payments.ts paymentServiceEnv).
const paymentAdmission = flags['payment-admission']
  ? int('payment-admission', flags['payment-admission'], 0)
  : Math.ceil((opts.clients * 100) / 80);
// With --payment-latency-target the payment service's write limit adapts to keep its admitted
// writes about that long (ADMISSION_LATENCY_TARGET_MS; 0, the default: the fixed limit above).
const paymentLatencyTarget = int('payment-latency-target', flags['payment-latency-target']!, 0);
const benchEnv: Partial<Record<BankService, Record<string, string>>> = {
  payment: { ...paymentServiceEnv(paymentAdmission), ADMISSION_LATENCY_TARGET_MS: String(paymentLatencyTarget) },
};
const envs = serviceEnvs(bankServices, {
  pgUrl: pgServer.url,
  natsUrl: nats.url,
  shards: opts.shards,
  authJwks: auth.jwks,
  authServiceKeys: auth.serviceJwks,
  customerIdHashKey: randomBytes(32).toString('base64'),
  ports,
  extra: benchEnv,
});
await migrateServices(pgServer.adminUrl, opts.shards, envs, log);

// Each service as its own process (node + tsx from the sources, like `npm run up`).
const procs: Partial<Record<BankService, ServiceProcess>> = {};
for (const name of bankServices) {
  procs[name] = spawnService(root, name, envs[name], {
    ...(flags['cpu-prof'] ? { cpuProfDir: join(resultsDir, 'prof') } : {}),
    onExit: (svc, how, out) => {
      if (cleaning) return;
      console.error(`bench: the ${svc} service exited (${how}) during the run:\n${out.slice(-4000)}`);
      void cleanup().then(() => process.exit(1));
    },
  });
  const p = procs[name];
  cleanups.push(() => p.stop());
}
const grpcPort = ports.account.grpc;
const metricsPort = ports.account.metrics;
try {
  await waitReady(Object.values(procs));
} catch (err) {
  await cleanup();
  fail((err as Error).message);
}

const adminToken = await mintToken(auth.issuer, {
  channel: 'bench-harness',
  scopes: ['accounts:read', 'accounts:write', 'transfers:write', 'ledger:read', 'ledger:admin'],
  audience: ALL_AUDIENCES,
  ttlSeconds: 6 * 3600,
});
const k6Token = await mintK6Token(auth.issuer);
const client = promisify(
  new AccountServiceClient(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure()),
  adminToken,
);
cleanups.push(() => client.close());
say(
  `services up: ${bankServices.map((s) => `${s} ${procs[s]!.address} (pid ${procs[s]!.pid})`).join(', ')}; ` +
    `PostgreSQL :${pgServer.port}, NATS :${nats.port}`,
);

// ---------------------------------------------------------------------------------------------
// Demo data

const loadStart = Date.now();
const fixture = await loadAccountFixture(client, { customers: opts.accounts, shards: opts.shards, dir: work }).catch(
  (err: Error) => fail(err.message),
);
const { funding, path: fixturePath } = fixture;
const harnessAccounts = fixture.accounts;
say(
  `loaded ${fixture.customers} funded accounts (+1 merchant, +1 corporate) in ${((Date.now() - loadStart) / 1000).toFixed(1)}s: ` +
    fixture.perShard.map((n, i) => `shard ${i}: ${n}`).join(', '),
);

// ---------------------------------------------------------------------------------------------
// Measuring

/** The process trees whose CPU is measured: each service, PostgreSQL, nats-server. */
const watched: Record<string, number> = {
  ...Object.fromEntries(bankServices.map((s) => [s, procs[s]!.pid])),
  postgres: postgresPid,
  nats: natsPid,
};
const cpuSnapshot = async (): Promise<CpuSnapshot> => snapshotOf(watched);

async function shardCounts(table: string, where = ''): Promise<number> {
  let n = 0;
  for (const db of shardDbs) {
    const c = new pg.Client(`${pgServer.url}/${db}`);
    await c.connect();
    try {
      const r = await c.query(`select count(*)::text as n from account.${table} ${where}`);
      n += Number(r.rows[0].n);
    } finally {
      await c.end();
    }
  }
  return n;
}

async function checkpoint(): Promise<void> {
  const c = new pg.Client(pgServer.adminUrl);
  await c.connect();
  await c.query('checkpoint');
  await c.end();
}

/** The service's own count of OK transfers (Prometheus), for throughput over time. */
async function okCounter(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  const body = await res.text();
  const m = /^ledger_transfers_total\{result="TRANSFER_RESULT_CODE_OK"\} (\S+)$/m.exec(body);
  return m ? Number(m[1]) : 0;
}

interface Sampler {
  stop: () => Promise<number[]>;
}
/** Samples the OK-transfer counter every second; stop() gives transfers per second. */
function sampleThroughput(): Sampler {
  const points: { at: number; n: number }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        points.push({ at: Date.now(), n: await okCounter() });
      } catch {
        /* a missed sample */
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      const rates: number[] = [];
      for (let i = 1; i < points.length; i++)
        rates.push(Math.round(((points[i]!.n - points[i - 1]!.n) * 1000) / (points[i]!.at - points[i - 1]!.at)));
      return rates;
    },
  };
}

/** The highest rate held for `window` seconds in a row (mean of the best window). */
function held(rates: number[], window = 5): number {
  let best = 0;
  for (let i = 0; i + window <= rates.length; i++) {
    const m = rates.slice(i, i + window).reduce((a, b) => a + b, 0) / window;
    best = Math.max(best, m);
  }
  return Math.round(best);
}

interface RunResult {
  name: string;
  what: string;
  seconds: number;
  /** Operations per second: transactions for pgbench, OK payments for the scenarios. */
  rate: number;
  latency: Latency;
  readP99?: number;
  errors: number;
  errorRate: number;
  dropped?: number;
  cpu: CpuUse;
  thresholds?: { ok: boolean; crossed: string[] };
  reconciled?: Reconciliation;
  extra?: Record<string, unknown>;
  /** When the k6 run went (ISO). */
  window?: { from: string; to: string };
  /** Payment runs: settle time (ms) of the completed cross-shard orders created during the run. */
  settle?: Percentiles;
}

interface Reconciliation {
  ok: boolean;
  journal: number;
  funding: number;
  /** Journal transfers of payment orders (checked order by order in `payments`). */
  paymentTransfers: number;
  k6Ok: number;
  accounts: number;
  expectedAccounts: number;
  invariantOk: boolean;
  constraintViolations: number;
  payments?: PaymentReconciliation;
}

const results: RunResult[] = [];
let k6OkTotal = 0;
let k6AccountsTotal = 0;
/** Orders k6 saw accepted by the payment service, over every run so far. */
let k6PaymentsTotal = 0;
const failures: string[] = [];
/** How long the reconciliation waits for every order to settle. */
const SETTLE_TIMEOUT_MS = 60_000;

async function reconcile(after: string): Promise<Reconciliation> {
  // The payment orders first: they must have settled before the journal is counted.
  const payments = paymentsOn
    ? await reconcilePayments({
        url: pgServer.url,
        paymentDbs,
        accountDbs: shardDbs,
        k6Accepted: k6PaymentsTotal,
        settleTimeoutMs: SETTLE_TIMEOUT_MS,
        systemAccounts: async () => (await client.listSystemAccounts({}, { deadlineMs: 30_000 })).accounts,
      })
    : undefined;
  const journal = await shardCounts('transfers');
  const accounts = await shardCounts('accounts', 'where not system');
  const inv = await client.checkLedgerInvariant({}, { deadlineMs: 120_000 });
  const paymentTransfers = payments?.journalTransfers ?? 0;
  const r: Reconciliation = {
    ok: false,
    journal,
    funding,
    paymentTransfers,
    k6Ok: k6OkTotal,
    accounts,
    expectedAccounts: harnessAccounts + k6AccountsTotal,
    invariantOk: inv.ok,
    constraintViolations: Number(inv.constraintViolations),
    ...(payments ? { payments } : {}),
  };
  const transfers = journal - funding - paymentTransfers;
  r.ok = transfers === k6OkTotal && accounts === r.expectedAccounts && inv.ok && (payments?.ok ?? true);
  if (!r.ok) {
    const why = [
      transfers !== k6OkTotal &&
        `journal holds ${journal} transfers - ${funding} funding - ${paymentTransfers} of payment orders = ${transfers}, but k6 saw ${k6OkTotal} succeed`,
      accounts !== r.expectedAccounts && `${accounts} customer accounts, expected ${r.expectedAccounts}`,
      !inv.ok && `ledger invariant NOT ok: ${JSON.stringify(inv, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
      ...(payments?.why ?? []).map((w) => `payments: ${w}`),
    ].filter(Boolean);
    failures.push(`after ${after}: ${why.join('; ')}`);
    console.error(`bench: RECONCILIATION FAILED after ${after}: ${why.join('; ')}`);
  } else {
    say(
      `reconciled after ${after}: ${transfers} transfers in the journal = ${k6OkTotal} OK in k6; invariant ok` +
        (payments
          ? `; ${payments.orders} payment orders = ${payments.k6Accepted} accepted in k6 (${
              Object.entries(payments.byStatus)
                .map(([k, v]) => `${k.replace('PAYMENT_STATUS_', '')} ${v}`)
                .join(', ') || 'none'
            }; settled within ${(payments.settleWaitMs / 1000).toFixed(1)}s), their ${paymentTransfers} ` +
            `transfers as their statuses imply, in-transit nets to zero`
          : ''),
    );
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// pgbench

/** Runs a command in the repository root; cleanup stops it if the harness stops first. */
const runChild = (cmd: string, args: string[]) =>
  runChildProcess(cmd, args, { cwd: root, onSpawn: (child) => cleanups.push(() => stopChild(child)) });

async function runPgbench(): Promise<RunResult> {
  const conn = ['-h', '127.0.0.1', '-p', String(pgServer.port), '-U', 'corebank'];
  await createDatabases(pgServer.adminUrl, ['pgbench']);
  say(`pgbench: initialising scale ${scale} (${scale * 100_000} pgbench_accounts rows)`);
  const init = await runChild(pgbench, ['-i', '-q', '-I', 'dtGvp', '-s', String(scale), ...conn, 'pgbench']);
  if (init.code !== 0) throw new Error(`pgbench -i failed:\n${init.err}`);
  await checkpoint();
  const logDir = join(work, 'pgbench');
  mkdirSync(logDir);
  const args = ['-b', 'tpcb-like', '-c', String(opts.clients), '-j', '2', '-T', String(opts.duration)];
  say(`pgbench ${args.join(' ')} (per-transaction log for percentiles)`);
  const a = await cpuSnapshot();
  const run = await runChild(pgbench, [...args, '-l', `--log-prefix=${join(logDir, 'tx')}`, ...conn, 'pgbench']);
  const b = await cpuSnapshot();
  if (run.code !== 0) throw new Error(`pgbench failed:\n${run.err}\n${run.out}`);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(run.out)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(run.out)?.[1] ?? 0);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(run.out)?.[1] ?? 0);
  const lat: number[] = [];
  for (const f of readdirSync(logDir)) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (line && Number.isFinite(us)) lat.push(us / 1000);
    }
  }
  lat.sort((x, y) => x - y);
  // Leave the server as we found it: pgbench's tables out of the cache and out of autovacuum.
  const c = new pg.Client(pgServer.adminUrl);
  await c.connect();
  await c.query('drop database pgbench');
  await c.end();
  return {
    name: 'pgbench',
    what: `tpcb-like, ${opts.clients} clients, scale ${scale}`,
    seconds: (b.at - a.at) / 1000,
    rate: Math.round(tps),
    latency: { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99) },
    errors: failed,
    errorRate: processed ? failed / (processed + failed) : 0,
    cpu: cpuUse(a, b),
    extra: { transactions: processed },
  };
}

// ---------------------------------------------------------------------------------------------
// k6

async function runK6(
  name: string,
  script: string,
  what: string,
  vars: Record<string, string | number>,
  o: { sample?: boolean } = {},
): Promise<RunResult & { summary: K6Summary; rates?: number[] }> {
  const env = k6Env({
    accountAddr: `127.0.0.1:${grpcPort}`,
    ...(procs.payment ? { paymentAddr: procs.payment.address } : {}),
    token: k6Token,
    fixture: fixturePath,
    summaryPath: join(resultsDir, `${stamp}-${name}.k6.json`),
    label: name,
    vus: opts.clients,
    duration: opts.duration,
    crossShardPercent: opts.crossShardPercent,
    vars: { ...(smoke ? { P95_MS: '1000', P99_MS: '2000' } : {}), ...vars },
  });
  say(`k6 ${name}: ${what}`);
  await checkpoint();
  const sampler = o.sample ? sampleThroughput() : undefined;
  const from = new Date();
  const a = await cpuSnapshot();
  const run = await runK6Script({
    k6,
    script: join(here, script),
    env,
    cwd: root,
    onSpawn: (child) => cleanups.push(() => stopChild(child)),
  });
  const b = await cpuSnapshot();
  const to = new Date();
  const rates = await sampler?.stop();
  const { summary, crossed, seconds, value: val } = run;
  const m = summary.metrics;
  const common = {
    name,
    what,
    seconds,
    errors: val('errors', 'passes'),
    errorRate: val('errors', 'rate'),
    dropped: val('dropped_iterations', 'count'),
    cpu: cpuUse(a, b),
    thresholds: { ok: crossed.length === 0, crossed },
    window: { from: from.toISOString(), to: to.toISOString() },
  };
  let result: RunResult & { summary: K6Summary; rates?: number[] };
  if (script === 'payments.js') {
    const pay = paymentFigures(run);
    k6PaymentsTotal += pay.accepted;
    result = {
      ...common,
      rate: pay.rate,
      latency: pay.latency,
      extra: { ...pay.extra, k6Exit: run.code },
      summary,
    };
  } else {
    const okAll = val('transfers_ok', 'count');
    k6OkTotal += okAll;
    k6AccountsTotal += val('accounts_opened', 'count');
    const payments = val('transfers_ok{op:transfer}', 'count');
    const trend = 'grpc_req_duration{op:transfer}';
    result = {
      ...common,
      rate: Math.round(payments / seconds),
      latency: { p50: val(trend, 'med'), p95: val(trend, 'p(95)'), p99: val(trend, 'p(99)') },
      ...(m['grpc_req_duration{op:read}'] ? { readP99: val('grpc_req_duration{op:read}', 'p(99)') } : {}),
      extra: {
        transfersOk: okAll,
        payments,
        funding: val('transfers_ok{op:fund}', 'count'),
        refused: val('transfers_refused', 'count'),
        unknown: val('transfers_unknown', 'count'),
        retries: val('grpc_retries', 'count'),
        accountsOpened: val('accounts_opened', 'count'),
        iterations: val('iterations', 'count'),
        k6Exit: run.code,
      },
      summary,
      ...(rates ? { rates } : {}),
    };
  }
  if (crossed.length) say(`k6 ${name}: thresholds crossed: ${crossed.join('; ')}`);
  return result;
}

async function scenario(
  name: string,
  script: string,
  what: string,
  vars: Record<string, string | number>,
  o: { sample?: boolean } = {},
): Promise<RunResult & { rates?: number[] }> {
  const { summary: _summary, ...r } = await runK6(name, script, what, vars, o);
  r.reconciled = await reconcile(name);
  if (script === 'payments.js' && r.window) {
    // Settled by now (the reconciliation waited for it): acceptance to COMPLETED, from the rows.
    r.settle = await crossShardSettle(pgServer.url, paymentDbs, new Date(r.window.from), new Date(r.window.to));
  }
  results.push(r);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Queries and calls per payment (issue 14, point 3): a few orders at a low rate, same shard only,
// then cross shard only, each with pg_stat_statements reset before and read once they settled.
// Top-level statements per database (BEGIN and COMMIT count). They are not round trips: the
// services send some statements together (a relay's mark, COMMIT, BEGIN and next read; a ledger
// batch's BEGIN and load), each counted here; services/payment/test/statements.test.ts counts the
// round trips. The services' gRPC request counters give the calls between them. A SET LOCAL (the
// relay's, before its reads) is not counted: it goes with the statement after it and costs
// microseconds, and leaving it out keeps the figure comparable with runs made before it.

interface QueryCounts {
  route: string;
  orders: number;
  /** Statements per order, by the service whose databases ran them, and in all. */
  statements: Record<string, number>;
  /** gRPC calls served per order, by service/method (the order's own CreatePayment included). */
  calls: Record<string, number>;
  /** The statements run most often, per order, with the service whose database ran them. */
  top: { service: string; perOrder: number; query: string }[];
}
let queryCounts: QueryCounts[] | undefined;

async function adminQuery(sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client(pgServer.adminUrl);
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

async function grpcCalls(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of bankServices) {
    const text = await metricsOf(procs[s]!.metricsPort);
    for (const line of text.split('\n')) {
      const m = /^grpc_server_requests_total\{(.*)\} (\S+)$/.exec(line);
      if (!m) continue;
      const method = /method="([^"]+)"/.exec(m[1]!)?.[1] ?? '?';
      const k = `${s}/${method}`;
      out[k] = (out[k] ?? 0) + Number(m[2]);
    }
  }
  return out;
}

async function queryProbes(): Promise<QueryCounts[]> {
  await adminQuery('create extension if not exists pg_stat_statements');
  const out: QueryCounts[] = [];
  for (const [route, pct] of [
    ['same-shard', 0],
    ['cross-shard', 100],
  ] as const) {
    await waitSettled(pgServer.url, paymentDbs, SETTLE_TIMEOUT_MS);
    await adminQuery('select pg_stat_statements_reset()');
    const calls0 = await grpcCalls();
    const r = await runK6(`probe-${route}`, 'payments.js', `${route} orders at 20/s, counting statements`, {
      MODE: 'uniform',
      RATE: 20,
      DURATION: 5,
      VUS: 4,
      CROSS_PCT: pct,
    });
    await waitSettled(pgServer.url, paymentDbs, SETTLE_TIMEOUT_MS);
    await new Promise((res) => setTimeout(res, 1500)); // the relays mark the last events sent
    const rows = (
      await adminQuery(
        `select d.datname, s.query, s.calls::text as n from pg_stat_statements s join pg_database d on d.oid = s.dbid
          where s.query not like '%bench-harness%' and s.query not like '%pg_stat_statements%'
            and s.query not ilike 'set local %'`,
      )
    ).rows as { datname: string; query: string; n: string }[];
    const calls1 = await grpcCalls();
    const orders = Number((r.extra as { accepted: number }).accepted);
    const statements: Record<string, number> = {};
    const byQuery = new Map<string, { service: string; n: number }>();
    let total = 0;
    for (const { datname, query, n } of rows) {
      const svc = datname === 'corebank_global' ? 'product' : /^corebank_([a-z]+)_s\d+$/.exec(datname)?.[1];
      if (!svc) continue;
      statements[svc] = (statements[svc] ?? 0) + Number(n);
      total += Number(n);
      const text = query.replace(/\s+/g, ' ').slice(0, 160);
      const k = `${svc}\0${text}`;
      byQuery.set(k, { service: svc, n: (byQuery.get(k)?.n ?? 0) + Number(n) });
    }
    statements.total = total;
    const per = (x: number) => +(x / Math.max(1, orders)).toFixed(2);
    const top = [...byQuery.entries()]
      .sort((a, b) => b[1].n - a[1].n)
      .slice(0, 25)
      .map(([k, v]) => ({ service: v.service, perOrder: per(v.n), query: k.split('\0')[1]! }));
    const calls: Record<string, number> = {};
    for (const [k, v] of Object.entries(calls1)) if (v - (calls0[k] ?? 0) > 0) calls[k] = per(v - (calls0[k] ?? 0));
    const q = {
      route,
      orders,
      statements: Object.fromEntries(Object.entries(statements).map(([k, v]) => [k, per(v)])),
      calls,
      top,
    };
    say(`${route}: per order ${JSON.stringify(q.statements)} statements; calls ${JSON.stringify(q.calls)}`);
    out.push(q);
  }
  const rec = await reconcile('the query probes');
  if (!rec.ok) say('the query probes did not reconcile (see above)');
  return out;
}

// ---------------------------------------------------------------------------------------------
// The sequence

let exitCode = 0;
try {
  if (opts.pgbench) results.push(await runPgbench());
  const pgTps = results.find((r) => r.name === 'pgbench')?.rate;
  // Steady and hot offer more than the bank can take (k6 drops what it cannot start), so they
  // measure capacity with --clients requests in flight, as pgbench does with --clients clients.
  const offered = opts.rate ?? Math.max(1000, Math.ceil((3 * (pgTps ?? 1000)) / 100) * 100);
  let capacity: number | undefined;

  if (opts.scenarios.includes('steady')) {
    const r = await scenario('steady', 'steady.js', `payments, constant arrival ${offered}/s`, { RATE: offered });
    capacity = r.rate;
  }
  if (opts.scenarios.includes('batched')) {
    // The same payments, but PER_REQUEST of them per call, as a channel gateway batches them:
    // the ledger's group commit then works on bigger batches for the same number of calls.
    const per = opts.perRequest;
    await scenario(
      'steady-batched',
      'steady.js',
      `payments, ${per} per CreateTransfers call, constant arrival ${Math.ceil(offered / per)} calls/s`,
      { RATE: Math.ceil(offered / per), PER_REQUEST: per },
    );
  }
  if (opts.scenarios.includes('peak')) {
    const peakRate = Math.max(10, capacity ?? offered);
    const funnel = Math.round(opts.duration * 1.5);
    const r = await scenario(
      'peak',
      'peak.js',
      `checkout funnel (2 GetAccount + 1 payment) up to ${peakRate}/s over ${funnel}s`,
      { PEAK_RATE: peakRate, DURATION: funnel },
      { sample: true },
    );
    const top = held(r.rates ?? []);
    // The peak row reports the rate held (best 5 s), not the funnel's average.
    r.extra = { ...r.extra, heldPeak: top, averageRate: r.rate, perSecond: r.rates };
    r.rate = top;
    r.what += `; ops/s = best 5 s (funnel average ${r.extra.averageRate}/s)`;
    say(`peak: the machine held ${top} checkouts/s (best 5 s of the service's OK-transfer counter)`);
    const at70 = Math.max(1, Math.round(0.7 * top));
    const hold = Math.max(10, Math.round(opts.duration * 0.7));
    const r70 = await scenario('peak@70%', 'peak.js', `checkouts held at ${at70}/s (70% of ${top}/s) for ${hold}s`, {
      HOLD_RATE: at70,
      DURATION: hold,
    });
    r70.extra = { ...r70.extra, heldPeak: top };
  }
  if (opts.scenarios.includes('hot')) {
    await scenario('hot-account', 'hot-account.js', `90% of payments to one merchant, constant arrival ${offered}/s`, {
      RATE: offered,
      HOT_SHARE: 0.9,
    });
  }
  if (opts.scenarios.includes('onboarding')) {
    const payRate = Math.max(10, Math.round(0.5 * (capacity ?? offered)));
    const burst = Math.max(5, Math.round(opts.duration / 3));
    const pay = Math.max(5, Math.round((opts.duration * 2) / 3));
    await scenario(
      'onboarding',
      'onboarding.js',
      `${burst}s burst of 20x10 accounts/s opened + funded, then ${payRate} payments/s for ${pay}s`,
      { OPEN_RATE: 20, BATCH: 10, BURST: burst, PAY_RATE: payRate, DURATION: pay },
    );
  }
  const cross = `${opts.crossShardPercent}% cross-shard`;
  let payCapacity: number | undefined;
  if (opts.scenarios.includes('payments')) {
    // First the statement probes (a few orders at a low rate): they also warm the four services up
    // (JIT, pools, caches) before the capacity is measured.
    if (!smoke) queryCounts = await queryProbes();
    // Capacity with --clients orders in flight, like steady; then 70% of it, for the latency and
    // settle-time targets and as the overload run's yardstick.
    const r = await scenario('payments', 'payments.js', `CreatePayment, ${cross}, constant arrival ${offered}/s`, {
      MODE: 'uniform',
      RATE: offered,
    });
    payCapacity = r.rate;
    if (!smoke) {
      const at70 = Math.max(1, Math.round(0.7 * r.rate));
      const hold = Math.max(10, Math.round(opts.duration * 0.7));
      await scenario(
        'payments@70%',
        'payments.js',
        `CreatePayment held at ${at70}/s (70% of ${r.rate}/s) for ${hold}s`,
        {
          MODE: 'uniform',
          RATE: at70,
          DURATION: hold,
        },
      );
    }
  }
  if (opts.scenarios.includes('payments-hot-payee')) {
    await scenario(
      'payments-hot-payee',
      'payments.js',
      `90% of orders pay one merchant account (payers ${cross}), constant arrival ${offered}/s`,
      { MODE: 'hot-payee', RATE: offered, HOT_SHARE: 0.9 },
    );
  }
  if (opts.scenarios.includes('payments-hot-payer')) {
    await scenario(
      'payments-hot-payer',
      'payments.js',
      `90% of orders paid by one corporate account to many (payees ${cross}), constant arrival ${offered}/s`,
      { MODE: 'hot-payer', RATE: offered, HOT_SHARE: 0.9 },
    );
  }
  if (opts.scenarios.includes('payments-overload')) {
    const cap = payCapacity ?? opts.rate!;
    const maxVus = 4 * opts.clients;
    await scenario(
      'payments-overload',
      'payments.js',
      `3x the payment capacity: ${3 * cap}/s offered (${cross}), up to ${maxVus} calls in flight; payment admission ` +
        `${paymentAdmission} in flight (${Math.floor(paymentAdmission * 0.8)} for writes` +
        `${paymentLatencyTarget ? `, adapted to a ${paymentLatencyTarget} ms latency target` : ''}); a shed call retried ` +
        `twice after its hint, then counted shed`,
      { MODE: 'overload', RATE: 3 * cap, MAX_VUS: maxVus, SHED_RETRIES: 2 },
    );
  }
  if (smoke) {
    for (const r of results)
      if (r.thresholds && !r.thresholds.ok)
        failures.push(`${r.name}: thresholds crossed: ${r.thresholds.crossed.join('; ')}`);
  }
} catch (err) {
  failures.push(String((err as Error).stack ?? err));
  console.error(`bench: ${(err as Error).message}`);
} finally {
  await cleanup();
}

// ---------------------------------------------------------------------------------------------
// Report

const pg0 = results.find((r) => r.name === 'pgbench');
const steady = results.find((r) => r.name === 'steady');
const peak = results.find((r) => r.name === 'peak');
const peak70 = results.find((r) => r.name === 'peak@70%');
const hot = results.find((r) => r.name === 'hot-account');
const onboarding = results.find((r) => r.name === 'onboarding');
const pay = results.find((r) => r.name === 'payments');
const pay70 = results.find((r) => r.name === 'payments@70%');
const hotPayee = results.find((r) => r.name === 'payments-hot-payee');
const hotPayer = results.find((r) => r.name === 'payments-hot-payer');
const overload = results.find((r) => r.name === 'payments-overload');
const f1 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(1));
const f0 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(0));
const x2 = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? `${(a / b).toFixed(2)}x` : '-');
const ratio = (r: RunResult) => (pg0 && r.name !== 'pgbench' ? `${(r.rate / pg0.rate).toFixed(2)}x` : '');
const svcShort: Record<BankService, string> = {
  account: 'acct',
  payment: 'pay',
  customer: 'cust',
  product: 'prod',
  loan: 'loan',
};

const head = [
  'run',
  'ops/s',
  'vs pgbench',
  'p50 ms',
  'p95 ms',
  'p99 ms',
  'errors',
  'dropped',
  ...bankServices.map((s) => `cpu% ${svcShort[s]}`),
  'pg',
  'nats',
  'k6/pgbench',
  'other',
  'machine',
  'reconciled',
];
const rows = results.map((r) => [
  r.name,
  String(r.rate),
  ratio(r),
  f1(r.latency.p50),
  f1(r.latency.p95),
  f1(r.latency.p99),
  `${r.errors} (${(100 * r.errorRate).toFixed(2)}%)`,
  r.dropped === undefined ? '' : String(r.dropped),
  ...bankServices.map((s) => String(r.cpu[s] ?? '')),
  String(r.cpu.postgres),
  String(r.cpu.nats),
  String(r.cpu.load),
  String(r.cpu.other),
  String(r.cpu.machine),
  r.reconciled ? (r.reconciled.ok ? 'yes' : 'NO') : '',
]);
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const fmt = (cells: string[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(
  `\ncorebank bench ${stamp}: ${opts.shards} shards, ${opts.accounts} accounts, ${opts.clients} clients, ${opts.duration}s runs, PostgreSQL ${opts.durable ? 'durable' : 'relaxed'}; ${cpus().length} CPUs on ${hostname()}`,
);
console.log(
  'ops/s: pgbench transactions, OK ledger payments (transfers) per second, or payment orders accepted per second ' +
    '(payments*: latency of admitted calls); CPU in % of one core',
);
console.log(fmt(head));
for (const r of rows) console.log(fmt(r));
for (const r of results) {
  const e = (r.extra ?? {}) as Record<string, number>;
  const payment =
    r.settle !== undefined
      ? `; accepted ${e.accepted} (same ${e.same}, cross ${e.cross}), refused ${e.refused}, shed ${e.shedOrders} orders ` +
        `(${e.shedCalls} calls: OVERLOADED ${e.shedOverloaded}, RATE_LIMITED ${e.shedRateLimited}), unknown ${e.unknown}; ` +
        `cross-shard settle p50/p99 ${f1(r.settle.p50)}/${f1(r.settle.p99)} ms (max ${f1(r.settle.max)}, n ${r.settle.n})`
      : '';
  console.log(
    `  ${r.name}: ${r.what}${r.readP99 !== undefined ? `; GetAccount p99 ${f1(r.readP99)} ms` : ''}${payment}${r.thresholds && !r.thresholds.ok ? `; thresholds crossed: ${r.thresholds.crossed.join(', ')}` : ''}`,
  );
}
if (queryCounts) {
  console.log('statements and gRPC calls per payment order, by service:');
  for (const q of queryCounts)
    console.log(`  ${q.route} (${q.orders} orders): ${JSON.stringify(q.statements)}; calls ${JSON.stringify(q.calls)}`);
}

const targets = {
  steadyVsPgbench:
    steady && pg0
      ? { value: +(steady.rate / pg0.rate).toFixed(2), target: 1.0, aim: 2.0, met: steady.rate >= pg0.rate }
      : undefined,
  p99At70PctOfPeakMs: peak70
    ? { value: +peak70.latency.p99.toFixed(1), target: 50, met: peak70.latency.p99 <= 50 }
    : undefined,
  hotVsUniform:
    hot && steady
      ? { value: +(hot.rate / steady.rate).toFixed(2), target: 0.5, met: hot.rate >= 0.5 * steady.rate }
      : undefined,
  paymentsPerSecond: pay ? { value: pay.rate, target: 1000, met: pay.rate >= 1000 } : undefined,
  paymentsVsSteady:
    pay && steady
      ? { value: +(pay.rate / steady.rate).toFixed(2), target: 0.5, met: pay.rate >= 0.5 * steady.rate }
      : undefined,
  paymentP99At70PctMs: pay70
    ? { value: +pay70.latency.p99.toFixed(1), target: 50, met: pay70.latency.p99 <= 50 }
    : undefined,
  settleP99At70PctMs: pay70?.settle
    ? { value: +pay70.settle.p99.toFixed(1), target: 1000, met: pay70.settle.p99 <= 1000 }
    : undefined,
  hotPayeeVsUniform:
    hotPayee && pay
      ? { value: +(hotPayee.rate / pay.rate).toFixed(2), target: 0.5, met: hotPayee.rate >= 0.5 * pay.rate }
      : undefined,
  hotPayerVsUniform:
    hotPayer && pay
      ? { value: +(hotPayer.rate / pay.rate).toFixed(2), target: 0.5, met: hotPayer.rate >= 0.5 * pay.rate }
      : undefined,
  overloadAdmittedVsPeak:
    overload && pay
      ? { value: +(overload.rate / pay.rate).toFixed(2), target: 0.9, met: overload.rate >= 0.9 * pay.rate }
      : undefined,
  overloadP99VsAt70Pct:
    overload && pay70
      ? {
          value: +(overload.latency.p99 / pay70.latency.p99).toFixed(2),
          target: 2,
          met: overload.latency.p99 <= 2 * pay70.latency.p99,
        }
      : undefined,
};
const targetLines: [keyof typeof targets, string, string][] = [
  ['steadyVsPgbench', 'steady transfers/s vs pgbench tps', 'x (target >= 1.0x, aim 2x)'],
  ['p99At70PctOfPeakMs', 'payment p99 at 70% of the peak held', ' ms (target <= 50 ms)'],
  ['hotVsUniform', 'hot account vs uniform', 'x (target >= 0.5x)'],
  ['paymentsPerSecond', 'CreatePayment orders/s', '/s (target >= 1,000/s)'],
  ['paymentsVsSteady', 'CreatePayment vs ledger single transfers (steady)', 'x (target >= 0.5x)'],
  ['paymentP99At70PctMs', 'CreatePayment p99 at 70% of its capacity', ' ms (target <= 50 ms)'],
  ['settleP99At70PctMs', 'cross-shard settle p99 at 70% of capacity', ' ms (target <= 1,000 ms)'],
  ['hotPayeeVsUniform', 'hot payee vs uniform payments', 'x (target >= 0.5x)'],
  ['hotPayerVsUniform', 'hot payer vs uniform payments', 'x (target >= 0.5x)'],
  ['overloadAdmittedVsPeak', 'overload: admitted throughput vs the peak', 'x (target >= 0.9x)'],
  ['overloadP99VsAt70Pct', 'overload: admitted p99 vs p99 at 70%', 'x (target <= 2x)'],
];
console.log('targets (reported, not gated):');
for (const [k, label, unit] of targetLines) {
  const t = targets[k];
  if (t) console.log(`  ${label}: ${t.value}${unit}: ${t.met ? 'met' : 'MISSED'}`);
}

let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
  if (execFileSync('git', ['status', '--porcelain', '--', 'services', 'proto'], { cwd: root }).toString().trim())
    commit += '+dirty';
} catch {
  /* not a git checkout */
}
const argv = process.argv.slice(2);
const event = process.env.npm_lifecycle_event;
const command =
  event === 'bench' || event === 'bench:smoke'
    ? `npm run ${event}${argv.filter((a) => a !== '--smoke').length ? ` -- ${argv.filter((a) => a !== '--smoke').join(' ')}` : ''}`
    : `node --conditions=source --import tsx loadtest/bench.ts ${argv.join(' ')}`.trim();
const report = {
  when: new Date().toISOString(),
  command,
  commit,
  machine: { host: hostname(), cpus: cpus().length, cpuModel: cpus()[0]?.model, loadavgAtEnd: loadavg() },
  options: { ...opts, scale, paymentAdmission, benchEnv },
  results,
  queryCounts,
  targets,
  failures,
};
const jsonPath = flags.json ?? join(resultsDir, `${smoke ? 'smoke' : 'bench'}-${stamp}.json`);
writeFileSync(jsonPath, JSON.stringify(report, null, 2));
console.log(`figures: ${relative(process.cwd(), jsonPath)}`);

/** Inserts a row at the end of the table whose header's first cell is `header`. */
function insertRow(text: string, header: string, row: string[]): string {
  const lines = text.split('\n');
  const h = lines.findIndex((l) => l.startsWith('|') && l.split('|')[1]?.trim() === header);
  if (h < 0) throw new Error(`docs/benchmarks.md has no table starting "${header}"`);
  let end = h + 1;
  while (end < lines.length && lines[end]!.startsWith('|')) end++;
  lines.splice(end, 0, `| ${row.join(' | ')} |`);
  return lines.join('\n');
}

if (opts.record && failures.length === 0) {
  const doc = join(root, 'docs/benchmarks.md');
  if (!existsSync(doc)) fail('docs/benchmarks.md is missing');
  const day = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const cell = (r: RunResult | undefined, s: (r: RunResult) => string) => (r ? s(r) : '-');
  const machine = `${cpus().length} CPU, load ${loadavg()[1]!.toFixed(1)}, ${opts.durable ? 'durable' : 'relaxed'}`;
  let text = readFileSync(doc, 'utf8');
  // The ledger's row when a ledger run or pgbench ran (payment runs carry a settle time).
  if (results.some((r) => r.settle === undefined)) {
    text = insertRow(text, 'date', [
      `${day} UTC`,
      `\`${commit}\``,
      machine,
      `${opts.shards} / ${opts.accounts} / ${opts.clients}`,
      cell(pg0, (r) => `${r.rate} (p99 ${f1(r.latency.p99)})`),
      cell(steady, (r) => `${r.rate} (${f1(r.latency.p50)}/${f1(r.latency.p95)}/${f1(r.latency.p99)})`),
      steady && pg0 ? `${(steady.rate / pg0.rate).toFixed(2)}x` : '-',
      cell(peak, (r) => `${(r.extra as { heldPeak: number }).heldPeak}`),
      cell(peak70, (r) => `${f1(r.latency.p99)} (reads ${f1(r.readP99)})`),
      cell(hot, (r) => `${r.rate}${steady ? ` (${(r.rate / steady.rate).toFixed(2)}x)` : ''}`),
      cell(onboarding, (r) => `${(r.extra as { accountsOpened: number }).accountsOpened} opened, ${r.rate}/s`),
      String(results.reduce((n, r) => n + (r.name === 'pgbench' || r.settle ? 0 : r.errors), 0)),
      cell(steady, (r) => `${r.cpu.account}/${r.cpu.postgres}/${r.cpu.nats}/${r.cpu.load}/${r.cpu.other}`),
      `\`${command}\``,
    ]);
  }
  if (pay || hotPayee || hotPayer || overload) {
    const q = (route: string) => queryCounts?.find((c) => c.route === route)?.statements.total;
    const e = (r: RunResult) => r.extra as Record<string, number>;
    text = insertRow(text, 'date (payments)', [
      `${day} UTC`,
      `\`${commit}\``,
      machine,
      `${opts.shards} / ${opts.accounts} / ${opts.clients} / ${opts.crossShardPercent}%`,
      cell(pay, (r) => `${r.rate} (${f1(r.latency.p50)}/${f1(r.latency.p95)}/${f1(r.latency.p99)})`),
      x2(pay?.rate, steady?.rate),
      cell(pay70, (r) => `${r.rate}: p99 ${f1(r.latency.p99)}, settle ${f0(r.settle?.p50)}/${f0(r.settle?.p99)}`),
      cell(pay, (r) => `${f0(r.settle?.p50)}/${f0(r.settle?.p99)}`),
      cell(hotPayee, (r) => `${r.rate} (${x2(r.rate, pay?.rate)})`),
      cell(hotPayer, (r) => `${r.rate} (${x2(r.rate, pay?.rate)})`),
      cell(
        overload,
        (r) =>
          `${r.rate} (${x2(r.rate, pay?.rate)}), p99 ${f1(r.latency.p99)} (${x2(r.latency.p99, pay70?.latency.p99)}), shed ${e(r).shedOrders} (${e(r).shedCalls} calls)`,
      ),
      `${f1(q('same-shard'))} / ${f1(q('cross-shard'))}`,
      cell(
        pay,
        (r) =>
          `${r.cpu.account}/${r.cpu.payment}/${r.cpu.customer}/${r.cpu.product}/${r.cpu.postgres}/${r.cpu.nats}/${r.cpu.load}/${r.cpu.other}`,
      ),
      `\`${command}\``,
    ]);
  }
  // Keep the file as `npm run lint` (prettier --check) wants it: prettier realigns the tables.
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(doc)) ?? {};
    text = await prettier.format(text, { ...options, filepath: doc });
  } catch (err) {
    console.error(`bench: could not format docs/benchmarks.md (run npm run format): ${(err as Error).message}`);
  }
  writeFileSync(doc, text);
  console.log('appended rows to docs/benchmarks.md');
}

rmSync(work, { recursive: true, force: true });
if (failures.length) {
  console.error(`\nbench FAILED:\n- ${failures.join('\n- ')}`);
  exitCode = 1;
} else {
  console.log(
    `\nbench ok: every run reconciled (journal = k6's OK transfers${paymentsOn ? ' + the transfers of the payment orders, every accepted order settled once, in-transit nets to zero' : ''}), ledger invariant ok`,
  );
}
process.exit(exitCode);
