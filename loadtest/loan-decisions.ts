// `npm run bench:loans`: decision latency of ApplyForLoan, end to end over gRPC. Not a test.
//
// It targets the bank `npm run up` runs (addresses in .local/bank.json, the token in .local/token),
// or, with --start or when none answers, starts one itself (deploy/local/up.ts as a child process,
// its files in a temporary LOCAL_DIR) and stops it afterwards. Then:
//   1. setup, not timed: --customers persons, KYC-verified, risk tier LOW, each with a current
//      account (current-eur) to disburse into, funded with 5,000.00 from its shard's cash account
//      (turnover), and a declared monthly income of 2,000.00: with the default scorecard their
//      first four applications are approved (LOW 30, exposure 15 or 0, turnover 20, instalment
//      43,240 = 21.6 % of income 20), so with the defaults (4 applications a customer) every
//      decision includes the disbursement through the ledger;
//   2. --applications ApplyForLoan calls (personal-loan-eur, 5,000.00 over 12 months; customers
//      taken in turn, so later applications of a customer carry its existing exposure) from
//      --clients concurrent clients, each sending its next one as soon as the last is answered;
//      every call is decided and, when approved, disbursed through the ledger within the call;
//   3. prints the rate (decisions a second), latency p50/p95/p99/max in ms, the decisions by
//      state and the errors, and one JSON line with the same figures.
//
//   npm run bench:loans -- [--applications 1000] [--clients 32] [--customers 250] [--start]
// A smoke: npm run bench:loans -- --applications 50 --clients 8 --customers 13
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { AccountServiceClient, SystemAccountKind, TransferKind } from '@corebank/kit/gen/corebank/v1/account';
import { CustomerKind, CustomerServiceClient, KycStatus, RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { ApplicationState, LoanServiceClient } from '@corebank/kit/gen/corebank/v1/loan';
import { promisify } from '@corebank/kit/testing';
import { percentiles } from './harness/reconcile.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    applications: { type: 'string', default: '1000' },
    clients: { type: 'string', default: '32' },
    customers: { type: 'string', default: '250' },
    start: { type: 'boolean', default: false },
  },
});
const APPLICATIONS = Number(opts.applications);
const CLIENTS = Number(opts.clients);
const CUSTOMERS = Number(opts.customers);
const LOAN_PRODUCT = 'personal-loan-eur';
const DEPOSIT_PRODUCT = 'current-eur';

interface Bank {
  addresses: Record<string, string>;
  token: string;
  stop: () => Promise<void>;
}

const readBank = (dir: string) => ({
  addresses: (JSON.parse(readFileSync(join(dir, 'bank.json'), 'utf8')) as { addresses: Record<string, string> })
    .addresses,
  token: readFileSync(join(dir, 'token'), 'utf8').trim(),
});

/** Whether a loan service answers at this address (any gRPC answer counts). */
async function answers(address: string, token: string): Promise<boolean> {
  const c = promisify(new LoanServiceClient(address, grpc.credentials.createInsecure()), token);
  try {
    await c.getLoan({ loanId: '' }, { deadlineMs: 2_000 });
    return true;
  } catch (err) {
    return (
      (err as grpc.ServiceError).code !== grpc.status.UNAVAILABLE &&
      (err as grpc.ServiceError).code !== grpc.status.DEADLINE_EXCEEDED
    );
  } finally {
    c.close();
  }
}

/** The running local bank, or one started here (deploy/local/up.ts) and stopped by stop(). */
async function bank(): Promise<Bank> {
  const local = join(root, '.local');
  if (!opts.start && existsSync(join(local, 'bank.json')) && existsSync(join(local, 'token'))) {
    const b = readBank(local);
    if (b.addresses.loan && (await answers(b.addresses.loan, b.token))) {
      console.log(`targeting the running bank (loan service ${b.addresses.loan})`);
      return { ...b, stop: async () => undefined };
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'corebank-loan-bench-'));
  console.log(`starting a bank (deploy/local/up.ts, LOCAL_DIR=${dir}) ...`);
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join(root, 'deploy/local/up.ts')],
    { cwd: root, env: { ...process.env, LOCAL_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const seen = (d: Buffer) => {
      out = (out + d.toString()).slice(-8000);
      if (out.includes('corebank is up')) resolve();
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code) => reject(new Error(`the bank exited (${code}) before it was up:\n${out}`)));
  });
  return {
    ...readBank(dir),
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT'); // up.ts stops the bank on Ctrl-C
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `work(i)` for i in [0, n) on `concurrency` workers, each taking the next index when free. */
async function pool(n: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      for (let i = next++; i < n; i = next++) await work(i);
    }),
  );
}

