// 200 cross-shard payments at once between 90 accounts on 3 shards, some beyond the payer's
// funds and some to payees that do not exist: every saga settles, money is conserved, nothing is
// applied twice, no constrained balance goes negative, and each order's state is the ledger's.
import { randomUUID } from 'node:crypto';
import { bucketedId } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentStatus } from '@corebank/kit/gen/corebank/v1/payment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsOn, startPayments, type TestPayments } from './harness.js';
import { allOrders, checkInvariants, outcomeCounts, unsettledCount } from './invariants.js';

const FUNDING = 1_000n;

describe('concurrent cross-shard payments (3 shards)', () => {
  let t: TestPayments;
  let accounts: Account[][];
  beforeAll(async () => {
    t = await startPayments(3);
    accounts = await Promise.all([0, 1, 2].map((s) => accountsOn(t.bank, s, 30, FUNDING)));
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('settles 200 concurrent sagas with every invariant intact', async () => {
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    const started = Date.now();
    const reqs = Array.from({ length: 200 }, (_, i) => {
      const from = i % 3;
      const to = (from + 1 + (i % 2)) % 3;
      const payer = pick(accounts[from]!);
      const payee =
        i % 25 === 0
          ? bucketedId(t.bank.app.router.map.firstBucketOf(to), 'missing', randomUUID())
          : pick(accounts[to]!).id;
      return {
        idempotencyKey: randomUUID(),
        payerAccountId: payer.id,
        payeeAccountId: payee,
        amount: BigInt(50 + Math.floor(Math.random() * 450)),
        currency: 'EUR',
        reference: `load ${i}`,
      };
    });
    const created = await Promise.all(reqs.map((r) => t.client.createPayment(r)));
    // Retrying every request at once changes nothing.
    const replays = await Promise.all(reqs.map((r) => t.client.createPayment(r)));
    expect(replays.every((r, i) => r.replayed && r.payment!.id === created[i]!.payment!.id)).toBe(true);

    await expect.poll(() => unsettledCount(t.app.router), { timeout: 60_000, interval: 100 }).toBe(0);
    const settleMs = Date.now() - started;
    const orders = await allOrders(t.app.router);
    expect(orders.length).toBe(200);
    await checkInvariants(
      t.bank,
      orders,
      accounts.flat().map((account) => ({ account, funding: FUNDING })),
    );
    const counts = await outcomeCounts(orders);
    console.log(`200 concurrent cross-shard payments settled in ${settleMs} ms:`, counts);
    expect(counts.completed).toBeGreaterThan(0);
    // The 8 payments to missing payees are all rejected: voided after the hold, or refused at it.
    const known = new Set(accounts.flat().map((a) => a.id));
    const ghosts = orders.filter((o) => !known.has(o.payee_account_id));
    expect(ghosts.length).toBe(8);
    expect(ghosts.every((o) => o.status === PaymentStatus.PAYMENT_STATUS_REJECTED)).toBe(true);
    expect(counts.voided).toBe(ghosts.filter((o) => o.reason.endsWith('CREDIT_ACCOUNT_NOT_FOUND')).length);
    expect(counts.voided).toBeGreaterThan(0);
    expect(counts.rejected).toBeGreaterThan(counts.voided);
  });
});
