import { baseSpec, serviceKeySpec, loadConfig, loadShardUrls, parsers, ShardMap, type Spec } from '@corebank/kit';

/** Variables only the customer service reads (with the kit's baseSpec, the whole list). */
export const customerSpec = {
  ...serviceKeySpec,
  idHashKey: {
    name: 'CUSTOMER_ID_HASH_KEY',
    description:
      'base64 HMAC-SHA256 key (>= 32 bytes) that hashes national ids and registration numbers; changing it orphans the stored hashes',
    parse: parsers.secretKey,
    secret: true,
  },
  accountServiceAddress: {
    name: 'ACCOUNT_SERVICE_ADDRESS',
    description: 'host:port of the account service, which freezing, unfreezing and closing a customer call',
    parse: parsers.address,
  },
} satisfies Spec;

export type CustomerConfig = ReturnType<typeof loadCustomerConfig>;

export function loadCustomerConfig(env: NodeJS.ProcessEnv = process.env) {
  const c = loadConfig({ ...baseSpec, ...customerSpec }, env);
  return { ...c, shardUrls: loadShardUrls(c.shardCount, env), shards: ShardMap.parse(c.shardMap, c.shardCount) };
}
