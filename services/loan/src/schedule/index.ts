// The loan schedule engine: pure, no I/O. See schedule.ts for the conventions (Apache Fineract's) it follows.
export { buildSchedule, ScheduleError } from './schedule.js';
export type {
  Schedule,
  SchedulePeriod,
  ScheduleTerms,
  ScheduleTotals,
  ScheduleType,
  GraceOnInterestKind,
} from './types.js';
export { SCHEDULE_TYPES } from './types.js';
export { parseRate, formatRate, rateFromUnits, rateAsPercent, RateError, RATE_DECIMALS } from './rate.js';
export type { Rate } from './rate.js';
export type { DayCount, InterestCalculationPeriod } from './day-count.js';
export { DAY_COUNTS, fineractDayCount } from './day-count.js';
export type { Period } from './calendar.js';
export { annuityInstalment } from './annuity.js';
export { periodRate, pmtRate, flatTermRate } from './periodic-rate.js';
export type { Dec } from './decimal.js';
export { formatDec } from './decimal.js';
