// `npm run up` leaves nothing behind, however it ends before the bank is up: Ctrl-C in a terminal
// (SIGINT to the whole foreground process group) at any step, SIGTERM to the launcher alone, a
// step that does not finish within its bound, or a port already in use. Each launcher gets a
// temporary folder of its own as TMPDIR, so what it leaves is easy to see: server folders there,
// or processes whose command line names it.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

interface Launch {
  child: ChildProcess;
  dir: string;
  output: () => string;
  exited: Promise<number | null>;
}

const dirs: string[] = [];
// Ports below Linux's ephemeral range (32768-60999), like up.test.ts, five per launcher.
const basePort = () => 20_000 + 5 * Math.floor(Math.random() * 2_000);

function launch(env: Record<string, string> = {}): Launch {
  const dir = mkdtempSync(join(tmpdir(), 'corebank-up-stop-'));
  // PostgreSQL runs as "postgres" under root: it must reach its folder inside this one.
  chmodSync(dir, 0o777);
  dirs.push(dir);
  // Its own process group, as a terminal's foreground job is: SIGINT to -pid is Ctrl-C.
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'deploy/local/up.ts'], {
    env: {
      ...process.env,
      TMPDIR: dir,
      LOCAL_DIR: join(dir, 'local'),
      SHARDS: '1',
      GRPC_PORT: String(basePort()),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, dir, output: () => out, exited };
}

/** Processes whose command line names dir (PostgreSQL, nats-server, initdb started for it). */
function processesIn(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(dir)) found.push(`${pid} ${cmd}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** What a launcher left: server folders in its TMPDIR and processes using them. */
const leftovers = (dir: string) => [...readdirSync(dir).filter((n) => n.startsWith('corebank-')), ...processesIn(dir)];

/** Waits for a line of output, or (a moment any launcher has) for both servers to run. */
async function waitFor(l: Launch, moment: string): Promise<void> {
  const reached =
    moment === 'servers running'
      ? () => ['postgres ', 'nats-server '].every((p) => processesIn(l.dir).some((c) => c.includes(p)))
      : () => l.output().includes(moment);
  await expect.poll(() => reached() || l.child.exitCode !== null, { timeout: 90_000, interval: 20 }).toBe(true);
  expect(l.child.exitCode, `exited before "${moment}":\n${l.output()}`).toBeNull();
}

async function exitWithin(l: Launch, ms: number): Promise<number | null> {
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms));
  const code = await Promise.race([l.exited, timeout]);
  expect(code, `still running after ${ms} ms:\n${l.output()}`).not.toBe('timeout');
  return code as number | null;
}

describe('npm run up, ended before it is up', () => {
  afterAll(() => {
    // A failed test must not leave servers on a shared machine: they are ours (they name our folder).
    for (const dir of dirs) {
      for (const p of processesIn(dir)) {
        try {
          process.kill(Number(p.split(' ')[0]), 'SIGKILL');
        } catch {
          // gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['while PostgreSQL and nats-server start', 'up: starting PostgreSQL and nats-server...'],
    ['once PostgreSQL and nats-server run', 'servers running'],
    ['while it migrates', 'up: migrating the customer service'],
    ['while the services start', 'up: starting the account service'],
  ])('Ctrl-C %s stops everything it started and removes their folders', { timeout: 120_000 }, async (_, moment) => {
    const l = launch();
    await waitFor(l, moment);
    process.kill(-l.child.pid!, 'SIGINT');
    expect(await exitWithin(l, 40_000)).toBe(130);
    expect(leftovers(l.dir), l.output()).toEqual([]);
    if (moment.startsWith('up: migrating') || moment.startsWith('up: starting the')) {
      // The services drain first, the servers they use go last.
      const out = l.output();
      expect(out.indexOf('up: stopping PostgreSQL'), out).toBeGreaterThan(out.indexOf('up: stopping nats-server'));
      if (out.includes('up: stopping the product service'))
        expect(out.indexOf('up: stopping nats-server')).toBeGreaterThan(
          out.indexOf('up: stopping the product service'),
        );
    }
  });

  it('stops everything on SIGTERM to the launcher alone', { timeout: 120_000 }, async () => {
    const l = launch();
    await waitFor(l, 'servers running');
    l.child.kill('SIGTERM');
    expect(await exitWithin(l, 40_000)).toBe(143);
    expect(leftovers(l.dir), l.output()).toEqual([]);
  });

  it(
    'gives up on a step that does not finish in its bound, naming it, and leaves nothing',
    { timeout: 60_000 },
    async () => {
      const l = launch({ UP_STEP_TIMEOUT_MS: '300' });
      expect(await exitWithin(l, 40_000)).toBe(1);
      expect(l.output()).toContain('npm run up: starting PostgreSQL and nats-server: not done after 300 ms; giving up');
      expect(leftovers(l.dir), l.output()).toEqual([]);
    },
  );

  it(
    'refuses a port in use in one line naming it and GRPC_PORT, before starting anything',
    { timeout: 60_000 },
    async () => {
      const base = basePort();
      const blocker: Server = createServer();
      await new Promise<void>((r) => blocker.listen(base + 2, '127.0.0.1', r));
      try {
        const l = launch({ GRPC_PORT: String(base) });
        expect(await exitWithin(l, 20_000)).toBe(1);
        expect(l.output().trim()).toBe(
          `npm run up: port ${base + 2} (the product service's gRPC port) is in use, by another npm run up perhaps; ` +
            `set GRPC_PORT to move the five ports (now ${base}-${base + 4}), e.g. GRPC_PORT=${base + 100} npm run up`,
        );
        expect(leftovers(l.dir)).toEqual([]);
      } finally {
        await new Promise((r) => blocker.close(r));
      }
    },
  );
});
