// Co-lending: partner lenders registered with funding accounts, servicing fees and their own rules;
// the two sieves (approve, a partner declines -> the bank takes its share, a partner declines ->
// rejected); the disbursement and every repayment split by share to the minor unit with the
// residue to the bank (worked by hand below); the partner statement reconciled with the ledger
// transfers on its funding account; events. On 1 and 3 shards.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { SystemAccountKind, type Account } from '@corebank/kit/gen/corebank/v1/account';
import {
  LoanApplicationChanged,
  LoanChanged,
  LoanRepaymentChanged,
  PartnerLenderChanged,
} from '@corebank/kit/gen/corebank/v1/events';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import {
  ApplicationState as A,
  LoanStatus as L,
  RepaymentStatus as S,
  type PartnerRules,
} from '@corebank/kit/gen/corebank/v1/loan';
import { PartnerDeclinePolicy as P } from '@corebank/kit/gen/corebank/v1/product';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, expectRpcError, fund } from '../../account/test/helpers.js';
import { loanProduct, loanTerms } from '../../product/test/fixtures.js';
import {
  collectedBy,
  divHalfEven,
  loanPartners,
  splitRepayment,
  type PartnerDecisionRow,
  type PartnerSplitRow,
} from '../src/colending.js';
import { SUBJECTS } from '../src/events.js';
import {
  TEST_SCORECARD,
  applyingCustomer,
  depositAccount,
  loanCounts,
  publishedDeposit,
  publishedLoan,
  startLoans,
  type TestLoans,
  closingDay,
} from './harness.js';

const NO_RULES: PartnerRules = {
  minScore: 0,
  hasMinScore: false,
  maxAmount: 0n,
  maxTermMonths: 0,
  allowedRiskTiers: [],
};

describe('co-lending splits (pure)', () => {
  it('rounds half-even', () => {
    expect([25n, 35n, 26n, 24n].map((n) => divHalfEven(n, 10n))).toEqual([2n, 4n, 3n, 2n]);
  });

  it('pays each partner exactly its funded principal and its share of the interest, whatever the repayments', () => {
    // mulberry32: a small deterministic generator.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return (((x ^ (x >>> 14)) >>> 0) / 4_294_967_296) * n;
    };
    const upTo = (n: bigint) => BigInt(Math.floor(rand(Number(n) + 1)));
    for (let round = 0; round < 200; round++) {
      const principal = 1n + upTo(10_000_000n);
      const totalInterest = upTo(2_000_000n);
      const decisions: PartnerDecisionRow[] = [1, 2, 3].slice(0, 1 + Math.floor(rand(3))).map((i) => ({
        partner_id: `p${i}`,
        share_ppm: 1 + Math.floor(rand(333_333)),
        funded_share_ppm: 0,
        approved: true,
        reasons: [],
        funding_account_id: `f${i}`,
        servicing_fee_percent: `${Math.floor(rand(100))}.${Math.floor(rand(10_000))}`,
      }));
      const partners = loanPartners(
        decisions.map((d) => ({ ...d, funded_share_ppm: d.share_ppm })),
        principal,
      ).map((p) => ({ ...p, participation_account_id: 'x' }));
      const done: PartnerSplitRow[][] = [];
      const paid = { principal: 0n, interest: 0n };
      for (let step = 0; paid.principal < principal || paid.interest < totalInterest; step++) {
        // Random parts of what is left; the eighth repayment pays everything left.
        const p = step < 7 ? upTo(principal - paid.principal) : principal - paid.principal;
        const i = step < 7 ? upTo(totalInterest - paid.interest) : totalInterest - paid.interest;
        paid.principal += p;
        paid.interest += i;
        const splits = splitRepayment(partners, { principal: p, interest: i }, paid, collectedBy(done), 'fee');
        const [sp, si] = splits.reduce((s, x) => [s[0]! + BigInt(x.principal), s[1]! + BigInt(x.interest)], [0n, 0n]);
        expect(sp <= p && si <= i).toBe(true); // the bank's part, the rest, is never negative
        splits.forEach((x) => expect(BigInt(x.fee) <= BigInt(x.interest)).toBe(true));
        done.push(splits);
      }
      const total = collectedBy(done);
      for (const p of partners) {
        const got = total.get(p.partner_id)!;
        expect(got.principal).toBe(BigInt(p.principal));
        expect(got.interest).toBe((totalInterest * BigInt(p.share_ppm)) / 1_000_000n);
        const [whole, frac] = p.servicing_fee_percent.split('.');
        const units = BigInt(whole!) * 10_000n + BigInt(frac!.padEnd(4, '0'));
        expect(got.fee).toBe(divHalfEven(got.interest * units, 1_000_000n));
      }
    }
  });
});

