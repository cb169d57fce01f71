// Prepayment: a repayment beyond the instalments due and the running instalment, under a product's
// prepayment strategy. Pure; amounts are bigint minor units.
//
// CONVENTIONS (Apache Fineract's interest recalculation with the rest frequency "same as repayment
// period", and its reschedule strategies "reduce number of installments" and "reduce EMI amount"):
//  1. The amount pays, by the product's waterfall, every instalment due on or before the day, then
//     the running instalment (the first one due after the day) in full as scheduled: a principal
//     reduction counts from the end of the period it is made in, so the running period's interest
//     is owed on the balance it started with.
//  2. What is left is prepaid principal. It is booked on the running instalment (its principal due
//     and paid both grow by it, so the schedule's principal still sums to the loan's), and the
//     instalments after it are recomputed on the principal left, on their existing due dates:
//     each period's interest = balance x the periodic rate of its actual days (day count, as the
//     schedule engine's periods after the first), rounded half-even to the minor unit.
//  3. REDUCE_TERM keeps the instalment (annuity) or the principal per period (equal principal);
//     the schedule ends when the balance is paid, the last instalment taking what is left, and the
//     instalments beyond it are removed. REDUCE_INSTALMENT keeps the number of instalments and
//     recomputes the annuity instalment (P' i / (1 - (1+i)^-m), priced as at disbursement, rounded
//     to the product's instalment multiple) or the principal per period (P' / m, half-even); the
//     last instalment takes the residue.
//  4. Principal grace still running (interest-only periods) stays interest-only.
import { divRoundHalfEven } from '@corebank/kit';
import { annuityInstalment, periodRate, pmtRate, type Period } from './schedule/index.js';
import type { RateBasis } from './schedule/periodic-rate.js';
import { daysBetween, parseDate } from './schedule/calendar.js';
import { mulRoundHalfEven } from './schedule/decimal.js';
import type { LoanTerms } from '@corebank/kit/gen/corebank/v1/product';
import type { InstalmentRow, LoanRow } from './proto.js';
import { parseRate } from './schedule/index.js';
import { dayCountOf, periodOf, scheduleTypeOf, type Strategy } from './terms.js';
import { allocate, outstanding, type Allocated, type Component, type Owed } from './waterfall.js';

export interface LaterPeriod {
  number: number;
  fromDate: string;
  dueDate: string;
}

export interface RescheduledPeriod extends LaterPeriod {
  days: number;
  principalDue: bigint;
  interestDue: bigint;
  outstandingAfter: bigint;
}

export interface RescheduleInput {
  strategy: Strategy;
  scheduleType: 'annuity' | 'equalPrincipal';
  basis: RateBasis;
  /** The principal left after the prepayment (>= 0). */
  opening: bigint;
  /** The instalments after the running one, their dates as scheduled, oldest first. */
  periods: readonly LaterPeriod[];
  /** REDUCE_TERM: the annuity's instalment or the principal per period of an equal-principal loan. */
  current: bigint;
  /** Of `periods`, how many at the start still repay no principal. */
  principalGrace: number;
  /** The product's instalment multiple (minor units); 1: none. */
  multiple: bigint;
}

export class PrepaymentError extends Error {}

/** The instalments after the running one, recomputed on `opening`; fewer than `periods` under REDUCE_TERM. */
export function reschedule(r: RescheduleInput): { periods: RescheduledPeriod[]; instalment?: bigint } {
  const m = r.periods.length;
  if (r.opening === 0n || m === 0) return { periods: [] };
  const grace = Math.min(r.principalGrace, m - 1);
  let instalment: bigint | undefined;
  let fixedPrincipal: bigint | undefined;
  if (r.scheduleType === 'annuity') {
    instalment =
      r.strategy === 'reduceTerm' ? r.current : annuityInstalment(r.opening, pmtRate(r.basis), m - grace, r.multiple);
  } else {
    fixedPrincipal = r.strategy === 'reduceTerm' ? r.current : divRoundHalfEven(r.opening, BigInt(m - grace));
  }
  const out: RescheduledPeriod[] = [];
  let balance = r.opening;
  for (let k = 0; k < m && balance > 0n; k++) {
    const p = r.periods[k]!;
    const days = daysBetween(parseDate(p.fromDate), parseDate(p.dueDate));
    const interest = mulRoundHalfEven(balance, periodRate(r.basis, days));
    let principal = k < grace ? 0n : instalment !== undefined ? instalment - interest : fixedPrincipal!;
    if (principal < 0n)
      throw new PrepaymentError(`instalment ${p.number}: the instalment would not cover its interest`);
    if (principal > balance || k === m - 1) principal = balance;
    balance -= principal;
    out.push({ ...p, days, principalDue: principal, interestDue: interest, outstandingAfter: balance });
  }
  return instalment === undefined ? { periods: out } : { periods: out, instalment };
}

