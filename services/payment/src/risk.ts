// The real-time risk rules, evaluated in the order's own transaction before any money moves.
// evaluateRisk is pure: it turns what is known about the payer (risk tier, recent payments, earlier
// payees, the last session's location) into findings, each with its rule's reason code and the
// action the configuration gives that rule. riskFacts reads those facts under the payer
// customer's lock (customer_risk_state), so concurrent orders of one customer are counted exactly.
import type { Tx } from '@corebank/kit';
import {
  PaymentKind as K,
  RiskAction,
  RiskRule,
  type RequestGeo,
  type RiskFinding,
} from '@corebank/kit/gen/corebank/v1/payment';
import type { PaymentConfig, RuleName, TierName } from './config.js';
import { NOTHING_MOVED } from './state.js';

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

/** SQL lists of constants (enum numbers): orders that count for velocity and earlier payees. */
const NOT_COUNTED = NOTHING_MOVED.join(',');
const PAYMENT_KINDS = [K.PAYMENT_KIND_TRANSFER, K.PAYMENT_KIND_ESCROW].join(',');

/**
 * Locks the customer's risk row (creating it on first use) and returns the last session seen.
 * Every order of the customer passes here first, so the counts that follow are exact.
 */
export async function lockCustomer(tx: Tx, customerId: string): Promise<SessionSeen> {
  const { rows } = await tx.raw(
    `insert into customer_risk_state (customer_id) values (?)
       on conflict (customer_id) do update set customer_id = excluded.customer_id
     returning session_id, latitude, longitude, seen_at`,
    [customerId],
  );
  return (rows as SessionSeen[])[0]!;
}

/** The customer's recent orders and whether it paid this payee before (under lockCustomer). */
export async function customerHistory(
  tx: Tx,
  customerId: string,
  payeeAccountId: string,
  windowSeconds: number,
): Promise<Pick<RiskFacts, 'recentCount' | 'recentAmount' | 'knownPayee'>> {
  const { rows } = await tx.raw(
    `select count(*) filter (where created_at > now() - make_interval(secs => ?)) as n,
            coalesce(sum(amount) filter (where created_at > now() - make_interval(secs => ?)), 0)::int8 as total,
            bool_or(payee_account_id = ?) as known
       from payments
      where payer_customer_id = ? and kind in (${PAYMENT_KINDS}) and status not in (${NOT_COUNTED})
        and (created_at > now() - make_interval(secs => ?) or payee_account_id = ?)`,
    [windowSeconds, windowSeconds, payeeAccountId, customerId, windowSeconds, payeeAccountId],
  );
  const r = (rows as { n: bigint; total: bigint; known: boolean | null }[])[0]!;
  return { recentCount: Number(r.n), recentAmount: r.total, knownPayee: r.known === true };
}

/** Remembers this request's session as the customer's last one. */
export async function rememberSession(tx: Tx, customerId: string, geo: RequestGeo, at: Date): Promise<void> {
  await tx.raw(
    `update customer_risk_state set session_id = ?, latitude = ?, longitude = ?, seen_at = ? where customer_id = ?`,
    [geo.sessionId, geo.latitude, geo.longitude, at, customerId],
  );
}
