#!/usr/bin/env node
// Regenerates the JSON schemas kubeconform validates the rendered chart against, so that the
// tests need no network (kubeconform's default schema source is on GitHub, which we cannot reach).
//
// Sources, fetched once here with `go mod download` through the Go module proxy (Go >= 1.21 needed,
// only to regenerate; the tests read the committed output):
//   - k8s.io/kubernetes@<version>: api/openapi-spec/swagger.json (the built-in kinds)
//   - github.com/prometheus-operator/prometheus-operator@<version>: the CRDs of ServiceMonitor and
//     PrometheusRule (example/prometheus-operator-crd/)
//   - github.com/cert-manager/cert-manager@<version>: the CRD of Certificate (deploy/crds/), for
//     tls.source: cert-manager
//
// Output (charts/corebank/tests/schemas/, small: only the kinds the chart renders, descriptions
// stripped, shared definitions kept once per file and referenced with local $refs):
//   v<k8s>-standalone-strict/<kind>-<group>-<version>.json   kubeconform's default file layout
//   crds/<group>/<kind>_<version>.json                        the monitoring and cert-manager CRDs
//
// "strict" as in kubeconform: every object without a declared map type gets
// additionalProperties: false, so a misspelt or misplaced field fails validation.
//
//   node deploy/tools/gen-k8s-schemas.mjs           regenerate
//   node deploy/tools/gen-k8s-schemas.mjs --check   exit 1 when the committed files differ
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import YAML from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const outDir = join(root, 'charts/corebank/tests/schemas');

/** Kubernetes versions validated: the oldest the chart supports (Chart.yaml kubeVersion) and a current one. */
export const KUBERNETES_VERSIONS = ['1.30.14', '1.36.3'];
export const PROMETHEUS_OPERATOR_VERSION = 'v0.85.0';
export const CERT_MANAGER_VERSION = 'v1.19.2';

/** The built-in kinds the chart renders, as swagger definition names. */
const KINDS = [
  'io.k8s.api.apps.v1.Deployment',
  'io.k8s.api.core.v1.Service',
  'io.k8s.api.core.v1.ServiceAccount',
  'io.k8s.api.core.v1.ConfigMap',
  'io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler',
  'io.k8s.api.policy.v1.PodDisruptionBudget',
  'io.k8s.api.networking.v1.NetworkPolicy',
  'io.k8s.api.batch.v1.Job',
];
/** The CRDs of the custom kinds the chart renders: module, folder, files. */
const CRDS = [
  [
    `github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}`,
    'example/prometheus-operator-crd',
    ['monitoring.coreos.com_servicemonitors.yaml', 'monitoring.coreos.com_prometheusrules.yaml'],
  ],
  [
    `github.com/cert-manager/cert-manager@${CERT_MANAGER_VERSION}`,
    'deploy/crds',
    ['cert-manager.io_certificates.yaml'],
  ],
];

function goModDir(mod) {
  const out = execFileSync('go', ['mod', 'download', '-json', mod], { cwd: root, encoding: 'utf8' });
  const info = JSON.parse(out);
  if (info.Error) throw new Error(`go mod download ${mod}: ${info.Error}`);
  return info.Dir;
}

const refName = (ref) => ref.replace('#/definitions/', '');

/** Converts one swagger (OpenAPI v2) schema node into a strict JSON schema node. */
function convert(node) {
  if (Array.isArray(node)) return node.map(convert);
  if (node === null || typeof node !== 'object') return node;
  if (node.$ref) return { $ref: node.$ref };
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'description' || k.startsWith('x-kubernetes-') || k === 'format') continue;
    if (k === 'properties') {
      out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, convert(s)]));
    } else if (k === 'items' || k === 'additionalProperties' || k === 'not') {
      out[k] = typeof v === 'object' ? convert(v) : v;
    } else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') {
      out[k] = v.map(convert);
    } else {
      out[k] = v;
    }
  }
  if (node['x-kubernetes-int-or-string'] || node.format === 'int-or-string') {
    delete out.type;
    out.oneOf = [{ type: 'string' }, { type: 'integer' }];
  }
  if (node.format === 'int32' || node.format === 'int64') out.type = 'integer';
  if (out.properties && out.additionalProperties === undefined && !node['x-kubernetes-preserve-unknown-fields']) {
    out.additionalProperties = false;
  }
  if (node['x-kubernetes-preserve-unknown-fields'] && !out.type) out.type = 'object';
  return out;
}

function reachable(defs, start) {
  const seen = new Set();
  const walk = (n) => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!n || typeof n !== 'object') return;
    if (n.$ref) {
      const name = refName(n.$ref);
      if (!seen.has(name)) {
        seen.add(name);
        walk(defs[name]);
      }
    }
    Object.values(n).forEach(walk);
  };
  walk(defs[start]);
  seen.delete(start);
  return [...seen].sort();
}

