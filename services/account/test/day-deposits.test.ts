// The close of business's deposits step (day/deposits.ts) and the GL step (day/gl.ts), driven
// chunk by chunk as the coordinator would, on real PostgreSQL with 1 and 3 shards: a year of
// accruals sums to the exact annual interest of each day count (residue carried), posting daily,
// monthly and annually, monthly fees within the balance, re-runs booking nothing twice, the
// end-of-day balance excluding later-dated bookings, and a trial balance that balances every day
// and agrees with the day's transfers; the ledger invariant holds after the bulk bookings.
import { randomUUID } from 'node:crypto';
import { SystemAccountKind, type Account } from '@corebank/kit/gen/corebank/v1/account';
import { BusinessDayServiceClient } from '@corebank/kit/gen/corebank/v1/day';
import { DayCount, PostingFrequency, type DepositTerms } from '@corebank/kit/gen/corebank/v1/product';
import { addDays, divRoundHalfEven } from '@corebank/kit';
import { promisify, testChannelCredentials, testToken } from '@corebank/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { depositStep, depositTransferId, type DepositTermsOf } from '../src/day/deposits.js';
import { accrualsOf, glStep, trialBalance } from '../src/day/gl.js';
import { idRanges, type StepResult, type StepRunner } from '../src/day/steps.js';
import { systemAccountId } from '../src/store.js';
import { startBank, type TestBank } from './bank.js';
import { fund, openAccounts, transfer, R } from './helpers.js';

const terms = (t: Partial<DepositTerms>): DepositTerms => ({
  currency: 'EUR',
  overdraftLimit: 0n,
  minimumBalance: 0n,
  perTransactionLimit: 0n,
  dailyDebitLimit: 0n,
  interestRateBps: 0,
  dayCount: DayCount.DAY_COUNT_ACT_365F,
  postingFrequency: PostingFrequency.POSTING_FREQUENCY_MONTHLY,
  monthlyFee: 0n,
  termMonths: 0,
  ...t,
});

const A = PostingFrequency.POSTING_FREQUENCY_ANNUALLY;
/** Fixed product terms (version 1 of each), as the product service would answer. */
const PRODUCTS: Record<string, DepositTerms> = {
  'act365-365': terms({ interestRateBps: 365, dayCount: DayCount.DAY_COUNT_ACT_365F, postingFrequency: A }),
  'act365-300': terms({ interestRateBps: 300, dayCount: DayCount.DAY_COUNT_ACT_365F, postingFrequency: A }),
  'act360-300': terms({ interestRateBps: 300, dayCount: DayCount.DAY_COUNT_ACT_360, postingFrequency: A }),
  't360-300': terms({ interestRateBps: 300, dayCount: DayCount.DAY_COUNT_THIRTY_360, postingFrequency: A }),
  yield: terms({ interestRateBps: 500, postingFrequency: PostingFrequency.POSTING_FREQUENCY_DAILY }),
  monthly: terms({ interestRateBps: 250, monthlyFee: 500n }),
  'fee-only': terms({ monthlyFee: 500n }),
  quarterly: terms({ interestRateBps: 365, postingFrequency: PostingFrequency.POSTING_FREQUENCY_QUARTERLY }),
  term: terms({
    interestRateBps: 730,
    postingFrequency: PostingFrequency.POSTING_FREQUENCY_AT_MATURITY,
    termMonths: 1,
  }),
};
const fixedTerms: DepositTermsOf = async (id, version) => (version === 1 ? PRODUCTS[id] : undefined);

async function depositAccounts(bank: TestBank, productId: string, n: number, amount: bigint): Promise<Account[]> {
  const accounts = await openAccounts(bank, n, { constrained: true });
  for (const a of accounts) {
    // Opened through CreateAccounts, then pinned to a product as OpenDepositAccount would.
    await bank.router.shards[a.shard]!.db('accounts')
      .where('id', a.id)
      .update({ product_id: productId, product_version: 1 });
    if (amount > 0n) await fund(bank, a, amount);
  }
  return accounts;
}

/** Runs a step for a date over every shard, cut into `chunks` id ranges per shard. */
async function runDay(bank: TestBank, step: StepRunner, date: string, chunks = 1): Promise<StepResult[]> {
  const out: StepResult[] = [];
  for (const shard of bank.router.shards) {
    for (const [after, upTo] of idRanges(chunks)) out.push(await step({ date, shard, after, upTo }));
  }
  return out;
}

