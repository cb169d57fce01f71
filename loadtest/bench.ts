// `npm run bench`: the benchmark harness. On this machine, in one run, it
//   1. starts PostgreSQL and nats-server (the test infrastructure: real servers on free ports),
//      migrates N shards and starts the account service as a child process (so its CPU is its own);
//   2. loads demo data: --accounts customers, spread over the shards by owner, each funded from
//      its shard's cash account, plus one merchant account (the hot account);
//   3. runs pgbench's built-in TPC-B-like script on the same PostgreSQL server with the same
//      client count for the same duration (the yardstick);
//   4. runs the k6 scenarios (steady, peak + the latency at 70% of the peak held, hot account,
//      onboarding burst) against the service over gRPC;
//   5. after every run checks the ledger invariant (CheckLedgerInvariant) and reconciles the
//      journal: transfers in every shard's account.transfers table, minus the funding the harness
//      did itself, must equal the transfers k6 saw succeed. Any mismatch fails the run (exit 1);
//   6. prints one table (throughput, ratio to pgbench, latency percentiles, errors, CPU of every
//      process), writes the figures as JSON under loadtest/results/ and appends a dated row to
//      docs/benchmarks.md.
//
//   npm run bench -- [--shards 3] [--accounts 10000] [--clients 64] [--duration 30] [--scale N]
//                    [--scenarios steady,batched,peak,hot,onboarding] [--per-request N] [--rate N] [--no-pgbench]
//                    [--no-record] [--cpu-prof] [--relaxed] [--json PATH]
//   npm run bench:smoke          one scenario, a few seconds at a tiny rate, same reconciliation
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { ALL_AUDIENCES, audienceOf, createLogger, migrateAllShards, mintToken, ShardRouter } from '@corebank/kit';
import {
  AccountServiceClient,
  CreateAccountResultCode,
  SystemAccountKind,
  TransferKind,
  TransferResultCode,
  type Account,
  type Transfer,
} from '@corebank/kit/gen/corebank/v1/account';
import { createDatabases, createTestAuth, freePort, promisify, startNats, startPostgres } from '@corebank/kit/testing';
import { localDatabase, localServiceEnv } from '../deploy/local/env.js';
import { loadAccountConfig } from '../services/account/src/config.js';
import { accountMigrations } from '../services/account/src/migrations.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// ---------------------------------------------------------------------------------------------
// Options

const { values: flags } = parseArgs({
  options: {
    shards: { type: 'string', default: '3' },
    accounts: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '64' },
    duration: { type: 'string', default: '30' },
    scale: { type: 'string' },
    scenarios: { type: 'string', default: 'steady,batched,peak,hot,onboarding' },
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
  scenarios: smoke ? ['steady'] : flags.scenarios!.split(',').map((s) => s.trim()),
  rate: flags.rate !== undefined ? int('rate', flags.rate, 1) : smoke ? 10 : undefined,
  pgbench: !smoke && !flags['no-pgbench'],
  record: !smoke && !flags['no-record'],
  perRequest: int('per-request', flags['per-request'], 1),
  /** PostgreSQL durable as in production (fsync, synchronous_commit, full_page_writes on), unless --relaxed. */
  durable: !flags.relaxed,
};
for (const s of opts.scenarios) {
  if (!['steady', 'batched', 'peak', 'hot', 'onboarding'].includes(s)) fail(`--scenarios: unknown scenario "${s}"`);
}
// pgbench's scale: at least one branch per client (fewer serialises pgbench on the branch rows,
// which would flatter us), and at least one pgbench_accounts row (100,000 a scale) per account.
const scale = flags.scale ? int('scale', flags.scale, 1) : Math.max(opts.clients, Math.ceil(opts.accounts / 100_000));

function fail(msg: string): never {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Tools

function findK6(): string {
  for (const p of [process.env.K6, join(root, '.local/bin/k6')]) if (p && existsSync(p)) return p;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'k6'))) return join(dir, 'k6');
  fail('k6 not found: run loadtest/install-k6.sh (builds k6 into .local/bin), or set K6 to its path');
}