const b = await bank();
const insecure = grpc.credentials.createInsecure();
const customers = promisify(new CustomerServiceClient(b.addresses.customer!, insecure), b.token);
const accounts = promisify(new AccountServiceClient(b.addresses.account!, insecure), b.token);
const loans = Array.from({ length: CLIENTS }, () =>
  promisify(new LoanServiceClient(b.addresses.loan!, insecure), b.token),
);
try {
  // 1. Borrowers.
  const setupStarted = performance.now();
  const borrowers: { customerId: string; accountId: string }[] = new Array(CUSTOMERS);
  const system = (await accounts.listSystemAccounts({})).accounts;
  await pool(CUSTOMERS, CLIENTS, async (i) => {
    const { customer } = await customers.createCustomer({
      externalReference: `loan-bench-${randomUUID()}`,
      kind: CustomerKind.CUSTOMER_KIND_PERSON,
      person: {
        givenName: 'Bench',
        familyName: `Borrower ${i}`,
        dateOfBirth: '1985-12-10',
        nationalIdCountry: 'FR',
        nationalId: Array.from({ length: 12 }, () => randomInt(10)).join(''),
        nationalIdLast4: '',
      },
      contact: {
        email: 'bench@example.org',
        phone: '+4930123456',
        address: { lines: ['Unter den Linden 1'], city: 'Berlin', postalCode: '10117', region: '', country: 'DE' },
      },
    });
    const customerId = customer!.id;
    await customers.submitKyc({ customerId });
    await customers.decideKyc({ customerId, decision: KycStatus.KYC_STATUS_VERIFIED, reason: 'loan bench' });
    await customers.setRiskTier({ customerId, riskTier: RiskTier.RISK_TIER_LOW, reason: 'loan bench' });
    const { account } = await accounts.openDepositAccount({
      idempotencyKey: `loan-bench-${customerId}`,
      customerId,
      productId: DEPOSIT_PRODUCT,
      productVersion: 0,
    });
    const cash = system.find(
      (x) =>
        x.kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH &&
        x.account!.shard === account!.shard &&
        x.account!.currency === account!.currency,
    )!.account!;
    await accounts.createTransfers({
      transfers: [
        {
          id: randomUUID(),
          debitAccountId: cash.id,
          creditAccountId: account!.id,
          amount: 500_000n,
          kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
          linked: false,
          pendingId: '',
          timeoutSeconds: 0,
          code: 1,
          reference: 'loan bench funding',
          currency: '',
        },
      ],
    });
    borrowers[i] = { customerId, accountId: account!.id };
  });
  console.log(`${CUSTOMERS} borrowers ready in ${Math.round(performance.now() - setupStarted)} ms`);

  // 2. Applications, timed one by one.
  const latencies: number[] = [];
  const states: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const started = performance.now();
  await pool(APPLICATIONS, CLIENTS, async (i) => {
    const who = borrowers[i % CUSTOMERS]!;
    const client = loans[i % CLIENTS]!;
    const t0 = performance.now();
    try {
      const res = await client.applyForLoan(
        {
          idempotencyKey: `loan-bench-${randomUUID()}`,
          customerId: who.customerId,
          productId: LOAN_PRODUCT,
          productVersion: 0,
          amount: 500_000n,
          termMonths: 12,
          disbursementAccountId: who.accountId,
          repaymentAccountId: who.accountId,
          declaredMonthlyIncome: 200_000n,
        },
        { deadlineMs: 30_000 },
      );
      latencies.push(performance.now() - t0);
      const state = ApplicationState[res.application!.state] ?? String(res.application!.state);
      states[state] = (states[state] ?? 0) + 1;
    } catch (err) {
      const e = err as grpc.ServiceError;
      const code = grpc.status[e.code] ?? String(err);
      errors[code] = (errors[code] ?? 0) + 1;
    }
  });
  const seconds = (performance.now() - started) / 1000;

  // 3. The figures.
  const p = percentiles(latencies);
  const round = (x: number) => Math.round(x * 10) / 10;
  console.log(
    `\nApplyForLoan: ${APPLICATIONS} applications from ${CLIENTS} concurrent clients in ${seconds.toFixed(2)} s` +
      ` = ${(latencies.length / seconds).toFixed(1)} decisions/s` +
      `\nlatency ms: p50 ${round(p.p50)}  p95 ${round(p.p95)}  p99 ${round(p.p99)}  max ${round(p.max)}` +
      `\ndecisions: ${JSON.stringify(states)}  errors: ${JSON.stringify(errors)}`,
  );
  console.log(
    JSON.stringify({
      bench: 'loan-decisions',
      applications: APPLICATIONS,
      clients: CLIENTS,
      customers: CUSTOMERS,
      seconds: round(seconds),
      ratePerSecond: round(latencies.length / seconds),
      latencyMs: { p50: round(p.p50), p95: round(p.p95), p99: round(p.p99), max: round(p.max) },
      states,
      errors,
    }),
  );
  if (Object.keys(errors).length) process.exitCode = 1;
} finally {
  [customers, accounts, ...loans].forEach((c) => c.close());
  await b.stop();
}
