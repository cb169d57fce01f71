// What one payment costs in round trips to PostgreSQL (issue 14, point 3): orders made one at a
// time at about 20 a second, as the bench's statement probes do, every pg query of the process
// counted (the payment, account, customer and product services all run in it, each with its own
// databases), divided by the orders; then 16 at once, back to back. Printed per service and per
// statement (docs/benchmarks.md keeps the figures); the bounds asserted are the numbers issue 14's
// work reached, with room for the relays' timing.
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
  // Steps claimed by a statement of their own (claimStep), not by the advance of the step before.
  const claims =
    [...c.byText.entries()]
      .filter(([text]) => text.startsWith('update payments set attempts = attempts + 1'))
      .reduce((a, [, n]) => a + n, 0) / orders;
  const top = [...c.byText.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([text, n]) => `${(n / orders).toFixed(2).padStart(6)}  ${text}`);
  return { byService, all, claims, top };
}

describe('round trips per payment', () => {
  let t: TestPayments;
  let s0: Account[];
  let s1: Account[];
  beforeAll(async () => {
    // The production sweep intervals: the tests' 250 ms (saga) and 200 ms (hold expiry) would add
    // their polling to every order.
    t = await startPayments(
      2,
      { ...NO_RISK_RULES, SAGA_SWEEP_INTERVAL_MS: '5000' },
      { EXPIRY_SWEEP_INTERVAL_MS: '5000' },
    );
    s0 = await accountsOn(t.bank, 0, 9, 1_000_000n);
    s1 = await accountsOn(t.bank, 1, 2, 1_000_000n);
  });
  afterAll(async () => {
    await t?.stop();
  });

  /**
   * Round trips per order of ORDERS orders from the first 8 payers to `payee`: one at a time at
   * about 20 a second (`inFlight` 1), or `inFlight` at once, back to back.
   */
  async function probe(payee: Account, inFlight = 1) {
    const pay = (payer: Account) =>
      t.client.createPayment({
        idempotencyKey: randomUUID(),
        payerAccountId: payer.id,
        payeeAccountId: payee.id,
        amount: 100n,
        currency: 'EUR',
        reference: 'probe',
      });
    // Warm: every cache an order fills once per process (accounts, limits, tiers, system accounts).
    for (const payer of s0.slice(0, 8)) await settled(t.client, (await pay(payer)).payment!.id);
    await sleep(1_000);
    const counter = countQueries();
    const ids: string[] = [];
    try {
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < ORDERS; i = next++) {
          ids.push((await pay(s0[i % 8]!)).payment!.id);
          if (inFlight === 1) await sleep(50);
        }
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
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
    const same = await probe(s0[8]!);
    const cross = await probe(s1[0]!);
    const sameAtOnce = await probe(s0[8]!, 16);
    const crossAtOnce = await probe(s1[0]!, 16);
    for (const [name, r] of [
      ['same shard', same],
      ['cross shard', cross],
      ['same shard, 16 in flight', sameAtOnce],
      ['cross shard, 16 in flight', crossAtOnce],
    ] as const) {
      console.log(
        `${name}: ${r.all.toFixed(1)} round trips per order; by service ` +
          Object.entries(r.byService)
            .map(([s, n]) => `${s} ${n.toFixed(1)}`)
            .join(', ') +
          `\n${r.top.join('\n')}`,
      );
    }
    // Before issue 14's work: 71 and 143 (one at a time). After it: about 26 and 50; the relays'
    // share varies with timing, hence the room.
    expect(same.all).toBeLessThan(40);
    expect(cross.all).toBeLessThan(75);
    // Orders that arrive together share transactions (group commit) and relay cycles.
    expect(sameAtOnce.all).toBeLessThan(same.all);
    expect(crossAtOnce.all).toBeLessThan(cross.all);
    // A cross-shard order's credit and post are claimed by the advance of the step before them
    // (two claims per order before): its creator goes on with it without waiting for the events.
    for (const r of [cross, crossAtOnce]) expect(r.claims).toBeLessThan(0.1);
  });
});
