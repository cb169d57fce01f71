// The real-time risk rules: each rule on its own (pure), then on real services with 3 shards:
// the tier threshold, velocity by count (exact under concurrency) and by amount, a first payment
// to a new payee, impossible travel, and the review that releases or rejects a held order.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import {
  PaymentStatus as S,
  PaymentStep as P,
  ReviewDecision,
  RiskAction,
  RiskRule,
  PendingDecision,
  type RequestGeo,
} from '@corebank/kit/gen/corebank/v1/payment';
import { registry } from '@corebank/kit';
import { testAuth } from '@corebank/kit/testing';
import { status as Code } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError, fund } from '../../account/test/helpers.js';
import { loadPaymentConfig } from '../src/config.js';
import { distanceKm, evaluateRisk, tierMatters, type RiskFacts } from '../src/risk.js';
import {
  accountsOn,
  ADMIN_SCOPES,
  depositAccount,
  eventNamesOf,
  publishedDeposit,
  settled,
  startPayments,
  verifiedCustomer,
  type PaymentClient,
  type TestPayments,
  relayed,
} from './harness.js';

const BERLIN = { latitude: 52.52, longitude: 13.405 };
const NEW_YORK = { latitude: 40.7128, longitude: -74.006 };
const POTSDAM = { latitude: 52.3906, longitude: 13.0645 };

const RULES = {
  RISK_TIER_THRESHOLDS: 'LOW=50000,MEDIUM=20000,HIGH=8000',
  RISK_VELOCITY_WINDOW_SECONDS: '3600',
  RISK_VELOCITY_MAX_PAYMENTS: '8',
  RISK_VELOCITY_MAX_AMOUNT: '20000',
  RISK_NEW_PAYEE_THRESHOLD: '3000',
  RISK_TRAVEL_MAX_KMH: '900',
  RISK_ACTIONS: 'AMOUNT_OVER_TIER_THRESHOLD=REVIEW,VELOCITY=REJECT,NEW_PAYEE=REVIEW,IMPOSSIBLE_TRAVEL=REVIEW',
};

const auth = await testAuth();

