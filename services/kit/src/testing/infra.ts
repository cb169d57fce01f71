// Real PostgreSQL and real nats-server (JetStream), started on free ports in a temporary folder
// and torn down afterwards. PostgreSQL refuses to run as root, so as root it runs as "postgres".
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A free TCP port on 127.0.0.1, never one that this process handed out before. */
export async function freePort(): Promise<number> {
  // The probe's port is free again once it closes, and the kernel may offer it to the next probe
  // before whoever asked for the first one listens on it (the bench once gave the customer and
  // payment services one port): a port this process handed out is never handed out again.
  for (;;) {
    const port = await probePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Ports freePort handed out in this process. */
const handedOut = new Set<number>();

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function pgBinDir(): string {
  if (process.env.PG_BIN && existsSync(join(process.env.PG_BIN, 'postgres'))) return process.env.PG_BIN;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, 'bin/postgres'))) return join(base, v, 'bin');
  throw new Error('PostgreSQL binaries not found: run `npm run setup` (installs postgresql) or set PG_BIN');
}

const isRoot = () => process.getuid?.() === 0;
const asPgUser = (cmd: string, args: string[]): [string, string[]] =>
  isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];

export interface StartOptions {
  /**
   * Own process group (and session): a terminal's Ctrl-C, sent to the foreground group, then
   * reaches only the launcher, which stops the server itself after its clients have drained.
   */
  detached?: boolean;
  /** Aborting stops the server (and removes its folder) wherever its start has got to. */
  signal?: AbortSignal;
  /** How long the server may take to accept connections (default 30 s). */
  readyTimeoutMs?: number;
  /**
   * PostgreSQL only, what a commit survives:
   *  - 'durable': fsync, synchronous_commit and full_page_writes on, as in production (benchmarks);
   *  - 'relaxed': all three off: the fastest, and a killed server forgets its last commits;
   *  - 'process-crash' (default, the tests): synchronous_commit on with fsync and full_page_writes
   *    off: a commit is written to the kernel before it is acknowledged (a write, no disk flush),
   *    so a server the tests kill or restart keeps every commit it acknowledged; only a crash of
   *    the machine could lose them, which tests never need.
   */
  durability?: 'durable' | 'relaxed' | 'process-crash';
  /** PostgreSQL only: more server settings (`-c name=value`), e.g. shared_preload_libraries. */
  settings?: Record<string, string>;
}

/** A child that exits before it is ready, with the end of what it wrote. */
class ExitedEarly extends Error {}

/**
 * Polls check() until it says yes. Each check is bounded (a port that accepts connections and
 * never answers must not hang the start), the child exiting ends the wait at once with its
 * output, and an abort ends it with the abort's reason.
 */
async function waitFor(
  what: string,
  child: ChildProcess,
  output: () => string,
  check: () => Promise<boolean>,
  o: StartOptions,
): Promise<void> {
  const timeoutMs = o.readyTimeoutMs ?? 30_000;
  const until = Date.now() + timeoutMs;
  const bounded = () =>
    Promise.race([check().catch(() => false), new Promise<boolean>((r) => setTimeout(() => r(false), 2_000).unref())]);
  while (Date.now() < until) {
    o.signal?.throwIfAborted();
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ExitedEarly(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`);
    }
    if (await bounded()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready in ${timeoutMs} ms:\n${output()}`);
}

export interface RunningProcess {
  url: string;
  port: number;
  /** The server's process id (its group's, when started detached). */
  pid: number;
  /** The temporary folder that holds its data; stop() removes it. */
  dir: string;
  stop: () => Promise<void>;
  /**
   * Kills the server (PostgreSQL: immediate shutdown, as a crash; nats-server: SIGKILL), waits
   * `down` ms (or runs `down`, to act during the outage), and starts it again on the same port and
   * data (JetStream's store included), even when `down` failed.
   */
  restart: (down?: Down) => Promise<void>;
}

/** How long an outage lasts: milliseconds, or what a test does while the server is down. */
export type Down = number | (() => Promise<unknown>);

const sitOut = (down: Down) => (typeof down === 'number' ? new Promise((r) => setTimeout(r, down)) : down());

/** Starts a server again on the port it had: a restart, for tests of outages. */
async function restartOn(
  what: string,
  port: number,
  start: (port: number) => ChildProcess,
  ready: (port: number) => Promise<boolean>,
): Promise<ChildProcess> {
  const child = start(port);
  let output = '';
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  try {
    await waitFor(
      what,
      child,
      () => output,
      () => ready(port),
      {},
    );
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw err;
  }
  return child;
}

/** Children that lead a process group of their own (spawned detached). */
const groupLeaders = new WeakSet<ChildProcess>();

/** Signals a child, or its whole group when it leads one (so runuser's child gets it too). */
function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (groupLeaders.has(child) && child.pid) process.kill(-child.pid, sig);
    else child.kill(sig);
  } catch {
    // already gone
  }
}

function spawnChild(cmd: string, args: string[], detached = false): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], detached });
  if (detached) groupLeaders.add(child);
  return child;
}

function stopChild(child: ChildProcess, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    signal(child, sig);
    setTimeout(() => signal(child, 'SIGKILL'), 10_000).unref();
  });
}

