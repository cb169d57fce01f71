// When a time-boxed feature stops being valid. Two kinds, stated precisely:
//
//   CALENDAR_DAYS {days: N, time_zone}: N calendar days in time_zone, the day of purchase
//     included (it is day 1), ending at the first instant of local day N+1, normally 00:00 local
//     time. One day bought at 22:00 is valid for two hours; the length in hours follows the
//     clocks (a day with a DST change is 23 or 25 hours long). Where local midnight does not
//     exist (a DST gap at 00:00), the day starts at the first instant that exists (e.g. 01:00).
//   ROLLING {duration_seconds: D}: exactly D seconds after the purchase instant, whatever the
//     clocks do; "one day" is 86,400 seconds.
//
// Time-zone arithmetic uses only Intl.DateTimeFormat (the runtime's IANA database).
import type { ValiditySpec } from '@corebank/kit/gen/corebank/v1/product';

export const MAX_DAYS = 3660;
export const MAX_DURATION_SECONDS = 316_224_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      calendar: 'gregory',
      numberingSystem: 'latn',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The local calendar date of an instant in a time zone, as the number yyyymmdd. */
export function localDateKey(at: number, timeZone: string): number {
  let y = 0;
  let m = 0;
  let d = 0;
  for (const p of formatter(timeZone).formatToParts(at)) {
    if (p.type === 'year') y = Number(p.value);
    else if (p.type === 'month') m = Number(p.value);
    else if (p.type === 'day') d = Number(p.value);
  }
  return y * 10_000 + m * 100 + d;
}

/**
 * The first instant whose local date in timeZone is on or after y-m-d. Local dates never go back
 * as time moves forward, so a binary search over the 30 hours around UTC midnight finds it to the
 * millisecond, DST gaps and odd offsets included.
 */
export function startOfLocalDay(y: number, m: number, d: number, timeZone: string): Date {
  const target = y * 10_000 + m * 100 + d;
  const utcMidnight = Date.UTC(y, m - 1, d);
  let lo = utcMidnight - 15 * 3_600_000; // before the day everywhere (offsets are -12 h to +14 h)
  let hi = utcMidnight + 15 * 3_600_000; // inside the day (or later) everywhere
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localDateKey(mid, timeZone) >= target) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}

/** A time zone the runtime knows, by its IANA name; undefined when it is not one. */
export function canonicalTimeZone(tz: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz) || tz.length > 64) return undefined;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** The one rule for when a feature bought at purchasedAt stops being valid (exclusive end). */
export function validUntil(spec: ValiditySpec, purchasedAt: Date): Date {
  const k = spec.kind;
  if (k?.$case === 'rolling') return new Date(purchasedAt.getTime() + k.value.durationSeconds * 1000);
  if (k?.$case === 'calendarDays') {
    const key = localDateKey(purchasedAt.getTime(), k.value.timeZone);
    const y = Math.floor(key / 10_000);
    const m = Math.floor(key / 100) % 100;
    const d = key % 100;
    // Day 1 is the purchase day: the end is the start of day N+1, N days after the purchase date.
    const end = new Date(Date.UTC(y, m - 1, d + k.value.days));
    return startOfLocalDay(end.getUTCFullYear(), end.getUTCMonth() + 1, end.getUTCDate(), k.value.timeZone);
  }
  throw new Error('validity: neither calendar_days nor rolling is set');
}
