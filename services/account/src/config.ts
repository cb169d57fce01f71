import {
  baseSpec,
  ConfigError,
  serviceKeySpec,
  loadConfig,
  loadShardUrls,
  parsers,
  ShardMap,
  type Spec,
} from '@corebank/kit';

/** Variables only the account service reads (with the kit's baseSpec, the whole list). */
export const accountSpec = {
  ...serviceKeySpec,
  expirySweepIntervalMs: {
    name: 'EXPIRY_SWEEP_INTERVAL_MS',
    description:
      'longest the expiry sweeper sleeps (it wakes when the earliest hold expires; this is the safety net for holds other replicas open); 0 disables the sweeper in this process',
    parse: parsers.int(0, 3_600_000),
    default: '5000',
  },
  systemCurrencies: {
    name: 'SYSTEM_CURRENCIES',
    description: 'currencies for which every shard has its GL accounts (cash, in-transit, loan interest income)',
    parse: parsers.list,
    default: 'EUR,USD,GBP',
  },
  batchesInFlight: {
    name: 'LEDGER_BATCHES_IN_FLIGHT',
    description: 'group-commit batches committing at once per shard in this process',
    parse: parsers.int(1, 16),
    default: '2',
  },
  customerServiceAddress: {
    name: 'CUSTOMER_SERVICE_ADDRESS',
    description: 'host:port of the customer service (account opening checks the customer there)',
    parse: parsers.address,
    default: '127.0.0.1:50052',
  },
  globalDatabaseUrl: {
    name: 'GLOBAL_DATABASE_URL',
    description:
      'PostgreSQL URL of the global (unsharded) database: the business date and the close of business (schema day)',
    parse: parsers.url('postgres', 'postgresql'),
  },
  loanServiceAddress: {
    name: 'LOAN_SERVICE_ADDRESS',
    description: "host:port of the loan service (the close of business runs each shard's loan day there)",
    parse: parsers.address,
    default: '127.0.0.1:50055',
  },
  cobWorkerEnabled: {
    name: 'COB_WORKER_ENABLED',
    description: 'whether this process takes close-of-business chunks from the CB_COB work queue',
    parse: parsers.bool,
    default: 'true',
  },
  cobWorkerConcurrency: {
    name: 'COB_WORKER_CONCURRENCY',
    description: 'close-of-business chunks this process runs at once',
    parse: parsers.int(1, 64),
    default: '2',
  },
  cobAckWaitMs: {
    name: 'COB_ACK_WAIT_MS',
    description:
      'how long a close-of-business chunk may go without its worker reporting before another worker takes it (a worker killed mid-chunk); workers report every third of it',
    parse: parsers.int(1000, 3_600_000),
    default: '60000',
  },
  cobChunksPerShard: {
    name: 'COB_CHUNKS_PER_SHARD',
    description:
      'chunks per shard for the close-of-business steps over many entities (loans, deposits): more lets more workers share a shard',
    parse: parsers.int(1, 4096),
    default: '16',
  },
  cobSteps: {
    name: 'COB_STEPS',
    description:
      'the close-of-business steps this bank runs, in their fixed order (loans, deposits, gl); a bank without the loan service leaves out loans',
    parse: (raw: string, name: string) => {
      const steps = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const known = ['loans', 'deposits', 'gl'];
      const bad = steps.find((s) => !known.includes(s));
      if (bad !== undefined) throw new ConfigError(name, `knows only ${known.join(', ')}, got "${bad}"`);
      if (!steps.includes('gl')) throw new ConfigError(name, 'must include gl (the trial balance closes the day)');
      return known.filter((s) => steps.includes(s)) as ('loans' | 'deposits' | 'gl')[];
    },
    default: 'loans,deposits,gl',
  },
  cobSchedule: {
    name: 'COB_SCHEDULE',
    description:
      'local time (HH:MM, in COB_TIME_ZONE) after which the close of business closes the days the calendar has finished; empty: only RunCloseOfBusiness and npm run cob start it',
    parse: (raw: string, name: string) => {
      const v = raw.trim();
      if (v && !/^([01]\d|2[0-3]):[0-5]\d$/.test(v))
        throw new ConfigError(name, `must be HH:MM or empty, got "${raw}"`);
      return v;
    },
    default: '',
  },
  cobTimeZone: {
    name: 'COB_TIME_ZONE',
    description: "the bank's time zone for COB_SCHEDULE (IANA, for example Europe/Berlin)",
    parse: (raw: string, name: string) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: raw });
      } catch {
        throw new ConfigError(name, `is not a time zone, got "${raw}"`);
      }
      return raw;
    },
    default: 'UTC',
  },
  productServiceAddress: {
    name: 'PRODUCT_SERVICE_ADDRESS',
    description: 'host:port of the product service (account opening reads the product version there)',
    parse: parsers.address,
    default: '127.0.0.1:50053',
  },
} satisfies Spec;

export type AccountConfig = ReturnType<typeof loadAccountConfig>;

export function loadAccountConfig(env: NodeJS.ProcessEnv = process.env) {
  const c = loadConfig({ ...baseSpec, ...accountSpec }, env);
  return { ...c, shardUrls: loadShardUrls(c.shardCount, env), shards: ShardMap.parse(c.shardMap, c.shardCount) };
}
