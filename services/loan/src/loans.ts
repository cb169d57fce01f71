// Disbursement: an approved application becomes a loan (PENDING_DISBURSEMENT, in the approval's
// transaction); then its own ledger account is opened and the principal moves from it to the
// borrower's deposit account in one ledger transfer whose id is derived from the loan id, so a
// retry (the same call again, or the sweeper after a crash) replays the ledger's result instead
// of paying out twice. On OK the schedule is fixed from the business date (the shard's copy) and the loan
// is ACTIVE; on a refusal for good (a closed or blocked account) it is DISBURSEMENT_REFUSED.
import {
  bucketedId,
  bucketOfId,
  DomainError,
  writeEvents,
  type Logger,
  type ShardRouter,
  readShardBusinessDate,
} from '@corebank/kit';
import type { Knex } from 'knex';
import { LoanChanged } from '@corebank/kit/gen/corebank/v1/events';
import { LoanStatus as L, type Loan } from '@corebank/kit/gen/corebank/v1/loan';
import { newEventId, toTimestamp } from '@corebank/kit';
import type { Accounts } from './clients/accounts.js';
import { CODES, singlePhase } from './clients/accounts.js';
import type { Products } from './clients/products.js';
import { SUBJECTS } from './events.js';
import { disbursementTransferId, loanToProto, type ApplicationRow, type LoanRow } from './proto.js';
import { parseRate } from './schedule/index.js';
import { findLoan, lockLoan } from './store.js';
import { loanTermsOf, scheduleFor } from './terms.js';
import { disbursementLegs, loanPartners, PARTNER_CODES } from './colending.js';
import { amountValue, disbursedMinorUnits, disbursements, sweeperItems, sweeperStale } from './metrics.js';

export interface LoanDeps {
  router: ShardRouter;
  accounts: Accounts;
  products: Products;
  log: Logger;
}

/** The loan id of an application: derived from it, with the borrower's bucket (routing). */
export const loanIdFor = (applicationId: string): string =>
  bucketedId(bucketOfId(applicationId)!, 'loan', applicationId);

/** The loan row an approved application becomes. */
export function newLoan(a: ApplicationRow, now: Date): LoanRow {
  return {
    id: loanIdFor(a.id),
    application_id: a.id,
    customer_id: a.customer_id,
    product_id: a.product_id,
    product_version: a.product_version,
    currency: a.currency,
    principal: a.approved_amount,
    annual_rate: a.annual_rate,
    term_months: a.term_months,
    status: L.LOAN_STATUS_PENDING_DISBURSEMENT,
    disbursement_account_id: a.disbursement_account_id,
    repayment_account_id: a.repayment_account_id,
    ledger_account_id: null,
    disbursed_on: null,
    instalment_amount: 0n,
    refusal: '',
    version: 1n,
    created_at: now,
    updated_at: now,
    schedule_version: 1,
    partners: loanPartners(a.partner_decisions ?? [], a.approved_amount),
  };
}

export function loanEvent(subject: string, loan: Loan, at: Date) {
  const meta = { eventId: newEventId(), occurredAt: toTimestamp(at), shard: loan.shard };
  return { id: meta.eventId, subject, payload: LoanChanged.encode({ meta, loan }).finish() };
}

export async function getLoan(router: ShardRouter, id: string): Promise<Loan | undefined> {
  const shard = router.byId(id)!;
  const row = await findLoan(shard.db, id);
  return row && loanToProto(row, shard.index);
}

/**
 * Drives a loan's disbursement to its end (idempotent; any number of callers at once). Returns the
 * loan as it is afterwards. A ledger or product service that cannot be reached throws: the loan
 * stays PENDING_DISBURSEMENT for a retry.
 */