describe('risk rules (pure)', () => {
  const config = loadPaymentConfig({
    SHARD_COUNT: '1',
    SHARD_0_DATABASE_URL: 'postgres://x@localhost/x',
    NATS_URL: 'nats://localhost:4222',
    ...auth.env('payment'),
    ACCOUNT_SERVICE_ADDRESS: 'localhost:1',
    CUSTOMER_SERVICE_ADDRESS: 'localhost:2',
    PRODUCT_SERVICE_ADDRESS: 'localhost:3',
    ...RULES,
  });
  const now = new Date('2026-11-22T12:00:00Z');
  const quiet: RiskFacts = { amount: 100n, tier: 'MEDIUM', recentCount: 0, recentAmount: 0n, knownPayee: true };
  const rules = (f: Partial<RiskFacts>) => evaluateRisk({ ...quiet, ...f }, config, now).map((x) => x.reason);

  it('fires nothing for an ordinary payment', () => {
    expect(rules({})).toEqual([]);
  });

  it('compares the amount with the threshold of the payer risk tier', () => {
    // (20,001 also passes the velocity amount of 20,000: both fire.)
    expect(rules({ amount: 20_000n })).toEqual([]);
    expect(rules({ amount: 20_001n })).toContain('RISK_AMOUNT_OVER_TIER_THRESHOLD');
    expect(rules({ amount: 20_001n, tier: 'LOW' })).not.toContain('RISK_AMOUNT_OVER_TIER_THRESHOLD');
    expect(rules({ amount: 8_001n, tier: 'HIGH' })).toEqual(['RISK_AMOUNT_OVER_TIER_THRESHOLD']);
  });

  it("needs the tier only for an amount some tier's threshold is below: otherwise every tier finds the same", () => {
    expect(tierMatters(8_000n, config)).toBe(false);
    expect(tierMatters(8_001n, config)).toBe(true);
    const tiers = ['LOW', 'MEDIUM', 'HIGH'] as const;
    const threshold = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 10n ** 9n }));
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 2n * 10n ** 9n }), threshold, threshold, threshold, (amount, l, m, h) => {
        const c = { ...config, riskTierThresholds: { LOW: l, MEDIUM: m, HIGH: h } };
        const found = tiers.map((tier) => evaluateRisk({ ...quiet, amount, tier }, c, now).map((x) => x.reason));
        // Where it does not matter, HIGH (what CreatePayment assumes without asking) finds what any tier would.
        if (!tierMatters(amount, c)) for (const f of found) expect(f).toEqual(found[2]);
        else expect(found.some((f) => f.includes('RISK_AMOUNT_OVER_TIER_THRESHOLD'))).toBe(true);
      }),
    );
  });

  it('counts this payment into the velocity window, by number and by amount; velocity rejects', () => {
    expect(rules({ recentCount: 7 })).toEqual([]);
    expect(rules({ recentCount: 8 })).toEqual(['RISK_VELOCITY_COUNT']);
    expect(rules({ recentAmount: 19_900n })).toEqual([]);
    const [f] = evaluateRisk({ ...quiet, recentAmount: 19_901n }, config, now);
    expect(f).toMatchObject({ rule: RiskRule.RISK_RULE_VELOCITY_AMOUNT, action: RiskAction.RISK_ACTION_REJECT });
  });

  it('flags a first payment to a new payee above its threshold only', () => {
    expect(rules({ knownPayee: false, amount: 3_000n })).toEqual([]);
    expect(rules({ knownPayee: false, amount: 3_001n })).toEqual(['RISK_NEW_PAYEE']);
    expect(rules({ knownPayee: true, amount: 3_001n })).toEqual([]);
  });

  it('flags two sessions too far apart for the time between them', () => {
    expect(distanceKm(BERLIN, NEW_YORK)).toBeGreaterThan(6_300);
    expect(distanceKm(BERLIN, NEW_YORK)).toBeLessThan(6_450);
    const seen = (minutesAgo: number, where = BERLIN, session = 's1') => ({
      session_id: session,
      ...where,
      seen_at: new Date(now.getTime() - minutesAgo * 60_000),
    });
    const geo = (where: { latitude: number; longitude: number }, sessionId = 's2'): RequestGeo => ({
      sessionId,
      ...where,
    });
    expect(rules({ geo: geo(NEW_YORK), last: seen(60) })).toEqual(['RISK_IMPOSSIBLE_TRAVEL']);
    // A flight's worth of time: plausible.
    expect(rules({ geo: geo(NEW_YORK), last: seen(9 * 60) })).toEqual([]);
    // Nearby (within geolocation's coarseness), the same session, or no earlier session: nothing.
    expect(rules({ geo: geo(POTSDAM), last: seen(1) })).toEqual([]);
    expect(rules({ geo: geo(NEW_YORK, 's1'), last: seen(1) })).toEqual([]);
    expect(rules({ geo: geo(NEW_YORK) })).toEqual([]);
  });
});