describe.each([1, 3])('co-lending on %i shard(s)', (shards) => {
  let t: TestLoans;
  let depositProductId: string;
  beforeAll(async () => {
    t = await startLoans(shards, {
      LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD),
      DISBURSEMENT_SWEEP_INTERVAL_MS: '0',
    });
    depositProductId = (await publishedDeposit(t)).productId;
  });
  afterAll(async () => t?.stop());

  /** A funding account on every shard (owners drawn until each shard has one), each funded with 1,000,000.00. */
  async function fundingAccounts(funding = 100_000_000n): Promise<Account[]> {
    const byShard = new Map<number, Account>();
    while (byShard.size < shards) {
      const { results } = await t.bank.client.createAccounts({
        accounts: [
          {
            idempotencyKey: randomUUID(),
            ownerId: `partner-${randomUUID()}`,
            currency: 'EUR',
            code: 20,
            flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
            overdraftLimit: 0n,
            reference: 'partner funding',
          },
        ],
      });
      const a = results[0]!.account!;
      if (!byShard.has(a.shard)) {
        if (funding > 0n) await fund(t.bank, a, funding);
        byShard.set(a.shard, a);
      }
    }
    return [...byShard.values()];
  }

  async function partner(fee: string, rules: Partial<PartnerRules> = {}, funding?: bigint) {
    const accounts = await fundingAccounts(funding);
    const id = `p-${randomUUID().slice(0, 8)}`;
    const { partner: p } = await t.client.registerPartnerLender({
      idempotencyKey: randomUUID(),
      partnerId: id,
      name: `Partner ${id}`,
      fundingAccountIds: accounts.map((a) => a.id),
      servicingFeePercent: fee,
      rules: { ...NO_RULES, ...rules },
    });
    const fundingOn = (shard: number) => accounts.find((a) => a.shard === shard)!;
    return { id: p!.partnerId, partner: p!, fundingOn };
  }

  /** 5,000.00 over 12 months at 6.9 % (30/360): the schedule of repayment.test.ts (interest 18,883 in all). */
  const coLent = (partners: { partnerId: string; sharePpm: number }[], decline: P) =>
    publishedLoan(t, { annualRate: '6.9', annualRateBps: 0, partners, partnerDecline: decline });

  /** A LOW-tier borrower (scorecard: 30 + 10 + 0 + 10 = 50 points, approved) with 3,000.00. */
  async function apply(productId: string, tier = RiskTier.RISK_TIER_LOW, key = randomUUID()) {
    const {
      customer: c,
      account,
      request,
    } = await applyingCustomer(t, {
      loanProductId: productId,
      depositProductId,
      tier,
    });
    const req = request({ idempotencyKey: key });
    const res = await t.client.applyForLoan(req);
    return { customer: c, account, req, ...res };
  }

  const systemAccount = async (kind: SystemAccountKind, shard: number) => {
    const { accounts } = await t.bank.client.listSystemAccounts({});
    return accounts.find((s) => s.kind === kind && s.account!.shard === shard && s.account!.currency === 'EUR')!
      .account!;
  };

  const outbox = async (shard: number) =>
    (await t.app.router.shards[shard]!.db('outbox').select('subject', 'payload').orderBy('seq')) as {
      subject: string;
      payload: Buffer;
    }[];

  it('splits the disbursement and every repayment by share to the minor unit; the statement reconciles with the ledger', async () => {
    const a = await partner('12.5'); // fee: 12.5 % of A's interest
    const b = await partner('10'); // fee: 10 % of B's interest
    const product = await coLent(
      [
        { partnerId: a.id, sharePpm: 300_000 },
        { partnerId: b.id, sharePpm: 333_333 },
      ],
      P.PARTNER_DECLINE_POLICY_REJECT,
    );
    const today = t.app.businessDate();
    const app = await apply(product.productId);
    expect(app.application).toMatchObject({ state: A.APPLICATION_STATE_APPROVED, score: 50 });
    expect(app.application!.partnerDecisions.map((d) => [d.partnerId, d.approved, d.fundedSharePpm])).toEqual([
      [a.id, true, 300_000],
      [b.id, true, 333_333],
    ]);
    expect(app.application!.partnerDecisions[0]!.reasons.map((r) => r.code)).toEqual(['FUNDING_ACCOUNT_MET']);
    const loan = app.loan!;
    expect(loan.status).toBe(L.LOAN_STATUS_ACTIVE);
    const shard = app.account.shard;
    const [fa, fb] = [a.fundingOn(shard), b.fundingOn(shard)];

    // Disbursement of 500,000: A 500,000 × 0.300000 = 150,000; B 500,000 × 0.333333 = 166,666.5,
    // rounded down to 166,666; the bank 500,000 - 150,000 - 166,666 = 183,334 (the 0.5 residue).
    expect(loan.principal).toBe(500_000n);
    expect(loan.partners.map((p) => [p.partnerId, p.sharePpm, p.principal])).toEqual([
      [a.id, 300_000, 150_000n],
      [b.id, 333_333, 166_666n],
    ]);
    expect((await balances(t.bank, fa.id)).debitsPosted).toBe(150_000n);
    expect((await balances(t.bank, fb.id)).debitsPosted).toBe(166_666n);
    const partA = await balances(t.bank, loan.partners[0]!.participationAccountId);
    expect([partA.shard, partA.creditsPosted, partA.debitsPosted]).toEqual([shard, 150_000n, 0n]);
    // The loan's own account carries the whole principal; the borrower got all 500,000.
    const ledger = await balances(t.bank, loan.ledgerAccountId);
    expect(ledger.debitsPosted).toBe(500_000n);
    expect((await balances(t.bank, app.account.id)).creditsPosted).toBe(800_000n);

    const fees = await systemAccount(SystemAccountKind.SYSTEM_ACCOUNT_KIND_SERVICING_FEE_INCOME, shard);
    const income = await systemAccount(SystemAccountKind.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME, shard);
    const repay = (amount: bigint) =>
      t.client.repayLoan({ loanId: loan.id, idempotencyKey: randomUUID(), amount, fromAccountId: '' });
    const split = (r: Awaited<ReturnType<typeof repay>>) =>
      r.repayment!.partnerSplits.map((s) => [s.principal, s.interest, s.servicingFee]);

    // Repayment 1: 1,000, all interest. Interest repaid so far 1,000: A floor(1,000 × 0.3) = 300,
    // fee 12.5 % = 37.5 -> 38 (half-even); B floor(1,000 × 0.333333) = 333, fee 33.3 -> 33; the
    // bank 1,000 - 300 - 333 = 367.
    const r1 = await repay(1_000n);
    expect(r1.repayment!.status).toBe(S.REPAYMENT_STATUS_APPLIED);
    expect(split(r1)).toEqual([
      [0n, 300n, 38n],
      [0n, 333n, 33n],
    ]);

    // Repayment 2: 43,240 = interest 1,875 + principal 40,365 + interest 1,000. Repaid so far:
    // principal 40,365, interest 3,875.
    // A: principal floor(40,365 × 0.3) = floor(12,109.5) = 12,109; interest floor(3,875 × 0.3) =
    //    floor(1,162.5) = 1,162, less 300 = 862; fee half-even(1,162 × 0.125 = 145.25) = 145, less 38 = 107.
    // B: principal floor(40,365 × 0.333333) = floor(13,454.99) = 13,454; interest
    //    floor(3,875 × 0.333333) = floor(1,291.67) = 1,291, less 333 = 958; fee
    //    half-even(129.1) = 129, less 33 = 96.
    // The bank: principal 40,365 - 12,109 - 13,454 = 14,802; interest 2,875 - 862 - 958 = 1,055.
    const r2 = await repay(43_240n);
    expect(r2.repayment).toMatchObject({ principal: 40_365n, interest: 2_875n });
    expect(split(r2)).toEqual([
      [12_109n, 862n, 107n],
      [13_454n, 958n, 96n],
    ]);

    // Repayment 3: everything left, 474,643. Repaid in all: principal 500,000, interest 18,883.
    // A: principal 150,000 (all it funded) - 12,109 = 137,891; interest floor(18,883 × 0.3) =
    //    5,664, less 1,162 = 4,502; fee half-even(5,664 × 0.125 = 708) = 708, less 145 = 563.
    // B: principal 166,666 - 13,454 = 153,212; interest floor(18,883 × 0.333333 = 6,294.33) =
    //    6,294, less 1,291 = 5,003; fee half-even(629.4) = 629, less 129 = 500.
    const r3 = await repay(474_643n);
    expect(r3.loan!.status).toBe(L.LOAN_STATUS_PAID_OFF);
    expect(split(r3)).toEqual([
      [137_891n, 4_502n, 563n],
      [153_212n, 5_003n, 500n],
    ]);
    // Every split sums exactly to its repayment (the bank's part is the rest, never negative).
    for (const r of [r1, r2, r3]) {
      const partners = r.repayment!.partnerSplits.reduce((s, x) => s + x.principal + x.interest, 0n);
      expect(partners).toBeLessThanOrEqual(r.repayment!.amount);
    }

    // The ledger. A's funding account: out 150,000; in 150,000 + (5,664 - 708) = 154,956.
    // B's: out 166,666; in 166,666 + (6,294 - 629) = 172,331. Servicing fees 708 + 629 = 1,337.
    // The bank's interest income: the borrower's whole 18,883 in, the partners' 5,664 + 6,294 out
    // (their interest less the fee to them, the fee to SERVICING_FEE_INCOME): 6,925 net.
    // Participation accounts at zero.
    const [la, lb] = [await balances(t.bank, fa.id), await balances(t.bank, fb.id)];
    expect([la.debitsPosted, la.creditsPosted - 100_000_000n]).toEqual([150_000n, 154_956n]);
    expect([lb.debitsPosted, lb.creditsPosted - 100_000_000n]).toEqual([166_666n, 172_331n]);
    expect((await balances(t.bank, fees.id)).creditsPosted - fees.creditsPosted).toBe(1_337n);
    const incomeAfter = await balances(t.bank, income.id);
    expect(incomeAfter.creditsPosted - income.creditsPosted).toBe(18_883n);
    expect(incomeAfter.debitsPosted - income.debitsPosted).toBe(5_664n + 6_294n);
    for (const p of loan.partners) {
      const x = await balances(t.bank, p.participationAccountId);
      expect(x.debitsPosted).toBe(x.creditsPosted);
    }
    const closed = await balances(t.bank, loan.ledgerAccountId);
    expect([closed.debitsPosted, closed.creditsPosted]).toEqual([500_000n, 500_000n]);
    expect((await t.bank.client.checkLedgerInvariant({})).ok).toBe(true);

    // A's statement for today: totals as above, and exactly the transfers on its funding account
    // (apart from the one that funded it), with the same amounts.
    const st = await t.client.getPartnerStatement({ partnerId: a.id, fromDate: today, toDate: today });
    expect(st.totals).toEqual([
      {
        currency: 'EUR',
        principalDisbursed: 150_000n,
        principalCollected: 150_000n,
        interestCollected: 5_664n,
        servicingFees: 708n,
        interestPaidOut: 4_956n,
      },
    ]);
    expect(st.loans).toHaveLength(1);
    const { entries } = await t.bank.client.getStatement({ accountId: fa.id, page: { pageSize: 100, pageToken: '' } });
    const drawn = entries.slice(1); // entry 1: the cash that funded the account
    expect(new Set(drawn.map((e) => e.transferId))).toEqual(new Set(st.loans[0]!.transferIds));
    const out = drawn.filter((e) => e.postedChange < 0n).reduce((s, e) => s - e.postedChange, 0n);
    const into = drawn.filter((e) => e.postedChange > 0n).reduce((s, e) => s + e.postedChange, 0n);
    expect(out).toBe(st.totals[0]!.principalDisbursed);
    expect(into).toBe(st.totals[0]!.principalCollected + st.totals[0]!.interestPaidOut);
    // A range before today: nothing.
    const empty = await t.client.getPartnerStatement({ partnerId: a.id, fromDate: '2020-01-01', toDate: '2020-12-31' });
    expect([empty.loans, empty.totals]).toEqual([[], []]);

    // Events: the disbursement and the repayments carry the shares and splits.
    const events = await outbox(loan.shard);
    const disbursed = events.find(
      (e) => e.subject === SUBJECTS.disbursed && LoanChanged.decode(e.payload).loan!.id === loan.id,
    )!;
    expect(LoanChanged.decode(disbursed.payload).loan!.partners.map((p) => p.principal)).toEqual([150_000n, 166_666n]);
    const applied = events
      .filter((e) => e.subject === SUBJECTS.repaymentApplied)
      .map((e) => LoanRepaymentChanged.decode(e.payload).repayment!)
      .filter((r) => r.loanId === loan.id);
    expect(applied.map((r) => r.partnerSplits[0]!.principal)).toEqual([0n, 12_109n, 137_891n]);
    const registered = (await outbox(0)).filter((e) => e.subject === SUBJECTS.partnerRegistered);
    expect(registered.map((e) => PartnerLenderChanged.decode(e.payload).partner!.partnerId)).toEqual(
      expect.arrayContaining([a.id, b.id]),
    );
  });

  it("collects a co-lent loan's instalment at the close of business split by share, dated the day collected for", async () => {
    const a = await partner('10');
    const product = await coLent([{ partnerId: a.id, sharePpm: 500_000 }], P.PARTNER_DECLINE_POLICY_REJECT);
    const app = await apply(product.productId);
    const loan = app.loan!;
    const shard = app.account.shard;
    const fa = a.fundingOn(shard);
    const before = await balances(t.bank, fa.id);
    const { instalments } = (await t.client.getLoanSchedule({ loanId: loan.id })).schedule!;
    const first = instalments[0]!;
    await closingDay(t, first.dueDate);
    const res = await t.client.runLoanDay({
      businessDate: first.dueDate,
      shard,
      afterId: '',
      upToId: '',
      loanIds: [loan.id],
    });
    expect(res.loansCollected).toBe(1);
    // The first instalment, collected in full: A gets floor(principal x 0.5) and floor(interest x 0.5)
    // less its 10 % fee (half-even), the rest stays with the bank.
    const { rows } = (await t.app.router.shards[shard]!.db.raw(
      `select partner_splits from loan_repayments where loan_id = ? and kind = 20`,
      [loan.id],
    )) as { rows: { partner_splits: { principal: string; interest: string; fee: string }[] }[] };
    const [split] = rows[0]!.partner_splits;
    expect(BigInt(split!.principal)).toBe(first.principalDue / 2n);
    expect(BigInt(split!.interest)).toBe(first.interestDue / 2n);
    const after = await balances(t.bank, fa.id);
    expect(after.creditsPosted - before.creditsPosted).toBe(
      BigInt(split!.principal) + BigInt(split!.interest) - BigInt(split!.fee),
    );
    // Every transfer of the collection, the partner's legs included, belongs to the due date.
    const { rows: dated } = (await t.bank.router.shards[shard]!.db.raw(
      `select distinct to_char(business_date, 'YYYY-MM-DD') as d from transfers where reference like ?`,
      [`loan ${loan.id} repayment %`],
    )) as { rows: { d: string }[] };
    expect(dated.map((r) => r.d)).toEqual([first.dueDate]);
  });

  it('a declining partner: its share goes to the bank, or the application is rejected, per product', async () => {
    const a = await partner('0');
    const small = await partner('5', { maxAmount: 100_000n }); // declines 500,000
    const picky = await partner('5', { hasMinScore: true, minScore: 60, allowedRiskTiers: [RiskTier.RISK_TIER_LOW] });

    // BANK_TAKES_SHARE: `small` declines (MAX_AMOUNT_FAILED); the bank funds its 200,000 too.
    const taking = await coLent(
      [
        { partnerId: a.id, sharePpm: 250_000 },
        { partnerId: small.id, sharePpm: 400_000 },
      ],
      P.PARTNER_DECLINE_POLICY_BANK_TAKES_SHARE,
    );
    const app = await apply(taking.productId);
    expect(app.application!.state).toBe(A.APPLICATION_STATE_APPROVED);
    expect(app.application!.partnerDecisions).toEqual([
      expect.objectContaining({ partnerId: a.id, approved: true, sharePpm: 250_000, fundedSharePpm: 250_000 }),
      expect.objectContaining({ partnerId: small.id, approved: false, sharePpm: 400_000, fundedSharePpm: 0 }),
    ]);
    expect(app.application!.partnerDecisions[1]!.reasons.map((r) => r.code)).toEqual([
      'FUNDING_ACCOUNT_MET',
      'MAX_AMOUNT_FAILED',
    ]);
    expect(app.application!.reasons.at(-1)!.code).toBe('PARTNER_SHARE_TO_BANK');
    // A: 500,000 × 0.25 = 125,000; the bank 375,000; `small` funds nothing.
    expect(app.loan!.partners.map((p) => [p.partnerId, p.principal])).toEqual([[a.id, 125_000n]]);
    expect((await balances(t.bank, small.fundingOn(app.account.shard).id)).debitsPosted).toBe(0n);
    expect((await balances(t.bank, a.fundingOn(app.account.shard).id)).debitsPosted).toBe(125_000n);
    // The approval is stored with the decisions (GetLoanApplication shows them).
    const got = await t.client.getLoanApplication({ applicationId: app.application!.id });
    expect(got.application!.partnerDecisions).toEqual(app.application!.partnerDecisions);

    // REJECT: `picky` wants a bank score of 60 (the borrower has 50): the application is rejected,
    // no loan, nothing drawn; events applied then rejected.
    const rejecting = await coLent(
      [
        { partnerId: a.id, sharePpm: 250_000 },
        { partnerId: picky.id, sharePpm: 250_000 },
      ],
      P.PARTNER_DECLINE_POLICY_REJECT,
    );
    const no = await apply(rejecting.productId);
    expect(no.application).toMatchObject({ state: A.APPLICATION_STATE_REJECTED, score: 50, loanId: '' });
    expect(no.loan).toBeUndefined();
    expect(no.application!.partnerDecisions[1]).toMatchObject({ partnerId: picky.id, approved: false });
    expect(no.application!.partnerDecisions[1]!.reasons.map((r) => r.code)).toEqual([
      'FUNDING_ACCOUNT_MET',
      'MIN_SCORE_FAILED',
      'RISK_TIER_MET',
    ]);
    expect(no.application!.reasons.at(-1)).toMatchObject({ code: 'PARTNER_DECLINED', points: 0 });
    const events = (await outbox(no.application!.shard))
      .filter((e) => e.subject.includes('application_'))
      .map((e) => ({ subject: e.subject, a: LoanApplicationChanged.decode(e.payload).application! }))
      .filter((e) => e.a.id === no.application!.id);
    expect(events.map((e) => e.subject)).toEqual([SUBJECTS.applied, SUBJECTS.rejected]);
    expect((await balances(t.bank, picky.fundingOn(no.account.shard).id)).debitsPosted).toBe(0n);
  });

  it('registers partners idempotently, refuses bad input naming the field, and products name only registered partners', async () => {
    const [acc] = await fundingAccounts();
    const req = {
      idempotencyKey: randomUUID(),
      partnerId: `p-${randomUUID().slice(0, 8)}`,
      name: 'Partner Bank AG',
      fundingAccountIds: [acc!.id],
      servicingFeePercent: '15.25',
      rules: { ...NO_RULES, maxAmount: 1_000_000n },
    };
    const first = await t.client.registerPartnerLender(req);
    expect(first).toMatchObject({
      replayed: false,
      partner: { partnerId: req.partnerId, servicingFeePercent: '15.25' },
    });
    expect(first.partner!.fundingAccounts).toEqual([{ accountId: acc!.id, currency: 'EUR', shard: acc!.shard }]);
    expect((await t.client.registerPartnerLender(req)).replayed).toBe(true);
    await expectRpcError(
      t.client.registerPartnerLender({ ...req, name: 'Other' }),
      status.ALREADY_EXISTS,
      'idempotency_key',
      'PARTNER_EXISTS_WITH_DIFFERENT_BODY',
    );
    await expectRpcError(
      t.client.registerPartnerLender({ ...req, idempotencyKey: randomUUID() }),
      status.ALREADY_EXISTS,
      'partner_id',
      'PARTNER_EXISTS',
    );
    expect((await t.client.getPartnerLender({ partnerId: req.partnerId })).partner).toEqual(first.partner);
    const { partners } = await t.client.listPartnerLenders({ page: { pageSize: 100, pageToken: '' } });
    expect(partners.map((p) => p.partnerId)).toContain(req.partnerId);

    const before = await loanCounts(t.app);
    const bad = (o: object, field: string) =>
      expectRpcError(
        t.client.registerPartnerLender({ ...req, idempotencyKey: randomUUID(), partnerId: 'p-new', ...o }),
        status.INVALID_ARGUMENT,
        field,
      );
    await bad({ partnerId: 'Bad Id' }, 'partner_id');
    await bad({ name: '' }, 'name');
    await bad({ fundingAccountIds: [] }, 'funding_account_ids');
    await bad({ fundingAccountIds: ['nope'] }, 'funding_account_ids[0]');
    await bad({ servicingFeePercent: '100.5' }, 'servicing_fee_percent');
    await bad({ servicingFeePercent: '1.23456' }, 'servicing_fee_percent');
    await bad({ rules: { ...NO_RULES, maxAmount: -1n } }, 'rules.max_amount');
    await bad({ rules: { ...NO_RULES, allowedRiskTiers: [9] } }, 'rules.allowed_risk_tiers[0]');
    await expectRpcError(
      t.client.registerPartnerLender({
        ...req,
        idempotencyKey: randomUUID(),
        partnerId: 'p-new',
        fundingAccountIds: [randomUUID().slice(0, 32) + '0000'],
      }),
      status.NOT_FOUND,
      'funding_account_ids[0]',
    );
    expect(await loanCounts(t.app)).toEqual(before);
    await expectRpcError(
      t.client.getPartnerStatement({ partnerId: req.partnerId, fromDate: '2026-02-30', toDate: '' }),
      status.INVALID_ARGUMENT,
      'from_date',
    );
    await expectRpcError(
      t.client.getPartnerStatement({ partnerId: req.partnerId, fromDate: '2026-02-01', toDate: '2026-01-01' }),
      status.INVALID_ARGUMENT,
      'to_date',
    );
    await expectRpcError(
      t.client.getPartnerStatement({ partnerId: 'nobody', fromDate: '2026-01-01', toDate: '2026-01-01' }),
      status.NOT_FOUND,
      'partner_id',
    );
    await expectRpcError(t.client.getPartnerLender({ partnerId: 'nobody' }), status.NOT_FOUND, 'partner_id');
    const customerToken = await t.clientWith(undefined, randomUUID());
    await expectRpcError(customerToken.registerPartnerLender(req), status.PERMISSION_DENIED);

    // The catalog checks the shares' shape ...
    await expectRpcError(
      t.peers.catalog.client.createProduct(
        loanProduct({
          loan: loanTerms({
            partners: [
              { partnerId: req.partnerId, sharePpm: 600_000 },
              { partnerId: 'other', sharePpm: 400_001 },
            ],
            partnerDecline: P.PARTNER_DECLINE_POLICY_REJECT,
          }),
        }),
      ),
      status.INVALID_ARGUMENT,
      'loan.partners',
    );
    await expectRpcError(
      t.peers.catalog.client.createProduct(
        loanProduct({ loan: loanTerms({ partners: [{ partnerId: req.partnerId, sharePpm: 1 }] }) }),
      ),
      status.INVALID_ARGUMENT,
      'loan.partner_decline',
    );
    // ... and an application on a product naming an unregistered partner is refused, nothing written.
    const ghost = await coLent([{ partnerId: 'not-registered', sharePpm: 100_000 }], P.PARTNER_DECLINE_POLICY_REJECT);
    const before2 = await loanCounts(t.app);
    await expectRpcError(apply(ghost.productId), status.FAILED_PRECONDITION, 'product_id', 'PARTNER_NOT_REGISTERED');
    const after2 = await loanCounts(t.app);
    expect(after2.loan_applications).toBe(before2.loan_applications);
  });

  it('splits concurrent repayments once, catches up after a refused one, and draws all shares or none', async () => {
    const a = await partner('20');
    const product = await coLent([{ partnerId: a.id, sharePpm: 300_000 }], P.PARTNER_DECLINE_POLICY_REJECT);
    const app = await apply(product.productId);
    const loan = app.loan!;
    const repay = (amount: bigint, fromAccountId = '') =>
      t.client.repayLoan({ loanId: loan.id, idempotencyKey: randomUUID(), amount, fromAccountId });

    // Ten concurrent repayments of 1,000: 10,000 = instalment 1's interest 2,875 + principal 7,125.
    // Whatever the order, A's parts add up to floor(7,125 × 0.3) = floor(2,137.5) = 2,137 of
    // principal and floor(2,875 × 0.3) = floor(862.5) = 862 of interest; fees half-even(862 × 0.2 =
    // 172.4) = 172. Each repayment's parts are within it.
    const all = await Promise.all(Array.from({ length: 10 }, () => repay(1_000n)));
    expect(all.every((r) => r.repayment!.status === S.REPAYMENT_STATUS_APPLIED)).toBe(true);
    const sum = (rs: typeof all) =>
      rs.reduce(
        (s, r) => {
          const x = r.repayment!.partnerSplits[0]!;
          expect(x.principal + x.interest).toBeLessThanOrEqual(r.repayment!.amount);
          return [s[0]! + x.principal, s[1]! + x.interest, s[2]! + x.servicingFee];
        },
        [0n, 0n, 0n],
      );
    expect(sum(all)).toEqual([2_137n, 862n, 172n]);

    // A refused repayment (an empty account) takes nothing; the next one catches up: 1,000 more
    // (principal, 11,000 repaid: 8,125 principal) gives A floor(8,125 × 0.3) = 2,437, so 300.
    const empty = await depositAccount(t, app.customer.id, depositProductId, 0n);
    const refused = await repay(1_000n, empty.id);
    expect(refused.repayment!.status).toBe(S.REPAYMENT_STATUS_REFUSED);
    const next = await repay(1_000n);
    expect(next.repayment!.partnerSplits[0]).toMatchObject({ principal: 300n, interest: 0n, servicingFee: 0n });
    const f = await balances(t.bank, a.fundingOn(app.account.shard).id);
    // In: principal 2,137 + 300, interest 862 - 172 = 690.
    expect(f.creditsPosted - 100_000_000n).toBe(2_437n + 690n);

    // A payoff (the interest not yet accrued waived) returns the rest of A's principal: its
    // participation account is back at zero, its funding account has all 150,000 back.
    const off = await t.client.payOff({
      loanId: loan.id,
      idempotencyKey: randomUUID(),
      fromAccountId: '',
      expectedTotal: 0n,
    });
    expect(off.loan!.status).toBe(L.LOAN_STATUS_PAID_OFF);
    const part = await balances(t.bank, loan.partners[0]!.participationAccountId);
    expect([part.debitsPosted, part.creditsPosted]).toEqual([150_000n, 150_000n]);
    // The bank's business date (an earlier test closed days and moved it), which the loan is dated by.
    const day = t.app.businessDate();
    const st = await t.client.getPartnerStatement({ partnerId: a.id, fromDate: day, toDate: day });
    expect(st.totals[0]).toMatchObject({ principalDisbursed: 150_000n, principalCollected: 150_000n });
    const funded = await balances(t.bank, a.fundingOn(app.account.shard).id);
    expect(funded.creditsPosted - 100_000_000n).toBe(150_000n + st.totals[0]!.interestPaidOut);

    // A partner whose funding account cannot pay its share: the whole disbursement is refused
    // (linked), nothing moves for anyone.
    const broke = await partner('0', {}, 0n);
    const poor = await coLent(
      [
        { partnerId: a.id, sharePpm: 300_000 },
        { partnerId: broke.id, sharePpm: 100_000 },
      ],
      P.PARTNER_DECLINE_POLICY_REJECT,
    );
    const drawn = async () => {
      let total = 0n;
      for (let i = 0; i < shards; i++) total += (await balances(t.bank, a.fundingOn(i).id)).debitsPosted;
      return total;
    };
    const aBefore = await drawn();
    const refusedLoan = await apply(poor.productId);
    expect(refusedLoan.loan).toMatchObject({ status: L.LOAN_STATUS_DISBURSEMENT_REFUSED, refusal: 'EXCEEDS_CREDITS' });
    expect((await balances(t.bank, refusedLoan.account.id)).creditsPosted).toBe(300_000n);
    expect(await drawn()).toBe(aBefore);
    expect((await balances(t.bank, refusedLoan.loan!.ledgerAccountId)).debitsPosted).toBe(0n);
    expect((await t.bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });

  it("a referred co-lent application keeps the partners' decisions; an approval of less splits the lower amount", async () => {
    const a = await partner('0');
    const product = await coLent([{ partnerId: a.id, sharePpm: 250_001 }], P.PARTNER_DECLINE_POLICY_REJECT);
    // MEDIUM: 10 + 10 + 0 + 10 (3,000 is 60 % of 5,000) = 30 points: referred.
    const app = await apply(product.productId, RiskTier.RISK_TIER_MEDIUM);
    expect(app.application).toMatchObject({ state: A.APPLICATION_STATE_REFERRED, score: 30 });
    expect(app.application!.partnerDecisions[0]).toMatchObject({ approved: true, fundedSharePpm: 250_001 });
    const { loan } = await t.client.decideLoanApplication({
      applicationId: app.application!.id,
      decision: A.APPLICATION_STATE_APPROVED,
      note: 'ok',
      approvedAmount: 400_000n,
    });
    // 400,000 × 0.250001 = 100,000.4 -> 100,000 for A; the bank 300,000.
    expect(loan).toMatchObject({ status: L.LOAN_STATUS_ACTIVE, principal: 400_000n });
    expect(loan!.partners.map((p) => p.principal)).toEqual([100_000n]);
    expect((await balances(t.bank, loan!.partners[0]!.participationAccountId)).creditsPosted).toBe(100_000n);
  });

  it('moves each share once when a crash interrupts a disbursement or a repayment (retried by key)', async () => {
    const a = await partner('10');
    const product = await coLent([{ partnerId: a.id, sharePpm: 400_000 }], P.PARTNER_DECLINE_POLICY_REJECT);
    const app = await apply(product.productId);
    const loan = app.loan!;
    const db = t.app.router.byId(loan.id)!.db;
    const funding = a.fundingOn(app.account.shard);

    // A crash after the ledger made the disbursement and before the commit: the loan is pending
    // again, as it was. The retry (same key) replays the ledger's transfers: 200,000 drawn once.
    await db('loan_instalments').where('loan_id', loan.id).delete();
    await db('loans')
      .where('id', loan.id)
      .update({ status: L.LOAN_STATUS_PENDING_DISBURSEMENT, disbursed_on: null, ledger_account_id: null });
    const again = await t.client.applyForLoan(app.req);
    expect(again.replayed).toBe(true);
    expect(again.loan).toMatchObject({ status: L.LOAN_STATUS_ACTIVE });
    expect(again.loan!.partners).toEqual(loan.partners);
    expect((await balances(t.bank, funding.id)).debitsPosted).toBe(200_000n); // 500,000 × 0.4
    expect((await balances(t.bank, app.account.id)).creditsPosted).toBe(800_000n);

    // The same for a repayment of 3,000 = interest 2,875 + principal 125: A gets principal
    // floor(125 × 0.4) = 50, interest floor(2,875 × 0.4) = 1,150, less the fee 10 % = 115.
    const key = randomUUID();
    const repay = () => t.client.repayLoan({ loanId: loan.id, idempotencyKey: key, amount: 3_000n, fromAccountId: '' });
    const done = await repay();
    expect(done.repayment!.partnerSplits[0]).toMatchObject({ principal: 50n, interest: 1_150n, servicingFee: 115n });
    await db('loan_repayments').where('id', done.repayment!.id).update({ status: S.REPAYMENT_STATUS_PENDING });
    const retried = await repay();
    expect(retried).toMatchObject({ replayed: true, repayment: { status: S.REPAYMENT_STATUS_APPLIED } });
    expect(retried.repayment!.partnerSplits).toEqual(done.repayment!.partnerSplits);
    expect((await balances(t.bank, funding.id)).creditsPosted - 100_000_000n).toBe(50n + 1_150n - 115n);
    expect((await t.bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });
});
