// The loan service as a child process (as in production, `services/loan/src/command.ts serve`),
// killed with SIGKILL at random moments while applications are being disbursed and, then, while
// repayments (prepayments among them) are being booked; restarted on the same port and databases.
// Channels retry each request with its idempotency key until they get an answer. Afterwards no
// money moved twice: every approved loan was paid out exactly once, every repayment key is booked
// once or refused, and each loan agrees with the ledger (principal outstanding = its ledger
// account's balance; what it was paid = what left the borrower's account).
import { randomUUID } from 'node:crypto';
import { ShardRouter } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import {
  LoanServiceClient,
  LoanStatus as L,
  RepaymentStatus as S,
  type ApplyForLoanRequest,
  type RepayLoanRequest,
} from '@corebank/kit/gen/corebank/v1/loan';
import { PrepaymentStrategy } from '@corebank/kit/gen/corebank/v1/product';
import { freePort, promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from '../../account/test/bank.js';
import { balances } from '../../account/test/helpers.js';
import { killAtMarks, randomMarks, RetryingChannels, ServiceProcess } from '../../payment/test/chaos.js';
import { startPeers } from '../../payment/test/harness.js';
import { loadLoanConfig } from '../src/config.js';
import {
  ADMIN_SCOPES,
  TEST_SCORECARD,
  customer,
  depositAccount,
  loanEnv,
  publishedDeposit,
  publishedLoan,
  type TestLoans,
} from './harness.js';

const SHARDS = 3;
const BORROWERS = 32;
const FUNDING = 300_000n;
const PRINCIPAL = 500_000n;
const REPAYMENTS_EACH = 5;
/** Kills during the applications, and again during the repayments. */
const KILLS = 2;

/** Resolves once the loan service answers (a restarted process takes a moment to listen). */
async function up(client: { getLoan: LoanClient['getLoan'] }, proc: ServiceProcess, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      // NOT_FOUND is an answer: the service is up.
      await client.getLoan({ loanId: '00000000-0000-4000-8000-000000000000' }, { deadlineMs: 1_000 });
      return;
    } catch (err) {
      if ((err as grpc.ServiceError).code === grpc.status.NOT_FOUND) return;
      if ((err as grpc.ServiceError).code === grpc.status.INVALID_ARGUMENT) return;
      if (Date.now() > until) throw new Error(`the loan service did not answer: ${String(err)}\n${proc.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

type LoanClient = ReturnType<typeof promisify<LoanServiceClient>>;

describe('loan service killed during disbursement and repayment', () => {
  let bank: TestBank;
  let peers: Awaited<ReturnType<typeof startPeers>>;
  let env: Record<string, string>;
  let child: ServiceProcess | undefined;
  let router: ShardRouter;
  beforeAll(async () => {
    const ports = { customer: await freePort(), product: await freePort() };
    bank = await startBank(SHARDS, {
      CUSTOMER_SERVICE_ADDRESS: `127.0.0.1:${ports.customer}`,
      PRODUCT_SERVICE_ADDRESS: `127.0.0.1:${ports.product}`,
    });
    peers = await startPeers(bank, SHARDS, ports);
    env = await loanEnv(SHARDS, {
      ...peers.env,
      ACCOUNT_SERVICE_ADDRESS: bank.address,
      GLOBAL_DATABASE_URL: bank.env.GLOBAL_DATABASE_URL!,
      GRPC_PORT: String(await freePort()),
      LOAN_SCORECARD: JSON.stringify(TEST_SCORECARD),
      DISBURSEMENT_SWEEP_INTERVAL_MS: '250',
      DISBURSEMENT_SWEEP_AGE_MS: '500',
      PEER_CALL_TIMEOUT_MS: '3000',
      SHUTDOWN_GRACE_MS: '500',
      LOG_LEVEL: 'error',
    });
    const config = loadLoanConfig(env);
    router = new ShardRouter(config.shards, config.shardUrls, 4, 'loan');
  });
  afterAll(async () => {
    await child?.kill();
    await router?.close();
    await peers?.stop();
    await bank?.stop();
  });

  it('moves no money twice, and every loan agrees with the ledger', { timeout: 300_000 }, async () => {
    // The helpers need only the bank and the peers.
    const t = { bank, peers } as unknown as TestLoans;
    const depositProductId = (await publishedDeposit(t)).productId;
    const plain = (await publishedLoan(t, { annualRate: '6.9', annualRateBps: 0 })).productId;
    const reducing = (
      await publishedLoan(t, {
        annualRate: '6.9',
        annualRateBps: 0,
        prepaymentStrategy: PrepaymentStrategy.PREPAYMENT_STRATEGY_REDUCE_TERM,
      })
    ).productId;
    const borrowers: { customerId: string; account: Account }[] = [];
    for (let i = 0; i < BORROWERS; i++) {
      const c = await customer(t, { tier: RiskTier.RISK_TIER_LOW });
      borrowers.push({ customerId: c.id, account: await depositAccount(t, c.id, depositProductId, FUNDING) });
    }

    child = new ServiceProcess('loan', env);
    child.start();
    const proc = child;
    const client = promisify(
      new LoanServiceClient(`127.0.0.1:${env.GRPC_PORT}`, grpc.credentials.createInsecure()),
      await testToken(ADMIN_SCOPES),
    );
    await up(client, proc);

    // 1. Applications, approved and disbursed within the call, while the service is killed.
    const applications: ApplyForLoanRequest[] = borrowers.map((b, i) => ({
      idempotencyKey: randomUUID(),
      customerId: b.customerId,
      productId: i % 2 ? reducing : plain,
      productVersion: 0,
      amount: PRINCIPAL,
      termMonths: 12,
      disbursementAccountId: b.account.id,
      repaymentAccountId: b.account.id,
      declaredMonthlyIncome: 0n,
    }));
    const loanIds = new Map<string, string>();
    const applying = new RetryingChannels(applications, async (r) => {
      const res = await client.applyForLoan(r, { deadlineMs: 5_000 });
      loanIds.set(r.customerId, res.application!.loanId);
    });
    // What each kill left half-done, read at once (before the new process is up): loans approved and
    // not yet disbursed, repayments recorded and not yet booked.
    const leftByKills: Promise<number>[] = [];
    const snapshot = (table: string, status: number) => () =>
      void leftByKills.push(countWhere(table, 'status', status));
    const applyKills = killAtMarks(
      proc,
      randomMarks(KILLS, 4, BORROWERS - 8, 8),
      () => applying.done,
      150,
      snapshot('loans', L.LOAN_STATUS_PENDING_DISBURSEMENT),
    );
    await applying.run(12);
    expect(await applyKills).toBe(KILLS);
    await up(client, proc);
    // Left half-done by a kill: PENDING_DISBURSEMENT until the sweeper (or a retry) finishes it.
    const pendingAfterKills = (await Promise.all(leftByKills.splice(0))).join(', ');
    await expect.poll(() => countWhere('loans', 'status', L.LOAN_STATUS_ACTIVE), { timeout: 60_000 }).toBe(BORROWERS);
    expect(loanIds.size).toBe(BORROWERS);

    // Every loan paid out exactly once: the borrower's account got the principal once, the loan's
    // ledger account was debited once.
    for (const b of borrowers) {
      const { loan } = await client.getLoan({ loanId: loanIds.get(b.customerId)! });
      expect((await balances(bank, b.account.id)).creditsPosted).toBe(FUNDING + PRINCIPAL);
      const ledger = await balances(bank, loan!.ledgerAccountId);
      expect([ledger.debitsPosted, ledger.creditsPosted]).toEqual([PRINCIPAL, 0n]);
    }

    // 2. Repayments of every loan (some beyond the running instalment: prepayments that reschedule
    // half of the loans), while the service is killed again.
    const repayments: RepayLoanRequest[] = [];
    for (let k = 0; k < REPAYMENTS_EACH; k++) {
      for (const b of borrowers) {
        repayments.push({
          loanId: loanIds.get(b.customerId)!,
          idempotencyKey: randomUUID(),
          amount: k === 2 ? 60_000n : BigInt(1_000 + Math.floor(Math.random() * 20_000)),
          fromAccountId: '',
        });
      }
    }
    const repaying = new RetryingChannels(repayments, (r) => client.repayLoan(r, { deadlineMs: 5_000 }));
    const repayKills = killAtMarks(
      proc,
      randomMarks(KILLS, 20, repayments.length - 40, 40),
      () => repaying.done,
      150,
      snapshot('loan_repayments', S.REPAYMENT_STATUS_PENDING),
    );
    await repaying.run(16);
    expect(await repayKills).toBe(KILLS);
    await up(client, proc);
    const pendingRepayments = (await Promise.all(leftByKills.splice(0))).join(', ');
    await expect
      .poll(() => countWhere('loan_repayments', 'status', S.REPAYMENT_STATUS_PENDING), { timeout: 60_000 })
      .toBe(0);

    // One repayment per key; each applied once in the ledger; each loan agrees with the ledger.
    expect(await countWhere('loan_repayments')).toBe(repayments.length);
    let prepayments = 0;
    for (const b of borrowers) {
      const loanId = loanIds.get(b.customerId)!;
      const { loan, schedule } = await client.getLoanSchedule({ loanId });
      const rows = (await router.byId(loanId)!.db('loan_repayments').where('loan_id', loanId)) as {
        status: number;
        amount: bigint | string;
        principal: bigint | string;
        prepaid_principal: bigint | string;
      }[];
      const applied = rows.filter((r) => r.status === S.REPAYMENT_STATUS_APPLIED);
      const sum = (f: (r: (typeof rows)[0]) => bigint | string) => applied.reduce((s, r) => s + BigInt(f(r)), 0n);
      prepayments += applied.filter((r) => BigInt(r.prepaid_principal) > 0n).length;
      const ledger = await balances(bank, loan!.ledgerAccountId);
      expect(ledger.debitsPosted - ledger.creditsPosted).toBe(loan!.principalOutstanding);
      expect(ledger.creditsPosted).toBe(sum((r) => r.principal));
      expect(loan!.totalPaid).toBe(sum((r) => r.amount));
      expect((await balances(bank, b.account.id)).debitsPosted).toBe(sum((r) => r.amount));
      // The schedule's paid amounts are the applied repayments', and its principal still sums to the loan's.
      const paid = schedule!.instalments.reduce((s, i) => s + i.principalPaid + i.interestPaid, 0n);
      expect(paid).toBe(sum((r) => r.amount));
      expect(schedule!.totalPrincipal).toBe(PRINCIPAL);
    }
    expect(prepayments).toBeGreaterThan(0);
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
    console.log(
      `${BORROWERS} loans (left pending disbursement by each SIGKILL: ${pendingAfterKills}; ${applying.retries} client retries); ` +
        `${repayments.length} repayments (left pending by each SIGKILL: ${pendingRepayments}; ${repaying.retries} retries; ${prepayments} prepayments)`,
    );
  });

  async function countWhere(table: string, column?: string, value?: number): Promise<number> {
    let n = 0;
    for (const s of router.shards) {
      const q = s.db(table).count({ n: '*' });
      const [row] = (await (column ? q.where(column, value!) : q)) as [{ n: string | number }];
      n += Number(row.n);
    }
    return n;
  }
});
