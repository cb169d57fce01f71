// CreatePayment: a transfer or an escrow order, from the request to its first ledger step. The
// limits and the risk rules are decided in the order's own transaction on the payer's shard, under
// the payer customer's lock, so concurrent orders of one customer are checked one after another.
import {
  bucketOfId,
  DomainError,
  fromTimestamp,
  isCurrency,
  requireCustomer,
  type RpcContext,
  type ShardRouter,
  Violations,
} from '@corebank/kit';
import {
  PaymentKind as K,
  PaymentRoute,
  PaymentStatus as S,
  PaymentStep as P,
  RiskAction,
  type CreatePaymentRequest,
  type CreatePaymentResponse,
} from '@corebank/kit/gen/corebank/v1/payment';
import type { PaymentConfig } from './config.js';
import { accountIdField, geoFields, keyField, referenceField, timeField } from './validate.js';
import type { Ledger } from './clients/ledger.js';
import { limitDay, reserveLimits } from './limits.js';
import type { Peers } from './clients/peers.js';
import { evaluateRisk, rememberSession, riskFacts, tierMatters, velocityBucketOf, verdictOf } from './risk.js';
import type { Saga } from './saga.js';
import { requireOwnClaim, type KeyClaim, type KeyClaims } from './keys.js';
import {
  bodyHashOf,
  createOnce,
  findPayment,
  giveBackClaim,
  paymentIdFor,
  replayOf,
  type NewOrder,
  type OrderBatches,
} from './store.js';
import { paymentToProto, type PaymentRow } from './proto.js';

/** How far ahead an escrow's auto-release time may be. */
const MAX_ESCROW_DAYS = 366;

export interface PaymentDeps {
  router: ShardRouter;
  /** The channels' idempotency keys (keys.ts). */
  keys: KeyClaims;
  /** Group commit of new payment orders, per shard (absent: one transaction per order). */
  orderBatches?: OrderBatches;
  ledger: Ledger;
  peers: Peers;
  saga: Saga;
  config: PaymentConfig;
}

/** The order's first step once it may move money: escrow and cross-shard orders hold first. */
export const firstStep = (kind: K, route: PaymentRoute): P =>
  kind === K.PAYMENT_KIND_ESCROW || route === PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD
    ? P.PAYMENT_STEP_HOLD
    : P.PAYMENT_STEP_TRANSFER;

/**
 * Runs an order's first step inline, so the caller learns at once whether the money moved or was
 * held; when it cannot be made now, the sweeper makes it later. The step debits the caller's own
 * account (the payer's, or the refunding payee's): a customer-bound caller's binding goes along
 * to the ledger, which checks it again. An order with steps left (a cross-shard order's credit
 * and post) goes on at once, after the answer, with the next step claimed by the first's advance.
 */
export async function firstStepInline(
  deps: PaymentDeps,
  row: PaymentRow,
  ctx: RpcContext,
  claimed = false,
): Promise<PaymentRow> {
  const shard = deps.router.byId(row.id)!;
  deps.saga.expect(row.id, row.step);
  const step = deps.saga.step(shard, row.id, ctx.deadline, ctx.principal, claimed ? row : undefined, true);
  const { row: after, claimed: next } = await step.catch((err: unknown) => {
    ctx.log.warn({ err, payment_id: row.id }, 'first payment step failed; the sweeper retries it');
    deps.saga.wakeAt(shard, Date.now());
    return { row: undefined, claimed: false };
  });
  if (after && next) deps.saga.goOn(shard, after);
  return after ?? (await findPayment(shard.db, row.id))!;
}

