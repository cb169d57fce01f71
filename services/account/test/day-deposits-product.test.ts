// The deposits step with its terms from a real product service (productTerms): a published
// DAILY-posting product (a yield product) accrues and posts; each (product, version) is asked for
// once per process, however many chunks and days need it.
import { createLogger, serviceIdentity } from '@corebank/kit';
import { DayCount, PostingFrequency } from '@corebank/kit/gen/corebank/v1/product';
import { freePort } from '@corebank/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCatalog, type TestCatalog } from '../../product/test/harness.js';
import { depositProduct, depositTerms } from '../../product/test/fixtures.js';
import { connectPeers, type Peers } from '../src/clients/peers.js';
import { loadAccountConfig } from '../src/config.js';
import { depositStep, productTerms } from '../src/day/deposits.js';
import { accrualsOf } from '../src/day/gl.js';
import { idRanges } from '../src/day/steps.js';
import { startBank, type TestBank } from './bank.js';
import { fund, openAccounts } from './helpers.js';

describe('the deposits step on a real product service', () => {
  let catalog: TestCatalog;
  let bank: TestBank;
  let peers: Peers;

  beforeAll(async () => {
    const productPort = await freePort();
    catalog = await startCatalog({ GRPC_PORT: String(productPort) });
    bank = await startBank(3, { PRODUCT_SERVICE_ADDRESS: `127.0.0.1:${productPort}` });
    const config = loadAccountConfig(bank.env);
    const identity = await serviceIdentity('account', config, createLogger('account', 'warn'));
    peers = connectPeers(config.customerServiceAddress, config.productServiceAddress, identity);
  });
  afterAll(async () => {
    peers?.customers.close();
    peers?.products.close();
    await bank?.stop();
    await catalog?.stop();
  });

  it('accrues and posts a published DAILY product, asking for its terms once', async () => {
    const { product } = await catalog.client.createProduct(
      depositProduct({
        deposit: depositTerms({
          overdraftLimit: 0n,
          monthlyFee: 0n,
          interestRateBps: 400,
          dayCount: DayCount.DAY_COUNT_ACT_360,
          postingFrequency: PostingFrequency.POSTING_FREQUENCY_DAILY,
        }),
      }),
    );
    await catalog.client.publishProductVersion({ productId: product!.productId, version: product!.version });
    const accounts = await openAccounts(bank, 5, { constrained: true });
    for (const a of accounts) {
      await bank.router.shards[a.shard]!.db('accounts')
        .where('id', a.id)
        .update({ product_id: product!.productId, product_version: product!.version });
      await fund(bank, a, 900_000n);
    }
    let calls = 0;
    const counted: Peers = {
      ...peers,
      products: new Proxy(peers.products, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          if (prop === 'getProduct' && typeof v === 'function') {
            return (...args: unknown[]) => {
              calls++;
              return (v as (...a: unknown[]) => unknown).apply(target, args);
            };
          }
          return v;
        },
      }),
    };
    const step = depositStep({ router: bank.router, terms: productTerms(counted) });
    for (const date of ['2032-01-10', '2032-01-11']) {
      for (const shard of bank.router.shards) {
        for (const [after, upTo] of idRanges(4)) await step({ date, shard, after, upTo });
      }
    }
    expect(calls).toBe(1);
    // 4% ACT/360 on 900,000: a day is 900,000 x 400 / 3,600,000 = 100 exactly, posted daily;
    // the second day's balance is 900,100: 900,100 x 400 = 360,040,000, cumulative 720,040,000
    // / 3,600,000 = 200.01 -> 200, so 100 again (the 0.01 carried).
    for (const a of accounts) {
      expect(await accrualsOf(bank.router, a.id, '', '')).toEqual([
        { businessDate: '2032-01-10', balance: 900_000n, amount: 100n, posted: 100n },
        { businessDate: '2032-01-11', balance: 900_100n, amount: 100n, posted: 100n },
      ]);
    }
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });
});
