// Conversions between schedules and rows and the wire messages.
import { hashedUuid, toTimestamp } from '@corebank/kit';
import {
  RepaymentComponent,
  type ApplicationState,
  type DecisionReason,
  type Instalment,
  type Loan,
  type LoanApplication,
  type LoanSchedule,
  type LoanStatus,
  type Repayment,
  type RepaymentKind,
  type RepaymentStatus,
} from '@corebank/kit/gen/corebank/v1/loan';
import type { Component } from './waterfall.js';
import {
  decisionsToProto,
  loanPartnersToProto,
  splitsToProto,
  type LoanPartnerRow,
  type PartnerDecisionRow,
  type PartnerSplitRow,
} from './colending.js';
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
    scheduleVersion: 0,
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
  /** Co-lending: each partner's decision (src/colending.ts). */
  partner_decisions?: PartnerDecisionRow[];
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
    partnerDecisions: decisionsToProto(r.partner_decisions),
  };
}

export interface LoanRow {
  id: string;
  application_id: string;
  customer_id: string;
  product_id: string;
  product_version: number;
  currency: string;
  principal: bigint;
  annual_rate: string;
  term_months: number;
  status: LoanStatus;
  disbursement_account_id: string;
  repayment_account_id: string;
  ledger_account_id: string | null;
  disbursed_on: string | null;
  instalment_amount: bigint;
  refusal: string;
  version: bigint;
  created_at: Date;
  updated_at: Date;
  /** Delinquency and the day's accounting (migration 010; see day.ts, writeoff.ts). */
  days_past_due?: number;
  delinquency_bucket?: number;
  non_performing?: boolean;
  delinquency_as_of?: string | null;
  interest_receivable?: bigint;
  written_off_on?: string | null;
  written_off_principal?: bigint;
  recovered?: bigint;
  /** 1 at disbursement, +1 on every reschedule (see prepayment.ts). */
  schedule_version: number;
  /** Co-lending: the partners' shares (src/colending.ts). */
  partners?: LoanPartnerRow[];
}

/** A loan row with its totals over its instalments (see LOAN_SELECT). */
export interface LoanWithTotals extends LoanRow {
  principal_outstanding: bigint;
  interest_outstanding: bigint;
  fees_outstanding: bigint;
  penalties_outstanding: bigint;
  total_paid: bigint;
}

export interface InstalmentRow {
  loan_id: string;
  number: number;
  from_date: string;
  due_date: string;
  days: number;
  principal_due: bigint;
  interest_due: bigint;
  fee_due: bigint;
  penalty_due: bigint;
  outstanding_after: bigint;
  principal_paid: bigint;
  interest_paid: bigint;
  fee_paid: bigint;
  penalty_paid: bigint;
}

export const disbursementTransferId = (loanId: string): string => hashedUuid(loanId, 'disbursement');

export function loanToProto(r: LoanWithTotals, shard: number): Loan {
  const outstanding = r.principal_outstanding + r.interest_outstanding + r.fees_outstanding + r.penalties_outstanding;
  return {
    id: r.id,
    applicationId: r.application_id,
    customerId: r.customer_id,
    productId: r.product_id,
    productVersion: r.product_version,
    currency: r.currency,
    principal: r.principal,
    annualRate: r.annual_rate,
    termMonths: r.term_months,
    status: r.status,
    disbursementAccountId: r.disbursement_account_id,
    repaymentAccountId: r.repayment_account_id,
    ledgerAccountId: r.ledger_account_id ?? '',
    disbursementTransferId: disbursementTransferId(r.id),
    disbursedOn: r.disbursed_on ?? '',
    principalOutstanding: r.principal_outstanding,
    interestOutstanding: r.interest_outstanding,
    feesOutstanding: r.fees_outstanding,
    penaltiesOutstanding: r.penalties_outstanding,
    totalOutstanding: outstanding,
    totalPaid: r.total_paid,
    refusal: r.refusal,
    createdAt: toTimestamp(r.created_at),
    updatedAt: toTimestamp(r.updated_at),
    shard,
    daysPastDue: r.days_past_due ?? 0,
    delinquencyBucket: r.delinquency_bucket ?? 0,
    nonPerforming: r.non_performing ?? false,
    delinquencyAsOf: r.delinquency_as_of ?? '',
    interestReceivable: r.interest_receivable ?? 0n,
    writtenOffOn: r.written_off_on ?? '',
    writtenOffPrincipal: r.written_off_principal ?? 0n,
    recovered: r.recovered ?? 0n,
    scheduleVersion: r.schedule_version,
    partners: loanPartnersToProto(r.id, r.partners),
  };
}

