// buildSchedule: a loan's repayment schedule, equal to Apache Fineract's for the same parameters.
//
// CONVENTIONS (each with the Fineract class and method it comes from; fineract-loan module,
// org.apache.fineract.portfolio.loanaccount.loanschedule.domain unless stated):
//
//  1. Money is bigint minor units; rates are exact decimals. Fineract rounds every rate operation to 12 significant
//     digits HALF_EVEN (MoneyHelper.getMathContext(), PRECISION = 12; rounding-mode configuration 6 = HALF_EVEN):
//     decimal.ts emulates that exactly; there is no float anywhere.
//  2. Periodic rate (LoanApplicationTerms.periodicInterestRate, calculatePeriodsInOneYear): daily method:
//     (annual / daysInYear) / 100 * days; 30/360 counts 30 days a month. Same-as-repayment method: (annual / 12 or
//     52) / 100. See periodic-rate.ts and day-count.ts.
//  3. Interest of a period = outstanding principal * periodic rate, rounded HALF_EVEN to the minor unit:
//     calculateDecliningInterestDueForInstallmentBeforeApplyingGrace -> Money.multiplyRetainScale. This is the one
//     rounding point of interest; nothing is rounded twice.
//  4. First period: its interest runs from the "ideal disbursement date" (first due date minus one period), not from
//     the disbursement date: AbstractCumulativeLoanScheduleGenerator.calculateInterestStartDateForPeriod with the
//     default configuration interest-charged-from-date-same-as-disbursal-date = false. So the first period always
//     bears a whole period's interest, however long or short it is. (interestDays in the output says so.)
//  5. Annuity instalment (LoanApplicationTerms.pmtForInstallment -> paymentPerPeriod -> FinanicalFunctions.pmt):
//     P * i / (1 - (1+i)^-(n - principal grace)), i priced on a standard period (30 days a month, 7 a week; see
//     periodic-rate.ts), computed once for the whole loan
//     (AbstractCumulativeLoanScheduleGenerator.updateFixedInstallmentAmount), rounded HALF_EVEN to the instalment
//     multiple if any (Money.roundToMultiplesOf) and then to the minor unit. Principal of a period = instalment -
//     that period's own interest (calculatePrincipalDueForInstallment). Fineract refuses a period whose interest
//     exceeds the instalment ("EMI amount must be greater than"); so do we.
//  6. Equal principal: P / (n - principal grace) rounded HALF_EVEN to the minor unit
//     (LoanApplicationTerms.updateFixedPrincipalAmount / calculateEqualPrincipalDueForInstallment). The instalment
//     multiple does not apply (Fineract applies it to annuities and flat loans only).
//  7. Flat (CumulativeFlatInterestLoanScheduleGenerator, calculateTotalInterestCharged,
//     calculateTotalFlatInterestForInstallmentAveragingOutGracePeriods, calculateTotalPrincipalPerPeriodWithoutGrace):
//     total = P * flat term rate (daily: days from disbursement to the last due date), rounded to the minor unit;
//     per instalment w/o grace g = round(total / n); waived grace lowers the total by g per waived period; the interest
//     of each interest-bearing period = round(total / (n - deferred grace - waived grace)); principal of a period =
//     round(P / (n - principal grace)). With a multiple m: principal = roundm(principal) + roundm(interest) - interest,
//     so principal + interest is a multiple of m.
//  8. Grace on principal: periods 1..g repay no principal (LoanApplicationTerms.periodNumbersApplicableForPrincipalGrace).
//     Grace on interest, deferred ("grace on interest payment"): declining balance charges the interest in the grace
//     periods, carries it forward and collects it with the first interest-bearing instalment
//     (LoanApplicationTerms.calculateTotalInterestForPeriod; CumulativeDecliningBalanceInterestLoanScheduleGenerator
//     takes principal = instalment - that period's own interest, so the carried interest adds to that instalment);
//     whatever is still carried at the end goes to the last instalment (end of
//     AbstractCumulativeLoanScheduleGenerator.generate). Waived ("grace on interest charged", isInterestFreeGracePeriod):
//     no interest for those periods, never recovered.
//  9. The last period takes the residue: principal = what is still outstanding
//     (LoanApplicationTerms.adjustPrincipalIfLastRepaymentPeriod), flat interest = total interest - interest so far
//     (adjustInterestIfLastRepaymentPeriod). Principal that would overshoot earlier is cut to what is outstanding and
//     the schedule ends there (the generator loops while outstanding is not zero). Hence sum of principal == P exactly.
// 10. Due dates: calendar.ts (DefaultScheduledDateGenerator + CalendarUtils.adjustDate). No holidays, no working days.
import { divRoundHalfEven } from '@corebank/kit';
import type { YMD } from './calendar.js';
import { addPeriods, compareDates, daysBetween, dueDates, formatDate, parseDate } from './calendar.js';
import { mulRoundHalfEven } from './decimal.js';
import { DAY_COUNTS } from './day-count.js';
import { annuityInstalment } from './annuity.js';
import type { RateBasis } from './periodic-rate.js';
import { flatTermRate, periodRate, pmtRate } from './periodic-rate.js';
import { roundToMultipleHalfEven } from './rounding.js';
import type { Schedule, SchedulePeriod, ScheduleTerms } from './types.js';
import { SCHEDULE_TYPES } from './types.js';

