// `npm run up`: the whole bank on this machine. Starts PostgreSQL and nats-server (real ones,
// data in a temporary folder), migrates every shard, starts the product, customer and account
// services, seeds demo products, customers and funded accounts through their RPCs, and prints
// how to call it. Ctrl-C stops everything (the data goes with it).
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createLogger, hashedUuid, migrateAllShards, mintToken, ShardRouter, type Migration } from '@corebank/kit';
import { AccountServiceClient, SystemAccountKind, TransferKind } from '@corebank/kit/gen/corebank/v1/account';
import { CustomerServiceClient } from '@corebank/kit/gen/corebank/v1/customer';
import { ProductServiceClient } from '@corebank/kit/gen/corebank/v1/product';
import { ALL_SCOPES, createDatabases, freePort, promisify, startNats, startPostgres } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { loadAccountConfig } from '../../services/account/src/config.js';
import { accountMigrations } from '../../services/account/src/migrations.js';
import { startAccountService } from '../../services/account/src/service.js';
import { loadCustomerConfig } from '../../services/customer/src/config.js';
import { customerMigrations } from '../../services/customer/src/migrations.js';
import { startCustomerService } from '../../services/customer/src/service.js';
import { globalRouter, loadProductConfig } from '../../services/product/src/config.js';
import { productMigrations } from '../../services/product/src/migrations.js';
import { startProductService } from '../../services/product/src/service.js';
import { loadPaymentConfig } from '../../services/payment/src/config.js';
import { paymentMigrations } from '../../services/payment/src/migrations.js';
import { startPaymentService } from '../../services/payment/src/service.js';
import { DEMO_SCOPES, seedDemo } from './demo.js';
import { localDatabases, localServiceEnv, type LocalService } from './env.js';

const shards = Number(process.env.SHARDS ?? '3');
const basePort = Number(process.env.GRPC_PORT ?? '50051');
const ports: Record<LocalService, number> = {
  account: basePort,
  customer: basePort + 1,
  product: basePort + 2,
  payment: basePort + 3,
};
const addresses = Object.fromEntries(Object.entries(ports).map(([s, p]) => [s, `127.0.0.1:${p}`])) as Record<
  LocalService,
  string
>;
const log = createLogger('launcher', 'info');
const quiet = (service: string) => createLogger(service, process.env.LOG_LEVEL ?? 'warn');

const [pgServer, nats] = await Promise.all([startPostgres(), startNats()]);
const stops: (() => Promise<void>)[] = [() => Promise.all([pgServer.stop(), nats.stop()]).then(() => undefined)];
const key = randomBytes(32).toString('base64');
const envOf = async (service: LocalService) =>
  localServiceEnv(service, {
    pgUrl: pgServer.url,
    natsUrl: nats.url,
    shards,
    authTokenKey: key,
    grpcPort: ports[service],
    metricsPort: await freePort(),
    addresses,
    customerIdHashKey: randomBytes(32).toString('base64'),
  });
async function migrate(router: ShardRouter, migrations: Migration[]) {
  await migrateAllShards(router, migrations, log);
  await router.close();
}

for (const s of ['account', 'customer', 'product', 'payment'] as const)
  await createDatabases(pgServer.adminUrl, [...new Set(localDatabases(s, shards))]);
const productConfig = loadProductConfig(await envOf('product'));
await migrate(globalRouter(productConfig, 2, 'product'), productMigrations);
const customerConfig = loadCustomerConfig(await envOf('customer'));
await migrate(new ShardRouter(customerConfig.shards, customerConfig.shardUrls, 2, 'customer'), customerMigrations);
const accountConfig = loadAccountConfig(await envOf('account'));
await migrate(new ShardRouter(accountConfig.shards, accountConfig.shardUrls, 2, 'account'), accountMigrations);
const paymentConfig = loadPaymentConfig(await envOf('payment'));
await migrate(new ShardRouter(paymentConfig.shards, paymentConfig.shardUrls, 2, 'payment'), paymentMigrations);

