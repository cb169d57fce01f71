// SQL for one ledger batch: lock the accounts, read what the batch needs, then write what
// applyBatch decided. Every statement handles the whole batch at once (arrays + unnest), and a
// batch costs five round trips whatever its size: begin, lock, read, write, commit.
import { bind, outboxInsert, type OutboxEvent, type Row, type Tx } from '@corebank/kit';
import type { BatchState, BatchWrites } from './apply.js';
import type { AccountState, Rejection, StoredTransfer, TransferInput } from './types.js';

interface TransferRow {
  id: string;
  debit_account_id: string;
  credit_account_id: string;
  amount: bigint;
  currency: string;
  kind: number;
  linked: boolean;
  pending_id: string | null;
  timeout_seconds: number;
  expires_at: Date | null;
  code: number;
  reference: string;
  body_hash: string;
  created_at: Date;
}

export const TRANSFER_COLUMNS =
  'id, debit_account_id, credit_account_id, amount, currency, kind, linked, pending_id, timeout_seconds, expires_at, code, reference, body_hash, created_at';

export function transferFromRow(r: TransferRow): StoredTransfer {
  return {
    id: r.id,
    debitAccountId: r.debit_account_id,
    creditAccountId: r.credit_account_id,
    amount: r.amount,
    currency: r.currency,
    kind: r.kind,
    linked: r.linked,
    pendingId: r.pending_id,
    timeoutSeconds: r.timeout_seconds,
    expiresAt: r.expires_at,
    code: r.code,
    reference: r.reference,
    bodyHash: r.body_hash,
    createdAt: r.created_at,
  };
}

const RESOLUTION_BY_KIND: Record<number, 'posted' | 'voided' | 'expired'> = { 3: 'posted', 4: 'voided', 5: 'expired' };

/**
 * Loads the batch's state. The account rows are locked first, in id order, so concurrent batches
 * never deadlock; the read that follows is a new statement, so it sees everything committed by
 * a batch that held these rows before us.
 */
export async function loadBatchState(tx: Tx, inputs: TransferInput[]): Promise<BatchState> {
  const ids = [...new Set(inputs.map((t) => t.id))];
  const pendingIds = [...new Set(inputs.flatMap((t) => (t.pendingId ? [t.pendingId] : [])))];
  const accountIds = [...new Set(inputs.flatMap((t) => [t.debitAccountId, t.creditAccountId]))].sort();

  const accounts = await tx.raw(
    `select id, owner_id, currency, debits_must_not_exceed_credits, credits_must_not_exceed_debits, overdraft_limit,
            debits_pending, debits_posted, credits_pending, credits_posted, entry_seq, debits_blocked, closed
       from accounts where id = any(?::uuid[]) order by id for update`,
    [accountIds],
  );
  // Transfers already in the journal under these ids ('t'), the pending transfers referenced
  // with how they were resolved ('p'), and recorded refusals ('r'), in one statement.
  const { rows } = await tx.raw(
    `select 't' as src, ${TRANSFER_COLUMNS}, null::smallint as resolved_by, null::smallint as result, null::text as field
       from transfers where id = any(?::uuid[])
     union all
     select 'p', ${TRANSFER_COLUMNS}, (select kind from transfers r where r.pending_id = p.id), null, null
       from transfers p where p.id = any(?::uuid[])
     union all
     select 'r', id, null, null, null, null, null, null, null, null, null, null, null, body_hash, created_at, null, result, field
       from transfer_rejections where id = any(?::uuid[])`,
    [ids, pendingIds, ids],
  );

  const state: BatchState = { accounts: new Map(), transfers: new Map(), rejections: new Map(), pendings: new Map() };
  for (const r of accounts.rows as Row[]) {
    const a: AccountState = {
      id: r.id,
      ownerId: r.owner_id,
      currency: r.currency,
      debitsMustNotExceedCredits: r.debits_must_not_exceed_credits,
      creditsMustNotExceedDebits: r.credits_must_not_exceed_debits,
      overdraftLimit: r.overdraft_limit,
      debitsPending: r.debits_pending,
      debitsPosted: r.debits_posted,
      creditsPending: r.credits_pending,
      creditsPosted: r.credits_posted,
      entrySeq: r.entry_seq,
      debitsBlocked: r.debits_blocked,
      closed: r.closed,
    };
    state.accounts.set(a.id, a);
  }
  for (const r of rows as (TransferRow & {
    src: string;
    resolved_by: number | null;
    result: number;
    field: string;
  })[]) {
    if (r.src === 't') state.transfers.set(r.id, transferFromRow(r));
    else if (r.src === 'r')
      state.rejections.set(r.id, { id: r.id, bodyHash: r.body_hash, result: r.result, field: r.field } as Rejection);
    else {
      state.pendings.set(r.id, {
        transfer: transferFromRow(r),
        ...(r.resolved_by !== null ? { resolution: RESOLUTION_BY_KIND[r.resolved_by] } : {}),
      });
    }
  }
  return state;
}