/** A schedule that cannot be built: `field` names the term at fault. */
export class ScheduleError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const MAX_MINOR = 2n ** 63n - 1n;
const MAX_PERIODS = 1200;

interface Plan {
  readonly terms: ScheduleTerms;
  readonly basis: RateBasis;
  readonly n: number;
  readonly principalGrace: number;
  readonly deferredGrace: number;
  readonly waivedGrace: number;
  readonly multiple: bigint | undefined;
  readonly start: YMD;
  readonly dates: YMD[];
  /** Interest of period 1 runs from here: first due date minus one period. */
  readonly idealStart: YMD;
}

function nonNegativeInt(field: string, value: number | undefined): number {
  const v = value ?? 0;
  if (!Number.isInteger(v) || v < 0) throw new ScheduleError(field, 'must be a whole number >= 0');
  return v;
}

function plan(terms: ScheduleTerms): Plan {
  if (typeof terms.principal !== 'bigint' || terms.principal <= 0n || terms.principal > MAX_MINOR) {
    throw new ScheduleError('principal', 'must be a positive int64 of minor units');
  }
  if (!Number.isInteger(terms.currencyDigits) || terms.currencyDigits < 0 || terms.currencyDigits > 4) {
    throw new ScheduleError('currencyDigits', 'must be 0 to 4');
  }
  if (!SCHEDULE_TYPES.includes(terms.scheduleType)) throw new ScheduleError('scheduleType', 'unknown');
  if (terms.period !== 'monthly' && terms.period !== 'weekly') throw new ScheduleError('period', 'monthly or weekly');
  if (!DAY_COUNTS.includes(terms.dayCount)) throw new ScheduleError('dayCount', 'unknown');
  const method = terms.interestCalculationPeriod ?? 'daily';
  if (method !== 'daily' && method !== 'sameAsRepaymentPeriod') {
    throw new ScheduleError('interestCalculationPeriod', 'daily or sameAsRepaymentPeriod');
  }
  const n = terms.numberOfPeriods;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PERIODS)
    throw new ScheduleError('numberOfPeriods', `1 to ${MAX_PERIODS}`);
  let principalGrace = nonNegativeInt('graceOnPrincipalPeriods', terms.graceOnPrincipalPeriods);
  if (terms.scheduleType === 'bullet') {
    if (principalGrace !== 0)
      throw new ScheduleError('graceOnPrincipalPeriods', 'a bullet loan has no principal grace');
    principalGrace = n - 1;
  }
  if (principalGrace >= n) throw new ScheduleError('graceOnPrincipalPeriods', 'must be less than numberOfPeriods');
  const interestGrace = nonNegativeInt('graceOnInterestPeriods', terms.graceOnInterestPeriods);
  if (interestGrace >= n) throw new ScheduleError('graceOnInterestPeriods', 'must be less than numberOfPeriods');
  const kind = terms.graceOnInterestKind ?? 'deferred';
  if (kind !== 'deferred' && kind !== 'waived') throw new ScheduleError('graceOnInterestKind', 'deferred or waived');
  const multiple = terms.instalmentMultiple;
  if (multiple !== undefined && (typeof multiple !== 'bigint' || multiple <= 0n || multiple > MAX_MINOR)) {
    throw new ScheduleError('instalmentMultiple', 'must be a positive number of minor units');
  }
  let start: YMD;
  let firstDue: YMD | undefined;
  try {
    start = parseDate(terms.startDate);
  } catch (e) {
    throw new ScheduleError('startDate', (e as Error).message);
  }
  if (terms.firstDueDate !== undefined) {
    try {
      firstDue = parseDate(terms.firstDueDate);
    } catch (e) {
      throw new ScheduleError('firstDueDate', (e as Error).message);
    }
    if (compareDates(firstDue, start) <= 0) throw new ScheduleError('firstDueDate', 'must be after startDate');
  }
  const dates = dueDates(start, terms.period, n, firstDue);
  const first = dates[0] as YMD;
  return {
    terms,
    basis: {
      annualRate: terms.annualRate,
      period: terms.period,
      dayCount: terms.dayCount,
      interestCalculationPeriod: method,
    },
    n,
    principalGrace,
    deferredGrace: kind === 'deferred' ? interestGrace : 0,
    waivedGrace: kind === 'waived' ? interestGrace : 0,
    multiple,
    start,
    dates,
    idealStart: addPeriods(first, terms.period, -1),
  };
}

