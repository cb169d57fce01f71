// A quick measure of the close of business's deposits step (services/account/src/day/deposits.ts)
// on durable PostgreSQL (fsync and synchronous_commit on): N deposit accounts bulk-loaded with SQL
// (accounts, a funding transfer each from CASH with its entries, balances), then one COB day
// driven chunk by chunk by --workers concurrent workers over --shards shard databases (on the
// one server), as the COB's workers would. Prints accounts/s for a day that posts a daily yield
// (accrual + a posting per account) and for a day that only accrues, then checks the ledger
// invariant. A shard's chunks serialize on its GL accounts' row locks, so more workers than
// shards add nothing.
//
//   node --conditions=source --import tsx loadtest/cob-deposits.ts [--accounts 100000] [--chunks 20]
//     [--shards 1] [--workers 1] [--drop-fks]
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger, migrateAllShards, ShardMap, ShardRouter } from '@corebank/kit';
import { SystemAccountKind } from '@corebank/kit/gen/corebank/v1/account';
import { DayCount, PostingFrequency, type DepositTerms } from '@corebank/kit/gen/corebank/v1/product';
import { createDatabases, startPostgres } from '@corebank/kit/testing';
import type { Knex } from 'knex';
import { depositStep } from '../services/account/src/day/deposits.js';
import { glStep, trialBalance } from '../services/account/src/day/gl.js';
import { idRanges } from '../services/account/src/day/steps.js';
import { accountMigrations } from '../services/account/src/migrations.js';
import { checkInvariant } from '../services/account/src/reports.js';
import { ensureSystemAccounts, systemAccountId } from '../services/account/src/store.js';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '100000' },
    chunks: { type: 'string', default: '20' },
    shards: { type: 'string', default: '1' },
    workers: { type: 'string', default: '1' },
    // An experiment, not the schema: what the journal's per-row foreign key checks cost.
    'drop-fks': { type: 'boolean', default: false },
  },
});
const N = Number(values.accounts);
const CHUNKS = Number(values.chunks);
const SHARDS = Number(values.shards);
const WORKERS = Number(values.workers);

const pgServer = await startPostgres({ durability: 'durable' });
try {
  const names = Array.from({ length: SHARDS }, (_, i) => `cob_s${i}`);
  await createDatabases(pgServer.adminUrl, names);
  const map = ShardMap.even(SHARDS);
  const router = new ShardRouter(
    map,
    names.map((n) => `${pgServer.url}/${n}`),
    WORKERS + 2,
    'account',
  );
  await migrateAllShards(router, accountMigrations, createLogger('account', 'warn'));
  await ensureSystemAccounts(router, ['EUR']);
  if (values['drop-fks']) {
    for (const { db } of router.shards) {
      await db.raw(`alter table entries drop constraint entries_account_id_fkey, drop constraint entries_transfer_id_fkey;
                    alter table transfers drop constraint transfers_debit_account_id_fkey,
                                          drop constraint transfers_credit_account_id_fkey`);
    }
  }

  let t0 = Date.now();
  await Promise.all(router.shards.map(({ db, index }) => load(db, index)));
  console.log(`loaded ${N} accounts on ${SHARDS} shard(s) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  /** The shard's share of the N accounts, each funded from CASH by a transfer with its entries. */
  async function load(db: Knex, shard: number) {
    const cash = systemAccountId(map, shard, SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH, 'EUR');
    const [from, to] = [Math.floor((shard * N) / SHARDS) + 1, Math.floor(((shard + 1) * N) / SHARDS)];
    // Accounts with ids spread like hashed ones (md5 of i); routing does not matter here.
    await db.raw(
      `insert into accounts (id, owner_id, idempotency_key, body_hash, currency, code,
                             debits_must_not_exceed_credits, credits_must_not_exceed_debits, product_id,
                             product_version, credits_posted, entry_seq)
       select md5('acct' || i)::uuid, 'cust-' || i, 'k', '', 'EUR', 10, true, false, 'yield', 1,
              100000 + (i % 997) * 1013, 1
         from generate_series(?::int, ?::int) i`,
      [from, to],
    );
    await db.raw(
      `insert into transfers (id, debit_account_id, credit_account_id, amount, currency, kind, linked, code,
                              body_hash, business_date)
       select md5('fund' || i)::uuid, ?::uuid, md5('acct' || i)::uuid, 100000 + (i % 997) * 1013, 'EUR', 1,
              false, 1, '', '2030-01-01'
         from generate_series(?::int, ?::int) i`,
      [cash, from, to],
    );
    await db.raw(
      `insert into entries (account_id, seq, transfer_id, counterparty_id, posted_change, pending_change,
                            debits_pending, debits_posted, credits_pending, credits_posted, created_at)
       select md5('acct' || i)::uuid, 1, md5('fund' || i)::uuid, ?::uuid, 100000 + (i % 997) * 1013, 0, 0, 0, 0,
              100000 + (i % 997) * 1013, now()
         from generate_series(?::int, ?::int) i
       union all
       select ?::uuid, i - ?::int + 1, md5('fund' || i)::uuid, md5('acct' || i)::uuid, -(100000 + (i % 997) * 1013),
              0, 0, sum(100000 + (i % 997) * 1013) over (order by i), 0, 0, now()
         from generate_series(?::int, ?::int) i`,
      [cash, from, to, cash, from, from, to],
    );
    await db.raw(
      `update accounts set debits_posted = (select sum(amount) from transfers where debit_account_id = ?),
                           entry_seq = ? where id = ?`,
      [cash, to - from + 1, cash],
    );
    await db.raw('vacuum analyze');
  }

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
    // The chunks, shards interleaved, taken by the workers from one queue.
    const queue = idRanges(CHUNKS).flatMap(([after, upTo]) => router.shards.map((shard) => ({ shard, after, upTo })));
    t0 = Date.now();
    let items = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          const done = await step({ date, ...c });
          items += done.items;
        }
      }),
    );
    const s = (Date.now() - t0) / 1000;
    console.log(
      `${label}: ${items} accounts in ${s.toFixed(2)} s = ${Math.round(items / s)} accounts/s ` +
        `(${SHARDS} shard(s), ${WORKERS} worker(s), ${CHUNKS} chunks a shard; load ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')})`,
    );
  }
  // The GL step of the first day (one chunk per shard, in parallel): journal and trial balance.
  t0 = Date.now();
  const gl = glStep();
  await Promise.all(router.shards.map((shard) => gl({ date: '2030-01-02', shard, after: '', upTo: '' })));
  const tb = await trialBalance(router, '2030-01-02');
  console.log(
    `gl step: ${((Date.now() - t0) / 1000).toFixed(2)} s for ${SHARDS} shard(s); balanced: ${tb.balances.every((b) => b.balanced)}`,
  );
  const inv = await checkInvariant(router);
  console.log(`ledger invariant ok: ${inv.ok}`);
  await router.close();
} finally {
  await pgServer.stop();
}
