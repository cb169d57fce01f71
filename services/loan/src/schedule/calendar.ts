// Calendar arithmetic on plain dates ("YYYY-MM-DD", no time, no zone: UTC days), with the due-date rules of
// Apache Fineract's DefaultScheduledDateGenerator:
// - a monthly due date is the previous one plus one month (java.time LocalDate.plusMonths: the day is clamped to the
//   end of a shorter month), then CalendarUtils.adjustDate puts it back on the seed day when it can: if the seed's day
//   of month is after the 28th and the date's is the 28th or later, the day becomes min(seed day, days in that month).
//   So a loan started on Jan 31 falls due Feb 28 (29), Mar 31, Apr 30, May 31 ... never drifting to the 28th.
//   The seed is the first due date when one is given (repaymentsStartingFromDate), otherwise the disbursement date.
// - a weekly due date is the previous one plus 7 days.

export type Period = 'monthly' | 'weekly';

export class DateError extends Error {}

const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;
const MS_PER_DAY = 86_400_000;

export interface YMD {
  readonly year: number;
  readonly month: number; // 1..12
  readonly day: number;
}

export function parseDate(text: string): YMD {
  const m = DATE_TEXT.exec(text);
  if (!m) throw new DateError(`date ${JSON.stringify(text)} is not YYYY-MM-DD`);
  const ymd = { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
  if (ymd.month < 1 || ymd.month > 12 || ymd.day < 1 || ymd.day > daysInMonth(ymd.year, ymd.month) || ymd.year < 1900) {
    throw new DateError(`date ${JSON.stringify(text)} does not exist`);
  }
  return ymd;
}

export function formatDate(d: YMD): string {
  return `${String(d.year).padStart(4, '0')}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Days since 1970-01-01. */
export function epochDay(d: YMD): number {
  return Date.UTC(d.year, d.month - 1, d.day) / MS_PER_DAY;
}

export function fromEpochDay(n: number): YMD {
  const dt = new Date(n * MS_PER_DAY);
  return { year: dt.getUTCFullYear(), month: dt.getUTCMonth() + 1, day: dt.getUTCDate() };
}

/** Days from a to b (positive when b is later): ChronoUnit.DAYS.between(a, b). */
export function daysBetween(a: YMD, b: YMD): number {
  return epochDay(b) - epochDay(a);
}

export function compareDates(a: YMD, b: YMD): number {
  return epochDay(a) - epochDay(b);
}

export function addDays(d: YMD, days: number): YMD {
  return fromEpochDay(epochDay(d) + days);
}

/** LocalDate.plusMonths: same day of month, clamped to the last day of a shorter month. months may be negative. */
export function addMonths(d: YMD, months: number): YMD {
  const index = d.year * 12 + (d.month - 1) + months;
  const year = Math.floor(index / 12);
  const month = index - year * 12 + 1;
  return { year, month, day: Math.min(d.day, daysInMonth(year, month)) };
}

/** One repayment period later (n = 1) or earlier (n = -1), before any month-end adjustment. */
export function addPeriods(d: YMD, period: Period, n: number): YMD {
  return period === 'monthly' ? addMonths(d, n) : addDays(d, 7 * n);
}

/** CalendarUtils.adjustDate: back onto the seed's day of month where the month has it (monthly only). */
export function adjustToSeedDay(d: YMD, seed: YMD, period: Period): YMD {
  if (period === 'monthly' && seed.day > 28 && d.day >= 28) {
    return { ...d, day: Math.min(daysInMonth(d.year, d.month), seed.day) };
  }
  return d;
}

/**
 * The n due dates of a loan disbursed on `start`: DefaultScheduledDateGenerator.generateNextRepaymentDate, applied
 * n times. The first is `firstDue` when given, else start plus one period (clamped).
 */
export function dueDates(start: YMD, period: Period, n: number, firstDue?: YMD): YMD[] {
  const seed = firstDue ?? start;
  const out: YMD[] = [];
  let last = firstDue ?? addPeriods(start, period, 1);
  out.push(last);
  for (let i = 1; i < n; i++) {
    last = adjustToSeedDay(addPeriods(last, period, 1), seed, period);
    out.push(last);
  }
  return out;
}
