// Starts a real payment service for a test file, next to a real account service (the ledger):
// fresh databases per shard on the shared PostgreSQL, the shared nats-server, both services
// in-process on free ports, and clients with every scope.
import { randomUUID } from 'node:crypto';
import { createLogger, migrateAllShards, ShardRouter, shardUrlVar } from '@corebank/kit';
import { TransferResultCode as R, type Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentServiceClient, PaymentStatus } from '@corebank/kit/gen/corebank/v1/payment';
import { createDatabases, promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { expect, inject } from 'vitest';
import { startBank, type TestBank } from '../../account/test/bank.js';
import { cashAccount, transfer } from '../../account/test/helpers.js';
import { loadPaymentConfig } from '../src/config.js';
import { paymentMigrations } from '../src/migrations.js';
import { startPaymentService, type PaymentApp } from '../src/service.js';

export const PAYMENT_SCOPES = ['payments:read', 'payments:write'];

export type PaymentClient = ReturnType<typeof promisify<PaymentServiceClient>>;

export interface TestPayments {
  app: PaymentApp;
  bank: TestBank;
  client: PaymentClient;
  env: Record<string, string>;
  address: string;
  token: (scopes?: string[], customerId?: string) => Promise<string>;
  clientWith: (token: string) => PaymentClient;
  stop: () => Promise<void>;
}

/** The environment of a payment service on fresh, migrated databases next to a bank. */
export async function paymentEnv(bank: TestBank, shards: number, overrides: Record<string, string> = {}) {
  const id = randomUUID().slice(0, 8);
  const dbs = Array.from({ length: shards }, (_, i) => `pay_${id}_s${i}`);
  await createDatabases(inject('pgAdminUrl'), dbs);
  const env: Record<string, string> = {
    GRPC_PORT: '0',
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    SHARD_COUNT: String(shards),
    NATS_URL: inject('natsUrl'),
    AUTH_TOKEN_KEY: bank.key.toString('base64'),
    ACCOUNT_SERVICE_ADDRESS: bank.address,
    SAGA_CONSUMER_NAME: `payment-saga-${id}`,
    SAGA_SWEEP_INTERVAL_MS: '250',
    SAGA_MAX_BACKOFF_MS: '2000',
    SHUTDOWN_GRACE_MS: '2000',
    ...Object.fromEntries(dbs.map((db, i) => [shardUrlVar(i), `${inject('pgUrl')}/${db}`])),
    ...overrides,
  };
  const config = loadPaymentConfig(env);
  const router = new ShardRouter(config.shards, config.shardUrls, 2, 'payment');
  await migrateAllShards(router, paymentMigrations, createLogger('payment', 'warn'));
  await router.close();
  return env;
}

export async function startPayments(
  shards: number,
  overrides: Record<string, string> = {},
  bankOverrides: Record<string, string> = {},
): Promise<TestPayments> {
  const bank = await startBank(shards, bankOverrides);
  const env = await paymentEnv(bank, shards, overrides);
  const app = await startPaymentService(loadPaymentConfig(env), createLogger('payment', env.LOG_LEVEL!));
  const address = `127.0.0.1:${app.server.port}`;
  const token = (scopes = PAYMENT_SCOPES, customerId?: string) => testToken(bank.key, scopes, customerId);
  const clients: PaymentClient[] = [];
  const clientWith = (t: string) => {
    const c = promisify(new PaymentServiceClient(address, grpc.credentials.createInsecure()), t);
    clients.push(c);
    return c;
  };
  const client = clientWith(await token());
  return {
    app,
    bank,
    client,
    env,
    address,
    token,
    clientWith,
    stop: async () => {
      clients.forEach((c) => c.close());
      await app.shutdown();
      await bank.stop();
    },
  };
}

/** An owner whose bucket lies on the given shard (so its accounts live there). */
export function ownerOnShard(bank: TestBank, shard: number): string {
  for (;;) {
    const owner = `cust-${randomUUID()}`;
    if (bank.app.router.byCustomer(owner).index === shard) return owner;
  }
}

/** Opens one constrained EUR account per owner on the given shard, funded from that shard's cash account. */
export async function accountsOn(bank: TestBank, shard: number, n: number, funding: bigint): Promise<Account[]> {
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

export const SETTLED = [PaymentStatus.PAYMENT_STATUS_COMPLETED, PaymentStatus.PAYMENT_STATUS_REJECTED];

/** Waits until the order settles and returns it. */
export async function settled(client: PaymentClient, paymentId: string, timeout = 20_000) {
  await expect
    .poll(async () => (await client.getPayment({ paymentId })).payment!.status, { timeout, interval: 50 })
    .toSatisfy((s: PaymentStatus) => SETTLED.includes(s));
  return (await client.getPayment({ paymentId })).payment!;
}
