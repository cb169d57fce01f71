import { baseSpec, loadConfig, parsers, ShardMap, ShardRouter, type Spec } from '@corebank/kit';

// The catalog is global (one database, not sharded): the product service reads no shard variables.
const { shardCount: _shardCount, shardMap: _shardMap, ...unshardedBase } = baseSpec;

/** Every variable the product service reads. */
export const productSpec = {
  ...unshardedBase,
  globalDatabaseUrl: {
    name: 'GLOBAL_DATABASE_URL',
    description: 'PostgreSQL URL of the global (unsharded) database that holds the product catalog',
    parse: parsers.url('postgres', 'postgresql'),
  },
} satisfies Spec;

export type ProductConfig = ReturnType<typeof loadProductConfig>;

export function loadProductConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(productSpec, env);
}

/**
 * The global database as a one-shard router, so that the kit's migrations, outbox relay and
 * shard-identity check work on it unchanged (it is "shard 0" of the product schema).
 */
export function globalRouter(config: Pick<ProductConfig, 'globalDatabaseUrl'>, poolMax: number, service: string) {
  return new ShardRouter(ShardMap.even(1), [config.globalDatabaseUrl], poolMax, service);
}
