// values.schema.json and the chart's own checks reject bad values with a message naming the value,
// at `helm template` and `helm lint` time (so before anything reaches a cluster).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { chartDir, exampleValues, helm, template, withValuesFiles } from './helpers.js';

const example = YAML.parse(readFileSync(exampleValues, 'utf8'));
const defaults = YAML.parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));
const shard0 = defaults.database.shards[0];

/** [case, values overrides, expected message] */
const rejected: [string, object, RegExp][] = [
  ['an unknown top-level key', { replicaCount: 3 }, /at '': additional properties 'replicaCount' not allowed/],
  [
    'an unknown key in a service',
    { services: { account: { replica: 3 } } },
    /at '\/services\/account': additional properties 'replica' not allowed/,
  ],
  [
    'replicas: -1',
    { services: { account: { replicas: -1 } } },
    /at '\/services\/account\/replicas': minimum: got -1, want 0/,
  ],
  [
    'a shard without existingSecret',
    { database: { shards: [{ ...shard0, existingSecret: undefined }] } },
    /at '\/database\/shards\/0': missing property 'existingSecret'/,
  ],
  [
    'a password in the values',
    { database: { shards: [{ ...shard0, password: 'hunter2' }] } },
    /at '\/database\/shards\/0': additional properties 'password' not allowed/,
  ],
  ['no shard at all', { database: { shards: [] } }, /at '\/database\/shards': minItems: got 0, want 1/],
  [
    'an unknown sslmode',
    { database: { shards: [{ ...shard0, sslmode: 'sometimes' }] } },
    /at '\/database\/shards\/0\/sslmode': value must be one of/,
  ],
  [
    'a service setting that is not a string',
    { services: { account: { env: { RELAY_ENABLED: true } } } },
    /at '\/services\/account\/env\/RELAY_ENABLED': got boolean, want string/,
  ],
  [
    'a lower-case variable name',
    { services: { account: { env: { relay: 'x' } } } },
    /at '\/services\/account\/env': additional properties 'relay' not allowed/,
  ],
  ['no JWKS secret', { auth: { jwks: { existingSecret: '' } } }, /at '\/auth\/jwks\/existingSecret'/],
  ['the HMAC key of old', { auth: { tokenKeyKey: 'token-key' } }, /at '\/auth': additional properties 'tokenKeyKey'/],
  ['a bad image pull policy', { image: { pullPolicy: 'Sometimes' } }, /at '\/image\/pullPolicy': value must be one of/],
  [
    'both maxUnavailable and minAvailable',
    { services: { account: { pdb: { enabled: true, maxUnavailable: 1, minAvailable: 1 } } } },
    /at '\/services\/account\/pdb'/,
  ],
  [
    'a shard map range outside 0-1023',
    { database: { shardMap: { version: 1, ranges: [[0, 2047, 0]] } } },
    /at '\/database\/shardMap\/ranges\/0\/1': maximum: got 2,047, want 1,023/,
  ],
  // Checks in the templates (templates/_helpers.tpl corebank.validate).
  [
    'a shard map with a gap',
    {
      database: {
        shardMap: {
          version: 1,
          ranges: [
            [0, 500, 0],
            [502, 1023, 0],
          ],
        },
      },
    },
    /database\.shardMap\.ranges\[1\]: starts at bucket 502, expected 501/,
  ],
  [
    'a shard map that stops short',
    { database: { shardMap: { version: 1, ranges: [[0, 1000, 0]] } } },
    /database\.shardMap\.ranges: cover buckets 0-1000, expected 0-1023/,
  ],
  [
    'a shard map naming a shard that does not exist',
    { database: { shardMap: { version: 1, ranges: [[0, 1023, 1]] } } },
    /database\.shardMap\.ranges\[0\]: shard 1 does not exist \(database\.shards has 1 entries\)/,
  ],
  [
    'a shard map leaving a shard without buckets',
    { database: { shards: [shard0, shard0], shardMap: { version: 1, ranges: [[0, 1023, 0]] } } },
    /database\.shardMap\.ranges: shard 1 owns no bucket/,
  ],
  [
    'a NATS user without a password Secret',
    { nats: { user: 'corebank' } },
    /nats\.existingSecret: required when nats\.user is set/,
  ],
  [
    'a service setting a variable the chart owns',
    { services: { account: { env: { AUTH_SERVICE_KEY: '{}' } } } },
    /services\.account: AUTH_SERVICE_KEY is set by the chart/,
  ],
  [
    'a service setting a shard URL',
    { services: { account: { env: { SHARD_0_DATABASE_URL: 'postgres://x' } } } },
    /services\.account: SHARD_0_DATABASE_URL is set by the chart/,
  ],
  [
    'a termination grace period shorter than the drain',
    { shutdown: { graceMs: 30000, readinessDrainMs: 5000, terminationGracePeriodSeconds: 30 } },
    /shutdown\.terminationGracePeriodSeconds: 30 must exceed \(readinessDrainMs \+ graceMs\) \/ 1000 = 35/,
  ],
  [
    'a service shard list of another length',
    { services: { account: { shards: [shard0, shard0] } } },
    /services\.account\.shards: has 2 entries, database\.shards has 1/,
  ],
  [
    'autoscaling with min above max',
    { services: { account: { autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 } } } },
    /services\.account\.autoscaling: minReplicas 5 is above maxReplicas 2/,
  ],
  [
    'no enabled service',
    {
      services: {
        account: { enabled: false },
        customer: { enabled: false },
        loan: { enabled: false },
        payment: { enabled: false },
        product: { enabled: false },
      },
    },
    /services: no service is enabled/,
  ],
  [
    'a call to a service the chart does not have',
    { services: { customer: { calls: ['account', 'ledger'] } } },
    /services\.customer\.calls: ledger is not a service of this chart/,
  ],
  [
    'an address the chart sets from calls',
    { services: { customer: { env: { ACCOUNT_SERVICE_ADDRESS: 'elsewhere:50051' } } } },
    /services\.customer: ACCOUNT_SERVICE_ADDRESS is set by the chart from services\.customer\.calls/,
  ],
  [
    'an unknown storage',
    { services: { product: { storage: 'replicated' } } },
    /at '\/services\/product\/storage': value must be one of 'sharded', 'global'/,
  ],
  [
    'shards for a global service',
    { services: { product: { shards: [shard0] } } },
    /services\.product\.shards: a service with storage: global has no shards/,
  ],
  [
    'a global service without database.global',
    { database: { global: null } },
    /database\.global: required by services\.(product|account) \(storage: (global|sharded\+global)\)/,
  ],
  [
    'GLOBAL_DATABASE_URL in a service env',
    { services: { account: { env: { GLOBAL_DATABASE_URL: 'postgres://x' } } } },
    /services\.account: GLOBAL_DATABASE_URL is set by the chart/,
  ],
  ['an unknown TLS source', { tls: { enabled: true, source: 'vault' } }, /at '\/tls\/source': value must be one of/],
  [
    'a cert-manager issuer of an unknown kind',
    { tls: { certManager: { issuerRef: { name: 'ca', kind: 'Authority' } } } },
    /at '\/tls\/certManager\/issuerRef\/kind': value must be one of/,
  ],
  [
    'the TLS health port on the gRPC port',
    { tls: { enabled: true, healthPort: 50051 } },
    /tls\.healthPort: 50051 is already grpc\.port or metrics\.port/,
  ],
  [
    'TLS_REQUIRED in a service env',
    { services: { account: { env: { TLS_REQUIRED: 'false' } } } },
    /services\.account: TLS_REQUIRED is set by the chart/,
  ],
  [
    'a service name that cannot be a resource name',
    { services: { Billing_Svc: { enabled: false } } },
    /at '\/services': additional properties 'Billing_Svc' not allowed/,
  ],
];

