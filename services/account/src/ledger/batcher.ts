// Group commit: concurrent requests for one shard wait in a queue and are applied together in
// one database transaction (one batch in flight per shard per process). A hot account is locked
// once per batch rather than once per transfer, so it costs the shard little.
import { withRetry, writeEvents, DomainError, type Logger, type Shard } from '@corebank/kit';
import { Counter } from 'prom-client';
import { registry } from '@corebank/kit';
import { applyBatch, type BatchWrites } from './apply.js';
import { loadBatchState, writeBatch } from './store.js';
import { ResultCode, type TransferInput, type TransferOutcome } from './types.js';
import { transferEvent } from '../events.js';

const transfersTotal = new Counter({
  name: 'ledger_transfers_total',
  help: 'transfers decided by the ledger, by result',
  labelNames: ['result'] as const,
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
  private busy = false;

  constructor(
    private readonly shard: Shard,
    private readonly log: Logger,
    private readonly maxTransfers = 8190,
  ) {}

  submit(inputs: TransferInput[], signal?: AbortSignal): Promise<TransferOutcome[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ inputs, resolve, reject, signal });
      if (!this.busy) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.queue.length) {
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
        if (batch.length) await this.run(batch);
      }
    } finally {
      this.busy = false;
    }
  }

  private async run(batch: Waiting[]): Promise<void> {
    try {
      const outcomes = await withRetry(this.shard.db, async (tx) => {
        const state = await loadBatchState(
          tx,
          batch.flatMap((w) => w.inputs),
        );
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
        await writeBatch(tx, state, writes);
        await writeEvents(
          tx,
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
    }
  }
}
