// Every product parameter is checked (ranges, min <= max, enums not UNSPECIFIED, ISO 4217
// currencies), every bad field named at once, before anything is written.
import { isCurrency, text, Violations } from '@corebank/kit';
import {
  DayCount,
  GraceOnInterestKind,
  PostingFrequency,
  PrepaymentStrategy,
  RepaymentOrderComponent,
  RepaymentPeriod,
  ProductKind,
  ScheduleType,
  type DepositTerms,
  type LoanTerms,
  type ValiditySpec,
} from '@corebank/kit/gen/corebank/v1/product';
import { validateCoLending } from './colending.js';
import { canonicalTimeZone, MAX_DAYS, MAX_DURATION_SECONDS } from './validity.js';

export const PRODUCT_ID = /^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$/;
export const MAX_DEPOSIT_RATE_BPS = 10_000;
export const MAX_LOAN_RATE_BPS = 50_000;
export const MAX_TERM_MONTHS = 600;
export const MAX_GRACE_DAYS = 365;
export const MAX_DELINQUENCY_BUCKETS = 10;
export const MAX_DAYS_PAST_DUE = 3650;
/** An exact annual rate: percent per annum with up to 10 decimals ("9.4822"). */
const EXACT_RATE = /^(\d{1,3})(?:\.(\d{1,10}))?$/;
const RATE_UNITS_PER_BPS = 10n ** 8n; // a rate in units of 1e-10 percent; one basis point is 0.01 %

/** The exact rate in units of 1e-10 percent per annum, or undefined when it is not such a decimal. */
export function exactRateUnits(text: string): bigint | undefined {
  const m = EXACT_RATE.exec(text);
  if (!m) return undefined;
  return BigInt(m[1]!) * 10n ** 10n + BigInt((m[2] ?? '').padEnd(10, '0'));
}

const known = (e: Record<number, string>, value: number) => value > 0 && e[value] !== undefined;

export function validateProductId(v: Violations, id: string, field = 'product_id'): void {
  if (!id) v.add(field, 'is required');
  else if (!PRODUCT_ID.test(id)) v.add(field, 'must be 2 to 64 lower-case letters, digits or hyphens');
}

/** The content a version carries: everything but its identity and status. */
export interface Content {
  name: string;
  description: string;
  deposit?: DepositTerms | undefined;
  loan?: LoanTerms | undefined;
  validity?: ValiditySpec | undefined;
}

function currency(v: Violations, field: string, code: string) {
  if (!code) v.add(field, 'is required (ISO 4217)');
  else if (!isCurrency(code)) v.add(field, 'is not a supported ISO 4217 currency code');
}

function nonNegative(v: Violations, field: string, value: bigint) {
  if (value < 0n) v.add(field, 'must not be negative (0 means none)');
}

function validateDeposit(v: Violations, d: DepositTerms) {
  const p = 'deposit';
  currency(v, `${p}.currency`, d.currency);
  nonNegative(v, `${p}.overdraft_limit`, d.overdraftLimit);
  nonNegative(v, `${p}.minimum_balance`, d.minimumBalance);
  nonNegative(v, `${p}.per_transaction_limit`, d.perTransactionLimit);
  nonNegative(v, `${p}.daily_debit_limit`, d.dailyDebitLimit);
  nonNegative(v, `${p}.monthly_fee`, d.monthlyFee);
  if (d.overdraftLimit > 0n && d.minimumBalance > 0n) {
    v.add(`${p}.minimum_balance`, 'cannot be combined with an overdraft_limit');
  }
  if (d.perTransactionLimit > 0n && d.dailyDebitLimit > 0n && d.perTransactionLimit > d.dailyDebitLimit) {
    v.add(`${p}.per_transaction_limit`, 'must not exceed daily_debit_limit');
  }
  if (d.interestRateBps > MAX_DEPOSIT_RATE_BPS)
    v.add(`${p}.interest_rate_bps`, `must be at most ${MAX_DEPOSIT_RATE_BPS}`);
  if (!known(DayCount, d.dayCount) || d.dayCount === DayCount.DAY_COUNT_ACT_364) {
    v.add(`${p}.day_count`, 'must be ACT_365F, ACT_360 or THIRTY_360');
  }
  if (!known(PostingFrequency, d.postingFrequency)) {
    v.add(`${p}.posting_frequency`, 'must be DAILY, MONTHLY, QUARTERLY, ANNUALLY or AT_MATURITY');
  }
  if (d.termMonths > MAX_TERM_MONTHS) v.add(`${p}.term_months`, `must be at most ${MAX_TERM_MONTHS}`);
  else if (d.postingFrequency === PostingFrequency.POSTING_FREQUENCY_AT_MATURITY && d.termMonths === 0) {
    v.add(`${p}.term_months`, 'is required for AT_MATURITY posting');
  }
}

