// One business day of a batch of loans (RunLoanDay), for the close of business: set-based SQL per
// step and one ledger call per step for the whole batch, never an RPC per loan (but see the
// balance read of step b). Steps, in order, each idempotent per (loan, business date, step):
//
//  a. Interest accrual. A(d), the interest accrued by the end of business date d, is the sum over
//     the schedule's periods of round_half_even(interest_due * elapsed / days), elapsed = the
//     calendar days from the period's from_date to d, at most its days (the ONE rounding point;
//     the same straight line as GetPayoffQuote). The day's accrual is A(d) less all accrued so far
//     (loans.interest_accrued), so a period's daily accruals sum exactly to its scheduled interest:
//     the residue of each day's rounding is carried, never dropped. One row per (loan, date) in
//     loan_accruals (kind 1); loans.accrued_through = d makes a re-run skip the loan.
//  b. Collection of the instalments due on or before d and unpaid: min(what they owe, the
//     repayment account's available balance) as a repayment of kind COLLECTION (idempotency key
//     "collection:<d>"), allocated by the waterfall over those instalments only, recorded PENDING
//     like any repayment, then ONE CreateTransfers call with each loan's linked chain; outcomes
//     recorded as settle() does (a chain the ledger refuses is REFUSED, its allocation given back).
//  c. Penalty interest on overdue principal (instalments whose due date + the product's grace_days
//     is before d): exact numerator penalty_exact += overdue * rate (1e-10 % units), the amount
//     booked so far is round_half_even(penalty_exact / (100 * 1e10 * year days)) (365 for
//     ACT/365F, 360 for ACT/360 and 30/360; one calendar day at a time), the day's penalty the
//     difference (residue carried). It is added to the oldest overdue instalment's penalty_due, so
//     the waterfall collects it first. Rows in loan_accruals (kind 2).
//  d. Delinquency: days past due = d minus the due date of the oldest instalment due on or before
//     d that is unpaid (0 if none, and 0 while that is at most grace_days); the bucket is the
//     largest of the product's lower bounds (default 1, 31, 61, 91) at most that; non-performing
//     above 90 days. A bucket change is a row in loan_delinquency_changes and a
//     loan_delinquency_changed event; an instalment unpaid at the close of its due date gets
//     overdue_on = d and a loan_instalment_overdue event. Only loans past due or with something
//     due are looked at (a current loan with nothing due stays current): delinquency_as_of is the
//     last date a loan was classified that way, accrued_through the last date of any step.
//     Likewise step c looks only at loans with overdue principal.
//
// GL: each accrual step's batch total per currency is ONE loan_postings row (debit
// LOAN_INTEREST_RECEIVABLE / credit LOAN_INTEREST_INCOME; LOAN_PENALTY_RECEIVABLE /
// LOAN_PENALTY_INCOME), written in the transaction of its sub-ledger rows, its id derived from
// (shard, date, step, range, currency, n), then posted in one ledger call; a posting the ledger
// did not confirm (a crash, an outage) is posted by the next run of the range or the sweeper.
import { createHash } from 'node:crypto';
import {
  DomainError,
  hashedUuid,
  newEventId,
  toTimestamp,
  writeEvents,
  type Logger,
  type OutboxEvent,
  type Shard,
  type ShardRouter,
  divRoundHalfEven,
} from '@corebank/kit';
import type { Knex } from 'knex';
import { SystemAccountKind as G, type Account, type Transfer } from '@corebank/kit/gen/corebank/v1/account';
import { LoanDelinquencyChanged, LoanInstalmentOverdue } from '@corebank/kit/gen/corebank/v1/events';
import { DayCount, type LoanTerms } from '@corebank/kit/gen/corebank/v1/product';
import {
  RepaymentKind as K,
  RepaymentStatus as S,
  type LoanDayTotals,
  type RunLoanDayResponse,
} from '@corebank/kit/gen/corebank/v1/loan';
import { CODES, singlePhase, type Accounts } from './clients/accounts.js';
import type { Products } from './clients/products.js';
import { SUBJECTS } from './events.js';
import { loanToProto, type RepaymentRow } from './proto.js';
import { glAccounts, repaymentTransfers, takeInterest } from './receivables.js';
import { countSettlement, recordSettlement, repaymentIdFor, type Settlement } from './repayments.js';
import { parseRate } from './schedule/index.js';
import { daysBetween, parseDate } from './schedule/calendar.js';
import { applyAllocations, findLoan, REPAYMENT_COLUMNS } from './store.js';
import { loanTermsOf, waterfallOf } from './terms.js';
import { repaymentLegs, type LoanPartnerRow } from './colending.js';
import { repaymentSplits } from './colending-store.js';
import { allocate, outstanding, type Owed } from './waterfall.js';
import { bucketChanges, dayLoans, dayRuns, daySeconds } from './metrics.js';

