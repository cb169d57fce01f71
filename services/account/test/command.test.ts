// The service command (kit runCommand) as the image and the chart run it, through the account
// service's src/command.ts: migrate then serve on real databases, and one clear line with a
// distinct exit code for each way of starting it wrong.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { freePort } from '@corebank/kit/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { bankEnv } from './bank.js';

const entry = ['--conditions=source', '--import', 'tsx', 'services/account/src/command.ts'];
const run = (args: string[], env: Record<string, string>) => {
  const r = spawnSync(process.execPath, [...entry, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stderr: r.stderr };
};

describe('the service command', () => {
  const stops: (() => unknown)[] = [];
  afterAll(async () => {
    for (const s of stops.reverse()) await s();
  });

  it('refuses a missing or unknown command with the list of commands (exit 64)', () => {
    for (const args of [[], ['seed'], ['serve', 'extra']]) {
      const r = run(args, {});
      expect(r.status, args.join(' ')).toBe(64);
      expect(r.stderr).toMatch(/^account: no command.*; use one of: serve, migrate, relay\n/);
    }
  });

  it('names a bad variable in one line (exit 78), for every command', () => {
    for (const command of ['serve', 'migrate', 'relay']) {
      const r = run([command], { AUTH_JWKS: '' });
      expect(r.status, command).toBe(78);
      expect(r.stderr.trim()).toMatch(new RegExp(`^account ${command}: invalid configuration: AUTH_JWKS: is required`));
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it(
    'migrates, then serves until SIGTERM; a port in use is one line naming GRPC_PORT',
    { timeout: 90_000 },
    async () => {
      const port = await freePort();
      const { env } = await bankEnv(1, { GRPC_PORT: String(port), LOG_LEVEL: 'info' });
      const migrated = run(['migrate'], env);
      expect(migrated.status, migrated.out).toBe(0);
      // Migrating again is a no-op, as the chart's pre-upgrade hook needs.
      expect(run(['migrate'], env).status).toBe(0);

      const server = spawn(process.execPath, [...entry, 'serve'], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
      stops.push(() => server.kill('SIGKILL'));
      await expect.poll(() => out.includes('gRPC server listening'), { timeout: 30_000 }).toBe(true);

      // A second one on the same port: refused at bind, with what to change, not a grpc-js stack.
      const second = run(['serve'], env);
      expect(second.status).toBe(1);
      expect(second.stderr).toContain(
        `account serve: cannot listen on 127.0.0.1:${port}: the port is in use (GRPC_PORT`,
      );
      expect(second.stderr).not.toMatch(/\n\s+at /);

      server.kill('SIGTERM');
      expect(await exited).toBe(0);
    },
  );

  it('says the same when something else holds the port', { timeout: 60_000 }, async () => {
    const blocker: Server = createServer();
    const port = await new Promise<number>((r) =>
      blocker.listen(0, '127.0.0.1', () => r((blocker.address() as { port: number }).port)),
    );
    stops.push(() => new Promise((r) => blocker.close(r)));
    const { env } = await bankEnv(1, { GRPC_PORT: String(port) });
    expect(run(['migrate'], env).status).toBe(0);
    const r = run(['serve'], env);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use`);
  });
});
