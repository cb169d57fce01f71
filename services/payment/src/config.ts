import { baseSpec, loadConfig, loadShardUrls, parsers, ShardMap, type Spec } from '@corebank/kit';

/** Variables only the payment service reads (with the kit's baseSpec, the whole list). */
export const paymentSpec = {
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
    description: 'how often orders whose step is due (next_attempt_at passed) are re-driven; 0 disables the sweeper',
    parse: parsers.int(0, 3_600_000),
    default: '1000',
  },
  sagaMaxBackoffMs: {
    name: 'SAGA_MAX_BACKOFF_MS',
    description: 'longest wait between two attempts at a saga step after transient failures',
    parse: parsers.int(100, 3_600_000),
    default: '30000',
  },
  ledgerCallTimeoutMs: {
    name: 'LEDGER_CALL_TIMEOUT_MS',
    description: 'deadline of each call to the account service from a saga step',
    parse: parsers.int(100, 600_000),
    default: '5000',
  },
  accountServiceAddress: {
    name: 'ACCOUNT_SERVICE_ADDRESS',
    description: 'host:port of the account service (the ledger every payment books on)',
    parse: parsers.address,
  },
} satisfies Spec;

export type PaymentConfig = ReturnType<typeof loadPaymentConfig>;

export function loadPaymentConfig(env: NodeJS.ProcessEnv = process.env) {
  const c = loadConfig({ ...baseSpec, ...paymentSpec }, env);
  return { ...c, shardUrls: loadShardUrls(c.shardCount, env), shards: ShardMap.parse(c.shardMap, c.shardCount) };
}
