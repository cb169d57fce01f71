// Payment-service fields bounded to their columns: NUL and control characters, over-long text,
// timestamps outside the Timestamp range and foreign page tokens are INVALID_ARGUMENT naming the
// field, with a small error, and nothing is written.
import { randomUUID } from 'node:crypto';
import { encodePageToken } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { PendingDecision, type CreatePaymentRequest } from '@corebank/kit/gen/corebank/v1/payment';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError } from '../../account/test/helpers.js';
import { accountsOn, ADMIN_SCOPES, NO_RISK_RULES, startPayments, type TestPayments } from './harness.js';

const MB = 'x'.repeat(1 << 20);

describe('payment service request bounds', () => {
  let t: TestPayments;
  let payer: Account;
  let payee: Account;
  beforeAll(async () => {
    t = await startPayments(1, NO_RISK_RULES);
    const opened = await accountsOn(t.bank, 0, 2, 1_000n);
    payer = opened[0]!;
    payee = opened[1]!;
  });
  afterAll(async () => t?.stop());

  const rows = async () => {
    const db = t.app.router.shards[0]!.db;
    const n = async (table: string) =>
      Number(((await db(table).count('* as n').first()) as unknown as { n: bigint }).n);
    return { payments: await n('payments'), keys: await n('payment_keys'), risk: await n('customer_risk_state') };
  };
  const order = (o: Partial<CreatePaymentRequest> = {}): CreatePaymentRequest => ({
    idempotencyKey: randomUUID(),
    payerAccountId: payer.id,
    payeeAccountId: payee.id,
    amount: 1n,
    currency: 'EUR',
    reference: '',
    ...o,
  });

  it('CreatePayment: NUL, 1 MB text and out-of-range timestamps are INVALID_ARGUMENT and write nothing', async () => {
    const before = await rows();
    const cases: [CreatePaymentRequest, string][] = [
      [order({ reference: 'a\u0000b' }), 'reference'],
      [order({ reference: MB }), 'reference'],
      [order({ idempotencyKey: 'k\u0000' }), 'idempotency_key'],
      [order({ idempotencyKey: MB }), 'idempotency_key'],
      [order({ payerAccountId: MB }), 'payer_account_id'],
      [
        order({ escrow: { autoReleaseAt: { seconds: 9_223_372_036_854_775_807n, nanos: 0 } } }),
        'escrow.auto_release_at',
      ],
      [order({ escrow: { autoReleaseAt: { seconds: 0n, nanos: -1 } } }), 'escrow.auto_release_at'],
      [order({ geo: { sessionId: 's\u0000', latitude: 0, longitude: 0 } }), 'geo.session_id'],
    ];
    for (const [req, field] of cases) {
      const err = await expectRpcError(t.client.createPayment(req), status.INVALID_ARGUMENT, field);
      expect(err.details.length).toBeLessThan(400);
      expect(err.details).not.toContain('\u0000');
    }
    expect(await rows()).toEqual(before);
  });

  it('ListPayments and ListPendingDecisions: bad customer ids and tokens of other queries are INVALID_ARGUMENT', async () => {
    await expectRpcError(t.client.listPayments({ customerId: 'a\u0000' }), status.INVALID_ARGUMENT, 'customer_id');
    await expectRpcError(t.client.listPayments({ customerId: MB }), status.INVALID_ARGUMENT, 'customer_id');
    for (const pageToken of ['5', 'garbage', MB]) {
      await expectRpcError(
        t.client.listPayments({ customerId: payer.ownerId, page: { pageSize: 1, pageToken } }),
        status.INVALID_ARGUMENT,
        'page.page_token',
      );
    }
    const foreign = encodePageToken({ rpc: 'ListPayments', filters: [payee.ownerId] }, ['5']);
    const err = await expectRpcError(
      t.client.listPayments({ customerId: payer.ownerId, page: { pageSize: 1, pageToken: foreign } }),
      status.INVALID_ARGUMENT,
      'page.page_token',
    );
    expect(err.details).toContain('is not a token for this query');
    await t.client.createPayment(order());
    await t.client.createPayment(order());
    const first = await t.client.listPayments({ customerId: payer.ownerId, page: { pageSize: 1, pageToken: '' } });
    const next = await t.client.listPayments({
      customerId: payer.ownerId,
      page: { pageSize: 1, pageToken: first.page!.nextPageToken },
    });
    expect(next.payments[0]!.id).not.toBe(first.payments[0]!.id);

    const admin = t.clientWith(await t.token(ADMIN_SCOPES));
    const review = encodePageToken({ rpc: 'ListPendingDecisions', filters: [0] }, ['1', randomUUID()]);
    await expectRpcError(
      admin.listPendingDecisions({
        decision: PendingDecision.PENDING_DECISION_DISPUTE,
        page: { pageSize: 1, pageToken: review },
      }),
      status.INVALID_ARGUMENT,
      'page.page_token',
    );
    await expectRpcError(
      admin.listPendingDecisions({ decision: -1 as PendingDecision }),
      status.INVALID_ARGUMENT,
      'decision',
    );
  });

  it('decisions: a note holding NUL is INVALID_ARGUMENT', async () => {
    const id = randomUUID().slice(0, -4) + '0001';
    await expectRpcError(t.client.cancelEscrow({ paymentId: id, note: 'n\u0000' }), status.INVALID_ARGUMENT, 'note');
    await expectRpcError(t.client.openDispute({ paymentId: id, note: MB }), status.INVALID_ARGUMENT, 'note');
  });
});
