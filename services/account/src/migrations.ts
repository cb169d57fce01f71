import { BUSINESS_DATE_LOCK, type Migration } from '@corebank/kit';

/**
 * The journal (transfers, entries) is append-only: a post, void or expiry is a new transfer row
 * pointing at its pending transfer, never an update. Account rows hold the running balances.
 */
export const accountMigrations: Migration[] = [
  {
    name: '001_ledger',
    async up(db) {
      await db.raw(`
        create table accounts (
          id uuid primary key,
          owner_id text not null,
          idempotency_key text not null,
          body_hash text not null,
          currency char(3) not null,
          code integer not null,
          debits_must_not_exceed_credits boolean not null,
          credits_must_not_exceed_debits boolean not null,
          overdraft_limit bigint not null default 0 check (overdraft_limit >= 0),
          debits_pending bigint not null default 0 check (debits_pending >= 0),
          debits_posted bigint not null default 0 check (debits_posted >= 0),
          credits_pending bigint not null default 0 check (credits_pending >= 0),
          credits_posted bigint not null default 0 check (credits_posted >= 0),
          entry_seq bigint not null default 0,
          system boolean not null default false,
          reference text not null default '',
          created_at timestamptz not null default now(),
          check (not (debits_must_not_exceed_credits and credits_must_not_exceed_debits))
        );
        create index accounts_owner on accounts (owner_id, id);

        create table transfers (
          id uuid primary key,
          debit_account_id uuid not null references accounts (id),
          credit_account_id uuid not null references accounts (id),
          amount bigint not null check (amount >= 0),
          currency char(3) not null,
          kind smallint not null,
          linked boolean not null,
          pending_id uuid references transfers (id),
          timeout_seconds integer not null default 0,
          expires_at timestamptz,
          code integer not null,
          reference text not null default '',
          body_hash text not null,
          created_at timestamptz not null default now()
        );
        -- A pending transfer is resolved (posted, voided or expired) at most once.
        create unique index transfers_one_resolution on transfers (pending_id) where pending_id is not null;

        create table entries (
          account_id uuid not null references accounts (id),
          seq bigint not null,
          transfer_id uuid not null references transfers (id),
          counterparty_id uuid not null,
          posted_change bigint not null,
          pending_change bigint not null,
          debits_pending bigint not null,
          debits_posted bigint not null,
          credits_pending bigint not null,
          credits_posted bigint not null,
          created_at timestamptz not null,
          primary key (account_id, seq)
        );

        -- Outcomes that depend on balances or on a pending transfer's state are final for their id,
        -- so a retry can never turn an earlier refusal into a payment.
        create table transfer_rejections (
          id uuid primary key,
          body_hash text not null,
          result smallint not null,
          field text not null,
          created_at timestamptz not null default now()
        );

        -- Open holds with a timeout: what the expiry sweeper scans. Rows leave when the hold resolves.
        create table pending_holds (
          transfer_id uuid primary key references transfers (id),
          expires_at timestamptz not null
        );
        create index pending_holds_expiry on pending_holds (expires_at);
      `);
    },
  },
  {
    name: '002_account_product_and_lifecycle',
    async up(db) {
      await db.raw(`
        alter table accounts
          add column product_id text not null default '',
          add column product_version integer not null default 0,
          -- Set for all of an owner's accounts at once when the customer is frozen.
          add column debits_blocked boolean not null default false,
          add column closed boolean not null default false;
      `);
    },
  },
  {
    name: '003_owners',
    async up(db) {
      // One row per owner: its freeze and close state. Opening an account and freezing or closing
      // the owner all lock this row, so an account opened during a freeze cannot escape it.
      await db.raw(`
        create table owners (
          owner_id text primary key,
          debits_blocked boolean not null default false,
          closed boolean not null default false
        );
        insert into owners (owner_id, debits_blocked, closed)
          select owner_id, bool_or(debits_blocked), bool_and(closed) from accounts group by owner_id;
      `);
    },
  },
  {
    name: '004_ledger_load',
    async up(db) {
      // Locks a batch's accounts in id order, then reads (a new statement, so a fresh snapshot that
      // sees every batch that held these rows before) the accounts, the transfers already stored
      // under the batch's ids, the pending transfers it names with their resolution, and recorded
      // refusals. One call, sent together with BEGIN: the batch's first round trip does it all.
      // int8 travels as text inside the JSON, so no amount passes through a float.
      await db.raw(`
        create function ledger_load(account_ids uuid[], transfer_ids uuid[], pending_ids uuid[]) returns json
        language plpgsql volatile as $fn$
        declare
          loaded json;
        begin
          perform 1 from accounts where id = any(account_ids) order by id for update;
          select json_build_object(
            'accounts', (select coalesce(json_agg(json_build_object(
                'id', id, 'owner_id', owner_id, 'currency', currency,
                'debits_must_not_exceed_credits', debits_must_not_exceed_credits,
                'credits_must_not_exceed_debits', credits_must_not_exceed_debits,
                'overdraft_limit', overdraft_limit::text, 'debits_pending', debits_pending::text,
                'debits_posted', debits_posted::text, 'credits_pending', credits_pending::text,
                'credits_posted', credits_posted::text, 'entry_seq', entry_seq::text,
                'debits_blocked', debits_blocked, 'closed', closed)), '[]'::json)
              from accounts where id = any(account_ids)),
            'transfers', (select coalesce(json_agg(t), '[]'::json) from (
                select 't' as src, id, debit_account_id, credit_account_id, amount::text as amount, currency, kind,
                       linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at,
                       null::smallint as resolved_by
                  from transfers where id = any(transfer_ids)
                union all
                select 'p', id, debit_account_id, credit_account_id, amount::text, currency, kind,
                       linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at,
                       (select kind from transfers r where r.pending_id = p.id)
                  from transfers p where p.id = any(pending_ids)) t),
            'refusals', (select coalesce(json_agg(json_build_object(
                'id', id, 'body_hash', body_hash, 'result', result, 'field', field)), '[]'::json)
              from transfer_rejections where id = any(transfer_ids)))
          into loaded;
          return loaded;
        end
        $fn$;
      `);
    },
  },
  {
    name: '005_one_clock_and_minimum_balance',
    async up(db) {
      await db.raw(`
        -- A deposit product's minimum balance, enforced by the ledger like the overdraft limit.
        alter table accounts add column minimum_balance bigint not null default 0 check (minimum_balance >= 0);

        -- The expiry sweeper's refusals (field "expiry[i].pending_id") were recorded as final when the
        -- service's clock ran behind the database's: the hold then never expired. An expiry refused
        -- for being early is never final now; drop those records so the sweeper expires the holds.
        delete from transfer_rejections where field like 'expiry[%';

        -- As 004, plus the database's clock (the batch's only clock for expiry and timestamps) and
        -- each account's minimum balance.
        create or replace function ledger_load(account_ids uuid[], transfer_ids uuid[], pending_ids uuid[]) returns json
        language plpgsql volatile as $fn$
        declare
          loaded json;
        begin
          perform 1 from accounts where id = any(account_ids) order by id for update;
          select json_build_object(
            'now', now(),
            'accounts', (select coalesce(json_agg(json_build_object(
                'id', id, 'owner_id', owner_id, 'currency', currency,
                'debits_must_not_exceed_credits', debits_must_not_exceed_credits,
                'credits_must_not_exceed_debits', credits_must_not_exceed_debits,
                'overdraft_limit', overdraft_limit::text, 'minimum_balance', minimum_balance::text,
                'debits_pending', debits_pending::text,
                'debits_posted', debits_posted::text, 'credits_pending', credits_pending::text,
                'credits_posted', credits_posted::text, 'entry_seq', entry_seq::text,
                'debits_blocked', debits_blocked, 'closed', closed)), '[]'::json)
              from accounts where id = any(account_ids)),
            'transfers', (select coalesce(json_agg(t), '[]'::json) from (
                select 't' as src, id, debit_account_id, credit_account_id, amount::text as amount, currency, kind,
                       linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at,
                       null::smallint as resolved_by
                  from transfers where id = any(transfer_ids)
                union all
                select 'p', id, debit_account_id, credit_account_id, amount::text, currency, kind,
                       linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at,
                       (select kind from transfers r where r.pending_id = p.id)
                  from transfers p where p.id = any(pending_ids)) t),
            'refusals', (select coalesce(json_agg(json_build_object(
                'id', id, 'body_hash', body_hash, 'result', result, 'field', field)), '[]'::json)
              from transfer_rejections where id = any(transfer_ids)))
          into loaded;
          return loaded;
        end
        $fn$;
      `);
    },
  },
  {
    name: '006_business_date',
    async up(db) {
      // Every booking carries the business date it belongs to (DESIGN.md "The bank's day"). Rows
      // written before this migration get the day it ran. The index serves a day's journal (the
      // close of business, the trial balance) without reading older days.
      await db.raw(`
        alter table transfers add column business_date date not null default (now() at time zone 'utc')::date;
        alter table transfers alter column business_date drop default;
        create index transfers_business_date on transfers (business_date);

        -- As 005, plus the shard's business date, read after taking the date's lock shared
        -- (BUSINESS_DATE_LOCK in the kit): a move of the date (which takes it
        -- exclusively) waits for this batch to commit, and a batch that starts after a move reads
        -- the new date, because the read is a later statement with a fresh snapshot.
        create or replace function ledger_load(account_ids uuid[], transfer_ids uuid[], pending_ids uuid[]) returns json
        language plpgsql volatile as $fn$
        declare
          loaded json;
        begin
          perform pg_advisory_xact_lock_shared(${BUSINESS_DATE_LOCK});
          perform 1 from accounts where id = any(account_ids) order by id for update;
          select json_build_object(
            'now', now(),
            'business_date', (select to_char(business_date, 'YYYY-MM-DD') from business_date),
            'accounts', (select coalesce(json_agg(json_build_object(
                'id', id, 'owner_id', owner_id, 'currency', currency,
                'debits_must_not_exceed_credits', debits_must_not_exceed_credits,
                'credits_must_not_exceed_debits', credits_must_not_exceed_debits,
                'overdraft_limit', overdraft_limit::text, 'minimum_balance', minimum_balance::text,
                'debits_pending', debits_pending::text,
                'debits_posted', debits_posted::text, 'credits_pending', credits_pending::text,
                'credits_posted', credits_posted::text, 'entry_seq', entry_seq::text,
                'debits_blocked', debits_blocked, 'closed', closed)), '[]'::json)
              from accounts where id = any(account_ids)),
            'transfers', (select coalesce(json_agg(t), '[]'::json) from (
                select 't' as src, id, debit_account_id, credit_account_id, amount::text as amount, currency, kind,
                       linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at,
                       to_char(business_date, 'YYYY-MM-DD') as business_date, null::smallint as resolved_by
                  from transfers where id = any(transfer_ids)
                union all
                select 'p', id, debit_account_id, credit_account_id, amount::text, currency, kind,
                       linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at,
                       to_char(business_date, 'YYYY-MM-DD'), (select kind from transfers r where r.pending_id = p.id)
                  from transfers p where p.id = any(pending_ids)) t),
            'refusals', (select coalesce(json_agg(json_build_object(
                'id', id, 'body_hash', body_hash, 'result', result, 'field', field)), '[]'::json)
              from transfer_rejections where id = any(transfer_ids)))
          into loaded;
          return loaded;
        end
        $fn$;
      `);
    },
  },
  {
    name: '007_deposit_accruals_and_trial_balance',
    async up(db) {
      // The close of business's sub-ledger of deposit interest (day/deposits.ts) and the general
      // ledger's stored trial balances (day/gl.ts).
      //
      // deposit_accruals: one row per interest-bearing account and business date, written in the
      // same transaction as the day's journal rows, so its key (account, date) is what makes the
      // step idempotent. The cum_* columns carry the account's accrual state: cum_exact is the
      // exact cumulative interest as a numerator over denominator (10000 x the day-count basis;
      // an integer, never a float), cum_accrued = round_half_even(cum_exact / denominator), so a
      // day's amount = cum_accrued - the day before's, and no rounding residue is ever lost.
      // No foreign key to accounts: the rows are written in bulk beside the account rows they come
      // from, and an account is never deleted.
      //
      // gl_trial_balances: per business date, GL line and currency, the posted debits and credits
      // at the end of the day and the day's journal; gl_days marks a day whose GL step ran.
      await db.raw(`
        create table deposit_accruals (
          account_id uuid not null,
          business_date date not null,
          balance bigint not null,
          amount bigint not null,
          posted bigint not null,
          fee bigint not null,
          cum_exact numeric not null,
          denominator bigint not null,
          cum_accrued bigint not null,
          cum_posted bigint not null,
          primary key (account_id, business_date)
        );
        create table gl_trial_balances (
          business_date date not null,
          gl_account text not null,
          currency char(3) not null,
          category smallint not null,
          debits bigint not null,
          credits bigint not null,
          day_debits bigint not null,
          day_credits bigint not null,
          primary key (business_date, gl_account, currency)
        );
        create table gl_days (
          business_date date primary key,
          computed_at timestamptz not null default now()
        );
      `);
    },
  },
  {
    name: '008_ledger_closed_days',
    async up(db) {
      // The days whose general-ledger step has closed them on this shard: after that, no booking
      // may be dated to them (the close of business dates its own bookings to the day it closes,
      // until then). The gl step inserts the day under the business date's lock taken
      // exclusively, so every batch that could still date a booking to it has committed.
      await db.raw(`
        create table ledger_closed_days (
          business_date date primary key,
          closed_at timestamptz not null default now()
        );

        -- As 006, plus the last closed day.
        create or replace function ledger_load(account_ids uuid[], transfer_ids uuid[], pending_ids uuid[]) returns json
        language plpgsql volatile as $fn$
        declare
          loaded json;
        begin
          perform pg_advisory_xact_lock_shared(${BUSINESS_DATE_LOCK});
          perform 1 from accounts where id = any(account_ids) order by id for update;
          select json_build_object(
            'now', now(),
            'business_date', (select to_char(business_date, 'YYYY-MM-DD') from business_date),
            'closed_through', (select to_char(max(business_date), 'YYYY-MM-DD') from ledger_closed_days),
            'accounts', (select coalesce(json_agg(json_build_object(
                'id', id, 'owner_id', owner_id, 'currency', currency,
                'debits_must_not_exceed_credits', debits_must_not_exceed_credits,
                'credits_must_not_exceed_debits', credits_must_not_exceed_debits,
                'overdraft_limit', overdraft_limit::text, 'minimum_balance', minimum_balance::text,
                'debits_pending', debits_pending::text,
                'debits_posted', debits_posted::text, 'credits_pending', credits_pending::text,
                'credits_posted', credits_posted::text, 'entry_seq', entry_seq::text,
                'debits_blocked', debits_blocked, 'closed', closed)), '[]'::json)
              from accounts where id = any(account_ids)),
            'transfers', (select coalesce(json_agg(t), '[]'::json) from (
                select 't' as src, id, debit_account_id, credit_account_id, amount::text as amount, currency, kind,
                       linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at,
                       to_char(business_date, 'YYYY-MM-DD') as business_date, null::smallint as resolved_by
                  from transfers where id = any(transfer_ids)
                union all
                select 'p', id, debit_account_id, credit_account_id, amount::text, currency, kind,
                       linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at,
                       to_char(business_date, 'YYYY-MM-DD'), (select kind from transfers r where r.pending_id = p.id)
                  from transfers p where p.id = any(pending_ids)) t),
            'refusals', (select coalesce(json_agg(json_build_object(
                'id', id, 'body_hash', body_hash, 'result', result, 'field', field)), '[]'::json)
              from transfer_rejections where id = any(transfer_ids)))
          into loaded;
          return loaded;
        end
        $fn$;
      `);
    },
  },
];
