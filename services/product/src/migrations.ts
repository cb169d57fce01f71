import type { Migration } from '@corebank/kit';

/**
 * The catalog: a product (id, kind) and its numbered versions. Terms and validity are stored as
 * the proto3 JSON of their messages. A version's content never changes once it is published.
 */
export const productMigrations: Migration[] = [
  {
    name: '001_products',
    async up(db) {
      await db.raw(`
        create table products (
          product_id text primary key,
          kind smallint not null,
          -- What CreateProduct was called with: a retry with the same body replays.
          create_hash text not null,
          created_at timestamptz not null
        );
        create table product_versions (
          product_id text not null references products (product_id),
          version integer not null check (version >= 1),
          status smallint not null,
          name text not null,
          description text not null,
          deposit jsonb,
          loan jsonb,
          validity jsonb,
          content_hash text not null,
          created_at timestamptz not null,
          updated_at timestamptz not null,
          published_at timestamptz,
          retired_at timestamptz,
          primary key (product_id, version)
        );
        create index product_versions_published on product_versions (product_id, version desc) where status = 2;
      `);
    },
  },
];
