// Starts a real loan service for a test file, next to the services it calls: an account service
// (the ledger), a customer service and a product catalog, all in-process on free ports over fresh
// databases on the shared PostgreSQL and the shared nats-server, with clients holding every scope.
import { randomUUID } from 'node:crypto';
import { createLogger, migrateAllShards, ShardRouter, shardUrlVar } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { KycStatus, RiskTier, type Customer } from '@corebank/kit/gen/corebank/v1/customer';
import { BusinessDayServiceClient } from '@corebank/kit/gen/corebank/v1/day';
import { LoanServiceClient, type ApplyForLoanRequest } from '@corebank/kit/gen/corebank/v1/loan';
import type { DepositTerms, LoanTerms, ProductVersion } from '@corebank/kit/gen/corebank/v1/product';
import { createDatabases, freePort, promisify, testAuth, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { startBank, type TestBank } from '../../account/test/bank.js';
import { fund } from '../../account/test/helpers.js';
import { personRequest } from '../../customer/test/fixtures.js';
import { startPeers } from '../../payment/test/harness.js';
import { depositProduct, depositTerms, loanProduct, loanTerms } from '../../product/test/fixtures.js';
import { loadLoanConfig } from '../src/config.js';
import { loanMigrations } from '../src/migrations.js';
import { startLoanService, type LoanApp } from '../src/service.js';
import { infra } from '../../kit/test/context.js';

export const LOAN_SCOPES = ['loans:read', 'loans:write'];
export const ADMIN_SCOPES = [...LOAN_SCOPES, 'loans:admin'];

export type LoanClient = ReturnType<typeof promisify<LoanServiceClient>>;

export interface TestLoans {
  app: LoanApp;
  bank: TestBank;
  peers: Awaited<ReturnType<typeof startPeers>>;
  client: LoanClient;
  env: Record<string, string>;
  address: string;
  clientWith: (scopes?: string[], customerId?: string) => Promise<LoanClient>;
  /** Stops the loan service, runs `between`, and starts it again on the same databases and port. */
  restart: (between?: () => Promise<void>) => Promise<void>;
  stop: () => Promise<void>;
}

/** Fresh, migrated loan databases and the environment of a loan service on them. */
export async function loanEnv(shards: number, overrides: Record<string, string> = {}) {
  const id = randomUUID().slice(0, 8);
  const dbs = Array.from({ length: shards }, (_, i) => `loan_${id}_s${i}`);
  await createDatabases(infra('pgAdminUrl'), dbs);
  const env: Record<string, string> = {
    GRPC_PORT: '0',
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    SHARD_COUNT: String(shards),
    NATS_URL: infra('natsUrl'),
    ...(await testAuth()).env('loan'),
    SHUTDOWN_GRACE_MS: '2000',
    ...Object.fromEntries(dbs.map((db, i) => [shardUrlVar(i), `${infra('pgUrl')}/${db}`])),
    ...overrides,
  };
  const config = loadLoanConfig(env);
  const router = new ShardRouter(config.shards, config.shardUrls, 2, 'loan');
  await migrateAllShards(router, loanMigrations, createLogger('loan', 'warn'));
  await router.close();
  return env;
}

export async function startLoans(shards: number, overrides: Record<string, string> = {}): Promise<TestLoans> {
  const ports = { customer: await freePort(), product: await freePort(), loan: await freePort() };
  // The ledger runs the close of business, whose loans step calls this loan service.
  const bank = await startBank(shards, {
    CUSTOMER_SERVICE_ADDRESS: `127.0.0.1:${ports.customer}`,
    PRODUCT_SERVICE_ADDRESS: `127.0.0.1:${ports.product}`,
    LOAN_SERVICE_ADDRESS: `127.0.0.1:${ports.loan}`,
  });
  const peers = await startPeers(bank, shards, ports);
  const env = await loanEnv(shards, {
    ...peers.env,
    ACCOUNT_SERVICE_ADDRESS: bank.address,
    // The business date the ledger keeps (the account service migrated its global database).
    GLOBAL_DATABASE_URL: bank.env.GLOBAL_DATABASE_URL!,
    GRPC_PORT: String(ports.loan),
    ...overrides,
  });
  const start = () => startLoanService(loadLoanConfig(env), createLogger('loan', env.LOG_LEVEL!));
  const clients: LoanClient[] = [];
  const address = `127.0.0.1:${env.GRPC_PORT}`;
  const clientWith = async (scopes = ADMIN_SCOPES, customerId?: string) => {
    const c = promisify(
      new LoanServiceClient(address, grpc.credentials.createInsecure()),
      await testToken(scopes, customerId),
    );
    clients.push(c);
    return c;
  };
  const t: TestLoans = {
    app: await start(),
    bank,
    peers,
    client: await clientWith(),
    env,
    address,
    clientWith,
    restart: async (between = async () => undefined) => {
      await t.app.shutdown();
      await between();
      t.app = await start();
    },
    stop: async () => {
      clients.forEach((c) => c.close());
      await t.app.shutdown();
      await peers.stop();
      await bank.stop();
    },
  };
  return t;
}

/**
 * Puts the bank where the close of business has it while it closes `date`: on the next business
 * day, so that the loan day's bookings may carry `date` (the ledger dates a booking only to the day
 * being closed or to its own date). Returns once the loan service has the new date too.
 */
export async function closingDay(t: TestLoans, date: string): Promise<void> {
  const next = new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  const day = promisify(
    new BusinessDayServiceClient(t.bank.address, grpc.credentials.createInsecure()),
    await testToken(),
  );
  try {
    await day.setBusinessDate({ businessDate: next, force: true, idempotencyKey: randomUUID() });
  } finally {
    day.close();
  }
  await followed(t, next);
}

/** Waits until the loan service (its shards' copies included) is on the business date `date`. */
export async function followed(t: TestLoans, date: string): Promise<void> {
  for (let waited = 0; t.app.businessDate() !== date; waited += 20) {
    if (waited > 10_000) throw new Error(`the loan service did not follow the business date to ${date}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A published loan product with these terms (EUR, 1,000.00 to 50,000.00, 6 to 84 months by default). */
export async function publishedLoan(t: TestLoans, terms: Partial<LoanTerms> = {}): Promise<ProductVersion> {
  const catalog = t.peers.catalog.client;
  const { product } = await catalog.createProduct(loanProduct({ loan: loanTerms(terms) }));
  await catalog.publishProductVersion({ productId: product!.productId, version: product!.version });
  return (await catalog.getProduct({ productId: product!.productId, version: 0 })).product!;
}

/** A published deposit product (EUR, no limits, no overdraft). */
export async function publishedDeposit(t: TestLoans, terms: Partial<DepositTerms> = {}): Promise<ProductVersion> {
  const catalog = t.peers.catalog.client;
  const { product } = await catalog.createProduct(
    depositProduct({
      deposit: depositTerms({ overdraftLimit: 0n, perTransactionLimit: 0n, dailyDebitLimit: 0n, ...terms }),
    }),
  );
  await catalog.publishProductVersion({ productId: product!.productId, version: product!.version });
  return product!;
}

/** A customer (ACTIVE; KYC verified unless told otherwise) with the given risk tier. */
export async function customer(t: TestLoans, o: { tier?: RiskTier; kyc?: boolean } = {}): Promise<Customer> {
  const people = t.peers.people.client;
  const { customer: c } = await people.createCustomer(personRequest());
  if (o.kyc !== false) {
    await people.submitKyc({ customerId: c!.id });
    await people.decideKyc({ customerId: c!.id, decision: KycStatus.KYC_STATUS_VERIFIED, reason: '' });
  }
  if (o.tier && o.tier !== RiskTier.RISK_TIER_MEDIUM) {
    await people.setRiskTier({ customerId: c!.id, riskTier: o.tier, reason: 'test' });
  }
  return c!;
}

/** A deposit account opened through the account service on a product, funded from its shard's cash account. */
export async function depositAccount(t: TestLoans, customerId: string, productId: string, funding = 0n) {
  const { account } = await t.bank.client.openDepositAccount({
    idempotencyKey: randomUUID(),
    customerId,
    productId,
    productVersion: 0,
  });
  if (funding > 0n) await fund(t.bank, account!, funding);
  return (await t.bank.client.getAccount({ accountId: account!.id })).account as Account;
}

/**
 * A verified customer of the tier with a deposit account holding `funding` (turnover), and an
 * application request for them: 5,000.00 over 12 months on the latest version of `loanProductId`,
 * paid into and repaid from that account.
 */
export async function applyingCustomer(
  t: TestLoans,
  o: { loanProductId: string; depositProductId: string; tier?: RiskTier; funding?: bigint },
) {
  const c = await customer(t, { tier: o.tier ?? RiskTier.RISK_TIER_MEDIUM });
  const account = await depositAccount(t, c.id, o.depositProductId, o.funding ?? 300_000n);
  const request = (r: Partial<ApplyForLoanRequest> = {}): ApplyForLoanRequest => ({
    idempotencyKey: randomUUID(),
    customerId: c.id,
    productId: o.loanProductId,
    productVersion: 0,
    amount: 500_000n,
    termMonths: 12,
    disbursementAccountId: account.id,
    repaymentAccountId: account.id,
    declaredMonthlyIncome: 0n,
    ...r,
  });
  return { customer: c, account, request };
}

/** Rows of every loan table and the outbox, summed over shards: "nothing written" is these unchanged. */
export async function loanCounts(app: LoanApp): Promise<Record<string, number>> {
  const tables = ['loan_applications', 'loans', 'loan_instalments', 'loan_repayments', 'outbox'];
  const out: Record<string, number> = Object.fromEntries(tables.map((x) => [x, 0]));
  for (const s of app.router.shards) {
    for (const table of tables) {
      const [{ n }] = (await s.db(table).count({ n: '*' })) as [{ n: string | number | bigint }];
      out[table]! += Number(n);
    }
  }
  return out;
}

/**
 * The scorecard of these tests, so that every score below can be added up by hand. Accounts are
 * opened during the test, so ACCOUNT_AGE is always 0 days: 0 points.
 */
export const TEST_SCORECARD = {
  riskTier: { LOW: 30, MEDIUM: 10, HIGH: -50 },
  exposure: [{ upTo: 0, points: 10 }, { points: -20 }],
  accountAgeDays: [
    { atLeast: 30, points: 10 },
    { atLeast: 0, points: 0 },
  ],
  turnoverPercent: [
    { atLeast: 50, points: 10 },
    { atLeast: 0, points: 0 },
  ],
  incomePercent: [{ upTo: 30, points: 20 }, { upTo: 50, points: 0 }, { points: -40 }],
  incomeNotDeclared: 0,
  approveAt: 40,
  referAt: 20,
};
