// Group commit: concurrent requests for one shard wait in a queue and are applied together in
// one database transaction (a bounded number of batches in flight per shard per process). A hot
// account is locked once per batch rather than once per transfer, so it costs the shard little.
// One request's bad data must never fail the others batched with it: a batch that PostgreSQL
// refuses for a reason that retrying cannot cure is split until only the offender fails.
import {
  DomainError,
  isDatabaseUnavailable,
  isPermanentFailure,
  registry,
  traceCarrier,
  transactionOpenedBy,
  type Logger,
  type Shard,
} from '@corebank/kit';
import { Counter, Histogram } from 'prom-client';
import { applyBatch, emptyWrites } from './apply.js';
import { splitChains } from './chains.js';
import { batchStateFrom, loadStatement, writeBatch, type Loaded } from './store.js';
import { ResultCode, type TransferInput, type TransferOutcome } from './types.js';
import { transferEvent } from '../events.js';

const transfersTotal = new Counter({
  name: 'ledger_transfers_total',
  help: 'transfers decided by the ledger, by result',
  labelNames: ['result'] as const,
  registers: [registry],
});

const batchSize = new Histogram({
  name: 'ledger_batch_transfers',
  help: 'transfers per group-commit batch',
  labelNames: ['shard'] as const,
  buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 8190],
  registers: [registry],
});

const batchSeconds = new Histogram({
  name: 'ledger_batch_duration_seconds',
  help: 'time to load, decide and commit one batch',
  labelNames: ['shard'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  registers: [registry],
});

interface Waiting {
  inputs: TransferInput[];
  resolve: (o: TransferOutcome[]) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  /** The request's trace context, stamped on the events its transfers cause. */
  trace: Record<string, string>;
}

/** Thrown to roll back a trial commit (see offendingChain). */
const TRIAL = Symbol('trial commit');

export class ShardBatcher {
  private queue: Waiting[] = [];
  private inFlight = 0;

  constructor(
    private readonly shard: Shard,
    private readonly log: Logger,
    /**
     * Batches committing at once on this shard. Two overlap one batch's commit with the next
     * one's work; batches touching the same accounts still queue on the row locks (taken in id
     * order, so they never deadlock).
     */
    private readonly maxInFlight = 2,
    private readonly maxTransfers = 8190,
  ) {}

  submit(inputs: TransferInput[], signal?: AbortSignal): Promise<TransferOutcome[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ inputs, resolve, reject, signal, trace: traceCarrier() });
      this.pump();
    });
  }

  /** Starts batches while there is work and room; each finished batch starts the next. */
  private pump(): void {
    while (this.queue.length && this.inFlight < this.maxInFlight) {
      const batch = this.take();
      if (!batch.length) continue;
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private take(): Waiting[] {
    const batch: Waiting[] = [];
    let n = 0;
    while (this.queue.length && (batch.length === 0 || n + this.queue[0]!.inputs.length <= this.maxTransfers)) {
      const w = this.queue.shift()!;
      // A caller who has gone before its batch starts gets nothing applied.
      if (w.signal?.aborted) {
        w.reject(new DomainError('DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED', 'the deadline passed while queued'));
        continue;
      }
      batch.push(w);
      n += w.inputs.length;
    }
    return batch;
  }

  private async run(batch: Waiting[]): Promise<void> {
    const shard = String(this.shard.index);
    const stopTimer = batchSeconds.startTimer({ shard });
    batchSize.observe(
      { shard },
      batch.reduce((n, w) => n + w.inputs.length, 0),
    );
    try {
      await this.commitOrSplit(batch);
    } finally {
      stopTimer();
    }
  }

  /**
   * Commits the batch and answers its requests. A transient failure (connection, shutdown) fails
   * them all with UNAVAILABLE: retrying the same ids is safe. A permanent one is about some
   * request's data: the halves are committed apart (in order, so the outcome is the one a single
   * batch would have had), down to the one request at fault, which alone gets INVALID_ARGUMENT.
   */
  private async commitOrSplit(batch: Waiting[]): Promise<void> {
    try {
      const outcomes = await this.commit(batch);
      batch.forEach((w, i) => {
        for (const o of outcomes[i]!) transfersTotal.inc({ result: ResultCode[o.code] ?? String(o.code) });
        w.resolve(outcomes[i]!);
      });
    } catch (err) {
      if (!isPermanentFailure(err)) {
        this.log.error({ err, shard: this.shard.index, requests: batch.length }, 'ledger batch failed');
        // PostgreSQL down reads as every other RPC's outage does (DEPENDENCY_UNAVAILABLE).
        const e = new DomainError(
          'UNAVAILABLE',
          isDatabaseUnavailable(err) ? 'DEPENDENCY_UNAVAILABLE' : 'LEDGER_BATCH_FAILED',
          'the ledger could not commit this batch; retry with the same ids',
        );
        batch.forEach((w) => w.reject(e));
      } else if (batch.length > 1) {
        const half = batch.length >> 1;
        await this.commitOrSplit(batch.slice(0, half));
        await this.commitOrSplit(batch.slice(half));
      } else {
        const w = batch[0]!;
        const chain = await this.offendingChain(w);
        this.log.warn({ err, shard: this.shard.index, at: chain?.transfers[0]!.path }, 'ledger refused a request');
        w.reject(
          DomainError.invalid([
            {
              field: chain ? chain.transfers[0]!.path : 'transfers',
              description: 'holds a value the ledger cannot store',
            },
          ]),
        );
      }
    }
  }

  /**
   * The linked chain of a refused request that the database refuses on its own, found by trial
   * commits of halves of its chains that are rolled back (a logarithmic number of them), so the
   * caller is told which transfer to correct. Undefined when no chain fails alone.
   */
  private async offendingChain(w: Waiting) {
    const fails = async (chains: ReturnType<typeof splitChains>) => {
      try {
        await this.commit([{ ...w, inputs: chains.flatMap((c) => c.transfers) }], true);
        return false;
      } catch (err) {
        return err !== TRIAL && isPermanentFailure(err);
      }
    };
    let candidates = splitChains(w.inputs);
    while (candidates.length > 1) {
      const first = candidates.slice(0, candidates.length >> 1);
      candidates = (await fails(first)) ? first : candidates.slice(first.length);
    }
    return candidates.length && (await fails(candidates)) ? candidates[0] : undefined;
  }

  /** One transaction: lock and load, decide, write. `trial`: roll back instead of committing. */
  private commit(batch: Waiting[], trial = false): Promise<TransferOutcome[][]> {
    const inputs = batch.flatMap((w) => w.inputs);
    return transactionOpenedBy(this.shard.db, loadStatement(inputs), async (opened, query) => {
      const { state, clock } = batchStateFrom((opened.rows[0] as { loaded: Loaded }).loaded);
      const writes = emptyWrites();
      const outcomes = applyBatch(
        batch.map((w) => w.inputs),
        state,
        clock,
        writes,
      );
      // Each event carries the trace of the request whose transfer caused it.
      const events = batch.flatMap((w, i) =>
        outcomes[i]!.flatMap((o) =>
          o.transfer && !o.replayed
            ? [
                {
                  ...transferEvent(
                    o.transfer,
                    o.transfer.pendingId ? state.pendings.get(o.transfer.pendingId)?.transfer : undefined,
                    this.shard.index,
                  ),
                  trace: w.trace,
                },
              ]
            : [],
        ),
      );
      await writeBatch(query, state, writes, events);
      if (trial) throw TRIAL;
      return outcomes;
    });
  }
}
