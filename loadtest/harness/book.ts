// A sized book for `npm run bench:cob`, generated fast: set-based SQL on each shard (never one RPC
// per row), products through the product service (the close of business reads their terms there).
//   - deposits: interest-bearing accounts of a daily-yield product (3.65% ACT/365F), each funded
//     from its shard's cash account by a transfer with its entries, as the ledger writes them;
//   - loans: ACTIVE annuity loans (9.4822% ACT/365F, 12 months) with their schedules, disbursed
//     over the 28 days before the date closed, so none has an instalment due that day (the day
//     measured is one of accruals, as most days are). Their principal is not booked on the ledger
//     (a loan day's accrual books GL to GL only); the reconciliation is of the day's accruals.
// And the reconciliation of one closed day: the steps' totals against the sub-ledgers and the GL.
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { ShardMap } from '@corebank/kit';
import { SystemAccountKind } from '@corebank/kit/gen/corebank/v1/account';
import type { BusinessDayServiceClient, CloseOfBusiness } from '@corebank/kit/gen/corebank/v1/day';
import { DayCount, PostingFrequency, ProductServiceClient } from '@corebank/kit/gen/corebank/v1/product';
import { promisify } from '@corebank/kit/testing';
import { localDatabase } from '../../deploy/local/env.js';
import { systemAccountId } from '../../services/account/src/store.js';
import { depositProduct, depositTerms, loanProduct, loanTerms } from '../../services/product/test/fixtures.js';

export interface BookSize {
  loans: number;
  deposits: number;
  shards: number;
  /** The business date to close. */
  date: string;
}

const addDaysSql = (date: string, n: number) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

/**
 * Deposit accounts from..to (1-based) of a product on one account shard, on client `c` (its
 * search_path on the account schema), each funded from the shard's cash account by a transfer
 * with its entries and balances as the ledger writes them, dated `fundedOn`. Ids are md5-derived,
 * so two banks loaded alike hold the same accounts (the COB kill test compares two such banks).
 */
export async function loadDeposits(
  c: pg.Client,
  o: { map: ShardMap; shard: number; from: number; to: number; productId: string; fundedOn: string },
): Promise<void> {
  const { from, to } = o;
  if (from > to) return;
  const cash = systemAccountId(o.map, o.shard, SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH, 'EUR');
  const amount = `(100000 + (i % 997) * 1013)`;
  await c.query('begin');
  await c.query(
    `insert into accounts (id, owner_id, idempotency_key, body_hash, currency, code,
                           debits_must_not_exceed_credits, credits_must_not_exceed_debits, product_id,
                           product_version, credits_posted, entry_seq)
     select md5('acct' || i)::uuid, 'bench-' || i, 'k', '', 'EUR', 10, true, false, $1, 1, ${amount}, 1
       from generate_series($2::int, $3::int) i`,
    [o.productId, from, to],
  );
  await c.query(
    `insert into transfers (id, debit_account_id, credit_account_id, amount, currency, kind, linked, code,
                            body_hash, business_date)
     select md5('fund' || i)::uuid, $1::uuid, md5('acct' || i)::uuid, ${amount}, 'EUR', 1, false, 1, '', $4::date
       from generate_series($2::int, $3::int) i`,
    [cash, from, to, o.fundedOn],
  );
  await c.query(
    `insert into entries (account_id, seq, transfer_id, counterparty_id, posted_change, pending_change,
                          debits_pending, debits_posted, credits_pending, credits_posted, created_at)
     select md5('acct' || i)::uuid, 1, md5('fund' || i)::uuid, $1::uuid, ${amount}, 0, 0, 0, 0, ${amount}, now()
       from generate_series($2::int, $3::int) i
     union all
     select $1::uuid, a.entry_seq + i - $2::int + 1, md5('fund' || i)::uuid, md5('acct' || i)::uuid, -${amount}, 0, 0,
            a.debits_posted + sum(${amount}) over (order by i), 0, a.credits_posted, now()
       from generate_series($2::int, $3::int) i, accounts a where a.id = $1::uuid`,
    [cash, from, to],
  );
  await c.query(
    `update accounts set debits_posted = debits_posted + (select sum(${amount}) from generate_series($2::int, $3::int) i),
                         entry_seq = entry_seq + ($3::int - $2::int + 1) where id = $1`,
    [cash, from, to],
  );
  await c.query('commit');
}

