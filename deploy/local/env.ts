// The environment the local launcher gives each service: the same variable names the Helm chart
// sets (a test checks that the two agree with the services' declared config).
import { shardUrlVar } from '@corebank/kit';

export type LocalService = 'account' | 'customer' | 'product' | 'payment' | 'loan';

export interface LocalOptions {
  pgUrl: string;
  natsUrl: string;
  shards: number;
  /** AUTH_JWKS: the JWKS (a file path or inline JSON) every service verifies tokens with. */
  authJwks: string;
  /** AUTH_SERVICE_KEY of each service that calls others (a file path or inline JWK). */
  authServiceKeys?: Partial<Record<LocalService, string>>;
  grpcPort: number;
  metricsPort: number;
  /** host:port of each service, for the ones that call it; defaults to LOCAL_ADDRESSES. */
  addresses?: Partial<Record<LocalService, string>>;
  /** CUSTOMER_ID_HASH_KEY (base64, >= 32 bytes): required for the customer service. */
  customerIdHashKey?: string;
}

/** Where `npm run up` puts each service (the account service's defaults point at these too). */
export const LOCAL_ADDRESSES: Record<LocalService, string> = {
  account: '127.0.0.1:50051',
  customer: '127.0.0.1:50052',
  product: '127.0.0.1:50053',
  payment: '127.0.0.1:50054',
  loan: '127.0.0.1:50055',
};

/** Which services each service calls: it gets <NAME>_SERVICE_ADDRESS for each (as in the chart's `calls`). */
export const LOCAL_CALLS: Record<string, LocalService[]> = {
  account: ['customer', 'product', 'loan'],
  customer: ['account'],
  product: [],
  payment: ['account', 'customer', 'product'],
  loan: ['account', 'customer', 'product'],
};

/** Services whose data is global (one database), not sharded. */
export const GLOBAL_SERVICES = new Set(['product']);

export const localDatabase = (service: string, shard: number) => `corebank_${service}_s${shard}`;
/** The one global database; each service keeps its tables in its own schema there. */
export const localGlobalDatabase = 'corebank_global';

/**
 * Sharded services that also use the global database: the account service keeps the bank's day
 * there (the business date, the close of business); the loan service reads the business date.
 */
export const ALSO_GLOBAL_SERVICES = new Set(['account', 'loan']);

/** The databases `npm run up` must create for a service. */
export function localDatabases(service: string, shards: number): string[] {
  if (GLOBAL_SERVICES.has(service)) return [localGlobalDatabase];
  const own = Array.from({ length: shards }, (_, i) => localDatabase(service, i));
  return ALSO_GLOBAL_SERVICES.has(service) ? [...own, localGlobalDatabase] : own;
}

