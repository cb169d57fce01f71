// The loan metrics move with the work they count: decisions by the scorecard and by a reviewer,
// disbursements and the principal paid out, repayments by kind, a loan day's steps and the
// delinquency bucket a loan moves to, a write-off, and the sweeper's gauge of what it took over.
// Read from the kit's registry, the one served at /metrics (the services run in this process).
import { randomUUID } from 'node:crypto';
import { registry } from '@corebank/kit';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { ApplicationState as A, LoanStatus as L, RepaymentStatus as S } from '@corebank/kit/gen/corebank/v1/loan';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { addDays, runDay } from './day-helpers.js';
import {
  applyingCustomer,
  TEST_SCORECARD,
  customer,
  depositAccount,
  publishedDeposit,
  publishedLoan,
  startLoans,
  type TestLoans,
} from './harness.js';

/** The sum of a metric's samples (a histogram's: `sample`, e.g. its _count) whose labels include `labels`. */
async function sampled(name: string, labels: Record<string, string> = {}, sample = name): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => ((v as { metricName?: string }).metricName ?? name) === sample)
    .filter((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))
    .reduce((s, v) => s + v.value, 0);
}

/** Every loan metric's samples now, to compare with after. */
async function snapshot() {
  return {
    approved: await sampled('loan_applications_total', { decision: 'approved' }),
    referred: await sampled('loan_applications_total', { decision: 'referred' }),
    rejected: await sampled('loan_applications_total', { decision: 'rejected' }),
    decisions: await sampled('loan_decision_duration_seconds', {}, 'loan_decision_duration_seconds_count'),
    reviewedApproved: await sampled('loan_application_reviews_total', { decision: 'approved' }),
    disbursed: await sampled('loan_disbursements_total', { outcome: 'disbursed' }),
    disbursedEur: await sampled('loan_disbursed_minor_units_total', { currency: 'EUR' }),
    repaid: await sampled('loan_repayments_total', { kind: 'repayment', outcome: 'applied' }),
    paidOff: await sampled('loan_repayments_total', { kind: 'payoff', outcome: 'applied' }),
    collected: await sampled('loan_repayments_total', { kind: 'collection', outcome: 'applied' }),
    dayRuns: await sampled('loan_day_runs_total', { outcome: 'ok' }),
    dayTimed: await sampled('loan_day_duration_seconds', {}, 'loan_day_duration_seconds_count'),
    interest: await sampled('loan_day_loans_total', { step: 'interest' }),
    penalty: await sampled('loan_day_loans_total', { step: 'penalty' }),
    reclassified: await sampled('loan_day_loans_total', { step: 'reclassify' }),
    toBucket1: await sampled('loan_delinquency_bucket_changes_total', { bucket: '1' }),
    writeOffs: await sampled('loan_write_offs_total', { currency: 'EUR' }),
    writtenOffEur: await sampled('loan_written_off_minor_units_total', { currency: 'EUR' }),
  };
}