function findPgbench(): string {
  if (process.env.PG_BIN && existsSync(join(process.env.PG_BIN, 'pgbench'))) return join(process.env.PG_BIN, 'pgbench');
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, 'bin/pgbench'))) return join(base, v, 'bin/pgbench');
  fail('pgbench not found in /usr/lib/postgresql/<version>/bin: run `npm run setup`, set PG_BIN, or pass --no-pgbench');
}

const k6 = findK6();
const pgbench = opts.pgbench ? findPgbench() : '';

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc: ticks (utime + stime) of a process tree, where the live members'
// cutime/cstime hold what their exited children used (postgres backends come and go).

const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function stat(pid: number): { ppid: number; self: number; children: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function processes(): Map<number, { ppid: number; cmd: string[] }> {
  const out = new Map<number, { ppid: number; cmd: string[] }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    const st = stat(pid);
    if (!st) continue;
    let cmd: string[] = [];
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    out.set(pid, { ppid: st.ppid, cmd });
  }
  return out;
}

/** Total CPU ticks of pid and its descendants, including their exited (reaped) children. */
function treeTicks(pid: number): number {
  const all = processes();
  const tree = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, { ppid }] of all) {
      if (!tree.has(p) && tree.has(ppid)) {
        tree.add(p);
        grew = true;
      }
    }
  }
  let t = 0;
  for (const p of tree) {
    const st = stat(p);
    if (st) t += st.self + st.children;
  }
  return t;
}

/** The server process listening on `port` (found by its command line). */
function findServer(binary: string, port: number): number {
  for (const [pid, { cmd }] of processes()) {
    const i = cmd.indexOf('-p');
    if (cmd[0]?.endsWith(binary) && i >= 0 && cmd[i + 1] === String(port)) return pid;
  }
  throw new Error(`could not find the ${binary} process on port ${port}`);
}

function machineBusy(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

interface CpuSnapshot {
  at: number;
  service: number;
  postgres: number;
  nats: number;
  harness: number;
  children: number; // reaped children of the harness: k6 or pgbench, whichever ran
  machine: { busy: number; total: number };
}

type CpuUse = Record<'service' | 'postgres' | 'nats' | 'load' | 'harness' | 'other' | 'machine', number>;

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

const [pgServer, nats] = await Promise.all([
  startPostgres({ durability: opts.durable ? 'durable' : 'relaxed' }),
  startNats(),
]);
cleanups.push(
  () => pgServer.stop(),
  () => nats.stop(),
);
const postgresPid = findServer('postgres', pgServer.port);
const natsPid = findServer('nats-server', nats.port);

const shardDbs = Array.from({ length: opts.shards }, (_, i) => localDatabase('account', i));
await createDatabases(pgServer.adminUrl, shardDbs);
// A throwaway issuer and service keys for this run (in memory; the JWKS goes to the service inline).
const auth = await createTestAuth();
const grpcPort = await freePort();
const metricsPort = await freePort();
const env = {
  ...localServiceEnv('account', {
    pgUrl: pgServer.url,
    natsUrl: nats.url,
    shards: opts.shards,
    authJwks: auth.jwks,
    authServiceKeys: { account: auth.serviceJwks.account },
    grpcPort,
    metricsPort,
  }),
  LOG_LEVEL: 'warn',
};
{
  const config = loadAccountConfig(env);
  const router = new ShardRouter(config.shards, config.shardUrls, 2, 'account');
  await migrateAllShards(router, accountMigrations, log);
  await router.close();
}

// The account service, as its own process (node + tsx from the sources, like `npm run up`).
const serviceArgs = ['--conditions=source', '--import', 'tsx'];
if (flags['cpu-prof']) serviceArgs.push('--cpu-prof', `--cpu-prof-dir=${join(resultsDir, 'prof')}`);
serviceArgs.push(join(root, 'services/account/src/command.ts'), 'serve');
const service = spawn(process.execPath, serviceArgs, {
  cwd: root,
  env: { ...process.env, ...env },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let serviceLog = '';
const keepLog = (d: Buffer) => (serviceLog = (serviceLog + d.toString()).slice(-20_000));
service.stdout!.on('data', keepLog);
service.stderr!.on('data', keepLog);
let serviceExited = false;
service.once('exit', (code, signal) => {
  serviceExited = true;
  if (!cleaning) {
    console.error(`bench: the account service exited (${code ?? signal}) during the run:\n${serviceLog.slice(-4000)}`);
    void cleanup().then(() => process.exit(1));
  }
});
cleanups.push(() => stopChild(service, 20_000));

function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
  });
}

