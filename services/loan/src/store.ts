// The loan service's SQL: applications, loans, instalments and repayments on the borrower's home
// shard. Every change and its events commit in one transaction.
import { encodePageToken, writeEvents, type OutboxEvent, type Shard, type ShardRouter } from '@corebank/kit';
import type { Knex } from 'knex';
import type { ApplicationState, LoanApplication } from '@corebank/kit/gen/corebank/v1/loan';
import {
  applicationToProto,
  type ApplicationRow,
  type InstalmentRow,
  type LoanRow,
  type LoanWithTotals,
  type RepaymentRow,
} from './proto.js';
import type { Component } from './waterfall.js';

export const APPLICATION_COLUMNS = `id, customer_id, channel, idempotency_key, body_hash, product_id, product_version,
  currency, amount, term_months, disbursement_account_id, repayment_account_id, monthly_income, state, score, reasons,
  approved_amount, annual_rate, loan_id, decided_by, decision_note, created_at, decided_at, partner_decisions`;

export async function findApplication(db: Knex | Knex.Transaction, id: string, lock = false) {
  const q = db('loan_applications').select(db.raw(APPLICATION_COLUMNS)).where('id', id);
  return (await (lock ? q.forUpdate() : q).first()) as ApplicationRow | undefined;
}

/**
 * Inserts an application with its events, unless one with its (customer, key) exists: then that
 * one is returned, untouched (the caller compares body hashes).
 */
export async function insertApplication(
  shard: Shard,
  row: ApplicationRow,
  loan: LoanRow | undefined,
  events: (a: LoanApplication) => OutboxEvent[],
): Promise<{ row: ApplicationRow; inserted: boolean }> {
  return shard.db.transaction(async (tx) => {
    const inserted = (await tx('loan_applications')
      .insert({
        ...row,
        reasons: JSON.stringify(row.reasons),
        partner_decisions: JSON.stringify(row.partner_decisions ?? []),
      })
      // Any conflict (the id, derived from customer and key, or the pair itself): a concurrent
      // request with the same key may hit either unique index first.
      .onConflict()
      .ignore()
      .returning(tx.raw(APPLICATION_COLUMNS))) as ApplicationRow[];
    if (inserted.length) {
      if (loan) await insertLoan(tx, loan);
      await writeEvents(tx, events(applicationToProto(inserted[0]!, shard.index)));
      return { row: inserted[0]!, inserted: true };
    }
    const existing = (await tx('loan_applications')
      .select(tx.raw(APPLICATION_COLUMNS))
      .where({ customer_id: row.customer_id, idempotency_key: row.idempotency_key })
      .first()) as ApplicationRow;
    return { row: existing, inserted: false };
  });
}

export async function findApplicationByKey(db: Knex, customerId: string, key: string) {
  return (await db('loan_applications')
    .select(db.raw(APPLICATION_COLUMNS))
    .where({ customer_id: customerId, idempotency_key: key })
    .first()) as ApplicationRow | undefined;
}

/** Principal the bank has lent the customer and not yet been repaid (loans being disbursed or active). */
export async function exposureOf(db: Knex, customerId: string): Promise<bigint> {
  const { rows } = (await db.raw(
    `select coalesce(sum(l.principal - coalesce(
        (select sum(i.principal_paid) from loan_instalments i where i.loan_id = l.id), 0)), 0)::bigint as exposure
       from loans l where l.customer_id = ? and l.status in (1, 2)`,
    [customerId],
  )) as { rows: { exposure: bigint }[] };
  return rows[0]!.exposure;
}

/** Locks an application, lets `change` decide what to set (undefined: nothing), writes it with its events. */
export async function updateApplication(
  shard: Shard,
  id: string,
  change: (
    row: ApplicationRow,
    tx: Knex.Transaction,
  ) => Promise<{ set: Partial<ApplicationRow>; events: (a: LoanApplication, at: Date) => OutboxEvent[] } | undefined>,
): Promise<{ row: ApplicationRow | undefined; changed: boolean }> {
  return shard.db.transaction(async (tx) => {
    const row = await findApplication(tx, id, true);
    if (!row) return { row: undefined, changed: false };
    const c = await change(row, tx);
    if (!c) return { row, changed: false };
    const set: Record<string, unknown> = { ...c.set };
    if (c.set.reasons) set.reasons = JSON.stringify(c.set.reasons);
    const [after] = (await tx('loan_applications')
      .where('id', id)
      .update(set)
      .returning(tx.raw(APPLICATION_COLUMNS))) as ApplicationRow[];
    await writeEvents(tx, c.events(applicationToProto(after!, shard.index), new Date()));
    return { row: after!, changed: true };
  });
}

