// Helpers of the loan-day tests (day, delinquency, write-off): borrowers with a loan, RunLoanDay
// over every shard for a run of dates, and the bank's GL balances beside the loans' sub-ledger.
import { randomUUID } from 'node:crypto';
import { SystemAccountKind as G } from '@corebank/kit/gen/corebank/v1/account';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { LoanStatus as L, type RunLoanDayResponse } from '@corebank/kit/gen/corebank/v1/loan';
import { expect } from 'vitest';
import { closingDay, customer, depositAccount, type TestLoans } from './harness.js';

export const addDays = (date: string, n: number): string => {
  const t = Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10)));
  return new Date(t + n * 86_400_000).toISOString().slice(0, 10);
};

/**
 * A LOW-tier borrower with a disbursement account and a separate repayment account holding
 * `repaymentFunds`, and their ACTIVE loan.
 */
export async function borrowerWithLoan(
  t: TestLoans,
  o: { productId: string; depositProductId: string; amount: bigint; termMonths: number; repaymentFunds: bigint },
) {
  const c = await customer(t, { tier: RiskTier.RISK_TIER_LOW });
  const disbursement = await depositAccount(t, c.id, o.depositProductId, 0n);
  const repayment = await depositAccount(t, c.id, o.depositProductId, o.repaymentFunds);
  const res = await t.client.applyForLoan({
    idempotencyKey: randomUUID(),
    customerId: c.id,
    productId: o.productId,
    productVersion: 0,
    amount: o.amount,
    termMonths: o.termMonths,
    disbursementAccountId: disbursement.id,
    repaymentAccountId: repayment.id,
    declaredMonthlyIncome: 0n,
  });
  expect(res.loan!.status).toBe(L.LOAN_STATUS_ACTIVE);
  return { customer: c, disbursement, repayment, loan: res.loan! };
}

/** RunLoanDay for `date` on every shard (the whole id range). */
export async function runDay(t: TestLoans, date: string): Promise<RunLoanDayResponse[]> {
  await closingDay(t, date);
  const out: RunLoanDayResponse[] = [];
  for (let shard = 0; shard < t.app.router.shards.length; shard++) {
    out.push(await t.client.runLoanDay({ businessDate: date, shard, afterId: '', upToId: '', loanIds: [] }));
  }
  return out;
}

/** RunLoanDay for every date from `from` to `to`, both included. */
export async function runDays(t: TestLoans, from: string, to: string): Promise<void> {
  for (let d = from; d <= to; d = addDays(d, 1)) await runDay(t, d);
}

/** Debits less credits (posted) of the shard's GL account of `kind` in EUR. */
export async function glBalance(t: TestLoans, kind: G, shard: number): Promise<bigint> {
  const { accounts } = await t.bank.client.listSystemAccounts({});
  const a = accounts.find((s) => s.kind === kind && s.account!.shard === shard && s.account!.currency === 'EUR')!;
  const now = (await t.bank.client.getAccount({ accountId: a.account!.id })).account!;
  return now.debitsPosted - now.creditsPosted;
}

/** Every GL account a loan day books, on every shard: a snapshot to compare. */
export async function glSnapshot(t: TestLoans): Promise<Record<string, bigint>> {
  const kinds = [
    G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE,
    G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME,
    G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_RECEIVABLE,
    G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_INCOME,
    G.SYSTEM_ACCOUNT_KIND_LOAN_LOSS_EXPENSE,
    G.SYSTEM_ACCOUNT_KIND_LOAN_RECOVERY_INCOME,
  ];
  const out: Record<string, bigint> = {};
  for (let shard = 0; shard < t.app.router.shards.length; shard++) {
    for (const k of kinds) out[`${G[k]}@${shard}`] = await glBalance(t, k, shard);
  }
  return out;
}

/** A loan's sub-ledger rows (loan_accruals), by date and kind. */
export async function accrualsOf(t: TestLoans, loanId: string) {
  return (await t.app.router
    .byId(loanId)!
    .db('loan_accruals')
    .select(t.app.router.byId(loanId)!.db.raw('business_date::text as date'), 'kind', 'amount', 'booked')
    .where('loan_id', loanId)
    .orderBy(['business_date', 'kind'])) as { date: string; kind: number; amount: bigint; booked: bigint }[];
}

/**
 * The reconciliation the close of business relies on, per shard: the GL receivables equal the
 * loans' sub-ledger (interest accrued and not collected; penalties unpaid on live loans), and
 * interest income equals every accrual plus interest collected ahead of its accrual, less what
 * write-offs reversed.
 */
export async function expectReconciled(t: TestLoans): Promise<void> {
  for (const shard of t.app.router.shards) {
    const { rows } = (await shard.db.raw(`
      select
        (select coalesce(sum(interest_receivable), 0) from loans)::bigint as receivable,
        (select coalesce(sum(interest_prepaid), 0) from loans)::bigint as prepaid,
        (select coalesce(sum(written_off_interest), 0) from loans)::bigint as reversed,
        (select coalesce(sum(written_off_penalties), 0) from loans)::bigint as penalties_reversed,
        (select coalesce(sum(amount), 0) from loan_accruals where kind = 1)::bigint as accrued,
        (select coalesce(sum(amount), 0) from loan_accruals where kind = 2)::bigint as penalised,
        (select coalesce(sum(i.penalty_due - i.penalty_paid), 0) from loan_instalments i join loans l on l.id = i.loan_id
          where l.status <> 20)::bigint as penalties_open,
        (select coalesce(sum(interest), 0) from loan_repayments where status = 2 and receivable_account_id is null)::bigint
          as old_interest`)) as {
      rows: Record<string, bigint>[];
    };
    const r = rows[0]!;
    const gl = (k: G) => glBalance(t, k, shard.index);
    expect(await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE)).toBe(r.receivable);
    expect(-(await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME))).toBe(
      r.accrued! + r.prepaid! - r.reversed! + r.old_interest!,
    );
    expect(await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_RECEIVABLE)).toBe(r.penalties_open);
    expect(-(await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_INCOME))).toBe(r.penalised! - r.penalties_reversed!);
  }
}
