// The payment service as a child process, killed with SIGKILL at random moments (at least five
// times) while more than 1,000 cross-shard payments are in flight. Channels retry with the same
// idempotency key until they get an answer. After the last restart every saga settles and the
// ledger shows each payment applied exactly once or not at all.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { bucketedId, ShardRouter } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentServiceClient, type CreatePaymentRequest } from '@corebank/kit/gen/corebank/v1/payment';
import { freePort, promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from '../../account/test/bank.js';
import { loadPaymentConfig } from '../src/config.js';
import { accountsOn, paymentEnv, PAYMENT_SCOPES } from './harness.js';
import { allOrders, checkInvariants, outcomeCounts, unsettledCount } from './invariants.js';

const FUNDING = 5_000n;
const PAYMENTS = 1_200;

let childErr = '';
function startChild(env: Record<string, string>): ChildProcess {
  const c = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'services/payment/src/main.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  c.stderr?.on('data', (d: Buffer) => (childErr = (childErr + d.toString()).slice(-4000)));
  return c;
}

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

describe('payment service killed mid-saga', () => {
  let bank: TestBank;
  let env: Record<string, string>;
  let child: ChildProcess | undefined;
  let router: ShardRouter;
  let accounts: Account[][];
  beforeAll(async () => {
    bank = await startBank(3);
    env = await paymentEnv(bank, 3, {
      GRPC_PORT: String(await freePort()),
      LEDGER_CALL_TIMEOUT_MS: '2000',
      SAGA_SWEEP_INTERVAL_MS: '250',
      SAGA_MAX_BACKOFF_MS: '1000',
      SHUTDOWN_GRACE_MS: '500',
      LOG_LEVEL: 'error',
    });
    const config = loadPaymentConfig(env);
    router = new ShardRouter(config.shards, config.shardUrls, 4, 'payment');
    accounts = await Promise.all([0, 1, 2].map((s) => accountsOn(bank, s, 40, FUNDING)));
  });
  afterAll(async () => {
    if (child) await killed(child);
    await router?.close();
    await bank?.stop();
  });

  it('settles every saga exactly once although the service is killed six times', { timeout: 300_000 }, async () => {
    child = startChild(env);
    const client = promisify(
      new PaymentServiceClient(`127.0.0.1:${env.GRPC_PORT}`, grpc.credentials.createInsecure()),
      await testToken(bank.key, PAYMENT_SCOPES),
    );
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    const reqs: CreatePaymentRequest[] = Array.from({ length: PAYMENTS }, (_, i) => {
      const from = i % 3;
      const to = (from + 1 + (i % 2)) % 3;
      // Some payees do not exist (the hold is voided), some amounts exceed what the payer has left.
      const payee =
        i % 40 === 0
          ? bucketedId(bank.app.router.map.firstBucketOf(to), 'missing', randomUUID())
          : pick(accounts[to]!).id;
      return {
        idempotencyKey: randomUUID(),
        payerAccountId: pick(accounts[from]!).id,
        payeeAccountId: payee,
        amount: BigInt(20 + Math.floor(Math.random() * 1200)),
        currency: 'EUR',
        reference: `crash ${i}`,
      };
    });

    // Kills at random moments while payments are being submitted (and sagas are in flight): each
    // once the submissions pass a random mark, after a random extra delay.
    let kills = 0;
    let submitted = 0;
    const marks = Array.from({ length: 6 }, () => 50 + Math.floor(Math.random() * (PAYMENTS - 200))).sort(
      (a, b) => a - b,
    );
    const chaos = (async () => {
      for (const mark of marks) {
        while (submitted < mark) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, Math.random() * 300));
        await killed(child!);
        kills++;
        child = startChild(env);
      }
    })();
    // A channel: each request retried with its key until the service answers.
    let retries = 0;
    const queue = [...reqs];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        for (;;) {
          try {
            await client.createPayment(r, { deadlineMs: 5_000 });
            break;
          } catch {
            retries++;
            await new Promise((res) => setTimeout(res, 250));
          }
        }
        submitted++;
      }
    };
    await Promise.all(Array.from({ length: 40 }, worker));
    await chaos;
    expect(kills).toBeGreaterThanOrEqual(5);
    const unsettledAtLastKill = await unsettledCount(router);

    const started = Date.now();
    try {
      await expect.poll(() => unsettledCount(router), { timeout: 120_000, interval: 250 }).toBe(0);
    } catch (err) {
      console.error(childErr);
      throw err;
    }
    const orders = await allOrders(router);
    expect(orders.length).toBe(PAYMENTS);
    await checkInvariants(
      bank,
      orders,
      accounts.flat().map((account) => ({ account, funding: FUNDING })),
    );
    const counts = await outcomeCounts(orders);
    expect(counts.voided).toBeGreaterThan(0);
    console.log(
      `${PAYMENTS} payments, ${kills} SIGKILLs, ${retries} client retries, ${unsettledAtLastKill} unsettled after the last restart, settled ${Date.now() - started} ms later:`,
      counts,
    );
    client.close();
  });
});
