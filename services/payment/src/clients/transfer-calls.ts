// The saga's transfers, many orders' steps to a CreateTransfers call (the kit's BatchQueue). While
// calls are in flight (at most maxInFlight), new steps wait and go together in the next call, up to
// maxBatch: under load one call carries many orders' steps, each with its own result; alone, a step
// goes at once. The ledger decides every transfer of a call on its own (none is linked), so one
// order's transfer cannot change another's verdict. A call the ledger refuses as a request (bad
// input in one transfer fails the whole request) is made again in halves, down to the transfer at
// fault, so that no order's step is refused for another's.
import { BatchQueue } from '@corebank/kit';
import type { Transfer, TransferResult } from '@corebank/kit/gen/corebank/v1/account';

export type SendTransfers = (transfers: Transfer[], deadline: Date) => Promise<TransferResult[]>;

interface Step {
  transfer: Transfer;
  deadline: Date;
}

export class TransferCalls {
  private readonly queue: BatchQueue<Step, TransferResult>;

  constructor(
    send: SendTransfers,
    /** Whether an error says the ledger refused the request itself (not a transient failure). */
    refusedRequest: (err: unknown) => boolean,
    maxInFlight = 4,
    maxBatch = 256,
  ) {
    this.queue = new BatchQueue(
      (steps) =>
        send(
          steps.map((s) => s.transfer),
          // The earliest deadline of the call: no step waits longer than its caller allowed.
          new Date(Math.min(...steps.map((s) => s.deadline.getTime()))),
        ),
      { maxInFlight, maxBatch, splits: refusedRequest },
    );
  }

  /** The ledger's result for this transfer; rejects with the call's error when it got none. */
  submit(transfer: Transfer, deadline: Date): Promise<TransferResult> {
    return this.queue.submit({ transfer, deadline });
  }
}
