import type { Migration } from '@corebank/kit';
import { PaymentKind as K, PaymentStatus as S } from '@corebank/kit/gen/corebank/v1/payment';

/**
 * One row per payment order on the payer's home shard. The saga's state lives in the row: the
 * step to do next, how many attempts it took so far and when the next attempt is due (a driver
 * claims a step by moving next_attempt_at forward, so a process killed mid-step leaves the
 * order to the sweeper once that time passes).
 */
export const paymentMigrations: Migration[] = [
  {
    name: '001_payments',
    async up(db) {
      await db.raw(`
        create table payments (
          seq bigserial not null unique,
          id uuid primary key,
          channel text not null,
          idempotency_key text not null,
          body_hash text not null,
          payer_account_id uuid not null,
          payee_account_id uuid not null,
          payer_customer_id text not null,
          amount bigint not null check (amount > 0),
          currency char(3) not null,
          reference text not null default '',
          status smallint not null,
          route smallint not null,
          step smallint not null,
          reason text not null default '',
          attempts integer not null default 0,
          next_attempt_at timestamptz not null default now(),
          payer_shard integer not null,
          payee_shard integer not null,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          settled_at timestamptz,
          unique (channel, idempotency_key)
        );
        create index payments_by_customer on payments (payer_customer_id, seq desc);
        -- What the sweeper scans: orders with work left (6 = PAYMENT_STEP_DONE), by when it is due.
        create index payments_due on payments (next_attempt_at) where step <> 6;
      `);
    },
  },
  {
    // Escrow, refunds and reversals, limits and risk rules. Columns: what kind of order it is, the
    // original a refund belongs to, the escrow timer (auto_release_at; the timer itself is
    // next_attempt_at of the AWAIT_RELEASE step), money refunded so far, the risk findings, the
    // day (YYYY-MM-DD) whose debit usage the order counts against (so a rejection gives it back),
    // and the decisions taken on it (a reviewer's; the escrow's release, cancel or dispute), which
    // make a repeated decision recognisable.
    name: '002_escrow_refunds_limits_risk',
    async up(db) {
      await db.raw(`
        alter table payments
          add column kind smallint not null default 1,
          add column original_payment_id uuid references payments (id),
          add column auto_release_at timestamptz,
          add column refunded_amount bigint not null default 0 check (refunded_amount >= 0 and refunded_amount <= amount),
          add column risk_findings jsonb not null default '[]',
          add column note text not null default '',
          add column limit_day text,
          add column review_decision text not null default '',
          add column escrow_outcome text not null default '';
        create index payments_by_original on payments (original_payment_id) where original_payment_id is not null;
        -- Velocity and new-payee rules read a customer's recent orders and earlier payees.
        create index payments_by_customer_time on payments (payer_customer_id, created_at);
        create index payments_by_customer_payee on payments (payer_customer_id, payee_account_id);

        -- What each account has debited by payment orders on a day (in the limit time zone). The
        -- row is updated in the order's own transaction with a guard, so concurrent payments
        -- serialise on it and cannot together pass the daily limit.
        create table daily_debit_usage (
          account_id uuid not null,
          day date not null,
          amount bigint not null check (amount >= 0),
          primary key (account_id, day)
        );

        -- One row per payer customer, locked by every order the customer creates: the velocity
        -- rule counts under it, and it keeps the last session's location for impossible travel.
        create table customer_risk_state (
          customer_id text primary key,
          session_id text not null default '',
          latitude double precision,
          longitude double precision,
          seen_at timestamptz
        );

        -- Which order each (channel, idempotency key) names, on the key's own shard (a hash of
        -- the pair): the same key cannot name orders on two shards. Payments, refunds and
        -- reversals share the channel's key space, as they share the payments table.
        create table payment_keys (
          channel text not null,
          idempotency_key text not null,
          payment_id uuid not null,
          body_hash text not null,
          created_at timestamptz not null default now(),
          primary key (channel, idempotency_key)
        );
      `);
    },
  },
  {
    // The bank's queues (ListPendingDecisions): orders waiting for a reviewer (8) or for a
    // dispute decision (9), by when they started waiting.
    name: '003_pending_decisions',
    async up(db) {
      await db.raw(`create index payments_waiting on payments (step, updated_at, id) where step in (8, 9)`);
    },
  },
  {
    // The risk rules' facts kept as counters (issue 14, point 4), so an order reads a few rows of
    // its customer's instead of scanning the customer's orders in the window: per customer, the
    // orders (transfers and escrows not rejected or cancelled) and their money per time bucket
    // (window / 60, at least a second); and per customer and payee, how many such orders paid it.
    // Written in the order's own transaction (and given back in the one that rejects or cancels
    // it). payment_risk_facts locks the customer (as before) and then reads the counters: a
    // volatile function, so the reads take a snapshot after the lock's wait and see the counts of
    // the order that held it. Backfilled from the orders there are, in minute buckets.
    name: '004_risk_counters',
    async up(db) {
      const counted = `kind in (${K.PAYMENT_KIND_TRANSFER}, ${K.PAYMENT_KIND_ESCROW})
        and status not in (${S.PAYMENT_STATUS_REJECTED}, ${S.PAYMENT_STATUS_CANCELLED})`;
      await db.raw(`
        create table customer_velocity (
          customer_id text not null,
          bucket_start timestamptz not null,
          n integer not null,
          amount bigint not null,
          primary key (customer_id, bucket_start)
        );
        create table customer_payees (
          customer_id text not null,
          payee_account_id uuid not null,
          n integer not null,
          primary key (customer_id, payee_account_id)
        );
        insert into customer_velocity (customer_id, bucket_start, n, amount)
          select payer_customer_id, date_trunc('minute', created_at), count(*), sum(amount)
            from payments where ${counted} and created_at > now() - interval '32 days'
           group by 1, 2;
        insert into customer_payees (customer_id, payee_account_id, n)
          select payer_customer_id, payee_account_id, count(*) from payments where ${counted} group by 1, 2;

        create function payment_risk_facts(p_customer text, p_payee uuid, p_since timestamptz, p_keep timestamptz)
          returns table (session_id text, latitude float8, longitude float8, seen_at timestamptz,
                         recent_count bigint, recent_amount bigint, known_payee boolean)
          language plpgsql volatile as $$
        #variable_conflict use_column
        begin
          insert into customer_risk_state as s (customer_id) values (p_customer)
            on conflict (customer_id) do update set customer_id = excluded.customer_id
            returning s.session_id, s.latitude, s.longitude, s.seen_at
                 into payment_risk_facts.session_id, payment_risk_facts.latitude,
                      payment_risk_facts.longitude, payment_risk_facts.seen_at;
          delete from customer_velocity v where v.customer_id = p_customer and v.bucket_start < p_keep;
          select coalesce(sum(v.n), 0)::int8, coalesce(sum(v.amount), 0)::int8
            into payment_risk_facts.recent_count, payment_risk_facts.recent_amount
            from customer_velocity v where v.customer_id = p_customer and v.bucket_start > p_since;
          select coalesce(bool_or(c.n > 0), false) into payment_risk_facts.known_payee
            from customer_payees c where c.customer_id = p_customer and c.payee_account_id = p_payee;
          return next;
        end $$;
      `);
    },
  },
];
