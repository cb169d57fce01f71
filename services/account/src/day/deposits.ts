// The close of business's deposits step: one day of interest on every interest-bearing deposit
// account of a chunk, posted on the product's frequency, and the monthly fee on the month's last
// day. Built for volume (a million accounts in a minute): a chunk is two statements in one
// transaction on its shard, set-based, with no per-account round trip and not through the
// ledger's batcher, which it mirrors row for row (ledger/store.ts writeBatch): journal rows with
// the accounts' next entry_seq and running balances, and the account rows' balances.
//
// Rules (DESIGN.md "The bank's day", "Money and time"):
// - Eligible: a customer account (not system, not closed) with a product version whose
//   DepositTerms has interest_rate_bps > 0 (or, on a month's last day, a monthly_fee > 0).
// - The balance is the END-OF-DAY posted balance of the business date D: credits posted - debits
//   posted now, less the posted movements of transfers dated after D (channels book on D+1 while
//   D closes). No interest on a balance <= 0.
// - A day's exact interest is B x bps x w / (10000 x basis) (interest.ts dayWeight). Per account
//   the cumulative exact numerator (numeric) is kept; the amount accrued to date is
//   round_half_even(cumulative / denominator), the day's amount that less what was accrued
//   before. The rounding point is the cumulative total: the residue is carried forever, across
//   postings too, so a period's amounts sum to the period's exact interest rounded once.
// - Posting credits the account with what was accrued and not yet posted: every day (DAILY),
//   on the month's / quarter's / year's last day, or at maturity (AT_MATURITY: from the day the
//   account's term ends, the account's opening date in UTC + term_months, every day after).
// - The monthly fee, on the month's last day, takes only what the balance allows: at most
//   credits posted (with today's interest) - debits posted - debits pending - the minimum
//   balance, never into an overdraft; the rest is waived, not booked as a debt. A frozen
//   account (debits blocked) is not charged.
// - Journal (SystemAccountKind GL accounts of the shard and currency): the day's accrual as ONE
//   transfer per chunk and currency, debit DEPOSIT_INTEREST_EXPENSE, credit
//   DEPOSIT_INTEREST_PAYABLE; each posting debit PAYABLE, credit the account; each fee debit the
//   account, credit DEPOSIT_FEE_INCOME. Transfer ids are deterministic (kit hashedUuid parts
//   'cob', date, 'deposits', what, account; the account's bucket kept as bucketedId does).
// - Idempotent per (business date, account): deposit_accruals' key, written in the same
//   transaction as the journal rows; a chunk run again skips the accounts it finds there. Days
//   close in order (the coordinator's rule): an account whose last accrual is dated after the
//   date is skipped too, never accrued out of order on a stale state.
// - No outbox events for these bulk bookings (one per account per day would double the work):
//   the COB run's summary (the chunks' totals) and deposit_accruals are the record.
import { BUSINESS_DATE_LOCK, bucketedId, type ShardRouter } from '@corebank/kit';
import { SystemAccountKind } from '@corebank/kit/gen/corebank/v1/account';
import { PostingFrequency, type DepositTerms } from '@corebank/kit/gen/corebank/v1/product';
import type { Knex } from 'knex';
import { getProduct, type Peers } from '../clients/peers.js';
import { systemAccountId } from '../store.js';
import { dayWeight, isMonthEnd, postsOn } from './interest.js';
import type { ChunkWork, StepResult, StepRunner, StepTotal } from './steps.js';

/** Transfer codes of the deposits step's journal rows. */
export const DEPOSIT_CODES = { accrual: 9001, posting: 9002, fee: 9003 } as const;

/** A product version's deposit terms (undefined: not a deposit product). Versions are immutable. */
export type DepositTermsOf = (productId: string, version: number) => Promise<DepositTerms | undefined>;

