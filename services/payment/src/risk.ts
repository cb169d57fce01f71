// The real-time risk rules, evaluated in the order's own transaction before any money moves.
// evaluateRisk is pure: it turns what is known about the payer (risk tier, recent payments, earlier
// payees, the last session's location) into findings, each with its rule's reason code and the
// action the configuration gives that rule. riskFacts reads those facts under the payer
// customer's lock (customer_risk_state), so concurrent orders of one customer are counted exactly;
// the counts are counters the orders keep (countOrderCte, uncountOrder), not a scan of them.
import { preparedRaw, type Tx } from '@corebank/kit';
import {
  PaymentKind as K,
  RiskAction,
  RiskRule,
  type RequestGeo,
  type RiskFinding,
} from '@corebank/kit/gen/corebank/v1/payment';
import type { PaymentConfig, RuleName, TierName } from './config.js';

export type RiskConfig = Pick<
  PaymentConfig,
  | 'riskTierThresholds'
  | 'riskVelocityWindowSeconds'
  | 'riskVelocityMaxPayments'
  | 'riskVelocityMaxAmount'
  | 'riskNewPayeeThreshold'
  | 'riskTravelMaxKmh'
  | 'riskActions'
>;

/** A customer's last seen session (the row of customer_risk_state). */
export interface SessionSeen {
  session_id: string;
  latitude: number | null;
  longitude: number | null;
  seen_at: Date | null;
}

export interface RiskFacts {
  amount: bigint;
  /** The payer customer's tier; HIGH when the customer service does not know the owner. */
  tier: TierName;
  /** The customer's orders in the velocity window that were not rejected or cancelled. */
  recentCount: number;
  recentAmount: bigint;
  /** Whether the customer paid this payee before (an order not rejected or cancelled). */
  knownPayee: boolean;
  /** This request's session, and the last one seen before it. */
  geo?: RequestGeo;
  last?: SessionSeen;
}

/** Below this distance two locations are treated as one place: IP geolocation is that coarse. */
export const TRAVEL_TOLERANCE_KM = 100;

/** Great-circle distance in km (haversine, mean Earth radius). */
export function distanceKm(a: { latitude: number; longitude: number }, b: { latitude: number; longitude: number }) {
  const rad = (d: number) => (d * Math.PI) / 180;
  const dLat = rad(b.latitude - a.latitude);
  const dLon = rad(b.longitude - a.longitude);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.latitude)) * Math.cos(rad(b.latitude)) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The rules a finding can name, and the configured rule (RISK_ACTIONS) whose action each takes. */
type FiringRule = Exclude<RiskRule, RiskRule.RISK_RULE_UNSPECIFIED | RiskRule.UNRECOGNIZED>;
const RULE_OF: Record<FiringRule, RuleName> = {
  [RiskRule.RISK_RULE_AMOUNT_OVER_TIER_THRESHOLD]: 'AMOUNT_OVER_TIER_THRESHOLD',
  [RiskRule.RISK_RULE_VELOCITY_COUNT]: 'VELOCITY',
  [RiskRule.RISK_RULE_VELOCITY_AMOUNT]: 'VELOCITY',
  [RiskRule.RISK_RULE_NEW_PAYEE]: 'NEW_PAYEE',
  [RiskRule.RISK_RULE_IMPOSSIBLE_TRAVEL]: 'IMPOSSIBLE_TRAVEL',
};

/** The reason code of a rule: RISK_ and the rule's name. */
const reasonOf = (rule: FiringRule): string => `RISK_${RiskRule[rule]!.replace('RISK_RULE_', '')}`;

/**
 * Whether the payer's risk tier can change the verdict on this amount: only the amount-over-tier
 * rule reads it, and only a tier whose threshold (switched on) is below the amount fires. For
 * smaller amounts, most payments, the tier is not asked at all (a call to the customer service
 * for a payer not cached); evaluating them as HIGH, the strictest, gives the same findings.
 */
