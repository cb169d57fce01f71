// The close of business's coordinator: closes days one at a time, oldest first. For a day D it
// moves the business date to D+1 (globally, then on every shard, each waiting for the bookings in
// flight under D, so D's journal is final), then queues each step's chunks for every shard and
// waits for them before the next step (loans, deposits, gl), and marks D closed.
//
// One coordinator per day at a time: it holds a session advisory lock on the global database
// while it runs. If its process dies the lock goes with its connection, the run stays RUNNING,
// and the next RunCloseOfBusiness or scheduler tick (on any replica) resumes it: chunks already
// done are not queued again.
import {
  addDays,
  DomainError,
  isIsoDate,
  moveShardsBusinessDate,
  readBusinessDate,
  writeBusinessDate,
  type Logger,
  type Nats,
  type ShardRouter,
} from '@corebank/kit';
import type { Knex } from 'knex';
import type pg from 'pg';
import { queueChunks, type CobQueue } from './queue.js';
import { idRanges, STEPS, type StepName } from './steps.js';
import {
  CHUNK,
  chunksOf,
  earliestUnfinishedRun,
  ensureChunks,
  finishRun,
  lastClosedDate,
  openRun,
  RUN,
  runState,
  type ChunkRow,
} from './store.js';

export interface CoordinatorDeps {
  /** The global database (schema day). */
  db: Knex;
  router: ShardRouter;
  nats: Nats;
  queue: CobQueue;
  log: Logger;
  /** The steps this bank runs (COB_STEPS), in STEPS order. */
  steps: readonly StepName[];
  /** Chunks per shard for the steps that go over many entities (loans, deposits). */
  chunksPerShard: number;
  /** How often the coordinator looks at a step's chunks while it waits. */
  pollMs?: number;
  /** Aborted at shutdown: the coordinator stops waiting (the run stays RUNNING; it is resumed later). */
  signal?: AbortSignal;
}

const LOCK_BASE = 0x636f6200; // 'cob\0'
const lockKey = (date: string) => LOCK_BASE + (Number(date.replaceAll('-', '')) % 0xff_ffff);

/** The chunk ranges of a step on one shard: the general ledger is one chunk per shard. */
const rangesOf = (step: StepName, n: number): [string, string][] => (step === 'gl' ? [['', '']] : idRanges(n));

/**
 * The days to close for `through` (default: the current business date): from the day after the
 * last closed one (or the current business date, for a bank that never closed one) up to
 * `through`, oldest first. `through` may be after the current business date: days the scheduler
 * missed are closed one by one, each moving the date on by one.
 */
export async function daysToClose(db: Knex, through?: string): Promise<string[]> {
  if (through !== undefined && through !== '' && !isIsoDate(through)) {
    throw DomainError.invalid([{ field: 'through', description: 'must be YYYY-MM-DD' }]);
  }
  const [current, lastClosed, unfinished] = await Promise.all([
    readBusinessDate(db),
    lastClosedDate(db),
    earliestUnfinishedRun(db),
  ]);
  const last = through || current;
  // A day being closed (or that failed) has moved the date on already: it comes first.
  let day = unfinished ?? (lastClosed ? addDays(lastClosed, 1) : current);
  if (last > addDays(current, 366)) {
    throw DomainError.invalid([{ field: 'through', description: 'is more than a year after the business date' }]);
  }
  const days: string[] = [];
  for (; day <= last; day = addDays(day, 1)) days.push(day);
  return days;
}

/** Closes the given days in order; stops at the first that fails. Returns each day's final state. */
export async function closeDays(d: CoordinatorDeps, days: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const day of days) {
    const state = await closeDay(d, day);
    out.set(day, state);
    if (state !== RUN.completed) break;
  }
  return out;
}

/**
 * Closes one day, or finds another coordinator at it (returns RUNNING then). Idempotent: a closed
 * day returns COMPLETED at once.
 */
export async function closeDay(d: CoordinatorDeps, date: string): Promise<number> {
  if ((await runState(d.db, date)) === RUN.completed) return RUN.completed;
  const conn = (await d.db.client.acquireConnection()) as pg.Client;
  try {
    const { rows } = await conn.query('select pg_try_advisory_lock($1) as got', [lockKey(date)]);
    if (!(rows[0] as { got: boolean }).got) return RUN.running;
    try {
      return await closeLocked(d, date);
    } finally {
      await conn.query('select pg_advisory_unlock($1)', [lockKey(date)]).catch(() => undefined);
    }
  } finally {
    await d.db.client.releaseConnection(conn);
  }
}

async function closeLocked(d: CoordinatorDeps, date: string): Promise<number> {
  const before = await openRun(d.db, date);
  if (before === RUN.completed) return RUN.completed;
  const next = addDays(date, 1);
  const started = Date.now();
  await d.db.transaction(async (tx) => {
    const current = await readBusinessDate(tx);
    if (current === date) await writeBusinessDate(tx, next);
    else if (current !== next) {
      throw new DomainError(
        'FAILED_PRECONDITION',
        'BUSINESS_DATE_MISMATCH',
        `cannot close ${date}: the business date is ${current}`,
      );
    }
  });
  // Every shard on D+1 before any step reads day D: each move waits for D's bookings in flight.
  await moveShardsBusinessDate(d.router, next);
  d.log.info({ business_date: date, resumed: before !== undefined }, 'close of business: started');

  for (const step of STEPS.filter((s) => d.steps.includes(s))) {
    for (const s of d.router.shards) {
      await ensureChunks(d.db, { date, step, shard: s.index }, rangesOf(step, d.chunksPerShard));
    }
    const outcome = await runStep(d, date, step);
    if (outcome === 'failed') {
      await finishRun(d.db, date, RUN.failed);
      d.log.error({ business_date: date, step }, 'close of business: a chunk failed; the day is not closed');
      return RUN.failed;
    }
  }
  await finishRun(d.db, date, RUN.completed);
  d.log.info({ business_date: date, ms: Date.now() - started }, 'close of business: day closed');
  return RUN.completed;
}

/** Queues the step's chunks not done yet and waits until all are done (or one failed for good). */
async function runStep(d: CoordinatorDeps, date: string, step: string): Promise<'done' | 'failed'> {
  const open = (rows: ChunkRow[]) => rows.filter((r) => r.state !== CHUNK.done);
  let rows = await chunksOf(d.db, date, step);
  await queueChunks(d.nats.js, d.queue, open(rows));
  for (;;) {
    d.signal?.throwIfAborted();
    if (rows.some((r) => r.state === CHUNK.failed)) return 'failed';
    if (open(rows).length === 0) return 'done';
    await new Promise((r) => setTimeout(r, d.pollMs ?? 200));
    rows = await chunksOf(d.db, date, step);
  }
}
