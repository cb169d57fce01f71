// Three lists of environment variables must agree, for every service the chart deploys:
//   1. what the service reads: its config spec (baseSpec from services/kit/src/config.ts plus the
//      service's own, e.g. accountSpec in services/account/src/config.ts), with
//      SHARD_{i}_DATABASE_URL for each shard when the service is sharded;
//   2. what the Helm chart sets for it;
//   3. what the local launcher sets for it (localServiceEnv in deploy/local/env.ts).
// A variable added to a spec and forgotten in the chart or the launcher fails here.
import { baseSpec, parsers, shardUrlVar, type ServiceName, type VarSpec } from '@corebank/kit';
import { testAuth } from '@corebank/kit/testing';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { localServiceEnv, type LocalOptions } from '../../../deploy/local/env.js';
import { accountSpec, loadAccountConfig } from '../../../services/account/src/config.js';
import { customerSpec, loadCustomerConfig } from '../../../services/customer/src/config.js';
import { loadProductConfig, productSpec } from '../../../services/product/src/config.js';
import { loadPaymentConfig, paymentSpec } from '../../../services/payment/src/config.js';
import { loadLoanConfig, loanSpec } from '../../../services/loan/src/config.js';
import { containerEnv, exampleValues, ofKind, render, type EnvVar, type K8sObject } from './helpers.js';

const example = YAML.parse(readFileSync(exampleValues, 'utf8'));
const auth = await testAuth();

/**
 * Variables the chart sets that no config spec declares, and why. Nothing else may differ.
 * `{i}` stands for a shard index.
 */
const CHART_ONLY: Record<string, string> = {
  SERVICE: 'picks the service in the image entrypoint (deploy/docker-entrypoint.sh); telemetry names itself after it',
  'SHARD_{i}_DATABASE_PASSWORD':
    'from the shard Secret; Kubernetes expands $(SHARD_{i}_DATABASE_PASSWORD) in SHARD_{i}_DATABASE_URL',
  GLOBAL_DATABASE_PASSWORD:
    'from the global database Secret; Kubernetes expands $(GLOBAL_DATABASE_PASSWORD) in GLOBAL_DATABASE_URL',
  OTEL_SERVICE_NAME: 'read by the OpenTelemetry SDK (services/kit/src/telemetry.ts), not by a config spec',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'read by the OpenTelemetry SDK when tracing.otlpEndpoint is set',
};

interface ServiceUnderTest {
  spec: Record<string, VarSpec<unknown>>;
  sharded: boolean;
  /** The service's own config loader (it throws on anything it does not accept). */
  load: (env: Record<string, string>) => unknown;
  /** Its secret variables: each must come from a Secret in the chart. */
  secrets: string[];
}

const SERVICES: Record<string, ServiceUnderTest> = {
  account: {
    spec: { ...baseSpec, ...accountSpec },
    sharded: true,
    load: loadAccountConfig,
    secrets: ['AUTH_SERVICE_KEY', 'NATS_PASSWORD'],
  },
  customer: {
    spec: { ...baseSpec, ...customerSpec },
    sharded: true,
    load: loadCustomerConfig,
    secrets: ['AUTH_SERVICE_KEY', 'CUSTOMER_ID_HASH_KEY', 'NATS_PASSWORD'],
  },
  product: {
    spec: productSpec,
    sharded: false,
    load: loadProductConfig,
    secrets: ['NATS_PASSWORD'],
  },
  loan: {
    spec: { ...baseSpec, ...loanSpec },
    sharded: true,
    load: loadLoanConfig,
    secrets: ['AUTH_SERVICE_KEY', 'NATS_PASSWORD'],
  },
  payment: {
    spec: { ...baseSpec, ...paymentSpec },
    sharded: true,
    load: loadPaymentConfig,
    secrets: ['AUTH_SERVICE_KEY', 'NATS_PASSWORD'],
  },
};

const generic = (name: string) => name.replace(/^SHARD_\d+_/, 'SHARD_{i}_');
const withoutHelpers = (names: Iterable<string>) => [...names].filter((n) => !(generic(n) in CHART_ONLY)).sort();

const localOptions = (shards: number): LocalOptions => ({
  pgUrl: 'postgres://postgres:postgres@127.0.0.1:5432',
  natsUrl: 'nats://127.0.0.1:4222',
  shards,
  authJwks: auth.jwks,
  authServiceKeys: {
    account: auth.serviceJwks.account,
    customer: auth.serviceJwks.customer,
    payment: auth.serviceJwks.payment,
    loan: auth.serviceJwks.loan,
  },
  grpcPort: 50051,
  metricsPort: 9464,
  customerIdHashKey: Buffer.alloc(32, 2).toString('base64'),
});

function serviceContainer(objs: K8sObject[], service: string) {
  const d = ofKind(objs, 'Deployment').find((o) => o.metadata.labels['app.kubernetes.io/component'] === service);
  return d!.spec.template.spec.containers[0] as { env: EnvVar[] };
}

