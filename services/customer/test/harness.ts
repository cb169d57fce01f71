// Starts a real customer service for a test file, next to a real account service (which freeze,
// unfreeze and close call): fresh databases per shard on the shared PostgreSQL, the shared
// nats-server, both services in-process on free ports, and clients with every scope.
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger, migrateAllShards, ShardRouter, shardUrlVar, type Logger } from '@corebank/kit';
import { CustomerServiceClient, type Customer } from '@corebank/kit/gen/corebank/v1/customer';
import {
  CustomerCreated,
  CustomerKycChanged,
  CustomerRiskTierChanged,
  CustomerStatusChanged,
  CustomerUpdated,
} from '@corebank/kit/gen/corebank/v1/events';
import { createDatabases, promisify, testAuth, testChannelCredentials, testToken } from '@corebank/kit/testing';
import { pino } from 'pino';

import { startBank, type Bank, type TestBank } from '../../account/test/bank.js';
import { loadCustomerConfig } from '../src/config.js';
import { SUBJECTS } from '../src/events.js';
import { customerMigrations } from '../src/migrations.js';
import { startCustomerService, type CustomerApp } from '../src/service.js';
import { infra } from '../../kit/test/context.js';

export const CUSTOMER_SCOPES = ['customers:read', 'customers:write', 'customers:admin'];

export type CustomerClient = ReturnType<typeof promisify<CustomerServiceClient>>;

export interface TestCustomers {
  app: CustomerApp;
  bank: TestBank;
  client: CustomerClient;
  env: Record<string, string>;
  /** Every line the customer service logged (level trace), as JSON text. */
  logs: string[];
  token: (scopes?: string[], customerId?: string, channel?: string) => Promise<string>;
  /** A client for the same service with another token. */
  clientWith: (token: string) => CustomerClient;
  /** Another customer-service process on the same databases, with its own environment overrides. */
  startTwin: (overrides: Record<string, string>) => Promise<{ client: CustomerClient; stop: () => Promise<void> }>;
  stop: () => Promise<void>;
}

