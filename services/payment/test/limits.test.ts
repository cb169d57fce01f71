// The payer account's product limits on real services: per transaction, and per day counted
// atomically (concurrent payments cannot together pass the daily limit; a payment that ends
// rejected gives its amount back).
import { randomUUID } from 'node:crypto';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentStatus as S } from '@corebank/kit/gen/corebank/v1/payment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, fund } from '../../account/test/helpers.js';
import { limitDay } from '../src/limits.js';
import {
  accountsOn,
  depositAccount,
  NO_RISK_RULES,
  publishedDeposit,
  settled,
  startPayments,
  verifiedCustomer,
  type TestPayments,
} from './harness.js';

describe('the limit day', () => {
  it('is the calendar day in the limit time zone', () => {
    const late = new Date('2026-11-22T23:30:00Z');
    expect(limitDay(late, 'UTC')).toBe('2026-11-22');
    expect(limitDay(late, 'Europe/Berlin')).toBe('2026-11-23');
    expect(limitDay(new Date('2026-03-29T00:30:00Z'), 'America/New_York')).toBe('2026-03-28');
  });
});

describe('product limits (3 shards)', () => {
  let t: TestPayments;
  let productId: string;
  let payees: Account[];
  beforeAll(async () => {
    t = await startPayments(3, NO_RISK_RULES);
    productId = (
      await publishedDeposit(t, { perTransactionLimit: 5_000n, dailyDebitLimit: 20_000n, overdraftLimit: 0n })
    ).productId;
    payees = await accountsOn(t.bank, 1, 2, 0n);
  });
  afterAll(async () => {
    await t?.stop();
  });

  const limitedAccount = async (funding: bigint) =>
    depositAccount(t, (await verifiedCustomer(t)).id, productId, funding);
  const pay = (payer: Account, amount: bigint, payee = payees[0]!) =>
    t.client.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: payer.id,
      payeeAccountId: payee.id,
      amount,
      currency: 'EUR',
      reference: '',
    });

  it('rejects a payment above the per-transaction limit, moving nothing', async () => {
    const payer = await limitedAccount(100_000n);
    const { payment } = await pay(payer, 5_001n);
    expect(payment).toMatchObject({ status: S.PAYMENT_STATUS_REJECTED, reason: 'PER_TRANSACTION_LIMIT_EXCEEDED' });
    expect((await balances(t.bank, payer.id)).debitsPosted).toBe(0n);
    expect((await settled(t.client, (await pay(payer, 5_000n)).payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
  });

  it('lets concurrent payments of one account together reach the daily limit and not one minor unit more', async () => {
    const payer = await limitedAccount(100_000n);
    // 12 x 4,000 against 20,000 a day: exactly five fit, whatever the interleaving.
    const created = await Promise.all(Array.from({ length: 12 }, (_, i) => pay(payer, 4_000n, payees[i % 2]!)));
    const final = await Promise.all(created.map((c) => settled(t.client, c.payment!.id)));
    const completed = final.filter((p) => p.status === S.PAYMENT_STATUS_COMPLETED);
    expect(completed).toHaveLength(5);
    expect(final.filter((p) => p.reason === 'DAILY_DEBIT_LIMIT_EXCEEDED')).toHaveLength(7);
    expect((await balances(t.bank, payer.id)).debitsPosted).toBe(20_000n);
    const { rows } = await t.app.router
      .byId(payer.id)!
      .db.raw(`select amount from daily_debit_usage where account_id = ?`, [payer.id]);
    expect(rows).toEqual([{ amount: 20_000n }]);
  });

  it('counts a request sent many times at once against the day once (the duplicates roll back)', async () => {
    const payer = await limitedAccount(100_000n);
    // 10 copies of one request (one key, one body) at once, and 10 other requests of 100 beside
    // them: the copies share group-commit batches with each other and with the others.
    const copy = {
      idempotencyKey: randomUUID(),
      payerAccountId: payer.id,
      payeeAccountId: payees[0]!.id,
      amount: 3_000n,
      currency: 'EUR',
      reference: '',
    };
    const [copies, others] = await Promise.all([
      Promise.all(Array.from({ length: 10 }, () => t.client.createPayment(copy))),
      Promise.all(Array.from({ length: 10 }, () => pay(payer, 100n))),
    ]);
    expect(new Set(copies.map((c) => c.payment!.id)).size).toBe(1);
    for (const c of [...copies.slice(0, 1), ...others]) {
      expect((await settled(t.client, c.payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    }
    // 3,000 once and 10 x 100: 4,000 counted, as moved.
    const { rows } = await t.app.router
      .byId(payer.id)!
      .db.raw(`select amount from daily_debit_usage where account_id = ?`, [payer.id]);
    expect(rows).toEqual([{ amount: 4_000n }]);
    expect((await balances(t.bank, payer.id)).debitsPosted).toBe(4_000n);
  });

  it('gives the amount of a payment the ledger refused back to the day', async () => {
    const payer = await limitedAccount(1_000n);
    const refused = await settled(t.client, (await pay(payer, 4_000n, payees[1]!)).payment!.id);
    expect(refused).toMatchObject({
      status: S.PAYMENT_STATUS_REJECTED,
      reason: 'TRANSFER_RESULT_CODE_EXCEEDS_CREDITS',
    });
    await fund(t.bank, payer, 50_000n);
    const five = await Promise.all(Array.from({ length: 5 }, () => pay(payer, 4_000n)));
    for (const c of five) expect((await settled(t.client, c.payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect((await pay(payer, 1n)).payment!.reason).toBe('DAILY_DEBIT_LIMIT_EXCEEDED');
  });

  it("refuses a payment that would take a savings account below its product's minimum balance", async () => {
    const savings = (await publishedDeposit(t, { minimumBalance: 10_000n, overdraftLimit: 0n })).productId;
    const payer = await depositAccount(t, (await verifiedCustomer(t)).id, savings, 12_000n);
    const below = await settled(t.client, (await pay(payer, 2_001n)).payment!.id);
    expect(below).toMatchObject({
      status: S.PAYMENT_STATUS_REJECTED,
      reason: 'TRANSFER_RESULT_CODE_BELOW_MINIMUM_BALANCE',
    });
    expect((await settled(t.client, (await pay(payer, 2_000n, payees[1]!)).payment!.id)).status).toBe(
      S.PAYMENT_STATUS_COMPLETED,
    );
    const left = await balances(t.bank, payer.id);
    expect(left.creditsPosted - left.debitsPosted - left.debitsPending).toBe(10_000n);
  });

  it('applies no limits to an account opened without a product', async () => {
    const [plain] = await accountsOn(t.bank, 0, 1, 100_000n);
    const { payment } = await pay(plain!, 50_000n);
    expect((await settled(t.client, payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
  });
});
