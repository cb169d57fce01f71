// Payments through the real services: same shard, cross shard, idempotency, refusals, a payee
// that does not exist (the hold is voided and the payer gets the money back), events, listing.
import { randomUUID } from 'node:crypto';
import { bucketedId, errorDetails, grpcRequests } from '@corebank/kit';
import { PendingStatus, type Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentChanged } from '@corebank/kit/gen/corebank/v1/events';
import {
  PaymentRoute,
  PaymentStatus as S,
  PaymentStep as P,
  type CreatePaymentRequest,
} from '@corebank/kit/gen/corebank/v1/payment';
import { status as Code, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances } from '../../account/test/helpers.js';
import { Ledger, transferIds } from '../src/clients/ledger.js';
import { accountsOn, NO_RISK_RULES, relayed, settled, startPayments, type TestPayments } from './harness.js';

async function rpcError(p: Promise<unknown>): Promise<ServiceError> {
  return (await p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  )) as ServiceError;
}

describe('payment service (3 shards)', () => {
  let t: TestPayments;
  let a0: Account[];
  let a1: Account[];
  beforeAll(async () => {
    // The payment mechanics: risk.test.ts covers the rules that would hold the large amounts here.
    t = await startPayments(3, NO_RISK_RULES);
    a0 = await accountsOn(t.bank, 0, 4, 10_000n);
    a1 = await accountsOn(t.bank, 1, 2, 10_000n);
  });
  afterAll(async () => {
    await t?.stop();
  });

  const req = (payer: Account, payee: Account | string, amount: bigint, key = randomUUID()): CreatePaymentRequest => ({
    idempotencyKey: key,
    payerAccountId: payer.id,
    payeeAccountId: typeof payee === 'string' ? payee : payee.id,
    amount,
    currency: 'EUR',
    reference: 'test',
  });

  it('books a same-shard payment as one transfer and completes it in the call', async () => {
    const [payer, payee] = [a0[0]!, a0[1]!];
    const { payment, replayed } = await t.client.createPayment(req(payer, payee, 1_500n));
    expect(replayed).toBe(false);
    expect(payment!.route).toBe(PaymentRoute.PAYMENT_ROUTE_SAME_SHARD);
    expect(payment!.status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect(payment!.step).toBe(P.PAYMENT_STEP_DONE);
    expect((await balances(t.bank, payer.id)).debitsPosted).toBe(1_500n);
    expect((await balances(t.bank, payee.id)).creditsPosted).toBe(11_500n);
    const tr = await t.bank.client.getTransfer({ transferId: transferIds(payment!.id).transfer });
    expect(tr.transfer!.amount).toBe(1_500n);
  });

  it('rejects a same-shard payment the payer cannot fund, with the ledger code as reason', async () => {
    const { payment } = await t.client.createPayment(req(a0[2]!, a0[3]!, 1_000_000n));
    expect(payment!.status).toBe(S.PAYMENT_STATUS_REJECTED);
    expect(payment!.reason).toBe('TRANSFER_RESULT_CODE_EXCEEDS_CREDITS');
  });

  it('runs a cross-shard payment through hold, credit and post', async () => {
    const [payer, payee] = [a0[2]!, a1[0]!];
    const created = await t.client.createPayment(req(payer, payee, 2_000n));
    expect(created.payment!.route).toBe(PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD);
    expect([S.PAYMENT_STATUS_HELD, S.PAYMENT_STATUS_COMPLETED]).toContain(created.payment!.status);
    const p = await settled(t.client, created.payment!.id);
    expect(p.status).toBe(S.PAYMENT_STATUS_COMPLETED);
    const payerAfter = await balances(t.bank, payer.id);
    expect([payerAfter.debitsPosted, payerAfter.debitsPending]).toEqual([2_000n, 0n]);
    expect((await balances(t.bank, payee.id)).creditsPosted).toBe(12_000n);
    const hold = await t.bank.client.getTransfer({ transferId: transferIds(p.id).hold });
    expect(hold.pendingStatus).toBe(PendingStatus.PENDING_STATUS_POSTED);
  });

  it('rejects a cross-shard payment the payer cannot fund at the hold', async () => {
    const { payment } = await t.client.createPayment(req(a0[3]!, a1[1]!, 50_000n));
    expect(payment!.status).toBe(S.PAYMENT_STATUS_REJECTED);
    expect(payment!.reason).toBe('TRANSFER_RESULT_CODE_EXCEEDS_CREDITS');
    expect((await balances(t.bank, a0[3]!.id)).debitsPending).toBe(0n);
  });

  it('voids the hold and rejects the order when the payee does not exist; the payer gets the money back', async () => {
    const payer = a0[3]!;
    const before = await balances(t.bank, payer.id);
    const ghost = bucketedId(t.bank.app.router.map.firstBucketOf(2), 'no-such-account', randomUUID());
    const created = await t.client.createPayment(req(payer, ghost, 700n));
    const p = await settled(t.client, created.payment!.id);
    expect(p.status).toBe(S.PAYMENT_STATUS_REJECTED);
    expect(p.reason).toBe('TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_NOT_FOUND');
    const hold = await t.bank.client.getTransfer({ transferId: transferIds(p.id).hold });
    expect(hold.pendingStatus).toBe(PendingStatus.PENDING_STATUS_VOIDED);
    const after = await balances(t.bank, payer.id);
    expect([after.debitsPosted, after.debitsPending]).toEqual([before.debitsPosted, 0n]);
  });

  it('is idempotent by the channel key: same body replays, another body is ALREADY_EXISTS', async () => {
    const key = randomUUID();
    const first = await t.client.createPayment(req(a0[0]!, a1[0]!, 10n, key));
    const again = await t.client.createPayment(req(a0[0]!, a1[0]!, 10n, key));
    expect(again.replayed).toBe(true);
    expect(again.payment!.id).toBe(first.payment!.id);
    const err = await rpcError(t.client.createPayment(req(a0[0]!, a1[0]!, 11n, key)));
    expect(err.code).toBe(Code.ALREADY_EXISTS);
    expect(errorDetails(err).reason).toBe('PAYMENT_EXISTS_WITH_DIFFERENT_BODY');
    await settled(t.client, first.payment!.id);
    // Another channel with the same key is another order.
    const other = t.clientWith(await t.token(undefined, undefined));
    expect((await other.createPayment(req(a0[0]!, a1[0]!, 10n, key))).replayed).toBe(true);
    const payee = await balances(t.bank, a1[0]!.id);
    expect(payee.creditsPosted).toBe(12_010n);
  });

  it('answers concurrent retries of one request with one order', async () => {
    const key = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => t.client.createPayment(req(a0[1]!, a1[1]!, 7n, key))),
    );
    expect(new Set(answers.map((a) => a.payment!.id)).size).toBe(1);
    expect(answers.filter((a) => !a.replayed)).toHaveLength(1);
    expect((await settled(t.client, answers[0]!.payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
  });

  it('refuses a key used before with a payer on another shard, writing nothing there', async () => {
    const key = randomUUID();
    const first = await t.client.createPayment(req(a0[0]!, a1[0]!, 10n, key));
    await settled(t.client, first.payment!.id);
    const onShard1 = async () =>
      Number(((await t.app.router.shards[1]!.db('payments').count('* as n'))[0] as unknown as { n: bigint }).n);
    const before = await onShard1();
    // The same key, the payer now on shard 1: its order would live on shard 1.
    const err = await rpcError(t.client.createPayment(req(a1[0]!, a0[0]!, 10n, key)));
    expect(err.code).toBe(Code.ALREADY_EXISTS);
    expect(errorDetails(err)).toMatchObject({
      reason: 'PAYMENT_EXISTS_WITH_DIFFERENT_BODY',
      metadata: { payment_id: first.payment!.id },
    });
    expect(await onShard1()).toBe(before);
  });

  it('leaves the key of a refused request free for the corrected request', async () => {
    const key = randomUUID();
    const missing = bucketedId(t.app.router.map.firstBucketOf(0), 'missing', randomUUID());
    const err = await rpcError(t.client.createPayment({ ...req(a0[0]!, a1[0]!, 10n, key), payerAccountId: missing }));
    expect(err.code).toBe(Code.NOT_FOUND);
    const { payment, replayed } = await t.client.createPayment(req(a0[0]!, a1[0]!, 10n, key));
    expect(replayed).toBe(false);
    expect((await settled(t.client, payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
  });

  it('refuses bad input with field violations and writes nothing', async () => {
    const err = await rpcError(
      t.client.createPayment({
        idempotencyKey: '',
        payerAccountId: 'nope',
        payeeAccountId: '',
        amount: 0n,
        currency: 'XXX',
        reference: '',
      }),
    );
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(
      errorDetails(err)
        .violations.map((v) => v.field)
        .sort(),
    ).toEqual(['amount', 'currency', 'idempotency_key', 'payee_account_id', 'payer_account_id']);
    const wrongCurrency = await rpcError(t.client.createPayment({ ...req(a0[0]!, a1[0]!, 5n), currency: 'USD' }));
    expect(wrongCurrency.code).toBe(Code.INVALID_ARGUMENT);
    const ghostPayer = bucketedId(1, 'ghost', randomUUID());
    const noPayer = await rpcError(t.client.createPayment({ ...req(a0[0]!, a1[0]!, 5n), payerAccountId: ghostPayer }));
    expect(noPayer.code).toBe(Code.NOT_FOUND);
    expect(errorDetails(noPayer).violations[0]!.field).toBe('payer_account_id');
  });

  it('lets a customer-bound token pay only from its own accounts and see only its own payments', async () => {
    const payer = a0[1]!;
    const mine = t.clientWith(await t.token(undefined, payer.ownerId));
    const { payment } = await mine.createPayment(req(payer, a0[0]!, 1n));
    expect((await mine.getPayment({ paymentId: payment!.id })).payment!.id).toBe(payment!.id);
    expect((await rpcError(mine.createPayment(req(a0[0]!, payer, 1n)))).code).toBe(Code.PERMISSION_DENIED);
    expect((await rpcError(mine.listPayments({ customerId: a0[0]!.ownerId }))).code).toBe(Code.PERMISSION_DENIED);
  });

  it('lists a customer’s payments newest first, page by page', async () => {
    const payer = (await accountsOn(t.bank, 2, 1, 1_000n))[0]!;
    const payee = a1[0]!;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await t.client.createPayment(req(payer, payee, 1n))).payment!.id);
    const seen: string[] = [];
    let pageToken = '';
    do {
      const res = await t.client.listPayments({ customerId: payer.ownerId, page: { pageSize: 2, pageToken } });
      seen.push(...res.payments.map((p) => p.id));
      pageToken = res.page!.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual([...ids].reverse());
  });

  it('writes an event for every state change', async () => {
    const created = await t.client.createPayment(req(a0[0]!, a1[1]!, 3n));
    const p = await settled(t.client, created.payment!.id);
    const shard = t.app.router.byId(p.id)!;
    await expect
      .poll(async () => {
        const rows = (await shard.db('outbox').select('subject', 'payload', 'sent_at').orderBy('seq')) as {
          subject: string;
          payload: Buffer;
          sent_at: Date | null;
        }[];
        return rows
          .filter((r) => PaymentChanged.decode(r.payload).payment!.id === p.id)
          .map((r) => `${r.subject}${r.sent_at ? '' : ' (unsent)'}`);
      })
      .toEqual([
        'corebank.payment.payment_accepted',
        'corebank.payment.payment_held',
        'corebank.payment.payment_credited',
        'corebank.payment.payment_completed',
      ]);
  });

  it('knows a payer account from its account_opened event, and asks the ledger about one it has not seen once', async () => {
    const [payer, payee] = await accountsOn(t.bank, 2, 2, 10_000n);
    const getAccountCalls = async () =>
      (await grpcRequests.get()).values
        .filter((v) => v.labels.service === 'corebank.v1.AccountService' && v.labels.method === 'getAccount')
        .reduce((n, v) => n + v.value, 0);
    await relayed(t.bank.app.router);
    const before = await getAccountCalls();
    for (let i = 0; i < 4; i++) {
      const { payment } = await t.client.createPayment(req(payer!, payee!, 10n));
      expect(payment!.status).toBe(S.PAYMENT_STATUS_COMPLETED);
    }
    expect((await getAccountCalls()) - before).toBe(0);
    // An account whose event this process did not see (opened before it started, or the event
    // missed on a reconnect) is asked about once: its owner, currency and shard never change.
    const unwatched = new Ledger(t.app.ledger.client, 5_000);
    for (let i = 0; i < 3; i++) expect((await unwatched.account(payer!.id))?.ownerId).toBe(payer!.ownerId);
    expect((await getAccountCalls()) - before).toBe(1);
    // An account the ledger does not know is not remembered as missing: it may be opened later.
    const unknown = bucketedId(t.app.router.map.firstBucketOf(2), 'no-account-yet', randomUUID());
    for (let i = 0; i < 2; i++) {
      const e = await rpcError(t.client.createPayment(req({ ...payer!, id: unknown }, payee!, 10n)));
      expect(e.code).toBe(Code.NOT_FOUND);
    }
    expect((await getAccountCalls()) - before).toBe(3);
  });
});
