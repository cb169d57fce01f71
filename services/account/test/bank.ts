// Starts a real account service for a test file: fresh databases (one per shard) on the shared
// PostgreSQL, the shared nats-server, the service in-process on a free port, and a client.
import { randomBytes, randomUUID } from 'node:crypto';
import { createLogger, migrateAllShards, ShardRouter, shardUrlVar, streamName } from '@corebank/kit';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';
import { createDatabases, promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { inject } from 'vitest';
import { loadAccountConfig } from '../src/config.js';
import { accountMigrations } from '../src/migrations.js';
import { startAccountService, type AccountApp } from '../src/service.js';

export interface TestBank {
  app: AccountApp;
  client: ReturnType<typeof promisify<AccountServiceClient>>;
  env: Record<string, string>;
  key: Buffer;
  address: string;
  token: (scopes?: string[], customerId?: string) => Promise<string>;
  stop: () => Promise<void>;
}

export async function bankEnv(shards: number, overrides: Record<string, string> = {}) {
  const id = randomUUID().slice(0, 8);
  const dbs = Array.from({ length: shards }, (_, i) => `acct_${id}_s${i}`);
  await createDatabases(inject('pgAdminUrl'), dbs);
  const key = overrides.AUTH_TOKEN_KEY ? Buffer.from(overrides.AUTH_TOKEN_KEY, 'base64') : randomBytes(32);
  const env: Record<string, string> = {
    GRPC_PORT: '0',
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    SHARD_COUNT: String(shards),
    NATS_URL: inject('natsUrl'),
    AUTH_TOKEN_KEY: key.toString('base64'),
    SHUTDOWN_GRACE_MS: '2000',
    EXPIRY_SWEEP_INTERVAL_MS: '200',
    ...Object.fromEntries(dbs.map((db, i) => [shardUrlVar(i), `${inject('pgUrl')}/${db}`])),
    ...overrides,
  };
  return { env, key };
}

export async function migrate(env: Record<string, string>) {
  const config = loadAccountConfig(env);
  const router = new ShardRouter(config.shards, config.shardUrls, 2, 'account');
  await migrateAllShards(router, accountMigrations, createLogger('account', 'warn'));
  await router.close();
}

/** The JetStream stream is shared by every test file: purge it so each file counts its own events. */
export async function startBank(shards: number, overrides: Record<string, string> = {}): Promise<TestBank> {
  const { env, key } = await bankEnv(shards, overrides);
  await migrate(env);
  const config = loadAccountConfig(env);
  const app = await startAccountService(config, createLogger('account', env.LOG_LEVEL!));
  const address = `127.0.0.1:${app.server.port}`;
  const token = (scopes?: string[], customerId?: string) => testToken(key, scopes, customerId);
  const raw = new AccountServiceClient(address, grpc.credentials.createInsecure());
  const client = promisify(raw, await token());
  return {
    app,
    client,
    env,
    key,
    address,
    token,
    stop: async () => {
      client.close();
      await app.shutdown();
    },
  };
}

export { streamName };
