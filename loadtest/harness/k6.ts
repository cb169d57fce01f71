// k6 for the harnesses (bench.ts, cob.ts): the binary, the environment every scenario script
// reads (lib/bank.js, lib/payments.js), and one run of a script with its JSON summary.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { runChild } from './services.js';

/** k6's exit code when a threshold was crossed: the run itself is fine (the harness reports it). */
const THRESHOLDS_CROSSED = 99;
/** k6's exit code when it stopped on SIGINT (it still writes its summary). */
const INTERRUPTED = 105;

/** $K6, .local/bin/k6 (loadtest/install-k6.sh builds it there), or k6 on the PATH. */
export function findK6(root: string): string | undefined {
  for (const p of [process.env.K6, join(root, '.local/bin/k6')]) if (p && existsSync(p)) return p;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'k6'))) return join(dir, 'k6');
  return undefined;
}

export const K6_MISSING = 'k6 not found: run loadtest/install-k6.sh (builds k6 into .local/bin), or set K6 to its path';

export interface K6Summary {
  metrics: Record<string, { values: Record<string, number>; thresholds?: Record<string, { ok: boolean }> }>;
  state: { testRunDurationMs: number };
}

/** The environment of a scenario script: where the services are, who it is, its fixture and load. */
export function k6Env(o: {
  accountAddr: string;
  paymentAddr?: string;
  token: string;
  fixture: string;
  summaryPath: string;
  label: string;
  vus: number;
  duration: number;
  crossShardPercent: number;
  vars?: Record<string, string | number>;
}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ADDR: o.accountAddr,
    ...(o.paymentAddr ? { PAYMENT_ADDR: o.paymentAddr } : {}),
    CROSS_PCT: String(o.crossShardPercent),
    TOKEN: o.token,
    FIXTURE: o.fixture,
    SUMMARY_PATH: o.summaryPath,
    SCENARIO_LABEL: o.label,
    VUS: String(o.vus),
    DURATION: String(o.duration),
    K6_NO_USAGE_REPORT: 'true',
    ...Object.fromEntries(Object.entries(o.vars ?? {}).map(([k, v]) => [k, String(v)])),
  };
}

export interface K6Run {
  code: number;
  summary: K6Summary;
  /** The thresholds crossed, as "metric expression". */
  crossed: string[];
  /** A metric's value from the summary (0 when absent). */
  value: (metric: string, key: string) => number;
  seconds: number;
}

/**
 * Runs `k6 run <script>` (its stdout echoed), and reads the summary its handleSummary wrote to
 * env.SUMMARY_PATH. Fails unless k6 exits 0, 99 (a threshold crossed) or, with `interruptible`,
 * 105 (stopped by SIGINT: onSpawn gives the child to signal).
 */
export async function runK6(o: {
  k6: string;
  script: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  interruptible?: boolean;
  onSpawn?: (child: ChildProcess) => void;
}): Promise<K6Run> {
  const name = o.env.SCENARIO_LABEL ?? o.script;
  const run = await runChild(o.k6, ['run', '--quiet', '--no-color', '--no-usage-report', o.script], {
    env: o.env,
    cwd: o.cwd,
    echo: true,
    ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}),
  });
  const ok = [0, THRESHOLDS_CROSSED, ...(o.interruptible ? [INTERRUPTED] : [])];
  if (!ok.includes(run.code)) throw new Error(`k6 ${name} failed (exit ${run.code}):\n${run.err.slice(-6000)}`);
  // At saturation k6 says it has no VU left for an arrival: that is the point, not a problem.
  const warnings = run.err
    .split('\n')
    .filter(
      (l) =>
        /level=(warning|error)/.test(l) &&
        !l.includes('Insufficient VUs') &&
        !l.includes('have been crossed') &&
        !(o.interruptible && l.includes("received a 'interrupt' signal")),
    );
  if (warnings.length) {
    console.error(`k6 ${name}: ${warnings.length} warnings, the first ones:\n${warnings.slice(0, 5).join('\n')}`);
  }
  const summary = JSON.parse(readFileSync(o.env.SUMMARY_PATH!, 'utf8')) as K6Summary;
  const crossed: string[] = [];
  for (const [metric, def] of Object.entries(summary.metrics)) {
    for (const [expr, t] of Object.entries(def.thresholds ?? {})) if (!t.ok) crossed.push(`${metric} ${expr}`);
  }
  return {
    code: run.code,
    summary,
    crossed,
    value: (metric, key) => summary.metrics[metric]?.values[key] ?? 0,
    seconds: summary.state.testRunDurationMs / 1000,
  };
}
