// `npm run up`: the whole bank on this machine. Starts PostgreSQL and nats-server (real ones,
// data in temporary folders), migrates every shard, starts the product, customer, account,
// payment and loan services, seeds demo products, customers and funded accounts through their RPCs, and
// prints how to call it. Ctrl-C stops everything (the data goes with it).
//
// Every way out stops what was started (startup.ts): Ctrl-C or SIGTERM at any moment, a step
// that fails or does not finish in UP_STEP_TIMEOUT_MS. PostgreSQL and nats-server run in process
// groups of their own, so a terminal's Ctrl-C reaches only this launcher, which drains the
// services first and stops the two servers last. Ports in use are found before anything starts.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ALL_AUDIENCES,
  AUDIT_READ_SCOPE,
  createDayPool,
  createLogger,
  hashedUuid,
  isIsoDate,
  migrateAllShards,
  mintToken,
  serviceKid,
  ShardRouter,
  writeBusinessDate,
  type Migration,
} from '@corebank/kit';
import { AccountServiceClient, SystemAccountKind, TransferKind } from '@corebank/kit/gen/corebank/v1/account';
import { CustomerServiceClient } from '@corebank/kit/gen/corebank/v1/customer';
import { ProductServiceClient } from '@corebank/kit/gen/corebank/v1/product';
import { ALL_SCOPES, createDatabases, freePort, promisify, startNats, startPostgres } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { loadAccountConfig } from '../../services/account/src/config.js';
import { accountMigrations } from '../../services/account/src/migrations.js';
import { migrateGlobalDay } from '../../services/account/src/day/dates.js';
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
import { loadLoanConfig } from '../../services/loan/src/config.js';
import { loanMigrations } from '../../services/loan/src/migrations.js';
import { startLoanService } from '../../services/loan/src/service.js';
import { keygen, loadIssuerKey } from '../tools/keys.js';
import { DEMO_SCOPES, seedDemo } from './demo.js';
import { localDatabases, localServiceEnv, type LocalService } from './env.js';
import { firstInUse } from './ports.js';
import { Interrupted, Startup } from './startup.js';

const say = (line: string) => console.log(`up: ${line}`);
/** One line on stderr, then out: for what is wrong before anything has started. */
const refuse = (line: string): never => {
  process.stderr.write(`npm run up: ${line}\n`);
  process.exit(1);
};
const intFromEnv = (name: string, fallback: number, min: number, max: number): number => {
  const raw = process.env[name] ?? String(fallback);
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max)
    refuse(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
};

const shards = intFromEnv('SHARDS', 3, 1, 64);
// The bank's first business date (default: the database's UTC date when the bank is created).
const firstBusinessDate = process.env.BUSINESS_DATE ?? '';
if (firstBusinessDate && !isIsoDate(firstBusinessDate))
  refuse(`BUSINESS_DATE must be a date YYYY-MM-DD, got "${firstBusinessDate}"`);
const basePort = intFromEnv('GRPC_PORT', 50051, 1, 65_531);
const services = ['product', 'customer', 'account', 'payment', 'loan'] as const;
const ports: Record<LocalService, number> = {
  account: basePort,
  customer: basePort + 1,
  product: basePort + 2,
  payment: basePort + 3,
  loan: basePort + 4,
};
const addresses = Object.fromEntries(Object.entries(ports).map(([s, p]) => [s, `127.0.0.1:${p}`])) as Record<
  LocalService,
  string
>;
const quiet = (service: string) => createLogger(service, process.env.LOG_LEVEL ?? 'warn');

