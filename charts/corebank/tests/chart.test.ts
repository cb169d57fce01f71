import { execFileSync } from 'node:child_process';
// The Helm chart, validated without a cluster: helm lint, helm template, kubeconform (strict,
// offline schemas) and assertions on the rendered objects.
// Needs helm and kubeconform: bash deploy/tools/install-chart-tools.sh
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { HELM_VERSION, KUBECONFORM_VERSION, chartTool } from '../../../deploy/tools/chart-tools.mjs';
import { staleFiles } from '../../../deploy/tools/export-monitoring.mjs';
import { renderReadme } from '../../../deploy/tools/values-doc.mjs';
import {
  KUBERNETES_VERSIONS,
  NAMESPACE,
  RELEASE,
  chartDir,
  containerEnv,
  exampleValues,
  helm,
  kubeconform,
  ofKind,
  parseManifests,
  podTemplates,
  render,
  renderText,
  repoRoot,
  run,
  type K8sObject,
} from './helpers.js';

const example = YAML.parse(readFileSync(exampleValues, 'utf8'));
const defaults = YAML.parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));

/** Everything optional switched on, on top of the defaults. */
const allOn = {
  metrics: {
    podAnnotations: true,
    serviceMonitor: { enabled: true },
    prometheusRule: { enabled: true },
    dashboards: { enabled: true },
  },
  networkPolicy: { enabled: true, channelNamespaces: ['teller'], metricsNamespaces: ['monitoring'] },
  nats: { user: 'corebank', existingSecret: 'nats-auth' },
  database: { caBundle: { existingSecret: 'db-ca' } },
  tracing: { otlpEndpoint: 'http://otel-collector:4317' },
  tls: {
    enabled: true,
    source: 'cert-manager',
    caBundle: { existingSecret: 'corebank-trust' },
    certManager: {
      issuerRef: { name: 'bank-ca', kind: 'ClusterIssuer' },
      dnsNames: ['{service}.corebank.bank.example'],
    },
  },
  services: {
    account: {
      autoscaling: { enabled: true },
      pdb: { enabled: true },
      secretEnv: { PARTNER_API_KEY: { secretName: 'partner', key: 'api-key' } },
    },
  },
};

const variants: Record<string, () => string> = {
  'default values': () => renderText(),
  '4-shard example': () => renderText({ values: [exampleValues] }),
  'everything on': () => renderText({ overrides: [allOn] }),
};

describe('chart tools', () => {
  it('are installed at the pinned versions', () => {
    const script = readFileSync(join(repoRoot, 'deploy/tools/install-chart-tools.sh'), 'utf8');
    expect(script).toContain(`HELM_VERSION=${HELM_VERSION}\n`);
    expect(script).toContain(`KUBECONFORM_VERSION=${KUBECONFORM_VERSION}\n`);
    expect(run(chartTool('helm'), ['version', '--template', '{{.Version}}']).stdout.trim()).toBe(HELM_VERSION);
    expect(run(chartTool('kubeconform'), ['-v']).stdout.trim()).toBe(KUBECONFORM_VERSION);
  });
});

