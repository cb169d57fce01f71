// The general ledger of a business date (DESIGN.md "The bank's day"): per shard, GL line and
// currency, the day's journal (posted debits and credits of the transfers dated that day) and the
// trial balance at the end of the day (posted debits and credits since the beginning, up to and
// including the day: the accounts' balances now less the movements dated after it, so it can be
// computed while channels book on the next day).
//
// GL lines (the chart of accounts) and their categories:
//   ASSET      CASH, IN_TRANSIT, LOAN_INTEREST_RECEIVABLE, LOAN_PENALTY_RECEIVABLE, LOANS_PRINCIPAL
//   LIABILITY  CUSTOMER_DEPOSITS, DEPOSIT_INTEREST_PAYABLE
//   INCOME     LOAN_INTEREST_INCOME, LOAN_PENALTY_INCOME, LOAN_FEE_INCOME, LOAN_RECOVERY_INCOME,
//              DEPOSIT_FEE_INCOME, SERVICING_FEE_INCOME
//   EXPENSE    DEPOSIT_INTEREST_EXPENSE, LOAN_LOSS_EXPENSE
// A system account is the line of its SystemAccountKind (its code); a customer account with code
// 7000 (the loan service's loan accounts) is LOANS_PRINCIPAL; every other customer account is
// CUSTOMER_DEPOSITS. `balanced`: per currency, the lines' debits equal their credits, both at the
// end of the day and in the day's journal.
import { BUSINESS_DATE_LOCK, DomainError, isIsoDate, isUuid, type ShardRouter } from '@corebank/kit';
import { SystemAccountKind } from '@corebank/kit/gen/corebank/v1/account';
import {
  GlCategory,
  type Accrual,
  type GetTrialBalanceResponse,
  type TrialBalance,
  type TrialBalanceLine,
} from '@corebank/kit/gen/corebank/v1/day';
import type { Knex } from 'knex';
import { SYSTEM_KINDS } from '../store.js';
import type { ChunkWork, StepResult, StepRunner } from './steps.js';

/** The loan service's loan accounts (services/loan/src/clients/accounts.ts CODES.loanAccount). */
export const LOAN_ACCOUNT_CODE = 7000;

const kindName = (k: SystemAccountKind) => SystemAccountKind[k].replace('SYSTEM_ACCOUNT_KIND_', '');

const C = GlCategory;
export const GL_CATEGORIES: Record<string, GlCategory> = {
  CASH: C.GL_CATEGORY_ASSET,
  IN_TRANSIT: C.GL_CATEGORY_ASSET,
  LOAN_INTEREST_RECEIVABLE: C.GL_CATEGORY_ASSET,
  LOAN_PENALTY_RECEIVABLE: C.GL_CATEGORY_ASSET,
  LOANS_PRINCIPAL: C.GL_CATEGORY_ASSET,
  CUSTOMER_DEPOSITS: C.GL_CATEGORY_LIABILITY,
  DEPOSIT_INTEREST_PAYABLE: C.GL_CATEGORY_LIABILITY,
  PARTNER_FUNDING: C.GL_CATEGORY_LIABILITY,
  LOAN_INTEREST_INCOME: C.GL_CATEGORY_INCOME,
  LOAN_PENALTY_INCOME: C.GL_CATEGORY_INCOME,
  LOAN_FEE_INCOME: C.GL_CATEGORY_INCOME,
  LOAN_RECOVERY_INCOME: C.GL_CATEGORY_INCOME,
  DEPOSIT_FEE_INCOME: C.GL_CATEGORY_INCOME,
  SERVICING_FEE_INCOME: C.GL_CATEGORY_INCOME,
  DEPOSIT_INTEREST_EXPENSE: C.GL_CATEGORY_EXPENSE,
  LOAN_LOSS_EXPENSE: C.GL_CATEGORY_EXPENSE,
};

export const glCategory = (line: string): GlCategory => GL_CATEGORIES[line] ?? C.GL_CATEGORY_UNSPECIFIED;

interface LineRow {
  gl_account: string;
  currency: string;
  debits: string;
  credits: string;
  day_debits: string;
  day_credits: string;
}

const lineOf = (r: LineRow): TrialBalanceLine => ({
  glAccount: r.gl_account,
  category: glCategory(r.gl_account),
  currency: r.currency.trim(),
  debits: BigInt(r.debits),
  credits: BigInt(r.credits),
  dayDebits: BigInt(r.day_debits),
  dayCredits: BigInt(r.day_credits),
});

/**
 * A shard's lines for `date`, computed from its accounts and journal in one statement (one
 * snapshot): posted kinds are SINGLE_PHASE and POST_PENDING (whose amount is what was posted).
 * Lines whose four sums are all zero are left out.
 */
