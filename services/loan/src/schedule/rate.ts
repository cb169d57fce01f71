// An annual nominal interest rate, in percent per annum, held exactly: a bigint count of 1e-10 percent.
// "9.4822" -> 94_822_000_000n. No floats: the rate is parsed from its decimal text and never passes through a number.
import type { Dec } from './decimal.js';
import { formatDec } from './decimal.js';

/** Decimal places of a percent a Rate keeps (at least the four the issue asks for: 9.4822 %). */
export const RATE_DECIMALS = 10;
const ONE_PERCENT = 10n ** BigInt(RATE_DECIMALS);
/** The largest rate accepted, 1000 % per annum: anything above is a typo, not a loan. */
const MAX_UNITS = 1000n * ONE_PERCENT;

export interface Rate {
  /** The annual rate in units of 1e-10 percent per annum. */
  readonly units: bigint;
}

export class RateError extends Error {}

const RATE_TEXT = /^(\d{1,4})(?:\.(\d{1,10}))?$/;

/** Parses a percent per annum such as "9.4822" or "12" (up to 10 decimals; 0 to 1000). */
export function parseRate(text: string): Rate {
  const m = RATE_TEXT.exec(text);
  if (!m) throw new RateError(`rate ${JSON.stringify(text)} is not a percent with at most ${RATE_DECIMALS} decimals`);
  const whole = BigInt(m[1] ?? '0');
  const fraction = (m[2] ?? '').padEnd(RATE_DECIMALS, '0');
  return rateFromUnits(whole * ONE_PERCENT + BigInt(fraction));
}

export function rateFromUnits(units: bigint): Rate {
  if (units < 0n || units > MAX_UNITS) throw new RateError(`rate out of range: ${units} units of 1e-10 %`);
  return { units };
}

/** The rate in percent as an exact decimal (what Fineract calls annualNominalInterestRate). */
export function rateAsPercent(rate: Rate): Dec {
  return { coefficient: rate.units, scale: RATE_DECIMALS };
}

/** "9.4822" for parseRate("9.4822"): trailing zeros dropped. */
export function formatRate(rate: Rate): string {
  const s = formatDec(rateAsPercent(rate));
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}
