// CPU accounting from /proc for the benchmark: ticks (utime + stime) of a process tree, where the
// live members' cutime/cstime hold what their exited children used (postgres backends come and
// go), and the machine's busy share from /proc/stat.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

export const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export function stat(pid: number): { ppid: number; self: number; children: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function processes(): Map<number, { ppid: number; cmd: string[] }> {
  const out = new Map<number, { ppid: number; cmd: string[] }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    const st = stat(pid);
    if (!st) continue;
    let cmd: string[] = [];
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    out.set(pid, { ppid: st.ppid, cmd });
  }
  return out;
}

/** Total CPU ticks of each pid and its descendants, including their exited (reaped) children. */
export function treeTicks(pids: number[]): number[] {
  const all = processes();
  return pids.map((pid) => {
    const tree = new Set([pid]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const [p, { ppid }] of all) {
        if (!tree.has(p) && tree.has(ppid)) {
          tree.add(p);
          grew = true;
        }
      }
    }
    let t = 0;
    for (const p of tree) {
      const st = stat(p);
      if (st) t += st.self + st.children;
    }
    return t;
  });
}

/** The server process listening on `port` (found by its command line). */
export function findServer(binary: string, port: number): number {
  for (const [pid, { cmd }] of processes()) {
    const i = cmd.indexOf('-p');
    if (cmd[0]?.endsWith(binary) && i >= 0 && cmd[i + 1] === String(port)) return pid;
  }
  throw new Error(`could not find the ${binary} process on port ${port}`);
}

export function machineBusy(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

export interface CpuSnapshot {
  at: number;
  /** Ticks of each watched process tree (the services, PostgreSQL, nats-server), by name. */
  trees: Record<string, number>;
  harness: number;
  children: number; // reaped children of the harness: k6 or pgbench, whichever ran
  machine: { busy: number; total: number };
}

/**
 * CPU use between two snapshots, in % of one core: each watched tree by name, `load` (k6 or
 * pgbench), `harness`, `other` (everything else on the machine) and `machine` (all of it).
 */
export type CpuUse = Record<string, number> & { load: number; harness: number; other: number; machine: number };

export function cpuSnapshot(watched: Record<string, number>): CpuSnapshot {
  const names = Object.keys(watched);
  const ticks = treeTicks(names.map((n) => watched[n]!));
  const self = stat(process.pid)!;
  return {
    at: Date.now(),
    trees: Object.fromEntries(names.map((n, i) => [n, ticks[i]!])),
    harness: self.self,
    children: self.children,
    machine: machineBusy(),
  };
}

export function cpuUse(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const secs = (b.at - a.at) / 1000;
  const pct = (ticks: number) => Math.round((100 * ticks) / TICKS / secs);
  const out: Record<string, number> = {};
  let ours = 0;
  for (const n of Object.keys(b.trees)) {
    out[n] = pct(b.trees[n]! - (a.trees[n] ?? 0));
    ours += out[n];
  }
  const load = pct(b.children - a.children);
  const harness = pct(b.harness - a.harness);
  ours += load + harness;
  // /proc/stat counts in USER_HZ too; scale the machine's busy share to ticks of one core.
  const busyShare = (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total);
  const machine = Math.round(busyShare * 100 * cpus().length);
  return { ...out, load, harness, other: Math.max(0, machine - ours), machine } as CpuUse;
}