function builtInSchemas(version) {
  const dir = goModDir(`k8s.io/kubernetes@v${version}`);
  const swagger = JSON.parse(readFileSync(join(dir, 'api/openapi-spec/swagger.json'), 'utf8'));
  const defs = swagger.definitions;
  // Special string types that YAML may also carry as numbers.
  const special = {
    'io.k8s.apimachinery.pkg.util.intstr.IntOrString': { oneOf: [{ type: 'string' }, { type: 'integer' }] },
    'io.k8s.apimachinery.pkg.api.resource.Quantity': { oneOf: [{ type: 'string' }, { type: 'number' }] },
  };
  const files = {};
  for (const name of KINDS) {
    const def = defs[name];
    if (!def) throw new Error(`${name} is not in k8s.io/kubernetes@v${version}`);
    const gvk = def['x-kubernetes-group-version-kind'][0];
    const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
    const schema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      ...convert(def),
    };
    schema.properties.apiVersion = { type: 'string', enum: [apiVersion] };
    schema.properties.kind = { type: 'string', enum: [gvk.kind] };
    schema.required = [...new Set([...(schema.required ?? []), 'apiVersion', 'kind', 'metadata'])];
    schema.definitions = Object.fromEntries(reachable(defs, name).map((d) => [d, special[d] ?? convert(defs[d])]));
    const group = gvk.group ? gvk.group.split('.')[0] + '-' : '';
    files[`v${version}-standalone-strict/${gvk.kind.toLowerCase()}-${group}${gvk.version}.json`] = schema;
  }
  return files;
}

function crdSchemas() {
  const files = {};
  for (const [mod, folder, names] of CRDS) {
    const dir = goModDir(mod);
    for (const file of names) {
      const crd = YAML.parse(readFileSync(join(dir, folder, file), 'utf8'));
      for (const v of crd.spec.versions) {
        const schema = { $schema: 'http://json-schema.org/draft-07/schema#', ...convert(v.schema.openAPIV3Schema) };
        schema.properties.apiVersion = { type: 'string', enum: [`${crd.spec.group}/${v.name}`] };
        schema.properties.kind = { type: 'string', enum: [crd.spec.names.kind] };
        // CRD schemas describe metadata loosely; check the fields a chart sets.
        schema.properties.metadata = {
          type: 'object',
          properties: {
            name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 },
            namespace: { type: 'string' },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
            annotations: { type: 'object', additionalProperties: { type: 'string' } },
          },
          required: ['name'],
          additionalProperties: false,
        };
        schema.required = [...new Set([...(schema.required ?? []), 'apiVersion', 'kind', 'metadata', 'spec'])];
        files[`crds/${crd.spec.group}/${crd.spec.names.kind.toLowerCase()}_${v.name}.json`] = schema;
      }
    }
  }
  return files;
}

async function main() {
  const check = process.argv.includes('--check');
  const files = { ...crdSchemas() };
  for (const v of KUBERNETES_VERSIONS) Object.assign(files, builtInSchemas(v));
  const sources = {
    'README.md':
      '# Schemas for kubeconform\n\nGenerated by `node deploy/tools/gen-k8s-schemas.mjs` from ' +
      KUBERNETES_VERSIONS.map((v) => `k8s.io/kubernetes@v${v}`).join(', ') +
      ` (api/openapi-spec/swagger.json) and github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}` +
      ` (example/prometheus-operator-crd) and github.com/cert-manager/cert-manager@${CERT_MANAGER_VERSION} (deploy/crds),` +
      ' fetched through the Go module proxy. Do not edit by hand.\n' +
      'Only the kinds the chart renders are kept; add a kind to KINDS in the script when the chart renders a new one.\n',
  };
  const want = new Map(Object.entries(files).map(([p, s]) => [p, JSON.stringify(s) + '\n']));
  for (const [p, s] of Object.entries(sources)) want.set(p, s);
  // Formatted as the repository's Prettier settings would, so `prettier --check .` and --check agree.
  for (const [p, text] of want) {
    const filepath = join(outDir, p);
    want.set(p, await prettier.format(text, { ...((await prettier.resolveConfig(filepath)) ?? {}), filepath }));
  }

  if (check) {
    const stale = [];
    const have = existsSync(outDir) ? listFiles(outDir) : [];
    for (const [p, text] of want) {
      const f = join(outDir, p);
      if (!existsSync(f) || readFileSync(f, 'utf8') !== text) stale.push(p);
    }
    for (const p of have) if (!want.has(p)) stale.push(`${p} (not generated)`);
    if (stale.length) {
      console.error(`stale schemas, run node deploy/tools/gen-k8s-schemas.mjs:\n  ${stale.join('\n  ')}`);
      process.exit(1);
    }
    console.log('schemas are up to date');
    return;
  }
  rmSync(outDir, { recursive: true, force: true });
  let total = 0;
  for (const [p, text] of want) {
    mkdirSync(dirname(join(outDir, p)), { recursive: true });
    writeFileSync(join(outDir, p), text);
    total += text.length;
  }
  console.log(`wrote ${want.size} files (${(total / 1024).toFixed(0)} KiB) to ${relative(root, outDir)}`);
}

function listFiles(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name), base) : [relative(base, join(dir, e.name))],
  );
}

await main();