export interface DayDeps {
  router: ShardRouter;
  accounts: Accounts;
  products: Products;
  log: Logger;
}

/** The loans of a run: a shard's ACTIVE loans with id in (after, upTo] ('' = open), or these ids. */
export interface DayScope {
  date: string;
  shard: Shard;
  after: string;
  upTo: string;
  ids?: string[];
}

export const DEFAULT_BUCKETS = [1, 31, 61, 91];
/** Non-performing: more than this many days past due. */
export const NON_PERFORMING_AFTER = 90;
const KIND = { interest: 1, penalty: 2 } as const;
type Step = keyof typeof KIND;
const RATE_SCALE = 100n * 10n ** 10n; // a Rate's units per 1 (100 % = 100 * 1e10 units)

export const collectionKey = (date: string) => `collection:${date}`;

export function rangeKey(s: DayScope): string {
  if (!s.ids) return `${s.after}..${s.upTo}`;
  return `ids:${createHash('sha256')
    .update([...s.ids].sort().join(','))
    .digest('base64url')}`;
}

const pgArray = (values: readonly (string | bigint | number | boolean)[]) => `{${values.map(String).join(',')}}`;

/** The range predicate on `col` with its bindings. */
function inRange(s: DayScope, col = 'l.id'): { sql: string; b: string[] } {
  if (s.ids) return { sql: `${col} = any(?::uuid[])`, b: [pgArray(s.ids)] };
  const parts: string[] = [];
  const b: string[] = [];
  if (s.after) {
    parts.push(`${col} > ?::uuid`);
    b.push(s.after);
  }
  if (s.upTo) {
    parts.push(`${col} <= ?::uuid`);
    b.push(s.upTo);
  }
  return { sql: parts.length ? parts.join(' and ') : 'true', b };
}

async function rows<T>(db: Knex | Knex.Transaction, sql: string, b: readonly unknown[]): Promise<T[]> {
  return ((await db.raw(sql, b as Knex.RawBinding[])) as { rows: T[] }).rows;
}

/** Runs the day's steps for the scope and returns the totals recorded for it. */
export async function runLoanDay(d: DayDeps, s: DayScope, deadline?: Date): Promise<RunLoanDayResponse> {
  const end = daySeconds.startTimer();
  try {
    const res = await runSteps(d, s, deadline);
    dayRuns.inc({ outcome: 'ok' });
    return res;
  } catch (err) {
    dayRuns.inc({ outcome: 'error' });
    throw err;
  } finally {
    end();
  }
}

async function runSteps(d: DayDeps, s: DayScope, deadline?: Date): Promise<RunLoanDayResponse> {
  const range = inRange(s);
  const kinds = await rows<{ product_id: string; product_version: number; currency: string }>(
    s.shard.db,
    `select distinct product_id, product_version, currency from loans l where l.status = 2 and ${range.sql}`,
    range.b,
  );
  const terms = new Map<string, LoanTerms>();
  const gl = new Map<string, Record<'ir' | 'ii' | 'pr' | 'pi', string>>();
  for (const k of kinds) {
    terms.set(
      `${k.product_id}@${k.product_version}`,
      loanTermsOf(await d.products.get(k.product_id, k.product_version, deadline)),
    );
    if (!gl.has(k.currency)) {
      const at = (kind: G) => d.accounts.system(kind, s.shard.index, k.currency, deadline);
      gl.set(k.currency, {
        ir: await at(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE),
        ii: await at(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME),
        pr: await at(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_RECEIVABLE),
        pi: await at(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_INCOME),
      });
    }
  }
  const termsOf = (l: { product_id: string; product_version: number }) =>
    terms.get(`${l.product_id}@${l.product_version}`)!;
  const ctx: StepContext = { s, range, gl, termsOf };

  // Each step's work is counted after its transaction committed (a re-run skips what is done).
  dayLoans.inc({ step: 'interest' }, await s.shard.db.transaction((tx) => accrueInterest(tx, ctx)));
  await postPending(d, s, deadline);
  await collect(d, ctx, deadline);
  dayLoans.inc({ step: 'penalty' }, await s.shard.db.transaction((tx) => accruePenalties(tx, ctx)));
  await postPending(d, s, deadline);
  const moved = await s.shard.db.transaction((tx) => reclassify(tx, ctx));
  dayLoans.inc({ step: 'reclassify' }, moved.loans);
  for (const bucket of moved.buckets) bucketChanges.inc({ bucket: String(bucket) });
  return dayTotals(s);
}

interface StepContext {
  s: DayScope;
  range: { sql: string; b: string[] };
  gl: Map<string, Record<'ir' | 'ii' | 'pr' | 'pi', string>>;
  termsOf: (l: { product_id: string; product_version: number }) => LoanTerms;
}

/**
 * The GL postings of a step's batch, one per currency with a non-zero total, in the step's
 * transaction. Returns the posting id per currency (for the sub-ledger rows).
 */