function validateLoan(v: Violations, l: LoanTerms) {
  const p = 'loan';
  currency(v, `${p}.currency`, l.currency);
  if (l.minAmount <= 0n) v.add(`${p}.min_amount`, 'must be positive');
  if (l.maxAmount <= 0n) v.add(`${p}.max_amount`, 'must be positive');
  else if (l.maxAmount < l.minAmount) v.add(`${p}.max_amount`, 'must be at least min_amount');
  if (l.minTermMonths < 1) v.add(`${p}.min_term_months`, 'must be at least 1');
  if (l.maxTermMonths > MAX_TERM_MONTHS) v.add(`${p}.max_term_months`, `must be at most ${MAX_TERM_MONTHS}`);
  else if (l.maxTermMonths < l.minTermMonths) v.add(`${p}.max_term_months`, 'must be at least min_term_months');
  if (l.annualRateBps > MAX_LOAN_RATE_BPS) v.add(`${p}.annual_rate_bps`, `must be at most ${MAX_LOAN_RATE_BPS}`);
  if (l.annualRate) {
    const units = l.annualRate.length <= 16 ? exactRateUnits(l.annualRate) : undefined;
    if (units === undefined) {
      v.add(`${p}.annual_rate`, 'must be a percent with at most 10 decimals, for example 9.4822');
    } else if (units > BigInt(MAX_LOAN_RATE_BPS) * RATE_UNITS_PER_BPS) {
      v.add(`${p}.annual_rate`, `must be at most ${MAX_LOAN_RATE_BPS / 100}`);
    } else if (l.annualRateBps !== 0 && BigInt(l.annualRateBps) * RATE_UNITS_PER_BPS !== units) {
      v.add(`${p}.annual_rate_bps`, 'must be 0 or the same rate as annual_rate');
    }
  }
  if (l.penaltyRateBps > MAX_LOAN_RATE_BPS) v.add(`${p}.penalty_rate_bps`, `must be at most ${MAX_LOAN_RATE_BPS}`);
  if (l.penaltyRate) {
    const units = l.penaltyRate.length <= 16 ? exactRateUnits(l.penaltyRate) : undefined;
    if (units === undefined) {
      v.add(`${p}.penalty_rate`, 'must be a percent with at most 10 decimals, for example 2.5');
    } else if (units > BigInt(MAX_LOAN_RATE_BPS) * RATE_UNITS_PER_BPS) {
      v.add(`${p}.penalty_rate`, `must be at most ${MAX_LOAN_RATE_BPS / 100}`);
    } else if (l.penaltyRateBps !== 0 && BigInt(l.penaltyRateBps) * RATE_UNITS_PER_BPS !== units) {
      v.add(`${p}.penalty_rate_bps`, 'must be 0 or the same rate as penalty_rate');
    }
  }
  if (l.delinquencyBuckets.length > MAX_DELINQUENCY_BUCKETS) {
    v.add(`${p}.delinquency_buckets`, `must have at most ${MAX_DELINQUENCY_BUCKETS} buckets`);
  } else if (
    l.delinquencyBuckets.some((b, i) => b < 1 || b > MAX_DAYS_PAST_DUE || (i > 0 && b <= l.delinquencyBuckets[i - 1]!))
  ) {
    v.add(`${p}.delinquency_buckets`, `must be strictly increasing days past due, 1 to ${MAX_DAYS_PAST_DUE}`);
  }
  if (!known(ScheduleType, l.scheduleType)) {
    v.add(`${p}.schedule_type`, 'must be EQUAL_INSTALLMENTS, EQUAL_PRINCIPAL, BULLET or FLAT');
  }
  if (l.graceDays > MAX_GRACE_DAYS) v.add(`${p}.grace_days`, `must be at most ${MAX_GRACE_DAYS}`);
  const periods = Math.max(l.minTermMonths, 1);
  if (l.graceOnPrincipalPeriods >= periods && l.graceOnPrincipalPeriods > 0) {
    v.add(`${p}.grace_on_principal_periods`, 'must be less than min_term_months');
  } else if (l.graceOnPrincipalPeriods > 0 && l.scheduleType === ScheduleType.SCHEDULE_TYPE_BULLET) {
    v.add(`${p}.grace_on_principal_periods`, 'must be 0 for BULLET (its principal is all due at the end)');
  }
  if (l.graceOnInterestPeriods >= periods && l.graceOnInterestPeriods > 0) {
    v.add(`${p}.grace_on_interest_periods`, 'must be less than min_term_months');
  }
  if (l.graceOnInterestKind !== 0 && !known(GraceOnInterestKind, l.graceOnInterestKind)) {
    v.add(`${p}.grace_on_interest_kind`, 'must be DEFERRED or WAIVED');
  } else if (l.graceOnInterestPeriods > 0 && l.graceOnInterestKind === 0) {
    v.add(`${p}.grace_on_interest_kind`, 'is required with grace_on_interest_periods');
  }
  if (l.instalmentMultiple < 0n || (l.maxAmount > 0n && l.instalmentMultiple > l.maxAmount)) {
    v.add(`${p}.instalment_multiple`, 'must be 0 to max_amount');
  } else if (
    l.instalmentMultiple > 0n &&
    l.scheduleType !== ScheduleType.SCHEDULE_TYPE_EQUAL_INSTALLMENTS &&
    l.scheduleType !== ScheduleType.SCHEDULE_TYPE_FLAT
  ) {
    v.add(`${p}.instalment_multiple`, 'applies only to EQUAL_INSTALLMENTS and FLAT');
  }
  if (!known(DayCount, l.dayCount)) v.add(`${p}.day_count`, 'must be ACT_365F, ACT_360, THIRTY_360 or ACT_364');
  else if (l.dayCount === DayCount.DAY_COUNT_ACT_364 && l.repaymentPeriod !== RepaymentPeriod.REPAYMENT_PERIOD_WEEKLY) {
    v.add(`${p}.day_count`, 'ACT_364 is for WEEKLY products only');
  }
  if (l.repaymentPeriod !== 0 && !known(RepaymentPeriod, l.repaymentPeriod)) {
    v.add(`${p}.repayment_period`, 'must be MONTHLY or WEEKLY');
  }
  // The waterfall: empty (the default) or each of the four components exactly once.
  const order = l.repaymentOrder;
  if (
    order.length > 0 &&
    (order.length !== 4 || new Set(order).size !== 4 || !order.every((c) => known(RepaymentOrderComponent, c)))
  ) {
    v.add(`${p}.repayment_order`, 'must be empty or PENALTY, FEE, INTEREST and PRINCIPAL, each once, in any order');
  }
  if (l.prepaymentStrategy !== 0 && !known(PrepaymentStrategy, l.prepaymentStrategy)) {
    v.add(`${p}.prepayment_strategy`, 'must be REDUCE_TERM or REDUCE_INSTALMENT');
  } else if (
    l.prepaymentStrategy !== 0 &&
    l.scheduleType !== ScheduleType.SCHEDULE_TYPE_EQUAL_INSTALLMENTS &&
    l.scheduleType !== ScheduleType.SCHEDULE_TYPE_EQUAL_PRINCIPAL
  ) {
    v.add(`${p}.prepayment_strategy`, 'applies only to EQUAL_INSTALLMENTS and EQUAL_PRINCIPAL');
  }
  validateCoLending(v, l, p);
}

