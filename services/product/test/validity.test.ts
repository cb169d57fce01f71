// validUntil: calendar days in a time zone (the purchase day counts as day 1, the end is local
// midnight starting day N+1) against rolling durations, around 22:00 local time and DST changes.
import type { ValiditySpec } from '@corebank/kit/gen/corebank/v1/product';
import { describe, expect, it } from 'vitest';
import { canonicalTimeZone, localDateKey, startOfLocalDay, validUntil } from '../src/validity.js';

const calendar = (days: number, timeZone: string): ValiditySpec => ({
  kind: { $case: 'calendarDays', value: { days, timeZone } },
});
const rolling = (durationSeconds: number): ValiditySpec => ({ kind: { $case: 'rolling', value: { durationSeconds } } });
const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();

describe('validUntil', () => {
  it.each([
    // [what, spec, purchased at (UTC instant), valid until (UTC instant)]
    [
      '1 calendar day, Berlin, bought 22:00 CET',
      calendar(1, 'Europe/Berlin'),
      '2024-01-10T21:00:00Z',
      '2024-01-10T23:00:00.000Z',
    ],
    [
      '2 calendar days, Berlin, bought 22:00 CET',
      calendar(2, 'Europe/Berlin'),
      '2024-01-10T21:00:00Z',
      '2024-01-11T23:00:00.000Z',
    ],
    ['rolling 24 h, Berlin, bought 22:00 CET', rolling(86_400), '2024-01-10T21:00:00Z', '2024-01-11T21:00:00.000Z'],
    [
      '1 calendar day, Shanghai, bought 22:00 CST',
      calendar(1, 'Asia/Shanghai'),
      '2024-01-10T14:00:00Z',
      '2024-01-10T16:00:00.000Z',
    ],
    [
      '7 calendar days, Shanghai, bought 22:00 CST',
      calendar(7, 'Asia/Shanghai'),
      '2024-01-10T14:00:00Z',
      '2024-01-16T16:00:00.000Z',
    ],
    ['rolling 24 h, Shanghai, bought 22:00 CST', rolling(86_400), '2024-01-10T14:00:00Z', '2024-01-11T14:00:00.000Z'],
    // Spring forward in Berlin on 2024-03-31 (02:00 CET -> 03:00 CEST): that day has 23 hours.
    [
      '1 calendar day, Berlin, bought 22:00 the evening before the change',
      calendar(1, 'Europe/Berlin'),
      '2024-03-30T21:00:00Z',
      '2024-03-30T23:00:00.000Z',
    ],
    [
      '2 calendar days across the change (47 hours)',
      calendar(2, 'Europe/Berlin'),
      '2024-03-30T21:00:00Z',
      '2024-03-31T22:00:00.000Z',
    ],
    [
      'rolling 24 h across the change ends at 23:00 local',
      rolling(86_400),
      '2024-03-30T21:00:00Z',
      '2024-03-31T21:00:00.000Z',
    ],
    [
      '1 calendar day bought 22:00 CEST on the change day',
      calendar(1, 'Europe/Berlin'),
      '2024-03-31T20:00:00Z',
      '2024-03-31T22:00:00.000Z',
    ],
    // Fall back on 2024-10-27 (03:00 CEST -> 02:00 CET): that day has 25 hours.
    [
      '2 calendar days across the fall-back (51 hours)',
      calendar(2, 'Europe/Berlin'),
      '2024-10-26T20:00:00Z',
      '2024-10-27T23:00:00.000Z',
    ],
    [
      'rolling 24 h across the fall-back ends at 21:00 local',
      rolling(86_400),
      '2024-10-26T20:00:00Z',
      '2024-10-27T20:00:00.000Z',
    ],
    // The purchase day is the local one: 08:00 in Auckland is still the previous day in UTC.
    [
      '1 calendar day, Auckland, bought 08:00 NZST',
      calendar(1, 'Pacific/Auckland'),
      '2024-06-14T20:00:00Z',
      '2024-06-15T12:00:00.000Z',
    ],
    // Bought at local midnight: the whole day.
    [
      '1 calendar day, Berlin, bought 00:00 CET',
      calendar(1, 'Europe/Berlin'),
      '2024-01-09T23:00:00Z',
      '2024-01-10T23:00:00.000Z',
    ],
    [
      '1 calendar day, Berlin, bought 23:59:59.999',
      calendar(1, 'Europe/Berlin'),
      '2024-01-10T22:59:59.999Z',
      '2024-01-10T23:00:00.000Z',
    ],
    // Santiago moves its clocks at midnight (2024-09-08 00:00 -04 -> 01:00 -03): the next day
    // starts at 01:00, the first local time that exists.
    [
      '1 calendar day, Santiago, the next local midnight does not exist',
      calendar(1, 'America/Santiago'),
      '2024-09-08T02:00:00Z',
      '2024-09-08T04:00:00.000Z',
    ],
    // Samoa skipped 2011-12-30 entirely: the day after 29 December began at 31 December 00:00.
    [
      '1 calendar day, Apia, the next day was skipped',
      calendar(1, 'Pacific/Apia'),
      '2011-12-30T08:00:00Z',
      '2011-12-30T10:00:00.000Z',
    ],
    ['rolling 90 minutes', rolling(5_400), '2024-01-10T21:00:00Z', '2024-01-10T22:30:00.000Z'],
  ])('%s', (_what, spec, purchased, expected) => {
    expect(iso(validUntil(spec, at(purchased)))).toBe(expected);
  });

  it('is always after the purchase, and a calendar end is a local day start', () => {
    for (const tz of ['Europe/Berlin', 'Asia/Shanghai', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu']) {
      for (let t = Date.UTC(2024, 0, 1, 0, 17); t < Date.UTC(2025, 0, 1); t += 7 * 3_600_000 + 13 * 60_000) {
        const end = validUntil(calendar(1, tz), new Date(t)).getTime();
        expect(end).toBeGreaterThan(t);
        expect(end - t).toBeLessThanOrEqual(25 * 3_600_000);
        expect(localDateKey(end, tz)).toBeGreaterThan(localDateKey(t, tz));
        expect(localDateKey(end - 1, tz)).toBe(localDateKey(t, tz));
      }
    }
  });

  it('finds the start of a local day exactly', () => {
    expect(iso(startOfLocalDay(2024, 3, 31, 'Europe/Berlin'))).toBe('2024-03-30T23:00:00.000Z');
    expect(iso(startOfLocalDay(2024, 4, 1, 'Europe/Berlin'))).toBe('2024-03-31T22:00:00.000Z');
    expect(iso(startOfLocalDay(2024, 1, 1, 'Asia/Kathmandu'))).toBe('2023-12-31T18:15:00.000Z');
    expect(iso(startOfLocalDay(2024, 1, 1, 'UTC'))).toBe('2024-01-01T00:00:00.000Z');
  });

  it('accepts IANA names and nothing else', () => {
    expect(canonicalTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(canonicalTimeZone('UTC')).toBeDefined();
    expect(canonicalTimeZone('Mars/Olympus')).toBeUndefined();
    expect(canonicalTimeZone('+01:00')).toBeUndefined();
    expect(canonicalTimeZone('')).toBeUndefined();
  });
});
