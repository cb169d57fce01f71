// The bank's business date (DESIGN.md "The bank's day"): one value in the global database,
// distinct from wall-clock time, read here and nowhere else.
//
// Bookings need the date exactly, not "about now": a ledger batch reads it in the same
// transaction that writes its journal rows, from a copy on its own shard (the global database is
// another server, and a transaction cannot span both). The copy changes only under an exclusive
// advisory lock that every booking transaction holds shared, so when a shard's date moves from D
// to D+1, every batch that read D has committed and every later batch reads D+1: the day D's
// journal on that shard is final the moment the move commits. The close of business relies on it.
//
// The global value is the one operators and services read and set; each shard's copy follows it
// (BusinessDateFollower in the service that owns the journal, and the close of business, which
// moves the copies itself before it closes a day).
import type { Knex } from 'knex';
import { createPool } from './db.js';
import type { Logger } from './log.js';
import { ShardListener } from './outbox.js';
import { ListSource, type Migration } from './migration-source.js';
import type { ShardRouter } from './sharding.js';

/** The global database schema of the bank's day (the business date; the close of business). */
export const DAY_SCHEMA = 'day';
/** NOTIFY channel on the global database: the business date changed. */
export const BUSINESS_DATE_CHANNEL = 'corebank.business_date';
/**
 * The advisory lock key (pg_advisory_xact_lock) of a shard's business date: held shared by every
 * transaction that books under the date, exclusively by the move of the date.
 */
export const BUSINESS_DATE_LOCK = 0x63_62_64_74; // 'cbdt'

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Whether s is a calendar date written YYYY-MM-DD (years 1900 to 9999). */
export function isIsoDate(s: string): boolean {
  const m = ISO_DATE.exec(s);
  if (!m) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s && Number(m[1]) >= 1900;
}