const adminToken = await mintToken(auth.issuer, {
  channel: 'bench-harness',
  scopes: ['accounts:read', 'accounts:write', 'transfers:write', 'ledger:read', 'ledger:admin'],
  audience: ALL_AUDIENCES,
  ttlSeconds: 6 * 3600,
});
// What k6 gets: a channel token for the ledger, without ledger:admin.
const k6Token = await mintToken(auth.issuer, {
  channel: 'bench-k6',
  scopes: ['accounts:read', 'accounts:write', 'transfers:write'],
  audience: audienceOf('account'),
  ttlSeconds: 6 * 3600,
});
const client = promisify(
  new AccountServiceClient(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure()),
  adminToken,
);
cleanups.push(() => client.close());

{
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      await client.listSystemAccounts({}, { deadlineMs: 2000 });
      break;
    } catch (err) {
      if (serviceExited) fail('the account service did not start');
      if (Date.now() > until)
        fail(`the account service did not become ready: ${(err as Error).message}\n${serviceLog}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
say(
  `account service up on 127.0.0.1:${grpcPort} (pid ${service.pid}, metrics :${metricsPort}); PostgreSQL :${pgServer.port}, NATS :${nats.port}`,
);

// ---------------------------------------------------------------------------------------------
// Demo data

const newTransfer = (p: Pick<Transfer, 'debitAccountId' | 'creditAccountId' | 'amount' | 'reference'>): Transfer => ({
  id: randomUUID(),
  kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
  linked: false,
  pendingId: '',
  timeoutSeconds: 0,
  code: 1,
  currency: '',
  ...p,
});

async function openAccounts(owners: string[]): Promise<Account[]> {
  const out: Account[] = [];
  for (let i = 0; i < owners.length; i += 1000) {
    const res = await client.createAccounts(
      {
        accounts: owners.slice(i, i + 1000).map((ownerId) => ({
          idempotencyKey: 'current-eur',
          ownerId,
          currency: 'EUR',
          code: 100,
          flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
          overdraftLimit: 0n,
          reference: 'bench customer',
        })),
      },
      { deadlineMs: 120_000 },
    );
    for (const r of res.results) {
      if (r.code !== CreateAccountResultCode.CREATE_ACCOUNT_RESULT_CODE_OK) fail(`opening an account: ${r.code}`);
      out.push(r.account!);
    }
  }
  return out;
}

const loadStart = Date.now();
const customers = await openAccounts(Array.from({ length: opts.accounts }, (_, i) => `bench-customer-${i}`));
const [merchant] = await openAccounts(['bench-merchant']);
const cash = new Map<number, string>();
for (const s of (await client.listSystemAccounts({})).accounts) {
  if (s.kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH && s.account!.currency === 'EUR')
    cash.set(s.account!.shard, s.account!.id);
}
// Every customer gets EUR 10,000.00 from the cash account of its shard: the harness's own transfers.
let funding = 0;
{
  const all = customers.map((a) =>
    newTransfer({
      debitAccountId: cash.get(a.shard)!,
      creditAccountId: a.id,
      amount: 1_000_000n,
      reference: 'bench funding',
    }),
  );
  for (let i = 0; i < all.length; i += 4000) {
    const res = await client.createTransfers({ transfers: all.slice(i, i + 4000) }, { deadlineMs: 120_000 });
    for (const r of res.results) {
      if (r.code !== TransferResultCode.TRANSFER_RESULT_CODE_OK) fail(`funding: transfer ${r.id} got ${r.code}`);
      funding++;
    }
  }
}
const harnessAccounts = customers.length + 1;

// The fixture k6 reads: account ids sorted by shard, with each shard's range and cash account.
const byShard = Array.from({ length: opts.shards }, (_, i) => customers.filter((a) => a.shard === i).map((a) => a.id));
const fixture = {
  accounts: byShard.flat(),
  shards: byShard.map((ids, index) => {
    const start = byShard.slice(0, index).reduce((n, s) => n + s.length, 0);
    return { index, start, end: start + ids.length, cash: cash.get(index)! };
  }),
  hot: { shard: merchant!.shard, account: merchant!.id },
};
for (const s of fixture.shards)
  if (s.end - s.start < 2) fail(`shard ${s.index} has fewer than 2 accounts: use more --accounts`);
const fixturePath = join(work, 'fixture.json');
writeFileSync(fixturePath, JSON.stringify(fixture));
say(
  `loaded ${customers.length} funded accounts (+1 merchant) in ${((Date.now() - loadStart) / 1000).toFixed(1)}s: ` +
    byShard.map((s, i) => `shard ${i}: ${s.length}`).join(', '),
);

// ---------------------------------------------------------------------------------------------
// Measuring

async function cpuSnapshot(): Promise<CpuSnapshot> {
  const self = stat(process.pid)!;
  return {
    at: Date.now(),
    service: treeTicks(service.pid!),
    postgres: treeTicks(postgresPid),
    nats: treeTicks(natsPid),
    harness: self.self,
    children: self.children,
    machine: machineBusy(),
  };
}

/** CPU use between two snapshots, in % of one core (the machine has cpus().length cores). */
function cpuUse(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const secs = (b.at - a.at) / 1000;
  const pct = (ticks: number) => Math.round((100 * ticks) / TICKS / secs);
  const service = b.service - a.service;
  const postgres = b.postgres - a.postgres;
  const nats = b.nats - a.nats;
  const load = b.children - a.children;
  const harness = b.harness - a.harness;
  // /proc/stat counts in USER_HZ too; scale the machine's busy share to ticks of one core.
  const busyShare = (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total);
  const machine = Math.round(busyShare * 100 * cpus().length);
  const ours = pct(service) + pct(postgres) + pct(nats) + pct(load) + pct(harness);
  return {
    service: pct(service),
    postgres: pct(postgres),
    nats: pct(nats),
    load: pct(load),
    harness: pct(harness),
    other: Math.max(0, machine - ours),
    machine,
  };
}

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

interface Latency {
  p50: number;
  p95: number;
  p99: number;
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
}

interface Reconciliation {
  ok: boolean;
  journal: number;
  funding: number;
  k6Ok: number;
  accounts: number;
  expectedAccounts: number;
  invariantOk: boolean;
  constraintViolations: number;
}

const results: RunResult[] = [];
let k6OkTotal = 0;
let k6AccountsTotal = 0;
const failures: string[] = [];

async function reconcile(after: string): Promise<Reconciliation> {
  const journal = await shardCounts('transfers');
  const accounts = await shardCounts('accounts', 'where not system');
  const inv = await client.checkLedgerInvariant({}, { deadlineMs: 120_000 });
  const r: Reconciliation = {
    ok: false,
    journal,
    funding,
    k6Ok: k6OkTotal,
    accounts,
    expectedAccounts: harnessAccounts + k6AccountsTotal,
    invariantOk: inv.ok,
    constraintViolations: Number(inv.constraintViolations),
  };
  r.ok = journal - funding === k6OkTotal && accounts === r.expectedAccounts && inv.ok;
  if (!r.ok) {
    const why = [
      journal - funding !== k6OkTotal &&
        `journal holds ${journal} transfers - ${funding} funding = ${journal - funding}, but k6 saw ${k6OkTotal} succeed`,
      accounts !== r.expectedAccounts && `${accounts} customer accounts, expected ${r.expectedAccounts}`,
      !inv.ok && `ledger invariant NOT ok: ${JSON.stringify(inv, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
    ].filter(Boolean);
    failures.push(`after ${after}: ${why.join('; ')}`);
    console.error(`bench: RECONCILIATION FAILED after ${after}: ${why.join('; ')}`);
  } else {
    say(
      `reconciled after ${after}: ${journal - funding} transfers in the journal = ${k6OkTotal} OK in k6; invariant ok`,
    );
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// pgbench

async function runChild(
  cmd: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; cwd?: string; echo?: boolean } = {},
) {
  return new Promise<{ code: number; out: string; err: string }>((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: o.env ?? process.env,
      cwd: o.cwd ?? root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => stopChild(child));
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (o.echo) process.stdout.write(d);
    });
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-200_000)));
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out, err }));
  });
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

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

