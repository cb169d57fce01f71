// `npm run bench:cob`: the close of business at size. On this machine, in one run, it
//   1. starts PostgreSQL (durable as in production unless --relaxed) and nats-server, migrates
//      --shards shards, and starts the product, loan and account services, each its own process,
//      with --workers account service processes taking close-of-business chunks;
//   2. generates a book fast (bulk SQL on each shard, not one RPC per row, harness/book.ts):
//      --deposits interest-bearing deposit accounts (a daily-yield product) funded from their
//      shard's cash account, and --loans active loans (an annuity product) disbursed into them,
//      each with its schedule and its ledger account;
//   3. runs one close of business (RunCloseOfBusiness) and follows it with a progress bar per step;
//   4. reports loans/s, deposit accounts/s, the day's time and CPU per process, and reconciles:
//      the loans' daily accruals (their sub-ledger) = the loans step's totals = the day's movement
//      on LOAN_INTEREST_RECEIVABLE; the deposits' accruals = the deposits step's totals = the
//      day's movement on DEPOSIT_INTEREST_EXPENSE; the trial balance balances on every shard and
//      for the bank. A mismatch fails the run (exit 1);
//   5. appends a row to docs/benchmarks.md (not with --smoke or --no-record).
//
//   npm run bench:cob -- [--loans 1000000] [--deposits 1000000] [--shards 3] [--workers 2]
//                        [--chunks 16] [--relaxed] [--no-record]
//   npm run bench:cob -- --smoke      2,000 loans and 2,000 deposit accounts (CI)
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ALL_AUDIENCES, createLogger, mintToken, ProgressBoard, type ProgressLine } from '@corebank/kit';
import {
  BusinessDayServiceClient,
  CloseOfBusinessState as S,
  type CloseOfBusiness,
} from '@corebank/kit/gen/corebank/v1/day';
import { createTestAuth, promisify, startNats, startPostgres } from '@corebank/kit/testing';
import { cpuSnapshot, cpuUse, findServer } from './harness/cpu.js';
import { loadBook, reconcileDay, type BookSize } from './harness/book.js';
import {
  allocatePorts,
  migrateServices,
  serviceEnvs,
  spawnService,
  waitReady,
  type BankService,
  type ServiceProcess,
} from './harness/services.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

const { values: flags } = parseArgs({
  options: {
    loans: { type: 'string', default: '1000000' },
    deposits: { type: 'string', default: '1000000' },
    shards: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    chunks: { type: 'string', default: '16' },
    date: { type: 'string', default: '2026-06-30' },
    relaxed: { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
  },
  strict: true,
});

function fail(msg: string): never {
  console.error(`bench:cob: ${msg}`);
  process.exit(1);
}
const int = (name: string, raw: string | undefined, min: number): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
};
const smoke = flags.smoke;
const opts = {
  loans: smoke ? 2_000 : int('loans', flags.loans, 0),
  deposits: smoke ? 2_000 : int('deposits', flags.deposits, 0),
  shards: int('shards', flags.shards, 1),
  workers: smoke ? 1 : int('workers', flags.workers, 1),
  chunks: smoke ? 4 : int('chunks', flags.chunks, 1),
  date: flags.date!,
  durable: !flags.relaxed,
  record: !smoke && !flags['no-record'],
};
if (!/^\d{4}-\d{2}-\d{2}$/.test(opts.date)) fail(`--date must be YYYY-MM-DD, got "${opts.date}"`);
const say = (line: string) => console.error(`bench:cob: ${line}`);
const log = createLogger('bench-cob', 'warn');