export function validateValidity(v: Violations, spec: ValiditySpec | undefined, p = 'validity'): void {
  if (!spec) return;
  const k = spec.kind;
  if (!k) v.add(p, 'must set calendar_days or rolling');
  else if (k.$case === 'calendarDays') {
    if (k.value.days < 1 || k.value.days > MAX_DAYS) v.add(`${p}.calendar_days.days`, `must be 1 to ${MAX_DAYS}`);
    if (!k.value.timeZone) v.add(`${p}.calendar_days.time_zone`, 'is required (an IANA time zone)');
    else if (!canonicalTimeZone(k.value.timeZone)) {
      v.add(`${p}.calendar_days.time_zone`, 'is not an IANA time zone');
    }
  } else if (k.value.durationSeconds < 1 || k.value.durationSeconds > MAX_DURATION_SECONDS) {
    v.add(`${p}.rolling.duration_seconds`, `must be 1 to ${MAX_DURATION_SECONDS}`);
  }
}

/** The content of a version of a product of this kind. */
export function validateContent(v: Violations, kind: ProductKind, c: Content): void {
  text(v, 'name', c.name, { max: 200, required: true });
  text(v, 'description', c.description, { max: 2000, multiline: true });
  if (kind === ProductKind.PRODUCT_KIND_DEPOSIT) {
    if (!c.deposit) v.add('deposit', 'is required for a DEPOSIT product');
    else validateDeposit(v, c.deposit);
    if (c.loan) v.add('loan', 'must not be set for a DEPOSIT product');
  } else if (kind === ProductKind.PRODUCT_KIND_LOAN) {
    if (!c.loan) v.add('loan', 'is required for a LOAN product');
    else validateLoan(v, c.loan);
    if (c.deposit) v.add('deposit', 'must not be set for a LOAN product');
  }
  validateValidity(v, c.validity);
}

/** Time zones are stored under the runtime's canonical name, so equal specs compare equal. */
export function normalizeContent(c: Content): Content {
  const k = c.validity?.kind;
  return {
    name: c.name.trim(),
    description: c.description,
    deposit: c.deposit,
    loan: c.loan,
    validity:
      k?.$case === 'calendarDays'
        ? { kind: { $case: 'calendarDays', value: { ...k.value, timeZone: canonicalTimeZone(k.value.timeZone)! } } }
        : c.validity,
  };
}