describe('risk rules on real services (3 shards)', () => {
  let t: TestPayments;
  let reviewer: PaymentClient;
  let payees: Account[];
  beforeAll(async () => {
    t = await startPayments(3, RULES);
    reviewer = t.clientWith(await t.token(ADMIN_SCOPES));
    payees = await accountsOn(t.bank, 2, 3, 0n);
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** A funded account of a new customer of the customer service, with that risk tier. */
  const customerAccount = async (tier: RiskTier, funding = 100_000n) => {
    const c = await verifiedCustomer(t, tier);
    const { results } = await t.bank.client.createAccounts({
      accounts: [
        {
          idempotencyKey: randomUUID(),
          ownerId: c.id,
          currency: 'EUR',
          code: 10,
          flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
          overdraftLimit: 0n,
          reference: '',
        },
      ],
    });
    const account = results[0]!.account!;
    await fund(t.bank, account, funding);
    return account;
  };
  const pay = (payer: Account, amount: bigint, payee = payees[0]!, geo?: RequestGeo) =>
    t.client.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: payer.id,
      payeeAccountId: payee.id,
      amount,
      currency: 'EUR',
      reference: '',
      ...(geo ? { geo } : {}),
    });

  it('holds an amount over the tier threshold for review; the reviewer approves and it runs', async () => {
    const high = await customerAccount(RiskTier.RISK_TIER_HIGH);
    const low = await customerAccount(RiskTier.RISK_TIER_LOW);
    // 2,000 to a new payee (below its threshold) and above nothing else: no finding for LOW.
    await settled(t.client, (await pay(low, 2_000n)).payment!.id);
    const lowBig = (await pay(low, 10_000n)).payment!;
    expect(lowBig.riskFindings.map((f) => f.rule)).not.toContain(RiskRule.RISK_RULE_AMOUNT_OVER_TIER_THRESHOLD);

    await settled(t.client, (await pay(high, 2_000n)).payment!.id); // the payee is known from now on
    const held = (await pay(high, 10_000n)).payment!;
    expect(held).toMatchObject({
      status: S.PAYMENT_STATUS_PENDING_REVIEW,
      step: P.PAYMENT_STEP_AWAIT_REVIEW,
      reason: 'RISK_AMOUNT_OVER_TIER_THRESHOLD',
    });
    expect(held.riskFindings).toEqual([
      expect.objectContaining({
        rule: RiskRule.RISK_RULE_AMOUNT_OVER_TIER_THRESHOLD,
        action: RiskAction.RISK_ACTION_REVIEW,
      }),
    ]);
    expect((await balances(t.bank, high.id)).debitsPosted).toBe(2_000n);

    await expectRpcError(
      t.client.reviewPayment({ paymentId: held.id, decision: ReviewDecision.REVIEW_DECISION_APPROVE, note: '' }),
      Code.PERMISSION_DENIED,
    );
    const approved = await reviewer.reviewPayment({
      paymentId: held.id,
      decision: ReviewDecision.REVIEW_DECISION_APPROVE,
      note: 'called the customer',
    });
    expect(approved.changed).toBe(true);
    expect((await settled(t.client, held.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect((await balances(t.bank, high.id)).debitsPosted).toBe(12_000n);
    expect(
      (await reviewer.reviewPayment({ paymentId: held.id, decision: ReviewDecision.REVIEW_DECISION_APPROVE, note: '' }))
        .changed,
    ).toBe(false);
    await expectRpcError(
      reviewer.reviewPayment({ paymentId: held.id, decision: ReviewDecision.REVIEW_DECISION_REJECT, note: '' }),
      Code.FAILED_PRECONDITION,
      undefined,
      'NOT_PENDING_REVIEW',
    );
    // (held and credited in between when the customer's home shard is not the payee's.)
    const events = await eventNamesOf(t, held.id);
    expect(events.slice(0, 2)).toEqual(['payment_review_required', 'payment_approved']);
    expect(events.at(-1)).toBe('payment_completed');
  });

  it('ends a held order REJECTED when the reviewer rejects it, moving nothing and giving its daily limit back', async () => {
    // An account on a product with a daily debit limit: the held order counts against the day.
    const customer = await verifiedCustomer(t, RiskTier.RISK_TIER_HIGH);
    const product = await publishedDeposit(t, {
      dailyDebitLimit: 10_000n,
      perTransactionLimit: 0n,
      overdraftLimit: 0n,
    });
    const high = await depositAccount(t, customer.id, product.productId, 50_000n);
    const held = (await pay(high, 9_000n, payees[1]!)).payment!;
    expect(held.status).toBe(S.PAYMENT_STATUS_PENDING_REVIEW);
    const usage = async () =>
      (await t.app.router.byId(high.id)!.db.raw(`select amount from daily_debit_usage where account_id = ?`, [high.id]))
        .rows;
    expect(await usage()).toEqual([{ amount: 9_000n }]);
    const { payment } = await reviewer.reviewPayment({
      paymentId: held.id,
      decision: ReviewDecision.REVIEW_DECISION_REJECT,
      note: 'mule pattern',
    });
    expect(payment).toMatchObject({ status: S.PAYMENT_STATUS_REJECTED, reason: 'RISK_REVIEW_REJECTED' });
    expect((await balances(t.bank, high.id)).debitsPosted).toBe(0n);
    expect(await usage()).toEqual([{ amount: 0n }]);
  });

  it('rejects payments over the velocity count, exactly, when they arrive at once', async () => {
    const payer = await customerAccount(RiskTier.RISK_TIER_MEDIUM);
    const created = await Promise.all(Array.from({ length: 12 }, () => pay(payer, 100n)));
    const rejected = created.filter((c) => c.payment!.status === S.PAYMENT_STATUS_REJECTED);
    expect(rejected).toHaveLength(4);
    for (const r of rejected) expect(r.payment!.reason).toBe('RISK_VELOCITY_COUNT');
    for (const c of created) await settled(t.client, c.payment!.id);
    expect((await balances(t.bank, payer.id)).debitsPosted).toBe(800n);
  });

  it('counts an order the ledger refuses for nothing: its velocity and payee counts are given back', async () => {
    const payer = await customerAccount(RiskTier.RISK_TIER_MEDIUM, 1_000n);
    const owner = payer.ownerId;
    expect((await settled(t.client, (await pay(payer, 800n)).payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    // 8 orders of 900 against the 200 left: accepted by the rules (1 + 8 <= 8 would not hold if
    // they all stayed counted), each refused by the ledger, so each ends REJECTED and uncounted.
    for (let i = 0; i < 8; i++) {
      const p = await settled(t.client, (await pay(payer, 900n)).payment!.id);
      expect(p).toMatchObject({ status: S.PAYMENT_STATUS_REJECTED, reason: 'TRANSFER_RESULT_CODE_EXCEEDS_CREDITS' });
    }
    // Counted: the 800 only. A ninth order passes velocity (2 of 8) and moves the money.
    const db = t.app.router.byId(payer.id)!.db;
    const counters = async () =>
      (
        await db.raw(
          `select (select coalesce(sum(n), 0)::int from customer_velocity where customer_id = ?) as n,
                (select coalesce(sum(amount), 0)::int8 from customer_velocity where customer_id = ?) as amount,
                (select coalesce(sum(n), 0)::int from customer_payees where customer_id = ?) as payees`,
          [owner, owner, owner],
        )
      ).rows[0] as { n: number; amount: bigint; payees: number };
    expect(await counters()).toEqual({ n: 1, amount: 800n, payees: 1 });
    const last = await settled(t.client, (await pay(payer, 100n)).payment!.id);
    expect(last.status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect(await counters()).toEqual({ n: 2, amount: 900n, payees: 2 });
  });

  it('keeps a risk tier between orders, and drops it when the customer event says it changed', async () => {
    const payer = await customerAccount(RiskTier.RISK_TIER_MEDIUM);
    const rules = (p: { riskFindings: { reason: string }[] }) => p.riskFindings.map((f) => f.reason);
    // 9,000 is under MEDIUM's threshold (20,000) and over HIGH's (8,000); the first order to the
    // payee is held for NEW_PAYEE (over 3,000), which makes the payee known for the second.
    const first = (await pay(payer, 9_000n)).payment!;
    expect(rules(first)).toEqual(['RISK_NEW_PAYEE']);
    await t.peers.people.client.setRiskTier({
      customerId: payer.ownerId,
      riskTier: RiskTier.RISK_TIER_HIGH,
      reason: 'test',
    });
    // The customer service's event is relayed (its outbox empties) and reaches the payment
    // service over NATS within milliseconds; RISK_TIER_CACHE_MS (a minute) would be far later.
    await relayed(t.peers.people.app.router);
    const second = (await pay(payer, 9_000n)).payment!;
    expect(rules(second)).toEqual(['RISK_AMOUNT_OVER_TIER_THRESHOLD']);
    expect(second.status).toBe(S.PAYMENT_STATUS_PENDING_REVIEW);
  });

  it("learns a new customer's tier and a new account's facts from their events, asking neither service", async () => {
    const payer = await customerAccount(RiskTier.RISK_TIER_MEDIUM);
    await relayed(t.peers.people.app.router);
    await relayed(t.bank.app.router);
    const asked = async () => {
      const { values } = await registry.getSingleMetric('grpc_server_requests_total')!.get();
      const n = (method: string) =>
        values.filter((v) => v.labels.method === method).reduce((sum, v) => sum + v.value, 0);
      return { getCustomer: n('getCustomer'), getAccount: n('getAccount') };
    };
    const before = await asked();
    // 9,000 is over HIGH's threshold (8,000), the tier of a customer the service could not ask.
    const { payment } = await pay(payer, 9_000n);
    expect(payment!.riskFindings.map((f) => f.reason)).toEqual(['RISK_NEW_PAYEE']);
    // The counters count: the one call made here is the only one since `before`.
    await t.bank.client.getAccount({ accountId: payer.id });
    expect(await asked()).toEqual({ ...before, getAccount: before.getAccount + 1 });
  });

  it("asks for no tier when the amount is under every tier's threshold; over one, it asks", async () => {
    // An owner the customer service does not know: asked, it is HIGH; never cached beforehand.
    const [payer] = await accountsOn(t.bank, 0, 1, 100_000n);
    const getCustomer = async () =>
      (await registry.getSingleMetric('grpc_server_requests_total')!.get()).values
        .filter((v) => v.labels.method === 'getCustomer')
        .reduce((sum, v) => sum + v.value, 0);
    const before = await getCustomer();
    const small = (await pay(payer!, 2_000n, payees[1]!)).payment!;
    expect(small.riskFindings).toEqual([]);
    expect((await settled(t.client, small.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect(await getCustomer()).toBe(before);
    const large = (await pay(payer!, 9_000n, payees[1]!)).payment!;
    expect(large.riskFindings.map((f) => f.reason)).toContain('RISK_AMOUNT_OVER_TIER_THRESHOLD');
    // (The customer service counts its call once it has answered it.)
    await expect.poll(getCustomer).toBe(before + 1);
  });

  it('rejects a payment that takes the money paid in the window over the velocity amount', async () => {
    const payer = await customerAccount(RiskTier.RISK_TIER_MEDIUM);
    for (let i = 0; i < 6; i++) await settled(t.client, (await pay(payer, 2_900n)).payment!.id);
    const { payment } = await pay(payer, 2_900n);
    expect(payment).toMatchObject({ status: S.PAYMENT_STATUS_REJECTED, reason: 'RISK_VELOCITY_AMOUNT' });
    expect(payment!.riskFindings[0]!.detail).toContain('20300');
    expect((await balances(t.bank, payer.id)).debitsPosted).toBe(17_400n);
  });

  it('holds a first payment to a new payee above the threshold; once paid, the payee is known', async () => {
    const payer = await customerAccount(RiskTier.RISK_TIER_MEDIUM);
    const first = (await pay(payer, 5_000n, payees[2]!)).payment!;
    expect(first).toMatchObject({ status: S.PAYMENT_STATUS_PENDING_REVIEW, reason: 'RISK_NEW_PAYEE' });
    await reviewer.reviewPayment({ paymentId: first.id, decision: ReviewDecision.REVIEW_DECISION_APPROVE, note: '' });
    expect((await settled(t.client, first.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    const second = (await pay(payer, 5_000n, payees[2]!)).payment!;
    expect(second.riskFindings).toEqual([]);
    expect((await settled(t.client, second.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
  });

  it('holds a payment from a session an ocean away from the last one minutes ago', async () => {
    const payer = await customerAccount(RiskTier.RISK_TIER_MEDIUM);
    const home = { sessionId: 'phone-1', ...BERLIN };
    await settled(t.client, (await pay(payer, 100n, payees[0]!, home)).payment!.id);
    const nearby = (await pay(payer, 100n, payees[0]!, { sessionId: 'laptop-1', ...POTSDAM })).payment!;
    expect(nearby.riskFindings).toEqual([]);
    const far = (await pay(payer, 100n, payees[0]!, { sessionId: 'web-9', ...NEW_YORK })).payment!;
    expect(far).toMatchObject({ status: S.PAYMENT_STATUS_PENDING_REVIEW, reason: 'RISK_IMPOSSIBLE_TRAVEL' });
    expect(far.riskFindings[0]!.detail).toMatch(/km\/h > 900/);
    await expectRpcError(
      pay(payer, 100n, payees[0]!, { sessionId: '', latitude: 91, longitude: 0 }),
      Code.INVALID_ARGUMENT,
      'geo.latitude',
    );
  });

  it('gives reviewers their queue: held orders across shards, longest waiting first, page by page', async () => {
    const held: string[] = [];
    for (let i = 0; i < 3; i++) {
      const payer = await customerAccount(RiskTier.RISK_TIER_HIGH);
      const { payment } = await pay(payer, 9_000n, payees[i % 3]!);
      expect(payment!.status).toBe(S.PAYMENT_STATUS_PENDING_REVIEW);
      held.push(payment!.id);
    }
    await expectRpcError(
      t.client.listPendingDecisions({ decision: PendingDecision.PENDING_DECISION_RISK_REVIEW }),
      Code.PERMISSION_DENIED,
    );
    const walk = async (pageSize: number) => {
      const ids: string[] = [];
      let pageToken = '';
      do {
        const res = await reviewer.listPendingDecisions({
          decision: PendingDecision.PENDING_DECISION_RISK_REVIEW,
          page: { pageSize, pageToken },
        });
        expect(res.payments.length).toBeLessThanOrEqual(pageSize);
        for (const p of res.payments) expect(p.status).toBe(S.PAYMENT_STATUS_PENDING_REVIEW);
        ids.push(...res.payments.map((p) => p.id));
        pageToken = res.page!.nextPageToken;
      } while (pageToken);
      return ids;
    };
    const all = await walk(1000);
    expect(await walk(2)).toEqual(all);
    expect(all.filter((id) => held.includes(id))).toEqual(held);

    await reviewer.reviewPayment({ paymentId: held[0]!, decision: ReviewDecision.REVIEW_DECISION_REJECT, note: '' });
    expect(await walk(1000)).not.toContain(held[0]);
    await expectRpcError(
      reviewer.listPendingDecisions({ decision: PendingDecision.PENDING_DECISION_UNSPECIFIED }),
      Code.INVALID_ARGUMENT,
      'decision',
    );
  });
});