const product = await startProductService(productConfig, quiet('product'));
const customer = await startCustomerService(customerConfig, quiet('customer'));
const account = await startAccountService(accountConfig, quiet('account'));
const payment = await startPaymentService(paymentConfig, quiet('payment'));
stops.unshift(payment.shutdown, product.shutdown, customer.shutdown, account.shutdown);

// Demo data, through the same RPCs a channel uses.
const token = await mintToken(Buffer.from(key, 'base64'), {
  channel: 'local-demo',
  scopes: [...ALL_SCOPES, ...DEMO_SCOPES, 'payments:read', 'payments:write', 'payments:admin'],
  ttlSeconds: 7 * 24 * 3600,
});
const insecure = grpc.credentials.createInsecure();
const accounts = promisify(new AccountServiceClient(addresses.account, insecure), token);
const customers = promisify(new CustomerServiceClient(addresses.customer, insecure), token);
const products = promisify(new ProductServiceClient(addresses.product, insecure), token);
const demo = await seedDemo({ customers, products });
const openings = [
  ['alice', 'current'],
  ['alice', 'savings'],
  ['bob', 'current'],
  ['carol', 'current'],
] as const;
const system = (await accounts.listSystemAccounts({})).accounts;
const opened: Record<string, string> = {};
for (const [who, productKey] of openings) {
  const { account: a } = await accounts.openDepositAccount({
    idempotencyKey: `demo-${productKey}`,
    customerId: demo.customers[who].id,
    productId: demo.products[productKey].productId,
    productVersion: 0,
  });
  const cash = system.find(
    (s) =>
      s.kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH &&
      s.account!.shard === a!.shard &&
      s.account!.currency === a!.currency,
  )!.account!;
  await accounts.createTransfers({
    transfers: [
      {
        id: hashedUuid('demo-opening-deposit', a!.id),
        debitAccountId: cash.id,
        creditAccountId: a!.id,
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
  opened[`${who}.${productKey}`] = a!.id;
}
[accounts, customers, products].forEach((c) => c.close());

// Where the token and the ids go (LOCAL_DIR, default .local): npm run call reads them there.
const localDir = process.env.LOCAL_DIR ?? '.local';
mkdirSync(localDir, { recursive: true });
writeFileSync(`${localDir}/token`, token);
writeFileSync(
  `${localDir}/bank.json`,
  JSON.stringify(
    {
      addresses,
      shards,
      customers: Object.fromEntries(Object.entries(demo.customers).map(([k, c]) => [k, c.id])),
      accounts: opened,
    },
    null,
    2,
  ),
);
const alice = opened['alice.current']!;
const bob = opened['bob.current']!;
const carol = opened['carol.current']!;
console.log(`
corebank is up (${shards} shards): account ${addresses.account}, customer ${addresses.customer}, product ${addresses.product}, payment ${addresses.payment}
PostgreSQL on 127.0.0.1:${pgServer.port}, NATS on ${nats.url}
demo customers alice, bob (persons) and carol (business), KYC-verified; each has a current account
(product current-eur, EUR 1,000.00 deposited); ids are in .local/bank.json, a token with every scope in .local/token

call it (grpcurl: npm run setup builds it into .local/bin; the services offer reflection):
  export PATH=$PWD/.local/bin:$PATH TOKEN=$(cat .local/token)
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"account_id":"${alice}"}' ${addresses.account} corebank.v1.AccountService/GetAccount
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"transfers":[{"id":"'$(cat /proc/sys/kernel/random/uuid)'","kind":"TRANSFER_KIND_SINGLE_PHASE","debit_account_id":"${alice}","credit_account_id":"${bob}","amount":"2500","code":1}]}' ${addresses.account} corebank.v1.AccountService/CreateTransfers
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"idempotency_key":"pay-1","payer_account_id":"${alice}","payee_account_id":"${carol}","amount":"1999","currency":"EUR","reference":"invoice 1"}' ${addresses.payment} corebank.v1.PaymentService/CreatePayment
or without grpcurl:
  npm run call -- AccountService GetAccount '{"accountId":"${alice}"}'
Ctrl-C stops the bank.`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  for (const s of stops) await s().catch((err: unknown) => log.error({ err }, 'stop failed'));
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
if (process.env.UP_EXIT_AFTER_DEMO === '1') await stop();
