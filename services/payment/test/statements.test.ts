// What one payment costs in round trips to PostgreSQL (issue 14, point 3): orders made one at a
// time at about 20 a second, as the bench's statement probes do, every pg query of the process
// counted (the payment, account, customer and product services all run in it, each with its own
// databases), divided by the orders. Printed per service and per statement; the bounds asserted
// are the numbers this change reached, with room for the relay's timing.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { countQueries, type QueryCounts } from '@corebank/kit/testing';
import { PaymentStatus as S } from '@corebank/kit/gen/corebank/v1/payment';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsOn, NO_RISK_RULES, settled, startPayments, type TestPayments } from './harness.js';

const ORDERS = 60;

/** Round trips per order by service (the database name's prefix) and the busiest statements. */
function perOrder(c: QueryCounts, orders: number) {
  const byService: Record<string, number> = {};
  for (const [db, n] of c.byDatabase) {
    const service = db.split('_')[0]!;
    byService[service] = (byService[service] ?? 0) + n / orders;
  }
  const all = [...c.byDatabase.values()].reduce((a, b) => a + b, 0) / orders;
  const top = [...c.byText.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([text, n]) => `${(n / orders).toFixed(2).padStart(6)}  ${text}`);
  return { byService, all, top };
}

describe('round trips per payment', () => {
  let t: TestPayments;
  let s0: Account[];
  let s1: Account[];
  beforeAll(async () => {
    // The production sweep interval: the tests' 250 ms would add its polling to every order.
    t = await startPayments(2, { ...NO_RISK_RULES, SAGA_SWEEP_INTERVAL_MS: '5000' });
    s0 = await accountsOn(t.bank, 0, 4, 1_000_000n);
    s1 = await accountsOn(t.bank, 1, 2, 1_000_000n);
  });
  afterAll(async () => {
    await t?.stop();
  });

  async function probe(payee: Account) {
    const pay = (payer: Account) =>
      t.client.createPayment({
        idempotencyKey: randomUUID(),
        payerAccountId: payer.id,
        payeeAccountId: payee.id,
        amount: 100n,
        currency: 'EUR',
        reference: 'probe',
      });
    // Warm: every cache an order fills once per process (accounts, limits, system accounts).
    for (const payer of s0.slice(0, 3)) await settled(t.client, (await pay(payer)).payment!.id);
    await sleep(1_000);
    const counter = countQueries();
    const ids: string[] = [];
    try {
      for (let i = 0; i < ORDERS; i++) {
        ids.push((await pay(s0[i % 3]!)).payment!.id);
        await sleep(50);
      }
      // The saga's later steps and the relays of both services' events.
      await sleep(3_000);
      const counts = counter.take();
      counter.stop();
      for (const id of ids) expect((await settled(t.client, id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
      return perOrder(counts, ORDERS);
    } finally {
      counter.stop();
    }
  }

  it('counts a same-shard and a cross-shard payment', async () => {
    const same = await probe(s0[3]!);
    const cross = await probe(s1[0]!);
    for (const [name, r] of [
      ['same shard', same],
      ['cross shard', cross],
    ] as const) {
      console.log(
        `${name}: ${r.all.toFixed(1)} round trips per order; by service ` +
          Object.entries(r.byService)
            .map(([s, n]) => `${s} ${n.toFixed(1)}`)
            .join(', ') +
          `\n${r.top.join('\n')}`,
      );
    }
    expect(same.all).toBeGreaterThan(0);
    expect(cross.all).toBeGreaterThan(same.all);
  });
});
