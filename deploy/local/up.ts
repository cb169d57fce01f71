// `npm run up`: the whole bank on this machine. Starts PostgreSQL and nats-server (real ones, on
// free ports), migrates every shard, starts the account service, opens demo accounts with money
// on them, and prints how to call it. Ctrl-C stops everything.
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdirSync } from 'node:fs';
import { createLogger, migrateAllShards, mintToken, ShardRouter } from '@corebank/kit';
import { AccountServiceClient, SystemAccountKind, TransferKind } from '@corebank/kit/gen/corebank/v1/account';
import { createDatabases, freePort, promisify, startNats, startPostgres, ALL_SCOPES } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { loadAccountConfig } from '../../services/account/src/config.js';
import { accountMigrations } from '../../services/account/src/migrations.js';
import { startAccountService } from '../../services/account/src/service.js';
import { localDatabase, localServiceEnv } from './env.js';

const shards = Number(process.env.SHARDS ?? '3');
const grpcPort = Number(process.env.GRPC_PORT ?? '50051');
const log = createLogger('launcher', 'info');

const [pgServer, nats] = await Promise.all([startPostgres(), startNats()]);
const key = randomBytes(32);
await createDatabases(
  pgServer.adminUrl,
  Array.from({ length: shards }, (_, i) => localDatabase('account', i)),
);
const env = localServiceEnv('account', {
  pgUrl: pgServer.url,
  natsUrl: nats.url,
  shards,
  authTokenKey: key.toString('base64'),
  grpcPort,
  metricsPort: await freePort(),
});
const config = loadAccountConfig(env);
const router = new ShardRouter(config.shards, config.shardUrls, 2, 'account');
await migrateAllShards(router, accountMigrations, log);
await router.close();
const app = await startAccountService(config, createLogger('account', 'warn'));

// Demo data: three customers with a EUR current account each, funded from their shard's cash account.
const token = await mintToken(key, { channel: 'local-demo', scopes: ALL_SCOPES, ttlSeconds: 7 * 24 * 3600 });
const client = promisify(
  new AccountServiceClient(`127.0.0.1:${app.server.port}`, grpc.credentials.createInsecure()),
  token,
);
const opened = await client.createAccounts({
  accounts: ['alice', 'bob', 'carol'].map((owner) => ({
    idempotencyKey: 'current-eur',
    ownerId: owner,
    currency: 'EUR',
    code: 100,
    flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
    overdraftLimit: 0n,
    reference: `demo current account of ${owner}`,
  })),
});
const system = (await client.listSystemAccounts({})).accounts;
for (const r of opened.results) {
  const a = r.account!;
  const cash = system.find(
    (s) =>
      s.kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH &&
      s.account!.shard === a.shard &&
      s.account!.currency === 'EUR',
  )!;
  await client.createTransfers({
    transfers: [
      {
        id: `00000000-0000-4000-8000-${a.id.slice(-12)}`,
        debitAccountId: cash.account!.id,
        creditAccountId: a.id,
        amount: 100_000n,
        kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
        linked: false,
        pendingId: '',
        timeoutSeconds: 0,
        code: 1,
        reference: 'demo opening deposit',
        currency: '',
      },
    ],
  });
}
mkdirSync('.local', { recursive: true });
writeFileSync('.local/token', token);
const [alice, bob] = opened.results.map((r) => r.account!);
console.log(`
corebank is up: account service on 127.0.0.1:${app.server.port} (${shards} shards), PostgreSQL on ${pgServer.port}, NATS on ${nats.port}
demo accounts (EUR 1,000.00 each): alice ${alice!.id}, bob ${bob!.id}, carol ${opened.results[2]!.account!.id}
a bearer token with every scope is in .local/token

call it (grpcurl, installed by npm run setup; the server offers reflection):
  grpcurl -plaintext -H "authorization: Bearer $(cat .local/token)" -d '{"account_id":"${alice!.id}"}' 127.0.0.1:${app.server.port} corebank.v1.AccountService/GetAccount
  grpcurl -plaintext -H "authorization: Bearer $(cat .local/token)" -d '{"transfers":[{"id":"'$(cat /proc/sys/kernel/random/uuid)'","debit_account_id":"${alice!.id}","credit_account_id":"${bob!.id}","amount":"2500","kind":"TRANSFER_KIND_SINGLE_PHASE","code":1}]}' 127.0.0.1:${app.server.port} corebank.v1.AccountService/CreateTransfers
or without grpcurl: npm run call -- GetAccount '{"accountId":"${alice!.id}"}'
Ctrl-C stops the bank.`);
client.close();

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await app.shutdown();
  await Promise.all([pgServer.stop(), nats.stop()]);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
if (process.env.UP_EXIT_AFTER_DEMO === '1') await stop();
