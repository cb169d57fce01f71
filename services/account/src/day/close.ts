// The close of business as an account service process runs it: the work queue of its chunks, the
// coordinator (RunCloseOfBusiness and the in-process scheduler start it), the worker that takes
// chunks from the queue (COB_WORKER_ENABLED), and the order in which they stop. The steps (what a
// chunk of each step does) come from the caller, which holds the clients they need.
import type { Logger, Nats, ShardRouter } from '@corebank/kit';
import type { Knex } from 'knex';
import type { AccountConfig } from '../config.js';
import type { CoordinatorDeps } from './coordinator.js';
import { cobQueue, ensureCobQueue } from './queue.js';
import { getCloseOfBusiness, runCloseOfBusiness, startCobScheduler } from './service.js';
import type { StepName, StepRunner } from './steps.js';
import { installationId } from './store.js';
import { startCobWorker } from './worker.js';

type CloseConfig = Pick<
  AccountConfig,
  | 'cobAckWaitMs'
  | 'cobChunksPerShard'
  | 'cobSteps'
  | 'cobWorkerEnabled'
  | 'cobWorkerConcurrency'
  | 'cobSchedule'
  | 'cobTimeZone'
>;

export interface CloseOfBusiness {
  /** RunCloseOfBusiness: starts closing the open days through `through`, answers at once. */
  run(through: string): ReturnType<typeof runCloseOfBusiness>;
  /** GetCloseOfBusiness: a day's close and its progress. */
  get(date: string): ReturnType<typeof getCloseOfBusiness>;
  /**
   * Stops the scheduler and the worker and waits for the closes this process coordinates: a close
   * in progress stops waiting, and its run stays RUNNING, to be resumed later (by any replica).
   */
  stop(): Promise<void>;
}

export async function startCloseOfBusiness(o: {
  config: CloseConfig;
  /** The global database's pool (the business date, the runs and their chunks). */
  db: Knex;
  router: ShardRouter;
  nats: Nats;
  log: Logger;
  steps: Record<StepName, StepRunner>;
}): Promise<CloseOfBusiness> {
  const { config, db, router, nats, log } = o;
  const queue = cobQueue(await installationId(db), config.cobAckWaitMs);
  await ensureCobQueue(nats, queue);
  const abort = new AbortController();
  const coordinator: CoordinatorDeps = {
    db,
    router,
    nats,
    queue,
    log,
    chunksPerShard: config.cobChunksPerShard,
    steps: config.cobSteps,
    signal: abort.signal,
  };
  const worker = config.cobWorkerEnabled
    ? startCobWorker({ nats, queue, db, router, steps: o.steps, log, concurrency: config.cobWorkerConcurrency })
    : undefined;
  const scheduler = config.cobSchedule
    ? startCobScheduler(coordinator, config.cobSchedule, config.cobTimeZone, log)
    : undefined;
  /** The closes this process coordinates (started by run or the scheduler's own). */
  const runs = new Set<Promise<unknown>>();
  return {
    run: (through) => runCloseOfBusiness(coordinator, through, runs),
    get: (date) => getCloseOfBusiness(coordinator, date),
    async stop() {
      abort.abort();
      await scheduler?.stop();
      await worker?.stop();
      await Promise.all(runs);
    },
  };
}
