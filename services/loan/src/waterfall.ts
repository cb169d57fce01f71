// Repayment allocation: the default waterfall. Instalments oldest due first; within each, its
// penalties, then fees, then interest, then principal (Apache Fineract's default "penalties, fees,
// interest, principal order" strategy, applied instalment by instalment). Pure; amounts are bigint
// minor units, and the allocations always sum to the amount (or the amount is refused).

export type Component = 'penalty' | 'fee' | 'interest' | 'principal';
export const DEFAULT_ORDER: readonly Component[] = ['penalty', 'fee', 'interest', 'principal'];

export interface Owed {
  number: number;
  due: Record<Component, bigint>;
  paid: Record<Component, bigint>;
}

export interface Allocation {
  instalment: number;
  component: Component;
  amount: bigint;
}

export interface Allocated {
  allocations: Allocation[];
  totals: Record<Component, bigint>;
}

/** Everything still owed on these instalments. */
export const outstanding = (owed: readonly Owed[]): bigint =>
  owed.reduce((s, o) => DEFAULT_ORDER.reduce((t, c) => t + o.due[c] - o.paid[c], s), 0n);

/** Allocates `amount` (> 0, at most outstanding(owed); the caller refuses more) over the instalments. */
export function allocate(
  owed: readonly Owed[],
  amount: bigint,
  order: readonly Component[] = DEFAULT_ORDER,
): Allocated {
  if (amount <= 0n || amount > outstanding(owed)) throw new RangeError('amount must be 1 to what is outstanding');
  const allocations: Allocation[] = [];
  const totals: Record<Component, bigint> = { penalty: 0n, fee: 0n, interest: 0n, principal: 0n };
  let left = amount;
  for (const o of [...owed].sort((a, b) => a.number - b.number)) {
    for (const c of order) {
      if (left === 0n) return { allocations, totals };
      const open = o.due[c] - o.paid[c];
      const take = open < left ? open : left;
      if (take > 0n) {
        allocations.push({ instalment: o.number, component: c, amount: take });
        totals[c] += take;
        left -= take;
      }
    }
  }
  return { allocations, totals };
}