describe.each(Object.entries(SERVICES))('environment agreement for the %s service', (service, s) => {
  const declared = (shards: number) => [
    ...Object.values(s.spec).map((v) => v.name),
    ...(s.sharded ? Array.from({ length: shards }, (_, i) => shardUrlVar(i)) : []),
  ];
  const secretKeys = new Set(
    Object.values(s.spec)
      .filter((v) => v.parse === parsers.secretKey)
      .map((v) => v.name),
  );

  /**
   * The environment a pod would see: Secrets filled with stand-ins (a real key where the variable
   * holds one), the mounted JWKS file by its content, $(VAR) expanded as Kubernetes does.
   */
  function podEnvironment(env: EnvVar[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of env) {
      if (e.name === 'AUTH_JWKS') {
        expect(e.value).toMatch(/^\/etc\/corebank\/auth\//);
        out[e.name] = auth.jwks;
      } else if (e.valueFrom?.secretKeyRef) {
        out[e.name] = secretKeys.has(e.name)
          ? Buffer.alloc(32, 7).toString('base64')
          : e.name === 'AUTH_SERVICE_KEY'
            ? auth.serviceJwks[service as ServiceName]
            : `secret-${e.valueFrom.secretKeyRef.name}`;
      } else {
        out[e.name] = (e.value ?? '').replace(/\$\(([A-Za-z0-9_]+)\)/g, (ref, v: string) => out[v] ?? ref);
      }
    }
    return out;
  }

  it('the chart sets exactly the declared variables (4-shard example, every option on)', () => {
    const env = serviceContainer(render({ values: [exampleValues] }), service).env;
    const names = env.map((e) => e.name);
    expect(new Set(names).size, 'no variable twice').toBe(names.length);
    expect(withoutHelpers(names)).toEqual(declared(example.database.shards.length).sort());
    for (const n of names.filter((n) => generic(n) in CHART_ONLY)) expect(CHART_ONLY).toHaveProperty(generic(n));
  });

  it('the chart sets the declared variables with default values, leaving out only unconfigured optional secrets', () => {
    const names = serviceContainer(render(), service).env.map((e) => e.name);
    const optionalSecrets = Object.values(s.spec)
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
    const env = new Map(serviceContainer(render({ values: [exampleValues] }), service).env.map((e) => [e.name, e]));
    const secrets = Object.values(s.spec).filter((v) => v.secret);
    expect(secrets.map((v) => v.name).sort()).toEqual(s.secrets);
    for (const v of secrets) expect(env.get(v.name)?.valueFrom?.secretKeyRef, v.name).toBeDefined();
  });

  it('the service accepts the configuration the chart gives it', () => {
    const container = serviceContainer(render({ values: [exampleValues] }), service);
    const config = s.load(podEnvironment(container.env)) as {
      shardCount?: number;
      shardUrls?: string[];
      shards?: { spec: unknown };
      globalDatabaseUrl?: string;
      tlsRequired: boolean;
      tlsCertFile: string;
    };
    // Mutual TLS is on in the example: required, from the mounted Secret.
    expect(config.tlsRequired).toBe(true);
    expect(config.tlsCertFile).toBe('/etc/corebank/tls/tls.crt');
    const ca = 'sslrootcert=/etc/corebank/db-ca/ca.crt';
    if (s.sharded) {
      expect(config.shardCount).toBe(4);
      expect(config.shardUrls).toHaveLength(4);
      expect(config.shardUrls![2]).toBe(
        `postgres://corebank_app:secret-corebank-db-shard2@pg-shard2.db.bank.example:5432/corebank_${service}` +
          `?sslmode=verify-full&${ca}`,
      );
      expect(JSON.parse(containerEnv(container).get('SHARD_MAP')!.value!)).toEqual(example.database.shardMap);
      expect(config.shards!.spec).toEqual(example.database.shardMap);
    } else {
      expect(config.globalDatabaseUrl).toBe(
        `postgres://corebank_app:secret-corebank-db-global@pg-global.db.bank.example:5432/corebank_global` +
          `?sslmode=verify-full&${ca}`,
      );
    }
  });

  it('the local launcher sets exactly the declared variables', () => {
    for (const shards of [1, 3]) {
      const env = localServiceEnv(service, localOptions(shards));
      expect(withoutHelpers(Object.keys(env))).toEqual(declared(shards).sort());
      const config = s.load(env) as { shardUrls?: string[] };
      if (s.sharded) expect(config.shardUrls).toHaveLength(shards);
    }
  });

  it('the chart and the local launcher set the same variables', () => {
    const chart = serviceContainer(render({ values: [exampleValues] }), service).env.map((e) => generic(e.name));
    const local = Object.keys(localServiceEnv(service, localOptions(4))).map(generic);
    expect(withoutHelpers(new Set(local))).toEqual(withoutHelpers(new Set(chart)));
  });
});