async function addPostings(tx: Knex.Transaction, c: StepContext, step: Step, sums: Map<string, bigint>) {
  const ids = new Map<string, string>();
  const key = rangeKey(c.s);
  for (const [currency, sum] of sums) {
    if (sum === 0n) continue;
    const [{ n }] = (await rows<{ n: bigint }>(
      tx,
      `select count(*) as n from loan_postings where business_date = ? and step = ? and range_key = ? and currency = ?`,
      [c.s.date, KIND[step], key, currency],
    )) as [{ n: bigint }];
    const id = hashedUuid('loan-day', String(c.s.shard.index), c.s.date, step, key, currency, String(n));
    const a = c.gl.get(currency)!;
    const [debit, credit] = step === 'interest' ? [a.ir, a.ii] : [a.pr, a.pi];
    await tx('loan_postings').insert({
      id,
      business_date: c.s.date,
      step: KIND[step],
      range_key: key,
      currency,
      amount: sum > 0n ? sum : -sum,
      debit_account_id: sum > 0n ? debit : credit,
      credit_account_id: sum > 0n ? credit : debit,
    });
    ids.set(currency, id);
  }
  return ids;
}

interface Accrual {
  loan_id: string;
  currency: string;
  amount: bigint;
  booked: bigint;
}

async function insertAccruals(tx: Knex.Transaction, c: StepContext, step: Step, list: Accrual[]) {
  if (!list.length) return;
  const sums = new Map<string, bigint>();
  for (const a of list) sums.set(a.currency, (sums.get(a.currency) ?? 0n) + a.booked);
  const postings = await addPostings(tx, c, step, sums);
  await tx.raw(
    `insert into loan_accruals (loan_id, business_date, kind, currency, amount, booked, posting_id)
     select x.loan_id, ?::date, ?, x.currency, x.amount, x.booked, x.posting_id
       from unnest(?::uuid[], ?::text[], ?::bigint[], ?::bigint[], ?::uuid[])
         as x(loan_id, currency, amount, booked, posting_id)`,
    [
      c.s.date,
      KIND[step],
      pgArray(list.map((a) => a.loan_id)),
      pgArray(list.map((a) => a.currency)),
      pgArray(list.map((a) => a.amount)),
      pgArray(list.map((a) => a.booked)),
      pgArray(list.map((a) => postings.get(a.currency) ?? 'NULL')),
    ],
  );
}

/** A period's interest accrued by the end of `date` (straight line over its calendar days, half-even). */
export function accruedInPeriod(interest: bigint, from: string, due: string, date: string): bigint {
  const days = daysBetween(parseDate(from), parseDate(due));
  const elapsed = Math.min(Math.max(daysBetween(parseDate(from), parseDate(date)), 0), days);
  if (elapsed === days) return interest;
  return divRoundHalfEven(interest * BigInt(elapsed), BigInt(days));
}

/** Returns the number of loans accrued. */
async function accrueInterest(tx: Knex.Transaction, c: StepContext): Promise<number> {
  const { s, range } = c;
  const loans = await rows<{ id: string; currency: string; interest_accrued: bigint; interest_prepaid: bigint }>(
    tx,
    `select l.id, l.currency, l.interest_accrued, l.interest_prepaid from loans l
      where l.status = 2 and l.disbursed_on <= ?::date and (l.accrued_through is null or l.accrued_through < ?::date)
        and ${range.sql} order by l.id for update`,
    [s.date, s.date, ...range.b],
  );
  if (!loans.length) return 0;
  const periods = await rows<{ loan_id: string; from_date: string; due_date: string; interest_due: bigint }>(
    tx,
    `select loan_id, from_date::text as from_date, due_date::text as due_date, interest_due from loan_instalments
      where loan_id = any(?::uuid[]) and from_date < ?::date`,
    [pgArray(loans.map((l) => l.id)), s.date],
  );
  const target = new Map<string, bigint>();
  for (const p of periods) {
    target.set(
      p.loan_id,
      (target.get(p.loan_id) ?? 0n) + accruedInPeriod(p.interest_due, p.from_date, p.due_date, s.date),
    );
  }
  const list: (Accrual & { prepaidUsed: bigint })[] = loans.map((l) => {
    const amount = (target.get(l.id) ?? 0n) - l.interest_accrued;
    const prepaidUsed = amount > 0n ? (amount < l.interest_prepaid ? amount : l.interest_prepaid) : 0n;
    return { loan_id: l.id, currency: l.currency, amount, booked: amount - prepaidUsed, prepaidUsed };
  });
  await insertAccruals(tx, c, 'interest', list);
  await tx.raw(
    `update loans l set interest_accrued = l.interest_accrued + x.amount,
            interest_receivable = l.interest_receivable + x.booked,
            interest_prepaid = l.interest_prepaid - x.used, accrued_through = ?::date
       from unnest(?::uuid[], ?::bigint[], ?::bigint[], ?::bigint[]) as x(id, amount, booked, used)
      where l.id = x.id`,
    [
      s.date,
      pgArray(list.map((a) => a.loan_id)),
      pgArray(list.map((a) => a.amount)),
      pgArray(list.map((a) => a.booked)),
      pgArray(list.map((a) => a.prepaidUsed)),
    ],
  );
  return loans.length;
}

