// CI smoke of the benchmark harness: `npm run bench:smoke` (ledger payments and payment orders, a
// few seconds each at a tiny rate, against its own PostgreSQL, nats-server and the four services
// as processes) must exit 0, which it does only when k6's thresholds hold, the ledger invariant is
// ok, the journal holds exactly the transfers k6 saw succeed plus those the payment orders imply,
// every order k6 saw accepted settled exactly once and the in-transit accounts net to zero.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Runs the smoke as a child process without blocking this worker's event loop (spawnSync would:
 * vitest's worker then misses its own RPC deadline, "Timeout calling onTaskUpdate", when the
 * smoke takes about a minute on a busy machine).
 */
function runSmoke(args: string[], timeoutMs: number): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ status: code, output });
    });
  });
}

function k6Path(): string | undefined {
  for (const p of [process.env.K6, join(root, '.local/bin/k6')]) if (p && existsSync(p)) return p;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'k6'))) return join(dir, 'k6');
  return undefined;
}

describe('bench:smoke', () => {
  it('runs the ledger and payment scenarios against the services and reconciles', { timeout: 300_000 }, async () => {
    if (!k6Path()) {
      throw new Error('k6 is not installed: run loadtest/install-k6.sh (builds k6 into .local/bin), or set K6');
    }
    const dir = mkdtempSync(join(tmpdir(), 'corebank-bench-smoke-'));
    const json = join(dir, 'smoke.json');
    try {
      const run = await runSmoke(
        ['--conditions=source', '--import', 'tsx', join(root, 'loadtest/bench.ts'), '--smoke', '--json', json],
        280_000,
      );
      const output = run.output;
      expect(run.status, output).toBe(0);
      const report = JSON.parse(readFileSync(json, 'utf8')) as {
        failures: string[];
        results: {
          name: string;
          rate: number;
          reconciled?: {
            ok: boolean;
            journal: number;
            funding: number;
            paymentTransfers: number;
            k6Ok: number;
            payments?: { ok: boolean; orders: number; k6Accepted: number; byStatus: Record<string, number> };
          };
        }[];
      };
      expect(report.failures).toEqual([]);
      const steady = report.results.find((r) => r.name === 'steady');
      expect(steady?.reconciled?.ok, output).toBe(true);
      expect(steady!.reconciled!.k6Ok).toBeGreaterThan(0);
      expect(steady!.reconciled!.journal - steady!.reconciled!.funding).toBe(steady!.reconciled!.k6Ok);
      const payments = report.results.find((r) => r.name === 'payments');
      expect(payments?.reconciled?.ok, output).toBe(true);
      const orders = payments!.reconciled!.payments!;
      expect(orders.orders).toBeGreaterThan(0);
      expect(orders.orders).toBe(orders.k6Accepted);
      expect((orders.byStatus.PAYMENT_STATUS_COMPLETED ?? 0) + (orders.byStatus.PAYMENT_STATUS_REJECTED ?? 0)).toBe(
        orders.orders,
      );
      const r = payments!.reconciled!;
      expect(r.journal - r.funding - r.paymentTransfers).toBe(r.k6Ok);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
