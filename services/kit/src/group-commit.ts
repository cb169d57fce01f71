// Group commit, generalised: concurrent requests for one shard wait in a queue and are applied
// together in one database transaction (one BEGIN, one COMMIT, one WAL flush for many), with a
// bounded number of transactions in flight: a BatchQueue whose batch is a transaction. The
// account service's ledger batcher is the model (services/account/src/ledger/batcher.ts); this one
// serves writers whose per-request work is a few statements of their own (the payment service's
// orders).
//
// One request's bad data must never fail its neighbours: a batch that fails for a reason retrying
// cannot cure (isPermanentFailure: PostgreSQL refused the data or the statement, our code threw a
// TypeError or RangeError; or a DomainError, a verdict on one request) is split in halves, each
// committed on its own, down to the one request at fault, which alone gets the error. A transient
// failure (connection lost, shutdown, deadlock) fails every request of the batch with its error:
// nothing of the batch was committed, so each caller may retry.
import type { Knex } from 'knex';
import { Histogram } from 'prom-client';
import { BatchQueue } from './batch-queue.js';
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

/**
 * A queue of requests for one database, applied in batches by `apply` in one transaction. `apply`
 * returns one outcome per item, in order; it runs the items in the order of `orderKey` (so that
 * transactions lock rows in one order and do not deadlock one another).
 */
export class GroupCommit<I, O> {
  private readonly queue: BatchQueue<I, O>;

  constructor(
    private readonly db: Knex,
    private readonly apply: (tx: Knex.Transaction, items: I[]) => Promise<O[]>,
    private readonly orderKey: (item: I) => string,
    labels: { name: string; shard: number },
    o: GroupCommitOptions = {},
  ) {
    this.queue = new BatchQueue((items) => this.commit(items), {
      maxInFlight: o.maxInFlight ?? 2,
      maxBatch: o.maxBatch ?? 256,
      splits: (err) => isPermanentFailure(err) || err instanceof DomainError,
      onBatch: (n) => batchSize.observe({ name: labels.name, shard: String(labels.shard) }, n),
    });
  }

  submit(item: I): Promise<O> {
    return this.queue.submit(item);
  }

  /** One transaction for the items, applied in the order of their keys; outcomes in the items' order. */
  private async commit(items: I[]): Promise<O[]> {
    const keys = items.map((item) => this.orderKey(item));
    const order = items.map((_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
    const outcomes = await this.db.transaction((tx) =>
      this.apply(
        tx,
        order.map((i) => items[i]!),
      ),
    );
    const inItemsOrder = new Array<O>(items.length);
    order.forEach((i, k) => (inItemsOrder[i] = outcomes[k]!));
    return inItemsOrder;
  }
}
