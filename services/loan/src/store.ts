// The loan service's SQL: applications, loans, instalments and repayments on the borrower's home
// shard. Every change and its events commit in one transaction.
import { encodePageToken, writeEvents, type OutboxEvent, type Shard, type ShardRouter } from '@corebank/kit';
import type { Knex } from 'knex';
import type { ApplicationState, LoanApplication } from '@corebank/kit/gen/corebank/v1/loan';
import { applicationToProto, type ApplicationRow } from './proto.js';

export const APPLICATION_COLUMNS = `id, customer_id, channel, idempotency_key, body_hash, product_id, product_version,
  currency, amount, term_months, disbursement_account_id, repayment_account_id, monthly_income, state, score, reasons,
  approved_amount, annual_rate, loan_id, decided_by, decision_note, created_at, decided_at`;

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
  events: (a: LoanApplication) => OutboxEvent[],
): Promise<{ row: ApplicationRow; inserted: boolean }> {
  return shard.db.transaction(async (tx) => {
    const inserted = (await tx('loan_applications')
      .insert({ ...row, reasons: JSON.stringify(row.reasons) })
      .onConflict(['customer_id', 'idempotency_key'])
      .ignore()
      .returning(tx.raw(APPLICATION_COLUMNS))) as ApplicationRow[];
    if (inserted.length) {
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