export interface ApplicationFilter {
  state: ApplicationState;
  customerId: string;
}

export const listApplicationsQuery = (f: ApplicationFilter) => ({
  rpc: 'ListLoanApplications',
  filters: [f.state, f.customerId],
});

/** Oldest first by (created_at, id), across the shards the filter touches, merged. */
export async function listApplications(
  router: ShardRouter,
  f: ApplicationFilter,
  size: number,
  after: { at: Date; id: string } | undefined,
): Promise<{ applications: LoanApplication[]; nextPageToken: string }> {
  const shards = f.customerId ? [router.byCustomer(f.customerId)] : router.shards;
  const perShard = await Promise.all(
    shards.map(async (s) => {
      let q = s.db('loan_applications').select(s.db.raw(APPLICATION_COLUMNS));
      if (f.state) q = q.where('state', f.state);
      if (f.customerId) q = q.where('customer_id', f.customerId);
      if (after) q = q.whereRaw('(created_at, id) > (?, ?)', [after.at, after.id]);
      const rows = (await q.orderBy([{ column: 'created_at' }, { column: 'id' }]).limit(size + 1)) as ApplicationRow[];
      return rows.map((r) => ({ r, shard: s.index }));
    }),
  );
  const merged = perShard
    .flat()
    .sort((a, b) => a.r.created_at.getTime() - b.r.created_at.getTime() || (a.r.id < b.r.id ? -1 : 1));
  const page = merged.slice(0, size);
  const last = page.at(-1);
  return {
    applications: page.map(({ r, shard }) => applicationToProto(r, shard)),
    nextPageToken:
      merged.length > size && last
        ? encodePageToken(listApplicationsQuery(f), [String(last.r.created_at.getTime()), last.r.id])
        : '',
  };
}

// ---------------------------------------------------------------------------------------------
// Loans.

const LOAN_COLUMNS = `l.id, l.application_id, l.customer_id, l.product_id, l.product_version, l.currency, l.principal,
  l.annual_rate, l.term_months, l.status, l.disbursement_account_id, l.repayment_account_id, l.ledger_account_id,
  l.disbursed_on::text as disbursed_on, l.instalment_amount, l.refusal, l.version, l.created_at, l.updated_at,
  l.days_past_due, l.delinquency_bucket, l.non_performing, l.delinquency_as_of::text as delinquency_as_of,
  l.interest_receivable, l.written_off_on::text as written_off_on, l.written_off_principal, l.recovered,
  l.schedule_version, l.partners`;

/** A loan with its totals over its instalments. */
const LOAN_SELECT = `select ${LOAN_COLUMNS},
    coalesce(t.principal_outstanding, 0)::bigint as principal_outstanding,
    coalesce(t.interest_outstanding, 0)::bigint as interest_outstanding,
    coalesce(t.fees_outstanding, 0)::bigint as fees_outstanding,
    coalesce(t.penalties_outstanding, 0)::bigint as penalties_outstanding,
    coalesce(t.total_paid, 0)::bigint as total_paid
  from loans l left join lateral (
    select sum(principal_due - principal_paid) as principal_outstanding,
           sum(interest_due - interest_paid) as interest_outstanding,
           sum(fee_due - fee_paid) as fees_outstanding,
           sum(penalty_due - penalty_paid) as penalties_outstanding,
           sum(principal_paid + interest_paid + fee_paid + penalty_paid) as total_paid
      from loan_instalments i where i.loan_id = l.id) t on true`;

export const INSTALMENT_COLUMNS = `loan_id, number, from_date::text as from_date, due_date::text as due_date, days,
  principal_due, interest_due, fee_due, penalty_due, outstanding_after, principal_paid, interest_paid, fee_paid,
  penalty_paid`;

export async function findLoan(db: Knex | Knex.Transaction, id: string): Promise<LoanWithTotals | undefined> {
  const { rows } = (await db.raw(`${LOAN_SELECT} where l.id = ?`, [id])) as { rows: LoanWithTotals[] };
  return rows[0];
}

/** Locks a loan's row for the rest of the transaction. */
export async function lockLoan(tx: Knex.Transaction, id: string): Promise<LoanRow | undefined> {
  return (await tx('loans as l').select(tx.raw(LOAN_COLUMNS)).where('l.id', id).forUpdate().first()) as
    LoanRow | undefined;
}

export async function instalmentsOf(db: Knex | Knex.Transaction, loanId: string): Promise<InstalmentRow[]> {
  return (await db('loan_instalments')
    .select(db.raw(INSTALMENT_COLUMNS))
    .where('loan_id', loanId)
    .orderBy('number')) as InstalmentRow[];
}