/** A pino logger at level trace that keeps every line, so a test can check what was logged. */
export function capturingLogger(lines: string[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return pino({ level: 'trace', base: { service: 'customer' } }, sink) as unknown as Logger;
}

/** With `existingBank`, the customer service uses that account service (and leaves it running on stop). */
export async function startCustomers(
  shards: number,
  overrides: Record<string, string> = {},
  bankOverrides: Record<string, string> = {},
  existingBank?: Bank,
): Promise<TestCustomers> {
  // The customer service needs only the bank's address; tests that pass their own bank
  // (running elsewhere, say) do not use `bank.app`.
  const bank = (existingBank as TestBank | undefined) ?? (await startBank(shards, bankOverrides));
  const id = randomUUID().slice(0, 8);
  const dbs = Array.from({ length: shards }, (_, i) => `cust_${id}_s${i}`);
  await createDatabases(infra('pgAdminUrl'), dbs);
  const env: Record<string, string> = {
    GRPC_PORT: '0',
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: 'trace',
    SHARD_COUNT: String(shards),
    NATS_URL: infra('natsUrl'),
    ...(await testAuth()).env('customer'),
    CUSTOMER_ID_HASH_KEY: randomBytes(32).toString('base64'),
    ACCOUNT_SERVICE_ADDRESS: bank.address,
    SHUTDOWN_GRACE_MS: '2000',
    ...Object.fromEntries(dbs.map((db, i) => [shardUrlVar(i), `${infra('pgUrl')}/${db}`])),
    ...overrides,
  };
  const config = loadCustomerConfig(env);
  const router = new ShardRouter(config.shards, config.shardUrls, 2, 'customer');
  await migrateAllShards(router, customerMigrations, createLogger('customer', 'warn'));
  await router.close();

  const logs: string[] = [];
  const app = await startCustomerService(config, capturingLogger(logs));
  const address = `127.0.0.1:${app.server.port}`;
  const token = (scopes = CUSTOMER_SCOPES, customerId?: string, channel = 'test') =>
    testToken(scopes, customerId, { channel });
  const clients: CustomerClient[] = [];
  const clientWith = (t: string) => {
    const c = promisify(new CustomerServiceClient(address, testChannelCredentials(env)), t);
    clients.push(c);
    return c;
  };
  const client = clientWith(await token());
  const twins: (() => Promise<void>)[] = [];
  const startTwin = async (o: Record<string, string>) => {
    const twin = await startCustomerService(
      loadCustomerConfig({ ...env, RELAY_ENABLED: 'false', ...o }),
      createLogger('customer-twin', 'warn'),
    );
    const c = promisify(
      new CustomerServiceClient(`127.0.0.1:${twin.server.port}`, testChannelCredentials(env)),
      await token(),
    );
    const stop = async () => {
      c.close();
      await twin.shutdown();
    };
    twins.push(stop);
    return { client: c, stop };
  };
  return {
    app,
    bank,
    client,
    env,
    logs,
    token,
    clientWith,
    startTwin,
    stop: async () => {
      clients.forEach((c) => c.close());
      await Promise.all(twins.map((t) => t().catch(() => undefined)));
      await app.shutdown();
      if (!existingBank) await bank.stop();
    },
  };
}

export interface DecodedEvent {
  id: string;
  subject: string;
  sent: boolean;
  customer: Customer;
  /** from / to / reason for transitions, changedFields for updates. */
  detail: Record<string, unknown>;
}

/** The outbox rows of one customer (on its home shard), oldest first, decoded. */
export async function eventsOf(app: CustomerApp, customerId: string): Promise<DecodedEvent[]> {
  const shard = app.router.byCustomer(customerId);
  const rows = (await shard.db('outbox').select('id', 'subject', 'payload', 'sent_at').orderBy('seq')) as {
    id: string;
    subject: string;
    payload: Buffer;
    sent_at: Date | null;
  }[];
  const out: DecodedEvent[] = [];
  for (const r of rows) {
    const base = { id: r.id, subject: r.subject, sent: r.sent_at !== null };
    let e: DecodedEvent;
    switch (r.subject) {
      case SUBJECTS.created: {
        const m = CustomerCreated.decode(r.payload);
        e = { ...base, customer: m.customer!, detail: {} };
        break;
      }
      case SUBJECTS.updated: {
        const m = CustomerUpdated.decode(r.payload);
        e = { ...base, customer: m.customer!, detail: { changedFields: m.changedFields } };
        break;
      }
      case SUBJECTS.kycChanged: {
        const m = CustomerKycChanged.decode(r.payload);
        e = { ...base, customer: m.customer!, detail: { from: m.from, to: m.to, reason: m.reason } };
        break;
      }
      case SUBJECTS.statusChanged: {
        const m = CustomerStatusChanged.decode(r.payload);
        e = { ...base, customer: m.customer!, detail: { from: m.from, to: m.to, reason: m.reason } };
        break;
      }
      case SUBJECTS.riskTierChanged: {
        const m = CustomerRiskTierChanged.decode(r.payload);
        e = { ...base, customer: m.customer!, detail: { from: m.from, to: m.to, reason: m.reason } };
        break;
      }
      default:
        throw new Error(`unexpected subject ${r.subject}`);
    }
    if (e.customer.id === customerId) out.push(e);
  }
  return out;
}

/** Rows in every shard's customers and outbox tables: what "nothing was written" compares. */
export async function rowCounts(app: CustomerApp): Promise<{ customers: number; outbox: number }> {
  let customers = 0;
  let outbox = 0;
  for (const s of app.router.shards) {
    const c = (await s.db('customers').count('* as n').first()) as unknown as { n: bigint };
    const o = (await s.db('outbox').count('* as n').first()) as unknown as { n: bigint };
    customers += Number(c.n);
    outbox += Number(o.n);
  }
  return { customers, outbox };
}
