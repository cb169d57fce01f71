// How long CheckLedgerInvariant takes with a large journal. Starts a PostgreSQL of its own,
// migrates one account shard, writes ACCOUNTS accounts and TRANSFERS single-phase transfers with
// their entries (running balances, as the ledger writes them) directly in SQL, then times the
// check (the function behind the RPC) a few times.
//
//   node --conditions=source --import tsx loadtest/ledger-invariant.ts            # 1,000,000 transfers
//   TRANSFERS=100000 ACCOUNTS=1000 node --conditions=source --import tsx loadtest/ledger-invariant.ts
import { createLogger, migrateAllShards, ShardMap, ShardRouter } from '@corebank/kit';
import { createDatabases, startPostgres } from '@corebank/kit/testing';
import { accountMigrations } from '../services/account/src/migrations.js';
import { checkInvariant } from '../services/account/src/reports.js';

const transfers = Number(process.env.TRANSFERS ?? 1_000_000);
const accounts = Number(process.env.ACCOUNTS ?? 10_000);
const log = createLogger('invariant-bench', 'warn');

const pg = await startPostgres();
try {
  await createDatabases(pg.adminUrl, ['ledger']);
  const router = new ShardRouter(ShardMap.parse('', 1), [`${pg.url}/ledger`], 2, 'account');
  await migrateAllShards(router, accountMigrations, log);
  const db = router.shards[0]!.db;
  let t = Date.now();
  await db.raw(`
    insert into accounts (id, owner_id, idempotency_key, body_hash, currency, code,
                          debits_must_not_exceed_credits, credits_must_not_exceed_debits)
    select md5('a' || i)::uuid, 'owner-' || i, 'k' || i, '', 'EUR', 1, false, false
      from generate_series(0, ${accounts - 1}) i`);
  await db.raw(`
    insert into transfers (id, debit_account_id, credit_account_id, amount, currency, kind, linked, code, body_hash, created_at)
    select md5('t' || i)::uuid, md5('a' || (i % ${accounts}))::uuid,
           md5('a' || ((i * 7 + 1 + i / ${accounts}) % ${accounts}))::uuid,
           1 + i % 997, 'EUR', 1, false, 1, '', now()
      from generate_series(1, ${transfers}) i
     where i % ${accounts} <> (i * 7 + 1 + i / ${accounts}) % ${accounts}`);
  // Entries with running balances per account, in transfer order, as the ledger writes them.
  await db.raw(`
    insert into entries (account_id, seq, transfer_id, counterparty_id, posted_change, pending_change,
                         debits_pending, debits_posted, credits_pending, credits_posted, created_at)
    select account_id, row_number() over w, transfer_id, counterparty_id, change, 0,
           0, sum(case when change < 0 then -change else 0 end) over w,
           0, sum(case when change > 0 then change else 0 end) over w, now()
      from (select debit_account_id as account_id, id as transfer_id, credit_account_id as counterparty_id,
                   -amount as change, created_at, id from transfers
            union all
            select credit_account_id, id, debit_account_id, amount, created_at, id from transfers) x
    window w as (partition by account_id order by created_at, transfer_id)`);
  await db.raw(`
    update accounts a set debits_posted = e.debits_posted, credits_posted = e.credits_posted, entry_seq = e.seq
      from (select distinct on (account_id) * from entries order by account_id, seq desc) e
     where e.account_id = a.id`);
  for (const table of ['accounts', 'transfers', 'entries']) await db.raw(`vacuum analyze ${table}`);
  const n = (await db.raw('select count(*)::int as n from transfers')).rows[0].n as number;
  console.log(`${n} transfers, ${accounts} accounts written in ${Date.now() - t} ms`);
  for (let i = 0; i < 3; i++) {
    t = Date.now();
    const res = await checkInvariant(router);
    console.log(`CheckLedgerInvariant: ${Date.now() - t} ms (ok=${res.ok})`);
  }
  await router.close();
} finally {
  await pg.stop();
}