/** The loan an approved application becomes, in the approval's transaction. */
export async function insertLoan(tx: Knex.Transaction, loan: LoanRow): Promise<void> {
  await tx('loans').insert({ ...loan, partners: JSON.stringify(loan.partners ?? []) });
}

export const listLoansQuery = (customerId: string) => ({ rpc: 'ListLoans', filters: [customerId] });

export async function listLoans(
  shard: Shard,
  customerId: string,
  size: number,
  after: { at: Date; id: string } | undefined,
): Promise<{ loans: LoanWithTotals[]; nextPageToken: string }> {
  const bindings: Knex.RawBinding[] = [customerId];
  let where = 'l.customer_id = ?';
  if (after) {
    where += ' and (l.created_at, l.id) > (?, ?)';
    bindings.push(after.at, after.id);
  }
  bindings.push(size + 1);
  const { rows } = (await shard.db.raw(
    `${LOAN_SELECT} where ${where} order by l.created_at, l.id limit ?`,
    bindings,
  )) as {
    rows: LoanWithTotals[];
  };
  const page = rows.slice(0, size);
  const last = page.at(-1);
  return {
    loans: page,
    nextPageToken:
      rows.length > size && last
        ? encodePageToken(listLoansQuery(customerId), [String(last.created_at.getTime()), last.id])
        : '',
  };
}

/** Loans still being disbursed that no call has touched for `ageMs` (a crashed or timed-out call). */
export async function staleDisbursements(db: Knex, ageMs: number, limit: number): Promise<string[]> {
  const rows = (await db('loans')
    .select('id')
    .where('status', 1)
    .andWhere('updated_at', '<', db.raw('now() - make_interval(secs => ?)', [ageMs / 1000]))
    .orderBy('created_at')
    .limit(limit)) as { id: string }[];
  return rows.map((r) => r.id);
}

// ---------------------------------------------------------------------------------------------
// Repayments.

export const REPAYMENT_COLUMNS = `id, loan_id, idempotency_key, body_hash, from_account_id, income_account_id, amount,
  principal, interest, fees, penalties, allocations, status, refusal, kind, waivers, created_at, updated_at,
  interest_receivable, receivable_account_id, penalty_account_id, business_date::text as business_date,
  prepaid_principal, schedule_version, partner_splits`;

export async function findRepayment(db: Knex | Knex.Transaction, id: string, lock = false) {
  const q = db('loan_repayments').select(db.raw(REPAYMENT_COLUMNS)).where('id', id);
  return (await (lock ? q.forUpdate() : q).first()) as RepaymentRow | undefined;
}

/** Repayments left PENDING for longer than `ageMs` (a crash, the ledger unreachable). */
export async function staleRepayments(db: Knex, ageMs: number, limit: number): Promise<string[]> {
  const rows = (await db('loan_repayments')
    .select('id')
    .where('status', 1)
    .andWhere('updated_at', '<', db.raw('now() - make_interval(secs => ?)', [ageMs / 1000]))
    .orderBy('updated_at')
    .limit(limit)) as { id: string }[];
  return rows.map((r) => r.id);
}

/** Takes (sign 1) or gives back (sign -1) a payoff's waived interest off the instalments' interest due. */
export async function applyWaivers(
  tx: Knex.Transaction,
  loanId: string,
  waivers: [number, string][],
  sign: 1n | -1n,
): Promise<void> {
  for (const [number, amount] of waivers) {
    await tx('loan_instalments')
      .where({ loan_id: loanId, number })
      .update({ interest_due: tx.raw('interest_due - ?::bigint', [String(BigInt(amount) * sign)]) });
  }
}

/** Adds (sign 1) or takes back (sign -1) allocations on a loan's instalments. */
export async function applyAllocations(
  tx: Knex.Transaction,
  loanId: string,
  allocations: [number, Component, string][],
  sign: 1n | -1n,
): Promise<void> {
  const column: Record<Component, string> = {
    penalty: 'penalty_paid',
    fee: 'fee_paid',
    interest: 'interest_paid',
    principal: 'principal_paid',
  };
  for (const [number, c, amount] of allocations) {
    await tx('loan_instalments')
      .where({ loan_id: loanId, number })
      .update({ [column[c]]: tx.raw('?? + ?::bigint', [column[c], String(BigInt(amount) * sign)]) });
  }
}

// ---------------------------------------------------------------------------------------------
// Schedule versions: a prepayment's reschedule and its reversal (see prepayment.ts).

export interface ScheduleVersionRow {
  loan_id: string;
  version: number;
  /** 1 a prepayment's reschedule, 2 its reversal. */
  kind: number;
  repayment_id: string;
  strategy: number;
  prepaid_principal: bigint;
  from_instalment: number;
  /** The instalments from from_instalment on and the loan's instalment amount, as they were (bigints as strings). */
  before: { instalment_amount: string; rows: Record<string, string | number>[] };
  created_at: Date;
}