describe('helm lint', () => {
  it.each([
    ['default values', []],
    ['4-shard example', ['-f', exampleValues]],
  ])('passes --strict with %s', (_, args) => {
    const r = helm(['lint', '--strict', chartDir, ...args]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('0 chart(s) failed');
  });
});

describe.each(Object.keys(variants))('%s', (variant) => {
  let text: string;
  beforeAll(() => {
    text = variants[variant]!();
  });

  it.each(KUBERNETES_VERSIONS)('every rendered object is valid for Kubernetes %s (kubeconform -strict)', (version) => {
    const { status, report } = kubeconform(text, version);
    const bad = report.resources.filter((r) => r.status !== 'statusValid');
    expect(bad, JSON.stringify(bad, null, 2)).toEqual([]);
    expect(report.summary.skipped).toBe(0);
    expect(report.summary.valid).toBe(parseManifests(text).length);
    expect(status).toBe(0);
  });

  it('renders no Secret and no inline credential', () => {
    const objs = parseManifests(text);
    expect(ofKind(objs, 'Secret')).toEqual([]);
    for (const { owner, spec } of podTemplates(objs)) {
      for (const c of spec.containers) {
        for (const e of c.env ?? []) {
          const where = `${owner} ${c.name} ${e.name}`;
          if (/PASSWORD|SECRET|TOKEN|_KEY$|CREDENTIAL/.test(e.name)) {
            expect(e.value, `${where} must come from a Secret`).toBeUndefined();
            expect(e.valueFrom?.secretKeyRef?.name, `${where} must use secretKeyRef`).toBeTruthy();
          }
          if (e.value !== undefined) {
            // The only credential a value may carry is a reference to a variable from a Secret.
            const userinfo = /^[a-z]+:\/\/([^@/]*)@/.exec(e.value)?.[1];
            if (userinfo?.includes(':')) {
              expect(userinfo.split(':')[1], `${where}: password in URL`).toMatch(/^\$\([A-Z0-9_]+_PASSWORD\)$/);
            }
          }
        }
      }
    }
  });

  it('runs every container non-root, read-only, without capabilities, with RuntimeDefault seccomp', () => {
    const pods = podTemplates(parseManifests(text));
    expect(pods.length).toBeGreaterThan(0);
    for (const { owner, spec } of pods) {
      expect(spec.securityContext, owner).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(spec.securityContext.runAsUser, owner).toBeGreaterThan(0);
      expect(spec.automountServiceAccountToken, owner).toBe(false);
      const tmp = spec.volumes.find((v: { name: string }) => v.name === 'tmp');
      expect(tmp?.emptyDir, `${owner}: /tmp is an emptyDir`).toBeDefined();
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        const where = `${owner} ${c.name}`;
        expect(c.securityContext, where).toMatchObject({
          runAsNonRoot: true,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(c.securityContext.capabilities.add, where).toBeUndefined();
        expect(c.volumeMounts, where).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        expect(c.resources?.requests?.cpu, `${where} cpu request`).toBeDefined();
        expect(c.resources?.requests?.memory, `${where} memory request`).toBeDefined();
        expect(c.resources?.limits?.memory, `${where} memory limit`).toBeDefined();
      }
    }
  });

  it('probes every service with native gRPC health checks (on the plaintext health port when TLS is on)', () => {
    for (const d of ofKind(parseManifests(text), 'Deployment')) {
      for (const c of d.spec.template.spec.containers) {
        const grpcPort = c.ports.find((p: { name: string }) => p.name === 'grpc').containerPort;
        expect(containerEnv(c).get('GRPC_PORT')?.value).toBe(String(grpcPort));
        const healthPort = c.ports.find((p: { name: string }) => p.name === 'health')?.containerPort;
        const tls = containerEnv(c).get('TLS_REQUIRED')?.value === 'true';
        expect(containerEnv(c).get('GRPC_HEALTH_PORT')?.value).toBe(String(tls ? healthPort : 0));
        for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
          expect(c[probe]?.grpc?.port, `${d.metadata.name} ${probe}`).toBe(tls ? healthPort : grpcPort);
          expect(c[probe].httpGet ?? c[probe].exec ?? c[probe].tcpSocket).toBeUndefined();
        }
      }
    }
  });

  it('has exactly one migration Job, a pre-install,pre-upgrade hook with a container per service', () => {
    const objs = parseManifests(text);
    const jobs = ofKind(objs, 'Job');
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!;
    const hooks = job.metadata.annotations['helm.sh/hook'].split(',').sort();
    expect(hooks).toEqual(['pre-install', 'pre-upgrade']);
    const deployments = ofKind(objs, 'Deployment');
    const containers = job.spec.template.spec.containers;
    expect(containers).toHaveLength(deployments.length);
    for (const d of deployments) {
      const svc = d.metadata.labels['app.kubernetes.io/component'];
      const m = containers.find((c: { name: string }) => c.name === `migrate-${svc}`);
      expect(m, `migration container for ${svc}`).toBeDefined();
      expect(m.args).toEqual(['migrate']);
      expect(d.spec.template.spec.containers[0].args).toEqual(['serve']);
      expect(m.image).toBe(d.spec.template.spec.containers[0].image);
      // Same configuration as the service itself, so it migrates the same shards.
      expect(m.env).toEqual(d.spec.template.spec.containers[0].env);
    }
    // The hook's ServiceAccount is a hook too (the release's objects do not exist yet).
    const sa = ofKind(objs, 'ServiceAccount').find(
      (s) => s.metadata.name === job.spec.template.spec.serviceAccountName,
    );
    expect(sa?.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(Number(sa?.metadata.annotations['helm.sh/hook-weight'])).toBeLessThan(
      Number(job.metadata.annotations['helm.sh/hook-weight']),
    );
    // No other object is a hook.
    const hooked = objs
      .filter((o) => o.metadata.annotations?.['helm.sh/hook'])
      .map((o) => `${o.kind}/${o.metadata.name}`);
    expect(hooked.sort()).toEqual([`Job/${job.metadata.name}`, `ServiceAccount/${sa!.metadata.name}`].sort());
  });

  it('defines each SHARD_i_DATABASE_PASSWORD before the URL that expands it', () => {
    for (const { spec } of podTemplates(parseManifests(text))) {
      for (const c of spec.containers) {
        const names = c.env.map((e: { name: string }) => e.name);
        names.forEach((n: string, i: number) => {
          const m = /^SHARD_(\d+)_DATABASE_URL$/.exec(n);
          if (m) expect(names.indexOf(`SHARD_${m[1]}_DATABASE_PASSWORD`)).toBeLessThan(i);
        });
        for (const e of c.env) {
          for (const ref of e.value?.matchAll(/\$\(([A-Z0-9_]+)\)/g) ?? []) {
            expect(names.indexOf(ref[1]), `${e.name} references ${ref[1]}`).toBeGreaterThanOrEqual(0);
            expect(names.indexOf(ref[1])).toBeLessThan(names.indexOf(e.name));
          }
        }
      }
    }
  });

  it('selects its pods consistently', () => {
    const objs = parseManifests(text);
    for (const d of ofKind(objs, 'Deployment')) {
      const sel = d.spec.selector.matchLabels;
      expect(d.spec.template.metadata.labels).toMatchObject(sel);
      const svc = ofKind(objs, 'Service').find((s) => s.metadata.name === d.metadata.name);
      expect(svc?.spec.selector).toEqual(sel);
      expect(d.spec.template.spec.serviceAccountName).toBe(d.metadata.name);
      for (const kind of ['PodDisruptionBudget', 'NetworkPolicy']) {
        for (const o of ofKind(objs, kind).filter((o) => o.metadata.name === d.metadata.name)) {
          expect(o.spec.selector?.matchLabels ?? o.spec.podSelector?.matchLabels).toEqual(sel);
        }
      }
      for (const h of ofKind(objs, 'HorizontalPodAutoscaler').filter((o) => o.metadata.name === d.metadata.name)) {
        expect(h.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name });
        expect(d.spec.replicas, 'no replicas when the HPA owns them').toBeUndefined();
      }
    }
  });
});

describe('default values', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render();
  });

  it('render the account, customer, loan, payment and product services and the migration Job, with the optional objects off', () => {
    const kinds = objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        ...['account', 'customer', 'loan', 'payment', 'product'].flatMap((s) => [
          `Deployment/${RELEASE}-corebank-${s}`,
          `Service/${RELEASE}-corebank-${s}`,
          `ServiceAccount/${RELEASE}-corebank-${s}`,
        ]),
        `Job/${RELEASE}-corebank-migrate`,
        `ServiceAccount/${RELEASE}-corebank-migrate`,
      ].sort(),
    );
  });

  it('give each service the addresses of the services it calls', () => {
    const env = (service: string) =>
      containerEnv(
        ofKind(objs, 'Deployment').find((d) => d.metadata.name === `${RELEASE}-corebank-${service}`)!.spec.template.spec
          .containers[0],
      );
    const address = (service: string) => `${RELEASE}-corebank-${service}:${defaults.grpc.port}`;
    expect(env('customer').get('ACCOUNT_SERVICE_ADDRESS')?.value).toBe(address('account'));
    expect(env('account').get('CUSTOMER_SERVICE_ADDRESS')?.value).toBe(address('customer'));
    expect(env('account').get('PRODUCT_SERVICE_ADDRESS')?.value).toBe(address('product'));
    expect(env('payment').get('ACCOUNT_SERVICE_ADDRESS')?.value).toBe(address('account'));
    for (const callee of ['account', 'customer', 'product']) {
      expect(env('loan').get(`${callee.toUpperCase()}_SERVICE_ADDRESS`)?.value).toBe(address(callee));
    }
    expect([...env('product').keys()].filter((k) => k.endsWith('_SERVICE_ADDRESS'))).toEqual([]);
    // Each address is a Service the chart renders, on its gRPC port.
    for (const svc of ['account', 'customer', 'loan', 'payment', 'product']) {
      const service = ofKind(objs, 'Service').find((o) => o.metadata.name === `${RELEASE}-corebank-${svc}`)!;
      expect(service.spec.ports.find((p: { name: string }) => p.name === 'grpc').port).toBe(defaults.grpc.port);
    }
  });

  it('give the product service the global database and no shards, and the customer service its hash key', () => {
    const env = (service: string) =>
      containerEnv(
        ofKind(objs, 'Deployment').find((d) => d.metadata.name === `${RELEASE}-corebank-${service}`)!.spec.template.spec
          .containers[0],
      );
    const g = defaults.database.global;
    expect(env('product').get('GLOBAL_DATABASE_URL')?.value).toBe(
      `postgres://${g.user}:$(GLOBAL_DATABASE_PASSWORD)@${g.host}:${g.port}/${g.database}?sslmode=${g.sslmode}`,
    );
    expect(env('product').get('GLOBAL_DATABASE_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: g.existingSecret,
      key: g.passwordKey,
    });
    expect([...env('product').keys()].filter((k) => k.startsWith('SHARD_'))).toEqual([]);
    expect(env('customer').has('GLOBAL_DATABASE_URL')).toBe(false);
    expect(env('customer').get('SHARD_0_DATABASE_URL')?.value).toContain('/corebank_customer?');
    expect(env('customer').get('CUSTOMER_ID_HASH_KEY')?.valueFrom?.secretKeyRef).toEqual({
      name: 'corebank-customer',
      key: 'id-hash-key',
    });
  });

  it('give one shard with an even split', () => {
    const env = containerEnv(ofKind(objs, 'Deployment')[0]!.spec.template.spec.containers[0]);
    expect(env.get('SHARD_COUNT')?.value).toBe('1');
    expect(env.get('SHARD_MAP')?.value).toBe('');
    const s = defaults.database.shards[0];
    expect(env.get('SHARD_0_DATABASE_URL')?.value).toBe(
      `postgres://${s.user}:$(SHARD_0_DATABASE_PASSWORD)@${s.host}:${s.port}/corebank_account?sslmode=${s.sslmode}`,
    );
    expect(env.get('SHARD_0_DATABASE_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: s.existingSecret,
      key: s.passwordKey,
    });
    expect(env.has('SHARD_1_DATABASE_URL')).toBe(false);
  });
});