const row = async (bank: TestBank, a: Account) =>
  (await bank.router.shards[a.shard]!.db('accounts').where('id', a.id).first()) as {
    credits_posted: bigint;
    debits_posted: bigint;
  };

async function journalCount(bank: TestBank): Promise<number> {
  let n = 0;
  for (const s of bank.router.shards) n += Number((await s.db('transfers').count({ n: '*' }))[0]!.n);
  return n;
}

/** The trial balance balances, and its day journal per GL line equals the transfers of the date. */
async function expectTrialBalance(bank: TestBank, date: string) {
  const tb = await trialBalance(bank.router, date);
  for (const b of tb.balances) expect(b.balanced, `${date} shard ${b.shard}`).toBe(true);
  for (const s of bank.router.shards) {
    const lines = tb.balances.find((b) => b.shard === s.index)!.lines;
    for (const kind of [
      SystemAccountKind.SYSTEM_ACCOUNT_KIND_DEPOSIT_INTEREST_EXPENSE,
      SystemAccountKind.SYSTEM_ACCOUNT_KIND_DEPOSIT_INTEREST_PAYABLE,
      SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH,
    ]) {
      const id = systemAccountId(bank.router.map, s.index, kind, 'EUR');
      const { rows } = await s.db.raw(
        `select coalesce(sum(amount) filter (where debit_account_id = ?), 0)::text as d,
                coalesce(sum(amount) filter (where credit_account_id = ?), 0)::text as c
           from transfers where business_date = ? and kind in (1, 3)`,
        [id, id, date],
      );
      const name = SystemAccountKind[kind].replace('SYSTEM_ACCOUNT_KIND_', '');
      const line = lines.find((l) => l.glAccount === name && l.currency === 'EUR');
      expect(line?.dayDebits ?? 0n, `${date} ${name}`).toBe(BigInt(rows[0].d));
      expect(line?.dayCredits ?? 0n, `${date} ${name}`).toBe(BigInt(rows[0].c));
    }
  }
  return tb;
}

