// The saga's transfers, many orders' steps to a CreateTransfers call. While calls are in flight
// (at most maxInFlight), new steps wait and go together in the next call, up to maxBatch: under
// load one call carries many orders' steps, each with its own result; alone, a step goes at once.
// The ledger decides every transfer of a call on its own (none is linked), so one order's transfer
// cannot change another's verdict. A call the ledger refuses as a request (bad input in one
// transfer fails the whole request) is made again one transfer per call, so that no order's step
// is refused for another's.
import type { Transfer, TransferResult } from '@corebank/kit/gen/corebank/v1/account';

export type SendTransfers = (transfers: Transfer[], deadline: Date) => Promise<TransferResult[]>;

interface Waiting {
  transfer: Transfer;
  deadline: Date;
  resolve: (r: TransferResult) => void;
  reject: (err: unknown) => void;
}

export class TransferCalls {
  private waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(
    private readonly send: SendTransfers,
    /** Whether an error says the ledger refused the request itself (not a transient failure). */
    private readonly refusedRequest: (err: unknown) => boolean,
    private readonly maxInFlight = 4,
    private readonly maxBatch = 256,
  ) {}

  /** The ledger's result for this transfer; rejects with the call's error when it got none. */
  submit(transfer: Transfer, deadline: Date): Promise<TransferResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ transfer, deadline, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.inFlight++;
      void this.call(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async call(batch: Waiting[]): Promise<void> {
    // The earliest deadline of the batch: no step waits longer than its caller allowed.
    const deadline = new Date(Math.min(...batch.map((w) => w.deadline.getTime())));
    try {
      const results = await this.send(
        batch.map((w) => w.transfer),
        deadline,
      );
      if (results.length !== batch.length) throw new Error(`${results.length} results for ${batch.length} transfers`);
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      if (batch.length > 1 && this.refusedRequest(err)) {
        await Promise.all(batch.map((w) => this.alone(w)));
        return;
      }
      for (const w of batch) w.reject(err);
    }
  }

  private async alone(w: Waiting): Promise<void> {
    try {
      const [result] = await this.send([w.transfer], w.deadline);
      if (!result) throw new Error('no result for the transfer');
      w.resolve(result);
    } catch (err) {
      w.reject(err);
    }
  }
}