describe('4-shard example', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render({ values: [exampleValues] });
  });

  it('switches on mutual TLS (cert-manager), HPA, PDB, NetworkPolicy, ServiceMonitor, PrometheusRule and dashboards', () => {
    for (const kind of [
      'Certificate',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'NetworkPolicy',
      'ServiceMonitor',
      'PrometheusRule',
    ]) {
      expect(ofKind(objs, kind).length, kind).toBeGreaterThan(0);
    }
    const dashboards = ofKind(objs, 'ConfigMap');
    const files = readdirSync(join(chartDir, 'dashboards')).filter((f) => f.endsWith('.json'));
    expect(dashboards).toHaveLength(files.length);
    for (const cm of dashboards) {
      expect(cm.metadata.namespace).toBe(example.metrics.dashboards.namespace);
      expect(cm.metadata.labels).toMatchObject(example.metrics.dashboards.labels);
      for (const [name, body] of Object.entries(cm.data as Record<string, string>)) {
        expect(JSON.parse(body)).toEqual(JSON.parse(readFileSync(join(chartDir, 'dashboards', name), 'utf8')));
      }
    }
  });

  it('gives every container the shard environment of the values', () => {
    const shards = example.database.shards as {
      host: string;
      port: number;
      database: string;
      user: string;
      sslmode: string;
      existingSecret: string;
      passwordKey: string;
    }[];
    const containers = podTemplates(objs).flatMap((p) => p.spec.containers);
    expect(containers.length).toBe(10); // five Deployments and a migration container for each
    const ca = `sslrootcert=/etc/corebank/db-ca/${example.database.caBundle.key}`;
    for (const c of containers) {
      const env = containerEnv(c);
      const service = env.get('SERVICE')!.value!;
      // Tokens: the JWKS as a mounted file (re-read on change), and only a calling service's own key.
      expect(env.get('AUTH_JWKS')?.value).toBe(`/etc/corebank/auth/${example.auth.jwks.key}`);
      expect(env.get('AUTH_ISSUER')?.value).toBe(example.auth.issuer);
      expect(c.volumeMounts).toContainEqual({ name: 'auth-jwks', mountPath: '/etc/corebank/auth', readOnly: true });
      expect(env.has('AUTH_TOKEN_KEY')).toBe(false);
      if (service === 'product') expect(env.has('AUTH_SERVICE_KEY')).toBe(false);
      else {
        expect(env.get('AUTH_SERVICE_KEY')?.valueFrom?.secretKeyRef).toEqual({
          name: example.auth.serviceKeys.existingSecret.replace('{service}', service),
          key: example.auth.serviceKeys.key,
        });
      }
      if (service === 'product') {
        // Global storage: the global database, no shard variables.
        const g = example.database.global;
        expect(env.get('GLOBAL_DATABASE_URL')?.value).toBe(
          `postgres://${g.user}:$(GLOBAL_DATABASE_PASSWORD)@${g.host}:${g.port}/${g.database}?sslmode=${g.sslmode}&${ca}`,
        );
        expect([...env.keys()].filter((k) => k.startsWith('SHARD_'))).toEqual([]);
        continue;
      }
      expect(env.get('SHARD_COUNT')?.value).toBe(String(shards.length));
      expect(JSON.parse(env.get('SHARD_MAP')!.value!)).toEqual(example.database.shardMap);
      shards.forEach((s, i) => {
        const db = s.database.replace('{service}', service).replace('{shard}', String(i));
        expect(env.get(`SHARD_${i}_DATABASE_URL`)?.value).toBe(
          `postgres://${s.user}:$(SHARD_${i}_DATABASE_PASSWORD)@${s.host}:${s.port}/${db}?sslmode=${s.sslmode}` +
            `&sslrootcert=/etc/corebank/db-ca/${example.database.caBundle.key}`,
        );
        expect(env.get(`SHARD_${i}_DATABASE_PASSWORD`)?.valueFrom?.secretKeyRef).toEqual({
          name: s.existingSecret,
          key: s.passwordKey,
        });
      });
      expect([...env.keys()].filter((k) => /^SHARD_\d+_DATABASE_URL$/.test(k))).toHaveLength(shards.length);
      expect(env.get('NATS_URL')?.value).toBe(example.nats.url);
      expect(env.get('NATS_USER')?.value).toBe(example.nats.user);
      expect(env.get('NATS_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
        name: example.nats.existingSecret,
        key: example.nats.passwordKey,
      });
      expect(c.volumeMounts).toContainEqual({ name: 'db-ca', mountPath: '/etc/corebank/db-ca', readOnly: true });
    }
  });

  it('admits gRPC only from the platform and the channel namespaces, metrics only from monitoring', () => {
    for (const np of ofKind(objs, 'NetworkPolicy')) {
      expect(np.spec.policyTypes).toEqual(['Ingress']);
      const rules = np.spec.ingress as { from?: object[]; ports: { port: string }[] }[];
      for (const r of rules) expect(r.from?.length, 'a rule without from admits everyone').toBeGreaterThan(0);
      const peers = rules.flatMap((r) => r.from!.map((f) => ({ peer: f, ports: r.ports.map((p) => p.port) })));
      const own = peers.find((p) => 'podSelector' in p.peer);
      expect(own?.peer).toEqual({
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'corebank', 'app.kubernetes.io/instance': RELEASE } },
      });
      const namespaces = (ports: string) =>
        peers
          .filter((p) => 'namespaceSelector' in p.peer && p.ports.includes(ports))
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          .flatMap((p) => (p.peer as any).namespaceSelector.matchExpressions[0].values);
      expect(namespaces('grpc').sort()).toEqual([...example.networkPolicy.channelNamespaces].sort());
      expect(namespaces('metrics')).toEqual(example.networkPolicy.metricsNamespaces);
    }
  });

  it('scrapes /metrics on the metrics port and keeps the services\u2019 own service label', () => {
    for (const sm of ofKind(objs, 'ServiceMonitor')) {
      expect(sm.metadata.labels).toMatchObject(example.metrics.serviceMonitor.labels);
      expect(sm.spec.endpoints).toEqual([
        expect.objectContaining({ port: 'metrics', path: '/metrics', honorLabels: true }),
      ]);
      expect(sm.spec.namespaceSelector).toEqual({ matchNames: [NAMESPACE] });
    }
  });
});

