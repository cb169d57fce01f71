import type { Migration } from '@corebank/kit';

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
];