interface K6Summary {
  metrics: Record<string, { values: Record<string, number>; thresholds?: Record<string, { ok: boolean }> }>;
  state: { testRunDurationMs: number };
}

async function runK6(
  name: string,
  script: string,
  what: string,
  vars: Record<string, string | number>,
  o: { sample?: boolean } = {},
): Promise<RunResult & { summary: K6Summary; rates?: number[] }> {
  const summaryPath = join(resultsDir, `${stamp}-${name}.k6.json`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ADDR: `127.0.0.1:${grpcPort}`,
    TOKEN: k6Token,
    FIXTURE: fixturePath,
    SUMMARY_PATH: summaryPath,
    SCENARIO_LABEL: name,
    VUS: String(opts.clients),
    DURATION: String(opts.duration),
    K6_NO_USAGE_REPORT: 'true',
    ...(smoke ? { P95_MS: '1000', P99_MS: '2000' } : {}),
    ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, String(v)])),
  };
  say(`k6 ${name}: ${what}`);
  await checkpoint();
  const sampler = o.sample ? sampleThroughput() : undefined;
  const a = await cpuSnapshot();
  const run = await runChild(k6, ['run', '--quiet', '--no-color', '--no-usage-report', join(here, script)], {
    env,
    echo: true,
  });
  const b = await cpuSnapshot();
  const rates = await sampler?.stop();
  if (run.code !== 0 && run.code !== 99) {
    throw new Error(`k6 ${name} failed (exit ${run.code}):\n${run.err.slice(-6000)}`);
  }
  // At saturation k6 says it has no VU left for an arrival: that is the point, not a problem.
  const warnings = run.err
    .split('\n')
    .filter(
      (l) => /level=(warning|error)/.test(l) && !l.includes('Insufficient VUs') && !l.includes('have been crossed'),
    );
  if (warnings.length) {
    console.error(`k6 ${name}: ${warnings.length} warnings, the first ones:\n${warnings.slice(0, 5).join('\n')}`);
  }
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as K6Summary;
  const m = summary.metrics;
  const val = (metric: string, k: string) => m[metric]?.values[k] ?? 0;
  const crossed: string[] = [];
  for (const [metric, def] of Object.entries(m)) {
    for (const [expr, t] of Object.entries(def.thresholds ?? {})) if (!t.ok) crossed.push(`${metric} ${expr}`);
  }
  const okAll = val('transfers_ok', 'count');
  k6OkTotal += okAll;
  k6AccountsTotal += val('accounts_opened', 'count');
  const seconds = summary.state.testRunDurationMs / 1000;
  const payments = val('transfers_ok{op:transfer}', 'count');
  const trend = 'grpc_req_duration{op:transfer}';
  const result = {
    name,
    what,
    seconds,
    rate: Math.round(payments / seconds),
    latency: { p50: val(trend, 'med'), p95: val(trend, 'p(95)'), p99: val(trend, 'p(99)') },
    ...(m['grpc_req_duration{op:read}'] ? { readP99: val('grpc_req_duration{op:read}', 'p(99)') } : {}),
    errors: val('errors', 'passes'),
    errorRate: val('errors', 'rate'),
    dropped: val('dropped_iterations', 'count'),
    cpu: cpuUse(a, b),
    thresholds: { ok: crossed.length === 0, crossed },
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
  results.push(r);
  return r;
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
const f1 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(1));
const ratio = (r: RunResult) => (pg0 && r.name !== 'pgbench' ? `${(r.rate / pg0.rate).toFixed(2)}x` : '');