describe('services map', () => {
  // A service the chart does not know yet (the next one the platform adds).
  const cards = {
    enabled: true,
    replicas: 1,
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    autoscaling: { enabled: false, minReplicas: 1, maxReplicas: 2, targetCPUUtilizationPercentage: 70 },
    pdb: { enabled: true, minAvailable: 1 },
    env: { KYC_PROVIDER: 'none' },
  };

  it('renders a component per enabled service and migrates each', () => {
    const objs = render({ overrides: [{ services: { cards } }] });
    const deployments = ofKind(objs, 'Deployment').map((d) => d.metadata.name);
    expect(deployments.sort()).toEqual(
      ['account', 'cards', 'customer', 'loan', 'payment', 'product'].map((s) => `${RELEASE}-corebank-${s}`),
    );
    const job = ofKind(objs, 'Job')[0]!;
    expect(job.spec.template.spec.containers.map((c: { name: string }) => c.name).sort()).toEqual([
      'migrate-account',
      'migrate-cards',
      'migrate-customer',
      'migrate-loan',
      'migrate-payment',
      'migrate-product',
    ]);
    const env = containerEnv(
      ofKind(objs, 'Deployment').find((d) => d.metadata.name.endsWith('cards'))!.spec.template.spec.containers[0],
    );
    expect(env.get('SERVICE')?.value).toBe('cards');
    expect(env.get('KYC_PROVIDER')?.value).toBe('none');
    expect(env.get('SHARD_0_DATABASE_URL')?.value).toContain('/corebank_cards?');
    expect(ofKind(objs, 'PodDisruptionBudget').map((p) => [p.metadata.name, p.spec.minAvailable])).toEqual([
      [`${RELEASE}-corebank-cards`, 1],
    ]);
  });

  it('leaves a disabled service out entirely', () => {
    const objs = render({ overrides: [{ services: { cards: { ...cards, enabled: false } } }] });
    expect(objs.filter((o) => o.metadata.name.includes('cards'))).toEqual([]);
    expect(ofKind(objs, 'Job')[0]!.spec.template.spec.containers).toHaveLength(5);
  });

  it('uses a service\u2019s own shard list when it has one', () => {
    const own = { ...defaults.database.shards[0], host: 'cards-db', database: 'cards' };
    const objs = render({ overrides: [{ services: { cards: { ...cards, shards: [own] } } }] });
    const env = containerEnv(
      ofKind(objs, 'Deployment').find((d) => d.metadata.name.endsWith('cards'))!.spec.template.spec.containers[0],
    );
    expect(env.get('SHARD_0_DATABASE_URL')?.value).toContain('@cards-db:5432/cards?');
  });
});

