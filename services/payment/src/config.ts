import {
  baseSpec,
  serviceKeySpec,
  ConfigError,
  loadConfig,
  loadShardUrls,
  parsers,
  ShardMap,
  type Spec,
} from '@corebank/kit';
import { RiskAction } from '@corebank/kit/gen/corebank/v1/payment';

/** A money amount in minor units: a non-negative integer (0 switches a threshold off). */
const minorUnits = (raw: string, name: string): bigint => {
  if (!/^\d{1,18}$/.test(raw.trim()))
    throw new ConfigError(name, `must be a whole number of minor units, got "${raw}"`);
  return BigInt(raw.trim());
};

/** An IANA time zone the runtime knows (Intl throws on unknown ones). */
const timeZone = (raw: string, name: string): string => {
  try {
    new Intl.DateTimeFormat('en-CA', { timeZone: raw });
  } catch {
    throw new ConfigError(name, `must be an IANA time zone such as UTC or Europe/Berlin, got "${raw}"`);
  }
  return raw;
};

export const RISK_TIERS = ['LOW', 'MEDIUM', 'HIGH'] as const;
export type TierName = (typeof RISK_TIERS)[number];

/** LOW=...,MEDIUM=...,HIGH=...: the amount-over-tier threshold of each risk tier. */
const tierThresholds = (raw: string, name: string): Record<TierName, bigint> => {
  const out: Partial<Record<TierName, bigint>> = {};
  for (const part of parsers.list(raw, name)) {
    const [tier, amount] = part.split('=').map((s) => s.trim());
    if (!RISK_TIERS.includes(tier as TierName) || amount === undefined) {
      throw new ConfigError(name, `must be TIER=amount pairs for LOW, MEDIUM and HIGH, got "${part}"`);
    }
    out[tier as TierName] = minorUnits(amount, name);
  }
  const missing = RISK_TIERS.filter((t) => out[t] === undefined);
  if (missing.length) throw new ConfigError(name, `has no threshold for ${missing.join(', ')}`);
  return out as Record<TierName, bigint>;
};

export const RISK_RULE_NAMES = ['AMOUNT_OVER_TIER_THRESHOLD', 'VELOCITY', 'NEW_PAYEE', 'IMPOSSIBLE_TRAVEL'] as const;
export type RuleName = (typeof RISK_RULE_NAMES)[number];

/** RULE=REVIEW|REJECT for every rule: what a rule that fires does to the order. */
const ruleActions = (raw: string, name: string): Record<RuleName, RiskAction> => {
  const out: Partial<Record<RuleName, RiskAction>> = {};
  for (const part of parsers.list(raw, name)) {
    const [rule, action] = part.split('=').map((s) => s.trim());
    if (!RISK_RULE_NAMES.includes(rule as RuleName) || (action !== 'REVIEW' && action !== 'REJECT')) {
      throw new ConfigError(name, `must be RULE=REVIEW|REJECT pairs for ${RISK_RULE_NAMES.join(', ')}, got "${part}"`);
    }
    out[rule as RuleName] = action === 'REVIEW' ? RiskAction.RISK_ACTION_REVIEW : RiskAction.RISK_ACTION_REJECT;
  }
  const missing = RISK_RULE_NAMES.filter((r) => out[r] === undefined);
  if (missing.length) throw new ConfigError(name, `has no action for ${missing.join(', ')}`);
  return out as Record<RuleName, RiskAction>;
};

