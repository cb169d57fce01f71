// Batching, the one mechanism: requests wait in a queue while at most maxInFlight batches are being
// applied, and go together in the next batch, up to maxBatch. Under load one round trip (a
// transaction, a statement, a call to another service) carries many requests, each with its own
// outcome; alone, a request goes at once, so nothing waits for a timer. Group commit
// (group-commit.ts), and the payment service's shared ledger calls, idempotency-key claims and saga
// step advances are this queue with their own `apply`.
//
// One request's bad data must never fail its neighbours: when a batch of more than one fails with
// an error that `splits` names (one a single request can cause and retrying cannot cure), it is
// applied again in halves, one after the other, down to the request at fault, which alone gets the
// error. Any other failure (a lost connection, a timeout, a shutdown) fails every request of that
// batch, and only those, with its error. `apply` must be all or nothing for a batch (a transaction,
// one statement), or idempotent per request, so that a request failed this way may be retried.

export interface BatchQueueOptions {
  /** Batches being applied at once (two overlap one's round trip with the next one's). */
  maxInFlight: number;
  /** Requests in one batch at most. */
  maxBatch: number;
  /** Whether a failed batch is tried again in halves (absent: never). */
  splits?: (err: unknown) => boolean;
  /** Told each batch's size as it starts (the first try, not its halves). */
  onBatch?: (size: number) => void;
}

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export class BatchQueue<I, O> {
  private queue: Waiting<I, O>[] = [];
  private inFlight = 0;

  constructor(
    /** Applies a batch: one outcome per item, in the items' order. */
    private readonly apply: (items: I[]) => Promise<O[]>,
    private readonly o: BatchQueueOptions,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  /** Requests waiting for a batch (not those being applied). */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.queue.length && this.inFlight < this.o.maxInFlight) {
      const batch = this.queue.splice(0, this.o.maxBatch);
      this.inFlight++;
      this.o.onBatch?.(batch.length);
      void this.applyOrSplit(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async applyOrSplit(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const outcomes = await this.apply(batch.map((w) => w.item));
      if (outcomes.length !== batch.length) {
        throw new Error(`batch applied with ${outcomes.length} outcomes for ${batch.length} requests`);
      }
      batch.forEach((w, i) => w.resolve(outcomes[i]!));
    } catch (err) {
      if (batch.length === 1 || !this.o.splits?.(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      const half = batch.length >> 1;
      await this.applyOrSplit(batch.slice(0, half));
      await this.applyOrSplit(batch.slice(half));
    }
  }
}

/**
 * A batch in rounds whose items have distinct keys, in their order: for a batch applied as one
 * statement, which cannot insert or update one row twice (a key asked twice in one batch goes in
 * the next round, and sees the first's outcome).
 */
export function distinctRounds<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const rounds: { keys: Set<string>; items: T[] }[] = [];
  for (const item of items) {
    const k = key(item);
    let round = rounds.find((r) => !r.keys.has(k));
    if (!round) rounds.push((round = { keys: new Set(), items: [] }));
    round.keys.add(k);
    round.items.push(item);
  }
  return rounds.map((r) => r.items);
}
