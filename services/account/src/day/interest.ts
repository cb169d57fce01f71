// Day counts and posting calendars of deposit interest (DESIGN.md "Money and time"), in exact
// integer arithmetic: a day's interest on balance B at r basis points is the rational
// B x r x w / (10000 x basis), where (w, basis) is the day's weight under the day count.
import { addDays } from '@corebank/kit';
import { DayCount, PostingFrequency } from '@corebank/kit/gen/corebank/v1/product';

/** The day's weight w / basis: ACT/365F 1/365, ACT/360 1/360, 30/360 days360(d, d+1)/360. */
export interface DayWeight {
  w: number;
  basis: number;
}

const parts = (d: string) => [Number(d.slice(0, 4)), Number(d.slice(5, 7)), Number(d.slice(8, 10))] as const;

/**
 * 30/360 bond basis (ISDA 2006 4.16(f)): D1 = min(d1, 30); D2 = 30 when d2 = 31 and D1 >= 30.
 * Over consecutive days it telescopes: the weights of a year's days sum to 360.
 */
export function days360(from: string, to: string): number {
  const [y1, m1, d1] = parts(from);
  const [y2, m2, d2] = parts(to);
  const D1 = Math.min(d1, 30);
  const D2 = d2 === 31 && D1 >= 30 ? 30 : d2;
  return 360 * (y2 - y1) + 30 * (m2 - m1) + (D2 - D1);
}

export function dayWeight(dayCount: DayCount, date: string): DayWeight {
  switch (dayCount) {
    case DayCount.DAY_COUNT_ACT_365F:
      return { w: 1, basis: 365 };
    case DayCount.DAY_COUNT_ACT_360:
      return { w: 1, basis: 360 };
    case DayCount.DAY_COUNT_THIRTY_360:
      return { w: days360(date, addDays(date, 1)), basis: 360 };
    default:
      throw new Error(`deposit product without a day count (${dayCount})`);
  }
}

export const isMonthEnd = (date: string) => addDays(date, 1).slice(8, 10) === '01';
export const isQuarterEnd = (date: string) => isMonthEnd(date) && ['03', '06', '09', '12'].includes(date.slice(5, 7));
export const isYearEnd = (date: string) => date.slice(5) === '12-31';

/**
 * Whether accrued interest is posted on `date` under the frequency: every day (DAILY), the
 * month's, quarter's or year's last day. AT_MATURITY is per account (its maturity), not here:
 * false. UNSPECIFIED (a product written before the field) posts monthly.
 */
export function postsOn(frequency: PostingFrequency, date: string): boolean {
  switch (frequency) {
    case PostingFrequency.POSTING_FREQUENCY_DAILY:
      return true;
    case PostingFrequency.POSTING_FREQUENCY_QUARTERLY:
      return isQuarterEnd(date);
    case PostingFrequency.POSTING_FREQUENCY_ANNUALLY:
      return isYearEnd(date);
    case PostingFrequency.POSTING_FREQUENCY_AT_MATURITY:
      return false;
    default:
      return isMonthEnd(date);
  }
}
