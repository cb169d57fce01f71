// The default waterfall alone, amounts by hand.
import { describe, expect, it } from 'vitest';
import { allocate, outstanding, type Owed } from '../src/waterfall.js';

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
