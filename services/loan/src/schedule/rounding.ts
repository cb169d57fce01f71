// Integer rounding helpers on bigint. Every rounding in the schedule engine goes through these, and every one is
// HALF_EVEN (banker's rounding), the rounding mode Apache Fineract ships with (global configuration "rounding-mode" = 6,
// read by MoneyHelper.getRoundingMode()). The division itself is the kit's (money.ts), shared with the
// deposits' interest.
import { divRoundHalfEven } from '@corebank/kit';

/** value rounded to the nearest multiple of `multiple` (> 0), ties to the even multiple. */
export function roundToMultipleHalfEven(value: bigint, multiple: bigint): bigint {
  if (multiple <= 0n) throw new RangeError('multiple must be positive');
  return divRoundHalfEven(value, multiple) * multiple;
}

export function pow10(exponent: number): bigint {
  if (!Number.isInteger(exponent) || exponent < 0) throw new RangeError(`bad exponent ${exponent}`);
  return 10n ** BigInt(exponent);
}
