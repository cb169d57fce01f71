// The inputs and outputs of the schedule engine. Money is always a bigint count of minor units.
import type { Period } from './calendar.js';
import type { DayCount, InterestCalculationPeriod } from './day-count.js';
import type { Rate } from './rate.js';

/**
 * annuity        equal instalments: Fineract DECLINING_BALANCE + EQUAL_INSTALLMENTS
 * equalPrincipal equal principal, interest on the declining balance: DECLINING_BALANCE + EQUAL_PRINCIPAL
 * flat           flat interest on the original principal, equal instalments: FLAT + EQUAL_INSTALLMENTS
 * bullet         interest only, all principal at maturity: DECLINING_BALANCE + EQUAL_PRINCIPAL with grace on principal
 *                for all periods but the last (Fineract has no bullet type; that is how a Fineract product states one)
 */
export type ScheduleType = 'annuity' | 'equalPrincipal' | 'flat' | 'bullet';
export const SCHEDULE_TYPES: readonly ScheduleType[] = ['annuity', 'equalPrincipal', 'flat', 'bullet'];

/**
 * deferred  Fineract "grace on interest payment" (graceOnInterestPayment): interest is charged in the grace periods
 *           but not collected; a declining-balance loan collects it with the first instalment after the grace, a
 *           flat loan spreads it over the instalments after the grace.
 * waived    Fineract "grace on interest charged" (graceOnInterestCharged): no interest at all for those periods; a
 *           flat loan's total interest is reduced by those periods' share.
 */
export type GraceOnInterestKind = 'deferred' | 'waived';

export interface ScheduleTerms {
  /** Amount disbursed, in minor units (> 0). */
  readonly principal: bigint;
  /** The currency's minor-unit exponent (2 for EUR, 0 for JPY, 3 for KWD). Amounts are minor units whatever it is. */
  readonly currencyDigits: number;
  readonly annualRate: Rate;
  readonly scheduleType: ScheduleType;
  readonly period: Period;
  readonly dayCount: DayCount;
  /** Fineract's interestCalculationPeriodType; default 'daily' (see day-count.ts). */
  readonly interestCalculationPeriod?: InterestCalculationPeriod;
  /** Number of repayments (1 to 1200). */
  readonly numberOfPeriods: number;
  /** Disbursement date, YYYY-MM-DD. */
  readonly startDate: string;
  /** First due date (Fineract repaymentsStartingFromDate); default one period after startDate. */
  readonly firstDueDate?: string;
  /** The first N periods repay no principal (interest only). Not with bullet, where it is implied. */
  readonly graceOnPrincipalPeriods?: number;
  /** The first N periods collect no interest; how, graceOnInterestKind says. */
  readonly graceOnInterestPeriods?: number;
  readonly graceOnInterestKind?: GraceOnInterestKind;
  /**
   * Instalments in multiples of this many minor units (Fineract installmentAmountInMultiplesOf, which Fineract states in
   * whole currency units: 1 there is 10^currencyDigits here). Affects annuity and flat; Fineract ignores it for
   * declining-balance equal principal, and so do we (hence bullet too).
   */
  readonly instalmentMultiple?: bigint;
}

export interface SchedulePeriod {
  readonly number: number;
  /** Start of the period: the disbursement date, then the previous due date. */
  readonly fromDate: string;
  readonly dueDate: string;
  /** Calendar days from fromDate to dueDate. */
  readonly days: number;
  /** Days the period's interest is computed on (the first period always counts a whole period, see schedule.ts). */
  readonly interestDays: number;
  readonly principalDue: bigint;
  readonly interestDue: bigint;
  readonly totalDue: bigint;
  readonly outstandingAfter: bigint;
}

export interface ScheduleTotals {
  readonly principal: bigint;
  readonly interest: bigint;
  readonly total: bigint;
}

export interface Schedule {
  readonly periods: readonly SchedulePeriod[];
  readonly totals: ScheduleTotals;
  /** The fixed instalment of an annuity (rounded, before the last period absorbs the residue); absent otherwise. */
  readonly instalment?: bigint;
}
