// Starts a real account service for a test file: fresh databases (one per shard) on the shared
// PostgreSQL, the shared nats-server, the service in-process on a free port, and a client.
// prepareBank and bankAt do the same for a service the test runs elsewhere (a child process).
import { randomUUID } from 'node:crypto';
import { createLogger, migrateAllShards, ShardRouter, shardUrlVar, streamName } from '@corebank/kit';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';
import { createDatabases, promisify, testAuth, testChannelCredentials, testToken } from '@corebank/kit/testing';

import { loadAccountConfig } from '../src/config.js';
import { accountMigrations } from '../src/migrations.js';
import { migrateGlobalDay } from '../src/day/dates.js';
import { startAccountService, type AccountApp } from '../src/service.js';
import { infra } from '../../kit/test/context.js';

/**
 * A ledger as tests use it, wherever it runs: a client with every scope (tokens from the test
 * issuer, see @corebank/kit/testing testAuth), its address and environment, and its shard
 * databases (for checks that read the journal directly).
 */
export interface Bank {
  client: ReturnType<typeof promisify<AccountServiceClient>>;
  env: Record<string, string>;
  address: string;
  router: ShardRouter;
  token: (scopes?: string[], customerId?: string) => Promise<string>;
}

/** A ledger running in this process. */
export interface TestBank extends Bank {
  app: AccountApp;
  stop: () => Promise<void>;
}

export async function bankEnv(shards: number, overrides: Record<string, string> = {}) {
  const id = randomUUID().slice(0, 8);
  const dbs = Array.from({ length: shards }, (_, i) => `acct_${id}_s${i}`);
  await createDatabases(infra('pgAdminUrl'), [...dbs, `acct_${id}_global`]);
  const env: Record<string, string> = {
    GRPC_PORT: '0',
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    SHARD_COUNT: String(shards),
    NATS_URL: infra('natsUrl'),
    ...(await testAuth()).env('account'),
    SHUTDOWN_GRACE_MS: '2000',
    EXPIRY_SWEEP_INTERVAL_MS: '200',
    ...Object.fromEntries(dbs.map((db, i) => [shardUrlVar(i), `${infra('pgUrl')}/${db}`])),
    GLOBAL_DATABASE_URL: `${infra('pgUrl')}/acct_${id}_global`,
    ...overrides,
  };
  return { env };
}

export async function migrate(env: Record<string, string>) {
  const config = loadAccountConfig(env);
  const router = new ShardRouter(config.shards, config.shardUrls, 2, 'account');
  await migrateAllShards(router, accountMigrations, createLogger('account', 'warn'));
  await router.close();
  await migrateGlobalDay(config.globalDatabaseUrl, 'account');
}

/** Fresh, migrated databases and the environment of an account service on them (not started). */
export async function prepareBank(shards: number, overrides: Record<string, string> = {}) {
  const prepared = await bankEnv(shards, overrides);
  await migrate(prepared.env);
  return prepared;
}

async function bankClient(address: string, env: Record<string, string>) {
  const token = (scopes?: string[], customerId?: string) => testToken(scopes, customerId);
  const client = promisify(new AccountServiceClient(address, testChannelCredentials(env)), await token());
  return { client, token };
}

/**
 * A ledger this process does not run (a child process, say) on the databases of env, served at
 * address: a client for it and pools of its own on its databases. close() releases both.
 */
export async function bankAt(
  env: Record<string, string>,
  address: string,
): Promise<Bank & { close: () => Promise<void> }> {
  const config = loadAccountConfig(env);
  const router = new ShardRouter(config.shards, config.shardUrls, 4, 'account');
  const { client, token } = await bankClient(address, env);
  return {
    client,
    env,
    address,
    router,
    token,
    close: async () => {
      client.close();
      await router.close();
    },
  };
}

/** The JetStream stream is shared by every test file: purge it so each file counts its own events. */
export async function startBank(shards: number, overrides: Record<string, string> = {}): Promise<TestBank> {
  const { env } = await prepareBank(shards, overrides);
  const config = loadAccountConfig(env);
  const app = await startAccountService(config, createLogger('account', env.LOG_LEVEL!));
  const address = `127.0.0.1:${app.server.port}`;
  const { client, token } = await bankClient(address, env);
  return {
    app,
    client,
    env,
    address,
    router: app.router,
    token,
    stop: async () => {
      client.close();
      await app.shutdown();
    },
  };
}

export { streamName };
