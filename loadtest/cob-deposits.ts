// A quick measure of the close of business's deposits step (services/account/src/day/deposits.ts)
// on durable PostgreSQL (fsync and synchronous_commit on): N deposit accounts bulk-loaded with SQL
// (accounts, a funding transfer each from CASH with its entries, balances), then one COB day
// driven chunk by chunk on one shard, as a worker would. Prints accounts/s for a day that posts a
// daily yield (accrual + a posting per account) and for a day that only accrues, then checks the
// ledger invariant.
//
//   node --conditions=source --import tsx loadtest/cob-deposits.ts [--accounts 100000] [--chunks 20]
import { parseArgs } from 'node:util';
import { createLogger, migrateAllShards, ShardMap, ShardRouter } from '@corebank/kit';
import { SystemAccountKind } from '@corebank/kit/gen/corebank/v1/account';
import { DayCount, PostingFrequency, type DepositTerms } from '@corebank/kit/gen/corebank/v1/product';
import { createDatabases, startPostgres } from '@corebank/kit/testing';
import { depositStep } from '../services/account/src/day/deposits.js';
import { idRanges } from '../services/account/src/day/steps.js';
import { accountMigrations } from '../services/account/src/migrations.js';
import { checkInvariant } from '../services/account/src/reports.js';
import { ensureSystemAccounts, systemAccountId } from '../services/account/src/store.js';

const { values } = parseArgs({
  options: { accounts: { type: 'string', default: '100000' }, chunks: { type: 'string', default: '20' } },
});
const N = Number(values.accounts);
const CHUNKS = Number(values.chunks);

const pgServer = await startPostgres({ durability: 'durable' });
try {
  await createDatabases(pgServer.adminUrl, ['cob_s0']);
  const map = ShardMap.even(1);
  const router = new ShardRouter(map, [`${pgServer.url}/cob_s0`], 4, 'account');
  await migrateAllShards(router, accountMigrations, createLogger('account', 'warn'));
  await ensureSystemAccounts(router, ['EUR']);
  const db = router.shards[0]!.db;
  const cash = systemAccountId(map, 0, SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH, 'EUR');

  let t0 = Date.now();
  // Accounts with ids spread like hashed ones (md5 of i) and any bucket (one shard owns all).
  await db.raw(
    `insert into accounts (id, owner_id, idempotency_key, body_hash, currency, code, debits_must_not_exceed_credits,
                           credits_must_not_exceed_debits, product_id, product_version, credits_posted, entry_seq)
     select md5('acct' || i)::uuid, 'cust-' || i, 'k', '', 'EUR', 10, true, false, 'yield', 1,
            100000 + (i % 997) * 1013, 1
       from generate_series(1, ?) i`,
    [N],
  );
  await db.raw(
    `insert into transfers (id, debit_account_id, credit_account_id, amount, currency, kind, linked, code, body_hash,
                            business_date)
     select md5('fund' || i)::uuid, ?::uuid, md5('acct' || i)::uuid, 100000 + (i % 997) * 1013, 'EUR', 1, false, 1,
            '', '2030-01-01'
       from generate_series(1, ?) i`,
    [cash, N],
  );
  await db.raw(
    `insert into entries (account_id, seq, transfer_id, counterparty_id, posted_change, pending_change, debits_pending,
                          debits_posted, credits_pending, credits_posted, created_at)
     select md5('acct' || i)::uuid, 1, md5('fund' || i)::uuid, ?::uuid, 100000 + (i % 997) * 1013, 0, 0, 0, 0,
            100000 + (i % 997) * 1013, now()
       from generate_series(1, ?) i
     union all
     select ?::uuid, i, md5('fund' || i)::uuid, md5('acct' || i)::uuid, -(100000 + (i % 997) * 1013), 0, 0,
            sum(100000 + (i % 997) * 1013) over (order by i), 0, 0, now()
       from generate_series(1, ?) i`,
    [cash, N, cash, N],
  );
  await db.raw(
    `update accounts set debits_posted = (select sum(amount) from transfers where debit_account_id = ?), entry_seq = ?
      where id = ?`,
    [cash, N, cash],
  );
  await db.raw('vacuum analyze');
  console.log(`loaded ${N} accounts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const terms = (f: PostingFrequency): DepositTerms => ({
    currency: 'EUR',
    overdraftLimit: 0n,
    minimumBalance: 0n,
    perTransactionLimit: 0n,
    dailyDebitLimit: 0n,
    interestRateBps: 425,
    dayCount: DayCount.DAY_COUNT_ACT_365F,
    postingFrequency: f,
    monthlyFee: 0n,
    termMonths: 0,
  });
  for (const [label, date, f] of [
    ['daily yield: accrue + post', '2030-01-02', PostingFrequency.POSTING_FREQUENCY_DAILY],
    ['accrue only (monthly product, mid-month)', '2030-01-03', PostingFrequency.POSTING_FREQUENCY_MONTHLY],
  ] as const) {
    const step = depositStep({ router, terms: async () => terms(f) });
    t0 = Date.now();
    let items = 0;
    for (const [after, upTo] of idRanges(CHUNKS)) {
      items += (await step({ date, shard: router.shards[0]!, after, upTo })).items;
    }
    const s = (Date.now() - t0) / 1000;
    console.log(`${label}: ${items} accounts in ${s.toFixed(2)} s = ${Math.round(items / s)} accounts/s`);
  }
  const inv = await checkInvariant(router);
  console.log(`ledger invariant ok: ${inv.ok}`);
  await router.close();
} finally {
  await pgServer.stop();
}