describe('values that are refused', () => {
  it.each(rejected)('%s', (_, overrides, message) => {
    const r = template({ overrides: [overrides] });
    expect(r.status, `helm template accepted it:\n${r.stdout.slice(0, 500)}`).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });

  it('fail helm lint too', () => {
    const r = withValuesFiles([{ services: { account: { replicas: -1 } } }], ([f]) =>
      helm(['lint', chartDir, '-f', f!]),
    );
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/\/services\/account\/replicas': minimum: got -1, want 0/);
  });

  it('include a shard list from a values file missing existingSecret (a partner bank\u2019s typo)', () => {
    const shards = example.database.shards.map((s: Record<string, unknown>, i: number) =>
      i === 2 ? { ...s, existingSecret: undefined, existingsecret: s.existingSecret } : s,
    );
    const r = template({ values: [exampleValues], overrides: [{ database: { shards } }] });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/at '\/database\/shards\/2': missing property 'existingSecret'/);
    expect(r.stderr).toMatch(/additional properties 'existingsecret' not allowed/);
  });
});

describe('values.schema.json', () => {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8'));

  it('closes every object and describes every property', () => {
    const problems: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}[${i}]`));
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (n.type === 'object') {
        const ap = n.additionalProperties;
        if (ap === undefined || ap === true) problems.push(`${path}: additionalProperties must be false or a schema`);
        if (ap && typeof ap === 'object' && n.properties) problems.push(`${path}: both properties and a map schema`);
      }
      if (n.properties) {
        for (const [k, v] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
          const described = v.description || (v.$ref && /resourceList|quantity/.test(String(v.$ref)) && v.description);
          if (!described) problems.push(`${path}.properties.${k}: no description`);
        }
      }
      for (const [k, v] of Object.entries(n)) if (k !== 'properties') walk(v, `${path}.${k}`);
      if (n.properties) for (const [k, v] of Object.entries(n.properties)) walk(v, `${path}.${k}`);
    };
    walk(schema, '$');
    expect(problems).toEqual([]);
  });

  it('accepts the defaults and the example (helm lint validates them)', () => {
    for (const args of [[], ['-f', exampleValues]]) {
      const r = helm(['lint', chartDir, ...args]);
      expect(r.status, r.stdout).toBe(0);
    }
  });
});