const yearDays = (t: LoanTerms): bigint => (t.dayCount === DayCount.DAY_COUNT_ACT_365F ? 365n : 360n);

/** The product's penalty rate in 1e-10 % units per annum: penalty_rate when set, else penalty_rate_bps. */
export const penaltyRateUnits = (t: LoanTerms): bigint =>
  t.penaltyRate ? parseRate(t.penaltyRate).units : BigInt(t.penaltyRateBps) * 10n ** 8n;

const addDays = (date: string, n: number): string => {
  const t = Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10)));
  return new Date(t + n * 86_400_000).toISOString().slice(0, 10);
};

/** Returns the number of loans charged penalty interest. */
async function accruePenalties(tx: Knex.Transaction, c: StepContext): Promise<number> {
  const { s, range } = c;
  const loans = await rows<{
    id: string;
    currency: string;
    product_id: string;
    product_version: number;
    penalty_exact: string;
    penalty_accrued: bigint;
  }>(
    tx,
    `select l.id, l.currency, l.product_id, l.product_version, l.penalty_exact::text as penalty_exact, l.penalty_accrued
       from loans l
      where l.status = 2 and l.disbursed_on <= ?::date and (l.penalised_through is null or l.penalised_through < ?::date)
        and ${range.sql}
        and exists (select 1 from loan_instalments i
                     where i.loan_id = l.id and i.due_date < ?::date and i.principal_due > i.principal_paid)
      order by l.id for update`,
    [s.date, s.date, ...range.b, s.date],
  );
  if (!loans.length) return 0;
  const overdue = await rows<{ loan_id: string; number: number; due_date: string; principal: bigint }>(
    tx,
    `select loan_id, number, due_date::text as due_date, principal_due - principal_paid as principal
       from loan_instalments where loan_id = any(?::uuid[]) and due_date < ?::date and principal_due > principal_paid
      order by loan_id, number`,
    [pgArray(loans.map((l) => l.id)), s.date],
  );
  const byLoan = new Map<string, typeof overdue>();
  for (const o of overdue) byLoan.set(o.loan_id, [...(byLoan.get(o.loan_id) ?? []), o]);
  const list: (Accrual & { exact: bigint; instalment: number })[] = [];
  for (const l of loans) {
    const t = c.termsOf(l);
    const rate = penaltyRateUnits(t);
    // Past grace: due date + grace_days before the date (the due date itself is never overdue).
    const late = (byLoan.get(l.id) ?? []).filter((o) => addDays(o.due_date, t.graceDays) < s.date);
    if (!late.length || rate === 0n) continue;
    const principal = late.reduce((sum, o) => sum + o.principal, 0n);
    const exact = BigInt(l.penalty_exact) + principal * rate;
    const amount = divRoundHalfEven(exact, RATE_SCALE * yearDays(t)) - l.penalty_accrued;
    list.push({ loan_id: l.id, currency: l.currency, amount, booked: amount, exact, instalment: late[0]!.number });
  }
  await insertAccruals(tx, c, 'penalty', list);
  const pen = new Map(list.map((a) => [a.loan_id, a]));
  await tx.raw(
    `update loans l set penalty_exact = x.exact, penalty_accrued = l.penalty_accrued + x.amount,
            penalised_through = ?::date
       from unnest(?::uuid[], ?::numeric[], ?::bigint[]) as x(id, exact, amount)
      where l.id = x.id`,
    [
      s.date,
      pgArray(loans.map((l) => l.id)),
      pgArray(loans.map((l) => pen.get(l.id)?.exact ?? l.penalty_exact)),
      pgArray(loans.map((l) => pen.get(l.id)?.amount ?? 0n)),
    ],
  );
  const charged = list.filter((a) => a.amount !== 0n);
  if (charged.length) {
    await tx.raw(
      `update loan_instalments i set penalty_due = i.penalty_due + x.amount
         from unnest(?::uuid[], ?::int[], ?::bigint[]) as x(loan_id, number, amount)
        where i.loan_id = x.loan_id and i.number = x.number`,
      [
        pgArray(charged.map((a) => a.loan_id)),
        pgArray(charged.map((a) => a.instalment)),
        pgArray(charged.map((a) => a.amount)),
      ],
    );
  }
  return charged.length;
}

