// Shared helpers of the chart tests: run helm and kubeconform (installed by
// deploy/tools/install-chart-tools.sh) and read the rendered objects.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { chartTool, repoRoot } from '../../../deploy/tools/chart-tools.mjs';

export { repoRoot };
/** The chart under test (COREBANK_CHART_DIR points the tests at a copy, to check that they catch a broken chart). */
export const chartDir = process.env.COREBANK_CHART_DIR ?? join(repoRoot, 'charts/corebank');
export const exampleValues = join(chartDir, 'examples/values-4-shards.yaml');
export const schemasDir = join(chartDir, 'tests/schemas');
/** Kubernetes versions the rendered objects are validated against (schemas in tests/schemas). */
export const KUBERNETES_VERSIONS = ['1.30.14', '1.36.3'];
export const RELEASE = 'cb';
export const NAMESPACE = 'corebank';

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered manifests are checked field by field */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: any };
  [k: string]: any;
};
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], input?: string): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export const helm = (args: string[]) => run(chartTool('helm'), args);

export interface RenderOptions {
  /** Values files, applied in order. */
  values?: string[];
  /** Values as objects, written to temporary files and applied after `values`. */
  overrides?: object[];
  /** --set arguments. */
  set?: string[];
  kubeVersion?: string;
  extraArgs?: string[];
}

/** Runs fn with each values object written to a temporary values file, removed afterwards. */
export function withValuesFiles<T>(values: object[], fn: (files: string[]) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'corebank-chart-'));
  try {
    return fn(
      values.map((v, i) => {
        const file = join(dir, `values-${i}.yaml`);
        writeFileSync(file, YAML.stringify(v));
        return file;
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function templateArgs(o: RenderOptions, overrideFiles: string[]): string[] {
  const args = ['template', RELEASE, chartDir, '--namespace', NAMESPACE];
  args.push('--kube-version', o.kubeVersion ?? KUBERNETES_VERSIONS.at(-1)!);
  for (const f of [...(o.values ?? []), ...overrideFiles]) args.push('-f', f);
  for (const s of o.set ?? []) args.push('--set', s);
  return [...args, ...(o.extraArgs ?? [])];
}

/** helm template; the result's status is not checked (for tests that expect a failure). */
export const template = (o: RenderOptions = {}) =>
  withValuesFiles(o.overrides ?? [], (files) => helm(templateArgs(o, files)));

/** helm template that must succeed; returns the manifest text. */
export function renderText(o: RenderOptions = {}): string {
  const r = template(o);
  if (r.status !== 0) throw new Error(`helm template failed:\n${r.stderr}`);
  return r.stdout;
}

export function parseManifests(text: string): K8sObject[] {
  return YAML.parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export const render = (o: RenderOptions = {}) => parseManifests(renderText(o));

export const ofKind = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);

/** Every pod template of the workloads (Deployments and Jobs), with its owner. */
export function podTemplates(objs: K8sObject[]) {
  return objs
    .filter((o) => o.kind === 'Deployment' || o.kind === 'Job')
    .map((o) => ({
      owner: `${o.kind}/${o.metadata.name}`,
      spec: o.spec.template.spec,
      metadata: o.spec.template.metadata,
    }));
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; [k: string]: unknown };
}

export function containerEnv(container: { env?: EnvVar[] }): Map<string, EnvVar> {
  return new Map((container.env ?? []).map((e) => [e.name, e]));
}

/** kubeconform, strict, against the committed schemas; returns its JSON report. */
export function kubeconform(manifests: string, kubeVersion: string) {
  const r = run(
    chartTool('kubeconform'),
    [
      '-strict',
      '-summary',
      '-output',
      'json',
      '-kubernetes-version',
      kubeVersion,
      '-schema-location',
      schemasDir,
      '-schema-location',
      join(schemasDir, 'crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'),
      '-',
    ],
    manifests,
  );
  let report: {
    resources: { kind: string; name: string; status: string; msg: string }[];
    summary: { valid: number; invalid: number; errors: number; skipped: number };
  };
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`kubeconform gave no JSON report (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return { status: r.status, report };
}