const head = [
  'run',
  'ops/s',
  'vs pgbench',
  'p50 ms',
  'p95 ms',
  'p99 ms',
  'errors',
  'dropped',
  'cpu% svc',
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
  String(r.cpu.service),
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
console.log('ops/s: pgbench transactions, or OK payments (transfers) per second; CPU in % of one core');
console.log(fmt(head));
for (const r of rows) console.log(fmt(r));
for (const r of results)
  console.log(
    `  ${r.name}: ${r.what}${r.readP99 !== undefined ? `; GetAccount p99 ${f1(r.readP99)} ms` : ''}${r.thresholds && !r.thresholds.ok ? `; thresholds crossed: ${r.thresholds.crossed.join(', ')}` : ''}`,
  );

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
};
console.log('targets (reported, not gated):');
if (targets.steadyVsPgbench)
  console.log(
    `  steady transfers/s vs pgbench tps: ${targets.steadyVsPgbench.value}x (target >= 1.0x, aim 2x): ${targets.steadyVsPgbench.met ? 'met' : 'MISSED'}`,
  );
if (targets.p99At70PctOfPeakMs)
  console.log(
    `  payment p99 at 70% of the peak held: ${targets.p99At70PctOfPeakMs.value} ms (target <= 50 ms): ${targets.p99At70PctOfPeakMs.met ? 'met' : 'MISSED'}`,
  );
