// The payoff quote alone, amounts by hand (GetPayoffQuote's RPC checks are in repayment.test.ts).
import { describe, expect, it } from 'vitest';
import { payoffQuote, payoffWaivers } from '../src/payoff.js';
import type { InstalmentRow } from '../src/proto.js';

const row = (number: number, from: string, due: string, principal: bigint, interest: bigint): InstalmentRow => ({
  loan_id: 'l',
  number,
  from_date: from,
  due_date: due,
  days: 0,
  principal_due: principal,
  interest_due: interest,
  fee_due: 0n,
  penalty_due: 0n,
  outstanding_after: 0n,
  principal_paid: 0n,
  interest_paid: 0n,
  fee_paid: 0n,
  penalty_paid: 0n,
});

describe('payoff quote', () => {
  // 5,000.00 at 6.9 % from 2024-01-15: instalment 1 (31 days) interest 2,875, principal 40,365;
  // instalment 2 (2024-02-15 to 03-15, 29 days) interest 2,643, principal 40,597; 1,000 of
  // instalment 1's interest already paid.
  const rows = () => {
    const r = [
      row(1, '2024-01-15', '2024-02-15', 40_365n, 2_875n),
      row(2, '2024-02-15', '2024-03-15', 40_597n, 2_643n),
      row(3, '2024-03-15', '2024-04-15', 419_038n, 2_409n),
    ];
    r[0]!.interest_paid = 1_000n;
    return r;
  };

  it('owes all principal and the interest accrued so far, less what was paid', () => {
    // On the start date: nothing accrued; the 1,000 paid ahead is not refunded.
    expect(payoffQuote(rows(), '2024-01-15')).toEqual({
      principal: 500_000n,
      interest: 0n,
      fees: 0n,
      penalties: 0n,
      total: 500_000n,
    });
    // 10 days in: 2,875 × 10 / 31 = 927.42 -> 927 accrued, less 1,000 paid: 0.
    expect(payoffQuote(rows(), '2024-01-25').interest).toBe(0n);
    // 21 days in: 2,875 × 21 / 31 = 1,947.58 -> 1,948, less 1,000: 948.
    expect(payoffQuote(rows(), '2024-02-05')).toMatchObject({ interest: 948n, total: 500_948n });
    // On the due date: the whole 2,875, less 1,000: 1,875; the next period has not started.
    expect(payoffQuote(rows(), '2024-02-15').interest).toBe(1_875n);
    // 5 days into period 2: 1,875 + 2,643 × 5 / 29 = 455.69 -> 456.
    expect(payoffQuote(rows(), '2024-02-20')).toEqual({
      principal: 500_000n,
      interest: 2_331n,
      fees: 0n,
      penalties: 0n,
      total: 502_331n,
    });
  });

  it('takes paid principal off and rounds half-even', () => {
    const r = rows();
    r[0]!.principal_paid = 40_365n;
    r[0]!.interest_paid = 2_875n;
    // Period 2 with interest 2,900 (a test figure) over its 29 days: 3 days in, 2,900 × 3 / 29 = 300.
    r[1]!.interest_due = 2_900n;
    expect(payoffQuote(r, '2024-02-18')).toMatchObject({ principal: 459_635n, interest: 300n });
    const tie = [row(1, '2024-01-01', '2024-01-03', 10n, 1n), row(2, '2024-01-03', '2024-01-05', 10n, 3n)];
    expect(payoffQuote(tie, '2024-01-02').interest).toBe(0n); // 0.5 -> 0 (even)
    expect(payoffQuote(tie, '2024-01-04').interest).toBe(1n + 2n); // 1 due + 1.5 -> 2 (even)
  });

  it('waives what the schedule holds beyond the quote', () => {
    // As of 2024-02-05: instalment 1 keeps its 1,948 accrued (2,875 - 1,948 = 927 waived; 1,000 of
    // it is paid, so 948 is owed, as the quote says); instalments 2 and 3 waive all their interest.
    expect(payoffWaivers(rows(), '2024-02-05')).toEqual([
      [1, 927n],
      [2, 2_643n],
      [3, 2_409n],
    ]);
    // On the start date the 1,000 paid ahead is kept: 1,875 of instalment 1 is waived.
    expect(payoffWaivers(rows(), '2024-01-15')[0]).toEqual([1, 1_875n]);
    // On instalment 1's due date it is owed whole: nothing of it is waived.
    expect(payoffWaivers(rows(), '2024-02-15').map(([n]) => n)).toEqual([2, 3]);
  });
});
