// Loan metrics, on the kit's registry (served at /metrics): decisions on applications, money
// disbursed, repayments by kind and outcome, the loan day's work, delinquency moves, write-offs, and
// the work the sweeper owns. Labels are small closed sets (never a loan, application or customer id).
// Amounts are bigint minor units; Prometheus holds float64 samples, so Number() of an amount is
// exact up to 2^53 minor units and approximate above: fine for a rate on a dashboard, never a
// figure to reconcile against (the ledger is that).
import { registry } from '@corebank/kit';
import { Counter, Gauge, Histogram } from 'prom-client';

export const applications = new Counter({
  name: 'loan_applications_total',
  help: 'applications decided by the scorecard (and partner lenders), by decision (approved, rejected, referred); replays are not counted',
  labelNames: ['decision'] as const,
  registers: [registry],
});

export const decisionSeconds = new Histogram({
  name: 'loan_decision_duration_seconds',
  help: 'ApplyForLoan from the call to its stored decision: peer reads, scoring, partner sieve and the insert (not the disbursement)',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const reviews = new Counter({
  name: 'loan_application_reviews_total',
  help: "reviewers' decisions on referred applications that changed them, by decision (approved, rejected)",
  labelNames: ['decision'] as const,
  registers: [registry],
});

export const disbursements = new Counter({
  name: 'loan_disbursements_total',
  help: 'disbursements by outcome: disbursed, refused (for good by the ledger), deferred (the call could not finish it; a retry or the sweeper will)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const disbursedMinorUnits = new Counter({
  name: 'loan_disbursed_minor_units_total',
  help: 'principal paid out to borrowers, in minor units of the currency (a float: approximate above 2^53)',
  labelNames: ['currency'] as const,
  registers: [registry],
});

export const repayments = new Counter({
  name: 'loan_repayments_total',
  help: 'repayments whose ledger outcome was recorded, by kind (repayment, prepayment, payoff, collection, recovery) and outcome (applied, refused)',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
});

export const dayRuns = new Counter({
  name: 'loan_day_runs_total',
  help: 'RunLoanDay chunks, by outcome (ok, error)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const daySeconds = new Histogram({
  name: 'loan_day_duration_seconds',
  help: 'time to run one RunLoanDay chunk (all its steps)',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers: [registry],
});

export const dayLoans = new Counter({
  name: 'loan_day_loans_total',
  help: "loans a RunLoanDay step did work on in this run (interest, penalty, reclassify; a re-run of a day's range skips the loans done)",
  labelNames: ['step'] as const,
  registers: [registry],
});

export const bucketChanges = new Counter({
  name: 'loan_delinquency_bucket_changes_total',
  help: "loans moved to a delinquency bucket by the loan day, by the new bucket's lower bound in days past due (0: current)",
  labelNames: ['bucket'] as const,
  registers: [registry],
});

export const writeOffs = new Counter({
  name: 'loan_write_offs_total',
  help: 'loans written off, by currency',
  labelNames: ['currency'] as const,
  registers: [registry],
});

export const writtenOffMinorUnits = new Counter({
  name: 'loan_written_off_minor_units_total',
  help: 'principal written off as a loss, in minor units of the currency (a float: approximate above 2^53)',
  labelNames: ['currency'] as const,
  registers: [registry],
});

export const sweeperStale = new Gauge({
  name: 'loan_sweeper_stale_items',
  help: 'work the sweeper took over at its last pass (calls left it pending past the sweep age), per task and shard; at most 100',
  labelNames: ['task', 'shard'] as const,
  registers: [registry],
});

export const sweeperItems = new Counter({
  name: 'loan_sweeper_items_total',
  help: 'items the sweeper drove, by task and outcome (done, retry: it could not finish; next pass)',
  labelNames: ['task', 'outcome'] as const,
  registers: [registry],
});

/** An amount as a metric's value (see the header: approximate above 2^53 minor units). */
export const amountValue = (minor: bigint): number => Number(minor);
