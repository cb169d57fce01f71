// Refunds and reversals on real services, 3 shards: partial and full refunds of same-shard and
// cross-shard payments, never more in total than the original (also when refunds race), a reversal
// of what is left, and the refusals that write nothing.
import { randomUUID } from 'node:crypto';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentKind as K, PaymentStatus as S, type Payment } from '@corebank/kit/gen/corebank/v1/payment';
import { status as Code, type ServiceError } from '@grpc/grpc-js';
import { errorDetails } from '@corebank/kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError } from '../../account/test/helpers.js';
import { allOrders } from './invariants.js';
import {
  accountsOn,
  ADMIN_SCOPES,
  eventNamesOf,
  NO_RISK_RULES,
  PAYMENT_SCOPES,
  settled,
  startPayments,
  type PaymentClient,
  type TestPayments,
} from './harness.js';

describe('refunds and reversals (3 shards)', () => {
  let t: TestPayments;
  let admin: PaymentClient;
  let payers: Account[];
  let payees: Account[];
  let neighbours: Account[];
  beforeAll(async () => {
    t = await startPayments(3, NO_RISK_RULES);
    admin = t.clientWith(await t.token(ADMIN_SCOPES));
    payers = await accountsOn(t.bank, 0, 5, 20_000n);
    payees = await accountsOn(t.bank, 2, 5, 0n);
    neighbours = await accountsOn(t.bank, 0, 1, 0n);
  });
  afterAll(async () => {
    await t?.stop();
  });

  const pay = async (payer: Account, payee: Account, amount: bigint) => {
    const { payment } = await t.client.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: payer.id,
      payeeAccountId: payee.id,
      amount,
      currency: 'EUR',
      reference: 'goods',
    });
    const done = await settled(t.client, payment!.id);
    expect(done.status).toBe(S.PAYMENT_STATUS_COMPLETED);
    return done;
  };
  const refund = (paymentId: string, amount: bigint, key = randomUUID(), client = t.client) =>
    client.refundPayment({ paymentId, idempotencyKey: key, amount, reference: 'returned' });
  const original = async (id: string) => (await t.client.getPayment({ paymentId: id }))!;
  const settledReturn = async (p: Payment | undefined) => settled(t.client, p!.id);

  it('refunds a cross-shard payment in parts, up to its amount and never more', async () => {
    const [payer, payee] = [payers[0]!, payees[0]!];
    const paid = await pay(payer, payee, 10_000n);

    // The payee's owner may refund; the payer's may not.
    await expectRpcError(
      refund(paid.id, 100n, randomUUID(), t.clientWith(await t.token(PAYMENT_SCOPES, payer.ownerId))),
      Code.PERMISSION_DENIED,
    );
    const first = (
      await refund(paid.id, 3_000n, randomUUID(), t.clientWith(await t.token(PAYMENT_SCOPES, payee.ownerId)))
    ).refund;
    expect(first).toMatchObject({
      kind: K.PAYMENT_KIND_REFUND,
      originalPaymentId: paid.id,
      payerAccountId: payee.id,
      payeeAccountId: payer.id,
      amount: 3_000n,
    });
    expect((await settledReturn(first)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect((await original(paid.id)).payment).toMatchObject({
      status: S.PAYMENT_STATUS_PARTIALLY_REFUNDED,
      refundedAmount: 3_000n,
    });

    // 0 means "the rest".
    const rest = (await refund(paid.id, 0n)).refund;
    expect(rest!.amount).toBe(7_000n);
    expect((await settledReturn(rest)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    const { payment, refunds } = await original(paid.id);
    expect(payment).toMatchObject({ status: S.PAYMENT_STATUS_REFUNDED, refundedAmount: 10_000n });
    expect(refunds.map((r) => r.amount)).toEqual([3_000n, 7_000n]);

    const before = (await allOrders(t.app.router)).length;
    const err = await expectRpcError(refund(paid.id, 1n), Code.FAILED_PRECONDITION);
    expect(['PAYMENT_NOT_REFUNDABLE', 'REFUND_EXCEEDS_PAYMENT']).toContain(errorDetails(err).reason);
    expect((await allOrders(t.app.router)).length).toBe(before);

    expect((await balances(t.bank, payer.id)).creditsPosted - (await balances(t.bank, payer.id)).debitsPosted).toBe(
      20_000n,
    );
    const p = await balances(t.bank, payee.id);
    expect(p.creditsPosted - p.debitsPosted).toBe(0n);
    expect(await eventNamesOf(t, paid.id)).toEqual([
      'payment_accepted',
      'payment_held',
      'payment_credited',
      'payment_completed',
      'payment_refunded',
      'payment_refunded',
    ]);
  });

  it('lets concurrent refunds together return at most the original amount', async () => {
    const paid = await pay(payers[1]!, payees[1]!, 10_000n);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => refund(paid.id, 3_000n)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(3);
    for (const r of results) {
      if (r.status === 'rejected') {
        expect((r.reason as ServiceError).code).toBe(Code.FAILED_PRECONDITION);
        expect(errorDetails(r.reason as ServiceError).reason).toBe('REFUND_EXCEEDS_PAYMENT');
      }
    }
    for (const r of ok) await settledReturn(r.value.refund);
    expect((await original(paid.id)).payment).toMatchObject({
      status: S.PAYMENT_STATUS_PARTIALLY_REFUNDED,
      refundedAmount: 9_000n,
    });
    expect((await balances(t.bank, payees[1]!.id)).debitsPosted).toBe(9_000n);
  });

  it('is idempotent by the refund key', async () => {
    const paid = await pay(payers[2]!, neighbours[0]!, 5_000n);
    const key = randomUUID();
    const a = await refund(paid.id, 1_000n, key);
    const b = await refund(paid.id, 1_000n, key);
    expect(b).toMatchObject({ replayed: true, refund: { id: a.refund!.id } });
    await expectRpcError(refund(paid.id, 2_000n, key), Code.ALREADY_EXISTS, 'idempotency_key');
    await settledReturn(a.refund);
    expect((await original(paid.id)).payment!.refundedAmount).toBe(1_000n);
    // A refused request leaves its key free for the corrected one.
    const other = randomUUID();
    await expectRpcError(refund(paid.id, 4_001n, other), Code.FAILED_PRECONDITION, 'amount', 'REFUND_EXCEEDS_PAYMENT');
    expect((await refund(paid.id, 4_000n, other)).replayed).toBe(false);
  });

  it('answers concurrent retries of one refund of the whole rest with that one refund', async () => {
    const paid = await pay(payers[2]!, neighbours[0]!, 2_000n);
    const key = randomUUID();
    // Each retry that loses the race finds the rest already taken by its own refund: a replay.
    const answers = await Promise.all(Array.from({ length: 8 }, () => refund(paid.id, 2_000n, key)));
    expect(new Set(answers.map((a) => a.refund!.id)).size).toBe(1);
    expect(answers.filter((a) => !a.replayed)).toHaveLength(1);
    await settledReturn(answers[0]!.refund);
    expect((await original(paid.id)).payment).toMatchObject({
      status: S.PAYMENT_STATUS_REFUNDED,
      refundedAmount: 2_000n,
    });
  });

  it('reverses what is left of a payment (bank only), ending it REVERSED', async () => {
    const [payer, payee] = [payers[3]!, payees[3]!];
    const paid = await pay(payer, payee, 5_000n);
    await settledReturn((await refund(paid.id, 1_000n)).refund);
    await expectRpcError(
      t.client.reversePayment({ paymentId: paid.id, idempotencyKey: randomUUID(), reference: 'fraud' }),
      Code.PERMISSION_DENIED,
    );
    await expectRpcError(
      admin.reversePayment({ paymentId: paid.id, idempotencyKey: randomUUID(), reference: '' }),
      Code.INVALID_ARGUMENT,
      'reference',
    );
    const { reversal } = await admin.reversePayment({
      paymentId: paid.id,
      idempotencyKey: randomUUID(),
      reference: 'merchant fraud finding',
    });
    expect(reversal).toMatchObject({ kind: K.PAYMENT_KIND_REVERSAL, amount: 4_000n });
    expect((await settledReturn(reversal)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect((await original(paid.id)).payment).toMatchObject({
      status: S.PAYMENT_STATUS_REVERSED,
      refundedAmount: 5_000n,
    });
    const b = await balances(t.bank, payer.id);
    expect(b.creditsPosted - b.debitsPosted).toBe(20_000n);
    await expectRpcError(
      admin.reversePayment({ paymentId: paid.id, idempotencyKey: randomUUID(), reference: 'again' }),
      Code.FAILED_PRECONDITION,
      undefined,
      'PAYMENT_NOT_REFUNDABLE',
    );
  });

  it('refuses to refund a payment that did not complete, and a refund the payee cannot fund fails alone', async () => {
    const { payment } = await t.client.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: payers[4]!.id,
      payeeAccountId: payees[4]!.id,
      amount: 1_000_000n,
      currency: 'EUR',
      reference: '',
    });
    const rejected = await settled(t.client, payment!.id);
    expect(rejected.status).toBe(S.PAYMENT_STATUS_REJECTED);
    await expectRpcError(refund(rejected.id, 1n), Code.FAILED_PRECONDITION, undefined, 'PAYMENT_NOT_REFUNDABLE');

    // The payee spent the money: the refund is rejected by the ledger, and no longer counts.
    const paid = await pay(payers[4]!, payees[4]!, 2_000n);
    const spend = await t.client.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: payees[4]!.id,
      payeeAccountId: payers[4]!.id,
      amount: 2_000n,
      currency: 'EUR',
      reference: 'spent',
    });
    await settled(t.client, spend.payment!.id);
    const failed = await settledReturn((await refund(paid.id, 2_000n)).refund);
    expect(failed).toMatchObject({ status: S.PAYMENT_STATUS_REJECTED, reason: 'TRANSFER_RESULT_CODE_EXCEEDS_CREDITS' });
    expect((await original(paid.id)).payment).toMatchObject({ status: S.PAYMENT_STATUS_COMPLETED, refundedAmount: 0n });
    // What the rejected refund asked for is still refundable.
    expect((await refund(paid.id, 0n)).refund!.amount).toBe(2_000n);
  });

  it('keeps the ledger balanced', async () => {
    const inv = await t.bank.client.checkLedgerInvariant({});
    expect(inv.ok).toBe(true);
  });
});
