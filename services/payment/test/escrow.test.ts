// Escrow (guaranteed trade) on real services, 3 shards: the buyer's funds are held until the buyer
// confirms (the seller is paid), the auto-release time passes (also across a restart of the
// payment service: the timer is the order's row), the seller cancels, or the bank decides a
// dispute. Every path ends with the money where it belongs and nothing left pending.
import { randomUUID } from 'node:crypto';
import { bucketedId, toTimestamp } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import {
  DisputeResolution,
  PaymentKind as K,
  PaymentStatus as S,
  PaymentStep as P,
  PendingDecision,
} from '@corebank/kit/gen/corebank/v1/payment';
import { status as Code } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError } from '../../account/test/helpers.js';
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

describe('escrow payments (3 shards)', () => {
  let t: TestPayments;
  let admin: PaymentClient;
  let buyers: Account[];
  let sellers: Account[];
  let local: Account[];
  beforeAll(async () => {
    t = await startPayments(3, { ...NO_RISK_RULES, SAGA_SWEEP_INTERVAL_MS: '100' });
    admin = t.clientWith(await t.token(ADMIN_SCOPES));
    buyers = await accountsOn(t.bank, 0, 6, 10_000n);
    sellers = await accountsOn(t.bank, 1, 6, 0n);
    local = await accountsOn(t.bank, 0, 1, 0n);
  });
  afterAll(async () => {
    await t?.stop();
  });

  const inMs = (ms: number) => toTimestamp(new Date(Date.now() + ms));
  const escrow = (buyer: Account, seller: Account, amount: bigint, releaseInMs = 3_600_000) =>
    t.client.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: buyer.id,
      payeeAccountId: seller.id,
      amount,
      currency: 'EUR',
      reference: 'order 42',
      escrow: { autoReleaseAt: inMs(releaseInMs) },
    });
  const as = async (account: Account) => t.clientWith(await t.token(PAYMENT_SCOPES, account.ownerId));
  const money = async (a: Account) => {
    const b = await balances(t.bank, a.id);
    return { pending: b.debitsPending, debited: b.debitsPosted, credited: b.creditsPosted };
  };

  it('holds the buyer funds and pays the seller when the buyer confirms', async () => {
    const [buyer, seller] = [buyers[0]!, sellers[0]!];
    const { payment } = await escrow(buyer, seller, 2_500n);
    expect(payment).toMatchObject({ kind: K.PAYMENT_KIND_ESCROW, status: S.PAYMENT_STATUS_HELD });
    expect(payment!.step).toBe(P.PAYMENT_STEP_AWAIT_RELEASE);
    expect(await money(buyer)).toEqual({ pending: 2_500n, debited: 0n, credited: 10_000n });
    expect((await money(seller)).credited).toBe(0n);

    // Only the buyer confirms.
    const seller_ = await as(seller);
    await expectRpcError(seller_.confirmEscrow({ paymentId: payment!.id }), Code.PERMISSION_DENIED);
    const buyer_ = await as(buyer);
    const confirmed = await buyer_.confirmEscrow({ paymentId: payment!.id });
    expect(confirmed.changed).toBe(true);
    const done = await settled(t.client, payment!.id);
    expect(done.status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect(await money(buyer)).toEqual({ pending: 0n, debited: 2_500n, credited: 10_000n });
    expect((await money(seller)).credited).toBe(2_500n);
    // A retried confirm changes nothing; a cancel after the release is refused.
    expect((await buyer_.confirmEscrow({ paymentId: payment!.id })).changed).toBe(false);
    await expectRpcError(
      t.client.cancelEscrow({ paymentId: payment!.id, note: '' }),
      Code.FAILED_PRECONDITION,
      undefined,
      'ESCROW_NOT_CANCELLABLE',
    );
    expect(await eventNamesOf(t, payment!.id)).toEqual([
      'payment_accepted',
      'payment_held',
      'payment_escrow_released',
      'payment_credited',
      'payment_completed',
    ]);
  });

  it('works on one shard too: the hold goes through that shard in-transit account', async () => {
    const { payment } = await escrow(buyers[1]!, local[0]!, 1_000n);
    expect(payment!.status).toBe(S.PAYMENT_STATUS_HELD);
    await t.client.confirmEscrow({ paymentId: payment!.id });
    expect((await settled(t.client, payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect((await money(local[0]!)).credited).toBe(1_000n);
  });

  it('releases automatically at the auto-release time, also when the service was down then', async () => {
    const [buyer, seller] = [buyers[2]!, sellers[2]!];
    const request = {
      idempotencyKey: randomUUID(),
      payerAccountId: buyer.id,
      payeeAccountId: seller.id,
      amount: 700n,
      currency: 'EUR',
      reference: 'order 43',
      escrow: { autoReleaseAt: inMs(1_500) },
    };
    const { payment } = await t.client.createPayment(request);
    // The payment service is down when the timer is due; the restarted one releases it.
    await t.restart(() => new Promise((r) => setTimeout(r, 2_000)));
    const done = await settled(t.client, payment!.id, 20_000);
    expect(done).toMatchObject({ status: S.PAYMENT_STATUS_COMPLETED, reason: 'AUTO_RELEASED' });
    // The channel's retry of the same request, after its release time, replays the order.
    expect(await t.client.createPayment(request)).toMatchObject({ replayed: true, payment: { id: payment!.id } });
    expect((await money(seller)).credited).toBe(700n);
    expect(await money(buyer)).toEqual({ pending: 0n, debited: 700n, credited: 10_000n });
  });

  it('gives the buyer the money back when the seller cancels', async () => {
    const [buyer, seller] = [buyers[3]!, sellers[3]!];
    const { payment } = await escrow(buyer, seller, 4_000n);
    // The buyer cannot cancel a guaranteed trade on its own.
    await expectRpcError(
      (await as(buyer)).cancelEscrow({ paymentId: payment!.id, note: 'changed my mind' }),
      Code.PERMISSION_DENIED,
    );
    const cancelled = await (await as(seller)).cancelEscrow({ paymentId: payment!.id, note: 'out of stock' });
    expect(cancelled.changed).toBe(true);
    const done = await settled(t.client, payment!.id);
    expect(done).toMatchObject({
      status: S.PAYMENT_STATUS_CANCELLED,
      reason: 'ESCROW_CANCELLED',
      note: 'out of stock',
    });
    expect(await money(buyer)).toEqual({ pending: 0n, debited: 0n, credited: 10_000n });
    expect((await money(seller)).credited).toBe(0n);
    expect((await t.client.cancelEscrow({ paymentId: payment!.id, note: '' })).changed).toBe(false);
    await expectRpcError(
      t.client.confirmEscrow({ paymentId: payment!.id }),
      Code.FAILED_PRECONDITION,
      undefined,
      'ESCROW_NOT_HELD',
    );
  });

  it('stops the timer on a dispute; an upheld dispute refunds the buyer, a rejected one pays the seller', async () => {
    const [b1, s1, b2, s2] = [buyers[4]!, sellers[4]!, buyers[5]!, sellers[5]!];
    const first = (await escrow(b1, s1, 3_000n, 1_500)).payment!;
    const second = (await escrow(b2, s2, 2_000n, 1_500)).payment!;
    const buyer1 = await as(b1);
    await expectRpcError(buyer1.openDispute({ paymentId: first.id, note: '' }), Code.INVALID_ARGUMENT, 'note');
    expect((await buyer1.openDispute({ paymentId: first.id, note: 'never arrived' })).payment!.status).toBe(
      S.PAYMENT_STATUS_DISPUTED,
    );
    expect((await buyer1.openDispute({ paymentId: first.id, note: 'never arrived' })).changed).toBe(false);
    await (await as(b2)).openDispute({ paymentId: second.id, note: 'damaged' });
    // The auto-release time passes: disputed funds stay held.
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await t.client.getPayment({ paymentId: first.id })).payment).toMatchObject({
      status: S.PAYMENT_STATUS_DISPUTED,
      step: P.PAYMENT_STEP_AWAIT_DISPUTE_DECISION,
    });
    expect((await money(b1)).pending).toBe(3_000n);
    // The dispute desk's queue holds both, the older first.
    const queue = await admin.listPendingDecisions({ decision: PendingDecision.PENDING_DECISION_DISPUTE });
    expect(queue.payments.map((p) => p.id).filter((id) => id === first.id || id === second.id)).toEqual([
      first.id,
      second.id,
    ]);

    // Only the bank decides.
    await expectRpcError(
      t.client.resolveDispute({
        paymentId: first.id,
        resolution: DisputeResolution.DISPUTE_RESOLUTION_REFUND_BUYER,
        note: '',
      }),
      Code.PERMISSION_DENIED,
    );
    await admin.resolveDispute({
      paymentId: first.id,
      resolution: DisputeResolution.DISPUTE_RESOLUTION_REFUND_BUYER,
      note: 'carrier lost it',
    });
    await admin.resolveDispute({
      paymentId: second.id,
      resolution: DisputeResolution.DISPUTE_RESOLUTION_PAY_SELLER,
      note: 'photos show it intact',
    });
    expect(await settled(t.client, first.id)).toMatchObject({
      status: S.PAYMENT_STATUS_CANCELLED,
      reason: 'DISPUTE_UPHELD',
    });
    expect(await settled(t.client, second.id)).toMatchObject({
      status: S.PAYMENT_STATUS_COMPLETED,
      reason: 'DISPUTE_REJECTED',
    });
    expect(await money(b1)).toEqual({ pending: 0n, debited: 0n, credited: 10_000n });
    expect((await money(s1)).credited).toBe(0n);
    expect((await money(s2)).credited).toBe(2_000n);
    expect(
      (
        await admin.resolveDispute({
          paymentId: first.id,
          resolution: DisputeResolution.DISPUTE_RESOLUTION_REFUND_BUYER,
          note: '',
        })
      ).changed,
    ).toBe(false);
    await expectRpcError(
      admin.resolveDispute({
        paymentId: first.id,
        resolution: DisputeResolution.DISPUTE_RESOLUTION_PAY_SELLER,
        note: '',
      }),
      Code.FAILED_PRECONDITION,
      undefined,
      'NOT_DISPUTED',
    );
  });

  it('refuses bad escrow terms and escrow actions on ordinary payments, writing nothing', async () => {
    const req = {
      idempotencyKey: randomUUID(),
      payerAccountId: buyers[0]!.id,
      payeeAccountId: sellers[0]!.id,
      amount: 10n,
      currency: 'EUR',
      reference: '',
    };
    await expectRpcError(
      t.client.createPayment({ ...req, escrow: { autoReleaseAt: inMs(-1_000) } }),
      Code.INVALID_ARGUMENT,
      'escrow.auto_release_at',
    );
    await expectRpcError(
      t.client.createPayment({ ...req, escrow: {} }),
      Code.INVALID_ARGUMENT,
      'escrow.auto_release_at',
    );
    await expectRpcError(
      t.client.confirmEscrow({ paymentId: bucketedId(0, 'missing', randomUUID()) }),
      Code.NOT_FOUND,
      'payment_id',
    );
    const plain = (await t.client.createPayment(req)).payment!;
    await expectRpcError(
      t.client.confirmEscrow({ paymentId: plain.id }),
      Code.FAILED_PRECONDITION,
      undefined,
      'NOT_AN_ESCROW_PAYMENT',
    );
  });

  it('keeps the ledger balanced with nothing left in transit', async () => {
    const inv = await t.bank.client.checkLedgerInvariant({});
    expect(inv.ok).toBe(true);
  });
});