/** The repayment id of a prepayment of this loan still PENDING, if any. */
export async function pendingPrepayment(db: Knex | Knex.Transaction, loanId: string): Promise<string | undefined> {
  const row = (await db('loan_repayments')
    .select('id')
    .where({ loan_id: loanId, status: 1 })
    .andWhere('schedule_version', '>', 0)
    .first()) as { id: string } | undefined;
  return row?.id;
}

export async function findScheduleVersion(db: Knex | Knex.Transaction, loanId: string, version: number) {
  return (await db('loan_schedule_versions').where({ loan_id: loanId, version }).first()) as
    ScheduleVersionRow | undefined;
}

const INSTALMENT_FIELDS = [
  'number',
  'from_date',
  'due_date',
  'days',
  'principal_due',
  'interest_due',
  'fee_due',
  'penalty_due',
  'outstanding_after',
  'principal_paid',
  'interest_paid',
  'fee_paid',
  'penalty_paid',
] as const;

/**
 * Writes a prepayment's reschedule (in the repayment's transaction, the loan locked): the running
 * instalment carries the prepaid principal, the ones after it are replaced by the plan's, and the
 * version is recorded with what it replaced.
 */
export async function recordReschedule(
  tx: Knex.Transaction,
  loan: LoanRow,
  plan: {
    running: number;
    prepaid: bigint;
    openingAfter: bigint;
    instalment: bigint;
    periods: {
      number: number;
      fromDate: string;
      dueDate: string;
      days: number;
      principalDue: bigint;
      interestDue: bigint;
      outstandingAfter: bigint;
    }[];
  },
  v: { repaymentId: string; version: number; strategy: number; at: Date },
): Promise<void> {
  const old = (await instalmentsOf(tx, loan.id)).filter((i) => i.number >= plan.running);
  await tx('loan_schedule_versions').insert({
    loan_id: loan.id,
    version: v.version,
    kind: 1,
    repayment_id: v.repaymentId,
    strategy: v.strategy,
    prepaid_principal: plan.prepaid,
    from_instalment: plan.running,
    before: JSON.stringify({
      instalment_amount: String(loan.instalment_amount),
      rows: old.map((i) => Object.fromEntries(INSTALMENT_FIELDS.map((f) => [f, String(i[f])]))),
    }),
    created_at: v.at,
  });
  await tx('loan_instalments')
    .where({ loan_id: loan.id, number: plan.running })
    .update({
      principal_due: tx.raw('principal_due + ?::bigint', [String(plan.prepaid)]),
      outstanding_after: plan.openingAfter,
    });
  await tx('loan_instalments').where('loan_id', loan.id).andWhere('number', '>', plan.running).delete();
  if (plan.periods.length) {
    await tx('loan_instalments').insert(
      plan.periods.map((p) => ({
        loan_id: loan.id,
        number: p.number,
        from_date: p.fromDate,
        due_date: p.dueDate,
        days: p.days,
        principal_due: p.principalDue,
        interest_due: p.interestDue,
        outstanding_after: p.outstandingAfter,
      })),
    );
  }
  await tx('loans')
    .where('id', loan.id)
    .update({
      schedule_version: v.version,
      instalment_amount: plan.instalment,
      version: tx.raw('version + 1'),
      updated_at: v.at,
    });
}

/**
 * Undoes the reschedule of schedule version `version` (its prepayment refused by the ledger; its
 * allocations already taken back): the instalments are put back as they were, recorded as a new
 * version. Returns that version's number.
 */
export async function revertReschedule(
  tx: Knex.Transaction,
  loanId: string,
  version: number,
  at: Date,
): Promise<number> {
  const v = (await findScheduleVersion(tx, loanId, version))!;
  const loan = (await lockLoan(tx, loanId))!;
  const next = loan.schedule_version + 1;
  await tx('loan_instalments').where('loan_id', loanId).andWhere('number', '>=', v.from_instalment).delete();
  await tx('loan_instalments').insert(v.before.rows.map((r) => ({ loan_id: loanId, ...r })));
  await tx('loan_schedule_versions').insert({
    loan_id: loanId,
    version: next,
    kind: 2,
    repayment_id: v.repayment_id,
    strategy: v.strategy,
    prepaid_principal: 0n,
    from_instalment: v.from_instalment,
    before: JSON.stringify({ instalment_amount: '0', rows: [] }),
    created_at: at,
  });
  await tx('loans')
    .where('id', loanId)
    .update({
      schedule_version: next,
      instalment_amount: BigInt(v.before.instalment_amount),
      version: tx.raw('version + 1'),
      updated_at: at,
    });
  return next;
}