const cleanups: (() => Promise<unknown>)[] = [];
let cleaning = false;
async function cleanup() {
  cleaning = true;
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

say(
  `${opts.loans} loans, ${opts.deposits} deposit accounts, ${opts.shards} shards, ${opts.workers} COB worker processes, ` +
    `${opts.chunks} chunks per shard, PostgreSQL ${opts.durable ? 'durable' : 'relaxed'}; ${cpus().length} CPUs, load ${loadavg()
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
const auth = await createTestAuth();
const services: BankService[] = ['product', 'loan', 'account'];
const ports = await allocatePorts(services);
const cob = { COB_CHUNKS_PER_SHARD: String(opts.chunks), COB_WORKER_CONCURRENCY: '1', COB_SCHEDULE: '' };
const envs = serviceEnvs(services, {
  pgUrl: pgServer.url,
  natsUrl: nats.url,
  shards: opts.shards,
  authJwks: auth.jwks,
  authServiceKeys: auth.serviceJwks,
  customerIdHashKey: randomBytes(32).toString('base64'),
  ports,
  extra: { account: cob },
});
await migrateServices(pgServer.adminUrl, opts.shards, envs, log);

const procs: Record<string, ServiceProcess> = {};
const onExit = (name: string, how: string, out: string) => {
  if (cleaning) return;
  console.error(`bench:cob: the ${name} service exited (${how}):\n${out.slice(-4000)}`);
  void cleanup().then(() => process.exit(1));
};
for (const name of services) {
  procs[name] = spawnService(root, name, envs[name], { onExit });
  cleanups.push(() => procs[name]!.stop());
}
// More COB workers: account service processes on ports of their own, on the same databases.
for (let w = 1; w < opts.workers; w++) {
  const extra = await allocatePorts(['account']);
  const env = {
    ...envs.account,
    GRPC_PORT: String(extra.account.grpc),
    METRICS_PORT: String(extra.account.metrics),
    RELAY_ENABLED: 'false',
  };
  const name = `account-${w}`;
  procs[name] = spawnService(root, 'account', env, { onExit: () => onExit(name, 'exit', procs[name]!.log()) });
  cleanups.push(() => procs[name]!.stop());
}
await waitReady(Object.values(procs)).catch(async (err: Error) => {
  await cleanup();
  fail(err.message);
});

const token = await mintToken(auth.issuer, {
  channel: 'bench-cob',
  scopes: ['day:read', 'day:admin', 'ledger:read', 'products:write', 'products:read', 'loans:read'],
  audience: ALL_AUDIENCES,
  ttlSeconds: 6 * 3600,
});
const day = promisify(
  new BusinessDayServiceClient(`127.0.0.1:${ports.account.grpc}`, grpc.credentials.createInsecure()),
  token,
);
cleanups.push(async () => day.close());

// ---------------------------------------------------------------------------------------------
// The book

const size: BookSize = { loans: opts.loans, deposits: opts.deposits, shards: opts.shards, date: opts.date };
const loadStarted = Date.now();
await loadBook({
  pgUrl: pgServer.url,
  productAddress: `127.0.0.1:${ports.product.grpc}`,
  token,
  size,
  say,
});
const loadSeconds = (Date.now() - loadStarted) / 1000;
say(`book loaded in ${loadSeconds.toFixed(1)} s`);
await day.setBusinessDate({ businessDate: opts.date, force: true, idempotencyKey: randomUUID() });

// ---------------------------------------------------------------------------------------------
// The close of business

const watched: Record<string, number> = {
  postgres: findServer('postgres', pgServer.port),
  nats: findServer('nats-server', nats.port),
  ...Object.fromEntries(Object.entries(procs).map(([n, p]) => [n, p.pid])),
};
const before = cpuSnapshot(watched);
const started = Date.now();
await day.runCloseOfBusiness({ through: opts.date, idempotencyKey: randomUUID() });
const board = new ProgressBoard();
let run: CloseOfBusiness;
for (;;) {
  run = (await day.getCloseOfBusiness({ businessDate: opts.date })).run!;
  const over = run.state !== S.CLOSE_OF_BUSINESS_STATE_RUNNING;
  board.draw(progressLines(run), over);
  if (over) break;
  await new Promise((r) => setTimeout(r, 500));
}
const daySeconds = (Date.now() - started) / 1000;
const cpu = cpuUse(before, cpuSnapshot(watched));
if (run.state !== S.CLOSE_OF_BUSINESS_STATE_COMPLETED) {
  await cleanup();
  fail(
    `the close of business ended ${S[run.state]}: ${run.steps
      .map((s) => s.lastError)
      .filter(Boolean)
      .join(', ')}`,
  );
}

function stepSeconds(step: string): number {
  const of = run.steps.filter((s) => s.step === step && s.startedAt && s.finishedAt);
  if (!of.length) return 0;
  const from = Math.min(...of.map((s) => Number(s.startedAt!.seconds) * 1000 + s.startedAt!.nanos / 1e6));
  const to = Math.max(...of.map((s) => Number(s.finishedAt!.seconds) * 1000 + s.finishedAt!.nanos / 1e6));
  return (to - from) / 1000;
}
function progressLines(r: CloseOfBusiness): ProgressLine[] {
  return [...new Set(r.steps.map((s) => s.step))].map((step) => {
    const of = r.steps.filter((s) => s.step === step);
    const starts = of.flatMap((s) => (s.startedAt ? [Number(s.startedAt.seconds) * 1000] : []));
    const done = of.every((s) => s.finishedAt);
    return {
      label: step,
      done: of.reduce((n, s) => n + s.chunksDone, 0),
      total: of.reduce((n, s) => n + s.chunksTotal, 0),
      items: of.reduce((n, s) => n + Number(s.items), 0),
      unit: step === 'loans' ? 'loans/s' : step === 'deposits' ? 'accounts/s' : 'lines/s',
      startedAt: starts.length ? Math.min(...starts) : Date.now(),
      ...(done && starts.length ? { finishedAt: Math.min(...starts) + stepSeconds(step) * 1000 } : {}),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Reconciliation and the report

const check = await reconcileDay({ pgUrl: pgServer.url, shards: opts.shards, date: opts.date, run, day });
const loansSeconds = stepSeconds('loans');
const depositsSeconds = stepSeconds('deposits');
const loansRate = loansSeconds > 0 ? opts.loans / loansSeconds : 0;
const depositsRate = depositsSeconds > 0 ? opts.deposits / depositsSeconds : 0;
const cpuText = Object.entries(cpu)
  .filter(([k]) => !['load', 'harness', 'other', 'machine'].includes(k))
  .map(([k, v]) => `${k} ${v}%`)
  .join(', ');
console.log(
  [
    `close of business ${opts.date}: ${daySeconds.toFixed(1)} s for the day`,
    `  loans     ${opts.loans} in ${loansSeconds.toFixed(1)} s = ${Math.round(loansRate)} loans/s`,
    `  deposits  ${opts.deposits} in ${depositsSeconds.toFixed(1)} s = ${Math.round(depositsRate)} accounts/s`,
    `  gl        ${stepSeconds('gl').toFixed(1)} s`,
    `  CPU (share of one core over the day): ${cpuText}`,
    ...check.lines.map((l) => `  ${l}`),
  ].join('\n'),
);
await cleanup();
if (!check.ok) fail('the reconciliation failed (see above)');

if (opts.record) {
  const doc = join(root, 'docs/benchmarks.md');
  if (!existsSync(doc)) fail('docs/benchmarks.md is missing');
  const header = '| date | loans | deposit accounts |';
  const text = readFileSync(doc, 'utf8');
  const at = text.indexOf(header);
  if (at < 0) fail(`docs/benchmarks.md has no table starting "${header}"`);
  const end = text.indexOf('\n\n', at);
  const row =
    `| ${new Date().toISOString().slice(0, 16).replace('T', ' ')} | ${opts.loans} | ${opts.deposits} | ${opts.shards} | ` +
    `${opts.workers} | ${Math.round(loansRate)} | ${Math.round(depositsRate)} | ${daySeconds.toFixed(1)} | ${cpuText} | ` +
    `${opts.durable ? 'durable' : 'relaxed'}; ${cpus().length} CPU on ${hostname()}, load ${loadavg()[1]!.toFixed(1)} |`;
  writeFileSync(doc, `${text.slice(0, end)}\n${row}${text.slice(end)}`);
  say('appended a row to docs/benchmarks.md');
}
process.exit(0);
