// The account service (the ledger) as a child process on a fixed port, killed with SIGKILL at
// random moments (at least five times) and restarted while more than 1,000 cross-shard payments
// are in flight; the payment service runs in this process and keeps calling it. Channels retry
// with the same idempotency key until they get an answer. After the last restart every saga
// settles and the ledger shows each payment applied exactly once or not at all.
import { randomUUID } from 'node:crypto';
import { bucketedId, createLogger } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import {
  PaymentKind,
  PaymentServiceClient,
  PaymentStatus,
  type CreatePaymentRequest,
  type RefundPaymentRequest,
} from '@corebank/kit/gen/corebank/v1/payment';
import { freePort, promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bankAt, prepareBank, type Bank } from '../../account/test/bank.js';
import { loadPaymentConfig } from '../src/config.js';
import { startPaymentService, type PaymentApp } from '../src/service.js';
import { killAtMarks, randomMarks, RetryingChannels, ServiceProcess } from './chaos.js';
import { accountsOn, paymentEnv, PAYMENT_SCOPES, startPeers } from './harness.js';
import { allOrders, checkInvariants, outcomeCounts, unsettledCount } from './invariants.js';

const FUNDING = 5_000n;
const PAYMENTS = 1_200;
const KILLS = 6;
const REFUNDS = 300;