/** What a deposit account can pay without an overdraft or going below its minimum balance. */
export const available = (a: Account): bigint => {
  const free = a.creditsPosted - a.debitsPosted - a.debitsPending - a.minimumBalance;
  return a.closed || a.debitsBlocked || free < 0n ? 0n : free;
};

async function mapLimit<T, R>(items: T[], limit: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i]!);
      }
    }),
  );
  return out;
}

const UNPAID = `(i.principal_due + i.interest_due + i.fee_due + i.penalty_due) >
  (i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid)`;

async function collect(d: DayDeps, c: StepContext, deadline?: Date): Promise<void> {
  const { s, range } = c;
  const key = collectionKey(s.date);
  const due = await rows<{
    id: string;
    repayment_account_id: string;
    currency: string;
    product_id: string;
    product_version: number;
    partners: LoanPartnerRow[] | null;
  }>(
    s.shard.db,
    `select l.id, l.repayment_account_id, l.currency, l.product_id, l.product_version, l.partners from loans l
      where l.status = 2 and ${range.sql}
        and exists (select 1 from loan_instalments i where i.loan_id = l.id and i.due_date <= ?::date and ${UNPAID})
        and not exists (select 1 from loan_repayments r where r.loan_id = l.id and r.idempotency_key = ?)
      order by l.id`,
    [...range.b, s.date, key],
  );
  if (due.length) {
    // The balance of each repayment account with something due (a small part of a day's loans).
    const accounts = await mapLimit(due, 32, (l) => d.accounts.get(l.repayment_account_id, deadline));
    const gls = new Map<string, Awaited<ReturnType<typeof glAccounts>>>();
    for (const [i, l] of due.entries()) {
      const a = accounts[i];
      const k = `${a?.shard}:${l.currency}`;
      if (a && !gls.has(k)) gls.set(k, await glAccounts(d.accounts, a.shard, l.currency, false, deadline));
    }
    await s.shard.db.transaction(async (tx) => {
      const locked = await rows<{ id: string }>(
        tx,
        `select l.id from loans l where l.id = any(?::uuid[]) and l.status = 2
            and not exists (select 1 from loan_repayments r where r.loan_id = l.id and r.idempotency_key = ?)
          order by l.id for update`,
        [pgArray(due.map((l) => l.id)), key],
      );
      const open = new Set(locked.map((l) => l.id));
      const instalments = await rows<{
        loan_id: string;
        number: number;
        principal_due: bigint;
        interest_due: bigint;
        fee_due: bigint;
        penalty_due: bigint;
        principal_paid: bigint;
        interest_paid: bigint;
        fee_paid: bigint;
        penalty_paid: bigint;
      }>(
        tx,
        `select i.* from loan_instalments i where i.loan_id = any(?::uuid[]) and i.due_date <= ?::date and ${UNPAID}
          order by i.loan_id, i.number`,
        [pgArray([...open]), s.date],
      );
      const owedBy = new Map<string, Owed[]>();
      for (const i of instalments) {
        const o: Owed = {
          number: i.number,
          due: { penalty: i.penalty_due, fee: i.fee_due, interest: i.interest_due, principal: i.principal_due },
          paid: { penalty: i.penalty_paid, fee: i.fee_paid, interest: i.interest_paid, principal: i.principal_paid },
        };
        owedBy.set(i.loan_id, [...(owedBy.get(i.loan_id) ?? []), o]);
      }
      const now = new Date();
      for (const [i, l] of due.entries()) {
        const account = accounts[i];
        const owed = owedBy.get(l.id);
        if (!open.has(l.id) || !account || !owed) continue;
        const left = outstanding(owed);
        const free = available(account);
        const amount = free < left ? free : left;
        if (amount <= 0n) continue; // nothing to take: the loan stays past due
        // The product's waterfall, as RepayLoan allocates.
        const { allocations, totals } = allocate(owed, amount, waterfallOf(c.termsOf(l)));
        const g = gls.get(`${account.shard}:${l.currency}`)!;
        const row = {
          id: repaymentIdFor(l.id, key),
          loan_id: l.id,
          idempotency_key: key,
          body_hash: 'collection',
          from_account_id: account.id,
          income_account_id: g.income,
          amount,
          principal: totals.principal,
          interest: totals.interest,
          fees: totals.fee,
          penalties: totals.penalty,
          allocations: allocations.map(
            (a) => [a.instalment, a.component, String(a.amount)] as RepaymentRow['allocations'][0],
          ),
          status: S.REPAYMENT_STATUS_PENDING,
          refusal: '',
          kind: K.REPAYMENT_KIND_COLLECTION,
          waivers: '[]',
          created_at: now,
          updated_at: now,
          interest_receivable: await takeInterest(tx, l.id, totals.interest),
          receivable_account_id: g.receivable,
          penalty_account_id: g.penalty,
          business_date: s.date,
        };
        await applyAllocations(tx, l.id, row.allocations, 1n);
        // A co-lent loan's collection is split by share as a repayment is (the partners are paid
        // out of the bank's interest income, repaymentLegs).
        const splits = l.partners?.length
          ? await repaymentSplits(
              tx,
              { id: l.id, partners: l.partners },
              totals,
              await d.accounts.servicingFeeIncome(account.shard, l.currency, deadline),
            )
          : [];
        await tx('loan_repayments').insert({
          ...row,
          allocations: JSON.stringify(row.allocations),
          partner_splits: JSON.stringify(splits),
        });
      }
    });
  }
  // Every collection of the date still PENDING in the range (this run's, or a crashed run's): one ledger call.
  const pending = await rows<RepaymentRow & { ledger_account_id: string }>(
    s.shard.db,
    `select ${REPAYMENT_COLUMNS.replace(/(^|,\s*)([a-z_]+)/g, '$1r.$2')}, l.ledger_account_id
       from loan_repayments r join loans l on l.id = r.loan_id
      where r.kind = ${K.REPAYMENT_KIND_COLLECTION} and r.business_date = ?::date and r.status = ${S.REPAYMENT_STATUS_PENDING}
        and ${range.sql}`,
    [s.date, ...range.b],
  );
  if (!pending.length) return;
  const outcomes = await d.accounts.transferChains(
    pending.map((r) => [...repaymentTransfers(r, r.ledger_account_id), ...repaymentLegs(r, r.partner_splits ?? [])]),
    deadline,
  );
  const recorded = await s.shard.db.transaction(async (tx) => {
    const list: Settlement[] = [];
    for (const [i, r] of pending.entries()) {
      const o = outcomes[i]!;
      const done = await recordSettlement(
        tx,
        s.shard.index,
        r.id,
        o === 'ok' ? { kind: 'ok' } : { kind: 'refused', reason: o },
      );
      if (done) list.push(done);
    }
    return list;
  });
  recorded.forEach(countSettlement);
}