/** Terms through the product service, each (product, version) asked once per process. */
export function productTerms(peers: Peers): DepositTermsOf {
  const cache = new Map<string, Promise<DepositTerms | undefined>>();
  return (productId, version) => {
    const key = `${productId}\u0000${version}`;
    let p = cache.get(key);
    if (!p) {
      p = getProduct(peers, productId, version).then((v) => v.deposit);
      // A failed call is not remembered: the chunk fails, and its retry asks again.
      p.catch(() => cache.delete(key));
      cache.set(key, p);
    }
    return p;
  };
}

export interface DepositStepDeps {
  router: ShardRouter;
  terms: DepositTermsOf;
}

interface ProductDay {
  productId: string;
  version: number;
  bps: number;
  w: number;
  basis: number;
  post: boolean;
  /** AT_MATURITY: the term, posting from the account's maturity on; 0 otherwise. */
  termMonths: number;
  fee: bigint;
}

/** `and <col> > lo and <col> <= hi` for a chunk's id range ('' : open), with its bindings. */
function range(col: string, w: ChunkWork): { sql: string; bindings: string[] } {
  const sql: string[] = [];
  const bindings: string[] = [];
  if (w.after) {
    sql.push(`and ${col} > ?::uuid`);
    bindings.push(w.after);
  }
  if (w.upTo) {
    sql.push(`and ${col} <= ?::uuid`);
    bindings.push(w.upTo);
  }
  return { sql: sql.join(' '), bindings };
}

/**
 * SQL: kit bucketedId(bucket of `account`, ...parts, account) from `h`, the sha256 of the parts'
 * bytes (idPrefix) and the account id: its first 14 bytes with kit hashedUuid's version nibble (8)
 * and variant bits set in place, then the account id's last 2 bytes (its bucket). Bytes, not
 * text: cheap per row.
 */
const bucketedIdSql = (h: string, account: string) =>
  `encode(set_byte(set_byte(substring(${h} from 1 for 14), 6, (get_byte(${h}, 6) & 15) | 128),
                   8, (get_byte(${h}, 8) & 63) | 128)
          || substring(uuid_send(${account}) from 15 for 2), 'hex')::uuid`;

/** The bytes kit hashedUuid hashes before its last part: the parts joined by NUL, with a NUL after. */
const idPrefix = (...parts: string[]) => Buffer.from(parts.map((p) => `${p}\u0000`).join(''), 'utf8');

/** The id of a per-account COB transfer, as SQL computes it (deposits.ts): for tests and reports. */
export function depositTransferId(date: string, what: 'post' | 'fee', accountId: string): string {
  return bucketedId(parseInt(accountId.slice(-4), 16), 'cob', date, 'deposits', what, accountId);
}

interface Totals {
  currency: string;
  n: number;
  accrued: string;
  posted: string;
  fees: string;
}