export async function disburse(d: LoanDeps, loanId: string, deadline?: Date): Promise<Loan> {
  const shard = d.router.byId(loanId)!;
  const loan = await findLoan(shard.db, loanId);
  if (!loan) throw DomainError.notFound('loan_id', 'loan');
  if (loan.status !== L.LOAN_STATUS_PENDING_DISBURSEMENT) return loanToProto(loan, shard.index);

  const [account, product] = await Promise.all([
    d.accounts.openLoanAccount(loan.id, loan.customer_id, loan.currency, deadline),
    d.products.get(loan.product_id, loan.product_version, deadline),
  ]);
  const terms = loanTermsOf(product);
  // Co-lending: each partner's part from its funding account into the loan's participation account
  // for it, linked with the disbursement (all or nothing).
  const partners = await Promise.all(
    (loan.partners ?? []).map(async (p) => ({
      ...p,
      participation_account_id: (
        await d.accounts.openParticipationAccount(
          loan.id,
          p.partner_id,
          loan.customer_id,
          loan.currency,
          PARTNER_CODES.participationAccount,
          deadline,
        )
      ).id,
    })),
  );
  const step = await d.accounts.transfer(
    [
      singlePhase({
        id: disbursementTransferId(loan.id),
        debitAccountId: account.id,
        creditAccountId: loan.disbursement_account_id,
        amount: loan.principal,
        code: CODES.disbursement,
        reference: `loan ${loan.id} disbursement`,
      }),
      ...disbursementLegs(loan.id, partners),
    ],
    deadline,
  );

  const recorded = await shard.db.transaction(async (tx) => {
    const row = await lockLoan(tx, loanId);
    if (!row || row.status !== L.LOAN_STATUS_PENDING_DISBURSEMENT) return false; // another caller finished it
    const now = new Date();
    if (step.kind === 'refused') {
      await tx('loans')
        .where('id', loanId)
        .update({
          status: L.LOAN_STATUS_DISBURSEMENT_REFUSED,
          refusal: step.reason,
          ledger_account_id: account.id,
          partners: JSON.stringify(partners),
          version: tx.raw('version + 1'),
          updated_at: now,
        });
    } else {
      const startDate = await readShardBusinessDate(tx);
      const schedule = scheduleFor(terms, row.principal, row.term_months, startDate, parseRate(row.annual_rate));
      await tx('loan_instalments').insert(
        schedule.periods.map((p) => ({
          loan_id: loanId,
          number: p.number,
          from_date: p.fromDate,
          due_date: p.dueDate,
          days: p.days,
          principal_due: p.principalDue,
          interest_due: p.interestDue,
          outstanding_after: p.outstandingAfter,
        })),
      );
      await tx('loans')
        .where('id', loanId)
        .update({
          status: L.LOAN_STATUS_ACTIVE,
          ledger_account_id: account.id,
          partners: JSON.stringify(partners),
          disbursed_on: startDate,
          instalment_amount: schedule.instalment ?? 0n,
          version: tx.raw('version + 1'),
          updated_at: now,
        });
    }
    const after = loanToProto((await findLoan(tx, loanId))!, shard.index);
    const subject = step.kind === 'ok' ? SUBJECTS.disbursed : SUBJECTS.disbursementRefused;
    await writeEvents(tx, [loanEvent(subject, after, now)]);
    return true;
  });
  // Counted once, by the caller whose transaction recorded the outcome (after its commit).
  if (recorded) {
    disbursements.inc({ outcome: step.kind === 'ok' ? 'disbursed' : 'refused' });
    if (step.kind === 'ok') disbursedMinorUnits.inc({ currency: loan.currency }, amountValue(loan.principal));
  }
  const after = loanToProto((await findLoan(shard.db, loanId))!, shard.index);
  d.log.info({ loan_id: loanId, status: L[after.status], refusal: after.refusal || undefined }, 'loan disbursement');
  return after;
}

/**
 * The disbursement as part of the call that approved it: a failure to reach a dependency leaves the
 * loan PENDING_DISBURSEMENT (returned as such) for a retry or the sweeper, never an error after the
 * approval was written.
 */
export async function disburseInCall(d: LoanDeps, loanId: string, deadline?: Date): Promise<Loan> {
  try {
    return await disburse(d, loanId, deadline);
  } catch (err) {
    d.log.warn({ err, loan_id: loanId }, 'disbursement not finished; it will be retried');
    const loan = await getLoan(d.router, loanId);
    if (!loan) throw err;
    if (loan.status === L.LOAN_STATUS_PENDING_DISBURSEMENT) disbursements.inc({ outcome: 'deferred' });
    return loan;
  }
}

/** Work a sweeper finishes: the ids of what is stale on a shard, and how to drive one. */
export interface SweepTask {
  name: string;
  stale(db: Knex, ageMs: number, limit: number): Promise<string[]>;
  drive(id: string): Promise<unknown>;
}

/**
 * Finishes what a call left half-done (a crash, a dependency down): every `intervalMs`, each task's
 * items that have waited longer than `ageMs` (disbursements, repayments) are driven to their end.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly router: ShardRouter,
    private readonly log: Logger,
    private readonly tasks: SweepTask[],
    private readonly intervalMs: number,
    private readonly ageMs: number,
  ) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    const tick = () => {
      if (this.stopped) return;
      this.running = this.sweep().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.timer = setTimeout(tick, this.intervalMs);
  }

  async sweep(): Promise<number> {
    let done = 0;
    for (const task of this.tasks) {
      for (const shard of this.router.shards) {
        let ids: string[];
        try {
          ids = await task.stale(shard.db, this.ageMs, 100);
          sweeperStale.set({ task: task.name, shard: String(shard.index) }, ids.length);
        } catch (err) {
          this.log.warn({ err, shard: shard.index, task: task.name }, 'sweep could not read its shard');
          continue;
        }
        for (const id of ids) {
          if (this.stopped) return done;
          try {
            await task.drive(id);
            done++;
            sweeperItems.inc({ task: task.name, outcome: 'done' });
          } catch (err) {
            sweeperItems.inc({ task: task.name, outcome: 'retry' });
            this.log.warn({ err, id, task: task.name }, 'sweep: not finished; retrying later');
          }
        }
      }
    }
    return done;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