/** Runs a command to its end (asynchronously: a signal handler can run meanwhile). */
function runToEnd(cmd: string, args: string[], o: StartOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    // In a group of its own, so that an abort reaches initdb under runuser too.
    const c = spawnChild(cmd, args, true);
    let stderr = '';
    c.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const onAbort = () => signal(c, 'SIGKILL');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    c.once('error', reject);
    c.once('exit', (code, sig) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (o.signal?.aborted) reject(o.signal.reason);
      else if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? sig}):\n${stderr}`));
    });
  });
}

/**
 * Starts a server on a free port: start(port) spawns it, ready(port) says it answers. freePort
 * only finds a port that was free a moment ago, so a server that exits at once (another process
 * took the port meanwhile) is tried again on another, twice. Whatever fails, nothing is left
 * running.
 */
async function startOnFreePort(
  what: string,
  start: (port: number) => ChildProcess,
  ready: (port: number) => Promise<boolean>,
  o: StartOptions,
): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted();
    const port = await freePort();
    const child = start(port);
    let output = '';
    child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    child.once('error', (err) => (output += `\n${err.message}`));
    try {
      await waitFor(
        what,
        child,
        () => output,
        () => ready(port),
        o,
      );
      return { child, port, output: () => output };
    } catch (err) {
      await stopChild(child, 'SIGKILL');
      if (!(err instanceof ExitedEarly) || attempt >= 3) throw err;
    }
  }
}

/** The server settings that decide what a commit survives (StartOptions.durability). */
function durability(mode: NonNullable<StartOptions['durability']>): string[] {
  const fsync = mode === 'durable' ? 'on' : 'off';
  const synchronousCommit = mode === 'relaxed' ? 'off' : 'on';
  return ['-c', `fsync=${fsync}`, '-c', `synchronous_commit=${synchronousCommit}`, '-c', `full_page_writes=${fsync}`];
}

export async function startPostgres(o: StartOptions = {}): Promise<RunningProcess & { adminUrl: string }> {
  const bin = pgBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'corebank-pg-'));
  const data = join(dir, 'data');
  const pgCtlStop = async () => {
    // runuser does not pass signals on; pg_ctl stops the server itself.
    const [stopCmd, stopArgs] = asPgUser(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-s']);
    await runToEnd(stopCmd, stopArgs, {}).catch(() => undefined);
  };
  const spawnPg = (port: number) => {
    const [cmd, args] = asPgUser(join(bin, 'postgres'), [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      ...durability(o.durability ?? 'process-crash'),
      '-c',
      'max_connections=300',
      '-c',
      'shared_buffers=256MB',
      ...Object.entries(o.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ]);
    return spawnChild(cmd, args, o.detached);
  };
  const readyPg = async (port: number) => {
    const c = new pg.Client({ connectionString: adminUrlOf(port), connectionTimeoutMillis: 2_000 });
    await c.connect();
    await c.end();
    return true;
  };
  let server: Awaited<ReturnType<typeof startOnFreePort>> | undefined;
  try {
    chmodSync(dir, 0o777);
    if (isRoot()) execFileSync('chown', ['postgres', dir]);
    const [initCmd, initArgs] = asPgUser(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'corebank',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
    ]);
    await runToEnd(initCmd, initArgs, o);
    server = await startOnFreePort('PostgreSQL', spawnPg, readyPg, o);
  } catch (err) {
    // As root the server runs under runuser; pg_ctl reaches it where killing runuser would not.
    await pgCtlStop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { port } = server;
  let child = server.child;
  // Stops the server; a detached one is not in our process group, so nothing else would.
  return {
    url: `postgres://corebank@127.0.0.1:${port}`,
    adminUrl: adminUrlOf(port),
    port,
    pid: child.pid!,
    dir,
    stop: async () => {
      await pgCtlStop();
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async (down: Down = 0) => {
      await pgCtlStop();
      await stopChild(child, 'SIGKILL');
      try {
        await sitOut(down);
      } finally {
        child = await restartOn('PostgreSQL', port, spawnPg, readyPg);
      }
    },
  };
}

const adminUrlOf = (port: number) => `postgres://corebank@127.0.0.1:${port}/postgres`;

function natsBinary(): string {
  for (const p of [
    process.env.NATS_SERVER_BIN,
    join(process.env.HOME ?? '', 'go/bin/nats-server'),
    '/usr/sbin/nats-server',
    '/usr/bin/nats-server',
    '/usr/local/bin/nats-server',
  ]) {
    if (p && existsSync(p)) return p;
  }
  throw new Error('nats-server not found: run `npm run setup` (installs nats-server) or set NATS_SERVER_BIN');
}

export async function startNats(o: StartOptions = {}): Promise<RunningProcess> {
  const bin = natsBinary();
  const dir = mkdtempSync(join(tmpdir(), 'corebank-nats-'));
  const spawnNats = (port: number) =>
    spawnChild(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], o.detached);
  const readyNats = async (port: number) => {
    const { connect } = await import('@nats-io/transport-node');
    const nc = await connect({ servers: `nats://127.0.0.1:${port}`, reconnect: false, timeout: 2_000 });
    await nc.close();
    return true;
  };
  let server: Awaited<ReturnType<typeof startOnFreePort>>;
  try {
    server = await startOnFreePort('nats-server', spawnNats, readyNats, o);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { port } = server;
  let child = server.child;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    dir,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async (down: Down = 0) => {
      await stopChild(child, 'SIGKILL');
      try {
        await sitOut(down);
      } finally {
        child = await restartOn('nats-server', port, spawnNats, readyNats);
      }
    },
  };
}

/** Creates fresh, empty databases on the test server (one per shard). */
export async function createDatabases(adminUrl: string, names: string[]): Promise<void> {
  const c = new pg.Client(adminUrl);
  await c.connect();
  try {
    for (const n of names) await c.query(`create database "${n}"`);
  } finally {
    await c.end();
  }
}
