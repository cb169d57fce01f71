// The payer account's product limits: per transaction, and per calendar day (in LIMIT_TIME_ZONE).
// The daily limit is counted in daily_debit_usage, updated with a guard in the order's own
// transaction: concurrent orders of one account serialise on the row, so together they can never
// pass the limit. An order that ends rejected or cancelled gives its amount back.
import type { Tx } from '@corebank/kit';

export interface Limits {
  /** 0: none. */
  perTransaction: bigint;
  /** 0: none. */
  daily: bigint;
}

export const NO_LIMITS: Limits = { perTransaction: 0n, daily: 0n };

/** The calendar day of an instant in a time zone, as YYYY-MM-DD. */
export function limitDay(at: Date, timeZone: string): string {
  return dayFormat(timeZone).format(at);
}

/** One formatter per time zone: building one costs more than the rest of an order's limit check. */
const dayFormats = new Map<string, Intl.DateTimeFormat>();
function dayFormat(timeZone: string): Intl.DateTimeFormat {
  let f = dayFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormats.set(timeZone, f);
  }
  return f;
}

export type LimitVerdict = { ok: true; day: string | null } | { ok: false; reason: string };

/**
 * Checks the limits for a debit of amount and, when there is a daily limit, counts it against the
 * day. Returns the day counted (null without a daily limit) or the limit it would pass.
 */
export async function reserveLimits(
  tx: Tx,
  accountId: string,
  amount: bigint,
  limits: Limits,
  day: string,
): Promise<LimitVerdict> {
  if (limits.perTransaction > 0n && amount > limits.perTransaction) {
    return { ok: false, reason: 'PER_TRANSACTION_LIMIT_EXCEEDED' };
  }
  if (limits.daily <= 0n) return { ok: true, day: null };
  if (amount > limits.daily) return { ok: false, reason: 'DAILY_DEBIT_LIMIT_EXCEEDED' };
  const { rows } = await tx.raw(
    `insert into daily_debit_usage as u (account_id, day, amount) values (?, ?, ?)
       on conflict (account_id, day) do update set amount = u.amount + excluded.amount
       where u.amount + excluded.amount <= ?
     returning amount`,
    [accountId, day, amount.toString(), limits.daily.toString()],
  );
  return rows.length ? { ok: true, day } : { ok: false, reason: 'DAILY_DEBIT_LIMIT_EXCEEDED' };
}

/** Gives an order's amount back to the day it was counted against. */
export async function releaseLimit(tx: Tx, accountId: string, day: string, amount: bigint): Promise<void> {
  await tx.raw(`update daily_debit_usage set amount = amount - ? where account_id = ? and day = ?`, [
    amount.toString(),
    accountId,
    day,
  ]);
}
