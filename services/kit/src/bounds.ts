// Bounded request fields: every field a request carries is checked against what its column holds
// (length, range, no NUL or other control characters) before it reaches SQL, so bad input is
// INVALID_ARGUMENT naming the field and never a failed statement. A description never echoes the
// value: it says what the field must be.
import type { Violations } from './errors.js';
import { INT64_MAX, INT64_MIN } from './money.js';
import { isUuid } from './sharding.js';

/** PostgreSQL `integer`. */
export const INT32_MIN = -2_147_483_648;
export const INT32_MAX = 2_147_483_647;
/** PostgreSQL `smallint`. */
export const INT16_MAX = 32_767;

/** Control characters (NUL included): never stored, and never valid in an identifier. */
const CONTROL = /\p{Cc}/u;
/** The same, but letting line breaks and tabs through, for free text such as a description. */
const CONTROL_BUT_LINES = /[^\P{Cc}\t\n\r]/u;

export interface TextBounds {
  /** Most UTF-16 code units the column is meant to hold. */
  max: number;
  /** Empty (or only whitespace) is a violation: "is required". */
  required?: boolean;
  /** Free text may hold tabs and line breaks; identifiers and names may not. */
  multiline?: boolean;
  /** The value must match this; `shape` says what it must be (for example "a UUID"). */
  pattern?: RegExp;
  shape?: string;
}

/**
 * A text field: true when it is present and within bounds, false when it is empty (and not
 * required) or was reported.
 */
export function text(v: Violations, field: string, value: string, b: TextBounds): boolean {
  if (typeof value !== 'string') {
    v.add(field, 'must be a string');
    return false;
  }
  if (!value.trim()) {
    if (b.required) v.add(field, 'is required');
    else if (value && CONTROL.test(value) && !(b.multiline && !CONTROL_BUT_LINES.test(value)))
      v.add(field, 'must not contain control characters');
    return false;
  }
  if (value.length > b.max) {
    v.add(field, `must be at most ${b.max} characters`);
    return false;
  }
  if ((b.multiline ? CONTROL_BUT_LINES : CONTROL).test(value)) {
    v.add(field, 'must not contain control characters');
    return false;
  }
  if (b.pattern && !b.pattern.test(value)) {
    v.add(field, `must be ${b.shape ?? 'well-formed'}`);
    return false;
  }
  return true;
}

/** A UUID field: the lower-case id, or undefined when it is empty (and not required) or was reported. */
export function uuid(
  v: Violations,
  field: string,
  value: string,
  opts: { required?: boolean; what?: string } = {},
): string | undefined {
  if (!value) {
    if (opts.required ?? true) v.add(field, 'is required');
    return undefined;
  }
  const id = value.length === 36 ? value.toLowerCase() : '';
  if (!isUuid(id)) {
    v.add(field, `is not ${opts.what ?? 'a UUID'}`);
    return undefined;
  }
  return id;
}

export interface IntBounds {
  min?: number;
  max?: number;
  /** 0 is "not set" and a violation: "is required". */
  required?: boolean;
}

function intIn(v: Violations, field: string, value: number, lo: number, hi: number, b: IntBounds): boolean {
  if (!Number.isSafeInteger(value)) {
    v.add(field, 'must be an integer');
    return false;
  }
  if (b.required && value === 0) {
    v.add(field, 'is required');
    return false;
  }
  const min = Math.max(lo, b.min ?? lo);
  const max = Math.min(hi, b.max ?? hi);
  if (value < min || value > max) {
    v.add(field, `must be ${min} to ${max}`);
    return false;
  }
  return true;
}

/** An integer stored in an `integer` column (whatever the proto type: int32 or uint32). */
export const int32 = (v: Violations, field: string, value: number, b: IntBounds = {}): boolean =>
  intIn(v, field, value, INT32_MIN, INT32_MAX, b);

/** A non-negative integer stored in an `integer` column: a uint32 above 2^31-1 does not fit. */
export const uint32 = (v: Violations, field: string, value: number, b: IntBounds = {}): boolean =>
  intIn(v, field, value, 0, INT32_MAX, b);

/** An integer stored in a `smallint` column. */
export const int16 = (v: Violations, field: string, value: number, b: IntBounds = {}): boolean =>
  intIn(v, field, value, -INT16_MAX - 1, INT16_MAX, b);

/** An int64 (bigint on the wire) stored in a `bigint` column. */
export function int64(v: Violations, field: string, value: bigint, b: { min?: bigint; max?: bigint } = {}): boolean {
  if (typeof value !== 'bigint') {
    v.add(field, 'must be an integer');
    return false;
  }
  const min = b.min ?? INT64_MIN;
  const max = b.max ?? INT64_MAX;
  if (value < min || value > max) {
    v.add(field, max === INT64_MAX ? `must be at least ${min}` : `must be ${min} to ${max}`);
    return false;
  }
  return true;
}

/** The names of a ts-proto enum's values, for a description that lists them. */
function names(e: Record<string | number, string | number>, allowed: readonly number[]): string {
  return allowed.map((n) => String(e[n])).join(', ');
}

/**
 * A ts-proto enum field. An unknown number arrives as itself (binary) or as -1 / UNRECOGNIZED
 * (JSON); both are violations, as is the UNSPECIFIED zero unless `allowUnspecified`. `allowed`
 * narrows the known values further (for example only the two decisions a reviewer can take).
 */
export function enumValue<E extends number>(
  v: Violations,
  field: string,
  value: E,
  e: Record<string | number, string | number>,
  opts: { allowUnspecified?: boolean; allowed?: readonly E[] } = {},
): boolean {
  if (opts.allowUnspecified && value === 0) return true;
  const known = (n: number) => Number.isInteger(n) && n > 0 && typeof e[n] === 'string' && e[n] !== 'UNRECOGNIZED';
  const allowed = opts.allowed ?? (Object.values(e).filter((n) => typeof n === 'number' && known(n)) as E[]);
  if (!known(value) || !allowed.includes(value)) {
    v.add(field, value === 0 ? 'is required' : `must be one of ${names(e, allowed)}`);
    return false;
  }
  return true;
}

/** A repeated field: at least `min` (default 0) and at most `max` elements. */
export function repeated(
  v: Violations,
  field: string,
  list: readonly unknown[],
  b: { min?: number; max: number },
): boolean {
  if (list.length < (b.min ?? 0)) {
    v.add(field, b.min === 1 ? 'must hold at least one element' : `must hold at least ${b.min} elements`);
    return false;
  }
  if (list.length > b.max) {
    v.add(field, `must hold at most ${b.max} elements`);
    return false;
  }
  return true;
}

/** google.protobuf.Timestamp's own range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

/** A timestamp within its documented range (beyond it, dates and SQL timestamps stop working). */
export function timestampField(v: Violations, field: string, t: { seconds: bigint; nanos: number }): boolean {
  if (
    typeof t.seconds !== 'bigint' ||
    t.seconds < MIN_SECONDS ||
    t.seconds > MAX_SECONDS ||
    !Number.isInteger(t.nanos) ||
    t.nanos < 0 ||
    t.nanos > 999_999_999
  ) {
    v.add(field, 'must be a timestamp between years 1 and 9999');
    return false;
  }
  return true;
}
