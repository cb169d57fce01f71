// The close of business's own tables, in the global database (schema day, beside the business
// date): one row per day being closed, one per chunk of work. Workers on any replica record each
// chunk's outcome here, so progress is one query and a day's summary is the sum of its chunks.
import type { Knex } from 'knex';
import type { Migration } from '@corebank/kit';

export const cobMigrations: Migration[] = [
  {
    name: '101_close_of_business',
    async up(db) {
      await db.raw(`
        create table cob_runs (
          business_date date primary key,
          state smallint not null,
          started_at timestamptz not null default now(),
          finished_at timestamptz
        );
        create table cob_chunks (
          business_date date not null,
          step text not null,
          shard integer not null,
          chunk integer not null,
          -- The chunk's entities: ids > lo and <= hi (text compare of lower-case UUIDs; '' open).
          lo text not null,
          hi text not null,
          state smallint not null default 0,
          attempts integer not null default 0,
          items bigint not null default 0,
          totals jsonb not null default '[]',
          last_error text not null default '',
          started_at timestamptz,
          finished_at timestamptz,
          primary key (business_date, step, shard, chunk)
        );
        -- Names this bank's work queue subject, so banks (test environments, say) that share a
        -- NATS never take one another's chunks.
        create table cob_installation (
          singleton boolean primary key default true check (singleton),
          id uuid not null default gen_random_uuid()
        );
        insert into cob_installation default values;
        -- Idempotency keys of SetBusinessDate and RunCloseOfBusiness: the request each was first
        -- used with (the operations are idempotent themselves; the key only refuses reuse).
        create table day_requests (
          idempotency_key text primary key,
          rpc text not null,
          body_hash text not null,
          created_at timestamptz not null default now()
        );
      `);
    },
  },
];

export async function installationId(db: Knex): Promise<string> {
  const r = (await db('cob_installation').first('id')) as { id: string } | undefined;
  if (!r) throw new Error('the global database has no close-of-business installation (run the migrate command)');
  return r.id;
}

/** Claims an idempotency key for a request; false when it was used with another request. */
export async function claimKey(db: Knex, key: string, rpc: string, bodyHash: string): Promise<boolean> {
  await db.raw(`insert into day_requests (idempotency_key, rpc, body_hash) values (?, ?, ?) on conflict do nothing`, [
    key,
    rpc,
    bodyHash,
  ]);
  const row = (await db('day_requests').where('idempotency_key', key).first('rpc', 'body_hash')) as {
    rpc: string;
    body_hash: string;
  };
  return row.rpc === rpc && row.body_hash === bodyHash;
}

export const RUN = { running: 1, completed: 2, failed: 3 } as const;
export const CHUNK = { queued: 0, done: 1, failed: 2 } as const;

export interface ChunkKey {
  date: string;
  step: string;
  shard: number;
  chunk: number;
}

export interface ChunkRow extends ChunkKey {
  lo: string;
  hi: string;
  state: number;
  attempts: number;
}

export interface StepTotal {
  name: string;
  currency: string;
  /** Minor units as a decimal string (JSON has no bigint). */
  amount: string;
}

const DATE = `to_char(business_date, 'YYYY-MM-DD')`;

export async function lastClosedDate(db: Knex): Promise<string> {
  const r = (await db('cob_runs').where('state', RUN.completed).max({ d: 'business_date' }).first()) as {
    d: string | Date | null;
  };
  if (!r?.d) return '';
  return typeof r.d === 'string' ? r.d.slice(0, 10) : r.d.toISOString().slice(0, 10);
}

/** The oldest day whose close started and did not complete (running or failed). */
export async function earliestUnfinishedRun(db: Knex): Promise<string | undefined> {
  const r = (await db('cob_runs')
    .whereNot('state', RUN.completed)
    .orderBy('business_date')
    .first(db.raw(`${DATE} as d`))) as { d: string } | undefined;
  return r?.d;
}

export async function runState(db: Knex, date: string): Promise<number | undefined> {
  const r = (await db('cob_runs').where('business_date', date).first('state')) as { state: number } | undefined;
  return r?.state;
}

/** Starts (or resumes) a day's run; returns its state before. */
export async function openRun(db: Knex, date: string): Promise<number | undefined> {
  const before = await runState(db, date);
  if (before === undefined) {
    await db.raw(`insert into cob_runs (business_date, state) values (?, ?) on conflict do nothing`, [
      date,
      RUN.running,
    ]);
  } else if (before === RUN.failed) {
    await db('cob_runs').where('business_date', date).update({ state: RUN.running, finished_at: null });
    await db('cob_chunks').where({ business_date: date, state: CHUNK.failed }).update({ state: CHUNK.queued });
  }
  return before;
}

