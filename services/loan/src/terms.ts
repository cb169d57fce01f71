// A loan product version's terms as the schedule engine takes them. One place maps the catalog's
// enums and rate fields to the engine's: the exact annual_rate when the product states one, else
// annual_rate_bps / 100 (the same value, exactly: 1 bp = 0.01 %).
import { CURRENCIES, DomainError } from '@corebank/kit';
import {
  DayCount,
  GraceOnInterestKind,
  PrepaymentStrategy,
  RepaymentOrderComponent,
  RepaymentPeriod,
  ScheduleType,
  type LoanTerms,
  type ProductVersion,
} from '@corebank/kit/gen/corebank/v1/product';
import {
  buildSchedule,
  formatRate,
  parseRate,
  rateFromUnits,
  ScheduleError,
  type Rate,
  type Schedule,
  type ScheduleType as EngineType,
  type DayCount as EngineDayCount,
  type Period,
} from './schedule/index.js';
import { DEFAULT_ORDER, type Component } from './waterfall.js';

const SCHEDULE_TYPES: Partial<Record<ScheduleType, EngineType>> = {
  [ScheduleType.SCHEDULE_TYPE_EQUAL_INSTALLMENTS]: 'annuity',
  [ScheduleType.SCHEDULE_TYPE_EQUAL_PRINCIPAL]: 'equalPrincipal',
  [ScheduleType.SCHEDULE_TYPE_BULLET]: 'bullet',
  [ScheduleType.SCHEDULE_TYPE_FLAT]: 'flat',
};

const DAY_COUNTS: Partial<Record<DayCount, EngineDayCount>> = {
  [DayCount.DAY_COUNT_ACT_365F]: 'ACT/365F',
  [DayCount.DAY_COUNT_ACT_360]: 'ACT/360',
  [DayCount.DAY_COUNT_THIRTY_360]: '30/360',
  [DayCount.DAY_COUNT_ACT_364]: 'ACT/364',
};

const COMPONENTS: Partial<Record<RepaymentOrderComponent, Component>> = {
  [RepaymentOrderComponent.REPAYMENT_ORDER_COMPONENT_PENALTY]: 'penalty',
  [RepaymentOrderComponent.REPAYMENT_ORDER_COMPONENT_FEE]: 'fee',
  [RepaymentOrderComponent.REPAYMENT_ORDER_COMPONENT_INTEREST]: 'interest',
  [RepaymentOrderComponent.REPAYMENT_ORDER_COMPONENT_PRINCIPAL]: 'principal',
};

/** The product's repayment period: monthly unless it says WEEKLY (products made before weekly periods are monthly). */
export const periodOf = (l: LoanTerms): Period =>
  l.repaymentPeriod === RepaymentPeriod.REPAYMENT_PERIOD_WEEKLY ? 'weekly' : 'monthly';

/** The product's waterfall within an instalment (the catalog checked it is a permutation); empty: the default. */
export function waterfallOf(l: LoanTerms): readonly Component[] {
  const order = l.repaymentOrder.map((c) => COMPONENTS[c]);
  if (order.length === 0) return DEFAULT_ORDER;
  if (order.length !== 4 || new Set(order).size !== 4 || order.some((c) => c === undefined)) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'UNSUPPORTED_LOAN_TERMS',
      'product_id: the repayment order is not valid',
    );
  }
  return order as Component[];
}

export type Strategy = 'reduceTerm' | 'reduceInstalment';

/** The product's prepayment strategy; undefined: an amount beyond the running instalment pays ahead, no reschedule. */
export function prepaymentStrategyOf(l: LoanTerms): Strategy | undefined {
  if (l.prepaymentStrategy === PrepaymentStrategy.PREPAYMENT_STRATEGY_REDUCE_TERM) return 'reduceTerm';
  if (l.prepaymentStrategy === PrepaymentStrategy.PREPAYMENT_STRATEGY_REDUCE_INSTALMENT) return 'reduceInstalment';
  return undefined;
}

/** The engine's day count of a product. */
export function dayCountOf(l: LoanTerms): EngineDayCount | undefined {
  return DAY_COUNTS[l.dayCount];
}

/** The engine's schedule type of a product. */
export function scheduleTypeOf(l: LoanTerms): EngineType | undefined {
  return SCHEDULE_TYPES[l.scheduleType];
}

/** The product's annual rate, exactly. */
export function annualRateOf(l: LoanTerms): Rate {
  return l.annualRate ? parseRate(l.annualRate) : rateFromUnits(BigInt(l.annualRateBps) * 10n ** 8n);
}

/** The loan terms of a published LOAN product version, or FAILED_PRECONDITION. */
export function loanTermsOf(p: ProductVersion | undefined, field = 'product_id'): LoanTerms {
  if (!p?.loan) {
    throw new DomainError('FAILED_PRECONDITION', 'NOT_A_LOAN_PRODUCT', `${field}: the product is not a loan product`, [
      { field, description: 'is not a loan product' },
    ]);
  }
  return p.loan;
}

/** Amount and term inside the product's ranges, each violation naming its field. */
export function checkRanges(l: LoanTerms, amount: bigint, termMonths: number): void {
  const violations = [];
  if (amount < l.minAmount || amount > l.maxAmount) {
    violations.push({ field: 'amount', description: `must be ${l.minAmount} to ${l.maxAmount} for this product` });
  }
  if (termMonths < l.minTermMonths || termMonths > l.maxTermMonths) {
    violations.push({
      field: 'term_months',
      description: `must be ${l.minTermMonths} to ${l.maxTermMonths} for this product`,
    });
  }
  if (violations.length) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'OUTSIDE_PRODUCT_RANGE',
      violations.map((v) => `${v.field}: ${v.description}`).join('; '),
      violations,
    );
  }
}

/** The schedule of `amount` over `termMonths` instalments (monthly, or weeks for a weekly product) from `startDate`, at `rate` (default: the product's). */
export function scheduleFor(
  l: LoanTerms,
  amount: bigint,
  termMonths: number,
  startDate: string,
  rate?: Rate,
): Schedule {
  const scheduleType = SCHEDULE_TYPES[l.scheduleType];
  const dayCount = DAY_COUNTS[l.dayCount];
  const digits = CURRENCIES[l.currency];
  if (!scheduleType || !dayCount || digits === undefined) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'UNSUPPORTED_LOAN_TERMS',
      'product_id: the product cannot be scheduled',
    );
  }
  try {
    return buildSchedule({
      principal: amount,
      currencyDigits: digits,
      annualRate: rate ?? annualRateOf(l),
      scheduleType,
      period: periodOf(l),
      dayCount,
      numberOfPeriods: termMonths,
      startDate,
      graceOnPrincipalPeriods: l.graceOnPrincipalPeriods,
      graceOnInterestPeriods: l.graceOnInterestPeriods,
      graceOnInterestKind:
        l.graceOnInterestKind === GraceOnInterestKind.GRACE_ON_INTEREST_KIND_WAIVED ? 'waived' : 'deferred',
      ...(l.instalmentMultiple > 0n ? { instalmentMultiple: l.instalmentMultiple } : {}),
    });
  } catch (e) {
    if (e instanceof ScheduleError) {
      // The engine refuses what Fineract refuses (an instalment below its period's interest, say).
      throw new DomainError(
        'FAILED_PRECONDITION',
        'SCHEDULE_NOT_POSSIBLE',
        `the schedule cannot be built: ${e.message}`,
      );
    }
    throw e;
  }
}

export { formatRate };
