// Faults of the real parts: PostgreSQL, and separately nats-server, killed and restarted while
// same- and cross-shard payments are in flight. Every service recovers by itself (its pools, its
// NATS connection, the relay's LISTEN connections, the saga's consumer), its health goes
// NOT_SERVING and back to SERVING, every saga settles, nothing is lost (every event published and
// consumed) and nothing is applied twice.
//
// This file starts a PostgreSQL and a nats-server of its own: restarting the suite's shared ones
// would break every other test file running in parallel.
import { randomUUID } from 'node:crypto';
import { streamName } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import type { CreatePaymentRequest } from '@corebank/kit/gen/corebank/v1/payment';
import { startNats, startPostgres, type RunningProcess } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useInfra } from '../../kit/test/context.js';
import { RetryingChannels } from './chaos.js';
import { accountsOn, NO_RISK_RULES, startPayments, type TestPayments } from './harness.js';
import { allOrders, checkInvariants, unsettledCount } from './invariants.js';

const FUNDING = 100_000n;
const PER_ROUND = 240;
const DOWN_MS = 7_000; // longer than the health probe's period (5 s), so every probe sees the outage

type Status = 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' | 'UNREACHABLE';
const say = (...a: unknown[]) => process.env.FAULTS_DEBUG && console.log(new Date().toISOString(), ...a);
const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');

