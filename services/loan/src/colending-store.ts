// Co-lending SQL on a loan's shard: a repayment's partner splits (under the loan's row lock), and
// what a partner's statement reads.
import type { Knex } from 'knex';
import { LoanStatus, RepaymentStatus } from '@corebank/kit/gen/corebank/v1/loan';
import { collectedBy, splitRepayment, type LoanPartnerRow, type PartnerSplitRow } from './colending.js';

/**
 * The partner splits of a repayment being recorded: call after its allocation is applied to the
 * instalments, before it is inserted, with the loan's row locked.
 */
export async function repaymentSplits(
  tx: Knex.Transaction,
  loan: { id: string; partners?: LoanPartnerRow[] },
  totals: { principal: bigint; interest: bigint },
  feeAccountId: string,
): Promise<PartnerSplitRow[]> {
  const partners = loan.partners ?? [];
  if (!partners.length) return [];
  const { rows } = (await tx.raw(
    `select coalesce(sum(principal_paid), 0)::bigint as principal, coalesce(sum(interest_paid), 0)::bigint as interest
       from loan_instalments where loan_id = ?`,
    [loan.id],
  )) as { rows: { principal: bigint; interest: bigint }[] };
  const earlier = (await tx('loan_repayments')
    .select('partner_splits')
    .where('loan_id', loan.id)
    .whereNot('status', RepaymentStatus.REPAYMENT_STATUS_REFUSED)) as { partner_splits: PartnerSplitRow[] }[];
  return splitRepayment(partners, totals, rows[0]!, collectedBy(earlier.map((e) => e.partner_splits)), feeAccountId);
}

export interface StatementLoanRow {
  id: string;
  currency: string;
  disbursed_on: string;
  partners: LoanPartnerRow[];
}

export interface StatementRepaymentRow {
  id: string;
  loan_id: string;
  partner_splits: PartnerSplitRow[];
}

/**
 * A partner's disbursed loans on a shard, and their repayments APPLIED in [from, to] (the UTC date
 * of their last change, which is when they were applied).
 */
export async function partnerActivity(db: Knex, partnerId: string, from: string, to: string) {
  const loans = (await db('loans')
    .select('id', 'currency', db.raw('disbursed_on::text as disbursed_on'), 'partners')
    .whereRaw('partners @> ?::jsonb', [JSON.stringify([{ partner_id: partnerId }])])
    .whereNotNull('disbursed_on')
    .whereNot('status', LoanStatus.LOAN_STATUS_DISBURSEMENT_REFUSED)
    .orderBy('created_at')) as StatementLoanRow[];
  const repayments = loans.length
    ? ((await db('loan_repayments')
        .select('id', 'loan_id', 'partner_splits')
        .whereIn(
          'loan_id',
          loans.map((l) => l.id),
        )
        .where('status', RepaymentStatus.REPAYMENT_STATUS_APPLIED)
        // The business date it belongs to (repayments recorded before it was kept: the UTC day).
        .whereRaw(`coalesce(business_date, (updated_at at time zone 'utc')::date) between ?::date and ?::date`, [
          from,
          to,
        ])
        .orderBy('created_at')) as StatementRepaymentRow[])
    : [];
  return { loans, repayments };
}
