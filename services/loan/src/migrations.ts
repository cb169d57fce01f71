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
    // The loan's day (RunLoanDay) and write-offs. loan_accruals is the per-loan sub-ledger of
    // interest (kind 1) and penalty (kind 2) accruals, one row per (loan, business date, kind):
    // amount is the day's accrual, booked the part posted to the GL (interest collected ahead of
    // its accrual was income when paid, so its accrual books nothing again). loan_postings are the
    // GL transfers of a batch (one per step and currency), pending until the ledger confirms them.
    // loan_delinquency_changes records every bucket change by date.
    name: '010_loan_day',
    async up(db) {
      await db.raw(`
        alter table loans
          add column days_past_due integer not null default 0,
          add column delinquency_bucket integer not null default 0,
          add column non_performing boolean not null default false,
          add column delinquency_as_of date,
          add column interest_accrued bigint not null default 0,
          add column interest_receivable bigint not null default 0,
          add column interest_prepaid bigint not null default 0,
          add column accrued_through date,
          add column penalty_exact numeric not null default 0,
          add column penalty_accrued bigint not null default 0,
          add column penalised_through date,
          add column written_off_on date,
          add column written_off_principal bigint not null default 0,
          add column written_off_interest bigint not null default 0,
          add column written_off_penalties bigint not null default 0,
          add column write_off_key text,
          add column write_off_hash text,
          add column write_off_posted boolean not null default true,
          add column recovered bigint not null default 0;
        create index loans_active on loans (id) where status = 2;
        create index loans_write_off_unposted on loans (updated_at) where not write_off_posted;
        alter table loan_instalments add column overdue_on date;
        alter table loan_repayments
          add column interest_receivable bigint not null default 0,
          add column receivable_account_id uuid,
          add column penalty_account_id uuid,
          add column business_date date;
        create index loan_repayments_collections on loan_repayments (business_date, loan_id) where kind = 20;
        create table loan_postings (
          id uuid primary key,
          business_date date not null,
          step smallint not null,
          range_key text not null,
          currency char(3) not null,
          amount bigint not null,
          debit_account_id uuid not null,
          credit_account_id uuid not null,
          posted boolean not null default false,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        );
        create index loan_postings_pending on loan_postings (updated_at) where not posted;
        create index loan_postings_date on loan_postings (business_date, range_key);
        create table loan_accruals (
          loan_id uuid not null references loans (id),
          business_date date not null,
          kind smallint not null,
          currency char(3) not null,
          amount bigint not null,
          booked bigint not null,
          posting_id uuid references loan_postings (id),
          primary key (loan_id, business_date, kind)
        );
        create index loan_accruals_date on loan_accruals (business_date, loan_id);
        create table loan_delinquency_changes (
          loan_id uuid not null references loans (id),
          business_date date not null,
          previous_bucket integer not null,
          bucket integer not null,
          days_past_due integer not null,
          primary key (loan_id, business_date)
        );
        create index loan_delinquency_changes_date on loan_delinquency_changes (business_date, loan_id);
      `);
    },
  },
  {
    // Prepayment (its reschedule recorded as a schedule version) and the loan's schedule version.
    name: '020_loan_prepayment',
    async up(db) {
      await db.raw(`
        alter table loans add column schedule_version integer not null default 1;
        alter table loan_repayments
          add column prepaid_principal bigint not null default 0,
          add column schedule_version integer not null default 0;
        -- Every change of a loan's schedule after disbursement (version 1): a prepayment's
        -- reschedule (kind 1) and, if the ledger refuses that prepayment, its reversal (kind 2).
        -- before: the instalments from the running one on, and the instalment amount, as they were.
        create table loan_schedule_versions (
          loan_id uuid not null references loans (id),
          version integer not null,
          kind smallint not null,
          repayment_id uuid not null,
          strategy smallint not null,
          prepaid_principal bigint not null,
          from_instalment integer not null,
          before jsonb not null,
          created_at timestamptz not null,
          primary key (loan_id, version)
        );
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
  {
    // The loan day's tables take a row per loan per day in bulk: no foreign keys on them (each
    // would cost an index probe of loans or loan_postings per row). Their rows are written only by
    // the loan day, in the transaction that locks the loans they name.
    name: '031_loan_day_tables_without_foreign_keys',
    async up(db) {
      await db.raw(`
        alter table loan_accruals drop constraint if exists loan_accruals_loan_id_fkey;
        alter table loan_accruals drop constraint if exists loan_accruals_posting_id_fkey;
        alter table loan_delinquency_changes drop constraint if exists loan_delinquency_changes_loan_id_fkey;
      `);
    },
  },
];