/** The date n days after (or before, n < 0) an ISO date. */
export function addDays(date: string, n: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Days from a to b (b - a) between two ISO dates. */
export function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

/** pg returns `date` as a JS Date at local midnight unless told otherwise: read it as text. */
const asText = (column: string) => `to_char(${column}, 'YYYY-MM-DD')`;

/** The business date's table: the global one and every shard's copy alike. */
const BUSINESS_DATE_TABLE = `
  create table business_date (
    singleton boolean primary key default true check (singleton),
    business_date date not null,
    updated_at timestamptz not null default now()
  );
  insert into business_date (business_date) values ((now() at time zone 'utc')::date);
`;

/** The global database's migrations of the bank's day (schema DAY_SCHEMA). */
export const dayMigrations: Migration[] = [
  {
    name: '001_business_date',
    // Starts at the database's UTC date; operators and tests set it (writeBusinessDate).
    async up(db) {
      await db.raw(BUSINESS_DATE_TABLE);
    },
  },
];

/** The global database as the bank's day sees it (schema DAY_SCHEMA). */
export function createDayPool(url: string, service: string, max = 2): Knex {
  return createPool(url, max, `${service}-day`, DAY_SCHEMA);
}

/** Applies dayMigrations (and `extra`, the day's own tables) to the global database. */
export async function migrateDay(db: Knex, extra: Migration[] = []): Promise<void> {
  await db.raw('create schema if not exists ??', [DAY_SCHEMA]);
  await db.migrate.latest({
    migrationSource: new ListSource([...dayMigrations, ...extra]),
    tableName: 'migrations',
    schemaName: DAY_SCHEMA,
  });
}

/** The business date in the global database. */
export async function readBusinessDate(db: Knex): Promise<string> {
  const row = (await db('business_date').first(db.raw(`${asText('business_date')} as d`))) as { d: string } | undefined;
  if (!row) throw new Error('the global database has no business date (run the migrate command)');
  return row.d;
}

/**
 * Sets the global business date (and notifies every follower). The shards follow it; the close
 * of business moves it one day at a time. `db` may be a transaction.
 */
export async function writeBusinessDate(db: Knex, date: string): Promise<void> {
  if (!isIsoDate(date)) throw new RangeError('business date must be YYYY-MM-DD');
  await db.raw(`update business_date set business_date = ?::date, updated_at = now()`, [date]);
  await db.raw(`select pg_notify(?, ?)`, [BUSINESS_DATE_CHANNEL, date]);
}

/** Every shard's copy of the business date (kit migration on every shard of every service). */
export const shardBusinessDateMigration: Migration = {
  name: '003_kit_business_date',
  async up(db) {
    await db.raw(BUSINESS_DATE_TABLE);
  },
};

/** A shard's copy of the business date. */
export async function readShardBusinessDate(db: Knex): Promise<string> {
  return readBusinessDate(db);
}

/**
 * Moves a shard's copy of the business date to `date`. Waits for every transaction booking under
 * the old date to commit (they hold BUSINESS_DATE_LOCK shared); once this returns, no booking on
 * the shard can carry the old date. Returns whether the date changed.
 */
export async function moveShardBusinessDate(db: Knex, date: string): Promise<boolean> {
  if (!isIsoDate(date)) throw new RangeError('business date must be YYYY-MM-DD');
  return db.transaction(async (tx) => {
    await tx.raw('select pg_advisory_xact_lock(?)', [BUSINESS_DATE_LOCK]);
    const r = await tx.raw(
      `update business_date set business_date = ?::date, updated_at = now() where business_date <> ?::date`,
      [date, date],
    );
    return (r as { rowCount: number }).rowCount > 0;
  });
}

/**
 * Keeps this process's view of the global business date, woken by NOTIFY (and a poll as a safety
 * net), and calls `onChange` with every new value (for example to move the shards' copies).
 */
export class BusinessDateFollower {
  private current: string | undefined;
  private readonly listener: ShardListener;
  private poll: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Knex,
    private readonly log: Logger,
    private readonly onChange: (date: string) => Promise<void> = async () => undefined,
    private readonly pollMs = 5_000,
  ) {
    this.listener = new ShardListener({ index: 0, db }, BUSINESS_DATE_CHANNEL, () => this.refresh(), log);
  }

  /** Reads the date once (so `date` is known when this returns), then follows it. */
  async start(): Promise<void> {
    await this.sync();
    this.listener.start();
    this.poll = setInterval(() => this.refresh(), this.pollMs);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.poll);
    await this.listener.stop();
    await this.running.catch(() => undefined);
  }

  /** The last business date read (start() must have returned). */
  get date(): string {
    if (this.current === undefined) throw new Error('BusinessDateFollower: not started');
    return this.current;
  }

  /** Reads the date now (after a change this process made itself, say) and applies it. */
  refresh(): Promise<void> {
    this.running = this.running
      .then(() => this.sync())
      .catch((err) => {
        this.log.warn({ err }, 'business date: could not read the global database; will retry');
      });
    return this.running;
  }

  private async sync(): Promise<void> {
    const date = await readBusinessDate(this.db);
    if (date === this.current) return;
    await this.onChange(date);
    if (this.current !== undefined) this.log.info({ from: this.current, to: date }, 'business date moved');
    this.current = date;
  }
}

/** Moves every shard's copy of the business date to `date` (each waits for its bookings in flight). */
export async function moveShardsBusinessDate(router: ShardRouter, date: string): Promise<void> {
  await Promise.all(router.shards.map((s) => moveShardBusinessDate(s.db, date)));
}

/** A service's view of the business date: the global database and the follower of its value. */
export interface BusinessDay {
  /** The global database (schema DAY_SCHEMA). */
  db: Knex;
  follower: BusinessDateFollower;
  stop(): Promise<void>;
}

/**
 * Follows the global business date and keeps `router`'s shards' copies on it, so a service's
 * transactions read the date from their own shard (readShardBusinessDate). Returns once the
 * date has been read and the copies moved.
 */
export async function followBusinessDate(
  url: string,
  router: ShardRouter,
  log: Logger,
  poolMax = 2,
): Promise<BusinessDay> {
  const db = createDayPool(url, router.service, poolMax);
  const follower = new BusinessDateFollower(db, log, (date) => moveShardsBusinessDate(router, date));
  try {
    await follower.start();
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return {
    db,
    follower,
    stop: async () => {
      await follower.stop();
      await db.destroy();
    },
  };
}