export const tierMatters = (amount: bigint, c: Pick<RiskConfig, 'riskTierThresholds'>): boolean =>
  Object.values(c.riskTierThresholds).some((t) => t > 0n && amount > t);

/** Every rule that fires for these facts, in the order of the RiskRule enum. */
export function evaluateRisk(f: RiskFacts, c: RiskConfig, now: Date): RiskFinding[] {
  const out: RiskFinding[] = [];
  const fire = (rule: FiringRule, detail: string) =>
    out.push({ rule, action: c.riskActions[RULE_OF[rule]], reason: reasonOf(rule), detail });

  const threshold = c.riskTierThresholds[f.tier];
  if (threshold > 0n && f.amount > threshold) {
    fire(RiskRule.RISK_RULE_AMOUNT_OVER_TIER_THRESHOLD, `${f.amount} > ${threshold} for risk tier ${f.tier}`);
  }
  const window = c.riskVelocityWindowSeconds;
  if (c.riskVelocityMaxPayments > 0 && f.recentCount + 1 > c.riskVelocityMaxPayments) {
    fire(
      RiskRule.RISK_RULE_VELOCITY_COUNT,
      `${f.recentCount + 1} payments in ${window} s > ${c.riskVelocityMaxPayments}`,
    );
  }
  if (c.riskVelocityMaxAmount > 0n && f.recentAmount + f.amount > c.riskVelocityMaxAmount) {
    fire(
      RiskRule.RISK_RULE_VELOCITY_AMOUNT,
      `${f.recentAmount + f.amount} paid in ${window} s > ${c.riskVelocityMaxAmount}`,
    );
  }
  if (!f.knownPayee && c.riskNewPayeeThreshold > 0n && f.amount > c.riskNewPayeeThreshold) {
    fire(RiskRule.RISK_RULE_NEW_PAYEE, `first payment to this payee: ${f.amount} > ${c.riskNewPayeeThreshold}`);
  }
  const { geo, last } = f;
  if (
    c.riskTravelMaxKmh > 0 &&
    geo?.sessionId &&
    last?.seen_at &&
    last.latitude !== null &&
    last.longitude !== null &&
    last.session_id !== geo.sessionId
  ) {
    const km = distanceKm(geo, { latitude: last.latitude, longitude: last.longitude });
    const hours = Math.max(now.getTime() - last.seen_at.getTime(), 1_000) / 3_600_000;
    if (km > TRAVEL_TOLERANCE_KM && km / hours > c.riskTravelMaxKmh) {
      fire(
        RiskRule.RISK_RULE_IMPOSSIBLE_TRAVEL,
        `${Math.round(km)} km from session ${last.session_id} in ${Math.round(hours * 3600)} s ` +
          `(${Math.round(km / hours)} km/h > ${c.riskTravelMaxKmh})`,
      );
    }
  }
  return out;
}

/** The first finding that rejects, else the first that holds for review, else none. */
export function verdictOf(findings: RiskFinding[]): RiskFinding | undefined {
  return (
    findings.find((f) => f.action === RiskAction.RISK_ACTION_REJECT) ??
    findings.find((f) => f.action === RiskAction.RISK_ACTION_REVIEW)
  );
}

/** The kinds of order the velocity and new-payee rules count (not refunds or reversals). */
export const COUNTED_KINDS: readonly K[] = [K.PAYMENT_KIND_TRANSFER, K.PAYMENT_KIND_ESCROW];

/** Seconds per velocity bucket: a 60th of the window, at least one. */
export const velocityBucketSeconds = (windowSeconds: number) => Math.max(1, Math.floor(windowSeconds / 60));

/** The start of the velocity bucket an order made at `at` counts in. */
export function velocityBucketOf(at: Date, windowSeconds: number): Date {
  const ms = velocityBucketSeconds(windowSeconds) * 1000;
  return new Date(Math.floor(at.getTime() / ms) * ms);
}

