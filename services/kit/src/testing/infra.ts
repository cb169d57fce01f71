// Real PostgreSQL and real nats-server (JetStream), started on free ports in a temporary folder
// and torn down afterwards. PostgreSQL refuses to run as root, so as root it runs as "postgres".
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export async function freePort(): Promise<number> {
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

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready in ${timeoutMs} ms`);
}

export interface RunningProcess {
  url: string;
  port: number;
  stop: () => Promise<void>;
  /**
   * Kills the server (PostgreSQL: immediate shutdown, as a crash; nats-server: SIGKILL), waits
   * `downMs`, and starts it again on the same port and data (JetStream's store included).
   */
  restart: (downMs?: number) => Promise<void>;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

export async function startPostgres(): Promise<RunningProcess & { adminUrl: string }> {
  const bin = pgBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'corebank-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
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
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  const port = await freePort();
  const [cmd, args] = asPgUser(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=300',
    '-c',
    'shared_buffers=256MB',
  ]);
  const adminUrl = `postgres://corebank@127.0.0.1:${port}/postgres`;
  const launch = async (): Promise<ChildProcess> => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    try {
      await waitFor('PostgreSQL', async () => {
        const c = new pg.Client(adminUrl);
        await c.connect();
        await c.end();
        return true;
      });
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${stderr}`);
    }
    return child;
  };
  let child = await launch();
  const kill = async () => {
    // runuser does not pass signals on; pg_ctl stops the server itself.
    const [stopCmd, stopArgs] = asPgUser(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-s']);
    try {
      execFileSync(stopCmd, stopArgs, { stdio: 'ignore' });
    } catch {
      child.kill('SIGKILL');
    }
    await stopChild(child);
  };
  return {
    url: `postgres://corebank@127.0.0.1:${port}`,
    adminUrl,
    port,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async (downMs = 0) => {
      await kill();
      await new Promise((r) => setTimeout(r, downMs));
      child = await launch();
    },
  };
}

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

export async function startNats(): Promise<RunningProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'corebank-nats-'));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const launch = async () => {
    const c = spawn(natsBinary(), ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
    await waitFor('nats-server', async () => {
      const { connect } = await import('@nats-io/transport-node');
      const nc = await connect({ servers: url, reconnect: false });
      await nc.close();
      return true;
    });
    return c;
  };
  let child = await launch();
  return {
    url,
    port,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async (downMs = 0) => {
      await stopChild(child, 'SIGKILL');
      await new Promise((r) => setTimeout(r, downMs));
      child = await launch();
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