export function depositStep(deps: DepositStepDeps): StepRunner {
  return async (w: ChunkWork): Promise<StepResult> => {
    const { db, index: shard } = w.shard;
    const r = range('id', w);
    const { rows: versions } = (await db.raw(
      `select product_id, product_version, currency from accounts
        where not system and not closed and product_id <> '' ${r.sql}
        group by product_id, product_version, currency`,
      r.bindings,
    )) as { rows: { product_id: string; product_version: number; currency: string }[] };
    const monthEnd = isMonthEnd(w.date);
    const products = new Map<string, ProductDay>();
    const currencies = new Set<string>();
    for (const v of versions) {
      const key = `${v.product_id}\u0000${v.product_version}`;
      if (products.has(key)) {
        currencies.add(v.currency.trim());
        continue;
      }
      const t = await deps.terms(v.product_id, v.product_version);
      if (!t) continue;
      const fee = monthEnd ? t.monthlyFee : 0n;
      if (t.interestRateBps <= 0 && fee <= 0n) continue;
      const { w: weight, basis } = dayWeight(t.dayCount, w.date);
      const atMaturity = t.postingFrequency === PostingFrequency.POSTING_FREQUENCY_AT_MATURITY;
      products.set(key, {
        productId: v.product_id,
        version: v.product_version,
        bps: t.interestRateBps,
        w: weight,
        basis,
        post: postsOn(t.postingFrequency, w.date),
        termMonths: atMaturity ? Math.max(t.termMonths, 1) : 0,
        fee,
      });
      // The accounts' own currencies (an account books in its currency, whatever the terms say).
      currencies.add(v.currency.trim());
    }
    if (products.size === 0) return { items: 0, totals: [] };
    const gl = [...currencies].sort().map((c) => ({
      currency: c,
      expense: systemAccountId(
        deps.router.map,
        shard,
        SystemAccountKind.SYSTEM_ACCOUNT_KIND_DEPOSIT_INTEREST_EXPENSE,
        c,
      ),
      payable: systemAccountId(
        deps.router.map,
        shard,
        SystemAccountKind.SYSTEM_ACCOUNT_KIND_DEPOSIT_INTEREST_PAYABLE,
        c,
      ),
      feeIncome: systemAccountId(deps.router.map, shard, SystemAccountKind.SYSTEM_ACCOUNT_KIND_DEPOSIT_FEE_INCOME, c),
      accrualId: bucketedId(
        deps.router.map.firstBucketOf(shard),
        'cob',
        w.date,
        'deposits',
        'accrual',
        c,
        w.after,
        w.upTo,
      ),
    }));
    const glIds = gl.flatMap((g) => [g.expense, g.payable, g.feeIncome]);
    // Accounts whose balances change today: those of products that post or charge a fee today
    // (AT_MATURITY products: all, the maturity is per account), and the GL accounts.
    const moving = [...products.values()].filter((p) => p.post || p.termMonths > 0 || p.fee > 0n);

    const totals = await db.transaction(async (tx) => {
      // Held shared by every booking transaction (kit business-date.ts): a move of the date waits.
      await tx.raw(`select pg_advisory_xact_lock_shared(${BUSINESS_DATE_LOCK})`);
      // Lock what this chunk updates, in id order with the GL accounts, as ledger_load does, so a
      // channel's batch (which locks its accounts in id order too) never deadlocks with it; and
      // so a second run of this chunk waits for the first, then sees its deposit_accruals rows.
      await tx.raw(
        `select count(*) from (
           select 1 from accounts
            where id = any(?::uuid[])
               or (not system and not closed ${r.sql}
                   and (product_id, product_version) in (select * from unnest(?::text[], ?::int[])))
            order by id for update) locked`,
        [glIds, ...r.bindings, moving.map((p) => p.productId), moving.map((p) => p.version)],
      );
      return accrueAndPost(tx, w, [...products.values()], gl, glIds);
    });
    const out: StepTotal[] = [];
    let items = 0;
    for (const t of totals) {
      items += t.n;
      out.push({ name: 'deposit_interest_accrued', currency: t.currency, amount: BigInt(t.accrued) });
      out.push({ name: 'deposit_interest_posted', currency: t.currency, amount: BigInt(t.posted) });
      out.push({ name: 'deposit_fees', currency: t.currency, amount: BigInt(t.fees) });
    }
    return { items, totals: out };
  };
}