/**
 * Locks the customer's risk row (creating it on first use; every order of the customer passes
 * here first, so the counts that follow are exact) and reads, in one round trip
 * (payment_risk_facts, migration 004): the last session seen, the customer's orders and money in
 * the velocity window, and whether it paid this payee before. The window is counted in whole
 * buckets (velocityBucketSeconds): an order counts for at least the window and at most one bucket
 * longer, so the rule is never more lenient than configured. Buckets older than twice the window
 * are deleted on the way.
 */
export async function riskFacts(
  tx: Tx,
  customerId: string,
  payeeAccountId: string,
  windowSeconds: number,
  now: Date,
): Promise<Pick<RiskFacts, 'recentCount' | 'recentAmount' | 'knownPayee'> & { last: SessionSeen }> {
  const bucketMs = velocityBucketSeconds(windowSeconds) * 1000;
  const since = new Date(now.getTime() - windowSeconds * 1000 - bucketMs);
  const keep = new Date(now.getTime() - 2 * windowSeconds * 1000 - bucketMs);
  const { rows } = await preparedRaw(
    tx,
    `select session_id, latitude, longitude, seen_at, recent_count, recent_amount, known_payee
       from payment_risk_facts(?, ?, ?, ?)`,
    [customerId, payeeAccountId, since, keep],
  );
  const r = (rows as (SessionSeen & { recent_count: bigint; recent_amount: bigint; known_payee: boolean })[])[0]!;
  return {
    last: { session_id: r.session_id, latitude: r.latitude, longitude: r.longitude, seen_at: r.seen_at },
    recentCount: Number(r.recent_count),
    recentAmount: r.recent_amount,
    knownPayee: r.known_payee,
  };
}

/**
 * A counted order's share of its customer's counters, as CTEs (each led by a comma) with their
 * bindings, for insertOrder's statement: they write only when its CTE `ins` inserted the order.
 */
export function countOrderCtes(o: { customerId: string; payeeAccountId: string; amount: bigint; bucket: Date }): {
  sql: string;
  bindings: unknown[];
} {
  return {
    sql: `, counted_velocity as (
            insert into customer_velocity as v (customer_id, bucket_start, n, amount)
              select ?::text, ?::timestamptz, 1, ?::int8 where exists (select 1 from ins)
              on conflict (customer_id, bucket_start) do update set n = v.n + 1, amount = v.amount + excluded.amount)
          , counted_payee as (
            insert into customer_payees as c (customer_id, payee_account_id, n)
              select ?::text, ?::uuid, 1 where exists (select 1 from ins)
              on conflict (customer_id, payee_account_id) do update set n = c.n + 1)`,
    bindings: [o.customerId, o.bucket, o.amount.toString(), o.customerId, o.payeeAccountId],
  };
}

/**
 * A counted order ended rejected or cancelled: it no longer counts for velocity (in the bucket it
 * was counted in: the latest starting at or before its creation) nor for its payee being known.
 */
export async function uncountOrder(
  tx: Tx,
  o: { customerId: string; payeeAccountId: string; amount: bigint; createdAt: Date },
): Promise<void> {
  await tx.raw(
    `with v as (
       update customer_velocity set n = n - 1, amount = amount - ?
        where customer_id = ? and bucket_start = (
          select max(bucket_start) from customer_velocity where customer_id = ? and bucket_start <= ?))
     update customer_payees set n = n - 1 where customer_id = ? and payee_account_id = ?`,
    [o.amount.toString(), o.customerId, o.customerId, o.createdAt, o.customerId, o.payeeAccountId],
  );
}

/** Remembers this request's session as the customer's last one. */
export async function rememberSession(tx: Tx, customerId: string, geo: RequestGeo, at: Date): Promise<void> {
  await tx.raw(
    `update customer_risk_state set session_id = ?, latitude = ?, longitude = ?, seen_at = ? where customer_id = ?`,
    [geo.sessionId, geo.latitude, geo.longitude, at, customerId],
  );
}
