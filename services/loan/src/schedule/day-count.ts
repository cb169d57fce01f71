// Day-count conventions and how each maps onto Apache Fineract's loan-product settings.
//
// Fineract does not name day counts; a product states interestCalculationPeriodType, daysInMonthType and
// daysInYearType. Ours map as follows (interestCalculationPeriod 'daily', the default):
//   ACT/365F  DAILY, daysInMonth ACTUAL,  daysInYear 365   interest = balance * r/365 * actual days
//   ACT/360   DAILY, daysInMonth ACTUAL,  daysInYear 360   interest = balance * r/360 * actual days
//   ACT/364   DAILY, daysInMonth ACTUAL,  daysInYear 364   interest = balance * r/364 * actual days (weekly products)
//   30/360    DAILY, daysInMonth DAYS_30, daysInYear 360   a month counts 30 days, so a monthly period is r/12
// Fineract's 30/360 is neither the US (NASD) nor the European (30E/360) day-by-day rule: it never looks at the day of
// month. Every whole month of a repayment period counts 30 days (LoanApplicationTerms.periodicInterestRate:
// "if (daysInMonthType.isDaysInMonth_30()) numberOfDaysInPeriod = loanTermFrequency * 30"), and a weekly period counts
// its actual 7 days. Because Fineract's first period always runs a whole period (see schedule.ts), every monthly period
// counts exactly 30 days here.
//
// interestCalculationPeriod 'sameAsRepaymentPeriod' is Fineract's SAME_AS_REPAYMENT_PERIOD: every period is r/12
// (monthly) or r/52 (weekly) whatever its length, and the day count is not used.

export type DayCount = 'ACT/365F' | 'ACT/360' | 'ACT/364' | '30/360';
export const DAY_COUNTS: readonly DayCount[] = ['ACT/365F', 'ACT/360', 'ACT/364', '30/360'];

export type InterestCalculationPeriod = 'daily' | 'sameAsRepaymentPeriod';

export interface FineractDayCount {
  /** DaysInYearType: the days a year's interest is spread over. */
  readonly daysInYear: 360 | 364 | 365;
  /** DaysInMonthType DAYS_30 (true) or ACTUAL (false). */
  readonly thirtyDayMonths: boolean;
}

export function fineractDayCount(dayCount: DayCount): FineractDayCount {
  switch (dayCount) {
    case 'ACT/365F':
      return { daysInYear: 365, thirtyDayMonths: false };
    case 'ACT/360':
      return { daysInYear: 360, thirtyDayMonths: false };
    case 'ACT/364':
      return { daysInYear: 364, thirtyDayMonths: false };
    case '30/360':
      return { daysInYear: 360, thirtyDayMonths: true };
  }
}
