// The rate of one repayment period as Apache Fineract derives it from the annual percent:
// LoanApplicationTerms.periodicInterestRate(...) and calculatePeriodsInOneYear(...), every division and the
// multiplication by days rounded to 12 significant digits, HALF_EVEN (MoneyHelper.getMathContext()).
//
//   daily:                 r_day    = (annual% / periodsInOneYear) / 100        periodsInOneYear = daysInYear (360/364/365)
//                          r_period = r_day * days                              days: actual days of the period,
//                                                                               or 30 per month with 30/360
//   sameAsRepaymentPeriod: r_period = (annual% / periodsInOneYear) / 100 * 1    periodsInOneYear = 12 (monthly), 52 (weekly)
//
// The annuity (pmtForInstallment) uses a standard period, not the actual one: a monthly period counts 30 days
// (DaysInMonthType.DAYS_30 forced) and a weekly one 7, over the product's days in year. So with ACT/365F a 12 % loan's
// instalment is priced at 12/365*30 % a month while each month's interest runs on its actual days.
import type { Period } from './calendar.js';
import type { Dec } from './decimal.js';
import { decDivMc, decMul, decMulMc, decOf } from './decimal.js';
import type { DayCount, InterestCalculationPeriod } from './day-count.js';
import { fineractDayCount } from './day-count.js';
import type { Rate } from './rate.js';
import { rateAsPercent } from './rate.js';

// Fineract divides by BigDecimal.valueOf(100.0); its value is 100.
const HUNDRED = decOf(100);

export interface RateBasis {
  readonly annualRate: Rate;
  readonly period: Period;
  readonly dayCount: DayCount;
  readonly interestCalculationPeriod: InterestCalculationPeriod;
}

function periodsInOneYear(b: RateBasis): number {
  if (b.interestCalculationPeriod === 'daily') return fineractDayCount(b.dayCount).daysInYear;
  return b.period === 'monthly' ? 12 : 52;
}

/** (annual% / periodsInOneYear) / 100, both divisions to 12 significant digits. */
function ratePerUnit(b: RateBasis): Dec {
  return decDivMc(decDivMc(rateAsPercent(b.annualRate), decOf(periodsInOneYear(b))), HUNDRED);
}

/**
 * The rate for the interest of a period of `actualDays` days (daily) or of one period (sameAsRepaymentPeriod).
 * periodicInterestRate(calculator, mc, daysInMonthType, daysInYearType, start, end).
 */
export function periodRate(b: RateBasis, actualDays: number): Dec {
  const unit = ratePerUnit(b);
  if (b.interestCalculationPeriod === 'sameAsRepaymentPeriod') return decMul(unit, decOf(1));
  const { thirtyDayMonths } = fineractDayCount(b.dayCount);
  const days = b.period === 'monthly' && thirtyDayMonths ? 30 : actualDays;
  return decMulMc(unit, decOf(days));
}

/** The rate the annuity instalment is priced at: periodicInterestRate(..., DAYS_30, DAYS_365, ..., isForPMT = true). */
export function pmtRate(b: RateBasis): Dec {
  const unit = ratePerUnit(b);
  if (b.interestCalculationPeriod === 'sameAsRepaymentPeriod') return decMul(unit, decOf(1));
  return decMulMc(unit, decOf(b.period === 'monthly' ? 30 : 7));
}

/**
 * The flat rate for the whole term: calculateFlatInterestRateForLoanTerm = (annual% / periodsInOneYear) / 100 * term,
 * the last product exact; term = days from disbursement to the last due date (daily) or the number of periods.
 */
export function flatTermRate(b: RateBasis, termDays: number, numberOfPeriods: number): Dec {
  const unit = ratePerUnit(b);
  return decMul(unit, decOf(b.interestCalculationPeriod === 'daily' ? termDays : numberOfPeriods));
}