/** The bucket (its lower bound; 0: current) of `dpd` days past due. */
export function bucketOf(dpd: number, bounds: readonly number[]): number {
  let bucket = 0;
  for (const b of bounds.length ? bounds : DEFAULT_BUCKETS) if (dpd >= b) bucket = b;
  return bucket;
}

/** Returns the number of loans classified and the new bucket of each that changed bucket. */
async function reclassify(tx: Knex.Transaction, c: StepContext): Promise<{ loans: number; buckets: number[] }> {
  const { s, range } = c;
  const loans = await rows<{ id: string; product_id: string; product_version: number; delinquency_bucket: number }>(
    tx,
    `select l.id, l.product_id, l.product_version, l.delinquency_bucket from loans l
      where l.status = 2 and l.disbursed_on <= ?::date
        and (l.delinquency_as_of is null or l.delinquency_as_of < ?::date) and ${range.sql}
        and (l.days_past_due > 0 or l.delinquency_bucket > 0
             or exists (select 1 from loan_instalments i where i.loan_id = l.id and i.due_date <= ?::date and ${UNPAID}))
      order by l.id for update`,
    [s.date, s.date, ...range.b, s.date],
  );
  if (!loans.length) return { loans: 0, buckets: [] };
  const ids = pgArray(loans.map((l) => l.id));
  const oldest = await rows<{ loan_id: string; due_date: string }>(
    tx,
    `select i.loan_id, min(i.due_date)::text as due_date from loan_instalments i
      where i.loan_id = any(?::uuid[]) and i.due_date <= ?::date and ${UNPAID} group by i.loan_id`,
    [ids, s.date],
  );
  const oldestOf = new Map(oldest.map((o) => [o.loan_id, o.due_date]));
  const next = loans.map((l) => {
    const t = c.termsOf(l);
    const due = oldestOf.get(l.id);
    const late = due ? daysBetween(parseDate(due), parseDate(s.date)) : 0;
    const dpd = late > t.graceDays ? late : 0;
    return { ...l, dpd, bucket: bucketOf(dpd, t.delinquencyBuckets), np: dpd > NON_PERFORMING_AFTER };
  });
  await tx.raw(
    `update loans l set days_past_due = x.dpd, delinquency_bucket = x.bucket, non_performing = x.np,
            delinquency_as_of = ?::date
       from unnest(?::uuid[], ?::int[], ?::int[], ?::boolean[]) as x(id, dpd, bucket, np)
      where l.id = x.id`,
    [s.date, ids, pgArray(next.map((n) => n.dpd)), pgArray(next.map((n) => n.bucket)), pgArray(next.map((n) => n.np))],
  );
  const changed = next.filter((n) => n.bucket !== n.delinquency_bucket);
  const overdue = await rows<{ loan_id: string; number: number; due_date: string; owed: bigint }>(
    tx,
    `update loan_instalments i set overdue_on = ?::date
      where i.loan_id = any(?::uuid[]) and i.due_date <= ?::date and i.overdue_on is null and ${UNPAID}
      returning i.loan_id, i.number, i.due_date::text as due_date,
        (i.principal_due + i.interest_due + i.fee_due + i.penalty_due)
          - (i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid) as owed`,
    [s.date, ids, s.date],
  );
  const moved = { loans: loans.length, buckets: changed.map((n) => n.bucket) };
  if (!changed.length && !overdue.length) return moved;
  if (changed.length) {
    await tx.raw(
      `insert into loan_delinquency_changes (loan_id, business_date, previous_bucket, bucket, days_past_due)
       select x.id, ?::date, x.prev, x.bucket, x.dpd from unnest(?::uuid[], ?::int[], ?::int[], ?::int[]) as x(id, prev, bucket, dpd)
       on conflict do nothing`,
      [
        s.date,
        pgArray(changed.map((n) => n.id)),
        pgArray(changed.map((n) => n.delinquency_bucket)),
        pgArray(changed.map((n) => n.bucket)),
        pgArray(changed.map((n) => n.dpd)),
      ],
    );
  }
  const events: OutboxEvent[] = [];
  const now = new Date();
  const loanOf = async (id: string) => loanToProto((await findLoan(tx, id))!, s.shard.index);
  const meta = () => {
    const m = { eventId: newEventId(), occurredAt: toTimestamp(now), shard: s.shard.index };
    return m;
  };
  for (const o of [...overdue].sort((a, b) => (a.loan_id < b.loan_id ? -1 : 1) || a.number - b.number)) {
    const m = meta();
    const payload = LoanInstalmentOverdue.encode({
      meta: m,
      loan: await loanOf(o.loan_id),
      businessDate: s.date,
      instalment: o.number,
      dueDate: o.due_date,
      amountOverdue: o.owed,
    }).finish();
    events.push({ id: m.eventId, subject: SUBJECTS.instalmentOverdue, payload });
  }
  for (const n of changed) {
    const m = meta();
    const payload = LoanDelinquencyChanged.encode({
      meta: m,
      loan: await loanOf(n.id),
      businessDate: s.date,
      previousBucket: n.delinquency_bucket,
      bucket: n.bucket,
      daysPastDue: n.dpd,
    }).finish();
    events.push({ id: m.eventId, subject: SUBJECTS.delinquencyChanged, payload });
  }
  await writeEvents(tx, events);
  return moved;
}

