// Conversions between schedules and rows and the wire messages.
import type { Instalment, LoanSchedule } from '@corebank/kit/gen/corebank/v1/loan';
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
