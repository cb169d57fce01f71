// ApplyForLoan, the scorecard's decisions with their reasons, idempotency, bad input, customer
// binding, and the review queue (ListLoanApplications, DecideLoanApplication), on 1 and 3 shards.
import { status } from '@grpc/grpc-js';
import { LoanApplicationChanged } from '@corebank/kit/gen/corebank/v1/events';
import { ApplicationState as A, type ApplyForLoanRequest } from '@corebank/kit/gen/corebank/v1/loan';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError } from '../../account/test/helpers.js';
import { SUBJECTS } from '../src/events.js';
import {
  applyingCustomer,
  TEST_SCORECARD,
  customer,
  depositAccount,
  loanCounts,
  publishedDeposit,
  publishedLoan,
  startLoans,
  type TestLoans,
} from './harness.js';

describe.each([1, 3])('loan applications on %i shard(s)', (shards) => {
  let t: TestLoans;
  let loanProductId: string;
  let depositProductId: string;
  beforeAll(async () => {
    t = await startLoans(shards, { LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD) });
    // 1,000.00 to 50,000.00 over 6 to 84 months at 6.9 %, annuity, 30/360.
    loanProductId = (await publishedLoan(t, { annualRate: '6.9', annualRateBps: 0 })).productId;
    depositProductId = (await publishedDeposit(t)).productId;
  });
  afterAll(async () => t?.stop());

  const applicant = (tier = RiskTier.RISK_TIER_MEDIUM, funding = 300_000n) =>
    applyingCustomer(t, { loanProductId, depositProductId, tier, funding });

  const points = (reasons: { code: string; points: number }[]) =>
    Object.fromEntries(reasons.map((r) => [r.code, r.points]));

  async function eventsOf(applicationId: string) {
    const out: { subject: string; state: A }[] = [];
    for (const s of t.app.router.shards) {
      const rows = (await s.db('outbox').select('subject', 'payload').orderBy('seq')) as {
        subject: string;
        payload: Buffer;
      }[];
      for (const r of rows.filter((x) => x.subject.startsWith('corebank.loan.application_'))) {
        const a = LoanApplicationChanged.decode(r.payload).application!;
        if (a.id === applicationId) out.push({ subject: r.subject, state: a.state });
      }
    }
    return out;
  }

  it('approves, refers and rejects by the scorecard, storing every reason', async () => {
    // Funding 300,000 against 500,000 applied for: turnover 60 % -> 10 points; no loans yet -> 10.
    // LOW 30 + 10 + 0 + 10 + 0 (no income declared) = 50 >= 40: APPROVED.
    const low = await applicant(RiskTier.RISK_TIER_LOW);
    const approved = (await t.client.applyForLoan(low.request())).application!;
    expect(approved).toMatchObject({
      state: A.APPLICATION_STATE_APPROVED,
      score: 50,
      approvedAmount: 500_000n,
      annualRate: '6.9',
      productVersion: 1,
      currency: 'EUR',
      decidedBy: 'scorecard',
    });
    expect(approved.decidedAt).toBeDefined();
    expect(points(approved.reasons)).toEqual({
      RISK_TIER_LOW: 30,
      NO_EXISTING_EXPOSURE: 10,
      ACCOUNT_AGE: 0,
      ACCOUNT_TURNOVER: 10,
      INCOME_NOT_DECLARED: 0,
    });
    expect(approved.reasons.find((r) => r.code === 'ACCOUNT_TURNOVER')!.detail).toBe(
      'credits 300000 = 60% of the amount',
    );
    expect(await eventsOf(approved.id)).toEqual([
      { subject: SUBJECTS.applied, state: A.APPLICATION_STATE_APPROVED },
      { subject: SUBJECTS.approved, state: A.APPLICATION_STATE_APPROVED },
    ]);

    // MEDIUM 10 + 10 + 0 + 10 + 0 = 30: between 20 and 40, REFERRED (no decision time yet).
    const medium = await applicant(RiskTier.RISK_TIER_MEDIUM);
    const referred = (await t.client.applyForLoan(medium.request())).application!;
    expect(referred).toMatchObject({ state: A.APPLICATION_STATE_REFERRED, score: 30, approvedAmount: 0n });
    expect(referred.decidedAt).toBeUndefined();
    expect(await eventsOf(referred.id)).toEqual([
      { subject: SUBJECTS.applied, state: A.APPLICATION_STATE_REFERRED },
      { subject: SUBJECTS.referred, state: A.APPLICATION_STATE_REFERRED },
    ]);

    // HIGH -50 + 10 + 0 + 0 (a customer with no money in: 0 % turnover) + 0 = -40 < 20: REJECTED.
    const high = await applicant(RiskTier.RISK_TIER_HIGH, 0n);
    const rejected = (await t.client.applyForLoan(high.request())).application!;
    expect(rejected).toMatchObject({ state: A.APPLICATION_STATE_REJECTED, score: -40 });
    expect(points(rejected.reasons)).toMatchObject({ RISK_TIER_HIGH: -50, ACCOUNT_TURNOVER: 0 });
  });

  it('scores the largest instalment against a declared income', async () => {
    // The annuity instalment of 500,000 over 12 months at 6.9 % (30/360: i = 0.00575 a month):
    // 500,000 × 0.00575 / (1 - 1.00575^-12) = 43,240.33 -> 43,240. The last instalment takes the
    // residue: its interest is 247 on an outstanding 42,996, so it is 43,243, the largest.
    // MEDIUM 10 + 10 + 0 + 10 = 30 before income:
    //   income 200,000: 43,243 × 100 / 200,000 = 21 % -> +20 -> 50: APPROVED
    //   income 100,000: 43 % -> 0 -> 30: REFERRED
    //   income  50,000: 86 % -> -40 -> -10: REJECTED
    const { schedule } = await t.client.previewSchedule({
      productId: loanProductId,
      productVersion: 0,
      amount: 500_000n,
      termMonths: 12,
      startDate: '',
    });
    expect(schedule!.instalmentAmount).toBe(43_240n);
    expect(schedule!.instalments.at(-1)!.totalDue).toBe(43_243n);
    const cases: [bigint, A, number, string][] = [
      [200_000n, A.APPLICATION_STATE_APPROVED, 50, 'instalment 43243 = 21% of declared monthly income'],
      [100_000n, A.APPLICATION_STATE_REFERRED, 30, 'instalment 43243 = 43% of declared monthly income'],
      [50_000n, A.APPLICATION_STATE_REJECTED, -10, 'instalment 43243 = 86% of declared monthly income'],
    ];
    for (const [income, state, score, detail] of cases) {
      const a = await applicant();
      const { application } = await t.client.applyForLoan(a.request({ declaredMonthlyIncome: income }));
      expect(application).toMatchObject({ state, score, declaredMonthlyIncome: income });
      expect(application!.reasons.find((r) => r.code === 'INSTALMENT_TO_INCOME')!.detail).toBe(detail);
    }
  });

  it('is idempotent by customer and key: the same body replays, another is ALREADY_EXISTS', async () => {
    const a = await applicant(RiskTier.RISK_TIER_LOW);
    const req = a.request();
    const first = await t.client.applyForLoan(req);
    const before = await loanCounts(t.app);
    const again = await t.client.applyForLoan(req);
    expect(again).toEqual({ ...first, replayed: true });
    await expectRpcError(
      t.client.applyForLoan({ ...req, amount: 600_000n }),
      status.ALREADY_EXISTS,
      'idempotency_key',
      'APPLICATION_EXISTS_WITH_DIFFERENT_BODY',
    );
    // Concurrent retries of one new key make one application.
    const req2 = a.request();
    const all = await Promise.all(Array.from({ length: 5 }, () => t.client.applyForLoan(req2)));
    expect(new Set(all.map((r) => r.application!.id)).size).toBe(1);
    expect(all.filter((r) => !r.replayed)).toHaveLength(1);
    expect((await loanCounts(t.app)).loan_applications).toBe(before.loan_applications! + 1);
  });

  it('names each bad field and writes nothing', async () => {
    const a = await applicant();
    const ok = a.request();
    const before = await loanCounts(t.app);
    const cases: [Partial<ApplyForLoanRequest>, string][] = [
      [{ idempotencyKey: '' }, 'idempotency_key'],
      [{ idempotencyKey: 'k'.repeat(129) }, 'idempotency_key'],
      [{ idempotencyKey: 'a\u0000b' }, 'idempotency_key'],
      [{ customerId: '' }, 'customer_id'],
      [{ customerId: 'nope' }, 'customer_id'],
      [{ productId: '' }, 'product_id'],
      [{ amount: 0n }, 'amount'],
      [{ termMonths: 0 }, 'term_months'],
      [{ termMonths: 2 ** 31 }, 'term_months'],
      [{ disbursementAccountId: '' }, 'disbursement_account_id'],
      [{ repaymentAccountId: 'ffffffff-ffff-4fff-bfff-ffffffffffff' }, 'repayment_account_id'],
      [{ declaredMonthlyIncome: -1n }, 'declared_monthly_income'],
    ];
    for (const [change, field] of cases) {
      await expectRpcError(t.client.applyForLoan({ ...ok, ...change }), status.INVALID_ARGUMENT, field);
    }
    expect(await loanCounts(t.app)).toEqual(before);
  });

  it('refuses what the customer, the product or the accounts do not allow, writing nothing', async () => {
    const a = await applicant();
    const other = await applicant();
    const before = await loanCounts(t.app);
    const unverified = await customer(t, { kyc: false });
    await expectRpcError(
      t.client.applyForLoan(a.request({ customerId: unverified.id })),
      status.FAILED_PRECONDITION,
      'customer_id',
      'KYC_NOT_VERIFIED',
    );
    await expectRpcError(
      t.client.applyForLoan(a.request({ amount: 5_000_001n })),
      status.FAILED_PRECONDITION,
      'amount',
      'OUTSIDE_PRODUCT_RANGE',
    );
    await expectRpcError(
      t.client.applyForLoan(a.request({ repaymentAccountId: other.account.id })),
      status.FAILED_PRECONDITION,
      'repayment_account_id',
      'ACCOUNT_NOT_OWNED',
    );
    const usd = await publishedDeposit(t, { currency: 'USD' });
    const usdAccount = await depositAccount(t, a.customer.id, usd.productId);
    await expectRpcError(
      t.client.applyForLoan(a.request({ disbursementAccountId: usdAccount.id })),
      status.FAILED_PRECONDITION,
      'disbursement_account_id',
      'CURRENCY_MISMATCH',
    );
    const missing = a.account.id.slice(0, -12) + '0000000' + a.account.id.slice(-5);
    await expectRpcError(
      t.client.applyForLoan(a.request({ disbursementAccountId: missing })),
      status.NOT_FOUND,
      'disbursement_account_id',
    );
    expect(await loanCounts(t.app)).toEqual(before);
  });

  it('lets a customer-bound token apply, see and list only for its own customer', async () => {
    const a = await applicant();
    const b = await applicant();
    const asA = await t.clientWith(['loans:read', 'loans:write'], a.customer.id);
    const mine = (await asA.applyForLoan(a.request())).application!;
    await expectRpcError(asA.applyForLoan(b.request()), status.PERMISSION_DENIED, undefined, 'CUSTOMER_MISMATCH');
    const theirs = (await t.client.applyForLoan(b.request())).application!;
    expect((await asA.getLoanApplication({ applicationId: mine.id })).application!.id).toBe(mine.id);
    await expectRpcError(asA.getLoanApplication({ applicationId: theirs.id }), status.NOT_FOUND, 'application_id');
    const listed = await asA.listLoanApplications({ state: 0, customerId: a.customer.id, page: undefined });
    expect(listed.applications.map((x) => x.id)).toEqual([mine.id]);
    await expectRpcError(
      asA.listLoanApplications({ state: A.APPLICATION_STATE_REFERRED, customerId: '', page: undefined }),
      status.PERMISSION_DENIED,
      undefined,
      'CUSTOMER_TOKEN',
    );
    const adminA = await t.clientWith(['loans:read', 'loans:write', 'loans:admin'], a.customer.id);
    await expectRpcError(
      adminA.decideLoanApplication({
        applicationId: mine.id,
        decision: A.APPLICATION_STATE_APPROVED,
        note: '',
        approvedAmount: 0n,
      }),
      status.PERMISSION_DENIED,
      undefined,
      'CUSTOMER_TOKEN',
    );
  });

  it('queues referrals across shards, oldest first, for a reviewer to decide', async () => {
    // Five MEDIUM applicants (30 points: REFERRED), wherever their home shards are.
    const referred: string[] = [];
    for (let i = 0; i < 5; i++) {
      const a = await applicant();
      referred.push((await t.client.applyForLoan(a.request())).application!.id);
    }
    const queue: string[] = [];
    let pageToken = '';
    do {
      const res = await t.client.listLoanApplications({
        state: A.APPLICATION_STATE_REFERRED,
        customerId: '',
        page: { pageSize: 2, pageToken },
      });
      expect(res.applications.length).toBeLessThanOrEqual(2);
      expect(res.applications.every((x) => x.state === A.APPLICATION_STATE_REFERRED)).toBe(true);
      queue.push(...res.applications.map((x) => x.id));
      pageToken = res.page!.nextPageToken;
    } while (pageToken);
    expect(queue.slice(-5)).toEqual(referred);
    expect(new Set(queue).size).toBe(queue.length);

    const reader = await t.clientWith(['loans:read', 'loans:write']);
    const decide = (id: string, decision: A, note = 'checked payslips', approvedAmount = 0n) =>
      t.client.decideLoanApplication({ applicationId: id, decision, note, approvedAmount });
    await expectRpcError(
      reader.decideLoanApplication({
        applicationId: referred[0]!,
        decision: A.APPLICATION_STATE_APPROVED,
        note: '',
        approvedAmount: 0n,
      }),
      status.PERMISSION_DENIED,
      undefined,
      'MISSING_SCOPE',
    );
    await expectRpcError(decide(referred[0]!, A.APPLICATION_STATE_REFERRED), status.INVALID_ARGUMENT, 'decision');
    await expectRpcError(decide(referred[0]!, A.APPLICATION_STATE_REJECTED, ''), status.INVALID_ARGUMENT, 'note');
    await expectRpcError(
      decide(referred[0]!, A.APPLICATION_STATE_APPROVED, 'ok', 500_001n),
      status.INVALID_ARGUMENT,
      'approved_amount',
    );
    await expectRpcError(
      decide(referred[0]!, A.APPLICATION_STATE_APPROVED, 'ok', 99_999n),
      status.INVALID_ARGUMENT,
      'approved_amount',
    );

    const ok = await decide(referred[0]!, A.APPLICATION_STATE_APPROVED, 'checked payslips', 400_000n);
    expect(ok.changed).toBe(true);
    expect(ok.application).toMatchObject({
      state: A.APPLICATION_STATE_APPROVED,
      approvedAmount: 400_000n,
      decidedBy: 'test',
      decisionNote: 'checked payslips',
    });
    expect(ok.application!.reasons.at(-1)).toEqual({
      code: 'REVIEWER_APPROVED',
      points: 0,
      detail: 'checked payslips',
    });
    expect((await decide(referred[0]!, A.APPLICATION_STATE_APPROVED, 'again')).changed).toBe(false);
    await expectRpcError(
      decide(referred[0]!, A.APPLICATION_STATE_REJECTED, 'changed my mind'),
      status.FAILED_PRECONDITION,
      undefined,
      'APPLICATION_ALREADY_DECIDED',
    );
    const no = await decide(referred[1]!, A.APPLICATION_STATE_REJECTED, 'income unverifiable');
    expect(no.application).toMatchObject({ state: A.APPLICATION_STATE_REJECTED, approvedAmount: 0n });
    expect(await eventsOf(referred[1]!)).toEqual([
      { subject: SUBJECTS.applied, state: A.APPLICATION_STATE_REFERRED },
      { subject: SUBJECTS.referred, state: A.APPLICATION_STATE_REFERRED },
      { subject: SUBJECTS.rejected, state: A.APPLICATION_STATE_REJECTED },
    ]);
    const left = await t.client.listLoanApplications({
      state: A.APPLICATION_STATE_REFERRED,
      customerId: '',
      page: { pageSize: 1000, pageToken: '' },
    });
    expect(left.applications.map((x) => x.id)).not.toContain(referred[0]);
    expect(left.applications.map((x) => x.id)).toContain(referred[2]);
  });
});