export async function createPayment(
  deps: PaymentDeps,
  req: CreatePaymentRequest,
  ctx: RpcContext,
): Promise<CreatePaymentResponse> {
  const { router } = deps;
  const now = new Date();
  const v = new Violations();
  keyField(v, req.idempotencyKey);
  accountIdField(v, 'payer_account_id', req.payerAccountId);
  accountIdField(v, 'payee_account_id', req.payeeAccountId);
  if (req.payerAccountId && req.payerAccountId.toLowerCase() === req.payeeAccountId.toLowerCase()) {
    v.add('payee_account_id', 'must differ from payer_account_id');
  }
  if (req.amount <= 0n) v.add('amount', 'must be positive');
  if (!isCurrency(req.currency)) v.add('currency', 'must be an ISO 4217 code this bank books');
  referenceField(v, req.reference);
  let autoReleaseAt: Date | undefined;
  if (req.escrow && timeField(v, 'escrow.auto_release_at', req.escrow.autoReleaseAt, true)) {
    autoReleaseAt = fromTimestamp(req.escrow.autoReleaseAt!);
  }
  geoFields(v, req.geo);
  v.throwIfAny();

  const kind = autoReleaseAt ? K.PAYMENT_KIND_ESCROW : K.PAYMENT_KIND_TRANSFER;
  const payerAccountId = req.payerAccountId.toLowerCase();
  const payeeAccountId = req.payeeAccountId.toLowerCase();
  const payerBucket = bucketOfId(payerAccountId)!;
  const channel = ctx.principal.channel;
  const id = paymentIdFor(payerBucket, channel, req.idempotencyKey);
  const shard = router.byBucket(payerBucket);
  // The body as asked (the geo metadata describes the request, not the order).
  const hash = bodyHashOf(
    'payment',
    payerAccountId,
    payeeAccountId,
    req.amount,
    req.currency,
    req.reference,
    autoReleaseAt?.getTime() ?? '',
  );

  // The key's claim first: a new order needs it anyway, and only a claim made before (a retry, a
  // concurrent request, another order's key) sends us to look for a recorded order. A retry finds
  // its order without asking anyone anything.
  const claim: KeyClaim = { channel, key: req.idempotencyKey, paymentId: id, bodyHash: hash };
  const claimed = await deps.keys.claim(claim);
  if (!claimed.fresh || claimed.paymentId !== id || claimed.bodyHash !== hash) {
    const existing = await findPayment(shard.db, id);
    if (existing) {
      requireCustomer(ctx.principal, existing.payer_customer_id, 'payer_account_id');
      return replayOf(existing, hash);
    }
    requireOwnClaim(claim, claimed);
  }
  try {
    const firstAsked = claimed.fresh ? now : claimed.firstAt;
    return await createClaimed(deps, req, ctx, {
      claim,
      kind,
      payerAccountId,
      payeeAccountId,
      autoReleaseAt,
      now,
      firstAsked,
    });
  } catch (err) {
    await giveBackClaim(deps.keys, shard, claim, err);
    throw err;
  }
}

