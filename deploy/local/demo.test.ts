// seedDemo against real customer and product services: it publishes the catalog, onboards and
// verifies three customers, and a second run changes nothing.
import { CustomerServiceClient, KycStatus } from '@corebank/kit/gen/corebank/v1/customer';
import { ProductStatus, ProductServiceClient } from '@corebank/kit/gen/corebank/v1/product';
import { promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCustomers, type TestCustomers } from '../../services/customer/test/harness.js';
import { startCatalog, type TestCatalog } from '../../services/product/test/harness.js';
import { DEMO_SCOPES, seedDemo, type DemoClients } from './demo.js';

describe('seedDemo', () => {
  let customers: TestCustomers;
  let catalog: TestCatalog;
  let clients: DemoClients & { close: () => void };
  beforeAll(async () => {
    customers = await startCustomers(1);
    catalog = await startCatalog();
    const token = await testToken(DEMO_SCOPES, undefined, { channel: 'local-demo' });
    const c = promisify(
      new CustomerServiceClient(`127.0.0.1:${customers.app.server.port}`, grpc.credentials.createInsecure()),
      token,
    );
    const p = promisify(new ProductServiceClient(catalog.address, grpc.credentials.createInsecure()), token);
    clients = { customers: c, products: p, close: () => (c.close(), p.close()) };
  });
  afterAll(async () => {
    clients?.close();
    await catalog?.stop();
    await customers?.stop();
  });

  it('publishes the catalog and onboards verified customers, idempotently', async () => {
    const first = await seedDemo(clients);
    for (const p of Object.values(first.products)) expect(p.status).toBe(ProductStatus.PRODUCT_STATUS_PUBLISHED);
    for (const c of Object.values(first.customers)) expect(c.kycStatus).toBe(KycStatus.KYC_STATUS_VERIFIED);
    expect(first.customers.alice.displayName).toBe('Alice Liddell');
    const again = await seedDemo(clients);
    expect(Object.values(again.customers).map((c) => [c.id, c.version])).toEqual(
      Object.values(first.customers).map((c) => [c.id, c.version]),
    );
    expect(again.products.current).toEqual(first.products.current);
  });
});