export async function computeLines(db: Knex, date: string): Promise<TrialBalanceLine[]> {
  const { rows } = (await db.raw(
    `with
     later as (
       select account_id, sum(d) as d, sum(c) as c from (
         select debit_account_id as account_id, amount as d, 0::bigint as c from transfers
          where business_date > ?::date and kind in (1, 3)
         union all
         select credit_account_id, 0::bigint, amount from transfers
          where business_date > ?::date and kind in (1, 3)) m
       group by account_id),
     today as (
       select account_id, sum(d) as d, sum(c) as c from (
         select debit_account_id as account_id, amount as d, 0::bigint as c from transfers
          where business_date = ?::date and kind in (1, 3)
         union all
         select credit_account_id, 0::bigint, amount from transfers
          where business_date = ?::date and kind in (1, 3)) m
       group by account_id),
     kinds as (select * from unnest(?::int[], ?::text[]) as k(code, name)),
     lines as (
       select case when a.system then coalesce(k.name, 'SYSTEM_' || a.code)
                   when a.code = ${LOAN_ACCOUNT_CODE} then 'LOANS_PRINCIPAL'
                   else 'CUSTOMER_DEPOSITS' end as gl_account,
              a.currency::text as currency,
              a.debits_posted - coalesce(l.d, 0) as debits, a.credits_posted - coalesce(l.c, 0) as credits,
              coalesce(t.d, 0) as day_debits, coalesce(t.c, 0) as day_credits
         from accounts a
         left join later l on l.account_id = a.id
         left join today t on t.account_id = a.id
         left join kinds k on a.system and k.code = a.code)
     select gl_account, currency, sum(debits)::text as debits, sum(credits)::text as credits,
            sum(day_debits)::text as day_debits, sum(day_credits)::text as day_credits
       from lines group by gl_account, currency
     having sum(debits) <> 0 or sum(credits) <> 0 or sum(day_debits) <> 0 or sum(day_credits) <> 0
      order by currency, gl_account`,
    [date, date, date, date, SYSTEM_KINDS, SYSTEM_KINDS.map(kindName)],
  )) as { rows: LineRow[] };
  return rows.map(lineOf);
}

/** Per currency, debits = credits at the end of the day and in the day's journal. */
export function isBalanced(lines: TrialBalanceLine[]): boolean {
  const by = new Map<string, { d: bigint; c: bigint; dd: bigint; dc: bigint }>();
  for (const l of lines) {
    const s = by.get(l.currency) ?? { d: 0n, c: 0n, dd: 0n, dc: 0n };
    s.d += l.debits;
    s.c += l.credits;
    s.dd += l.dayDebits;
    s.dc += l.dayCredits;
    by.set(l.currency, s);
  }
  return [...by.values()].every((s) => s.d === s.c && s.dd === s.dc);
}

/**
 * The GL step: one chunk per shard (the id range is ignored). Stores the day's lines (replacing
 * any of an earlier run: the day's journal is final once the date has moved, so a re-run stores
 * the same) and marks the day's GL done on the shard. Items: the lines; totals: the day's journal
 * debits and credits per currency (equal when the shard balances).
 */
export function glStep(): StepRunner {
  return async (w: ChunkWork): Promise<StepResult> => {
    const { db } = w.shard;
    // First the day is closed to bookings: under the business date's lock taken exclusively, so
    // every batch that dated a booking to it has committed, and none can after (ledger_load reads
    // the closed days). Then its journal is final and the lines are computed without the lock.
    await db.transaction(async (tx) => {
      await tx.raw('select pg_advisory_xact_lock(?)', [BUSINESS_DATE_LOCK]);
      await tx.raw('insert into ledger_closed_days (business_date) values (?::date) on conflict do nothing', [w.date]);
    });
    const lines = await db.transaction(async (tx) => {
      const lines = await computeLines(tx, w.date);
      await tx.raw(`delete from gl_trial_balances where business_date = ?::date`, [w.date]);
      if (lines.length > 0) {
        await tx.raw(
          `insert into gl_trial_balances (business_date, gl_account, currency, category, debits, credits,
                                          day_debits, day_credits)
           select ?::date, * from unnest(?::text[], ?::text[], ?::smallint[], ?::bigint[], ?::bigint[], ?::bigint[],
                                         ?::bigint[])`,
          [
            w.date,
            lines.map((l) => l.glAccount),
            lines.map((l) => l.currency),
            lines.map((l) => l.category),
            lines.map((l) => l.debits.toString()),
            lines.map((l) => l.credits.toString()),
            lines.map((l) => l.dayDebits.toString()),
            lines.map((l) => l.dayCredits.toString()),
          ] as never,
        );
      }
      await tx.raw(
        `insert into gl_days (business_date) values (?::date)
         on conflict (business_date) do update set computed_at = now()`,
        [w.date],
      );
      return lines;
    });
    const sums = new Map<string, { d: bigint; c: bigint }>();
    for (const l of lines) {
      const s = sums.get(l.currency) ?? { d: 0n, c: 0n };
      s.d += l.dayDebits;
      s.c += l.dayCredits;
      sums.set(l.currency, s);
    }
    return {
      items: lines.length,
      totals: [...sums].flatMap(([currency, s]) => [
        { name: 'journal_debits', currency, amount: s.d },
        { name: 'journal_credits', currency, amount: s.c },
      ]),
    };
  };
}

