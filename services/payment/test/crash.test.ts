// The payment service as a child process, killed with SIGKILL at random moments (at least five
// times) while more than 1,000 cross-shard payments are in flight. Channels retry with the same
// idempotency key until they get an answer. After the last restart every saga settles and the
// ledger shows each payment applied exactly once or not at all.
import { randomUUID } from 'node:crypto';
import { bucketedId, ShardRouter, toTimestamp } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentServiceClient, PaymentStatus, type CreatePaymentRequest } from '@corebank/kit/gen/corebank/v1/payment';
import { freePort, promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { status as Code, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from '../../account/test/bank.js';
import { loadPaymentConfig } from '../src/config.js';
import { killAtMarks, randomMarks, RetryingChannels, ServiceProcess } from './chaos.js';
import { accountsOn, paymentEnv, PAYMENT_SCOPES, startPeers } from './harness.js';
import { allOrders, checkInvariants, outcomeCounts, unsettledCount } from './invariants.js';

const FUNDING = 5_000n;
const PAYMENTS = 1_200;

describe('payment service killed mid-saga', () => {
  let bank: TestBank;
  let env: Record<string, string>;
  let child: ServiceProcess | undefined;
  let router: ShardRouter;
  let accounts: Account[][];
  let peers: Awaited<ReturnType<typeof startPeers>> | undefined;
  beforeAll(async () => {
    bank = await startBank(3);
    // The owners here are not customers: the strictest risk tier applies, far above these amounts.
    peers = await startPeers(bank, 3);
    env = await paymentEnv(bank, 3, {
      ...peers.env,
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
    await child?.kill();
    await router?.close();
    await peers?.stop();
    await bank?.stop();
  });

  it('settles every saga exactly once although the service is killed six times', { timeout: 300_000 }, async () => {
    child = new ServiceProcess('payment', env);
    child.start();
    const client = promisify(
      new PaymentServiceClient(`127.0.0.1:${env.GRPC_PORT}`, grpc.credentials.createInsecure()),
      await testToken(PAYMENT_SCOPES),
    );
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    const reqs: CreatePaymentRequest[] = Array.from({ length: PAYMENTS }, (_, i) => {
      const from = i % 3;
      const to = (from + 1 + (i % 2)) % 3;
      // Some payees do not exist (the hold is voided), some amounts exceed what the payer has left.
      const payee =
        i % 40 === 0 ? bucketedId(bank.router.map.firstBucketOf(to), 'missing', randomUUID()) : pick(accounts[to]!).id;
      return {
        idempotencyKey: randomUUID(),
        payerAccountId: pick(accounts[from]!).id,
        payeeAccountId: payee,
        amount: BigInt(20 + Math.floor(Math.random() * 1200)),
        currency: 'EUR',
        reference: `crash ${i}`,
        // One in ten is an escrow whose auto-release timer runs out
        // within seconds, while the service is being killed: only the order's row remembers it.
        ...(i % 10 === 5 ? { escrow: {} } : {}),
      };
    });
    /**
     * An escrow's release time is set when the channel first sends it, and kept for its retries.
     * A retry that comes after that time for an order the service never recorded is refused
     * (INVALID_ARGUMENT: the time is past): an answer, which the channel takes as final.
     */
    let refused = 0;
    const send = async (r: CreatePaymentRequest) => {
      if (r.escrow && !r.escrow.autoReleaseAt) {
        r.escrow.autoReleaseAt = toTimestamp(new Date(Date.now() + 1_000 + Math.random() * 5_000));
      }
      try {
        return await client.createPayment(r, { deadlineMs: 5_000 });
      } catch (err) {
        if (r.escrow && (err as ServiceError).code === Code.INVALID_ARGUMENT) return refused++;
        throw err;
      }
    };

    // Kills at random moments while payments are being submitted (and sagas are in flight): each
    // once the submissions pass a random mark, after a random extra delay. The channels retry each
    // request with its key until the service answers.
    const channels = new RetryingChannels(reqs, send);
    const chaos = killAtMarks(child, randomMarks(6, 50, PAYMENTS - 150), () => channels.done);
    await channels.run(40);
    const kills = await chaos;
    expect(kills).toBeGreaterThanOrEqual(5);
    const unsettledAtLastKill = await unsettledCount(router);

    const started = Date.now();
    try {
      await expect.poll(() => unsettledCount(router), { timeout: 120_000, interval: 250 }).toBe(0);
    } catch (err) {
      console.error(child.stderr);
      throw err;
    }
    const orders = await allOrders(router);
    expect(orders.length).toBe(PAYMENTS - refused);
    expect(refused).toBeLessThan(PAYMENTS / 20);
    await checkInvariants(
      bank,
      orders,
      accounts.flat().map((account) => ({ account, funding: FUNDING })),
    );
    const counts = await outcomeCounts(orders);
    expect(counts.voided).toBeGreaterThan(0);
    const released = orders.filter(
      (o) => o.reason === 'AUTO_RELEASED' && o.status === PaymentStatus.PAYMENT_STATUS_COMPLETED,
    );
    expect(released.length, 'escrows paid by their timer').toBeGreaterThan(PAYMENTS / 20);
    console.log(
      `${PAYMENTS} payments, ${kills} SIGKILLs, ${channels.retries} client retries, ${unsettledAtLastKill} unsettled after the last restart, settled ${Date.now() - started} ms later:`,
      { ...counts, escrowsAutoReleased: released.length, escrowsRefusedAsLate: refused },
    );
    client.close();
  });
});
