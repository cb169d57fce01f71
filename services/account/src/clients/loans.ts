// The loan service as the close of business uses it: each chunk of the loans step is one
// RunLoanDay call over the chunk's loans on that shard (the loan service has the same shards as
// the ledger: SHARD_COUNT and SHARD_MAP are the bank's, not a service's).
import { DomainError, fromDownstream, serviceClient, type ServiceIdentity } from '@corebank/kit';
import { LoanServiceClient } from '@corebank/kit/gen/corebank/v1/loan';
import type { StepRunner, StepTotal } from '../day/steps.js';

export type LoanClient = ReturnType<typeof serviceClient<LoanServiceClient>>;

export function connectLoans(address: string, identity: ServiceIdentity): LoanClient {
  return serviceClient(LoanServiceClient, address, identity, 'loan');
}

/** A chunk takes long for a big book: the loan service processes its loans in batches. */
const CHUNK_DEADLINE_MS = 15 * 60_000;

export function loanDayStep(loans: LoanClient): StepRunner {
  return async (w) => {
    let res;
    try {
      res = await loans.runLoanDay(
        { businessDate: w.date, shard: w.shard.index, afterId: w.after, upToId: w.upTo, loanIds: [] },
        { deadline: new Date(Date.now() + CHUNK_DEADLINE_MS) },
      );
    } catch (err) {
      throw fromDownstream(err, 'loan', 'RunLoanDay');
    }
    // The general ledger step must see every booking of the day: a chunk whose GL postings the
    // ledger has not confirmed yet is not done (it is retried; RunLoanDay is idempotent).
    if (res.postingsPending > 0)
      throw new DomainError('UNAVAILABLE', 'LOAN_POSTINGS_PENDING', 'loan GL postings not yet on the ledger');
    const totals: StepTotal[] = res.totals.flatMap((t) =>
      (
        [
          ['interest_accrued', t.interestAccrued],
          ['penalty_accrued', t.penaltyAccrued],
          ['principal_collected', t.principalCollected],
          ['interest_collected', t.interestCollected],
          ['penalty_collected', t.penaltyCollected],
          ['fees_collected', t.feesCollected],
        ] as const
      ).map(([name, amount]) => ({ name, currency: t.currency, amount })),
    );
    totals.push(
      { name: 'loans_collected', currency: '', amount: BigInt(res.loansCollected) },
      { name: 'collections_refused', currency: '', amount: BigInt(res.collectionsRefused) },
      { name: 'loans_reclassified', currency: '', amount: BigInt(res.loansReclassified) },
      { name: 'instalments_overdue', currency: '', amount: BigInt(res.instalmentsOverdue) },
    );
    return { items: res.loansProcessed, totals };
  };
}
