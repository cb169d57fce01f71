// PostgreSQL down: a read and the writes answer UNAVAILABLE with DEPENDENCY_UNAVAILABLE (retry
// later), not INTERNAL, and health says NOT_SERVING; once PostgreSQL is back the same calls succeed.
//
// This file starts a PostgreSQL of its own: stopping the suite's shared one would break every
// other test file running in parallel.
import { randomUUID } from 'node:crypto';
import { startPostgres, type RunningProcess } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { useInfra } from '../../kit/test/context.js';
import { startBank, type TestBank } from './bank.js';
import { expectRpcError, openAccounts, R, transfer } from './helpers.js';

const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');

describe('PostgreSQL outage', () => {
  let pg: RunningProcess & { adminUrl: string };
  let bank: TestBank;
  let health: grpc.Client;

  beforeAll(async () => {
    pg = await startPostgres();
    // NATS stays the suite's: only PostgreSQL goes down here.
    useInfra({ pgAdminUrl: pg.adminUrl, pgUrl: pg.url, natsUrl: inject('natsUrl') });
    // Silent: the service logs every failed query and sweep during the outage.
    bank = await startBank(1, { LOG_LEVEL: process.env.OUTAGE_DEBUG ? 'debug' : 'silent' });
    health = new HealthClient(bank.address, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    health?.close();
    await bank?.stop();
    useInfra(undefined);
    await pg?.stop();
  });

  const healthStatus = () =>
    new Promise<unknown>((resolve) =>
      (health as unknown as Record<string, (...a: unknown[]) => void>).check!(
        { service: '' },
        { deadline: Date.now() + 1_000 },
        (err: unknown, res: { status: unknown }) => resolve(err ? 'UNREACHABLE' : res.status),
      ),
    );

  it('answers UNAVAILABLE while it is down, and serves again once it is back', { timeout: 30_000 }, async () => {
    const [a, b] = await openAccounts(bank, 2, { constrained: false });
    const opening = { idempotencyKey: randomUUID(), ownerId: `cust-${randomUUID()}`, currency: 'EUR', code: 10 };
    const create = () =>
      bank.client.createAccounts(
        { accounts: [{ ...opening, overdraftLimit: 0n, reference: '' }] },
        { deadlineMs: 5_000 },
      );
    const move = transfer({ debitAccountId: a!.id, creditAccountId: b!.id, amount: 1n });
    const pay = () => bank.client.createTransfers({ transfers: [move] }, { deadlineMs: 5_000 });
    const read = () => bank.client.getAccount({ accountId: a!.id }, { deadlineMs: 5_000 });
    expect(await healthStatus()).toBe('SERVING');
    // The restart is a crash; the test server acknowledges a commit only once it is written
    // (synchronous_commit on, infra.ts), so nothing acknowledged before it is lost.

    await pg.restart(async () => {
      for (const call of [read, create, pay]) {
        const err = await expectRpcError(call(), grpc.status.UNAVAILABLE, undefined, 'DEPENDENCY_UNAVAILABLE');
        // Small, and not the driver's words (no host, port or "ECONNREFUSED").
        expect(err.details).toMatch(/^the (database is unavailable|ledger could not commit this batch); retry/);
      }
      // The readiness probe runs every 5 s.
      await expect.poll(healthStatus, { timeout: 7_000, interval: 100 }).toBe('NOT_SERVING');
    });

    // Back: the same calls succeed, the writes as first-time writes (nothing was half done).
    expect((await read()).account!.id).toBe(a!.id);
    const created = await create();
    expect(created.results[0]).toMatchObject({ replayed: false });
    const paid = await pay();
    expect(paid.results[0]).toMatchObject({ code: R.TRANSFER_RESULT_CODE_OK, replayed: false });
    await expect.poll(healthStatus, { timeout: 7_000, interval: 100 }).toBe('SERVING');
  });
});