/** One period's principal and interest before the last-period adjustments, plus the interest carried forward. */
interface Portion {
  principal: bigint;
  interest: bigint;
  carried: bigint;
}

/** The engine's running state, period to period. */
interface Running {
  outstanding: bigint;
  principalSoFar: bigint;
  interestSoFar: bigint;
  /** Interest charged in deferred-grace periods and not yet collected (Fineract: interestPaymentDueToGrace). */
  carried: bigint;
}

function decliningPortion(
  p: Plan,
  k: number,
  state: Running,
  interestDays: number,
  instalment: bigint | undefined,
  fixedPrincipal: bigint | undefined,
): Portion {
  // calculateTotalInterestForPeriod, DECLINING_BALANCE branch.
  const own = mulRoundHalfEven(state.outstanding, periodRate(p.basis, interestDays));
  const waived = k <= p.waivedGrace;
  const afterGrace = k <= p.deferredGrace || waived ? 0n : own;
  let interest: bigint;
  let carried = state.carried;
  if (afterGrace > 0n) {
    interest = state.carried + afterGrace;
    carried = 0n;
  } else if (waived) {
    interest = 0n;
  } else {
    interest = 0n;
    carried = state.carried + own;
  }
  // CumulativeDecliningBalanceInterestLoanScheduleGenerator: principal is priced against this period's own interest.
  const ownInterest = interest > 0n ? interest - state.carried : carried - state.carried;
  let principal: bigint;
  if (k <= p.principalGrace) principal = 0n;
  else if (instalment !== undefined) principal = instalment - ownInterest;
  else principal = fixedPrincipal as bigint;
  if (instalment !== undefined && instalment < interest) {
    // Fineract refuses this too ("EMI amount must be greater than ..."): the instalment would not cover the interest,
    // because interest was carried through a deferred grace, or because the term is so long that the instalment is
    // almost all interest and a longer-than-standard period (31 days priced on 30) bears more.
    throw new ScheduleError(
      state.carried > 0n ? 'graceOnInterestPeriods' : 'numberOfPeriods',
      `period ${k}: interest ${interest} exceeds the instalment ${instalment}`,
    );
  }
  return { principal, interest, carried };
}

interface FlatPlan {
  readonly totalInterest: bigint;
  readonly interestPerPeriod: bigint;
  readonly principalPerPeriod: bigint;
}