/** Resolves once the ledger answers this client (a restarted process takes a moment to listen). */
async function ledgerUp(bank: Pick<Bank, 'client'>, proc: ServiceProcess, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await bank.client.listSystemAccounts({}, { deadlineMs: 1_000 });
      return;
    } catch (err) {
      if (Date.now() > until)
        throw new Error(`the ledger did not answer in ${timeoutMs} ms: ${String(err)}\n${proc.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('account service (the ledger) killed mid-saga', () => {
  let ledger: ServiceProcess | undefined;
  let bank: (Bank & { close: () => Promise<void> }) | undefined;
  let app: PaymentApp | undefined;
  let accounts: Account[][];
  let peers: Awaited<ReturnType<typeof startPeers>> | undefined;
  beforeAll(async () => {
    // One port for every incarnation of the ledger: the payment service's channel reconnects to it.
    const { env } = await prepareBank(3, {
      GRPC_PORT: String(await freePort()),
      SHUTDOWN_GRACE_MS: '500',
      LOG_LEVEL: 'error',
    });
    ledger = new ServiceProcess('account', env);
    ledger.start();
    bank = await bankAt(env, `127.0.0.1:${env.GRPC_PORT}`);
    await ledgerUp(bank, ledger);
    accounts = await Promise.all([0, 1, 2].map((s) => accountsOn(bank!, s, 40, FUNDING)));
    // The customer and product services the payment service asks before it accepts an order (the
    // owners here are not customers: the strictest risk tier applies, far above these amounts).
    peers = await startPeers(bank, 3);
    const payEnv = await paymentEnv(bank, 3, {
      ...peers.env,
      LEDGER_CALL_TIMEOUT_MS: '2000',
      SAGA_SWEEP_INTERVAL_MS: '250',
      SAGA_MAX_BACKOFF_MS: '1000',
      SHUTDOWN_GRACE_MS: '500',
      LOG_LEVEL: 'error',
    });
    app = await startPaymentService(loadPaymentConfig(payEnv), createLogger('payment', 'error'));
  });
  afterAll(async () => {
    await app?.shutdown();
    await peers?.stop();
    await ledger?.kill();
    await bank?.close();
  });

  it('settles every saga exactly once although the ledger is killed six times', { timeout: 300_000 }, async () => {
    const ledgerProc = ledger!;
    const ledgerView = bank!;
    const payments = app!;
    const client = promisify(
      new PaymentServiceClient(`127.0.0.1:${payments.server.port}`, grpc.credentials.createInsecure()),
      await testToken(PAYMENT_SCOPES),
    );
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    const reqs: CreatePaymentRequest[] = Array.from({ length: PAYMENTS }, (_, i) => {
      const from = i % 3;
      const to = (from + 1 + (i % 2)) % 3;
      // Some payees do not exist (the hold is voided), some amounts exceed what the payer has left.
      const payee =
        i % 40 === 0
          ? bucketedId(ledgerView.router.map.firstBucketOf(to), 'missing', randomUUID())
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

    // Kills at random moments while payments are being submitted and sagas are in flight: each
    // once the submissions pass a random mark, after a random extra delay (long enough for the
    // saga's later steps, not only CreatePayment's hold, to be hit). While the ledger is down
    // CreatePayment fails and the channels retry each request with its key. The marks are 50
    // payments apart: a new order is accepted only once the ledger has answered (of the answers,
    // at most one per channel, 40, can be the replay of an order accepted before), so every kill
    // hits a ledger that is serving, not one still starting up.
    const channels = new RetryingChannels(reqs, (r) => client.createPayment(r, { deadlineMs: 5_000 }));
    const marks = randomMarks(KILLS, 50, PAYMENTS - 150, 50);
    // After each restart: how long until the payment service's own channel reaches the ledger again.
    const outages: Promise<number>[] = [];
    const measureOutage = () => {
      const restarted = Date.now();
      outages.push(ledgerUp(payments.ledger, ledgerProc).then(() => Date.now() - restarted));
    };
    const chaos = killAtMarks(ledgerProc, marks, () => channels.done, 1_000, measureOutage);
    const submitting = Date.now();
    await channels.run(40);
    const kills = await chaos;
    expect(kills).toBeGreaterThanOrEqual(5);
    const outageMs = await Promise.all(outages);
    const submittedIn = Date.now() - submitting;
    const unsettledAtEnd = await unsettledCount(payments.router);

    const started = Date.now();
    try {
      await expect.poll(() => unsettledCount(payments.router), { timeout: 60_000, interval: 250 }).toBe(0);
    } catch (err) {
      console.error(ledgerProc.stderr);
      throw err;
    }
    const settledIn = Date.now() - started;
    await ledgerUp(ledgerView, ledgerProc);
    const orders = await allOrders(payments.router);
    expect(orders.length).toBe(PAYMENTS);
    await checkInvariants(
      ledgerView,
      orders,
      accounts.flat().map((account) => ({ account, funding: FUNDING })),
    );
    const counts = await outcomeCounts(orders);
    expect(counts.voided).toBeGreaterThan(0);
    expect(counts.rejected).toBeGreaterThan(counts.voided);
    console.log(
      `${PAYMENTS} payments, ${kills} ledger SIGKILLs (ledger back for the payment service after ${outageMs.join(', ')} ms), ${channels.retries} client retries, submitted in ${submittedIn} ms, ${unsettledAtEnd} unsettled when the last was accepted, settled ${settledIn} ms later:`,
      counts,
    );

    // Then refunds (orders of their own, through the same saga) of some completed payments,
    // while the ledger is killed twice more: each refund is applied once or not at all, and each
    // original records exactly its completed refunds.
    const completed = orders.filter((o) => o.status === PaymentStatus.PAYMENT_STATUS_COMPLETED).slice(0, REFUNDS);
    const refundReqs: RefundPaymentRequest[] = completed.map((o) => ({
      paymentId: o.id,
      idempotencyKey: randomUUID(),
      amount: 1n + BigInt(Math.floor(Math.random() * Number(o.amount))),
      reference: 'returned',
    }));
    const refunding = new RetryingChannels(refundReqs, (r) => client.refundPayment(r, { deadlineMs: 5_000 }));
    const moreChaos = killAtMarks(ledgerProc, randomMarks(2, 20, REFUNDS - 60, 40), () => refunding.done, 500);
    await refunding.run(20);
    const refundKills = await moreChaos;
    await expect.poll(() => unsettledCount(payments.router), { timeout: 60_000, interval: 250 }).toBe(0);
    await ledgerUp(ledgerView, ledgerProc);
    const all = await allOrders(payments.router);
    expect(all.length).toBe(PAYMENTS + REFUNDS);
    await checkInvariants(
      ledgerView,
      all,
      accounts.flat().map((account) => ({ account, funding: FUNDING })),
    );
    const refunds = all.filter((o) => o.kind === PaymentKind.PAYMENT_KIND_REFUND);
    for (const original of all.filter((o) => completed.some((c) => c.id === o.id))) {
      const done = refunds.filter(
        (r) => r.original_payment_id === original.id && r.status === PaymentStatus.PAYMENT_STATUS_COMPLETED,
      );
      expect(original.refunded_amount).toBe(done.reduce((sum, r) => sum + r.amount, 0n));
      expect(original.status).toBe(
        done.length === 0
          ? PaymentStatus.PAYMENT_STATUS_COMPLETED
          : original.refunded_amount === original.amount
            ? PaymentStatus.PAYMENT_STATUS_REFUNDED
            : PaymentStatus.PAYMENT_STATUS_PARTIALLY_REFUNDED,
      );
    }
    const refundedOk = refunds.filter((r) => r.status === PaymentStatus.PAYMENT_STATUS_COMPLETED).length;
    expect(refundedOk).toBeGreaterThan(REFUNDS / 2);
    console.log(
      `${REFUNDS} refunds, ${refundKills} more ledger SIGKILLs, ${refunding.retries} client retries: ${refundedOk} completed, ${REFUNDS - refundedOk} rejected (the payee had spent it)`,
    );
    client.close();
  });
});