const startup = new Startup({ say, stepTimeoutMs: intFromEnv('UP_STEP_TIMEOUT_MS', 120_000, 100, 3_600_000) });
let ready = false;
let exiting = false;
async function exit(code: number): Promise<never> {
  exiting = true;
  await startup.stop();
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (exiting) return say(`${signal}: already stopping (services first, then PostgreSQL and nats-server)`);
    say(`${signal}: stopping the bank`);
    // While starting, the running step gives up and the start's catch below stops everything.
    if (ready) void exit(0);
    else startup.interrupt(signal);
  });
}
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (err: unknown) => {
    process.stderr.write(`npm run up: ${event}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (!exiting) void exit(1);
  });
}

// Before anything starts: another `npm run up` (or anything else) on one of the five ports.
const taken = await firstInUse(ports);
if (taken) {
  const [service, port] = taken;
  refuse(
    `port ${port} (the ${service} service's gRPC port) is in use, by another npm run up perhaps; ` +
      `set GRPC_PORT to move the five ports (now ${basePort}-${basePort + 4}), e.g. GRPC_PORT=${basePort + 100} npm run up`,
  );
}

/**
 * The bank's keys, in a temporary folder that goes when the launcher stops: the issuer's (it signs
 * the demo token; `npm run token` finds it through .local/bank.json) and one per service that calls
 * others, each handed only to its service; the services verify against the JWKS file there.
 */
async function makeKeys() {
  const dir = mkdtempSync(join(tmpdir(), 'corebank-keys-'));
  startup.onStop('the key folder', async () => rmSync(dir, { recursive: true, force: true }));
  const jwks = join(dir, 'jwks.json');
  const issuer = await keygen({ kid: 'local-issuer', outDir: dir, jwksPath: jwks });
  const serviceKeys: Partial<Record<LocalService, string>> = {};
  for (const s of ['account', 'customer', 'payment', 'loan'] as const) {
    serviceKeys[s] = (await keygen({ kid: serviceKid(s), outDir: dir, jwksPath: jwks })).privatePath;
  }
  return { dir, jwks, issuerKey: issuer.privatePath, serviceKeys };
}

async function startBank() {
  const keys = await startup.step('making the issuer and service keys', () => makeKeys());
  const { pgServer, nats } = await startup.step('starting PostgreSQL and nats-server', async (signal) => {
    const [pgStarted, natsStarted] = await Promise.allSettled([
      startPostgres({ detached: true, signal }),
      startNats({ detached: true, signal }),
    ]);
    // Registered as soon as each is up, even when the other failed: stopped last, after the services.
    if (pgStarted.status === 'fulfilled') startup.onStop('PostgreSQL', pgStarted.value.stop);
    if (natsStarted.status === 'fulfilled') startup.onStop('nats-server', natsStarted.value.stop);
    if (pgStarted.status === 'rejected') throw pgStarted.reason;
    if (natsStarted.status === 'rejected') throw natsStarted.reason;
    return { pgServer: pgStarted.value, nats: natsStarted.value };
  });
  say(`PostgreSQL on 127.0.0.1:${pgServer.port} (${pgServer.dir}), NATS on ${nats.url} (${nats.dir})`);

  const envOf = async (service: LocalService) =>
    localServiceEnv(service, {
      pgUrl: pgServer.url,
      natsUrl: nats.url,
      shards,
      authJwks: keys.jwks,
      authServiceKeys: keys.serviceKeys,
      grpcPort: ports[service],
      metricsPort: await freePort(),
      addresses,
      customerIdHashKey: randomBytes(32).toString('base64'),
    });
  const configs = {
    product: loadProductConfig(await envOf('product')),
    customer: loadCustomerConfig(await envOf('customer')),
    account: loadAccountConfig(await envOf('account')),
    payment: loadPaymentConfig(await envOf('payment')),
    loan: loadLoanConfig(await envOf('loan')),
  };

  await startup.step('creating the databases', async () => {
    await createDatabases(pgServer.adminUrl, [...new Set(services.flatMap((s) => localDatabases(s, shards)))]);
  });
  const log = quiet('launcher');
  const migrate = (service: LocalService, router: ShardRouter, migrations: Migration[]) =>
    startup.step(
      `migrating the ${service} service (${router.shards.length === 1 ? '1 database' : `${router.shards.length} databases`})`,
      async () => {
        try {
          await migrateAllShards(router, migrations, log);
        } finally {
          await router.close();
        }
      },
    );
  const sharded = (c: { shards: ShardRouter['map']; shardUrls: string[] }, service: string) =>
    new ShardRouter(c.shards, c.shardUrls, 2, service);
  await migrate('product', globalRouter(configs.product, 2, 'product'), productMigrations);
  await migrate('customer', sharded(configs.customer, 'customer'), customerMigrations);
  await migrate('account', sharded(configs.account, 'account'), accountMigrations);
  await startup.step("migrating the bank's day (business date, close of business)", async () => {
    await migrateGlobalDay(configs.account.globalDatabaseUrl, 'account');
    if (firstBusinessDate) {
      const db = createDayPool(configs.account.globalDatabaseUrl, 'launcher', 1);
      await writeBusinessDate(db, firstBusinessDate).finally(() => db.destroy());
    }
  });
  await migrate('payment', sharded(configs.payment, 'payment'), paymentMigrations);
  await migrate('loan', sharded(configs.loan, 'loan'), loanMigrations);

  const start = (service: LocalService, run: () => Promise<{ shutdown(): Promise<void> }>) =>
    startup.step(`starting the ${service} service on ${addresses[service]}`, async () => {
      const app = await run();
      startup.onStop(`the ${service} service (draining)`, app.shutdown);
    });
  await start('product', () => startProductService(configs.product, quiet('product')));
  await start('customer', () => startCustomerService(configs.customer, quiet('customer')));
  await start('account', () => startAccountService(configs.account, quiet('account')));
  await start('payment', () => startPaymentService(configs.payment, quiet('payment')));
  await start('loan', () => startLoanService(configs.loan, quiet('loan')));

  const demo = await startup.step('opening the demo customers and accounts', () => openDemo(keys.issuerKey));
  return { pgServer, nats, issuerKey: keys.issuerKey, ...demo };
}

/** Demo data, through the same RPCs a channel uses. */
async function openDemo(issuerKey: string) {
  // A token for every service, with every scope, for half a day (the CLI mints more: npm run token).
  const token = await mintToken(await loadIssuerKey(issuerKey), {
    channel: 'local-demo',
    scopes: [
      ...ALL_SCOPES,
      ...DEMO_SCOPES,
      'payments:read',
      'payments:write',
      'payments:admin',
      'loans:read',
      'loans:write',
      'loans:admin',
      'day:read',
      'day:admin',
      AUDIT_READ_SCOPE,
    ],
    audience: ALL_AUDIENCES,
    ttlSeconds: 12 * 3600,
  });
  const insecure = grpc.credentials.createInsecure();
  const accounts = promisify(new AccountServiceClient(addresses.account, insecure), token);
  const customers = promisify(new CustomerServiceClient(addresses.customer, insecure), token);
  const products = promisify(new ProductServiceClient(addresses.product, insecure), token);
  try {
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
    return { token, customers: demo.customers, opened };
  } finally {
    [accounts, customers, products].forEach((c) => c.close());
  }
}

const { pgServer, nats, issuerKey, token, customers, opened } = await startBank().catch((err: unknown) => {
  if (err instanceof Interrupted) return exit(err.signal === 'SIGINT' ? 130 : 143);
  process.stderr.write(`npm run up: ${err instanceof Error ? err.message : String(err)}\n`);
  return exit(1);
});
ready = true;

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
      issuerKey,
      customers: Object.fromEntries(Object.entries(customers).map(([k, c]) => [k, c.id])),
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
corebank is up (${shards} shards): account ${addresses.account}, customer ${addresses.customer}, product ${addresses.product}, payment ${addresses.payment}, loan ${addresses.loan}
PostgreSQL on 127.0.0.1:${pgServer.port}, NATS on ${nats.url}
demo customers alice, bob (persons) and carol (business), KYC-verified; each has a current account
(product current-eur, EUR 1,000.00 deposited); ids are in .local/bank.json, a token with every scope in .local/token
(12 hours); more tokens: npm run token -- --channel mobile --scopes payments:write,accounts:read --customer <id>

call it (grpcurl: npm run setup builds it into .local/bin; the services offer reflection):
  export PATH=$PWD/.local/bin:$PATH TOKEN=$(cat .local/token)
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"account_id":"${alice}"}' ${addresses.account} corebank.v1.AccountService/GetAccount
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"transfers":[{"id":"'$(cat /proc/sys/kernel/random/uuid)'","kind":"TRANSFER_KIND_SINGLE_PHASE","debit_account_id":"${alice}","credit_account_id":"${bob}","amount":"2500","code":1}]}' ${addresses.account} corebank.v1.AccountService/CreateTransfers
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"idempotency_key":"pay-1","payer_account_id":"${alice}","payee_account_id":"${carol}","amount":"1999","currency":"EUR","reference":"invoice 1"}' ${addresses.payment} corebank.v1.PaymentService/CreatePayment
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"product_id":"personal-loan-eur","amount":"500000","term_months":12}' ${addresses.loan} corebank.v1.LoanService/PreviewSchedule
or without grpcurl:
  npm run call -- AccountService GetAccount '{"accountId":"${alice}"}'
  npm run call -- LoanService PreviewSchedule '{"productId":"personal-loan-eur","amount":"500000","termMonths":12}'
Ctrl-C stops the bank.`);

if (process.env.UP_EXIT_AFTER_DEMO === '1') await exit(0);
