// Group commit, generalised: concurrent requests for one shard wait in a queue and are applied
// together in one database transaction (one BEGIN, one COMMIT, one WAL flush for many), with a
// bounded number of transactions in flight. The account service's ledger batcher is the model
// (services/account/src/ledger/batcher.ts); this one serves writers whose per-request work is a
// few statements of their own (the payment service's orders).
//
// One request's bad data must never fail its neighbours: a batch that fails for a reason retrying
// cannot cure (isPermanentFailure: PostgreSQL refused the data or the statement, our code threw a
// TypeError or RangeError; or a DomainError, a verdict on one request) is split in halves, each
// committed on its own, down to the one request at fault, which alone gets the error. A transient
// failure (connection lost, shutdown, deadlock) fails every request of the batch with its error:
// nothing of the batch was committed, so each caller may retry.
import type { Knex } from 'knex';
import { Histogram } from 'prom-client';
import { isPermanentFailure } from './db.js';
import { DomainError } from './errors.js';
import { registry } from './metrics.js';

const batchSize = new Histogram({
  name: 'group_commit_requests',
  help: 'requests per group-commit transaction',
  labelNames: ['name', 'shard'] as const,
  buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
  registers: [registry],
});

export interface GroupCommitOptions {
  /** Transactions committing at once (two overlap one's commit with the next one's work). */
  maxInFlight?: number;
  /** Requests in one transaction at most. */
  maxBatch?: number;
}

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

/**
 * A queue of requests for one database, applied in batches by `apply` in one transaction. `apply`
 * returns one outcome per item, in order; it runs the items in the order of `orderKey` (so that
 * transactions lock rows in one order and do not deadlock one another).
 */
export class GroupCommit<I, O> {
  private queue: Waiting<I, O>[] = [];
  private inFlight = 0;

  constructor(
    private readonly db: Knex,
    private readonly apply: (tx: Knex.Transaction, items: I[]) => Promise<O[]>,
    private readonly orderKey: (item: I) => string,
    private readonly labels: { name: string; shard: number },
    private readonly o: GroupCommitOptions = {},
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length && this.inFlight < (this.o.maxInFlight ?? 2)) {
      const batch = this.queue.splice(0, this.o.maxBatch ?? 256);
      this.inFlight++;
      batchSize.observe({ name: this.labels.name, shard: String(this.labels.shard) }, batch.length);
      void this.commitOrSplit(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async commitOrSplit(batch: Waiting<I, O>[]): Promise<void> {
    const sorted = [...batch].sort((a, b) => {
      const ka = this.orderKey(a.item);
      const kb = this.orderKey(b.item);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    try {
      const outcomes = await this.db.transaction((tx) =>
        this.apply(
          tx,
          sorted.map((w) => w.item),
        ),
      );
      sorted.forEach((w, i) => w.resolve(outcomes[i]!));
    } catch (err) {
      if (!(isPermanentFailure(err) || err instanceof DomainError) || sorted.length === 1) {
        sorted.forEach((w) => w.reject(err));
        return;
      }
      const half = sorted.length >> 1;
      await this.commitOrSplit(sorted.slice(0, half));
      await this.commitOrSplit(sorted.slice(half));
    }
  }
}