export async function finishRun(db: Knex, date: string, state: number): Promise<void> {
  await db('cob_runs').where('business_date', date).update({ state, finished_at: db.fn.now() });
}

/** Creates a step's chunks for a shard once (a resumed run keeps the ones it has). */
export async function ensureChunks(db: Knex, key: Omit<ChunkKey, 'chunk'>, ranges: [string, string][]): Promise<void> {
  await db.raw(
    `insert into cob_chunks (business_date, step, shard, chunk, lo, hi)
     select ?::date, ?, ?, c, lo, hi from unnest(?::int[], ?::text[], ?::text[]) as r(c, lo, hi)
     on conflict do nothing`,
    [key.date, key.step, key.shard, ranges.map((_, i) => i), ranges.map((r) => r[0]), ranges.map((r) => r[1])] as never,
  );
}

export async function chunksOf(db: Knex, date: string, step: string): Promise<ChunkRow[]> {
  const rows = (await db('cob_chunks')
    .where({ business_date: date, step })
    .orderBy(['shard', 'chunk'])
    .select(db.raw(`${DATE} as date`), 'step', 'shard', 'chunk', 'lo', 'hi', 'state', 'attempts')) as ChunkRow[];
  return rows;
}

export async function chunk(db: Knex, k: ChunkKey): Promise<ChunkRow | undefined> {
  return (await db('cob_chunks')
    .where({ business_date: k.date, step: k.step, shard: k.shard, chunk: k.chunk })
    .first(db.raw(`${DATE} as date`), 'step', 'shard', 'chunk', 'lo', 'hi', 'state', 'attempts')) as
    ChunkRow | undefined;
}

export async function startChunk(db: Knex, k: ChunkKey): Promise<void> {
  await db('cob_chunks')
    .where({ business_date: k.date, step: k.step, shard: k.shard, chunk: k.chunk })
    .update({ started_at: db.raw('coalesce(started_at, now())'), attempts: db.raw('attempts + 1') });
}

export async function finishChunk(db: Knex, k: ChunkKey, items: number, totals: StepTotal[]): Promise<void> {
  await db('cob_chunks')
    .where({ business_date: k.date, step: k.step, shard: k.shard, chunk: k.chunk })
    .update({
      state: CHUNK.done,
      items,
      totals: JSON.stringify(totals),
      last_error: '',
      finished_at: db.fn.now(),
    });
}

export async function failChunk(db: Knex, k: ChunkKey, reason: string, final: boolean): Promise<void> {
  await db('cob_chunks')
    .where({ business_date: k.date, step: k.step, shard: k.shard, chunk: k.chunk })
    .update({ last_error: reason.slice(0, 200), ...(final ? { state: CHUNK.failed } : {}) });
}

export interface StepProgressRow {
  step: string;
  shard: number;
  chunks_total: number;
  chunks_done: number;
  chunks_failed: number;
  items: string;
  started_at: Date | null;
  finished_at: Date | null;
  last_error: string;
  totals: StepTotal[][];
}

/** Per step and shard: chunk counts, items, times, the chunks' totals (summed by the caller). */
export async function progress(db: Knex, date: string): Promise<StepProgressRow[]> {
  const { rows } = (await db.raw(
    `select step, shard, count(*)::int as chunks_total,
            count(*) filter (where state = ${CHUNK.done})::int as chunks_done,
            count(*) filter (where state = ${CHUNK.failed})::int as chunks_failed,
            sum(items)::text as items, min(started_at) as started_at,
            case when bool_and(state = ${CHUNK.done}) then max(finished_at) end as finished_at,
            coalesce(max(nullif(last_error, '')), '') as last_error,
            json_agg(totals) as totals
       from cob_chunks where business_date = ?
      group by step, shard`,
    [date],
  )) as { rows: StepProgressRow[] };
  return rows;
}

export async function runRow(
  db: Knex,
  date: string,
): Promise<{ state: number; started_at: Date; finished_at: Date | null } | undefined> {
  return (await db('cob_runs').where('business_date', date).first('state', 'started_at', 'finished_at')) as
    { state: number; started_at: Date; finished_at: Date | null } | undefined;
}