function flatPlan(p: Plan): FlatPlan {
  const last = p.dates[p.n - 1] as YMD;
  const termRate = flatTermRate(p.basis, daysBetween(p.start, last), p.n);
  const totalWithoutGrace = mulRoundHalfEven(p.terms.principal, termRate);
  const perPeriodWithoutGrace = divRoundHalfEven(totalWithoutGrace, BigInt(p.n));
  const totalInterest = totalWithoutGrace - perPeriodWithoutGrace * BigInt(p.waivedGrace);
  const interestPeriods = p.n - p.deferredGrace - p.waivedGrace;
  if (interestPeriods <= 0) throw new ScheduleError('graceOnInterestPeriods', 'leaves no period to bear interest');
  return {
    totalInterest,
    interestPerPeriod: divRoundHalfEven(totalInterest, BigInt(interestPeriods)),
    principalPerPeriod: divRoundHalfEven(p.terms.principal, BigInt(p.n - p.principalGrace)),
  };
}

function flatPortion(p: Plan, k: number, f: FlatPlan): Portion {
  const interest = k <= p.deferredGrace || k <= p.waivedGrace ? 0n : f.interestPerPeriod;
  let principal = k <= p.principalGrace ? 0n : f.principalPerPeriod;
  if (p.multiple !== undefined) {
    principal =
      roundToMultipleHalfEven(principal, p.multiple) + roundToMultipleHalfEven(interest, p.multiple) - interest;
  }
  return { principal, interest, carried: 0n };
}

/** Builds the schedule. Throws ScheduleError naming the offending term. */
export function buildSchedule(terms: ScheduleTerms): Schedule {
  const p = plan(terms);
  const P = terms.principal;
  const type = terms.scheduleType;
  const instalment =
    type === 'annuity' ? annuityInstalment(P, pmtRate(p.basis), p.n - p.principalGrace, p.multiple ?? 1n) : undefined;
  const fixedPrincipal =
    type === 'equalPrincipal' || type === 'bullet' ? divRoundHalfEven(P, BigInt(p.n - p.principalGrace)) : undefined;
  const flat = type === 'flat' ? flatPlan(p) : undefined;

  const state: Running = { outstanding: P, principalSoFar: 0n, interestSoFar: 0n, carried: 0n };
  const periods: SchedulePeriod[] = [];
  let from = p.start;
  for (let k = 1; k <= p.n && state.outstanding > 0n; k++) {
    const due = p.dates[k - 1] as YMD;
    const interestFrom = k === 1 ? p.idealStart : from;
    const interestDays = daysBetween(interestFrom, due);
    const portion = flat
      ? flatPortion(p, k, flat)
      : decliningPortion(p, k, state, interestDays, instalment, fixedPrincipal);
    let { principal, interest } = portion;

    // adjustPrincipalIfLastRepaymentPeriod: never past the principal; the last period takes what is left.
    const principalToDate = state.principalSoFar + principal;
    if (principalToDate > P) principal -= principalToDate - P;
    else if (k === p.n) principal += P - principalToDate;
    // adjustInterestIfLastRepaymentPeriod (flat only): never past the total; the last period takes what is left.
    if (flat) {
      const interestToDate = state.interestSoFar + interest;
      if (interestToDate > flat.totalInterest) interest -= interestToDate - flat.totalInterest;
      else if (k === p.n) interest += flat.totalInterest - interestToDate;
    }
    if (principal < 0n || interest < 0n) {
      throw new ScheduleError('instalmentMultiple', `period ${k} would have a negative amount`);
    }

    state.outstanding -= principal;
    state.principalSoFar += principal;
    state.interestSoFar += interest;
    state.carried = portion.carried;
    periods.push({
      number: k,
      fromDate: formatDate(from),
      dueDate: formatDate(due),
      days: daysBetween(from, due),
      interestDays,
      principalDue: principal,
      interestDue: interest,
      totalDue: principal + interest,
      outstandingAfter: state.outstanding,
    });
    from = due;
  }
  // Interest still carried from a deferred grace goes to the last instalment.
  if (state.carried > 0n) {
    const last = periods[periods.length - 1] as SchedulePeriod;
    periods[periods.length - 1] = {
      ...last,
      interestDue: last.interestDue + state.carried,
      totalDue: last.totalDue + state.carried,
    };
    state.interestSoFar += state.carried;
  }
  const totals = { principal: state.principalSoFar, interest: state.interestSoFar, total: 0n };
  totals.total = totals.principal + totals.interest;
  return instalment === undefined ? { periods, totals } : { periods, totals, instalment };
}
