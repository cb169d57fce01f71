// A close-of-business worker killed with SIGKILL at random moments, three times during a day, and
// restarted: the day's journal, its deposit accruals and its trial balance are exactly those of
// the same day closed undisturbed by a twin bank loaded alike. The coordinator (this process)
// stays up; the only worker of the killed bank runs as a child process.
import { randomUUID } from 'node:crypto';
import { createLogger, ShardMap } from '@corebank/kit';
import { BusinessDayServiceClient, CloseOfBusinessState as S } from '@corebank/kit/gen/corebank/v1/day';
import { DayCount, PostingFrequency } from '@corebank/kit/gen/corebank/v1/product';
import { freePort, promisify, testChannelCredentials, testToken } from '@corebank/kit/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDeposits } from '../../../loadtest/harness/book.js';
import { killAtMarks, randomMarks, ServiceProcess } from '../../payment/test/chaos.js';
import { depositProduct, depositTerms } from '../../product/test/fixtures.js';
import { startCatalog, type TestCatalog } from '../../product/test/harness.js';
import { loadAccountConfig } from '../src/config.js';
import { startAccountService, type AccountApp } from '../src/service.js';
import { prepareBank } from './bank.js';

const SHARDS = 3;
const ACCOUNTS = 30_000;
const DAY = '2031-03-31';

interface Twin {
  env: Record<string, string>;
  coordinator: AccountApp;
  worker: ServiceProcess;
  day: ReturnType<typeof promisify<BusinessDayServiceClient>>;
}

describe('close of business with a worker killed three times', () => {
  let catalog: TestCatalog;
  const twins: Twin[] = [];

  async function twin(productPort: number, productId: string): Promise<Twin> {
    const { env } = await prepareBank(SHARDS, {
      PRODUCT_SERVICE_ADDRESS: `127.0.0.1:${productPort}`,
      COB_STEPS: 'deposits,gl',
      COB_CHUNKS_PER_SHARD: '8',
      COB_ACK_WAIT_MS: '3000',
      COB_WORKER_ENABLED: 'false',
      GRPC_PORT: String(await freePort()),
      LOG_LEVEL: 'error',
    });
    const map = ShardMap.even(SHARDS);
    // The coordinator (it creates the GL accounts the load funds from) never takes chunks here.
    const coordinator = await startAccountService(loadAccountConfig(env), createLogger('account', 'error'));
    for (let shard = 0; shard < SHARDS; shard++) {
      const c = new pg.Client({
        connectionString: env[`SHARD_${shard}_DATABASE_URL`],
        options: '-c search_path=account',
      });
      await c.connect();
      try {
        const [from, to] = [Math.floor((shard * ACCOUNTS) / SHARDS) + 1, Math.floor(((shard + 1) * ACCOUNTS) / SHARDS)];
        await loadDeposits(c, { map, shard, from, to, productId, fundedOn: '2031-03-01' });
      } finally {
        await c.end();
      }
    }
    const worker = new ServiceProcess('account', {
      ...env,
      COB_WORKER_ENABLED: 'true',
      RELAY_ENABLED: 'false',
      EXPIRY_SWEEP_INTERVAL_MS: '0',
      GRPC_PORT: String(await freePort()),
      METRICS_PORT: '0',
    });
    worker.start();
    const day = promisify(
      new BusinessDayServiceClient(`127.0.0.1:${coordinator.server.port}`, testChannelCredentials(env)),
      await testToken(),
    );
    await day.setBusinessDate({ businessDate: DAY, force: true, idempotencyKey: randomUUID() });
    return { env, coordinator, worker, day };
  }

  beforeAll(async () => {
    const productPort = await freePort();
    catalog = await startCatalog({ GRPC_PORT: String(productPort) });
    // 3.65% ACT/365F, posted daily: every account is credited every day.
    const { product } = await catalog.client.createProduct(
      depositProduct({
        deposit: depositTerms({
          overdraftLimit: 0n,
          monthlyFee: 0n,
          interestRateBps: 365,
          dayCount: DayCount.DAY_COUNT_ACT_365F,
          postingFrequency: PostingFrequency.POSTING_FREQUENCY_DAILY,
        }),
      }),
    );
    await catalog.client.publishProductVersion({ productId: product!.productId, version: product!.version });
    twins.push(await twin(productPort, product!.productId));
    twins.push(await twin(productPort, product!.productId));
  }, 240_000);

  afterAll(async () => {
    for (const t of twins) {
      t.day.close();
      await t.worker.kill();
      await t.coordinator.shutdown();
    }
    await catalog?.stop();
  });

  async function settled(t: Twin) {
    for (let i = 0; i < 1200; i++) {
      const { run } = await t.day.getCloseOfBusiness({ businessDate: DAY });
      if (run!.state !== S.CLOSE_OF_BUSINESS_STATE_RUNNING) return run!;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('the close did not finish');
  }

  /** Everything the day wrote, in a comparable form, per shard. */
  async function dayOf(t: Twin) {
    const out: unknown[] = [];
    for (const s of t.coordinator.router.shards) {
      const q = async (sql: string) => (await s.db.raw(sql, [DAY])).rows as unknown[];
      out.push(
        await q(
          `select id, debit_account_id, credit_account_id, amount::text, code, to_char(business_date, 'YYYY-MM-DD') as d
             from transfers where business_date = ? order by id`,
        ),
        await q(
          `select account_id, amount::text, posted::text, cum_exact::text from deposit_accruals where business_date = ? order by account_id`,
        ),
        await q(
          `select gl_account, currency, debits::text, credits::text, day_debits::text, day_credits::text
             from gl_trial_balances where business_date = ? order by gl_account, currency`,
        ),
        (
          await s.db.raw(
            `select id, debits_posted::text, credits_posted::text, entry_seq::text from accounts order by id`,
          )
        ).rows as unknown[],
      );
    }
    return out;
  }

  it('books exactly what an undisturbed close books', async () => {
    const [killed, calm] = twins as [Twin, Twin];
    const t0 = Date.now();
    await Promise.all(twins.map((t) => t.day.runCloseOfBusiness({ through: DAY, idempotencyKey: randomUUID() })));
    const kills = await killAtMarks(killed.worker, randomMarks(3, 300, 6000, 800), () => Date.now() - t0);
    expect(kills).toBe(3);
    const [a, b] = await Promise.all([settled(killed), settled(calm)]);
    expect(a.state, a.steps.map((s) => s.lastError).join(' ')).toBe(S.CLOSE_OF_BUSINESS_STATE_COMPLETED);
    expect(b.state).toBe(S.CLOSE_OF_BUSINESS_STATE_COMPLETED);
    const [dayA, dayB] = [await dayOf(killed), await dayOf(calm)];
    // Every account accrued and was posted once (one posting transfer each), on both.
    const postings = (dayA[0] as { code: number }[]).filter((r) => r.code === 9002).length;
    expect(postings).toBeGreaterThan(0);
    expect(dayA).toEqual(dayB);
    const tb = await killed.day.getTrialBalance({ businessDate: DAY });
    expect(tb.balances.every((x) => x.balanced)).toBe(true);
    const tbCalm = await calm.day.getTrialBalance({ businessDate: DAY });
    expect(tb).toEqual(tbCalm);
  }, 600_000);
});
