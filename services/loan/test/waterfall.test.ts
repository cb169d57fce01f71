// The waterfall and the reschedule after a prepayment, alone, amounts by hand.
import { describe, expect, it } from 'vitest';
import { allocate, outstanding, type Owed } from '../src/waterfall.js';
import { reschedule } from '../src/prepayment.js';
import { parseRate } from '../src/schedule/index.js';

const owed = (number: number, principal: bigint, interest: bigint, fee = 0n, penalty = 0n): Owed => ({
  number,
  due: { principal, interest, fee, penalty },
  paid: { principal: 0n, interest: 0n, fee: 0n, penalty: 0n },
});

describe('waterfall', () => {
  it('pays penalties, fees, interest, then principal, oldest instalment first', () => {
    // Instalment 1: penalty 50, fee 100, interest 2,875, principal 40,365; instalment 2: interest 2,643.
    const s = [owed(2, 40_597n, 2_643n), owed(1, 40_365n, 2_875n, 100n, 50n)];
    expect(outstanding(s)).toBe(50n + 100n + 2_875n + 40_365n + 2_643n + 40_597n);
    // 45,000 = 50 + 100 + 2,875 + 40,365 (= 43,390 for instalment 1) + 1,610 interest of instalment 2.
    const a = allocate(s, 45_000n);
    expect(a.allocations).toEqual([
      { instalment: 1, component: 'penalty', amount: 50n },
      { instalment: 1, component: 'fee', amount: 100n },
      { instalment: 1, component: 'interest', amount: 2_875n },
      { instalment: 1, component: 'principal', amount: 40_365n },
      { instalment: 2, component: 'interest', amount: 1_610n },
    ]);
    expect(a.totals).toEqual({ penalty: 50n, fee: 100n, interest: 4_485n, principal: 40_365n });
  });

  it('continues where earlier payments stopped, and refuses more than is owed', () => {
    const s = [owed(1, 40_365n, 2_875n)];
    s[0]!.paid.interest = 1_000n;
    // 1,875 interest left, then principal.
    expect(allocate(s, 2_000n).allocations).toEqual([
      { instalment: 1, component: 'interest', amount: 1_875n },
      { instalment: 1, component: 'principal', amount: 125n },
    ]);
    expect(() => allocate(s, 42_241n)).toThrow(RangeError);
    expect(() => allocate(s, 0n)).toThrow(RangeError);
    expect(allocate(s, 42_240n).totals).toEqual({ penalty: 0n, fee: 0n, interest: 1_875n, principal: 40_365n });
  });
});

describe('a product-stated order', () => {
  it('takes each instalment in the given order, oldest instalment first', () => {
    // Order interest, principal, fee, penalty. Instalment 1: penalty 50, fee 100, interest 2,875,
    // principal 40,365; instalment 2: interest 2,643, principal 40,597, fee 100.
    const s = [owed(1, 40_365n, 2_875n, 100n, 50n), owed(2, 40_597n, 2_643n, 100n)];
    // 43,300 = 2,875 interest + 40,365 principal (43,240) + 60 of the fee (100): the penalty waits.
    const a = allocate(s, 43_300n, ['interest', 'principal', 'fee', 'penalty']);
    expect(a.allocations).toEqual([
      { instalment: 1, component: 'interest', amount: 2_875n },
      { instalment: 1, component: 'principal', amount: 40_365n },
      { instalment: 1, component: 'fee', amount: 60n },
    ]);
    // 43,500 = 43,390 for all of instalment 1 (2,875 + 40,365 + 100 + 50), then 110 of instalment 2's interest.
    const b = allocate(s, 43_500n, ['interest', 'principal', 'fee', 'penalty']);
    expect(b.allocations.at(-2)).toEqual({ instalment: 1, component: 'penalty', amount: 50n });
    expect(b.allocations.at(-1)).toEqual({ instalment: 2, component: 'interest', amount: 110n });
    expect(b.totals).toEqual({ penalty: 50n, fee: 100n, interest: 2_985n, principal: 40_365n });
  });
});

