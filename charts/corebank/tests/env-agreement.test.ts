// Three lists of environment variables must agree:
//   1. what the account service reads: baseSpec (services/kit/src/config.ts) + accountSpec
//      (services/account/src/config.ts), with SHARD_{i}_DATABASE_URL for each shard;
//   2. what the Helm chart sets for it;
//   3. what the local launcher sets for it (localServiceEnv in deploy/local/env.ts).
// A variable added to a spec and forgotten in the chart or the launcher fails here.
import { baseSpec, shardUrlVar, type VarSpec } from '@corebank/kit';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { localServiceEnv } from '../../../deploy/local/env.js';
import { accountSpec, loadAccountConfig } from '../../../services/account/src/config.js';
import { containerEnv, exampleValues, ofKind, render, type EnvVar, type K8sObject } from './helpers.js';

const example = YAML.parse(readFileSync(exampleValues, 'utf8'));

/**
 * Variables the chart sets that no config spec declares, and why. Nothing else may differ.
 * `{i}` stands for a shard index.
 */
const CHART_ONLY: Record<string, string> = {
  SERVICE: 'picks the service in the image entrypoint (deploy/docker-entrypoint.sh); telemetry names itself after it',
  'SHARD_{i}_DATABASE_PASSWORD':
    'from the shard Secret; Kubernetes expands $(SHARD_{i}_DATABASE_PASSWORD) in SHARD_{i}_DATABASE_URL',
  OTEL_SERVICE_NAME: 'read by the OpenTelemetry SDK (services/kit/src/telemetry.ts), not by a config spec',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'read by the OpenTelemetry SDK when tracing.otlpEndpoint is set',
};

const generic = (name: string) => name.replace(/^SHARD_\d+_/, 'SHARD_{i}_');
const specs: Record<string, VarSpec<unknown>> = { ...baseSpec, ...accountSpec };
const declared = (shards: number) => [
  ...Object.values(specs).map((v) => v.name),
  ...Array.from({ length: shards }, (_, i) => shardUrlVar(i)),
];
const withoutHelpers = (names: Iterable<string>) => [...names].filter((n) => !(generic(n) in CHART_ONLY)).sort();

function accountContainer(objs: K8sObject[]) {
  const d = ofKind(objs, 'Deployment').find((o) => o.metadata.labels['app.kubernetes.io/component'] === 'account');
  return d!.spec.template.spec.containers[0] as { env: EnvVar[] };
}

/** The environment a pod would see: Secrets filled with stand-ins, $(VAR) expanded as Kubernetes does. */
function podEnvironment(env: EnvVar[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    if (e.valueFrom?.secretKeyRef) {
      out[e.name] =
        e.name === 'AUTH_TOKEN_KEY'
          ? Buffer.alloc(32, 7).toString('base64')
          : `secret-${e.valueFrom.secretKeyRef.name}`;
    } else {
      out[e.name] = (e.value ?? '').replace(/\$\(([A-Za-z0-9_]+)\)/g, (ref, v: string) => out[v] ?? ref);
    }
  }
  return out;
}

describe('environment agreement for the account service', () => {
  it('the chart sets exactly the declared variables (4-shard example, every option on)', () => {
    const env = accountContainer(render({ values: [exampleValues] })).env;
    const names = env.map((e) => e.name);
    expect(new Set(names).size, 'no variable twice').toBe(names.length);
    expect(withoutHelpers(names)).toEqual(declared(example.database.shards.length).sort());
    for (const n of names.filter((n) => generic(n) in CHART_ONLY)) expect(CHART_ONLY).toHaveProperty(generic(n));
  });

  it('the chart sets the declared variables with default values, leaving out only unconfigured optional secrets', () => {
    const names = accountContainer(render()).env.map((e) => e.name);
    const optionalSecrets = Object.values(specs)
      .filter((v) => v.secret && v.default !== undefined)
      .map((v) => v.name);
    const missing = declared(1).filter((n) => !names.includes(n));
    expect(missing.filter((n) => !optionalSecrets.includes(n))).toEqual([]);
    expect(withoutHelpers(names)).toEqual(
      declared(1)
        .filter((n) => names.includes(n))
        .sort(),
    );
  });

  it('the chart takes every secret variable from a Secret', () => {
    const env = new Map(accountContainer(render({ values: [exampleValues] })).env.map((e) => [e.name, e]));
    const secrets = Object.values(specs).filter((v) => v.secret);
    expect(secrets.map((s) => s.name).sort()).toEqual(['AUTH_TOKEN_KEY', 'NATS_PASSWORD']);
    for (const s of secrets) expect(env.get(s.name)?.valueFrom?.secretKeyRef, s.name).toBeDefined();
  });

  it('the service accepts the configuration the chart gives it', () => {
    const container = accountContainer(render({ values: [exampleValues] }));
    const config = loadAccountConfig(podEnvironment(container.env));
    expect(config.shardCount).toBe(4);
    expect(config.shardUrls).toHaveLength(4);
    expect(config.shardUrls[2]).toBe(
      `postgres://corebank_app:secret-corebank-db-shard2@pg-shard2.db.bank.example:5432/corebank_account` +
        `?sslmode=verify-full&sslrootcert=/etc/corebank/db-ca/ca.crt`,
    );
    expect(JSON.parse(containerEnv(container).get('SHARD_MAP')!.value!)).toEqual(example.database.shardMap);
    expect(config.shards.spec).toEqual(example.database.shardMap);
  });

  it('the local launcher sets exactly the declared variables', () => {
    for (const shards of [1, 3]) {
      const env = localServiceEnv('account', {
        pgUrl: 'postgres://postgres:postgres@127.0.0.1:5432',
        natsUrl: 'nats://127.0.0.1:4222',
        shards,
        authTokenKey: Buffer.alloc(32, 1).toString('base64'),
        grpcPort: 50051,
        metricsPort: 9464,
      });
      expect(withoutHelpers(Object.keys(env))).toEqual(declared(shards).sort());
      expect(loadAccountConfig(env).shardUrls).toHaveLength(shards);
    }
  });

  it('the chart and the local launcher set the same variables', () => {
    const chart = accountContainer(render({ values: [exampleValues] })).env.map((e) => generic(e.name));
    const local = Object.keys(
      localServiceEnv('account', {
        pgUrl: 'postgres://postgres:postgres@127.0.0.1:5432',
        natsUrl: 'nats://127.0.0.1:4222',
        shards: 4,
        authTokenKey: Buffer.alloc(32, 1).toString('base64'),
        grpcPort: 50051,
        metricsPort: 9464,
      }),
    ).map(generic);
    expect(withoutHelpers(new Set(local))).toEqual(withoutHelpers(new Set(chart)));
  });
});
