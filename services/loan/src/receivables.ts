// Where a repayment's money goes once interest and penalties accrue day by day (RunLoanDay, day.ts).
//
// Each loan keeps two counters beside its schedule, changed only under its row lock:
//   interest_receivable: interest accrued (debit LOAN_INTEREST_RECEIVABLE, credit income) and not
//     yet collected;
//   interest_prepaid:    interest collected before it accrued (credited to LOAN_INTEREST_INCOME when
//     paid, as before accruals existed).
// At most one of them is non-zero. A repayment's interest I takes r = min(I, interest_receivable)
// from the receivable (credited to LOAN_INTEREST_RECEIVABLE) and the rest I - r is prepaid (credited
// to income); a day's accrual a first uses up the prepaid p = min(a, interest_prepaid) (income
// already booked: no GL again) and books a - p to the receivable. So the receivable never goes
// negative and income is never booked twice. Penalties exist only once accrued, so a repayment's
// penalties all go to LOAN_PENALTY_RECEIVABLE.
import type { Knex } from 'knex';
import { DomainError } from '@corebank/kit';
import { SystemAccountKind as G, type Transfer } from '@corebank/kit/gen/corebank/v1/account';
import { RepaymentKind as K, RepaymentStatus as S } from '@corebank/kit/gen/corebank/v1/loan';
import { CODES, singlePhase, type Accounts } from './clients/accounts.js';
import { repaymentParts, repaymentTransferIds, type LoanRow, type RepaymentRow } from './proto.js';
import { REPAYMENT_COLUMNS } from './store.js';

/** The GL accounts a repayment from an account on `shard` credits. */
export async function glAccounts(a: Accounts, shard: number, currency: string, recovery: boolean, deadline?: Date) {
  if (recovery) {
    return {
      income: await a.system(G.SYSTEM_ACCOUNT_KIND_LOAN_RECOVERY_INCOME, shard, currency, deadline),
      receivable: null,
      penalty: null,
    };
  }
  const [income, receivable, penalty] = await Promise.all([
    a.interestIncome(shard, currency, deadline),
    a.system(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE, shard, currency, deadline),
    a.system(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_RECEIVABLE, shard, currency, deadline),
  ]);
  return { income, receivable, penalty };
}

/** A repayment allocates `interest` (under the loan's lock): returns the part taken from the receivable. */
export async function takeInterest(tx: Knex.Transaction, loanId: string, interest: bigint): Promise<bigint> {
  if (interest <= 0n) return 0n;
  const { rows } = (await tx.raw(
    `update loans l set interest_receivable = l.interest_receivable - x.r,
            interest_prepaid = l.interest_prepaid + (?::bigint - x.r)
       from (select least(interest_receivable, ?::bigint) as r from loans where id = ?) x
      where l.id = ? returning x.r::bigint as r`,
    [String(interest), String(interest), loanId, loanId],
  )) as { rows: { r: bigint }[] };
  return BigInt(rows[0]!.r);
}

/**
 * A refused repayment gives its interest back: the receivable part to the receivable, the prepaid
 * part out of interest_prepaid (at most what is left of it: a day's accrual may have used some up
 * meanwhile; what it used is put back on the receivable, which the GL then lacks by that much, a
 * window of one ledger call; stated, not hidden). Recoveries give back their amount.
 */
export async function giveBack(tx: Knex.Transaction, r: RepaymentRow): Promise<void> {
  if (r.kind === K.REPAYMENT_KIND_RECOVERY) {
    await tx('loans')
      .where('id', r.loan_id)
      .update({ recovered: tx.raw('recovered - ?::bigint', [String(r.amount)]) });
    return;
  }
  if (r.interest <= 0n) return;
  const prepaid = r.interest - r.interest_receivable;
  await tx.raw(
    `update loans set interest_receivable = interest_receivable + ?::bigint,
            interest_prepaid = greatest(interest_prepaid - ?::bigint, 0)
      where id = ?`,
    [String(r.interest_receivable), String(prepaid), r.loan_id],
  );
}

/** A repayment on a WRITTEN_OFF loan (under its lock): all of it LOAN_RECOVERY_INCOME, at most what was written off. */
export async function recordRecovery(
  tx: Knex.Transaction,
  loan: LoanRow,
  p: { id: string; key: string; hash: string; from: string; income: string; amount: bigint },
): Promise<RepaymentRow> {
  const { rows } = (await tx.raw(
    `select written_off_principal + written_off_interest + written_off_penalties - recovered as left from loans where id = ?`,
    [loan.id],
  )) as { rows: { left: string }[] };
  const left = BigInt(rows[0]!.left);
  if (p.amount > left) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'REPAYMENT_EXCEEDS_OUTSTANDING',
      `amount: is more than the ${left} still to recover`,
      [{ field: 'amount', description: 'is more than what is still to recover' }],
      { outstanding: String(left) },
    );
  }
  const now = new Date();
  await tx('loans')
    .where('id', loan.id)
    .update({ recovered: tx.raw('recovered + ?::bigint', [String(p.amount)]), updated_at: now });
  const [row] = (await tx('loan_repayments')
    .insert({
      id: p.id,
      loan_id: loan.id,
      idempotency_key: p.key,
      body_hash: p.hash,
      from_account_id: p.from,
      income_account_id: p.income,
      amount: p.amount,
      principal: 0n,
      interest: 0n,
      fees: 0n,
      penalties: 0n,
      allocations: '[]',
      status: S.REPAYMENT_STATUS_PENDING,
      refusal: '',
      kind: K.REPAYMENT_KIND_RECOVERY,
      waivers: '[]',
      created_at: now,
      updated_at: now,
    })
    .returning(tx.raw(REPAYMENT_COLUMNS))) as RepaymentRow[];
  return row!;
}

/** A repayment's ledger transfers (one linked chain; ids derived from the repayment id). */
export function repaymentTransfers(r: RepaymentRow, loanLedgerAccountId: string): Transfer[] {
  const ids = repaymentTransferIds(r.id);
  const transfer = (id: string, credit: string, amount: bigint, code: number): Transfer =>
    singlePhase({
      id,
      debitAccountId: r.from_account_id,
      creditAccountId: credit,
      amount,
      code,
      reference: `loan ${r.loan_id} repayment ${r.id}`,
      // A collection belongs to the day the close of business collected it for.
      businessDate: r.kind === K.REPAYMENT_KIND_COLLECTION ? (r.business_date ?? undefined) : undefined,
    });
  if (r.kind === K.REPAYMENT_KIND_RECOVERY)
    return [transfer(ids.income, r.income_account_id, r.amount, CODES.recovery)];
  const parts = repaymentParts(r);
  const out: Transfer[] = [];
  if (r.principal > 0n) out.push(transfer(ids.principal, loanLedgerAccountId, r.principal, CODES.repaymentPrincipal));
  if (parts.receivable > 0n) {
    out.push(transfer(ids.receivable, r.receivable_account_id!, parts.receivable, CODES.repaymentReceivable));
  }
  if (parts.penalty > 0n) out.push(transfer(ids.penalty, r.penalty_account_id!, parts.penalty, CODES.repaymentPenalty));
  if (parts.income > 0n) out.push(transfer(ids.income, r.income_account_id, parts.income, CODES.repaymentInterest));
  return out;
}
