// Typed configuration from environment variables, validated once at start-up.
import { parseJwks, parseSigningJwk, readInlineOrFile, type JwksSource } from './auth.js';

// Every variable a service reads is declared here (or in the service's own spec) so that
// the Helm chart and the local launcher can be checked against one list.

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`invalid configuration: ${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Parser<T> = (raw: string, name: string) => T;

export interface VarSpec<T> {
  /** The environment variable's name; `{i}` stands for a shard index. */
  name: string;
  description: string;
  parse: Parser<T>;
  /** Absent means the variable is required. */
  default?: string;
  /** Holds a credential: the chart must take it from a Secret, the logs must never show it. */
  secret?: boolean;
}

export const parsers = {
  string: ((raw) => raw) as Parser<string>,
  int:
    (min: number, max: number): Parser<number> =>
    (raw, name) => {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`);
      const n = Number(raw);
      if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
      return n;
    },
  bool: ((raw, name) => {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
    throw new ConfigError(name, `must be true or false, got "${raw}"`);
  }) as Parser<boolean>,
  oneOf:
    <const T extends string>(...values: T[]): Parser<T> =>
    (raw, name) => {
      if (!(values as string[]).includes(raw))
        throw new ConfigError(name, `must be one of ${values.join(', ')}, got "${raw}"`);
      return raw as T;
    },
  list: ((raw) =>
    raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) as Parser<string[]>,
  url:
    (...protocols: string[]): Parser<string> =>
    (raw, name) => {
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        throw new ConfigError(name, 'must be a URL');
      }
      if (!protocols.includes(u.protocol.replace(':', ''))) {
        throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${u.protocol}`);
      }
      return raw;
    },
  /** host:port, with a DNS name, IPv4 or [IPv6] host: where another service listens. */
  address: ((raw, name) => {
    const v = raw.trim();
    if (
      !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):\d{1,5}$/.test(v) ||
      Number(v.split(':').at(-1)) > 65535
    ) {
      throw new ConfigError(name, `must be host:port, got "${raw}"`);
    }
    return v;
  }) as Parser<string>,
  /** `name=n` pairs, comma-separated (names: letters, digits, `*`, `.`, `:`, `_`, `-`; n >= 1). */
  rates: ((raw, name) => {
    const rates = new Map<string, number>();
    for (const pair of raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const m = /^([A-Za-z0-9*][\w.:*-]{0,127})=(\d{1,9})$/.exec(pair);
      if (!m || Number(m[2]) < 1)
        throw new ConfigError(name, `must be name=rate pairs with rates of at least 1, got "${pair}"`);
      rates.set(m[1]!, Number(m[2]));
    }
    return rates;
  }) as Parser<Map<string, number>>,
  /** A JWKS of public keys: inline JSON, or the path of a file (reloaded when it changes). */
  jwks: ((raw, name) => {
    try {
      const { text, path } = readInlineOrFile(raw);
      const keys = parseJwks(text);
      if (keys.length === 0) throw new Error('holds no keys');
      return { keys, ...(path ? { path } : {}) };
    } catch (err) {
      throw new ConfigError(name, (err as Error).message);
    }
  }) as Parser<JwksSource>,
  /** A private signing key: an inline JWK, or the path of a file holding it. */
  signingJwk: ((raw, name) => {
    try {
      return parseSigningJwk(readInlineOrFile(raw).text);
    } catch (err) {
      throw new ConfigError(name, (err as Error).message);
    }
  }) as Parser<ReturnType<typeof parseSigningJwk>>,
  secretKey: ((raw, name) => {
    const key = Buffer.from(raw, 'base64');
    if (key.length < 32) throw new ConfigError(name, 'must be at least 32 bytes, base64-encoded');
    return key;
  }) as Parser<Buffer>,
};

export type Spec = Record<string, VarSpec<unknown>>;
export type ConfigOf<S extends Spec> = { [K in keyof S]: S[K] extends VarSpec<infer T> ? T : never };

export function loadConfig<S extends Spec>(spec: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(spec)) {
    const raw = env[v.name] ?? v.default;
    if (raw === undefined || (raw === '' && v.default === undefined)) {
      throw new ConfigError(v.name, `is required (${v.description})`);
    }
    out[key] = v.parse(raw, v.name);
  }
  return out as ConfigOf<S>;
}

/** Variables every service reads. */
export const baseSpec = {
  grpcPort: {
    name: 'GRPC_PORT',
    description: 'port of the gRPC server',
    parse: parsers.int(0, 65535),
    default: '50051',
  },
  grpcHost: {
    name: 'GRPC_HOST',
    description: 'address the gRPC server binds',
    parse: parsers.string,
    default: '0.0.0.0',
  },
  metricsPort: {
    name: 'METRICS_PORT',
    description: 'port of the Prometheus /metrics endpoint; 0 disables it',
    parse: parsers.int(0, 65535),
    default: '9464',
  },
  logLevel: {
    name: 'LOG_LEVEL',
    description: 'pino log level',
    parse: parsers.oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    default: 'info',
  },
  shardCount: {
    name: 'SHARD_COUNT',
    description: 'number of database shards',
    parse: parsers.int(1, 1024),
    default: '1',
  },
  shardMap: {
    name: 'SHARD_MAP',
    description: 'JSON shard map {"version":n,"ranges":[[firstBucket,lastBucket,shard],...]}; empty = even split',
    parse: parsers.string,
    default: '',
  },
  dbPoolMax: {
    name: 'DATABASE_POOL_MAX',
    description: 'connections per shard pool',
    parse: parsers.int(1, 200),
    default: '10',
  },
  dbPreparedStatements: {
    name: 'DATABASE_PREPARED_STATEMENTS',
    description:
      'run the hot fixed SQL as named prepared statements, planned once per connection (false behind a transaction-pooling PgBouncer older than 1.21)',
    parse: parsers.bool,
    default: 'true',
  },
  relayEnabled: {
    name: 'RELAY_ENABLED',
    description: "run the service's outbox relay in this process",
    parse: parsers.bool,
    default: 'true',
  },
  natsUrl: {
    name: 'NATS_URL',
    description: 'NATS server URL(s), comma-separated',
    parse: parsers.string,
    default: 'nats://127.0.0.1:4222',
  },
  natsUser: { name: 'NATS_USER', description: 'NATS user name', parse: parsers.string, default: '' },
  natsPassword: {
    name: 'NATS_PASSWORD',
    description: 'NATS password',
    parse: parsers.string,
    default: '',
    secret: true,
  },
  authJwks: {
    name: 'AUTH_JWKS',
    description:
      'public keys bearer tokens are verified with: a JWKS (ES256/EdDSA keys, each with a kid), inline JSON or the path of a file that is re-read when it changes',
    parse: parsers.jwks,
  },
  authIssuer: {
    name: 'AUTH_ISSUER',
    description: 'the iss claim every bearer token must carry',
    parse: parsers.string,
    default: 'corebank',
  },
  shutdownGraceMs: {
    name: 'SHUTDOWN_GRACE_MS',
    description: 'how long in-flight RPCs may drain on SIGTERM before they are cut',
    parse: parsers.int(0, 600_000),
    default: '10000',
  },
  readinessDrainMs: {
    name: 'READINESS_DRAIN_MS',
    description: 'how long health reports NOT_SERVING before the server stops accepting (one readiness period)',
    parse: parsers.int(0, 600_000),
    default: '0',
  },
  admissionMaxInFlight: {
    name: 'ADMISSION_MAX_IN_FLIGHT',
    description: 'calls served at once by one process; beyond it calls get RESOURCE_EXHAUSTED at once (0: no limit)',
    parse: parsers.int(0, 1_000_000),
    default: '512',
  },
  admissionReadReservePercent: {
    name: 'ADMISSION_READ_RESERVE_PERCENT',
    description: 'percent of ADMISSION_MAX_IN_FLIGHT that only reads (Get, List, Check, Preview) may use',
    parse: parsers.int(0, 90),
    default: '20',
  },
  admissionLatencyTargetMs: {
    name: 'ADMISSION_LATENCY_TARGET_MS',
    description:
      "mean time of admitted writes the write limit adapts to keep (within the writes' share of ADMISSION_MAX_IN_FLIGHT); 0: a fixed limit",
    parse: parsers.int(0, 600_000),
    default: '0',
  },
  channelRateLimits: {
    name: 'CHANNEL_RATE_LIMITS',
    description: 'calls per second per calling channel, e.g. "mobile=500,*=2000" (* = any other channel); empty: none',
    parse: parsers.rates,
    default: '',
  },
  tlsCertFile: {
    name: 'TLS_CERT_FILE',
    description:
      "path of this service's PEM certificate (chain): the gRPC server presents it, and the service presents it as its client certificate when it calls others; re-read when it changes; empty: plaintext",
    parse: parsers.string,
    default: '',
  },
  tlsKeyFile: {
    name: 'TLS_KEY_FILE',
    description: 'path of the PEM private key of TLS_CERT_FILE; re-read when it changes',
    parse: parsers.string,
    default: '',
  },
  tlsCaFile: {
    name: 'TLS_CA_FILE',
    description:
      'path of a PEM CA bundle: when set, every caller must present a client certificate it signed (mutual TLS), and the servers this service calls are verified against it; re-read when it changes',
    parse: parsers.string,
    default: '',
  },
  tlsRequired: {
    name: 'TLS_REQUIRED',
    description:
      'refuse to start without TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE (mutual TLS), instead of serving and calling in plaintext',
    parse: parsers.bool,
    default: 'false',
  },
  tlsReloadIntervalMs: {
    name: 'TLS_RELOAD_INTERVAL_MS',
    description: 'how often the TLS files are checked for a renewed certificate',
    parse: parsers.int(100, 3_600_000),
    default: '10000',
  },
  grpcHealthPort: {
    name: 'GRPC_HEALTH_PORT',
    description:
      "port of a plaintext listener serving only the gRPC health service, for Kubernetes' native gRPC probes (which cannot speak TLS); 0: none",
    parse: parsers.int(0, 65535),
    default: '0',
  },
  auditRetentionDays: {
    name: 'AUDIT_RETENTION_DAYS',
    description: 'days audit records are kept before the hourly purge deletes them (0: kept for ever)',
    parse: parsers.int(0, 36_500),
    default: '2557',
  },
  auditFlushMs: {
    name: 'AUDIT_FLUSH_MS',
    description: 'longest an audit record waits in the in-process buffer before it is written',
    parse: parsers.int(1, 10_000),
    default: '5',
  },
  auditBatchSize: {
    name: 'AUDIT_BATCH_SIZE',
    description: 'audit records that trigger a write at once (one multi-row insert per shard)',
    parse: parsers.int(1, 10_000),
    default: '500',
  },
  auditBufferMax: {
    name: 'AUDIT_BUFFER_MAX',
    description:
      'audit records held in memory at most while the database is slow; beyond, new ones are dropped (counted)',
    parse: parsers.int(1, 1_000_000),
    default: '50000',
  },
  maxConnectionAgeMs: {
    name: 'GRPC_MAX_CONNECTION_AGE_MS',
    description: 'clients reconnect after this long, so pods added by the autoscaler get traffic',
    parse: parsers.int(0, 86_400_000),
    default: '300000',
  },
} satisfies Spec;

/**
 * The private key a service signs its own tokens with (kid service:<name>), for services that
 * call other services. Its public half is in the JWKS; no other service holds it.
 */
export const serviceKeySpec = {
  authServiceKey: {
    name: 'AUTH_SERVICE_KEY',
    description:
      "this service's private signing key (a JWK with kid service:<name>), inline JSON or the path of a file",
    parse: parsers.signingJwk,
    secret: true,
  },
} satisfies Spec;

/** One database URL per shard: SHARD_0_DATABASE_URL ... SHARD_{n-1}_DATABASE_URL. */
export const shardUrlVar = (i: number) => `SHARD_${i}_DATABASE_URL`;

export function loadShardUrls(count: number, env: NodeJS.ProcessEnv = process.env): string[] {
  const parse = parsers.url('postgres', 'postgresql');
  return Array.from({ length: count }, (_, i) => {
    const raw = env[shardUrlVar(i)];
    if (!raw) throw new ConfigError(shardUrlVar(i), `is required: SHARD_COUNT is ${count}`);
    return parse(raw, shardUrlVar(i));
  });
}
