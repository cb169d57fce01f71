// The README's first command, as a new user runs it: `npm run up` brings the whole bank up with
// demo data, and the printed way to call it works (a balance read, a cross-customer payment).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';
import { promisify } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';

describe('npm run up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corebank-up-'));
  // Also its TMPDIR, where PostgreSQL (as "postgres" under root) and nats-server keep their data.
  chmodSync(dir, 0o777);
  // Five consecutive ports below Linux's ephemeral range (32768-60999), where the free ports other
  // test files take (port 0) and outgoing connections land: those could collide with these.
  const base = 20_000 + Math.floor(Math.random() * 10_000);
  const env = { ...process.env, LOCAL_DIR: dir, TMPDIR: dir, GRPC_PORT: String(base), SHARDS: '2' };
  const up = spawn('npm', ['run', 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  up.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  up.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => up.once('exit', (code) => r(code)));
  afterAll(async () => {
    // Ctrl-C first: PostgreSQL and nats-server run in groups of their own, the launcher stops them.
    const gone = (sig: NodeJS.Signals) => {
      try {
        process.kill(-up.pid!, sig);
      } catch {
        // already gone
      }
    };
    gone('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    gone('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const call = (...args: string[]) =>
    spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'deploy/local/call.ts', ...args], {
      env,
      encoding: 'utf8',
    });

  it('brings the bank up with demo data, takes calls, and stops on Ctrl-C', { timeout: 240_000 }, async () => {
    // Ready when it prints how to stop it; a launcher that exits first, or never gets there, fails
    // the test with what it printed.
    let code: number | null | undefined;
    void exited.then((c) => (code = c));
    try {
      await expect
        .poll(() => (code !== undefined ? 'exited' : out.includes('Ctrl-C stops the bank.')), {
          timeout: 150_000,
          interval: 250,
        })
        .toBe(true);
    } catch (err) {
      throw new Error(`npm run up did not get ready (${String(err)}); it printed:\n${out.slice(-4000)}`);
    }
    const bank = JSON.parse(readFileSync(join(dir, 'bank.json'), 'utf8')) as {
      accounts: Record<string, string>;
      customers: Record<string, string>;
      addresses: Record<string, string>;
    };
    const alice = bank.accounts['alice.current']!;
    const carol = bank.accounts['carol.current']!;

    // `npm run token` finds the launcher's issuer key: a token bound to alice reads her account only.
    const minted = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', 'deploy/tools/token.ts', '--channel', 'mobile'].concat([
        '--scopes',
        'accounts:read',
        '--customer',
        bank.customers.alice!,
        '--audience',
        'account',
      ]),
      { env, encoding: 'utf8' },
    );
    expect(minted.status, minted.stderr).toBe(0);
    const mobile = promisify(
      new AccountServiceClient(bank.addresses.account!, grpc.credentials.createInsecure()),
      minted.stdout.trim(),
    );
    try {
      expect((await mobile.getAccount({ accountId: alice })).account!.id).toBe(alice);
      await expect(mobile.getAccount({ accountId: carol })).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
      });
    } finally {
      mobile.close();
    }

    const read = call('AccountService', 'GetAccount', JSON.stringify({ accountId: alice }));
    expect(read.status, read.stderr).toBe(0);
    const account = JSON.parse(read.stdout).account;
    expect(account).toMatchObject({ currency: 'EUR', creditsPosted: '100000', productId: 'current-eur' });

    const pay = call(
      'PaymentService',
      'CreatePayment',
      JSON.stringify({
        idempotencyKey: 'up-test',
        payerAccountId: alice,
        payeeAccountId: carol,
        amount: '1999',
        currency: 'EUR',
      }),
    );
    expect(pay.status, pay.stderr).toBe(0);
    const id = JSON.parse(pay.stdout).payment.id as string;
    await expect
      .poll(
        () => JSON.parse(call('PaymentService', 'GetPayment', JSON.stringify({ paymentId: id })).stdout).payment.status,
        {
          timeout: 30_000,
          interval: 500,
        },
      )
      .toBe('PAYMENT_STATUS_COMPLETED');
    const after = JSON.parse(call('AccountService', 'GetAccount', JSON.stringify({ accountId: carol })).stdout).account;
    expect(BigInt(after.creditsPosted ?? 0) - BigInt(after.debitsPosted ?? 0)).toBe(100_000n + 1_999n);

    // The README's loan example: a quote, then an application decided and disbursed within the call.
    const quote = call(
      'LoanService',
      'PreviewSchedule',
      JSON.stringify({ productId: 'personal-loan-eur', amount: '500000', termMonths: 12, startDate: '2026-01-15' }),
    );
    expect(quote.status, quote.stderr).toBe(0);
    expect(JSON.parse(quote.stdout).schedule).toMatchObject({ annualRate: '6.9', instalmentAmount: '43240' });
    const customers = JSON.parse(readFileSync(join(dir, 'bank.json'), 'utf8')).customers as Record<string, string>;
    const apply = call(
      'LoanService',
      'ApplyForLoan',
      JSON.stringify({
        idempotencyKey: 'loan-1',
        customerId: customers.alice,
        productId: 'personal-loan-eur',
        amount: '500000',
        termMonths: 12,
        disbursementAccountId: alice,
        repaymentAccountId: alice,
        declaredMonthlyIncome: '300000',
      }),
    );
    expect(apply.status, apply.stderr).toBe(0);
    const applied = JSON.parse(apply.stdout);
    expect(applied.application).toMatchObject({ state: 'APPLICATION_STATE_APPROVED', score: 55 });
    expect(applied.loan).toMatchObject({ status: 'LOAN_STATUS_ACTIVE', principalOutstanding: '500000' });
    const funded = JSON.parse(
      call('AccountService', 'GetAccount', JSON.stringify({ accountId: alice })).stdout,
    ).account;
    expect(BigInt(funded.creditsPosted) - BigInt(funded.debitsPosted ?? 0)).toBe(100_000n - 1_999n + 500_000n);

    // A second `npm run up` while this one runs: one line naming the port and GRPC_PORT, at once,
    // and nothing of its own left behind (it starts nothing).
    const second = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'deploy/local/up.ts'], {
      env: { ...env, LOCAL_DIR: join(dir, 'second') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(second.status, second.stdout + second.stderr).toBe(1);
    expect(second.stderr.trim()).toBe(
      `npm run up: port ${base} (the account service's gRPC port) is in use, by another npm run up perhaps; ` +
        `set GRPC_PORT to move the five ports (now ${base}-${base + 4}), e.g. GRPC_PORT=${base + 100} npm run up`,
    );
    // PostgreSQL's and nats-server's folders, and the one with the issuer and service keys.
    expect(readdirSync(dir).filter((n) => n.startsWith('corebank-'))).toHaveLength(3);

    // Ctrl-C reaches npm and the launcher alike (PostgreSQL and nats-server run in groups of their
    // own); the launcher drains the services, then stops the servers and removes their folders.
    process.kill(-up.pid!, 'SIGINT');
    await exited;
    expect(out).toMatch(/up: stopping the account service[^]*up: stopping nats-server[^]*up: stopping PostgreSQL/);
    expect(readdirSync(dir).filter((n) => n.startsWith('corebank-'))).toEqual([]);
    await expect
      .poll(
        () =>
          new Promise<boolean>((resolve) => {
            const socket = connect(base, '127.0.0.1');
            socket.once('connect', () => (socket.destroy(), resolve(false)));
            socket.once('error', () => resolve(true));
          }),
        { timeout: 20_000 },
      )
      .toBe(true);
  });
});
