// Group commit: concurrent requests for one shard wait in a queue and are applied together in
// one database transaction (one batch in flight per shard per process). A hot account is locked
// once per batch rather than once per transfer, so it costs the shard little.
import { transactionOpenedBy, DomainError, type Logger, type Shard } from '@corebank/kit';
import { Counter, Histogram } from 'prom-client';
import { registry } from '@corebank/kit';
import { applyBatch, type BatchWrites } from './apply.js';
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
}

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
      this.queue.push({ inputs, resolve, reject, signal });
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
      const inputs = batch.flatMap((w) => w.inputs);
      const outcomes = await transactionOpenedBy(this.shard.db, loadStatement(inputs), async (opened, query) => {
        const state = batchStateFrom((opened.rows[0] as { loaded: Loaded }).loaded);
        const writes: BatchWrites = {
          transfers: [],
          entries: [],
          rejections: [],
          touched: new Set(),
          holdsOpened: [],
          holdsClosed: [],
        };
        const result = applyBatch(
          batch.map((w) => w.inputs),
          state,
          new Date(),
          writes,
        );
        await writeBatch(
          query,
          state,
          writes,
          writes.transfers.map((t) =>
            transferEvent(t, t.pendingId ? state.pendings.get(t.pendingId)?.transfer : undefined, this.shard.index),
          ),
        );
        return result;
      });
      batch.forEach((w, i) => {
        for (const o of outcomes[i]!) transfersTotal.inc({ result: ResultCode[o.code] ?? String(o.code) });
        w.resolve(outcomes[i]!);
      });
    } catch (err) {
      this.log.error({ err, shard: this.shard.index, requests: batch.length }, 'ledger batch failed');
      const e = new DomainError(
        'UNAVAILABLE',
        'LEDGER_BATCH_FAILED',
        'the ledger could not commit this batch; retry with the same ids',
      );
      batch.forEach((w) => w.reject(e));
    } finally {
      stopTimer();
    }
  }
}