describe('loan metrics', () => {
  let t: TestLoans;
  let loanProductId: string;
  let depositProductId: string;
  beforeAll(async () => {
    t = await startLoans(1, {
      LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD),
      // The sweeper passes often; nothing is old enough for it to take over (its gauge reads 0).
      DISBURSEMENT_SWEEP_INTERVAL_MS: '50',
      DISBURSEMENT_SWEEP_AGE_MS: '600000',
    });
    loanProductId = (await publishedLoan(t)).productId;
    depositProductId = (await publishedDeposit(t)).productId;
  });
  afterAll(async () => t?.stop());

  const applicant = (tier: RiskTier, funding = 300_000n) =>
    applyingCustomer(t, { loanProductId, depositProductId, tier, funding });

  it('counts decisions, disbursements and repayments, once each (a replay counts nothing)', async () => {
    const before = await snapshot();
    const low = await applicant(RiskTier.RISK_TIER_LOW);
    const request = low.request();
    const approved = await t.client.applyForLoan(request);
    expect(approved.application!.state).toBe(A.APPLICATION_STATE_APPROVED);
    expect(approved.loan!.status).toBe(L.LOAN_STATUS_ACTIVE);
    expect((await t.client.applyForLoan(request)).replayed).toBe(true);

    const medium = await applicant(RiskTier.RISK_TIER_MEDIUM);
    const referred = (await t.client.applyForLoan(medium.request())).application!;
    expect(referred.state).toBe(A.APPLICATION_STATE_REFERRED);
    const high = await applicant(RiskTier.RISK_TIER_HIGH, 0n);
    expect((await t.client.applyForLoan(high.request())).application!.state).toBe(A.APPLICATION_STATE_REJECTED);
    // The reviewer approves the referral: its loan is disbursed too.
    const reviewed = await t.client.decideLoanApplication({
      applicationId: referred.id,
      decision: A.APPLICATION_STATE_APPROVED,
      note: 'income checked',
      approvedAmount: 0n,
    });
    expect(reviewed.loan!.status).toBe(L.LOAN_STATUS_ACTIVE);

    const repaid = await t.client.repayLoan({
      loanId: approved.loan!.id,
      idempotencyKey: randomUUID(),
      amount: 10_000n,
      fromAccountId: '',
    });
    expect(repaid.repayment!.status).toBe(S.REPAYMENT_STATUS_APPLIED);
    const off = await t.client.payOff({
      loanId: reviewed.loan!.id,
      idempotencyKey: randomUUID(),
      fromAccountId: '',
      expectedTotal: 0n,
    });
    expect(off.loan!.status).toBe(L.LOAN_STATUS_PAID_OFF);

    const after = await snapshot();
    expect(after).toMatchObject({
      approved: before.approved + 1,
      referred: before.referred + 1,
      rejected: before.rejected + 1,
      decisions: before.decisions + 3,
      reviewedApproved: before.reviewedApproved + 1,
      disbursed: before.disbursed + 2,
      disbursedEur: before.disbursedEur + 1_000_000,
      repaid: before.repaid + 1,
      paidOff: before.paidOff + 1,
    });
  });

  it('counts a loan day’s steps, the bucket a loan moves to, and a write-off', async () => {
    // A borrower with 10.00 in their repayment account: the day collects that much and no more.
    const c = await customer(t, { tier: RiskTier.RISK_TIER_LOW });
    const into = await depositAccount(t, c.id, depositProductId, 0n);
    const from = await depositAccount(t, c.id, depositProductId, 1_000n);
    const { loan } = await t.client.applyForLoan({
      idempotencyKey: randomUUID(),
      customerId: c.id,
      productId: loanProductId,
      productVersion: 0,
      amount: 500_000n,
      termMonths: 12,
      disbursementAccountId: into.id,
      repaymentAccountId: from.id,
      declaredMonthlyIncome: 0n,
    });
    const before = await snapshot();
    // 50 days on, the first instalment is some 20 days late (grace 10 days): bucket 1.
    const date = addDays(loan!.disbursedOn, 50);
    await runDay(t, date);
    const after = await snapshot();
    expect(after.dayRuns).toBe(before.dayRuns + 1);
    expect(after.dayTimed).toBe(before.dayTimed + 1);
    // Every ACTIVE loan of the shard is in the range (the first test's too); at least this one was worked on.
    expect(after.collected).toBeGreaterThan(before.collected);
    expect(after.interest).toBeGreaterThan(before.interest);
    expect(after.penalty).toBeGreaterThan(before.penalty);
    expect(after.reclassified).toBeGreaterThan(before.reclassified);
    expect(after.toBucket1).toBeGreaterThan(before.toBucket1);
    // A re-run of the day does its steps again, but on no loan.
    await runDay(t, date);
    const again = await snapshot();
    expect(again).toMatchObject({
      dayRuns: after.dayRuns + 1,
      interest: after.interest,
      penalty: after.penalty,
      reclassified: after.reclassified,
      toBucket1: after.toBucket1,
      collected: after.collected,
    });

    const written = await t.client.writeOffLoan({ loanId: loan!.id, idempotencyKey: randomUUID(), reason: 'test' });
    expect(written.loan!.status).toBe(L.LOAN_STATUS_WRITTEN_OFF);
    const final = await snapshot();
    expect(final.writeOffs).toBe(again.writeOffs + 1);
    expect(final.writtenOffEur).toBe(again.writtenOffEur + Number(written.principalWrittenOff));
  });

  it('shows the work the sweeper owns per task and shard', async () => {
    await vi.waitFor(async () => {
      for (const task of ['disbursement', 'repayment', 'write-off', 'loan-day posting']) {
        const metric = registry.getSingleMetric('loan_sweeper_stale_items')!;
        const { values } = await metric.get();
        expect(values.find((v) => v.labels.task === task && v.labels.shard === '0')?.value).toBe(0);
      }
    });
  });
});