/** Posts the date's and range's postings not yet confirmed, in one ledger call. */
export async function postPending(d: DayDeps, s: DayScope, deadline?: Date): Promise<void> {
  const list = await rows<{
    id: string;
    amount: bigint;
    debit_account_id: string;
    credit_account_id: string;
    step: number;
    business_date: string;
  }>(
    s.shard.db,
    `select id, amount, debit_account_id, credit_account_id, step, to_char(business_date, 'YYYY-MM-DD') as business_date
       from loan_postings where business_date = ?::date and range_key = ? and not posted order by id`,
    [s.date, rangeKey(s)],
  );
  await postPostings(d, s.shard, list, deadline);
}

export async function postPostings(
  d: Pick<DayDeps, 'accounts' | 'log'>,
  shard: Shard,
  list: {
    id: string;
    amount: bigint;
    debit_account_id: string;
    credit_account_id: string;
    step: number;
    business_date: string;
  }[],
  deadline?: Date,
): Promise<number> {
  if (!list.length) return 0;
  const transfer = (p: (typeof list)[0]): Transfer =>
    singlePhase({
      id: p.id,
      debitAccountId: p.debit_account_id,
      creditAccountId: p.credit_account_id,
      amount: p.amount,
      code: p.step === KIND.interest ? CODES.interestAccrual : CODES.penaltyAccrual,
      reference: `loan day ${p.step === KIND.interest ? 'interest' : 'penalty'} accrual`,
      // The day it belongs to, the day the close of business is closing (the ledger is on the next).
      businessDate: p.business_date,
    });
  const outcomes = await d.accounts.transferChains(
    list.map((p) => [transfer(p)]),
    deadline,
  );
  const ok = list.filter((_, i) => outcomes[i] === 'ok').map((p) => p.id);
  const refused = list.filter((_, i) => outcomes[i] !== 'ok');
  if (refused.length) {
    d.log.error(
      { postings: refused.map((p) => p.id), codes: outcomes.filter((o) => o !== 'ok') },
      'loan day posting refused',
    );
  }
  if (ok.length) {
    await shard.db('loan_postings').whereIn('id', ok).update({ posted: true, updated_at: new Date() });
  }
  return ok.length;
}