export type { Period };

/** A prepayment that cannot be taken (the message says why). */
export class PrepaymentNotPossible extends Error {}

export interface PrepaymentPlan extends Allocated {
  /** The running instalment: the first due after the day; the prepaid principal is booked on it. */
  running: number;
  prepaid: bigint;
  /** Principal outstanding after the running instalment, once prepaid. */
  openingAfter: bigint;
  /** The instalments after the running one, recomputed (fewer under REDUCE_TERM). */
  periods: RescheduledPeriod[];
  /** The loan's instalment amount afterwards (an annuity's; unchanged otherwise). */
  instalment: bigint;
}

const owedOf = (i: InstalmentRow): Owed => ({
  number: i.number,
  due: { penalty: i.penalty_due, fee: i.fee_due, interest: i.interest_due, principal: i.principal_due },
  paid: { penalty: i.penalty_paid, fee: i.fee_paid, interest: i.interest_paid, principal: i.principal_paid },
});

/**
 * How `amount` is taken on `today` under a prepayment strategy: undefined when it does not go
 * beyond the running instalment (then the plain waterfall applies), else the allocation (due and
 * running instalments by `order`, then the prepaid principal on the running one) and the new
 * instalments after it.
 */
export function planPrepayment(x: {
  rows: readonly InstalmentRow[];
  today: string;
  amount: bigint;
  order: readonly Component[];
  strategy: Strategy;
  terms: LoanTerms;
  loan: Pick<LoanRow, 'annual_rate' | 'instalment_amount' | 'principal' | 'term_months'>;
}): PrepaymentPlan | undefined {
  const running = x.rows.find((i) => i.due_date > x.today);
  if (!running) return undefined; // every instalment is due: nothing to prepay ahead of
  const k = running.number;
  const through = x.rows.filter((i) => i.number <= k).map(owedOf);
  const owedThrough = outstanding(through);
  if (x.amount <= owedThrough) return undefined;
  const later = x.rows.filter((i) => i.number > k);
  if (later.some((i) => i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid > 0n)) {
    throw new PrepaymentNotPossible('an instalment after the running one is already paid in part');
  }
  const left = later.reduce((s, i) => s + i.principal_due, 0n);
  const prepaid = x.amount - owedThrough;
  if (prepaid > left)
    throw new PrepaymentNotPossible(`is more than the ${owedThrough + left} the schedule still holds`);
  if (x.terms.graceOnInterestPeriods > k) {
    throw new PrepaymentNotPossible('the loan is in its grace on interest; prepayments are taken after it');
  }
  const scheduleType = scheduleTypeOf(x.terms);
  const dayCount = dayCountOf(x.terms);
  if ((scheduleType !== 'annuity' && scheduleType !== 'equalPrincipal') || !dayCount) {
    throw new PrepaymentNotPossible('the product takes no prepayments of this schedule type');
  }
  const grace = x.terms.graceOnPrincipalPeriods;
  let periods: RescheduledPeriod[];
  let instalment: bigint | undefined;
  try {
    ({ periods, instalment } = reschedule({
      strategy: x.strategy,
      scheduleType,
      basis: {
        annualRate: parseRate(x.loan.annual_rate),
        period: periodOf(x.terms),
        dayCount,
        interestCalculationPeriod: 'daily',
      },
      opening: left - prepaid,
      periods: later.map((i) => ({ number: i.number, fromDate: i.from_date, dueDate: i.due_date })),
      current:
        scheduleType === 'annuity'
          ? x.loan.instalment_amount
          : divRoundHalfEven(x.loan.principal, BigInt(x.loan.term_months - grace)),
      principalGrace: Math.max(0, grace - k),
      multiple: x.terms.instalmentMultiple > 0n ? x.terms.instalmentMultiple : 1n,
    }));
  } catch (e) {
    if (e instanceof PrepaymentError) throw new PrepaymentNotPossible(e.message);
    throw e;
  }
  const { allocations, totals } =
    owedThrough > 0n ? allocate(through, owedThrough, x.order) : { allocations: [], totals: zero() };
  allocations.push({ instalment: k, component: 'principal', amount: prepaid });
  totals.principal += prepaid;
  return {
    allocations,
    totals,
    running: k,
    prepaid,
    openingAfter: left - prepaid,
    periods,
    instalment: instalment ?? x.loan.instalment_amount,
  };
}

const zero = (): Record<Component, bigint> => ({ penalty: 0n, fee: 0n, interest: 0n, principal: 0n });