describe.each([1, 3])('close of business: deposits and GL on %i shard(s)', (shards) => {
  let bank: TestBank;
  let day: ReturnType<typeof promisify<BusinessDayServiceClient>>;
  let deposits: StepRunner;
  const gl = glStep();

  beforeAll(async () => {
    bank = await startBank(shards);
    deposits = depositStep({ router: bank.router, terms: fixedTerms });
    day = promisify(new BusinessDayServiceClient(bank.address, testChannelCredentials(bank.env)), await testToken());
    await day.setBusinessDate({ businessDate: '2029-12-31', force: true, idempotencyKey: randomUUID() });
  });
  afterAll(async () => {
    day?.close();
    await bank?.stop();
  });

  it('accrues a year of interest equal to balance x rate under each day count, residue carried', async () => {
    // 1,000,000.00 EUR = 100,000,000 minor units in each account, funded on 2029-12-31.
    const B = 100_000_000n;
    const [a365] = await depositAccounts(bank, 'act365-365', 1, B);
    const [b365] = await depositAccounts(bank, 'act365-300', 1, B);
    const [b360] = await depositAccounts(bank, 'act360-300', 1, B);
    const [t360] = await depositAccounts(bank, 't360-300', 1, B);
    let date = '2030-01-01';
    for (let i = 0; i < 365; i++, date = addDays(date, 1)) {
      await runDay(bank, deposits, date);
      // The GL step and the trial balance on every 73rd day and the last (each day would double
      // the test's time; the other tests check their days).
      if (i % 73 === 0 || i === 364) {
        await runDay(bank, gl, date);
        await expectTrialBalance(bank, date);
      }
    }
    const year = async (a: Account) => accrualsOf(bank.router, a.id, '2030-01-01', '2030-12-31');
    const sum = (xs: { amount: bigint }[]) => xs.reduce((s, x) => s + x.amount, 0n);

    // 3.65% ACT/365F: a day is 100,000,000 x 365 / (10000 x 365) = 10,000 exactly; x 365 days
    // = 3,650,000 = 36,500.00.
    const y365 = await year(a365!);
    expect(y365).toHaveLength(365);
    expect(y365.every((d) => d.amount === 10_000n && d.balance === B)).toBe(true);
    expect(sum(y365)).toBe(3_650_000n);

    // 3.00% ACT/365F: a day is 3,000,000,000 / 3,650,000 = 821.9178...0821... x 10 = 8219.178...:
    // days book 8219 or 8220 as the carried residue crosses a half; 365 days sum to exactly
    // 100,000,000 x 0.03 = 3,000,000 (30,000.00).
    const yb365 = await year(b365!);
    expect(new Set(yb365.map((d) => d.amount))).toEqual(new Set([8219n, 8220n]));
    expect(sum(yb365)).toBe(3_000_000n);

    // 3.00% ACT/360 over 365 days: 100,000,000 x 300 x 365 / 3,600,000 = 3,041,666.67 rounded
    // once, half-even: 3,041,667. Rounding each day (8333.33 -> 8333) would give 8333 x 365 =
    // 3,041,545 and lose 122 cents; the carried residue loses nothing.
    const yb360 = await year(b360!);
    expect(sum(yb360)).toBe(divRoundHalfEven(B * 300n * 365n, 3_600_000n));
    expect(sum(yb360)).toBe(3_041_667n);

    // 3.00% 30/360 over the calendar year 2030: the days' weights days360(d, d+1) sum to 360
    // (0 for the 30th of a 31-day month, as the 31st counts as the 30th; 3 for 28 February, to
    // "1 March = 31 February"), so the year is 100,000,000 x 0.03 = 3,000,000 exactly.
    const yt360 = await year(t360!);
    expect(yt360.find((d) => d.businessDate === '2030-02-28')!.amount).toBe(25_000n); // 8333.33 x 3 = 25,000
    expect(yt360.find((d) => d.businessDate === '2030-01-30')!.amount).toBe(0n);
    expect(yt360.find((d) => d.businessDate === '2030-01-31')!.amount).toBe(8_333n);
    expect(sum(yt360)).toBe(3_000_000n);

    // ANNUALLY: nothing posted before 31 December, then the year's accrual credited in one.
    for (const [a, total] of [
      [a365!, 3_650_000n],
      [b365!, 3_000_000n],
      [b360!, 3_041_667n],
      [t360!, 3_000_000n],
    ] as const) {
      const days = await year(a);
      expect(days.filter((d) => d.posted !== 0n).map((d) => [d.businessDate, d.posted])).toEqual([
        ['2030-12-31', total],
      ]);
      const r = await row(bank, a);
      expect(r.credits_posted - r.debits_posted).toBe(B + total);
    }
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it('posts a yield product daily: the account is credited every day and compounds', async () => {
    const accounts = await depositAccounts(bank, 'yield', 6, 1_000_000n);
    let balance = 1_000_000n;
    let exact = 0n;
    let booked = 0n;
    for (const date of ['2031-03-01', '2031-03-02', '2031-03-03']) {
      const before = await journalCount(bank);
      await runDay(bank, deposits, date, 4);
      // 5% ACT/365F: the day's numerator is balance x 500; booked = round_half_even(sum / 3,650,000).
      exact += balance * 500n;
      const cum = divRoundHalfEven(exact, 3_650_000n);
      const today = cum - booked;
      booked = cum;
      for (const a of accounts) {
        const [d] = await accrualsOf(bank.router, a.id, date, date);
        expect(d).toEqual({ businessDate: date, balance, amount: today, posted: today });
        const r = await row(bank, a);
        expect(r.credits_posted - r.debits_posted).toBe(balance + today);
        const t = await bank.client.getTransfer({ transferId: depositTransferId(date, 'post', a.id), accountId: a.id });
        expect(t.transfer).toMatchObject({ amount: today, creditAccountId: a.id, businessDate: date });
      }
      // One posting per account, plus one accrual transfer per shard (1 chunk of 4 has them all
      // or several chunks one each): at least accounts + 1 new transfers.
      expect((await journalCount(bank)) - before).toBeGreaterThan(accounts.length);
      balance += today;
      await runDay(bank, gl, date);
      await expectTrialBalance(bank, date);
    }
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it('posts monthly on the month end, charges the monthly fee only as far as the balance allows', async () => {
    const [m] = await depositAccounts(bank, 'monthly', 1, 730_000n);
    const [poor] = await depositAccounts(bank, 'fee-only', 1, 300n);
    for (const date of ['2031-04-29', '2031-04-30']) await runDay(bank, deposits, date, 2);
    // 2.5% ACT/365F on 730,000: a day is 730,000 x 250 / 3,650,000 = 50 exactly; two days = 100,
    // posted on 30 April; then the fee of 500: 730,000 + 100 - 500 = 729,600.
    const days = await accrualsOf(bank.router, m!.id, '', '');
    expect(days.map((d) => [d.businessDate, d.amount, d.posted])).toEqual([
      ['2031-04-29', 50n, 0n],
      ['2031-04-30', 50n, 100n],
    ]);
    const r = await row(bank, m!);
    expect(r.credits_posted - r.debits_posted).toBe(729_600n);
    // The fee-only account has 300 of a 500 fee: 300 is charged, the rest waived; on 29 April
    // (not a month end) it had nothing to do.
    const p = await row(bank, poor!);
    expect(p.credits_posted - p.debits_posted).toBe(0n);
    expect((await accrualsOf(bank.router, poor!.id, '', '')).map((d) => d.businessDate)).toEqual(['2031-04-30']);
    await runDay(bank, gl, '2031-04-30');
    const tb = await expectTrialBalance(bank, '2031-04-30');
    const bankLines = tb.balances.find((b) => b.shard === undefined)!.lines;
    const feeIncome = bankLines.find((l) => l.glAccount === 'DEPOSIT_FEE_INCOME' && l.currency === 'EUR')!;
    expect(feeIncome.dayCredits).toBe(800n);
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it('posts quarterly on the quarter end, and a term deposit from its maturity on', async () => {
    const [q] = await depositAccounts(bank, 'quarterly', 1, 100_000n);
    const [t] = await depositAccounts(bank, 'term', 1, 100_000n);
    // The term runs from the account's opening date (its created_at in UTC): opened 1 July 2031,
    // one month, it matures on 1 August.
    await bank.router.shards[t!.shard]!.db('accounts')
      .where('id', t!.id)
      .update({ created_at: '2031-07-01T09:00:00Z' });
    for (const date of ['2031-07-30', '2031-07-31', '2031-08-01', '2031-09-30']) await runDay(bank, deposits, date, 2);
    // Quarterly, 3.65% ACT/365F on 100,000: 10 a day; nothing posted on 31 July (a month end, not
    // a quarter end); the four days' 40 posted on 30 September.
    expect((await accrualsOf(bank.router, q!.id, '', '')).map((d) => [d.businessDate, d.amount, d.posted])).toEqual([
      ['2031-07-30', 10n, 0n],
      ['2031-07-31', 10n, 0n],
      ['2031-08-01', 10n, 0n],
      ['2031-09-30', 10n, 40n],
    ]);
    // At maturity, 7.30% on 100,000: 20 a day; the 60 accrued to the maturity posted on it, then
    // each day's interest on the day (the balance now 100,060: 100,060 x 730 / 3,650,000 = 20.01,
    // cumulative 80.01 -> 80, so 20).
    expect((await accrualsOf(bank.router, t!.id, '', '')).map((d) => [d.businessDate, d.amount, d.posted])).toEqual([
      ['2031-07-30', 20n, 0n],
      ['2031-07-31', 20n, 0n],
      ['2031-08-01', 20n, 60n],
      ['2031-09-30', 20n, 20n],
    ]);
    const r = await row(bank, t!);
    expect(r.credits_posted - r.debits_posted).toBe(100_080n);
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it('books nothing twice when a chunk or a whole day runs again', async () => {
    await depositAccounts(bank, 'yield', 3, 50_000n);
    const date = '2031-10-10';
    const first = await runDay(bank, deposits, date, 3);
    expect(first.reduce((n, r) => n + r.items, 0)).toBeGreaterThan(0);
    const journal = await journalCount(bank);
    const again = await runDay(bank, deposits, date, 3);
    expect(again.reduce((n, r) => n + r.items, 0)).toBe(0);
    expect(await journalCount(bank)).toBe(journal);
    // Two runs of the next day at once, cut differently: whichever takes the GL accounts' locks
    // second finds the first's rows and skips those accounts; each is credited exactly once.
    const accounts = await depositAccounts(bank, 'yield', 4, 80_000n);
    const before = await Promise.all(accounts.map((a) => row(bank, a)));
    await Promise.all([runDay(bank, deposits, '2031-10-11', 3), runDay(bank, deposits, '2031-10-11', 1)]);
    for (const [i, a] of accounts.entries()) {
      const days = await accrualsOf(bank.router, a.id, '', '');
      // First day of 80,000 at 5% ACT/365F: 80,000 x 500 / 3,650,000 = 10.96 -> 11, posted daily.
      expect(days).toEqual([{ businessDate: '2031-10-11', balance: 80_000n, amount: 11n, posted: 11n }]);
      const r = await row(bank, a);
      expect(r.credits_posted - before[i]!.credits_posted).toBe(11n);
    }
    // An earlier day run after it (days close in order) leaves these accounts alone.
    await runDay(bank, deposits, '2031-10-09', 2);
    for (const a of accounts) {
      expect((await accrualsOf(bank.router, a.id, '', '')).map((d) => d.businessDate)).toEqual(['2031-10-11']);
    }
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it('excludes bookings dated after the day from its end-of-day balance', async () => {
    const [a] = await depositAccounts(bank, 'monthly', 1, 365_000n);
    // The channels are on 2031-11-02 while 2031-11-01 closes; a deposit of 1,000,000 lands then.
    await day.setBusinessDate({ businessDate: '2031-11-02', force: true, idempotencyKey: randomUUID() });
    const res = await bank.client.createTransfers({
      transfers: [
        transfer({
          debitAccountId: systemAccountId(bank.router.map, a!.shard, SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH, 'EUR'),
          creditAccountId: a!.id,
          amount: 1_000_000n,
        }),
      ],
    });
    expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect(res.results[0]!.transfer!.businessDate).toBe('2031-11-02');
    await runDay(bank, deposits, '2031-11-01');
    // 365,000 x 250 / 3,650,000 = 25: the 1,000,000 dated 2 November does not count on 1 November.
    expect(await accrualsOf(bank.router, a!.id, '2031-11-01', '2031-11-01')).toEqual([
      { businessDate: '2031-11-01', balance: 365_000n, amount: 25n, posted: 0n },
    ]);
    // The trial balance of 1 November leaves the 2 November deposit out, and still balances.
    await runDay(bank, gl, '2031-11-01');
    const tb = await expectTrialBalance(bank, '2031-11-01');
    const live = await trialBalance(bank.router, '2031-11-02');
    const cash = (t: typeof tb) =>
      t.balances.find((b) => b.shard === undefined)!.lines.find((l) => l.glAccount === 'CASH' && l.currency === 'EUR')!;
    expect(cash(live).debits - cash(tb).debits).toBe(1_000_000n);
    expect(cash(live).dayDebits).toBe(1_000_000n);
    await day.setBusinessDate({ businessDate: '2029-12-31', force: true, idempotencyKey: randomUUID() });
  });

  it('runs while channels keep booking on the next day: no deadlock, each on its own date', async () => {
    const accounts = await depositAccounts(bank, 'yield', 12, 365_000n);
    await day.setBusinessDate({ businessDate: '2031-12-02', force: true, idempotencyKey: randomUUID() });
    let stop = false;
    let booked = 0n;
    // Payments between the accounts being closed, and from CASH, in both directions of id order.
    const channel = (async () => {
      for (let i = 0; !stop; i++) {
        const from = accounts[i % accounts.length]!;
        const to = accounts.find((a, k) => a.shard === from.shard && k !== i % accounts.length);
        const cash = systemAccountId(bank.router.map, from.shard, SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH, 'EUR');
        const res = await bank.client.createTransfers({
          transfers: [
            transfer({ debitAccountId: cash, creditAccountId: from.id, amount: 7n }),
            ...(to ? [transfer({ debitAccountId: from.id, creditAccountId: to.id, amount: 3n })] : []),
          ],
        });
        for (const r of res.results) {
          expect(r.code).toBe(R.TRANSFER_RESULT_CODE_OK);
          expect(r.transfer!.businessDate).toBe('2031-12-02');
        }
        booked += 7n;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await runDay(bank, deposits, '2031-12-01', 4);
    stop = true;
    await channel;
    expect(booked).toBeGreaterThan(0n);
    // 365,000 x 500 / 3,650,000 = 50 a day on the balance of 1 December, whatever 2 December brought.
    for (const a of accounts) {
      expect(await accrualsOf(bank.router, a.id, '2031-12-01', '2031-12-01')).toEqual([
        { businessDate: '2031-12-01', balance: 365_000n, amount: 50n, posted: 50n },
      ]);
    }
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
    await runDay(bank, gl, '2031-12-01');
    await expectTrialBalance(bank, '2031-12-01');
    await day.setBusinessDate({ businessDate: '2029-12-31', force: true, idempotencyKey: randomUUID() });
  });

  it('reports NOT_FOUND for an unknown account and INVALID_ARGUMENT for bad input', async () => {
    await expect(accrualsOf(bank.router, '00000000-0000-4000-8000-000000000000', '', '')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(accrualsOf(bank.router, 'nope', '', '')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(trialBalance(bank.router, '2031-02-30')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(trialBalance(bank.router, '2031-02-03', shards)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