/** The stored lines of a day whose GL step ran on the shard; undefined when it has not. */
async function storedLines(db: Knex, date: string): Promise<TrialBalanceLine[] | undefined> {
  const { rows: done } = await db.raw(`select 1 from gl_days where business_date = ?::date`, [date]);
  if ((done as unknown[]).length === 0) return undefined;
  const { rows } = (await db.raw(
    `select gl_account, currency, debits::text, credits::text, day_debits::text, day_credits::text
       from gl_trial_balances where business_date = ?::date order by currency, gl_account`,
    [date],
  )) as { rows: LineRow[] };
  return rows.map(lineOf);
}

function checkDate(field: string, date: string) {
  if (!isIsoDate(date)) throw DomainError.invalid([{ field, description: 'must be a date YYYY-MM-DD' }]);
}

/**
 * GetTrialBalance: per shard (only `shard` when given), then the bank's total (shard unset) when
 * no shard was asked for. A shard whose GL step ran for the day answers from its stored lines;
 * otherwise (a day not closed yet) they are computed live.
 */
export async function trialBalance(
  router: ShardRouter,
  date: string,
  shard?: number,
): Promise<GetTrialBalanceResponse> {
  checkDate('business_date', date);
  if (shard !== undefined && (!Number.isInteger(shard) || shard < 0 || shard >= router.shards.length)) {
    throw DomainError.invalid([
      { field: 'shard', description: `must be a shard number below ${router.shards.length}` },
    ]);
  }
  const shards = shard === undefined ? router.shards : [router.shards[shard]!];
  const balances: TrialBalance[] = await Promise.all(
    shards.map(async (s) => {
      const lines = (await storedLines(s.db, date)) ?? (await computeLines(s.db, date));
      return { shard: s.index, lines, balanced: isBalanced(lines) };
    }),
  );
  if (shard === undefined) {
    const bank = new Map<string, TrialBalanceLine>();
    for (const l of balances.flatMap((b) => b.lines)) {
      const k = `${l.currency}\u0000${l.glAccount}`;
      const had = bank.get(k);
      bank.set(
        k,
        had
          ? {
              ...had,
              debits: had.debits + l.debits,
              credits: had.credits + l.credits,
              dayDebits: had.dayDebits + l.dayDebits,
              dayCredits: had.dayCredits + l.dayCredits,
            }
          : { ...l },
      );
    }
    const lines = [...bank.values()].sort(
      (a, b) => a.currency.localeCompare(b.currency) || a.glAccount.localeCompare(b.glAccount),
    );
    balances.push({ lines, balanced: isBalanced(lines) });
  }
  return { businessDate: date, balances };
}

/**
 * GetAccruals: an account's days in deposit_accruals between from and to (inclusive; '' open),
 * oldest first. NOT_FOUND for an account that does not exist.
 */
export async function accrualsOf(router: ShardRouter, accountId: string, from: string, to: string): Promise<Accrual[]> {
  const id = accountId.toLowerCase();
  if (!accountId) throw DomainError.invalid([{ field: 'account_id', description: 'is required' }]);
  if (!isUuid(id)) throw DomainError.invalid([{ field: 'account_id', description: 'is not a UUID' }]);
  if (from) checkDate('from_date', from);
  if (to) checkDate('to_date', to);
  const shard = router.byId(id);
  if (!shard) throw DomainError.notFound('account_id', 'account');
  const found = await shard.db.raw(`select 1 from accounts where id = ?`, [id]);
  if ((found.rows as unknown[]).length === 0) throw DomainError.notFound('account_id', 'account');
  const { rows } = (await shard.db.raw(
    `select to_char(business_date, 'YYYY-MM-DD') as business_date, balance::text, amount::text, posted::text
       from deposit_accruals
      where account_id = ? and business_date >= ?::date and business_date <= ?::date
      order by business_date`,
    [id, from || '1900-01-01', to || '9999-12-31'],
  )) as { rows: { business_date: string; balance: string; amount: string; posted: string }[] };
  return rows.map((r) => ({
    businessDate: r.business_date,
    balance: BigInt(r.balance),
    amount: BigInt(r.amount),
    posted: BigInt(r.posted),
  }));
}