describe('monitoring', () => {
  const metricNames = [
    'grpc_server_requests_total',
    'grpc_server_duration_seconds_bucket',
    'ledger_transfers_total',
    'outbox_unsent_events',
    'outbox_oldest_unsent_age_seconds',
    'ledger_invariant_ok',
    'db_pool_waiting',
    'db_pool_in_use',
    'payment_saga_oldest_unsettled_age_seconds',
    'payment_saga_unsettled_orders',
    'payment_saga_steps_total',
    'loan_applications_total',
    'loan_decision_duration_seconds_bucket',
    'loan_application_reviews_total',
    'loan_disbursements_total',
    'loan_disbursed_minor_units_total',
    'loan_repayments_total',
    'loan_day_runs_total',
    'loan_day_duration_seconds_bucket',
    'loan_day_loans_total',
    'loan_delinquency_bucket_changes_total',
    'loan_write_offs_total',
    'loan_written_off_minor_units_total',
    'loan_sweeper_stale_items',
    'loan_sweeper_items_total',
    'tls_certificate_expiry_timestamp_seconds',
    'audit_records_dropped_total',
  ];

  it('alerts only on metrics the services export', () => {
    const sources = execFileSync(
      'grep',
      [
        '-rhoE',
        "name: '[a-z_]+'",
        'services',
        '--include=*.ts',
        '--exclude-dir=node_modules',
        '--exclude-dir=dist',
        '--exclude-dir=gen',
      ],
      {
        cwd: repoRoot,
        encoding: 'utf8',
      },
    );
    const exported = new Set(sources.split('\n').map((l) => l.replace(/^name: '|'$/g, '')));
    for (const m of metricNames) expect(exported, m).toContain(m.replace(/_bucket$/, ''));
  });
  const promqlWords = new Set([
    ...metricNames,
    'sum',
    'min',
    'max',
    'by',
    'rate',
    'increase',
    'histogram_quantile',
    'clamp_min',
    'min_over_time',
    'namespace',
    'service',
    'method',
    'code',
    'le',
    'job',
    'shard',
    'currency',
    'result',
    'step',
    'outcome',
    'decision',
    'kind',
    'bucket',
    'task',
    'or',
    'time',
  ]);
  const checkExpr = (expr: string, where: string) => {
    const depth = { '(': 0, '{': 0, '[': 0 } as Record<string, number>;
    const close: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
    for (const ch of expr.replace(/"[^"]*"/g, '""')) {
      if (ch in depth) depth[ch]!++;
      if (ch in close) expect(--depth[close[ch]!]!, `${where}: unbalanced ${ch}`).toBeGreaterThanOrEqual(0);
    }
    expect(depth, `${where}: balanced brackets`).toEqual({ '(': 0, '{': 0, '[': 0 });
    const words =
      expr
        .replace(/"[^"]*"/g, '')
        .replace(/\$__\w+|\$\w+/g, '')
        .match(/[a-z_][a-z0-9_]*/gi) ?? [];
    for (const w of words) {
      if (/^\d|^(e|s|m|h|d)$/.test(w)) continue;
      expect(promqlWords.has(w), `${where}: unknown word or metric ${w}`).toBe(true);
    }
  };

  it('alerts on error rate, p99 latency, outbox lag, the ledger invariant, saga age, the loan sweeper, pool saturation, TLS expiry and lost audit records', () => {
    const [rule] = ofKind(render({ values: [exampleValues] }), 'PrometheusRule');
    const alerts = rule!.spec.groups.flatMap((g: { rules: { alert: string; expr: string }[] }) => g.rules);
    expect(alerts.map((a: { alert: string }) => a.alert).sort()).toEqual(
      [
        'CorebankAuditRecordsDropped',
        'CorebankDbPoolSaturated',
        'CorebankHighErrorRate',
        'CorebankHighLatency',
        'CorebankLedgerInvariantBroken',
        'CorebankLoanSweeperStuck',
        'CorebankOutboxLag',
        'CorebankSagaStuck',
        'CorebankTlsCertificateExpiring',
      ].sort(),
    );
    for (const a of alerts) {
      checkExpr(a.expr, a.alert);
      expect(a.expr, `${a.alert} is scoped to the release namespace`).toContain(`namespace="${NAMESPACE}"`);
    }
  });

  /** Each dashboard and the metrics it must show: its service's own and the kit's (RPCs, outbox, pools). */
  const kitMetrics = metricNames.filter((m) => /^(grpc|outbox|db_pool)_/.test(m));
  const DASHBOARDS: Record<string, string[]> = {
    'corebank-account.json': [...kitMetrics, ...metricNames.filter((m) => m.startsWith('ledger_'))],
    'corebank-payment.json': [...kitMetrics, ...metricNames.filter((m) => m.startsWith('payment_'))],
    'corebank-loan.json': [...kitMetrics, ...metricNames.filter((m) => m.startsWith('loan_'))],
  };

  it('ships a Grafana dashboard for the account, payment and loan services on the platform\u2019s metrics', () => {
    const files = readdirSync(join(chartDir, 'dashboards')).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(Object.keys(DASHBOARDS).sort());
    const uids = new Set<string>();
    for (const f of files) {
      const d = JSON.parse(readFileSync(join(chartDir, 'dashboards', f), 'utf8'));
      expect(d.uid).toBeTruthy();
      uids.add(d.uid);
      const targets = d.panels.flatMap((p: { targets?: { expr: string }[] }) => p.targets ?? []);
      expect(targets.length).toBeGreaterThan(8);
      for (const t of targets) checkExpr(t.expr, `${f} ${t.expr}`);
      const used = new Set(targets.flatMap((t: { expr: string }) => metricNames.filter((m) => t.expr.includes(m))));
      for (const m of DASHBOARDS[f]!) expect(used.has(m), `${f} shows ${m}`).toBe(true);
      for (const p of d.panels.filter((p: { type: string }) => p.type !== 'row')) {
        expect(p.datasource, `${f} panel ${p.title}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
      }
    }
    expect(uids.size, 'every dashboard has its own uid').toBe(files.length);
  });

  it('keeps the copies for non-Helm users in deploy/monitoring up to date', async () => {
    expect(await staleFiles(), 'run node deploy/tools/export-monitoring.mjs').toEqual([]);
  });
});

describe('tls', () => {
  const deployments = (objs: K8sObject[]) => ofKind(objs, 'Deployment');
  const container = (d: K8sObject) => d.spec.template.spec.containers[0];

  it('is off by default: plaintext, no certificate, no mount, probes on the gRPC port', () => {
    const objs = render();
    expect(ofKind(objs, 'Certificate')).toEqual([]);
    for (const d of deployments(objs)) {
      const env = containerEnv(container(d));
      expect(env.get('TLS_REQUIRED')?.value).toBe('false');
      for (const v of ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE']) expect(env.get(v)?.value).toBe('');
      expect(d.spec.template.spec.volumes.map((v: { name: string }) => v.name)).not.toContain('tls');
    }
  });

  it('from Secrets: mounts each service\u2019s own Secret, requires TLS and passes the files', () => {
    const objs = render({ overrides: [{ tls: { enabled: true } }] });
    expect(ofKind(objs, 'Certificate')).toEqual([]);
    for (const d of deployments(objs)) {
      const svc = d.metadata.labels['app.kubernetes.io/component'];
      const env = containerEnv(container(d));
      expect(env.get('TLS_REQUIRED')?.value).toBe('true');
      expect(env.get('TLS_CERT_FILE')?.value).toBe('/etc/corebank/tls/tls.crt');
      expect(env.get('TLS_KEY_FILE')?.value).toBe('/etc/corebank/tls/tls.key');
      expect(env.get('TLS_CA_FILE')?.value).toBe('/etc/corebank/tls/ca.crt');
      expect(env.get('TLS_RELOAD_INTERVAL_MS')?.value).toBe('10000');
      // The whole Secret (no subPath): Kubernetes swaps renewed files in, the service re-reads them.
      // (defaultMode 0444 in the template: octal to Kubernetes' YAML 1.1, 444 to this YAML 1.2 parser.)
      expect(d.spec.template.spec.volumes).toContainEqual({
        name: 'tls',
        secret: { secretName: `corebank-${svc}-tls`, defaultMode: 444 },
      });
      expect(container(d).volumeMounts).toContainEqual({ name: 'tls', mountPath: '/etc/corebank/tls', readOnly: true });
      expect(container(d).volumeMounts.find((m: { subPath?: string }) => m.subPath)).toBeUndefined();
      expect(container(d).readinessProbe.grpc.port).toBe(50052);
    }
    // The health port is not published on the Service: only kubelet needs it.
    for (const s of ofKind(objs, 'Service')) {
      expect(s.spec.ports.map((p: { name: string }) => p.name).sort()).toEqual(['grpc', 'metrics']);
    }
  });

  it('from cert-manager: a Certificate per service for its Service names, server and client auth', () => {
    const objs = render({ overrides: [allOn] });
    const certs = ofKind(objs, 'Certificate');
    expect(certs.map((c) => c.metadata.name).sort()).toEqual(
      deployments(objs)
        .map((d) => d.metadata.name)
        .sort(),
    );
    for (const d of deployments(objs)) {
      const svc = d.metadata.labels['app.kubernetes.io/component'];
      const cert = certs.find((c) => c.metadata.name === d.metadata.name)!;
      expect(cert.apiVersion).toBe('cert-manager.io/v1');
      expect(cert.spec.secretName).toBe(`corebank-${svc}-tls`);
      expect(cert.spec.dnsNames).toEqual([
        d.metadata.name,
        `${d.metadata.name}.${NAMESPACE}`,
        `${d.metadata.name}.${NAMESPACE}.svc`,
        `${d.metadata.name}.${NAMESPACE}.svc.cluster.local`,
        `${svc}.corebank.bank.example`,
      ]);
      expect(cert.spec.usages).toEqual(['server auth', 'client auth', 'digital signature']);
      expect(cert.spec.issuerRef).toEqual({ name: 'bank-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
      // The callers reach the service by the name its certificate holds.
      for (const other of deployments(objs)) {
        const address = containerEnv(container(other)).get(`${svc.toUpperCase()}_SERVICE_ADDRESS`)?.value;
        if (address) expect(cert.spec.dnsNames).toContain(address.split(':')[0]);
      }
      // The CA bundle Secret replaces ca.crt of the service's own Secret.
      expect(containerEnv(container(d)).get('TLS_CA_FILE')?.value).toBe('/etc/corebank/tls-ca/ca.crt');
      expect(d.spec.template.spec.volumes).toContainEqual({
        name: 'tls-ca',
        secret: { secretName: 'corebank-trust', defaultMode: 444 },
      });
    }
  });
});

describe('NOTES.txt', () => {
  it('tells how to reach the gRPC endpoints with port-forward and grpcurl', () => {
    // helm template does not print NOTES.txt: render it through a wrapper template.
    const notes = readFileSync(join(chartDir, 'templates/NOTES.txt'), 'utf8');
    const text = renderNotes(notes);
    expect(text).toContain(`kubectl -n ${NAMESPACE} port-forward svc/${RELEASE}-corebank-account 50051:50051`);
    expect(text).toContain('grpcurl -plaintext localhost:50051 grpc.health.v1.Health/Check');
    expect(text).toMatch(/grpcurl -plaintext -H "authorization: Bearer \$TOKEN" localhost:50051 list/);
    expect(text).toContain('corebank-db-shard3');
    expect(text).not.toMatch(/<no value>|%!/);
  });
});

function renderNotes(notes: string): string {
  // Copy the chart with NOTES.txt turned into a named template that a ConfigMap includes.
  const dir = mkdtempSync(join(tmpdir(), 'corebank-notes-'));
  try {
    cpSync(chartDir, dir, { recursive: true });
    rmSync(join(dir, 'templates/NOTES.txt'));
    writeFileSync(join(dir, 'templates/_notes.tpl'), `{{- define "test.notes" -}}\n${notes}\n{{- end -}}\n`);
    writeFileSync(
      join(dir, 'templates/notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "test.notes" . | quote }}\n',
    );
    const r = helm([
      'template',
      RELEASE,
      dir,
      '--namespace',
      NAMESPACE,
      '-f',
      exampleValues,
      '--show-only',
      'templates/notes.yaml',
    ]);
    expect(r.status, r.stderr).toBe(0);
    return YAML.parse(r.stdout).data.notes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('helm package', () => {
  it('packages the chart with its schema, dashboards and README, without the tests', () => {
    const out = mkdtempSync(join(tmpdir(), 'corebank-package-'));
    try {
      const r = helm(['package', chartDir, '--destination', out]);
      expect(r.status, r.stderr).toBe(0);
      const chart = YAML.parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'));
      const tgz = join(out, `corebank-${chart.version}.tgz`);
      const files = run('tar', ['-tzf', tgz]).stdout.trim().split('\n');
      for (const f of ['Chart.yaml', 'values.yaml', 'values.schema.json', 'README.md', 'templates/NOTES.txt']) {
        expect(files).toContain(`corebank/${f}`);
      }
      expect(files.filter((f) => f.startsWith('corebank/dashboards/') && f.endsWith('.json')).length).toBeGreaterThan(
        0,
      );
      expect(files.filter((f) => /^corebank\/(tests|examples)\//.test(f))).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('documentation', () => {
  it('has an up-to-date values table in charts/corebank/README.md', async () => {
    const current = readFileSync(join(chartDir, 'README.md'), 'utf8');
    expect(await renderReadme(current), 'run node deploy/tools/values-doc.mjs').toBe(current);
  });
});
