// Starts a real product service for a test file: a fresh global database on the shared
// PostgreSQL, the shared nats-server, the service in-process on a free port, and a client.
import { randomUUID } from 'node:crypto';
import { createLogger, migrateAllShards } from '@corebank/kit';
import { ProductVersionChanged } from '@corebank/kit/gen/corebank/v1/events';
import { ProductServiceClient, type ProductVersion } from '@corebank/kit/gen/corebank/v1/product';
import { createDatabases, promisify, testAuth, testChannelCredentials, testToken } from '@corebank/kit/testing';

import { globalRouter, loadProductConfig } from '../src/config.js';
import { productMigrations } from '../src/migrations.js';
import { startProductService, type ProductApp } from '../src/service.js';
import { infra } from '../../kit/test/context.js';

export const PRODUCT_SCOPES = ['products:read', 'products:write'];

export type ProductClient = ReturnType<typeof promisify<ProductServiceClient>>;

export interface TestCatalog {
  app: ProductApp;
  client: ProductClient;
  env: Record<string, string>;
  address: string;
  clientWith: (scopes: string[], customerId?: string) => Promise<ProductClient>;
  stop: () => Promise<void>;
}

export async function startCatalog(overrides: Record<string, string> = {}): Promise<TestCatalog> {
  const db = `prod_${randomUUID().slice(0, 8)}`;
  await createDatabases(infra('pgAdminUrl'), [db]);
  const env: Record<string, string> = {
    GRPC_PORT: '0',
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    NATS_URL: infra('natsUrl'),
    ...(await testAuth()).env('product'),
    GLOBAL_DATABASE_URL: `${infra('pgUrl')}/${db}`,
    SHUTDOWN_GRACE_MS: '2000',
    ...overrides,
  };
  const config = loadProductConfig(env);
  const router = globalRouter(config, 2, 'product');
  await migrateAllShards(router, productMigrations, createLogger('product', 'warn'));
  await router.close();
  const app = await startProductService(config, createLogger('product', env.LOG_LEVEL!));
  const address = `127.0.0.1:${app.server.port}`;
  const clients: ProductClient[] = [];
  const clientWith = async (scopes: string[], customerId?: string) => {
    const token = await testToken(scopes, customerId);
    const c = promisify(new ProductServiceClient(address, testChannelCredentials(env)), token);
    clients.push(c);
    return c;
  };
  const client = await clientWith(PRODUCT_SCOPES);
  return {
    app,
    client,
    env,
    address,
    clientWith,
    stop: async () => {
      clients.forEach((c) => c.close());
      await app.shutdown();
    },
  };
}

/** The catalog's outbox rows about one product, oldest first, decoded. */
export async function productEvents(app: ProductApp, productId: string) {
  const rows = (await app.router.shards[0]!.db('outbox').select('subject', 'payload').orderBy('seq')) as {
    subject: string;
    payload: Buffer;
  }[];
  return rows
    .map((r) => ({ subject: r.subject, product: ProductVersionChanged.decode(r.payload).product as ProductVersion }))
    .filter((e) => e.product.productId === productId);
}

/** Rows in the catalog tables and the outbox: what "nothing was written" compares. */
export async function catalogCounts(app: ProductApp) {
  const db = app.router.shards[0]!.db;
  const n = async (table: string) => Number(((await db(table).count('* as n').first()) as unknown as { n: bigint }).n);
  return { products: await n('products'), versions: await n('product_versions'), outbox: await n('outbox') };
}
