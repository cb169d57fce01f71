// One trace crosses the gRPC call, its PostgreSQL queries and the NATS message it causes: the
// service runs as its own process (as in production: telemetry starts before grpc-js and pg
// load), printing spans to stdout; the event's traceparent header carries the call's trace id.
import { spawn } from 'node:child_process';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';
import { freePort, promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { bankEnv, migrate } from './bank.js';
import { transfer } from './helpers.js';
import { outboxDrained, readStream } from './stream.js';
import { connectNats, ShardRouter } from '@corebank/kit';
import { TransferPosted } from '@corebank/kit/gen/corebank/v1/events';
import { randomBytes } from 'node:crypto';
import { loadAccountConfig } from '../src/config.js';

describe('tracing', () => {
  const stops: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const s of stops.reverse()) await s();
  });

  /** The account service as its own process (telemetry starts before grpc-js and pg load). */
  const serveAccount = async (overrides: Record<string, string>) => {
    const port = await freePort();
    const { env } = await bankEnv(1, { GRPC_PORT: String(port), LOG_LEVEL: 'info', ...overrides });
    await migrate(env);
    const child = spawn(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', 'services/account/src/command.ts', 'serve'],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    stops.push(() => new Promise<void>((r) => (child.once('exit', () => r()), child.kill('SIGTERM'))));
    await expect.poll(() => out.includes('gRPC server listening'), { timeout: 30_000 }).toBe(true);
    return { env, port, output: () => out };
  };

  it('follows a transfer from gRPC through PostgreSQL to NATS as one trace', async () => {
    const { env, port, output } = await serveAccount({ OTEL_TRACES_EXPORTER: 'console' });

    const client = promisify(
      new AccountServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
      await testToken(),
    );
    stops.push(() => client.close());
    const { accounts } = await client.listSystemAccounts({});
    const [cash, transit] = [
      accounts[0]!.account!,
      accounts.find((a) => a.account!.currency === accounts[0]!.account!.currency && a.kind !== accounts[0]!.kind)!
        .account!,
    ];
    const t = transfer({ debitAccountId: cash.id, creditAccountId: transit.id, amount: 5n });
    await client.createTransfers({ transfers: [t] });

    const config = loadAccountConfig(env);
    const router = new ShardRouter(config.shards, config.shardUrls, 1, 'account');
    stops.push(() => router.close());
    await expect.poll(() => outboxDrained(router.shards), { timeout: 30_000 }).toBe(true);
    const nats = await connectNats({ url: env.NATS_URL!, name: 'trace-test' });
    stops.push(() => nats.nc.close());
    const { rows } = await router.shards[0]!.db.raw(
      `select id, headers from outbox where subject = 'corebank.account.transfer_posted'`,
    );
    const eventId = (rows[0] as { id: string }).id;
    const msg = (await readStream(nats)).find((m) => m.msgId === eventId);
    expect(msg).toBeDefined();
    const traceparent = (rows[0] as { headers: Record<string, string> }).headers.traceparent;
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const traceId = traceparent!.split('-')[1]!;

    // The console exporter prints each span with its traceId; the gRPC server span and the pg
    // spans of the batch share the event's trace id.
    await expect
      .poll(() => output().includes(`'${traceId}'`) || output().includes(`"${traceId}"`), { timeout: 15_000 })
      .toBe(true);
    const spans = output()
      .split(/\n\{\n/)
      .filter((s) => s.includes(traceId));
    expect(spans.some((s) => s.includes('corebank.v1.AccountService/CreateTransfers'))).toBe(true);
    expect(spans.some((s) => /name: 'pg\.query/.test(s) || s.includes("'db.system': 'postgresql'"))).toBe(true);
  });

  it('stamps each event with the trace of the request that caused it, under concurrent load', async () => {
    const { env, port } = await serveAccount({ OTEL_TRACES_EXPORTER: 'none' });

    const raw = new AccountServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    stops.push(() => raw.close());
    const token = await testToken();
    const client = promisify(raw, token);
    const { accounts } = await client.listSystemAccounts({});
    const cash = accounts[0]!.account!;
    const other = accounts.find((a) => a.account!.currency === cash.currency && a.kind !== accounts[0]!.kind)!.account!;
    // 40 requests at once, so the ledger batches them; each names its own trace.
    const sent = new Map<string, string>();
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const traceId = randomBytes(16).toString('hex');
        const t = transfer({ debitAccountId: cash.id, creditAccountId: other.id, amount: 1n });
        sent.set(t.id, traceId);
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${token}`);
        md.set('traceparent', `00-${traceId}-${randomBytes(8).toString('hex')}-01`);
        await new Promise<void>((resolve, reject) =>
          raw.createTransfers({ transfers: [t] }, md, (err) => (err ? reject(err) : resolve())),
        );
      }),
    );
    const config = loadAccountConfig(env);
    const router = new ShardRouter(config.shards, config.shardUrls, 1, 'account');
    stops.push(() => router.close());
    const { rows } = await router.shards[0]!.db.raw(
      `select payload, headers from outbox where subject = 'corebank.account.transfer_posted'`,
    );
    const seen = new Map(
      (rows as { payload: Buffer; headers: Record<string, string> }[]).map((r) => [
        TransferPosted.decode(r.payload).transfer!.id,
        r.headers.traceparent?.split('-')[1],
      ]),
    );
    expect(new Map([...seen].filter(([id]) => sent.has(id)))).toEqual(sent);
  });
});
