// Starts a real payment service for a test file, next to a real account service (the ledger):
// fresh databases per shard on the shared PostgreSQL, the shared nats-server, both services
// in-process on free ports, and clients with every scope.
import { randomUUID } from 'node:crypto';
import { createLogger, migrateAllShards, ShardRouter, shardUrlVar } from '@corebank/kit';
import { TransferResultCode as R, type Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentServiceClient, PaymentStatus } from '@corebank/kit/gen/corebank/v1/payment';
import {
  createDatabases,
  freePort,
  promisify,
  testAuth,
  testChannelCredentials,
  testToken,
} from '@corebank/kit/testing';
import { KycStatus, RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { PaymentChanged } from '@corebank/kit/gen/corebank/v1/events';
import type { DepositTerms } from '@corebank/kit/gen/corebank/v1/product';
import { expect } from 'vitest';
import { startBank, type Bank, type TestBank } from '../../account/test/bank.js';
import { cashAccount, fund, transfer } from '../../account/test/helpers.js';
import { personRequest } from '../../customer/test/fixtures.js';
import { depositProduct, depositTerms } from '../../product/test/fixtures.js';
import { startCustomers } from '../../customer/test/harness.js';
import { startCatalog } from '../../product/test/harness.js';
import { loadPaymentConfig } from '../src/config.js';
import { paymentMigrations } from '../src/migrations.js';
import { startPaymentService, type PaymentApp } from '../src/service.js';
import { infra } from '../../kit/test/context.js';

export const PAYMENT_SCOPES = ['payments:read', 'payments:write'];
export const ADMIN_SCOPES = [...PAYMENT_SCOPES, 'payments:admin'];

export type PaymentClient = ReturnType<typeof promisify<PaymentServiceClient>>;

export interface TestPayments {
  app: PaymentApp;
  bank: TestBank;
  peers: Awaited<ReturnType<typeof startPeers>>;
  client: PaymentClient;
  env: Record<string, string>;
  address: string;
  token: (scopes?: string[], customerId?: string) => Promise<string>;
  clientWith: (token: string) => PaymentClient;
  /** Stops the payment service, runs `between`, and starts it again on the same databases and port. */
  restart: (between?: () => Promise<void>) => Promise<void>;
  stop: () => Promise<void>;
}

/** The environment of a payment service on fresh, migrated databases next to a bank. */
export async function paymentEnv(bank: Bank, shards: number, overrides: Record<string, string> = {}) {
  const id = randomUUID().slice(0, 8);
  const dbs = Array.from({ length: shards }, (_, i) => `pay_${id}_s${i}`);
  await createDatabases(infra('pgAdminUrl'), dbs);
  const env: Record<string, string> = {
    GRPC_PORT: '0',
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    SHARD_COUNT: String(shards),
    NATS_URL: infra('natsUrl'),
    ...(await testAuth()).env('payment'),
    ACCOUNT_SERVICE_ADDRESS: bank.address,
    SAGA_CONSUMER_NAME: `payment-saga-${id}`,
    SAGA_SWEEP_INTERVAL_MS: '250',
    SAGA_MAX_BACKOFF_MS: '2000',
    SHUTDOWN_GRACE_MS: '2000',
    ...Object.fromEntries(dbs.map((db, i) => [shardUrlVar(i), `${infra('pgUrl')}/${db}`])),
    ...overrides,
  };
  const config = loadPaymentConfig(env);
  const router = new ShardRouter(config.shards, config.shardUrls, 2, 'payment');
  await migrateAllShards(router, paymentMigrations, createLogger('payment', 'warn'));
  await router.close();
  return env;
}

/**
 * Risk rules that never fire: for tests of the payment mechanics (risk.test.ts tests the rules,
 * the crash and concurrency tests keep the defaults on).
 */
export const NO_RISK_RULES = {
  RISK_TIER_THRESHOLDS: 'LOW=0,MEDIUM=0,HIGH=0',
  RISK_VELOCITY_MAX_PAYMENTS: '0',
  RISK_VELOCITY_MAX_AMOUNT: '0',
  RISK_NEW_PAYEE_THRESHOLD: '0',
  RISK_TRAVEL_MAX_KMH: '0',
};

/**
 * The services a payment service asks before it accepts an order, next to a bank: a product
 * catalog (limits) and a customer service (risk tiers), all trusting the test issuer. `env` holds
 * their addresses for paymentEnv.
 */
export async function startPeers(
  bank: Bank,
  shards: number,
  ports?: { customer: number; product: number },
  common: Record<string, string> = {},
) {
  const port = (p?: number): Record<string, string> => (p ? { GRPC_PORT: String(p) } : {});
  const catalog = await startCatalog({ ...common, ...port(ports?.product) });
  const people = await startCustomers(shards, { LOG_LEVEL: 'warn', ...common, ...port(ports?.customer) }, {}, bank);
  return {
    catalog,
    people,
    env: { CUSTOMER_SERVICE_ADDRESS: `127.0.0.1:${people.app.server.port}`, PRODUCT_SERVICE_ADDRESS: catalog.address },
    stop: async () => {
      await people.stop();
      await catalog.stop();
    },
  };
}

export async function startPayments(
  shards: number,
  overrides: Record<string, string> = {},
  bankOverrides: Record<string, string> = {},
  /** Environment of all four services (TLS certificates, say). */
  common: Record<string, string> = {},
): Promise<TestPayments> {
  // The bank opens deposit accounts through the customer and product services: it learns where
  // they will listen before they start.
  const ports = { customer: await freePort(), product: await freePort() };
  const bank = await startBank(shards, {
    CUSTOMER_SERVICE_ADDRESS: `127.0.0.1:${ports.customer}`,
    PRODUCT_SERVICE_ADDRESS: `127.0.0.1:${ports.product}`,
    ...common,
    ...bankOverrides,
  });
  const peers = await startPeers(bank, shards, ports, common);
  // A fixed port, so that restart() serves the clients already connected.
  const env = await paymentEnv(bank, shards, {
    ...peers.env,
    GRPC_PORT: String(await freePort()),
    ...common,
    ...overrides,
  });
  const start = () => startPaymentService(loadPaymentConfig(env), createLogger('payment', env.LOG_LEVEL!));
  const t: TestPayments = {
    app: await start(),
    bank,
    peers,
    client: undefined as unknown as PaymentClient,
    env,
    address: `127.0.0.1:${env.GRPC_PORT}`,
    token: (scopes = PAYMENT_SCOPES, customerId?: string) => testToken(scopes, customerId),
    clientWith: (token: string) => {
      const c = promisify(new PaymentServiceClient(t.address, testChannelCredentials(env)), token);
      clients.push(c);
      return c;
    },
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
  const clients: PaymentClient[] = [];
  t.client = t.clientWith(await t.token());
  return t;
}

/** A customer of the customer service (ACTIVE, KYC verified) with the given risk tier. */
export async function verifiedCustomer(t: TestPayments, tier = RiskTier.RISK_TIER_MEDIUM) {
  const people = t.peers.people.client;
  const { customer } = await people.createCustomer(personRequest());
  await people.submitKyc({ customerId: customer!.id });
  await people.decideKyc({ customerId: customer!.id, decision: KycStatus.KYC_STATUS_VERIFIED, reason: '' });
  if (tier !== RiskTier.RISK_TIER_MEDIUM)
    await people.setRiskTier({ customerId: customer!.id, riskTier: tier, reason: 'test' });
  return customer!;
}

/** A published EUR deposit product with these terms (limits, say). */
export async function publishedDeposit(t: TestPayments, terms: Partial<DepositTerms>) {
  const catalog = t.peers.catalog.client;
  const { product } = await catalog.createProduct(depositProduct({ deposit: depositTerms(terms) }));
  await catalog.publishProductVersion({ productId: product!.productId, version: product!.version });
  return product!;
}

/** A deposit account opened through the account service on a product, funded from its shard's cash account. */
export async function depositAccount(t: TestPayments, customerId: string, productId: string, funding: bigint) {
  const { account } = await t.bank.client.openDepositAccount({
    idempotencyKey: randomUUID(),
    customerId,
    productId,
    productVersion: 0,
  });
  if (funding > 0n) await fund(t.bank, account!, funding);
  return account!;
}

/** An owner whose bucket lies on the given shard (so its accounts live there). */
export function ownerOnShard(bank: Bank, shard: number): string {
  for (;;) {
    const owner = `cust-${randomUUID()}`;
    if (bank.router.byCustomer(owner).index === shard) return owner;
  }
}

/** Opens one constrained EUR account per owner on the given shard, funded from that shard's cash account. */
export async function accountsOn(bank: Bank, shard: number, n: number, funding: bigint): Promise<Account[]> {
  const res = await bank.client.createAccounts({
    accounts: Array.from({ length: n }, () => ({
      idempotencyKey: randomUUID(),
      ownerId: ownerOnShard(bank, shard),
      currency: 'EUR',
      code: 10,
      flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
      overdraftLimit: 0n,
      reference: '',
    })),
  });
  const accounts = res.results.map((r) => r.account!);
  if (funding > 0n) {
    const cash = await cashAccount(bank, shard);
    const t = await bank.client.createTransfers({
      transfers: accounts.map((a) => transfer({ debitAccountId: cash.id, creditAccountId: a.id, amount: funding })),
    });
    expect(t.results.every((r) => r.code === R.TRANSFER_RESULT_CODE_OK)).toBe(true);
  }
  return accounts;
}

export const SETTLED = [
  PaymentStatus.PAYMENT_STATUS_COMPLETED,
  PaymentStatus.PAYMENT_STATUS_REJECTED,
  PaymentStatus.PAYMENT_STATUS_CANCELLED,
];

/** The names of the events written for an order, in order (from the outbox of every payment shard). */
export async function eventNamesOf(t: TestPayments, paymentId: string): Promise<string[]> {
  const out: { seq: bigint; name: string }[] = [];
  for (const shard of t.app.router.shards) {
    const rows = (await shard.db('outbox').select('seq', 'subject', 'payload')) as {
      seq: bigint;
      subject: string;
      payload: Buffer;
    }[];
    for (const r of rows) {
      if (PaymentChanged.decode(r.payload).payment?.id === paymentId) {
        out.push({ seq: r.seq, name: r.subject.split('.').at(-1)! });
      }
    }
  }
  return out.sort((a, b) => (a.seq < b.seq ? -1 : 1)).map((e) => e.name);
}

/** Waits until the order settles and returns it. */
export async function settled(client: PaymentClient, paymentId: string, timeout = 20_000) {
  await expect
    .poll(async () => (await client.getPayment({ paymentId })).payment!.status, { timeout, interval: 50 })
    .toSatisfy((s: PaymentStatus) => SETTLED.includes(s));
  return (await client.getPayment({ paymentId })).payment!;
}

/** Waits until a service's events are relayed (its outboxes empty) and have had time to arrive. */
export async function relayed(router: ShardRouter): Promise<void> {
  await expect
    .poll(
      async () => {
        let unsent = 0n;
        for (const s of router.shards) {
          unsent += (
            (await s.db.raw(`select count(*) as n from outbox where sent_at is null`)).rows[0] as {
              n: bigint;
            }
          ).n;
        }
        return unsent;
      },
      { timeout: 10_000, interval: 50 },
    )
    .toBe(0n);
  await new Promise((r) => setTimeout(r, 300));
}
