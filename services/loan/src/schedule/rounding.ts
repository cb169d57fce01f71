// Integer rounding helpers on bigint. Every rounding in the schedule engine goes through these, and every one is
// HALF_EVEN (banker's rounding), the rounding mode Apache Fineract ships with (global configuration "rounding-mode" = 6,
// read by MoneyHelper.getRoundingMode()).

/** num / den rounded to the nearest integer, ties to even. den must not be zero. */
export function divRoundHalfEven(num: bigint, den: bigint): bigint {
  if (den === 0n) throw new RangeError('division by zero');
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  const negative = num < 0n;
  const n = negative ? -num : num;
  let q = n / den;
  const r2 = (n % den) * 2n;
  if (r2 > den || (r2 === den && q % 2n === 1n)) q += 1n;
  return negative ? -q : q;
}

/** value rounded to the nearest multiple of `multiple` (> 0), ties to the even multiple. */
export function roundToMultipleHalfEven(value: bigint, multiple: bigint): bigint {
  if (multiple <= 0n) throw new RangeError('multiple must be positive');
  return divRoundHalfEven(value, multiple) * multiple;
}

export function pow10(exponent: number): bigint {
  if (!Number.isInteger(exponent) || exponent < 0) throw new RangeError(`bad exponent ${exponent}`);
  return 10n ** BigInt(exponent);
}