export function localServiceEnv(service: string, o: LocalOptions): Record<string, string> {
  const env: Record<string, string> = {
    GRPC_PORT: String(o.grpcPort),
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: String(o.metricsPort),
    LOG_LEVEL: 'info',
    DATABASE_POOL_MAX: '10',
    DATABASE_PREPARED_STATEMENTS: 'true',
    NATS_URL: o.natsUrl,
    NATS_USER: '',
    NATS_PASSWORD: '',
    AUTH_JWKS: o.authJwks,
    AUTH_ISSUER: 'corebank',
    SHUTDOWN_GRACE_MS: '5000',
    READINESS_DRAIN_MS: '0',
    GRPC_MAX_CONNECTION_AGE_MS: '300000',
    ADMISSION_MAX_IN_FLIGHT: '512',
    ADMISSION_READ_RESERVE_PERCENT: '20',
    ADMISSION_LATENCY_TARGET_MS: '0',
    CHANNEL_RATE_LIMITS: '',
    // Plaintext: `npm run up` configures no certificates (the chart's tls switch turns TLS on).
    TLS_CERT_FILE: '',
    TLS_KEY_FILE: '',
    TLS_CA_FILE: '',
    TLS_REQUIRED: 'false',
    TLS_RELOAD_INTERVAL_MS: '10000',
    GRPC_HEALTH_PORT: '0',
    AUDIT_RETENTION_DAYS: '30',
    AUDIT_FLUSH_MS: '5',
    AUDIT_BATCH_SIZE: '500',
    AUDIT_BUFFER_MAX: '50000',
  };
  if (GLOBAL_SERVICES.has(service) || ALSO_GLOBAL_SERVICES.has(service)) {
    env.GLOBAL_DATABASE_URL = `${o.pgUrl}/${localGlobalDatabase}`;
  }
  if (!GLOBAL_SERVICES.has(service)) {
    Object.assign(env, { SHARD_COUNT: String(o.shards), SHARD_MAP: '' });
    for (let i = 0; i < o.shards; i++) env[shardUrlVar(i)] = `${o.pgUrl}/${localDatabase(service, i)}`;
  }
  if ((LOCAL_CALLS[service] ?? []).length > 0) {
    const key = o.authServiceKeys?.[service as LocalService];
    if (!key)
      throw new Error(`localServiceEnv(${service}): authServiceKeys.${service} is required (it calls other services)`);
    env.AUTH_SERVICE_KEY = key;
  }
  for (const callee of LOCAL_CALLS[service] ?? []) {
    env[`${callee.toUpperCase()}_SERVICE_ADDRESS`] = o.addresses?.[callee] ?? LOCAL_ADDRESSES[callee];
  }
  if (service === 'account') {
    Object.assign(env, {
      RELAY_ENABLED: 'true',
      EXPIRY_SWEEP_INTERVAL_MS: '5000',
      SYSTEM_CURRENCIES: 'EUR,USD,GBP',
      LEDGER_BATCHES_IN_FLIGHT: '2',
      COB_WORKER_ENABLED: 'true',
      COB_WORKER_CONCURRENCY: '2',
      COB_CHUNKS_PER_SHARD: '4',
      COB_ACK_WAIT_MS: '60000',
      COB_STEPS: 'loans,deposits,gl',
      // The local bank's days close when asked (npm run cob), not by the clock.
      COB_SCHEDULE: '',
      COB_TIME_ZONE: 'UTC',
    });
  }
  if (service === 'customer') {
    if (!o.customerIdHashKey) throw new Error('localServiceEnv(customer): customerIdHashKey is required');
    Object.assign(env, { RELAY_ENABLED: 'true', CUSTOMER_ID_HASH_KEY: o.customerIdHashKey });
  }
  if (service === 'product') env.RELAY_ENABLED = 'true';
  if (service === 'payment') {
    Object.assign(env, {
      RELAY_ENABLED: 'true',
      SAGA_CONSUMER_ENABLED: 'true',
      SAGA_CONSUMER_NAME: 'payment-saga',
      SAGA_SWEEP_INTERVAL_MS: '5000',
      SAGA_MAX_BACKOFF_MS: '30000',
      LEDGER_CALL_TIMEOUT_MS: '5000',
      ORDER_BATCHES_IN_FLIGHT: '2',
      ORDER_BATCH_MAX: '256',
      RISK_TIER_CACHE_MS: '60000',
      LIMIT_TIME_ZONE: 'UTC',
      RISK_TIER_THRESHOLDS: 'LOW=5000000,MEDIUM=1000000,HIGH=200000',
      RISK_VELOCITY_WINDOW_SECONDS: '3600',
      RISK_VELOCITY_MAX_PAYMENTS: '100',
      RISK_VELOCITY_MAX_AMOUNT: '10000000',
      RISK_NEW_PAYEE_THRESHOLD: '100000',
      RISK_TRAVEL_MAX_KMH: '900',
      RISK_ACTIONS: 'AMOUNT_OVER_TIER_THRESHOLD=REVIEW,VELOCITY=REJECT,NEW_PAYEE=REVIEW,IMPOSSIBLE_TRAVEL=REVIEW',
    });
  }
  if (service === 'loan') {
    Object.assign(env, {
      RELAY_ENABLED: 'true',
      PEER_CALL_TIMEOUT_MS: '5000',
      DISBURSEMENT_SWEEP_INTERVAL_MS: '5000',
      DISBURSEMENT_SWEEP_AGE_MS: '10000',
      LOAN_SCORECARD: '',
    });
  }
  return env;
}
