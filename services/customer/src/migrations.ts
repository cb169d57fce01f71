import type { Migration } from '@corebank/kit';

/**
 * One row per customer on its home shard. Identity numbers exist only as a keyed hash and their
 * last four characters. search_name (display name, case and accents folded) is in the "C"
 * collation so that every shard orders it byte-wise, as the cross-shard merge of ListCustomers does.
 */
export const customerMigrations: Migration[] = [
  {
    name: '001_customers',
    async up(db) {
      await db.raw(`
        create table customers (
          id uuid primary key,
          channel text not null,
          external_reference text not null,
          create_hash text not null,
          kind smallint not null,
          status smallint not null,
          kyc_status smallint not null,
          risk_tier smallint not null,
          display_name text not null,
          search_name text collate "C" not null,
          given_name text not null default '',
          family_name text not null default '',
          date_of_birth date,
          legal_name text not null default '',
          id_country char(2) not null,
          id_hash char(64) not null,
          id_last4 text not null,
          email text not null default '',
          phone text not null default '',
          address jsonb,
          kyc_reason text not null default '',
          status_reason text not null default '',
          version bigint not null default 1,
          -- A lifecycle operation (freeze, unfreeze, close) in flight: it calls the account service
          -- between reading and recording, so two of them on one customer must not interleave.
          lease_id uuid,
          lease_until timestamptz,
          created_at timestamptz not null,
          updated_at timestamptz not null,
          unique (channel, external_reference)
        );
        create index customers_search on customers (search_name, id);
        create index customers_status_search on customers (status, search_name, id);
        create index customers_kyc_search on customers (kyc_status, search_name, id);
        create index customers_id_hash on customers (id_hash);
      `);
    },
  },
];