/** The rest of CreatePayment once the key is claimed for this order. */
async function createClaimed(
  deps: PaymentDeps,
  req: CreatePaymentRequest,
  ctx: RpcContext,
  o: {
    claim: KeyClaim;
    kind: K;
    payerAccountId: string;
    payeeAccountId: string;
    autoReleaseAt: Date | undefined;
    now: Date;
    /** When the key was first used for this order (now, for a new claim). */
    firstAsked: Date;
  },
): Promise<CreatePaymentResponse> {
  const { router, ledger, peers, config } = deps;
  const { claim, kind, payerAccountId, payeeAccountId, autoReleaseAt, now } = o;
  const { channel, paymentId: id, bodyHash: hash } = claim;
  const shard = router.byId(id)!;
  // Checked for a new order only: a retry of an escrow order replays after its time has come.
  // And as of the key's first use: a retry that finds the key claimed but no order yet may race
  // its first attempt, still in flight, which was right to accept the time and may commit the
  // order after this one looked; refusing here would answer "refused" for an order that exists.
  // Going on instead makes both attempts one order (the second insert conflicts and replays), or
  // this attempt the one that records it (its first died): auto-released at once if due.
  if (autoReleaseAt) {
    const asOf = o.firstAsked.getTime();
    const t = new Violations();
    if (!(autoReleaseAt.getTime() > asOf)) t.add('escrow.auto_release_at', 'must be in the future');
    else if (autoReleaseAt.getTime() > asOf + MAX_ESCROW_DAYS * 86_400_000) {
      t.add('escrow.auto_release_at', `must be at most ${MAX_ESCROW_DAYS} days ahead`);
    }
    t.throwIfAny();
  }
  // Read for the caller: a customer-bound caller's binding goes along (the ledger refuses another
  // customer's account itself on a first read; a remembered one is checked here against its owner).
  const payer = await ledger.account(payerAccountId, ctx.deadline, ctx.principal);
  if (!payer) throw DomainError.notFound('payer_account_id', 'account');
  requireCustomer(ctx.principal, payer.ownerId, 'payer_account_id');
  if (payer.currency !== req.currency) {
    throw DomainError.invalid([
      { field: 'currency', description: `must be the payer account's currency (${payer.currency})` },
    ]);
  }
  const payeeShard = router.byId(payeeAccountId)!.index;
  const route =
    payeeShard === payer.shard ? PaymentRoute.PAYMENT_ROUTE_SAME_SHARD : PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD;
  const step = firstStep(kind, route);
  if (step === P.PAYMENT_STEP_HOLD) {
    for (const s of new Set([payer.shard, payeeShard])) {
      if (!(await ledger.inTransitAccount(s, req.currency, ctx.deadline))) {
        throw DomainError.invalid([
          { field: 'currency', description: `is not booked through in-transit accounts (no ${req.currency} one)` },
        ]);
      }
    }
  }
  const [tier, limits] = await Promise.all([
    // Asked only when it can matter (tierMatters); otherwise HIGH changes nothing.
    tierMatters(req.amount, config) ? peers.riskTier(payer.ownerId, ctx.deadline) : ('HIGH' as const),
    peers.limitsOf(payer, ctx.deadline),
  ]);

  const base: Omit<NewOrder, 'status' | 'step'> = {
    id,
    channel,
    idempotencyKey: req.idempotencyKey,
    bodyHash: hash,
    kind,
    payerAccountId,
    payeeAccountId,
    payerCustomerId: payer.ownerId,
    amount: req.amount,
    currency: req.currency,
    reference: req.reference,
    route,
    ...(autoReleaseAt ? { autoReleaseAt } : {}),
    payerShard: payer.shard,
    payeeShard,
    velocityBucket: velocityBucketOf(now, config.riskVelocityWindowSeconds),
  };
  const created = await createOnce(
    deps.keys,
    shard,
    claim,
    async (tx) => {
      const facts = await riskFacts(tx, payer.ownerId, payeeAccountId, config.riskVelocityWindowSeconds, now);
      const findings = evaluateRisk(
        { amount: req.amount, tier, ...facts, ...(req.geo ? { geo: req.geo } : {}) },
        config,
        now,
      );
      const verdict = verdictOf(findings);
      let decided: Pick<NewOrder, 'status' | 'step' | 'reason' | 'limitDay' | 'claimForMs'>;
      if (verdict?.action === RiskAction.RISK_ACTION_REJECT) {
        decided = { status: S.PAYMENT_STATUS_REJECTED, step: P.PAYMENT_STEP_DONE, reason: verdict.reason };
      } else {
        const limit = await reserveLimits(tx, payerAccountId, req.amount, limits, limitDay(now, config.limitTimeZone));
        if (!limit.ok) decided = { status: S.PAYMENT_STATUS_REJECTED, step: P.PAYMENT_STEP_DONE, reason: limit.reason };
        else if (verdict) {
          decided = {
            status: S.PAYMENT_STATUS_PENDING_REVIEW,
            step: P.PAYMENT_STEP_AWAIT_REVIEW,
            reason: verdict.reason,
            limitDay: limit.day,
          };
        } else
          decided = { status: S.PAYMENT_STATUS_ACCEPTED, step, limitDay: limit.day, claimForMs: deps.saga.leaseMs };
      }
      if (req.geo) await rememberSession(tx, payer.ownerId, req.geo, now);
      return { ...base, ...decided, riskFindings: findings };
    },
    now,
    {
      claimed: true,
      ...(deps.orderBatches ? { batch: { batches: deps.orderBatches, lockKey: payer.ownerId } } : {}),
    },
  );
  if (created.replayed) return created;
  let row = created.row;
  ctx.log.info(
    { payment_id: id, route, kind, status: S[row.status], reason: row.reason || undefined },
    'payment order created',
  );
  // Written with its first step claimed (claimForMs): made here at once.
  if (row.status === S.PAYMENT_STATUS_ACCEPTED) row = await firstStepInline(deps, row, ctx, true);
  return { payment: paymentToProto(row), replayed: false };
}
