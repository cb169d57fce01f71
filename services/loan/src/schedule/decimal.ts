// Exact decimals (a bigint coefficient and a power-of-ten scale), with the one inexact operation Apache Fineract
// performs on rates: rounding to a MathContext of 12 significant digits, HALF_EVEN (MoneyHelper.getMathContext():
// PRECISION = 12). Java's BigDecimal.divide(x, mc) / multiply(x, mc) give the exact result rounded to 12 significant
// digits; only the value matters to what follows, so a Dec is compared and used by value.
import { divRoundHalfEven } from '@corebank/kit';
import { pow10 } from './rounding.js';

/** value = coefficient * 10^-scale (scale may be negative). */
export interface Dec {
  readonly coefficient: bigint;
  readonly scale: number;
}

/** Fineract's MoneyHelper.PRECISION: significant digits kept by every `mc` operation on rates. */
export const FINERACT_PRECISION = 12;

export function decOf(value: bigint | number, scale = 0): Dec {
  return { coefficient: BigInt(value), scale };
}

function align(a: Dec, b: Dec): [bigint, bigint, number] {
  if (a.scale === b.scale) return [a.coefficient, b.coefficient, a.scale];
  if (a.scale > b.scale) return [a.coefficient, b.coefficient * pow10(a.scale - b.scale), a.scale];
  return [a.coefficient * pow10(b.scale - a.scale), b.coefficient, b.scale];
}

/** As an exact fraction [numerator, denominator > 0]. */
export function decToFraction(d: Dec): [bigint, bigint] {
  return d.scale >= 0 ? [d.coefficient, pow10(d.scale)] : [d.coefficient * pow10(-d.scale), 1n];
}

/** Exact product (BigDecimal.multiply without a MathContext). */
export function decMul(a: Dec, b: Dec): Dec {
  return { coefficient: a.coefficient * b.coefficient, scale: a.scale + b.scale };
}

export function decCompare(a: Dec, b: Dec): number {
  const [x, y] = align(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function digitCount(n: bigint): number {
  return (n < 0n ? -n : n).toString().length;
}

/**
 * The fraction num/den rounded half-even to `precision` significant digits, as BigDecimal does for an operation
 * under `new MathContext(precision, HALF_EVEN)`.
 */
export function roundFractionToPrecision(num: bigint, den: bigint, precision = FINERACT_PRECISION): Dec {
  if (den === 0n) throw new RangeError('division by zero');
  if (num === 0n) return { coefficient: 0n, scale: 0 };
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  // Find a scale s so that |num/den| * 10^s has exactly `precision` digits before the point.
  const absNum = num < 0n ? -num : num;
  let s = precision - (digitCount(absNum) - digitCount(den));
  const scaled = (k: number): bigint => (k >= 0 ? (absNum * pow10(k)) / den : absNum / (den * pow10(-k)));
  while (digitCount(scaled(s)) > precision) s -= 1;
  while (digitCount(scaled(s)) < precision) s += 1;
  let c = s >= 0 ? divRoundHalfEven(absNum * pow10(s), den) : divRoundHalfEven(absNum, den * pow10(-s));
  if (digitCount(c) > precision) {
    // 99.99..5 rounded up to 100.00..0: one digit too many, and it is a zero.
    c /= 10n;
    s -= 1;
  }
  return { coefficient: num < 0n ? -c : c, scale: s };
}

/** BigDecimal.divide(divisor, mc) with Fineract's MathContext. */
export function decDivMc(a: Dec, b: Dec, precision = FINERACT_PRECISION): Dec {
  const [an, ad] = decToFraction(a);
  const [bn, bd] = decToFraction(b);
  return roundFractionToPrecision(an * bd, ad * bn, precision);
}

/** BigDecimal.multiply(x, mc) with Fineract's MathContext. */
export function decMulMc(a: Dec, b: Dec, precision = FINERACT_PRECISION): Dec {
  const [n, d] = decToFraction(decMul(a, b));
  return roundFractionToPrecision(n, d, precision);
}

/** amount (an integer of minor units) times rate, rounded half-even to the minor unit: Money.multiplyRetainScale. */
export function mulRoundHalfEven(amount: bigint, rate: Dec): bigint {
  const [n, d] = decToFraction(rate);
  return divRoundHalfEven(amount * n, d);
}

export function formatDec(d: Dec): string {
  if (d.scale <= 0) return (d.coefficient * pow10(-d.scale)).toString();
  const neg = d.coefficient < 0n;
  const digits = (neg ? -d.coefficient : d.coefficient).toString().padStart(d.scale + 1, '0');
  const out = `${digits.slice(0, digits.length - d.scale)}.${digits.slice(digits.length - d.scale)}`;
  return neg ? `-${out}` : out;
}
