// Product-service fields bounded to their columns: a version of 2^31 or more (the column is an
// integer) is INVALID_ARGUMENT, as are NUL in a name, unknown enums, foreign page tokens and
// timestamps outside the Timestamp range; nothing is written.
import { status } from '@grpc/grpc-js';
import { ProductKind } from '@corebank/kit/gen/corebank/v1/product';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError } from '../../account/test/helpers.js';
import { depositProduct } from './fixtures.js';
import { catalogCounts, startCatalog, type TestCatalog } from './harness.js';

describe('product service request bounds', () => {
  let t: TestCatalog;
  beforeAll(async () => {
    t = await startCatalog();
  });
  afterAll(async () => t?.stop());

  it('a version of 2^31 or more is INVALID_ARGUMENT for every RPC that names one', async () => {
    const p = depositProduct();
    await t.client.createProduct(p);
    const before = await catalogCounts(t.app);
    for (const version of [2 ** 31, 2 ** 32 - 1]) {
      const id = { productId: p.productId, version };
      await expectRpcError(t.client.getProduct(id), status.INVALID_ARGUMENT, 'version');
      await expectRpcError(t.client.publishProductVersion(id), status.INVALID_ARGUMENT, 'version');
      await expectRpcError(t.client.retireProductVersion(id), status.INVALID_ARGUMENT, 'version');
      await expectRpcError(t.client.updateProductVersion({ ...p, ...id }), status.INVALID_ARGUMENT, 'version');
    }
    expect(await catalogCounts(t.app)).toEqual(before);
  });

  it('names, enums, page tokens and timestamps are bounded', async () => {
    const before = await catalogCounts(t.app);
    for (const name of ['a\u0000b', 'x'.repeat(1 << 20)]) {
      const err = await expectRpcError(
        t.client.createProduct(depositProduct({ name })),
        status.INVALID_ARGUMENT,
        'name',
      );
      expect(err.details.length).toBeLessThan(400);
    }
    await expectRpcError(
      t.client.createProduct(depositProduct({ description: 'x\u0000' })),
      status.INVALID_ARGUMENT,
      'description',
    );
    expect(await catalogCounts(t.app)).toEqual(before);
    await expectRpcError(
      t.client.listProducts({ kind: -1 as ProductKind, page: undefined }),
      status.INVALID_ARGUMENT,
      'kind',
    );
    await t.client.createProduct(depositProduct());
    await t.client.createProduct(depositProduct());
    const first = await t.client.listProducts({ kind: 0, page: { pageSize: 1, pageToken: '' } });
    const err = await expectRpcError(
      t.client.listProducts({
        kind: ProductKind.PRODUCT_KIND_LOAN,
        page: { pageSize: 1, pageToken: first.page!.nextPageToken },
      }),
      status.INVALID_ARGUMENT,
      'page.page_token',
    );
    expect(err.details).toContain('is not a token for this query');
    await expectRpcError(
      t.client.computeValidUntil({
        productId: '',
        version: 0,
        validity: { kind: { $case: 'rolling', value: { durationSeconds: 60 } } },
        purchasedAt: { seconds: 9_223_372_036_854_775_807n, nanos: 0 },
      }),
      status.INVALID_ARGUMENT,
      'purchased_at',
    );
  });
});