/** Asks each address for its health every 100 ms and keeps the statuses seen, in order (no repeats). */
function watchHealth(addresses: Record<string, string>) {
  const clients = Object.entries(addresses).map(
    ([name, address]) => [name, new HealthClient(address, grpc.credentials.createInsecure())] as const,
  );
  const seen: Record<string, Status[]> = Object.fromEntries(clients.map(([n]) => [n, []]));
  const now: Record<string, Status> = {};
  let on = true;
  const ask = (c: grpc.Client) =>
    new Promise<Status>((resolve) =>
      (c as unknown as Record<string, (...a: unknown[]) => void>).check!(
        { service: '' },
        { deadline: Date.now() + 1_000 },
        (err: unknown, res: { status: string | number }) => {
          if (err) return resolve('UNREACHABLE');
          const s = res.status;
          resolve(s === 1 || s === 'SERVING' ? 'SERVING' : s === 2 || s === 'NOT_SERVING' ? 'NOT_SERVING' : 'UNKNOWN');
        },
      ),
    );
  const loop = (async () => {
    while (on) {
      await Promise.all(
        clients.map(async ([name, c]) => {
          const s = await ask(c);
          now[name] = s;
          if (seen[name]!.at(-1) !== s) seen[name]!.push(s);
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    seen,
    allServing: () => clients.every(([n]) => now[n] === 'SERVING'),
    stop: async () => {
      on = false;
      await loop;
      clients.forEach(([, c]) => c.close());
    },
  };
}

describe('faults of PostgreSQL and NATS', () => {
  let pg: RunningProcess & { adminUrl: string };
  let nats: RunningProcess;
  let t: TestPayments;
  let accounts: Account[][];
  let addresses: Record<string, string>;
  let sent = 0;

  beforeAll(async () => {
    [pg, nats] = await Promise.all([startPostgres(), startNats()]);
    useInfra({ pgAdminUrl: pg.adminUrl, pgUrl: pg.url, natsUrl: nats.url });
    // Quiet: every service logs each failed connection attempt during the outages.
    const LOG_LEVEL = process.env.FAULTS_DEBUG ? 'warn' : 'silent';
    t = await startPayments(
      3,
      {
        ...NO_RISK_RULES,
        LEDGER_CALL_TIMEOUT_MS: '2000',
        SAGA_SWEEP_INTERVAL_MS: '5000',
        SAGA_MAX_BACKOFF_MS: '1000',
        LOG_LEVEL,
      },
      { LOG_LEVEL },
    );
    accounts = await Promise.all([0, 1, 2].map((s) => accountsOn(t.bank, s, 12, FUNDING)));
    addresses = {
      account: t.bank.address,
      customer: t.peers.env.CUSTOMER_SERVICE_ADDRESS,
      product: t.peers.env.PRODUCT_SERVICE_ADDRESS,
      payment: t.address,
    };
  });
  afterAll(async () => {
    await t?.stop();
    useInfra(undefined);
    await Promise.all([pg?.stop(), nats?.stop()]);
  });

  /** Payments while `fault` runs (once a third were answered), then every check. */
  async function paymentsThrough(fault: () => Promise<void>) {
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    const reqs: CreatePaymentRequest[] = Array.from({ length: PER_ROUND }, (_, i) => {
      const from = i % 3;
      const to = i % 4 === 0 ? from : (from + 1 + (i % 2)) % 3; // a quarter same-shard
      const payer = pick(accounts[from]!);
      return {
        idempotencyKey: randomUUID(),
        payerAccountId: payer.id,
        payeeAccountId: pick(accounts[to]!.filter((a) => a !== payer)).id,
        amount: BigInt(1 + Math.floor(Math.random() * 500)),
        currency: 'EUR',
        reference: `fault ${sent + i}`,
      };
    });
    sent += PER_ROUND;
    const health = watchHealth(addresses);
    const errors: Record<string, number> = {};
    const channels = new RetryingChannels(
      reqs,
      (r) =>
        t.client.createPayment(r, { deadlineMs: 3_000 }).catch((err: { code?: number; details?: string }) => {
          const k = `${err.code} ${err.details?.slice(0, 80)}`;
          errors[k] = (errors[k] ?? 0) + 1;
          throw err;
        }),
      200,
    );
    const progress = setInterval(() => say('progress', channels.done, JSON.stringify(errors)), 3_000);
    const running = channels.run(12);
    await expect.poll(() => channels.done, { timeout: 30_000, interval: 20 }).toBeGreaterThan(PER_ROUND / 3);
    say('fault at', channels.done);
    await fault();
    say('fault over', channels.done);
    await running;
    clearInterval(progress);
    say('answered', channels.retries, 'retries', JSON.stringify(health.seen));

    // Every saga settles by itself, and health comes back on every service.
    const router = t.app.router;
    await expect
      .poll(async () => (say('unsettled', await unsettledCount(router)), unsettledCount(router)), {
        timeout: 45_000,
        interval: 1000,
      })
      .toBe(0);
    say('settled', JSON.stringify(health.seen));
    await expect.poll(() => health.allServing(), { timeout: 15_000, interval: 100 }).toBe(true);
    await health.stop();
    for (const [name, seen] of Object.entries(health.seen)) {
      expect(seen, `${name} health`).toContain('NOT_SERVING');
      expect(seen.at(-1), `${name} health`).toBe('SERVING');
    }

    // Nothing lost: every request has its order, every event left every outbox, and the saga's
    // consumer has taken every payment event (it consumes again after the fault).
    const orders = await allOrders(router);
    expect(orders.length).toBe(sent);
    const routers = [router, t.bank.router, t.peers.people.app.router];
    await expect
      .poll(
        async () => {
          let unsent = 0;
          for (const r of routers) {
            for (const s of r.shards) {
              const { rows } = await s.db.raw(`select count(*)::int as n from outbox where sent_at is null`);
              unsent += (rows as { n: number }[])[0]!.n;
            }
          }
          return unsent;
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe(0);
    await expect
      .poll(
        async () => {
          const c = await t.app.nats.jsm.consumers.info(streamName('payment'), t.env.SAGA_CONSUMER_NAME!);
          say('consumer', c.num_pending, c.num_ack_pending, c.num_redelivered);
          return c.num_pending + c.num_ack_pending;
        },
        // Deliveries whose acks the restart lost come again after the ack wait (30 s).
        { timeout: 45_000, interval: 1_000 },
      )
      .toBe(0);
    // Nothing applied twice: the ledger balances, every order's transfers are what its state
    // says, and every account moved by exactly its completed payments.
    await checkInvariants(
      t.bank,
      orders,
      accounts.flat().map((account) => ({ account, funding: FUNDING })),
    );
  }

  it('recovers from a PostgreSQL restart mid-flight', { timeout: 90_000 }, async () => {
    await paymentsThrough(() => pg.restart(DOWN_MS));
  });

  it('recovers from a nats-server restart mid-flight', { timeout: 90_000 }, async () => {
    await paymentsThrough(() => nats.restart(DOWN_MS));
  });
});
