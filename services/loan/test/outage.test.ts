// The ledger unreachable while a reviewer approves: the approval stands, the loan waits in
// PENDING_DISBURSEMENT (the call answers, it does not fail after writing), and a retry once the
// ledger is back pays out exactly once; a borrower frozen meanwhile gets DISBURSEMENT_REFUSED (the
// loan's new ledger account takes the owner's freeze), with nothing paid. The sweeper is off here
// (disbursement.test.ts covers it), so each step is the test's own. On 1 and 3 shards.
import { createLogger } from '@corebank/kit';
import { ApplicationState as A, LoanStatus as L } from '@corebank/kit/gen/corebank/v1/loan';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAccountConfig } from '../../account/src/config.js';
import { startAccountService, type AccountApp } from '../../account/src/service.js';
import { balances } from '../../account/test/helpers.js';
import {
  TEST_SCORECARD,
  applyingCustomer,
  publishedDeposit,
  publishedLoan,
  startLoans,
  type TestLoans,
} from './harness.js';

describe.each([1, 3])('loan disbursement while the ledger is down, on %i shard(s)', (shards) => {
  let t: TestLoans;
  let restarted: AccountApp | undefined;
  let loanProductId: string;
  let depositProductId: string;
  beforeAll(async () => {
    t = await startLoans(shards, {
      LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD),
      DISBURSEMENT_SWEEP_INTERVAL_MS: '0',
      PEER_CALL_TIMEOUT_MS: '1000',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error', // the outage's warnings are expected
    });
    loanProductId = (await publishedLoan(t, { annualRate: '6.9', annualRateBps: 0 })).productId;
    depositProductId = (await publishedDeposit(t)).productId;
  });
  afterAll(async () => {
    await restarted?.shutdown();
    await t?.stop();
  });

  /** A MEDIUM applicant (30 points: REFERRED) with 3,000.00 in. */
  async function referred() {
    const { customer: c, account, request } = await applyingCustomer(t, { loanProductId, depositProductId });
    const { application } = await t.client.applyForLoan(request());
    expect(application!.state).toBe(A.APPLICATION_STATE_REFERRED);
    return { customer: c, account, application: application! };
  }

  it('keeps an approval whose disbursement could not be made, and pays it out once when retried', async () => {
    const a = await referred();
    const b = await referred();
    const approve = (id: string) =>
      t.client.decideLoanApplication({
        applicationId: id,
        decision: A.APPLICATION_STATE_APPROVED,
        note: 'ok',
        approvedAmount: 0n,
      });

    // The ledger goes away (the same port comes back later).
    await t.bank.app.shutdown();
    const pa = await approve(a.application.id);
    const pb = await approve(b.application.id);
    for (const p of [pa, pb]) {
      expect(p.application!.state).toBe(A.APPLICATION_STATE_APPROVED);
      expect(p.loan).toMatchObject({ status: L.LOAN_STATUS_PENDING_DISBURSEMENT, principalOutstanding: 0n });
    }

    const port = t.bank.address.split(':').at(-1)!;
    restarted = await startAccountService(
      loadAccountConfig({ ...t.bank.env, GRPC_PORT: port }),
      createLogger('account', t.bank.env.LOG_LEVEL!),
    );
    // b is frozen before its disbursement is retried: its loan account is born blocked. (The
    // callers reconnect to the ledger within about 2 s: retried until then.)
    await expect
      .poll(
        () =>
          t.peers.people.client
            .freezeCustomer({ customerId: b.customer.id, reason: 'fraud check' })
            .then(() => 'frozen')
            .catch((e: Error) => e.message),
        { timeout: 15_000, interval: 250 },
      )
      .toBe('frozen');

    // Retrying the approval finishes a's disbursement: once, however often.
    await expect
      .poll(async () => (await approve(a.application.id)).loan!.status, { timeout: 15_000, interval: 250 })
      .toBe(L.LOAN_STATUS_ACTIVE);
    const retries = await Promise.all([approve(a.application.id), approve(a.application.id)]);
    for (const r of retries) {
      expect(r.changed).toBe(false);
      expect(r.loan).toMatchObject({ status: L.LOAN_STATUS_ACTIVE, principalOutstanding: 500_000n });
    }
    expect((await balances(t.bank, a.account.id)).creditsPosted).toBe(800_000n);

    const refused = await approve(b.application.id);
    expect(refused.loan).toMatchObject({
      status: L.LOAN_STATUS_DISBURSEMENT_REFUSED,
      refusal: 'DEBITS_BLOCKED',
      principalOutstanding: 0n,
    });
    expect((await balances(t.bank, b.account.id)).creditsPosted).toBe(300_000n);
    expect((await t.client.getLoanSchedule({ loanId: refused.loan!.id })).schedule).toBeUndefined();
    expect((await t.bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });
});