const str = (v: bigint) => v.toString();

/** Writes the batch's journal rows, balances, holds, refusals and events in one statement. */
export async function writeBatch(tx: Tx, state: BatchState, w: BatchWrites, events: OutboxEvent[]): Promise<void> {
  const ts = w.transfers;
  const es = w.entries;
  const as = [...w.touched].map((id) => state.accounts.get(id)!);
  const rs = w.rejections;
  const outbox = outboxInsert(events);
  // Data-modifying CTEs run together; an empty array inserts nothing.
  await tx.raw(
    `with
     new_transfers as (
       insert into transfers (${TRANSFER_COLUMNS})
       select * from unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::bigint[], ?::char(3)[], ?::smallint[], ?::boolean[],
                            ?::uuid[], ?::integer[], ?::timestamptz[], ?::integer[], ?::text[], ?::text[], ?::timestamptz[])),
     new_entries as (
       insert into entries (account_id, seq, transfer_id, counterparty_id, posted_change, pending_change,
                            debits_pending, debits_posted, credits_pending, credits_posted, created_at)
       select * from unnest(?::uuid[], ?::bigint[], ?::uuid[], ?::uuid[], ?::bigint[], ?::bigint[],
                            ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::timestamptz[])),
     balances as (
       update accounts a set debits_pending = v.dp, debits_posted = v.dpo, credits_pending = v.cp,
                             credits_posted = v.cpo, entry_seq = v.seq
         from unnest(?::uuid[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[]) as v(id, dp, dpo, cp, cpo, seq)
        where a.id = v.id),
     holds_closed as (delete from pending_holds where transfer_id = any(?::uuid[])),
     holds_opened as (
       insert into pending_holds (transfer_id, expires_at) select * from unnest(?::uuid[], ?::timestamptz[])),
     refusals as (
       insert into transfer_rejections (id, body_hash, result, field)
       select * from unnest(?::uuid[], ?::text[], ?::smallint[], ?::text[])),
     events as (${outbox.sql})
     select 1`,
    bind([
      ts.map((t) => t.id),
      ts.map((t) => t.debitAccountId),
      ts.map((t) => t.creditAccountId),
      ts.map((t) => str(t.amount)),
      ts.map((t) => t.currency),
      ts.map((t) => t.kind),
      ts.map((t) => t.linked),
      ts.map((t) => t.pendingId),
      ts.map((t) => t.timeoutSeconds),
      ts.map((t) => t.expiresAt),
      ts.map((t) => t.code),
      ts.map((t) => t.reference),
      ts.map((t) => t.bodyHash),
      ts.map((t) => t.createdAt),
      es.map((e) => e.accountId),
      es.map((e) => str(e.seq)),
      es.map((e) => e.transferId),
      es.map((e) => e.counterpartyId),
      es.map((e) => str(e.postedChange)),
      es.map((e) => str(e.pendingChange)),
      es.map((e) => str(e.debitsPending)),
      es.map((e) => str(e.debitsPosted)),
      es.map((e) => str(e.creditsPending)),
      es.map((e) => str(e.creditsPosted)),
      es.map((e) => e.createdAt),
      as.map((a) => a.id),
      as.map((a) => str(a.debitsPending)),
      as.map((a) => str(a.debitsPosted)),
      as.map((a) => str(a.creditsPending)),
      as.map((a) => str(a.creditsPosted)),
      as.map((a) => str(a.entrySeq)),
      w.holdsClosed,
      w.holdsOpened.map((t) => t.id),
      w.holdsOpened.map((t) => t.expiresAt),
      rs.map((r) => r.id),
      rs.map((r) => r.bodyHash),
      rs.map((r) => r.result),
      rs.map((r) => r.field),
      ...outbox.bindings,
    ]),
  );
}