/** Variables only the payment service reads (with the kit's baseSpec, the whole list). */
export const paymentSpec = {
  ...serviceKeySpec,
  sagaConsumerEnabled: {
    name: 'SAGA_CONSUMER_ENABLED',
    description: 'run the JetStream consumer that drives cross-shard payment sagas in this process',
    parse: parsers.bool,
    default: 'true',
  },
  sagaConsumerName: {
    name: 'SAGA_CONSUMER_NAME',
    description: 'durable name of the saga consumer on stream CB_PAYMENT (one per deployment)',
    parse: parsers.string,
    default: 'payment-saga',
  },
  sagaSweepIntervalMs: {
    name: 'SAGA_SWEEP_INTERVAL_MS',
    description:
      'longest the sweeper sleeps between re-driving orders whose step is due (a retry, a dead driver, an escrow auto-release); it wakes at the earliest due step, this is the safety net; 0 disables the sweeper',
    parse: parsers.int(0, 3_600_000),
    default: '5000',
  },
  sagaMaxBackoffMs: {
    name: 'SAGA_MAX_BACKOFF_MS',
    description: 'longest wait between two attempts at a saga step after transient failures',
    parse: parsers.int(100, 3_600_000),
    default: '30000',
  },
  ledgerCallTimeoutMs: {
    name: 'LEDGER_CALL_TIMEOUT_MS',
    description: 'deadline of each call to the account, customer and product services',
    parse: parsers.int(100, 600_000),
    default: '5000',
  },
  accountServiceAddress: {
    name: 'ACCOUNT_SERVICE_ADDRESS',
    description: 'host:port of the account service (the ledger every payment books on)',
    parse: parsers.address,
  },
  customerServiceAddress: {
    name: 'CUSTOMER_SERVICE_ADDRESS',
    description: "host:port of the customer service (the payer's risk tier)",
    parse: parsers.address,
  },
  productServiceAddress: {
    name: 'PRODUCT_SERVICE_ADDRESS',
    description: "host:port of the product service (the payer account's per-transaction and daily limits)",
    parse: parsers.address,
  },
  orderBatchesInFlight: {
    name: 'ORDER_BATCHES_IN_FLIGHT',
    description:
      'group commit of new payment orders: transactions (and statements claiming idempotency keys or advancing saga steps) in flight per shard, each for many orders at once; 0: one of each per order',
    parse: parsers.int(0, 64),
    default: '2',
  },
  orderBatchMax: {
    name: 'ORDER_BATCH_MAX',
    description:
      'group commit of new payment orders: orders in one transaction (key claims, step advances in one statement) at most',
    parse: parsers.int(1, 10_000),
    default: '256',
  },
  riskTierCacheMs: {
    name: 'RISK_TIER_CACHE_MS',
    description:
      "how long a payer customer's risk tier is kept in process (dropped at once by the customer's events on CB_CUSTOMER; this bounds staleness should one be lost); 0: asked for every order",
    parse: parsers.int(0, 3_600_000),
    default: '60000',
  },
  limitTimeZone: {
    name: 'LIMIT_TIME_ZONE',
    description: 'IANA time zone whose calendar day the daily debit limit counts in',
    parse: timeZone,
    default: 'UTC',
  },
  riskTierThresholds: {
    name: 'RISK_TIER_THRESHOLDS',
    description:
      "amount-over-tier rule: the largest amount (minor units) per payer risk tier; 0 switches a tier's check off",
    parse: tierThresholds,
    default: 'LOW=5000000,MEDIUM=1000000,HIGH=200000',
  },
  riskVelocityWindowSeconds: {
    name: 'RISK_VELOCITY_WINDOW_SECONDS',
    description: "velocity rule: the window a customer's payments are counted in",
    parse: parsers.int(1, 31 * 86_400),
    default: '3600',
  },
  riskVelocityMaxPayments: {
    name: 'RISK_VELOCITY_MAX_PAYMENTS',
    description: 'velocity rule: most payments a customer may make in the window (0: no count check)',
    parse: parsers.int(0, 1_000_000),
    default: '100',
  },
  riskVelocityMaxAmount: {
    name: 'RISK_VELOCITY_MAX_AMOUNT',
    description: 'velocity rule: most money (minor units) a customer may pay in the window (0: no amount check)',
    parse: minorUnits,
    default: '10000000',
  },
  riskNewPayeeThreshold: {
    name: 'RISK_NEW_PAYEE_THRESHOLD',
    description: 'new-payee rule: a first payment to a payee above this amount (minor units) fires (0: off)',
    parse: minorUnits,
    default: '100000',
  },
  riskTravelMaxKmh: {
    name: 'RISK_TRAVEL_MAX_KMH',
    description: "impossible-travel rule: the fastest plausible speed between two of a customer's sessions (0: off)",
    parse: parsers.int(0, 100_000),
    default: '900',
  },
  riskActions: {
    name: 'RISK_ACTIONS',
    description: 'what each risk rule does when it fires: RULE=REVIEW|REJECT for every rule',
    parse: ruleActions,
    default: 'AMOUNT_OVER_TIER_THRESHOLD=REVIEW,VELOCITY=REJECT,NEW_PAYEE=REVIEW,IMPOSSIBLE_TRAVEL=REVIEW',
  },
} satisfies Spec;

export type PaymentConfig = ReturnType<typeof loadPaymentConfig>;

export function loadPaymentConfig(env: NodeJS.ProcessEnv = process.env) {
  const c = loadConfig({ ...baseSpec, ...paymentSpec }, env);
  return { ...c, shardUrls: loadShardUrls(c.shardCount, env), shards: ShardMap.parse(c.shardMap, c.shardCount) };
}