/** Postings left unposted for longer than `ageMs` (a crash or outage between the commit and the ledger). */
export async function stalePostings(db: Knex, ageMs: number, limit: number) {
  return rows<{
    id: string;
    amount: bigint;
    debit_account_id: string;
    credit_account_id: string;
    step: number;
    business_date: string;
  }>(
    db,
    `select id, amount, debit_account_id, credit_account_id, step, to_char(business_date, 'YYYY-MM-DD') as business_date
       from loan_postings
      where not posted and updated_at < now() - make_interval(secs => ?) order by updated_at limit ?`,
    [ageMs / 1000, limit],
  );
}

/** The totals recorded for the date and the scope's loans (the same on every re-run). */
export async function dayTotals(s: DayScope): Promise<RunLoanDayResponse> {
  const { sql, b } = inRange(s);
  const db = s.shard.db;
  const accruals = await rows<{
    currency: string;
    kind: number;
    n: bigint;
    nonzero: bigint;
    amount: string;
    booked: string;
  }>(
    db,
    `select a.currency, a.kind, count(*) as n, count(*) filter (where a.amount <> 0) as nonzero,
            sum(a.amount)::text as amount, sum(a.booked)::text as booked
       from loan_accruals a join loans l on l.id = a.loan_id
      where a.business_date = ?::date and ${sql} group by a.currency, a.kind`,
    [s.date, ...b],
  );
  const collections = await rows<{
    currency: string;
    status: number;
    n: bigint;
    principal: string;
    interest: string;
    penalties: string;
    fees: string;
  }>(
    db,
    `select l.currency, r.status, count(*) as n, sum(r.principal)::text as principal, sum(r.interest)::text as interest,
            sum(r.penalties)::text as penalties, sum(r.fees)::text as fees
       from loan_repayments r join loans l on l.id = r.loan_id
      where r.kind = ${K.REPAYMENT_KIND_COLLECTION} and r.business_date = ?::date and ${sql}
      group by l.currency, r.status`,
    [s.date, ...b],
  );
  const [counts] = await rows<{ reclassified: bigint; overdue: bigint; pending: bigint }>(
    db,
    `select (select count(*) from loan_delinquency_changes c join loans l on l.id = c.loan_id
              where c.business_date = ?::date and ${sql}) as reclassified,
            (select count(*) from loan_instalments i join loans l on l.id = i.loan_id
              where i.overdue_on = ?::date and ${sql}) as overdue,
            (select count(*) from loan_postings where business_date = ?::date and range_key = ? and not posted) as pending`,
    [s.date, ...b, s.date, ...b, s.date, rangeKey(s)],
  );
  const totals = new Map<string, LoanDayTotals>();
  const of = (currency: string): LoanDayTotals => {
    if (!totals.has(currency)) {
      totals.set(currency, {
        currency,
        interestAccrued: 0n,
        penaltyAccrued: 0n,
        principalCollected: 0n,
        interestCollected: 0n,
        penaltyCollected: 0n,
        feesCollected: 0n,
        interestBooked: 0n,
      });
    }
    return totals.get(currency)!;
  };
  const res: RunLoanDayResponse = {
    businessDate: s.date,
    shard: s.shard.index,
    loansProcessed: 0,
    loansAccrued: 0,
    loansCollected: 0,
    collectionsRefused: 0,
    loansPenalised: 0,
    loansReclassified: Number(counts!.reclassified),
    totals: [],
    instalmentsOverdue: Number(counts!.overdue),
    postingsPending: Number(counts!.pending),
  };
  for (const a of accruals) {
    const t = of(a.currency);
    if (a.kind === KIND.interest) {
      res.loansProcessed += Number(a.n);
      res.loansAccrued += Number(a.nonzero);
      t.interestAccrued += BigInt(a.amount);
      t.interestBooked += BigInt(a.booked);
    } else {
      res.loansPenalised += Number(a.n);
      t.penaltyAccrued += BigInt(a.amount);
    }
  }
  for (const r of collections) {
    if (r.status === S.REPAYMENT_STATUS_REFUSED) {
      res.collectionsRefused += Number(r.n);
      continue;
    }
    if (r.status !== S.REPAYMENT_STATUS_APPLIED) continue;
    res.loansCollected += Number(r.n);
    const t = of(r.currency);
    t.principalCollected += BigInt(r.principal);
    t.interestCollected += BigInt(r.interest);
    t.penaltyCollected += BigInt(r.penalties);
    t.feesCollected += BigInt(r.fees);
  }
  res.totals = [...totals.values()].sort((a, b) => a.currency.localeCompare(b.currency));
  return res;
}

/** The scope of a request (already validated): loan ids must be on the shard. */
export function checkIdsOnShard(router: ShardRouter, shard: number, ids: string[]): void {
  const off = ids.findIndex((id) => router.byId(id)?.index !== shard);
  if (off >= 0) {
    throw new DomainError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `loan_ids[${off}]: is not a loan of this shard`, [
      { field: `loan_ids[${off}]`, description: 'is not a loan of this shard' },
    ]);
  }
}
