// BusinessDayService: the business date, the close of business and the general ledger's reports.
// The account service serves it (it owns the journal the close of business books and reads); the
// date and the close's progress are in the global database, so every replica answers alike.
import { DomainError, isIsoDate, toTimestamp, type Logger } from '@corebank/kit';
import {
  CloseOfBusinessState,
  type CloseOfBusiness,
  type CloseOfBusinessStep,
} from '@corebank/kit/gen/corebank/v1/day';
import { closeDays, daysToClose, type CoordinatorDeps } from './coordinator.js';
import { STEPS, sumTotals } from './steps.js';
import { openRun, progress, RUN, runRow } from './store.js';

const STATE: Record<number, CloseOfBusinessState> = {
  [RUN.running]: CloseOfBusinessState.CLOSE_OF_BUSINESS_STATE_RUNNING,
  [RUN.completed]: CloseOfBusinessState.CLOSE_OF_BUSINESS_STATE_COMPLETED,
  [RUN.failed]: CloseOfBusinessState.CLOSE_OF_BUSINESS_STATE_FAILED,
};

/** A day's close as the API shows it, or undefined when it never started. */
export async function closeOfBusiness(
  d: Pick<CoordinatorDeps, 'db'>,
  date: string,
): Promise<CloseOfBusiness | undefined> {
  const run = await runRow(d.db, date);
  if (!run) return undefined;
  const now = Date.now();
  const steps: CloseOfBusinessStep[] = (await progress(d.db, date))
    .sort((a, b) => STEPS.indexOf(a.step as never) - STEPS.indexOf(b.step as never) || a.shard - b.shard)
    .map((p) => {
      const items = BigInt(p.items ?? '0');
      const seconds = p.started_at ? ((p.finished_at?.getTime() ?? now) - p.started_at.getTime()) / 1000 : 0;
      return {
        step: p.step,
        shard: p.shard,
        chunksDone: p.chunks_done,
        chunksTotal: p.chunks_total,
        chunksFailed: p.chunks_failed,
        items,
        itemsPerSecond: seconds > 0 ? Number(items) / seconds : 0,
        ...(p.started_at ? { startedAt: toTimestamp(p.started_at) } : {}),
        ...(p.finished_at ? { finishedAt: toTimestamp(p.finished_at) } : {}),
        totals: sumTotals(
          p.totals.map((list) => list.map((t) => ({ name: t.name, currency: t.currency, amount: BigInt(t.amount) }))),
        ),
        lastError: p.last_error,
      };
    });
  return {
    businessDate: date,
    state: STATE[run.state] ?? CloseOfBusinessState.CLOSE_OF_BUSINESS_STATE_UNSPECIFIED,
    startedAt: toTimestamp(run.started_at),
    ...(run.finished_at ? { finishedAt: toTimestamp(run.finished_at) } : {}),
    steps,
  };
}

export async function getCloseOfBusiness(d: Pick<CoordinatorDeps, 'db'>, date: string) {
  if (!isIsoDate(date)) throw DomainError.invalid([{ field: 'business_date', description: 'must be YYYY-MM-DD' }]);
  const run = await closeOfBusiness(d, date);
  if (!run) throw DomainError.notFound('business_date', 'close of business');
  return { run };
}

/**
 * Starts closing the open days through `through` in the background (this process coordinates;
 * another replica's scheduler resumes it if this one goes away) and answers at once, with the
 * state of each day that has started (the first is RUNNING).
 */
export async function runCloseOfBusiness(d: CoordinatorDeps, through: string, running: Set<Promise<unknown>>) {
  const days = await daysToClose(d.db, through);
  if (days.length === 0) return { runs: [] };
  // The first day is RUNNING before the answer (a failed one again), whoever coordinates it.
  await openRun(d.db, days[0]!);
  const job = closeDays(d, days).catch((err) => d.log.error({ err }, 'close of business: stopped'));
  running.add(job);
  void job.finally(() => running.delete(job));
  const runs = (await Promise.all(days.map((day) => closeOfBusiness(d, day)))).filter(
    (r): r is CloseOfBusiness => r !== undefined,
  );
  return { runs };
}

/**
 * Closes the days the calendar has finished: once the local time in `timeZone` passes `at`
 * (HH:MM), every business day before today's local date. Every replica may run it: closeDay's
 * lock lets one coordinate each day, and the others find it running.
 */
export function startCobScheduler(
  d: CoordinatorDeps,
  at: string,
  timeZone: string,
  log: Logger,
  everyMs = 30_000,
): { stop: () => Promise<void> } {
  let busy: Promise<unknown> | undefined;
  const tick = () => {
    if (busy) return;
    const parts = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).formatToParts(new Date());
    const v = (t: string) => parts.find((p) => p.type === t)!.value;
    const today = `${v('year')}-${v('month')}-${v('day')}`;
    if (`${v('hour')}:${v('minute')}` < at) return;
    const yesterday = new Date(`${today}T00:00:00Z`);
    yesterday.setUTCDate(yesterday.getUTCDate() - 1);
    busy = (async () => {
      const days = await daysToClose(d.db, yesterday.toISOString().slice(0, 10));
      if (days.length) await closeDays(d, days);
    })()
      .catch((err) => log.warn({ err }, 'close of business scheduler: will try again'))
      .finally(() => (busy = undefined));
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      // d.signal (aborted by the caller's shutdown) ends a close in progress; another replica resumes it.
      await busy;
    },
  };
}
