// What it takes to close a loan as of a date: all principal outstanding; the unpaid interest,
// fees and penalties of every instalment due on or before that date; and the interest accrued so
// far in the period running on that date: the period's scheduled interest times the calendar days
// elapsed over the period's days, rounded half-even to the minor unit (straight-line within the
// period, so it reaches the scheduled interest on the due date), less what was paid of it. Later
// periods owe no interest. Interest paid ahead of its accrual is not refunded. Pure.
import { divRoundHalfEven } from '@corebank/kit';
import type { InstalmentRow } from './proto.js';
import { compareDates, daysBetween, parseDate } from './schedule/calendar.js';

export interface PayoffQuote {
  principal: bigint;
  interest: bigint;
  fees: bigint;
  penalties: bigint;
  total: bigint;
}

export function payoffQuote(rows: readonly InstalmentRow[], asOf: string): PayoffQuote {
  const day = parseDate(asOf);
  const q = { principal: 0n, interest: 0n, fees: 0n, penalties: 0n };
  for (const i of rows) {
    q.principal += i.principal_due - i.principal_paid;
    const from = parseDate(i.from_date);
    const due = parseDate(i.due_date);
    if (compareDates(due, day) <= 0) {
      q.interest += i.interest_due - i.interest_paid;
      q.fees += i.fee_due - i.fee_paid;
      q.penalties += i.penalty_due - i.penalty_paid;
    } else if (compareDates(from, day) < 0) {
      const accrued = divRoundHalfEven(i.interest_due * BigInt(daysBetween(from, day)), BigInt(daysBetween(from, due)));
      if (accrued > i.interest_paid) q.interest += accrued - i.interest_paid;
    }
  }
  return { ...q, total: q.principal + q.interest + q.fees + q.penalties };
}

/**
 * The interest a payoff on `asOf` waives, per instalment: of the running period, what its schedule
 * holds beyond the interest accrued (or paid, if more); of later periods, all of it not yet paid.
 * With these taken off the interest due, what the loan owes is payoffQuote(rows, asOf).total.
 */
export function payoffWaivers(rows: readonly InstalmentRow[], asOf: string): [number, bigint][] {
  const day = parseDate(asOf);
  const out: [number, bigint][] = [];
  for (const i of rows) {
    const from = parseDate(i.from_date);
    const due = parseDate(i.due_date);
    if (compareDates(due, day) <= 0) continue;
    let keep = i.interest_paid;
    if (compareDates(from, day) < 0) {
      const accrued = divRoundHalfEven(i.interest_due * BigInt(daysBetween(from, day)), BigInt(daysBetween(from, due)));
      if (accrued > keep) keep = accrued;
    }
    if (i.interest_due > keep) out.push([i.number, i.interest_due - keep]);
  }
  return out;
}
