// What a caller hears when PostgreSQL is down: UNAVAILABLE with DEPENDENCY_UNAVAILABLE, never
// INTERNAL, and never the driver's own words. Each shape as the drivers make it (a refused, a
// dropped and a silent server for real; SQLSTATEs and socket codes as pg and node set them).
import { status as Code } from '@grpc/grpc-js';
import knexFactory from 'knex';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DomainError, errorDetails, isDatabaseUnavailable, isPermanentFailure, toServiceError } from '../src/index.js';
import { freePort } from '../src/testing/infra.js';

const withCode = (code: string, message = `driver text ${code}`) => Object.assign(new Error(message), { code });

function expectUnavailable(err: unknown) {
  expect(isDatabaseUnavailable(err)).toBe(true);
  // An outage is transient: a group commit must not split a batch over it.
  expect(isPermanentFailure(err)).toBe(false);
  const e = toServiceError(err);
  expect(e.code).toBe(Code.UNAVAILABLE);
  expect(errorDetails(e).reason).toBe('DEPENDENCY_UNAVAILABLE');
  expect(e.details).toBe('the database is unavailable; retry');
}

/** A server on a free port that does `onSocket` with each connection; closed after each test. */
const servers: Server[] = [];
const sockets: Socket[] = [];
async function fakePostgres(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer((s) => {
    sockets.push(s);
    onSocket(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** The error a one-connection knex pool throws for `select 1` against the port. */
async function knexError(port: number, acquireConnectionTimeout = 5_000): Promise<unknown> {
  const db = knexFactory({
    client: 'pg',
    connection: { connectionString: `postgres://corebank@127.0.0.1:${port}/x` },
    pool: { min: 0, max: 1 },
    acquireConnectionTimeout,
    log: { warn: () => undefined }, // knex prints each failed acquire
  });
  try {
    await db.raw('select 1');
    throw new Error('expected the query to fail');
  } catch (err) {
    return err;
  } finally {
    await db.destroy();
  }
}

describe('PostgreSQL unavailable', () => {
  it('a refused connection (nothing listens)', async () => {
    const err = await knexError(await freePort());
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
    expectUnavailable(err);
  });

  it('a connection the server drops (Connection terminated unexpectedly)', async () => {
    const err = await knexError(await fakePostgres((s) => s.destroy()));
    expect((err as Error).message).toMatch(/^Connection terminated/);
    expectUnavailable(err);
  });

  it("the pool's acquire timeout (a server that never answers)", async () => {
    // It hangs up later, so the pool's pending connect ends and the pool can be destroyed.
    const err = await knexError(await fakePostgres((s) => setTimeout(() => s.destroy(), 400)), 200);
    expect((err as Error).name).toBe('KnexTimeoutError');
    expectUnavailable(err);
  });

  it.each([
    ['08000', 'connection_exception'],
    ['08003', 'connection_does_not_exist'],
    ['08006', 'connection_failure'],
    ['08001', 'sqlclient_unable_to_establish_sqlconnection'],
    ['08004', 'sqlserver_rejected_establishment_of_sqlconnection'],
    ['57P01', 'admin_shutdown'],
    ['57P02', 'crash_shutdown'],
    ['57P03', 'cannot_connect_now'],
    ['ECONNREFUSED', 'socket refused'],
    ['ECONNRESET', 'socket reset'],
    ['EPIPE', 'socket closed under a write'],
    ['ETIMEDOUT', 'socket timed out'],
  ])('code %s (%s)', (code) => expectUnavailable(withCode(code)));

  it.each([
    'Connection terminated',
    'Connection terminated unexpectedly',
    'Connection terminated due to connection timeout',
    'Client has encountered a connection error and is not queryable',
  ])('pg: %s', (message) => expectUnavailable(new Error(message)));

  it('anything else stays INTERNAL, and says nothing of itself', () => {
    const queryTimeout = Object.assign(new Error('Defined query timeout of 10ms exceeded'), {
      name: 'KnexTimeoutError',
    });
    for (const err of [
      new Error('secret driver text'),
      withCode('23505', 'secret driver text'),
      withCode('22P02', 'secret driver text'),
      withCode('40001', 'secret driver text'),
      withCode('ENOENT', 'secret driver text'),
      queryTimeout,
      'Connection terminated',
      undefined,
    ]) {
      expect(isDatabaseUnavailable(err)).toBe(false);
      const e = toServiceError(err);
      expect(e.code).toBe(Code.INTERNAL);
      expect(errorDetails(e).reason).toBe('INTERNAL');
      expect(e.details).not.toMatch(/secret|timeout|Connection/);
    }
  });

  it("a DomainError's own verdict is kept", () => {
    const e = toServiceError(new DomainError('UNAVAILABLE', 'LEDGER_BATCH_FAILED', 'retry with the same ids'));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(errorDetails(e).reason).toBe('LEDGER_BATCH_FAILED');
  });
});
