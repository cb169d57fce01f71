// The environment the local launcher gives each service: the same variable names the Helm chart
// sets (a test checks that the two agree with the services' declared config).
import { shardUrlVar } from '@corebank/kit';

export interface LocalOptions {
  pgUrl: string;
  natsUrl: string;
  shards: number;
  authTokenKey: string;
  grpcPort: number;
  metricsPort: number;
}

export const localDatabase = (service: string, shard: number) => `corebank_${service}_s${shard}`;

export function localServiceEnv(service: string, o: LocalOptions): Record<string, string> {
  const env: Record<string, string> = {
    GRPC_PORT: String(o.grpcPort),
    GRPC_HOST: '127.0.0.1',
    METRICS_PORT: String(o.metricsPort),
    LOG_LEVEL: 'info',
    SHARD_COUNT: String(o.shards),
    SHARD_MAP: '',
    DATABASE_POOL_MAX: '10',
    NATS_URL: o.natsUrl,
    NATS_USER: '',
    NATS_PASSWORD: '',
    AUTH_TOKEN_KEY: o.authTokenKey,
    SHUTDOWN_GRACE_MS: '5000',
    READINESS_DRAIN_MS: '0',
    GRPC_MAX_CONNECTION_AGE_MS: '300000',
  };
  for (let i = 0; i < o.shards; i++) env[shardUrlVar(i)] = `${o.pgUrl}/${localDatabase(service, i)}`;
  if (service === 'account') {
    Object.assign(env, { RELAY_ENABLED: 'true', EXPIRY_SWEEP_INTERVAL_MS: '1000', SYSTEM_CURRENCIES: 'EUR,USD,GBP' });
  }
  return env;
}
