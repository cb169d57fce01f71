// The close of business's coordinator and workers (the steps' own bookings are tested with each
// step): a day's steps run in order over every chunk of every shard exactly once, the date moves
// first so that bookings made during the close land on the next day, a failed chunk fails the day
// and a re-run finishes it without running the finished chunks again, missed days are caught up
// in order, and a closed day is never closed twice.
import { randomUUID } from 'node:crypto';
import { BusinessDayServiceClient, CloseOfBusinessState as S } from '@corebank/kit/gen/corebank/v1/day';
import { promisify, testChannelCredentials, testToken } from '@corebank/kit/testing';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@corebank/kit';
import { loadAccountConfig } from '../src/config.js';
import type { ChunkWork, StepName, StepResult } from '../src/day/steps.js';
import { startAccountService, type AccountApp } from '../src/service.js';
import { prepareBank } from './bank.js';
import { openAccounts, R, transfer } from './helpers.js';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';

interface Call {
  step: StepName;
  date: string;
  shard: number;
  after: string;
  upTo: string;
}

describe('close of business', () => {
  let app: AccountApp;
  let day: ReturnType<typeof promisify<BusinessDayServiceClient>>;
  let ledger: ReturnType<typeof promisify<AccountServiceClient>>;
  const calls: Call[] = [];
  /** Chunks (step/shard/after) made to throw: the count of failures left for each. */
  const failing = new Map<string, number>();
  /** Called by the deposits step: a booking made while the close runs. */
  let duringClose: (() => Promise<void>) | undefined;

  const step =
    (name: StepName) =>
    async (w: ChunkWork): Promise<StepResult> => {
      const key = `${name}/${w.shard.index}/${w.after}`;
      const left = failing.get(key) ?? 0;
      if (left > 0) {
        failing.set(key, left - 1);
        throw Object.assign(new Error('simulated'), { code: 'SIMULATED' });
      }
      calls.push({ step: name, date: w.date, shard: w.shard.index, after: w.after, upTo: w.upTo });
      if (name === 'deposits' && duringClose) await duringClose();
      return { items: 10, totals: [{ name: `${name}_total`, currency: 'EUR', amount: 7n }] };
    };

  beforeAll(async () => {
    const { env } = await prepareBank(3, { COB_CHUNKS_PER_SHARD: '4', COB_WORKER_CONCURRENCY: '2' });
    app = await startAccountService(loadAccountConfig(env), createLogger('account', env.LOG_LEVEL!), {
      cobSteps: { loans: step('loans'), deposits: step('deposits'), gl: step('gl') },
    });
    const address = `127.0.0.1:${app.server.port}`;
    day = promisify(new BusinessDayServiceClient(address, testChannelCredentials(env)), await testToken());
    ledger = promisify(new AccountServiceClient(address, testChannelCredentials(env)), await testToken());
  });
  afterAll(async () => {
    day?.close();
    ledger?.close();
    await app?.shutdown();
  });

  /** A day's close once it has finished; a later day of a catch-up starts only when the one before it has. */
  async function settled(date: string) {
    for (let i = 0; i < 300; i++) {
      const run = await day.getCloseOfBusiness({ businessDate: date }).then(
        (r) => r.run,
        (err: ServiceError) => {
          if (err.code === status.NOT_FOUND) return undefined;
          throw err;
        },
      );
      if (run && run.state !== S.CLOSE_OF_BUSINESS_STATE_RUNNING) return run;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`close of ${date} did not finish`);
  }

  it('runs every chunk of every step once, in step order, moves the date, and sums the totals', async () => {
    calls.length = 0;
    await day.setBusinessDate({ businessDate: '2031-01-10', force: true, idempotencyKey: randomUUID() });
    const [a, b] = await openAccounts({ client: ledger } as never, 2, { constrained: false, owner: 'cust-cob' });
    const booked: string[] = [];
    duringClose = async () => {
      duringClose = undefined;
      const res = await ledger.createTransfers({
        transfers: [transfer({ debitAccountId: a!.id, creditAccountId: b!.id, amount: 1n })],
      });
      expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
      booked.push(res.results[0]!.transfer!.businessDate!);
    };

    const started = await day.runCloseOfBusiness({ through: '', idempotencyKey: randomUUID() });
    expect(started.runs.map((r) => r.businessDate)).toEqual(['2031-01-10']);
    const run = await settled('2031-01-10');
    expect(run.state).toBe(S.CLOSE_OF_BUSINESS_STATE_COMPLETED);
    expect((await day.getBusinessDate({})).businessDate).toBe('2031-01-11');
    expect((await day.getBusinessDate({})).lastClosedDate).toBe('2031-01-10');
    // A payment made while the day closes belongs to the next day.
    expect(booked).toEqual(['2031-01-11']);

    // 3 shards x 4 chunks for loans and deposits, one gl chunk per shard; each exactly once.
    expect(calls.filter((c) => c.step === 'loans')).toHaveLength(12);
    expect(calls.filter((c) => c.step === 'deposits')).toHaveLength(12);
    expect(calls.filter((c) => c.step === 'gl')).toHaveLength(3);
    const keys = calls.map((c) => `${c.step}/${c.shard}/${c.after}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(calls.every((c) => c.date === '2031-01-10')).toBe(true);
    // Steps in order: every loans chunk before any deposits chunk, every deposits chunk before gl.
    const last = (s: StepName) => calls.map((c) => c.step).lastIndexOf(s);
    const first = (s: StepName) => calls.map((c) => c.step).indexOf(s);
    expect(last('loans')).toBeLessThan(first('deposits'));
    expect(last('deposits')).toBeLessThan(first('gl'));
    // The ranges of a shard's chunks cover every id once: open at both ends, each upTo the next's after.
    const ranges = calls
      .filter((c) => c.step === 'loans' && c.shard === 0)
      .sort((x, y) => (x.after < y.after ? -1 : 1));
    expect(ranges[0]!.after).toBe('');
    expect(ranges.at(-1)!.upTo).toBe('');
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.after).toBe(ranges[i - 1]!.upTo);

    const loansShard0 = run.steps.find((s) => s.step === 'loans' && s.shard === 0)!;
    expect(loansShard0).toMatchObject({ chunksDone: 4, chunksTotal: 4, chunksFailed: 0, items: 40n });
    expect(loansShard0.totals).toEqual([{ name: 'loans_total', currency: 'EUR', amount: 28n }]);
    expect(run.steps.map((s) => `${s.step}/${s.shard}`)).toEqual([
      'loans/0',
      'loans/1',
      'loans/2',
      'deposits/0',
      'deposits/1',
      'deposits/2',
      'gl/0',
      'gl/1',
      'gl/2',
    ]);

    // A closed day is not closed again: nothing to run, no step called.
    calls.length = 0;
    expect((await day.runCloseOfBusiness({ through: '2031-01-10', idempotencyKey: randomUUID() })).runs).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toEqual([]);
  });

  it('catches up missed days one by one, oldest first', async () => {
    calls.length = 0;
    // The business date is 2031-01-11; the calendar has gone on two days: close 11 and 12.
    await day.runCloseOfBusiness({ through: '2031-01-12', idempotencyKey: randomUUID() });
    await settled('2031-01-11');
    const second = await settled('2031-01-12');
    expect(second.state).toBe(S.CLOSE_OF_BUSINESS_STATE_COMPLETED);
    expect((await day.getBusinessDate({})).businessDate).toBe('2031-01-13');
    const dates = calls.map((c) => c.date);
    expect(dates.lastIndexOf('2031-01-11')).toBeLessThan(dates.indexOf('2031-01-12'));
    expect(calls.filter((c) => c.date === '2031-01-12')).toHaveLength(27);
  });

  it('retries a chunk that fails, fails the day on one that keeps failing, and a re-run finishes only what is left', async () => {
    calls.length = 0;
    // The first deposits chunk of shard 1 fails twice, then works: retried within the run.
    failing.set('deposits/1/', 2);
    // The last loans chunk of shard 2 fails on every delivery: the day fails.
    failing.set('loans/2/bfffffff-ffff-ffff-ffff-ffffffffffff', 1_000);
    await day.runCloseOfBusiness({ through: '', idempotencyKey: randomUUID() });
    const failed = await settled('2031-01-13');
    expect(failed.state).toBe(S.CLOSE_OF_BUSINESS_STATE_FAILED);
    const loans2 = failed.steps.find((s) => s.step === 'loans' && s.shard === 2)!;
    expect(loans2.chunksFailed).toBe(1);
    expect(loans2.lastError).toBe('ERROR:SIMULATED');
    // The date has moved (bookings go to the next day) but the day is not closed.
    expect(await day.getBusinessDate({})).toEqual({ businessDate: '2031-01-14', lastClosedDate: '2031-01-12' });
    expect(calls.some((c) => c.step === 'deposits')).toBe(false);

    // The cause fixed, a re-run runs the failed chunk and the later steps, not the loans chunks done.
    failing.clear();
    failing.set('deposits/1/', 2);
    calls.length = 0;
    const again = await day.runCloseOfBusiness({ through: '2031-01-13', idempotencyKey: randomUUID() });
    expect(again.runs[0]!.businessDate).toBe('2031-01-13');
    const done = await settled('2031-01-13');
    expect(
      done.state,
      JSON.stringify(
        done.steps.filter((x) => x.chunksDone < x.chunksTotal),
        (_, v) => (typeof v === 'bigint' ? String(v) : v),
      ),
    ).toBe(S.CLOSE_OF_BUSINESS_STATE_COMPLETED);
    expect(calls.filter((c) => c.step === 'loans')).toEqual([
      { step: 'loans', date: '2031-01-13', shard: 2, after: 'bfffffff-ffff-ffff-ffff-ffffffffffff', upTo: '' },
    ]);
    expect(calls.filter((c) => c.step === 'deposits')).toHaveLength(12);
    expect((await day.getBusinessDate({})).lastClosedDate).toBe('2031-01-13');
  }, 120_000);

  it('refuses a bad date, naming the field, and an unknown day is NOT_FOUND', async () => {
    await expect(day.runCloseOfBusiness({ through: '2031-13-01', idempotencyKey: randomUUID() })).rejects.toMatchObject(
      {
        code: status.INVALID_ARGUMENT,
        details: expect.stringContaining('through'),
      },
    );
    await expect(day.getCloseOfBusiness({ businessDate: '1999-01-01' })).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
  });
});