/** The chunk's one writing statement; returns per currency the accounts done and the sums. */
async function accrueAndPost(
  tx: Knex.Transaction,
  w: ChunkWork,
  products: ProductDay[],
  gl: { currency: string; expense: string; payable: string; feeIncome: string; accrualId: string }[],
  glIds: string[],
): Promise<Totals[]> {
  const r = range('a.id', w);
  const lc = range('t.credit_account_id', w);
  const ld = range('t.debit_account_id', w);
  const b: unknown[] = [];
  const bind = (...v: unknown[]) => {
    b.push(...v);
    return '';
  };
  const sql = `
    with
    prod as (select * from unnest(?::text[], ?::int[], ?::bigint[], ?::int[], ?::int[], ?::boolean[], ?::int[], ?::bigint[])
               as p(product_id, version, bps, w, basis, post, term_months, fee_due)),
    ${bind(
      products.map((p) => p.productId),
      products.map((p) => p.version),
      products.map((p) => p.bps),
      products.map((p) => p.w),
      products.map((p) => p.basis),
      products.map((p) => p.post),
      products.map((p) => p.termMonths),
      products.map((p) => p.fee.toString()),
    )}
    gl as (select * from unnest(?::text[], ?::uuid[], ?::uuid[], ?::uuid[], ?::uuid[])
             as g(currency, expense, payable, fee_income, accrual_id)),
    ${bind(
      gl.map((g) => g.currency),
      gl.map((g) => g.expense),
      gl.map((g) => g.payable),
      gl.map((g) => g.feeIncome),
      gl.map((g) => g.accrualId),
    )}
    -- Posted movements dated after the day (kinds SINGLE_PHASE and POST_PENDING move posted funds).
    later as (
      select account_id, sum(change) as change from (
        select t.credit_account_id as account_id, t.amount as change from transfers t
         where t.business_date > ?::date and t.kind in (1, 3) ${lc.sql}
        union all
        select t.debit_account_id, -t.amount from transfers t
         where t.business_date > ?::date and t.kind in (1, 3) ${ld.sql}) m
      group by account_id),
    ${bind(w.date, ...lc.bindings, w.date, ...ld.bindings)}
    cand as (
      select a.id, a.currency::text as currency, a.debits_posted, a.credits_posted, a.debits_pending,
             a.credits_pending, a.minimum_balance, a.entry_seq, a.debits_blocked,
             p.bps, p.w, p.basis, p.fee_due,
             p.post or (p.term_months > 0 and ?::date >=
               ((a.created_at at time zone 'UTC')::date + make_interval(months => p.term_months))::date) as post,
             a.credits_posted - a.debits_posted - coalesce(l.change, 0) as eod,
             prev.business_date as prev_date,
             coalesce(prev.cum_exact, 0) as prev_exact,
             coalesce(prev.cum_accrued, 0) as prev_accrued,
             coalesce(prev.cum_posted, 0) as prev_posted
        from accounts a
        join prod p on p.product_id = a.product_id and p.version = a.product_version
        left join later l on l.account_id = a.id
        left join lateral (
          select d.business_date, d.cum_exact, d.cum_accrued, d.cum_posted from deposit_accruals d
           where d.account_id = a.id
           order by d.business_date desc limit 1) prev on true
       where not a.system and not a.closed ${r.sql}),
    ${bind(w.date, ...r.bindings)}
    exact as (
      select c.*, c.prev_exact + case when c.eod > 0 then c.eod::numeric * c.bps * c.w else 0 end as cum_exact,
             10000::numeric * c.basis as den
        from cand c where c.prev_date is null or c.prev_date < ?::date),
    ${bind(w.date)}
    -- round_half_even(cum_exact / den) in integers: q = floor, r2 = 2 x remainder.
    rounded as (
      select e.*, q.q + case when q.r2 > e.den then 1 when q.r2 = e.den then mod(q.q, 2) else 0 end as cum_accrued
        from exact e cross join lateral (
          select div(e.cum_exact, e.den) as q, 2 * (e.cum_exact - div(e.cum_exact, e.den) * e.den) as r2) q),
    posted as (
      select x.*, (x.cum_accrued - x.prev_accrued)::bigint as amount,
             case when x.post then (x.cum_accrued - x.prev_posted)::bigint else 0 end as posting
        from rounded x),
    f as (
      select y.*,
             case when y.fee_due > 0 and not y.debits_blocked then least(y.fee_due, greatest(0,
               y.credits_posted + y.posting - y.debits_posted - y.debits_pending - y.minimum_balance))
             else 0 end::bigint as fee
        from posted y),
    journal as (select currency, sum(amount)::bigint as amount from f group by currency having sum(amount) > 0),
    -- The chunk's transfers, in the order their entries follow: the accruals, the postings, the fees.
    moves as (
      select 0 as grp, g.payable as k, g.accrual_id as id, g.expense as debit, g.payable as credit,
             j.amount, j.currency, ${DEPOSIT_CODES.accrual} as code, 'deposit interest accrued' as reference
        from journal j join gl g on g.currency = j.currency
      union all
      select 1, f.id, ${bucketedIdSql('h.h', 'f.id')}, g.payable, f.id, f.posting, f.currency,
             ${DEPOSIT_CODES.posting}, 'deposit interest posted'
        from f join gl g on g.currency = f.currency cross join lateral (select sha256(?::bytea || convert_to(f.id::text, 'UTF8')) as h) h
       where f.posting > 0
      union all
      select 2, f.id, ${bucketedIdSql('h.h', 'f.id')}, f.id, g.fee_income, f.fee, f.currency,
             ${DEPOSIT_CODES.fee}, 'deposit monthly fee'
        from f join gl g on g.currency = f.currency cross join lateral (select sha256(?::bytea || convert_to(f.id::text, 'UTF8')) as h) h
       where f.fee > 0),
    ${bind(idPrefix('cob', w.date, 'deposits', 'post'), idPrefix('cob', w.date, 'deposits', 'fee'))}
    legs as (
      select m.debit as account_id, m.id as transfer_id, m.credit as counterparty_id, m.amount, true as is_debit,
             m.grp, m.k from moves m
      union all
      select m.credit, m.id, m.debit, m.amount, false, m.grp, m.k from moves m),
    base as (
      select id, debits_posted, credits_posted, debits_pending, credits_pending, entry_seq from f
      union all
      select id, debits_posted, credits_posted, debits_pending, credits_pending, entry_seq from accounts
       where id = any(?::uuid[])),
    ${bind(glIds)}
    seqd as (
      select l.account_id, l.transfer_id, l.counterparty_id, l.amount, l.is_debit,
             b.entry_seq + row_number() over w as seq,
             b.debits_posted + sum(case when l.is_debit then l.amount else 0 end) over w as dpo,
             b.credits_posted + sum(case when l.is_debit then 0 else l.amount end) over w as cpo,
             b.debits_pending, b.credits_pending
        from legs l join base b on b.id = l.account_id
      window w as (partition by l.account_id order by l.grp, l.k rows between unbounded preceding and current row)),
    ins_accruals as (
      insert into deposit_accruals (account_id, business_date, balance, amount, posted, fee, cum_exact,
                                    denominator, cum_accrued, cum_posted)
      select id, ?::date, eod, amount, posting, fee, cum_exact, den, cum_accrued, prev_posted + posting from f),
    ${bind(w.date)}
    ins_transfers as (
      insert into transfers (id, debit_account_id, credit_account_id, amount, currency, kind, linked, pending_id,
                             timeout_seconds, expires_at, code, reference, body_hash, created_at, business_date)
      select id, debit, credit, amount, currency, 1, false, null, 0, null, code, reference, 'cob', now(), ?::date
        from moves),
    ${bind(w.date)}
    ins_entries as (
      insert into entries (account_id, seq, transfer_id, counterparty_id, posted_change, pending_change,
                           debits_pending, debits_posted, credits_pending, credits_posted, created_at)
      select account_id, seq, transfer_id, counterparty_id, case when is_debit then -amount else amount end, 0,
             debits_pending, dpo, credits_pending, cpo, now()
        from seqd),
    balances as (
      update accounts a set debits_posted = s.dpo, credits_posted = s.cpo, entry_seq = s.seq
        from (select distinct on (account_id) account_id, dpo, cpo, seq from seqd
               order by account_id, seq desc) s
       where a.id = s.account_id)
    select currency, count(*)::int as n, sum(amount)::text as accrued, sum(posting)::text as posted,
           sum(fee)::text as fees
      from f group by currency order by currency`;
  const { rows } = (await tx.raw(sql, b as never)) as { rows: Totals[] };
  return rows;
}
