import type { Migration } from '@corebank/kit';

/**
 * On every shard: a borrower's applications, loans, their instalments and repayments live on the
 * borrower's home shard (their ids carry the borrower's bucket). Money columns are bigint minor
 * units; the ledger holds the money itself (see src/clients/accounts.ts).
 */
export const loanMigrations: Migration[] = [
  {
    name: '001_loans',
    async up(db) {
      await db.raw(`
        create table loan_applications (
          id uuid primary key,
          customer_id uuid not null,
          channel text not null,
          idempotency_key text not null,
          body_hash text not null,
          product_id text not null,
          product_version integer not null,
          currency char(3) not null,
          amount bigint not null,
          term_months integer not null,
          disbursement_account_id uuid not null,
          repayment_account_id uuid not null,
          monthly_income bigint not null,
          state smallint not null,
          score integer not null,
          reasons jsonb not null,
          approved_amount bigint not null,
          annual_rate text not null,
          loan_id uuid,
          decided_by text not null,
          decision_note text not null default '',
          created_at timestamptz not null,
          decided_at timestamptz,
          unique (customer_id, idempotency_key)
        );
        create index loan_applications_state on loan_applications (state, created_at, id);
        create index loan_applications_customer on loan_applications (customer_id, created_at, id);
        create table loans (
          id uuid primary key,
          application_id uuid not null unique references loan_applications (id),
          customer_id uuid not null,
          product_id text not null,
          product_version integer not null,
          currency char(3) not null,
          principal bigint not null,
          annual_rate text not null,
          term_months integer not null,
          status smallint not null,
          disbursement_account_id uuid not null,
          repayment_account_id uuid not null,
          ledger_account_id uuid,
          disbursed_on date,
          instalment_amount bigint not null default 0,
          refusal text not null default '',
          version bigint not null default 1,
          created_at timestamptz not null,
          updated_at timestamptz not null
        );
        create index loans_customer on loans (customer_id, created_at, id);
        create index loans_pending on loans (created_at) where status = 1;
        create table loan_instalments (
          loan_id uuid not null references loans (id),
          number integer not null,
          from_date date not null,
          due_date date not null,
          days integer not null,
          principal_due bigint not null,
          interest_due bigint not null,
          fee_due bigint not null default 0,
          penalty_due bigint not null default 0,
          outstanding_after bigint not null,
          principal_paid bigint not null default 0,
          interest_paid bigint not null default 0,
          fee_paid bigint not null default 0,
          penalty_paid bigint not null default 0,
          primary key (loan_id, number),
          check (principal_paid between 0 and principal_due and interest_paid between 0 and interest_due
            and fee_paid between 0 and fee_due and penalty_paid between 0 and penalty_due)
        );
        create table loan_repayments (
          id uuid primary key,
          loan_id uuid not null references loans (id),
          idempotency_key text not null,
          body_hash text not null,
          from_account_id uuid not null,
          income_account_id uuid not null,
          amount bigint not null,
          principal bigint not null,
          interest bigint not null,
          fees bigint not null,
          penalties bigint not null,
          allocations jsonb not null,
          status smallint not null,
          refusal text not null default '',
          -- 1 a repayment, 2 a payoff (which waives the interest not yet accrued: [instalment, amount]).
          kind smallint not null default 1,
          waivers jsonb not null default '[]',
          created_at timestamptz not null,
          updated_at timestamptz not null,
          unique (loan_id, idempotency_key)
        );
        create index loan_repayments_pending on loan_repayments (updated_at) where status = 1;
      `);
    },
  },
  {
    // Co-lending: the partner lender registry (on shard 0 only; empty elsewhere), each application's
    // partner decisions, each loan's partner shares and each repayment's partner splits (jsonb, see
    // src/colending.ts; money as decimal strings of minor units).
    name: '030_colending',
    async up(db) {
      await db.raw(`
        create table partner_lenders (
          partner_id text primary key,
          idempotency_key text not null unique,
          body_hash text not null,
          name text not null,
          funding_accounts jsonb not null,
          servicing_fee_percent text not null,
          rules jsonb not null,
          created_at timestamptz not null
        );
        alter table loan_applications add column partner_decisions jsonb not null default '[]';
        alter table loans add column partners jsonb not null default '[]';
        create index loans_partners on loans using gin (partners jsonb_path_ops);
        alter table loan_repayments add column partner_splits jsonb not null default '[]';
      `);
    },
  },
];