/** The fixed schedule with what has been paid on each instalment. */
export function instalmentsToProto(loan: LoanRow, rows: InstalmentRow[]): LoanSchedule {
  const instalments = rows.map((i): Instalment => ({
    number: i.number,
    fromDate: i.from_date,
    dueDate: i.due_date,
    days: i.days,
    principalDue: i.principal_due,
    interestDue: i.interest_due,
    feeDue: i.fee_due,
    penaltyDue: i.penalty_due,
    totalDue: i.principal_due + i.interest_due + i.fee_due + i.penalty_due,
    outstandingAfter: i.outstanding_after,
    principalPaid: i.principal_paid,
    interestPaid: i.interest_paid,
    feePaid: i.fee_paid,
    penaltyPaid: i.penalty_paid,
  }));
  const sum = (f: (i: Instalment) => bigint) => instalments.reduce((s, i) => s + f(i), 0n);
  return {
    currency: loan.currency,
    annualRate: loan.annual_rate,
    instalments,
    totalPrincipal: sum((i) => i.principalDue),
    totalInterest: sum((i) => i.interestDue),
    totalDue: sum((i) => i.totalDue),
    instalmentAmount: loan.instalment_amount,
    scheduleVersion: loan.schedule_version,
  };
}

export interface RepaymentRow {
  id: string;
  loan_id: string;
  idempotency_key: string;
  body_hash: string;
  from_account_id: string;
  income_account_id: string;
  amount: bigint;
  principal: bigint;
  interest: bigint;
  fees: bigint;
  penalties: bigint;
  /** [instalment, component, amount as a decimal string] */
  allocations: [number, Component, string][];
  status: RepaymentStatus;
  refusal: string;
  kind: RepaymentKind;
  /** A payoff's waived interest: [instalment, amount as a decimal string]. */
  waivers: [number, string][];
  created_at: Date;
  updated_at: Date;
  /** Of interest, the part already accrued: credited to receivable_account_id (migration 010). */
  interest_receivable: bigint;
  /** LOAN_INTEREST_RECEIVABLE and LOAN_PENALTY_RECEIVABLE; null on repayments made before 010. */
  receivable_account_id: string | null;
  penalty_account_id: string | null;
  /** The business date it belongs to (a COLLECTION: the day it was taken for); null before it was kept. */
  business_date: string | null;
  /** Principal prepaid beyond the running instalment (see prepayment.ts); 0: none. */
  prepaid_principal: bigint;
  /** The schedule version the prepayment made; 0: none. */
  schedule_version: number;
  /** Co-lending: each partner's part (src/colending.ts). */
  partner_splits?: PartnerSplitRow[];
}

export const repaymentTransferIds = (repaymentId: string) => ({
  principal: hashedUuid(repaymentId, 'principal'),
  income: hashedUuid(repaymentId, 'income'),
  receivable: hashedUuid(repaymentId, 'receivable'),
  penalty: hashedUuid(repaymentId, 'penalty'),
});

/**
 * What a repayment credits where. Interest: the already accrued part (interest_receivable) to
 * LOAN_INTEREST_RECEIVABLE, the rest with fees to the income account; penalties (always accrued
 * first, by RunLoanDay) to LOAN_PENALTY_RECEIVABLE. A repayment recorded before migration 010 (no
 * receivable accounts) credits all of interest, fees and penalties to income, as it did then.
 */
export function repaymentParts(r: RepaymentRow) {
  const split = r.receivable_account_id !== null && r.penalty_account_id !== null;
  const receivable = split ? r.interest_receivable : 0n;
  const penalty = split ? r.penalties : 0n;
  return { receivable, penalty, income: r.interest + r.fees + r.penalties - receivable - penalty };
}

const COMPONENTS: Record<Component, RepaymentComponent> = {
  penalty: RepaymentComponent.REPAYMENT_COMPONENT_PENALTY,
  fee: RepaymentComponent.REPAYMENT_COMPONENT_FEE,
  interest: RepaymentComponent.REPAYMENT_COMPONENT_INTEREST,
  principal: RepaymentComponent.REPAYMENT_COMPONENT_PRINCIPAL,
};

export function repaymentToProto(r: RepaymentRow): Repayment {
  const ids = repaymentTransferIds(r.id);
  return {
    id: r.id,
    loanId: r.loan_id,
    amount: r.amount,
    fromAccountId: r.from_account_id,
    status: r.status,
    refusal: r.refusal,
    principal: r.principal,
    interest: r.interest,
    fees: r.fees,
    penalties: r.penalties,
    allocations: r.allocations.map(([instalment, c, amount]) => ({
      instalment,
      component: COMPONENTS[c],
      amount: BigInt(amount),
    })),
    principalTransferId: r.principal > 0n ? ids.principal : '',
    incomeTransferId: repaymentParts(r).income > 0n ? ids.income : '',
    createdAt: toTimestamp(r.created_at),
    updatedAt: toTimestamp(r.updated_at),
    kind: r.kind,
    interestWaived: r.waivers.reduce((s, [, amount]) => s + BigInt(amount), 0n),
    interestFromReceivable: repaymentParts(r).receivable,
    prepaidPrincipal: r.prepaid_principal,
    scheduleVersion: r.schedule_version,
    partnerSplits: splitsToProto(r.id, r.partner_splits),
  };
}