if (targets.hotVsUniform)
  console.log(
    `  hot account vs uniform: ${targets.hotVsUniform.value}x (target >= 0.5x): ${targets.hotVsUniform.met ? 'met' : 'MISSED'}`,
  );

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
  options: { ...opts, scale },
  results,
  targets,
  failures,
};
const jsonPath = flags.json ?? join(resultsDir, `${smoke ? 'smoke' : 'bench'}-${stamp}.json`);
writeFileSync(jsonPath, JSON.stringify(report, null, 2));
console.log(`figures: ${relative(process.cwd(), jsonPath)}`);

if (opts.record && failures.length === 0) {
  const doc = join(root, 'docs/benchmarks.md');
  if (!existsSync(doc)) fail('docs/benchmarks.md is missing');
  const day = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const cell = (r: RunResult | undefined, s: (r: RunResult) => string) => (r ? s(r) : '-');
  const row = [
    `${day} UTC`,
    `\`${commit}\``,
    `${cpus().length} CPU, load ${loadavg()[1]!.toFixed(1)}, ${opts.durable ? 'durable' : 'relaxed'}`,
    `${opts.shards} / ${opts.accounts} / ${opts.clients}`,
    cell(pg0, (r) => `${r.rate} (p99 ${f1(r.latency.p99)})`),
    cell(steady, (r) => `${r.rate} (${f1(r.latency.p50)}/${f1(r.latency.p95)}/${f1(r.latency.p99)})`),
    steady && pg0 ? `${(steady.rate / pg0.rate).toFixed(2)}x` : '-',
    cell(peak, (r) => `${(r.extra as { heldPeak: number }).heldPeak}`),
    cell(peak70, (r) => `${f1(r.latency.p99)} (reads ${f1(r.readP99)})`),
    cell(hot, (r) => `${r.rate}${steady ? ` (${(r.rate / steady.rate).toFixed(2)}x)` : ''}`),
    cell(onboarding, (r) => `${(r.extra as { accountsOpened: number }).accountsOpened} opened, ${r.rate}/s`),
    String(results.reduce((n, r) => n + (r.name === 'pgbench' ? 0 : r.errors), 0)),
    cell(steady, (r) => `${r.cpu.service}/${r.cpu.postgres}/${r.cpu.nats}/${r.cpu.load}/${r.cpu.other}`),
    `\`${command}\``,
  ];
  appendFileSync(doc, `| ${row.join(' | ')} |\n`);
  // Keep the file as `npm run lint` (prettier --check) wants it: prettier realigns the table.
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(doc)) ?? {};
    writeFileSync(doc, await prettier.format(readFileSync(doc, 'utf8'), { ...options, filepath: doc }));
  } catch (err) {
    console.error(`bench: could not format docs/benchmarks.md (run npm run format): ${(err as Error).message}`);
  }
  console.log('appended a row to docs/benchmarks.md');
}

rmSync(work, { recursive: true, force: true });
if (failures.length) {
  console.error(`\nbench FAILED:\n- ${failures.join('\n- ')}`);
  exitCode = 1;
} else {
  console.log(`\nbench ok: every run reconciled (journal = k6's OK transfers), ledger invariant ok`);
}
process.exit(exitCode);
