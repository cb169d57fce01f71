// Who may do what, through the real services: every bad token is UNAUTHENTICATED with its own
// reason; the payment service's identity holds only what services/kit/src/identities.ts gives it
// (never ledger:admin, whatever a compromised pod mints with its key); a customer-bound channel
// cannot reach another customer's money through the payment service, and the binding travels on
// to the ledger, which enforces it too.
import { randomUUID } from 'node:crypto';
import {
  audienceOf,
  errorDetails,
  generateSigningKey,
  KeyStore,
  mintToken,
  parseJwks,
  serviceClient,
  signingKey,
  TokenVerifier,
  type MintOptions,
} from '@corebank/kit';
import { AccountServiceClient, TransferResultCode as R, type Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentStatus as S } from '@corebank/kit/gen/corebank/v1/payment';
import { promisify, testAuth, testToken, type TestAuth } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { status as Code, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, cashAccount, expectRpcError, transfer } from '../../account/test/helpers.js';
import {
  depositAccount,
  NO_RISK_RULES,
  publishedDeposit,
  startPayments,
  verifiedCustomer,
  type TestPayments,
} from './harness.js';

const MOBILE = ['payments:read', 'payments:write'];

describe('identity: tokens, service identities and customer bindings (2 shards)', () => {
  let t: TestPayments;
  let auth: TestAuth;
  let alice: { id: string; account: Account };
  let bob: { id: string; account: Account };
  /** A mobile-banking token bound to a customer, meant for the payment service only. */
  const mobile = (customerId: string, o: Partial<MintOptions> = {}) =>
    testToken(MOBILE, customerId, { channel: 'mobile', audience: audienceOf('payment'), ...o });
  /** What the payment service's key can sign: what a compromised payment pod could mint. */
  const asPayment = async (o: Partial<MintOptions>) =>
    mintToken(await auth.serviceKey('payment'), {
      channel: 'payment',
      audience: audienceOf('account'),
      scopes: ['accounts:read'],
      ...o,
    });
  const ledgerWith = (token: string) => {
    const c = promisify(new AccountServiceClient(t.bank.address, grpc.credentials.createInsecure()), token);
    closers.push(() => c.close());
    return c;
  };
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    auth = await testAuth();
    t = await startPayments(2, NO_RISK_RULES);
    const product = await publishedDeposit(t, {});
    for (const who of ['alice', 'bob'] as const) {
      const c = await verifiedCustomer(t);
      const account = await depositAccount(t, c.id, product.productId, 10_000n);
      if (who === 'alice') alice = { id: c.id, account };
      else bob = { id: c.id, account };
    }
  });
  afterAll(async () => {
    closers.forEach((c) => c());
    await t?.stop();
  });

  it('refuses every bad token with UNAUTHENTICATED and its own reason', async () => {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = { sub: 'mobile', iss: 'corebank', aud: audienceOf('payment'), iat: now, exp: now + 300 };
    const good = await mobile(alice.id);
    const [h, , sig] = good.split('.');
    // A key pair of the issuer's kind, not in the JWKS.
    const impostor = await signingKey((await generateSigningKey('test-issuer')).privateJwk);
    const signed = (kid: string) =>
      mintToken({ ...impostor, kid }, { channel: 'mobile', scopes: MOBILE, audience: audienceOf('payment') });
    const cases: [string, string, string][] = [
      ['missing', '', 'MISSING_TOKEN'],
      ['malformed', 'not.a.jwt', 'MALFORMED_TOKEN'],
      ['expired', await mobile(alice.id, { issuedAt: now - 7200, ttlSeconds: 900 }), 'TOKEN_EXPIRED'],
      ['not yet valid', await mobile(alice.id, { notBefore: now + 3600 }), 'TOKEN_NOT_YET_VALID'],
      ['wrong audience', await mobile(alice.id, { audience: audienceOf('account') }), 'WRONG_AUDIENCE'],
      ['wrong issuer', await mobile(alice.id, { issuer: 'someone-else' }), 'WRONG_ISSUER'],
      ['unknown kid', await signed('issuer-unknown'), 'UNKNOWN_KEY'],
      ['alg none', `${b64({ alg: 'none', kid: 'test-issuer' })}.${b64(claims)}.`, 'ALGORITHM_NOT_ALLOWED'],
      ['alg HS256', `${b64({ alg: 'HS256', kid: 'test-issuer' })}.${b64(claims)}.${sig}`, 'ALGORITHM_NOT_ALLOWED'],
      ['bad signature', `${h}.${b64({ ...claims, customer_id: bob.id })}.${sig}`, 'BAD_SIGNATURE'],
      ['signed by an impostor with our kid', await signed('test-issuer'), 'BAD_SIGNATURE'],
    ];
    const reasons: string[] = [];
    for (const [what, token, reason] of cases) {
      const err = await expectRpcError(
        t.clientWith(token).listPayments({ customerId: alice.id }),
        Code.UNAUTHENTICATED,
      );
      expect(errorDetails(err).reason, what).toBe(reason);
      reasons.push(reason);
    }
    // The valid token works, and the reasons are the nine distinct kinds the issue names (and MISSING_TOKEN, MALFORMED_TOKEN).
    await t.clientWith(good).listPayments({ customerId: alice.id });
    expect(new Set(reasons).size).toBe(9);
  });

  it('gives the payment service no ledger:admin: its identity and anything its key can mint are PERMISSION_DENIED', async () => {
    const own = serviceClient(AccountServiceClient, t.bank.address, await auth.identity('payment'), 'account');
    closers.push(() => own.close());
    // What it needs works...
    expect((await own.getAccount({ accountId: alice.account.id })).account!.id).toBe(alice.account.id);
    // ...CheckLedgerInvariant does not: its tokens do not carry ledger:admin.
    await expectRpcError(own.checkLedgerInvariant({}), Code.PERMISSION_DENIED, undefined, 'MISSING_SCOPE');
    // A compromised payment pod signing ledger:admin for itself with its own key.
    await expectRpcError(
      ledgerWith(await asPayment({ scopes: ['ledger:admin'] })).checkLedgerInvariant({}),
      Code.PERMISSION_DENIED,
      undefined,
      'SERVICE_SCOPE_NOT_ALLOWED',
    );
    // ...or pretending to be another service, or a customer's channel.
    for (const o of [{ channel: 'customer' }, { customerId: bob.id }]) {
      await expectRpcError(
        ledgerWith(await asPayment(o)).getAccount({ accountId: bob.account.id }),
        Code.UNAUTHENTICATED,
        undefined,
        'SERVICE_IDENTITY_MISMATCH',
      );
    }
    // The customer service may freeze accounts (accounts:admin), the payment service may not.
    await expectRpcError(
      ledgerWith(await asPayment({ scopes: ['accounts:admin'] })).setOwnerDebitsBlocked({
        ownerId: bob.id,
        blocked: true,
      }),
      Code.PERMISSION_DENIED,
      undefined,
      'SERVICE_SCOPE_NOT_ALLOWED',
    );
  });

  it('refuses a customer-bound mobile token paying from another customer\u2019s account, and moves nothing', async () => {
    const before = (await balances(t.bank, bob.account.id)).creditsPosted;
    const aliceClient = t.clientWith(await mobile(alice.id));
    const err = await expectRpcError(
      aliceClient.createPayment({
        idempotencyKey: randomUUID(),
        payerAccountId: bob.account.id,
        payeeAccountId: alice.account.id,
        amount: 100n,
        currency: 'EUR',
        reference: 'not mine',
      }),
      Code.PERMISSION_DENIED,
      undefined,
      'CUSTOMER_MISMATCH',
    );
    expect((err as ServiceError).details).not.toContain(bob.id);
    expect((await balances(t.bank, bob.account.id)).creditsPosted).toBe(before);
    // Alice pays from her own account: the binding travels to the ledger, which accepts it.
    const { payment } = await aliceClient.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: alice.account.id,
      payeeAccountId: bob.account.id,
      amount: 100n,
      currency: 'EUR',
      reference: 'mine',
    });
    expect([S.PAYMENT_STATUS_COMPLETED, S.PAYMENT_STATUS_HELD]).toContain(payment!.status);
    // Alice may not refund it: the money would come from bob's account.
    await expectRpcError(
      aliceClient.refundPayment({ paymentId: payment!.id, idempotencyKey: randomUUID(), amount: 0n, reference: '' }),
      Code.PERMISSION_DENIED,
      undefined,
      'CUSTOMER_MISMATCH',
    );
  });

  it('binds the payment service\u2019s own calls to the forwarded customer at the ledger', async () => {
    const aliceToken = await mobile(alice.id);
    // The payment service's client, as it calls for alice: serviceClient forwards her token.
    const own = serviceClient(AccountServiceClient, t.bank.address, await auth.identity('payment'), 'account');
    closers.push(() => own.close());
    const verifier = new TokenVerifier({
      keys: await KeyStore.create({ keys: parseJwks(auth.jwks) }),
      service: 'payment',
    });
    const alicePrincipal = await verifier.authenticate(`Bearer ${aliceToken}`);
    expect(alicePrincipal.customerId).toBe(alice.id);
    // Alice's own account: fine. Bob's: the ledger itself says no.
    await own.getAccount({ accountId: alice.account.id }, { onBehalfOf: alicePrincipal });
    await expectRpcError(
      own.getAccount({ accountId: bob.account.id }, { onBehalfOf: alicePrincipal }),
      Code.PERMISSION_DENIED,
      undefined,
      'CUSTOMER_MISMATCH',
    );
    const cash = await cashAccount(t.bank, bob.account.shard);
    const res = await own.createTransfers(
      { transfers: [transfer({ debitAccountId: bob.account.id, creditAccountId: cash.id, amount: 1n })] },
      { onBehalfOf: alicePrincipal },
    );
    expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_OWNED);
    // Without a binding the same identity may read bob's account (the payee of a payment, say).
    expect((await own.getAccount({ accountId: bob.account.id })).account!.ownerId).toBe(bob.id);
    // A channel token cannot pose as a forwarding service.
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${await testToken(['accounts:read'])}`);
    md.set('corebank-on-behalf-of', aliceToken);
    const raw = new AccountServiceClient(t.bank.address, grpc.credentials.createInsecure());
    closers.push(() => raw.close());
    const err = await new Promise<ServiceError>((resolve) =>
      raw.getAccount({ accountId: alice.account.id }, md, (e) => resolve(e!)),
    );
    expect(err.code).toBe(Code.UNAUTHENTICATED);
    expect(errorDetails(err).reason).toBe('ON_BEHALF_OF_NOT_ALLOWED');
  });
});