describe('reschedule after a prepayment (pure)', () => {
  // 12 % a year, 30/360, monthly: Fineract's periodic rate (12 / 360 / 100) x 30 = 0.00999999999999,
  // i.e. 1 % to the minor unit. Interest of a period = balance x i, half-even.
  const basis = {
    annualRate: parseRate('12'),
    period: 'monthly' as const,
    dayCount: '30/360' as const,
    interestCalculationPeriod: 'daily' as const,
  };
  const later = (n: number) =>
    Array.from({ length: n }, (_, k) => ({
      number: k + 4,
      fromDate: `2024-${String(k + 3).padStart(2, '0')}-15`,
      dueDate: `2024-${String(k + 4).padStart(2, '0')}-15`,
    }));
  const rows = (r: ReturnType<typeof reschedule>) =>
    r.periods.map((p) => [p.principalDue, p.interestDue, p.outstandingAfter]);

  it('equal principal, REDUCE_TERM: the same 50,000 a period, until 300,000 is repaid', () => {
    const r = reschedule({
      strategy: 'reduceTerm',
      scheduleType: 'equalPrincipal',
      basis,
      opening: 300_000n,
      periods: later(9),
      current: 50_000n,
      principalGrace: 0,
      multiple: 1n,
    });
    // Interest 1 % of 300,000, 250,000, ... 50,000; six periods instead of nine.
    expect(rows(r)).toEqual([
      [50_000n, 3_000n, 250_000n],
      [50_000n, 2_500n, 200_000n],
      [50_000n, 2_000n, 150_000n],
      [50_000n, 1_500n, 100_000n],
      [50_000n, 1_000n, 50_000n],
      [50_000n, 500n, 0n],
    ]);
    expect(r.periods.map((p) => p.number)).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it('equal principal, REDUCE_INSTALMENT: 300,000 / 9 = 33,333.3 -> 33,333 a period, the last takes the residue', () => {
    const r = reschedule({
      strategy: 'reduceInstalment',
      scheduleType: 'equalPrincipal',
      basis,
      opening: 300_000n,
      periods: later(9),
      current: 50_000n,
      principalGrace: 0,
      multiple: 1n,
    });
    // Interest: 300,000 -> 3,000; 266,667 -> 2,666.67 -> 2,667; 233,334 -> 2,333; 200,001 -> 2,000;
    // 166,668 -> 1,667; 133,335 -> 1,333; 100,002 -> 1,000; 66,669 -> 667; 33,336 -> 333.
    // Last principal: 300,000 - 8 x 33,333 = 33,336.
    expect(rows(r)).toEqual([
      [33_333n, 3_000n, 266_667n],
      [33_333n, 2_667n, 233_334n],
      [33_333n, 2_333n, 200_001n],
      [33_333n, 2_000n, 166_668n],
      [33_333n, 1_667n, 133_335n],
      [33_333n, 1_333n, 100_002n],
      [33_333n, 1_000n, 66_669n],
      [33_333n, 667n, 33_336n],
      [33_336n, 333n, 0n],
    ]);
  });

  it('annuity, REDUCE_INSTALMENT with a principal grace period still running', () => {
    // 100,000 over 3 periods, the first interest only: instalment priced on 2 periods,
    // 100,000 x 0.01 / (1 - 1.01^-2) = 50,751.2 -> 50,751. Period 1: interest 1,000, no principal;
    // 2: interest 1,000, principal 49,751, left 50,249; 3: 502.49 -> 502, and the last 50,249.
    const r = reschedule({
      strategy: 'reduceInstalment',
      scheduleType: 'annuity',
      basis,
      opening: 100_000n,
      periods: later(3),
      current: 0n,
      principalGrace: 1,
      multiple: 1n,
    });
    expect(r.instalment).toBe(50_751n);
    expect(rows(r)).toEqual([
      [0n, 1_000n, 100_000n],
      [49_751n, 1_000n, 50_249n],
      [50_249n, 502n, 0n],
    ]);
  });
});
