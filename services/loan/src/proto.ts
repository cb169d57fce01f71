// Conversions between schedules and rows and the wire messages.
import { toTimestamp } from '@corebank/kit';
import type {
  ApplicationState,
  DecisionReason,
  Instalment,
  LoanApplication,
  LoanSchedule,
} from '@corebank/kit/gen/corebank/v1/loan';
import type { Schedule } from './schedule/index.js';

/** A schedule as the engine built it (a preview, or the one fixed at disbursement), nothing paid. */
export function scheduleToProto(s: Schedule, currency: string, annualRate: string): LoanSchedule {
  return {
    currency,
    annualRate,
    instalments: s.periods.map((p): Instalment => ({
      number: p.number,
      fromDate: p.fromDate,
      dueDate: p.dueDate,
      days: p.days,
      principalDue: p.principalDue,
      interestDue: p.interestDue,
      feeDue: 0n,
      penaltyDue: 0n,
      totalDue: p.totalDue,
      outstandingAfter: p.outstandingAfter,
      principalPaid: 0n,
      interestPaid: 0n,
      feePaid: 0n,
      penaltyPaid: 0n,
    })),
    totalPrincipal: s.totals.principal,
    totalInterest: s.totals.interest,
    totalDue: s.totals.total,
    instalmentAmount: s.instalment ?? 0n,
  };
}

export interface ApplicationRow {
  id: string;
  customer_id: string;
  channel: string;
  idempotency_key: string;
  body_hash: string;
  product_id: string;
  product_version: number;
  currency: string;
  amount: bigint;
  term_months: number;
  disbursement_account_id: string;
  repayment_account_id: string;
  monthly_income: bigint;
  state: ApplicationState;
  score: number;
  reasons: DecisionReason[];
  approved_amount: bigint;
  annual_rate: string;
  loan_id: string | null;
  decided_by: string;
  decision_note: string;
  created_at: Date;
  decided_at: Date | null;
}

export function applicationToProto(r: ApplicationRow, shard: number): LoanApplication {
  return {
    id: r.id,
    customerId: r.customer_id,
    productId: r.product_id,
    productVersion: r.product_version,
    currency: r.currency,
    amount: r.amount,
    termMonths: r.term_months,
    disbursementAccountId: r.disbursement_account_id,
    repaymentAccountId: r.repayment_account_id,
    declaredMonthlyIncome: r.monthly_income,
    state: r.state,
    score: r.score,
    reasons: r.reasons.map((x) => ({ code: x.code, points: x.points, detail: x.detail })),
    approvedAmount: r.approved_amount,
    annualRate: r.annual_rate,
    loanId: r.loan_id ?? '',
    decidedBy: r.decided_by,
    decisionNote: r.decision_note,
    createdAt: toTimestamp(r.created_at),
    ...(r.decided_at ? { decidedAt: toTimestamp(r.decided_at) } : {}),
    shard,
  };
}
