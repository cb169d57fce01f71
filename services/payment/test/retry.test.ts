// Transient ledger failures: the saga retries each step with backoff (the order's row keeps the
// step, attempts and next_attempt_at) until it settles; a verdict is never invented from an outage.
import { randomUUID } from 'node:crypto';
import { createLogger, ShardRouter } from '@corebank/kit';
import {
  PaymentKind as K,
  PaymentRoute,
  PaymentStatus as S,
  PaymentStep as P,
} from '@corebank/kit/gen/corebank/v1/payment';
import { testAuth } from '@corebank/kit/testing';
import { status as Code } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from '../../account/test/bank.js';
import { balances } from '../../account/test/helpers.js';
import { loadPaymentConfig } from '../src/config.js';
import { Ledger, type AccountClient } from '../src/clients/ledger.js';
import { Saga } from '../src/saga.js';
import { bodyHashOf, findPayment, insertOrder, paymentIdFor } from '../src/store.js';
import { accountsOn, paymentEnv } from './harness.js';

/** The real account client, except that the first `failures` CreateTransfers calls fail as UNAVAILABLE. */
function flaky(client: AccountClient, failures: number): AccountClient & { calls: () => number } {
  let calls = 0;
  return new Proxy(client, {
    get(target, prop: string) {
      if (prop === 'calls') return () => calls;
      const fn = (target as unknown as Record<string, unknown>)[prop];
      if (prop !== 'createTransfers' || typeof fn !== 'function') return fn;
      return (...args: unknown[]) => {
        calls++;
        if (calls <= failures) {
          return Promise.reject(Object.assign(new Error('unavailable'), { code: Code.UNAVAILABLE, details: 'down' }));
        }
        return (fn as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as AccountClient & { calls: () => number };
}

describe('saga retries', () => {
  let bank: TestBank;
  let router: ShardRouter;
  let env: Record<string, string>;
  beforeAll(async () => {
    bank = await startBank(3);
    // No service runs here (the saga is driven directly): the peers' addresses are never called.
    env = await paymentEnv(bank, 3, {
      CUSTOMER_SERVICE_ADDRESS: '127.0.0.1:1',
      PRODUCT_SERVICE_ADDRESS: '127.0.0.1:1',
    });
    const config = loadPaymentConfig(env);
    router = new ShardRouter(config.shards, config.shardUrls, 4, 'payment');
  });
  afterAll(async () => {
    await router?.close();
    await bank?.stop();
  });

  it('retries every step through a ledger outage and settles once it is back', async () => {
    const [payer] = await accountsOn(bank, 0, 1, 1_000n);
    const [payee] = await accountsOn(bank, 2, 1, 0n);
    const real = Ledger.connect(bank.address, await (await testAuth()).identity('payment'), 2_000);
    const client = flaky(real.client, 7);
    const saga = new Saga(router, new Ledger(client, 2_000), createLogger('payment', 'silent'), {
      consumerName: 'unused',
      callTimeoutMs: 2_000,
      maxBackoffMs: 200,
      sweepIntervalMs: 50,
    });
    const body = {
      payerAccountId: payer!.id,
      payeeAccountId: payee!.id,
      amount: 400n,
      currency: 'EUR',
      reference: '',
    };
    const bucket = router.map.firstBucketOf(0);
    const id = paymentIdFor(bucket, 'test', randomUUID());
    const shard = router.byBucket(bucket);
    await shard.db.transaction((tx) =>
      insertOrder(
        tx,
        {
          ...body,
          id,
          channel: 'test',
          idempotencyKey: id,
          bodyHash: bodyHashOf(id),
          kind: K.PAYMENT_KIND_TRANSFER,
          payerCustomerId: payer!.ownerId,
          route: PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD,
          status: S.PAYMENT_STATUS_ACCEPTED,
          step: P.PAYMENT_STEP_HOLD,
          payerShard: 0,
          payeeShard: 2,
        },
        new Date(),
      ),
    );

    // One step by hand: the outage defers it (attempts counted, next attempt in the future).
    const first = await saga.step(shard, id);
    expect(first.result).toBe('deferred');
    const deferred = (await findPayment(shard.db, id))!;
    expect([deferred.status, deferred.step, deferred.attempts]).toEqual([
      S.PAYMENT_STATUS_ACCEPTED,
      P.PAYMENT_STEP_HOLD,
      1,
    ]);
    expect(deferred.next_attempt_at.getTime()).toBeGreaterThan(Date.now() - 1_000);

    await saga.start(undefined);
    try {
      await expect
        .poll(async () => (await findPayment(shard.db, id))!.step, { timeout: 30_000, interval: 50 })
        .toBe(P.PAYMENT_STEP_DONE);
    } finally {
      await saga.stop();
      real.close();
    }
    const done = (await findPayment(shard.db, id))!;
    expect(done.status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect(client.calls()).toBe(7 + 3); // seven failures, then hold, credit and post once each
    expect((await balances(bank, payer!.id)).debitsPosted).toBe(400n);
    expect((await balances(bank, payee!.id)).creditsPosted).toBe(400n);
  });
});
