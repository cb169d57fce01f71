import { baseSpec, ConfigError, loadConfig, loadShardUrls, parsers, ShardMap, type Spec } from '@corebank/kit';

/** host:port (a DNS name, IPv4 or [IPv6] host) of another service. */
export const parseAddress = (raw: string, name: string): string => {
  const v = raw.trim();
  if (
    !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):\d{1,5}$/.test(v) ||
    Number(v.split(':').at(-1)) > 65535
  ) {
    throw new ConfigError(name, `must be host:port, got "${raw}"`);
  }
  return v;
};

/** Variables only the customer service reads (with the kit's baseSpec, the whole list). */
export const customerSpec = {
  relayEnabled: {
    name: 'RELAY_ENABLED',
    description: 'run the outbox relay in this process',
    parse: parsers.bool,
    default: 'true',
  },
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
    parse: parseAddress,
  },
} satisfies Spec;

export type CustomerConfig = ReturnType<typeof loadCustomerConfig>;

export function loadCustomerConfig(env: NodeJS.ProcessEnv = process.env) {
  const c = loadConfig({ ...baseSpec, ...customerSpec }, env);
  return { ...c, shardUrls: loadShardUrls(c.shardCount, env), shards: ShardMap.parse(c.shardMap, c.shardCount) };
}
