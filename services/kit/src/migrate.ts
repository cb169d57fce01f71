// knex migrations, applied to every shard by one call. Migrations are code (not files) so the
// same list runs from TypeScript sources in tests and from dist/ in the image.
import { auditMigration } from './audit.js';
import { shardBusinessDateMigration } from './business-date.js';
import { ListSource, type Migration } from './migration-source.js';
import type { Logger } from './log.js';
import type { ShardRouter } from './sharding.js';

export type { Migration } from './migration-source.js';

/** Tables every service has on every shard: identity of the shard, outbox and inbox, the audit trail. */
export const kitMigrations: Migration[] = [
  {
    name: '000_kit_shard_outbox_inbox',
    async up(db) {
      await db.raw(`
        create table shard_info (
          singleton boolean primary key default true check (singleton),
          shard_index integer not null,
          created_at timestamptz not null default now()
        );
        create table outbox (
          seq bigserial primary key,
          id uuid not null unique,
          subject text not null,
          payload bytea not null,
          headers jsonb not null default '{}',
          created_at timestamptz not null default now(),
          sent_at timestamptz
        );
        create index outbox_unsent on outbox (seq) where sent_at is null;
        create table inbox (
          consumer text not null,
          event_id uuid not null,
          processed_at timestamptz not null default now(),
          primary key (consumer, event_id)
        );
      `);
    },
  },
  {
    name: '001_kit_outbox_notify_and_retention',
    async up(db) {
      // Idle relays sleep: every statement that inserts outbox rows notifies the schema's channel
      // (outboxChannel) and the notification, delivered at commit, wakes the relay at once. A
      // statement-level trigger: one notification per statement, however many rows, and none
      // from a transaction that rolls back. The indexes let cleanup find rows past their
      // retention without reading the table: sent outbox rows by sent_at, inbox rows by age.
      await db.raw(`
        create function outbox_notify() returns trigger language plpgsql as $fn$
        begin
          perform pg_notify('corebank.outbox.' || tg_table_schema, '');
          return null;
        end
        $fn$;
        create trigger outbox_notify after insert on outbox for each statement execute function outbox_notify();
        create index outbox_sent on outbox (sent_at) where sent_at is not null;
        create index inbox_processed on inbox (processed_at);
      `);
    },
  },
  auditMigration,
  shardBusinessDateMigration,
  {
    name: '004_kit_outbox_vacuum',
    async up(db) {
      // Every outbox row is inserted, then updated once (sent_at) and soon dead: the unsent index
      // keeps an entry for each until vacuum, which the relay's reads step over. The default
      // (vacuum once dead rows pass a fifth of the table) lets tens of thousands gather under load;
      // vacuum these tables after a fixed number instead, whatever their size.
      await db.raw(`
        alter table outbox set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
        alter table audit_outbox set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
      `);
    },
  },
];

/**
 * Migrates every shard (in parallel) and records or checks which shard each database is, so a
 * connection string pointing at the wrong database stops the service instead of mixing data.
 */
export async function migrateAllShards(router: ShardRouter, migrations: Migration[], log: Logger): Promise<void> {
  await Promise.all(
    router.shards.map(async ({ index, db }) => {
      await db.raw('create schema if not exists ??', [router.service]);
      const [, applied] = (await db.migrate.latest({
        migrationSource: new ListSource([...kitMigrations, ...migrations]),
        tableName: 'migrations',
        schemaName: router.service,
      })) as [number, string[]];
      await db.raw('insert into shard_info (shard_index) values (?) on conflict do nothing', [index]);
      log.info({ shard: index, applied }, 'shard migrated');
    }),
  );
  await assertShardIdentity(router);
}

export async function assertShardIdentity(router: ShardRouter): Promise<void> {
  for (const { index, db } of router.shards) {
    const row = (await db('shard_info').first('shard_index')) as { shard_index: number } | undefined;
    if (!row) throw new Error(`shard ${index}: not migrated (run the migrate command)`);
    if (row.shard_index !== index) {
      throw new Error(`SHARD_${index}_DATABASE_URL points at the database of shard ${row.shard_index}`);
    }
  }
}
