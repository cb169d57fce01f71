// The equal instalment (EMI) of an annuity: P * i / (1 - (1 + i)^-n), computed exactly as a fraction of bigints and
// rounded once. Fineract computes the same formula (FinanicalFunctions.pmt, called from
// LoanApplicationTerms.paymentPerPeriod) in doubles, then rounds the result: first to the instalment multiple when the
// product has one (Money.roundToMultiplesOf: HALF_EVEN to a multiple), then to the currency's minor unit (Money.of:
// setScale HALF_EVEN). Exact arithmetic gives Fineract's result except where the exact instalment lies within a
// double's error (about 1e-16 relative) of a rounding tie.
import { divRoundHalfEven } from '@corebank/kit';
import type { Dec } from './decimal.js';
import { decToFraction } from './decimal.js';

/**
 * The instalment that repays `principal` minor units over `periods` periods at periodic rate `rate`, rounded
 * half-even to `multiple` minor units (1 = the minor unit). A zero rate gives principal / periods.
 */
export function annuityInstalment(principal: bigint, rate: Dec, periods: number, multiple = 1n): bigint {
  if (!Number.isInteger(periods) || periods < 1) throw new RangeError('periods must be a positive integer');
  const [a, b] = decToFraction(rate); // i = a / b
  let num: bigint;
  let den: bigint;
  if (a === 0n) {
    num = principal;
    den = BigInt(periods);
  } else {
    // P * i / (1 - (1+i)^-n) = P * (a/b) * (a+b)^n / ((a+b)^n - b^n)
    const growth = (a + b) ** BigInt(periods);
    num = principal * a * growth;
    den = b * (growth - b ** BigInt(periods));
  }
  return divRoundHalfEven(num, den * multiple) * multiple;
}