async function onEach<T>(url: string, dbs: string[], run: (c: pg.Client, i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(
    dbs.map(async (db, i) => {
      const c = new pg.Client({ connectionString: `${url}/${db}`, options: `-c search_path=${db.split('_')[1]}` });
      await c.connect();
      try {
        return await run(c, i);
      } finally {
        await c.end();
      }
    }),
  );
}

/** The part [from, to] (1-based, inclusive) of n items that shard i of `shards` holds. */
const part = (n: number, shards: number, i: number): [number, number] => [
  Math.floor((i * n) / shards) + 1,
  Math.floor(((i + 1) * n) / shards),
];

export async function loadBook(o: {
  pgUrl: string;
  productAddress: string;
  token: string;
  size: BookSize;
  say: (line: string) => void;
}): Promise<{ depositProductId: string; loanProductId: string }> {
  const { size } = o;
  const catalog = promisify(new ProductServiceClient(o.productAddress, grpc.credentials.createInsecure()), o.token);
  const publish = async (req: Parameters<typeof catalog.createProduct>[0]) => {
    const { product } = await catalog.createProduct(req);
    await catalog.publishProductVersion({ productId: product!.productId, version: product!.version });
    return product!.productId;
  };
  const depositProductId = await publish(
    depositProduct({
      deposit: depositTerms({
        interestRateBps: 365,
        dayCount: DayCount.DAY_COUNT_ACT_365F,
        postingFrequency: PostingFrequency.POSTING_FREQUENCY_DAILY,
        monthlyFee: 0n,
        overdraftLimit: 0n,
      }),
    }),
  );
  const loanProductId = await publish(
    loanProduct({ loan: loanTerms({ annualRate: '9.4822', annualRateBps: 0, dayCount: DayCount.DAY_COUNT_ACT_365F }) }),
  );
  catalog.close();

  const map = ShardMap.even(size.shards);
  const accountDbs = Array.from({ length: size.shards }, (_, i) => localDatabase('account', i));
  const loanDbs = Array.from({ length: size.shards }, (_, i) => localDatabase('loan', i));
  const started = Date.now();
  await onEach(o.pgUrl, accountDbs, async (c, shard) => {
    const [from, to] = part(size.deposits, size.shards, shard);
    await loadDeposits(c, { map, shard, from, to, productId: depositProductId, fundedOn: addDaysSql(size.date, -30) });
  });
  o.say(`${size.deposits} deposit accounts funded in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const loansStarted = Date.now();
  await onEach(o.pgUrl, loanDbs, async (c, shard) => {
    const [from, to] = part(size.loans, size.shards, shard);
    if (from > to) return;
    await c.query('begin');
    await c.query(
      `insert into loan_applications (id, customer_id, channel, idempotency_key, body_hash, product_id,
         product_version, currency, amount, term_months, disbursement_account_id, repayment_account_id,
         monthly_income, state, score, reasons, approved_amount, annual_rate, loan_id, decided_by, created_at,
         decided_at)
       select md5('app' || i)::uuid, md5('cust' || i)::uuid, 'bench', 'k' || i, '', $1, 1, 'EUR', 600000, 12,
              md5('acct' || i)::uuid, md5('acct' || i)::uuid, 0, 1, 0, '[]', 600000, '9.4822',
              md5('loan' || i)::uuid, 'bench', now(), now()
         from generate_series($2::int, $3::int) i`,
      [loanProductId, from, to],
    );
    await c.query(
      `insert into loans (id, application_id, customer_id, product_id, product_version, currency, principal,
         annual_rate, term_months, status, disbursement_account_id, repayment_account_id, disbursed_on,
         instalment_amount, created_at, updated_at)
       select md5('loan' || i)::uuid, md5('app' || i)::uuid, md5('cust' || i)::uuid, $1, 1, 'EUR', 600000,
              '9.4822', 12, 2, md5('acct' || i)::uuid, md5('acct' || i)::uuid, $4::date - (i % 28), 52672, now(), now()
         from generate_series($2::int, $3::int) i`,
      [loanProductId, from, to, size.date],
    );
    // Twelve instalments each: 50,000.00 of principal, interest on the outstanding at the monthly rate
    // (an annuity's shape is not what this measures; the accrual follows whatever is scheduled).
    await c.query(
      `insert into loan_instalments (loan_id, number, from_date, due_date, days, principal_due, interest_due,
                                     outstanding_after)
       select l.id, n, (l.disbursed_on + make_interval(months => n - 1))::date,
              (l.disbursed_on + make_interval(months => n))::date,
              (l.disbursed_on + make_interval(months => n))::date - (l.disbursed_on + make_interval(months => n - 1))::date,
              50000, round((600000 - 50000 * (n - 1)) * 0.094822 / 12), 600000 - 50000 * n
         from loans l, generate_series(1, 12) n
        where l.id in (select md5('loan' || i)::uuid from generate_series($1::int, $2::int) i)`,
      [from, to],
    );
    await c.query('commit');
    await c.query('analyze loans; analyze loan_instalments');
  });
  o.say(`${size.loans} loans with their schedules in ${((Date.now() - loansStarted) / 1000).toFixed(1)} s`);
  await onEach(o.pgUrl, accountDbs, (c) => c.query('analyze accounts; analyze transfers; analyze entries'));
  return { depositProductId, loanProductId };
}

/**
 * One closed day reconciled: the loans' sub-ledger of the day = the loans step's totals = the day's
 * debits on LOAN_INTEREST_RECEIVABLE; the deposits' accruals = the deposits step's totals = the
 * day's debits on DEPOSIT_INTEREST_EXPENSE; the trial balance balances per shard and for the bank.
 */
export async function reconcileDay(o: {
  pgUrl: string;
  shards: number;
  date: string;
  run: CloseOfBusiness;
  day: ReturnType<typeof promisify<BusinessDayServiceClient>>;
}): Promise<{ ok: boolean; lines: string[] }> {
  const lines: string[] = [];
  let ok = true;
  const total = (step: string, name: string) =>
    o.run.steps
      .filter((s) => s.step === step)
      .flatMap((s) => s.totals)
      .filter((t) => t.name === name && t.currency === 'EUR')
      .reduce((n, t) => n + t.amount, 0n);
  const sum = async (dbs: string[], sql: string) =>
    (
      await onEach(o.pgUrl, dbs, async (c) => BigInt(((await c.query(sql, [o.date])).rows[0] as { n: string }).n))
    ).reduce((a, b) => a + b, 0n);
  const loanDbs = Array.from({ length: o.shards }, (_, i) => localDatabase('loan', i));
  const accountDbs = Array.from({ length: o.shards }, (_, i) => localDatabase('account', i));
  const tb = await o.day.getTrialBalance({ businessDate: o.date });
  const bank = tb.balances.find((b) => b.shard === undefined);
  const gl = (name: string) => bank?.lines.find((l) => l.glAccount === name && l.currency === 'EUR')?.dayDebits ?? 0n;
  const check = (what: string, values: bigint[]) => {
    const same = values.every((v) => v === values[0]);
    ok &&= same;
    lines.push(`${same ? 'ok  ' : 'FAIL'} ${what}: ${values.join(' = ')}`);
  };
  check('loan interest accrued (sub-ledger = step totals = GL receivable day debits)', [
    await sum(
      loanDbs,
      `select coalesce(sum(amount), 0)::text as n from loan_accruals where business_date = $1 and kind = 1`,
    ),
    total('loans', 'interest_accrued'),
    gl('LOAN_INTEREST_RECEIVABLE'),
  ]);
  check('deposit interest accrued (accruals = step totals = GL expense day debits)', [
    await sum(accountDbs, `select coalesce(sum(amount), 0)::text as n from deposit_accruals where business_date = $1`),
    total('deposits', 'deposit_interest_accrued'),
    gl('DEPOSIT_INTEREST_EXPENSE'),
  ]);
  const balanced = tb.balances.every((b) => b.balanced);
  ok &&= balanced;
  lines.push(
    `${balanced ? 'ok  ' : 'FAIL'} trial balance balanced on ${tb.balances.length - 1} shards and for the bank`,
  );
  return { ok, lines };
}
