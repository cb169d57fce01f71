// SQL for one ledger batch: lock the accounts and read what the batch needs, then write what
// applyBatch decided. Every statement handles the whole batch at once (arrays + unnest), and a
// batch costs three round trips whatever its size: begin with the load, the write, commit.
import { outboxInsert, uuidArrayLiteral, type OutboxEvent } from '@corebank/kit';
import type { BatchState, BatchWrites } from './apply.js';
import {
  isResolution,
  type AccountState,
  type BatchClock,
  type Entry,
  type Rejection,
  type StoredTransfer,
  type TransferInput,
} from './types.js';

/** One column of a batch write: its name, its PostgreSQL type, and its value for a row. */
interface Column<T> {
  name: string;
  type: string;
  value: (row: T) => unknown;
}

const str = (v: bigint) => v.toString();

/** The journal's columns, in the order reads select them too. */
const TRANSFER_WRITE: Column<StoredTransfer>[] = [
  { name: 'id', type: 'uuid', value: (t) => t.id },
  { name: 'debit_account_id', type: 'uuid', value: (t) => t.debitAccountId },
  { name: 'credit_account_id', type: 'uuid', value: (t) => t.creditAccountId },
  { name: 'amount', type: 'bigint', value: (t) => str(t.amount) },
  { name: 'currency', type: 'char(3)', value: (t) => t.currency },
  { name: 'kind', type: 'smallint', value: (t) => t.kind },
  { name: 'linked', type: 'boolean', value: (t) => t.linked },
  { name: 'pending_id', type: 'uuid', value: (t) => t.pendingId },
  { name: 'timeout_seconds', type: 'integer', value: (t) => t.timeoutSeconds },
  { name: 'expires_at', type: 'timestamptz', value: (t) => t.expiresAt },
  { name: 'code', type: 'integer', value: (t) => t.code },
  { name: 'reference', type: 'text', value: (t) => t.reference },
  { name: 'body_hash', type: 'text', value: (t) => t.bodyHash },
  { name: 'created_at', type: 'timestamptz', value: (t) => t.createdAt },
  { name: 'business_date', type: 'date', value: (t) => t.businessDate },
];

const ENTRY_WRITE: Column<Entry>[] = [
  { name: 'account_id', type: 'uuid', value: (e) => e.accountId },
  { name: 'seq', type: 'bigint', value: (e) => str(e.seq) },
  { name: 'transfer_id', type: 'uuid', value: (e) => e.transferId },
  { name: 'counterparty_id', type: 'uuid', value: (e) => e.counterpartyId },
  { name: 'posted_change', type: 'bigint', value: (e) => str(e.postedChange) },
  { name: 'pending_change', type: 'bigint', value: (e) => str(e.pendingChange) },
  { name: 'debits_pending', type: 'bigint', value: (e) => str(e.debitsPending) },
  { name: 'debits_posted', type: 'bigint', value: (e) => str(e.debitsPosted) },
  { name: 'credits_pending', type: 'bigint', value: (e) => str(e.creditsPending) },
  { name: 'credits_posted', type: 'bigint', value: (e) => str(e.creditsPosted) },
  { name: 'created_at', type: 'timestamptz', value: (e) => e.createdAt },
];

/** The balance columns of an account row, set from the batch's final state (id first: the match key). */
const BALANCE_WRITE: Column<AccountState>[] = [
  { name: 'id', type: 'uuid', value: (a) => a.id },
  { name: 'debits_pending', type: 'bigint', value: (a) => str(a.debitsPending) },
  { name: 'debits_posted', type: 'bigint', value: (a) => str(a.debitsPosted) },
  { name: 'credits_pending', type: 'bigint', value: (a) => str(a.creditsPending) },
  { name: 'credits_posted', type: 'bigint', value: (a) => str(a.creditsPosted) },
  { name: 'entry_seq', type: 'bigint', value: (a) => str(a.entrySeq) },
];

const HOLD_WRITE: Column<StoredTransfer>[] = [
  { name: 'transfer_id', type: 'uuid', value: (t) => t.id },
  { name: 'expires_at', type: 'timestamptz', value: (t) => t.expiresAt },
];

const REJECTION_WRITE: Column<Rejection>[] = [
  { name: 'id', type: 'uuid', value: (r) => r.id },
  { name: 'body_hash', type: 'text', value: (r) => r.bodyHash },
  { name: 'result', type: 'smallint', value: (r) => r.result },
  { name: 'field', type: 'text', value: (r) => r.field },
];

/** The journal's columns as reads select them (a date as YYYY-MM-DD text, not a local-midnight Date). */
export const TRANSFER_COLUMNS = TRANSFER_WRITE.map((c) =>
  c.type === 'date' ? `to_char(${c.name}, 'YYYY-MM-DD') as ${c.name}` : c.name,
).join(', ');

/** `unnest(?::t1[], ?::t2[], ...)` over the rows, with one array binding per column. */
function unnest<T>(columns: Column<T>[], rows: T[]): { sql: string; bindings: unknown[] } {
  return {
    sql: `unnest(${columns.map((c) => `?::${c.type}[]`).join(', ')})`,
    bindings: columns.map((c) => rows.map(c.value)),
  };
}

const names = <T>(columns: Column<T>[]) => columns.map((c) => c.name).join(', ');

/** A journal row as PostgreSQL returns it (pg parses int8 to bigint and timestamptz to Date). */
export interface TransferRow {
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
  business_date: string;
}

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
    businessDate: r.business_date,
  };
}

/** The batch's first statement: ledger_load (migration 008) locks, then reads, in one call. */
export function loadStatement(inputs: TransferInput[]): string {
  const ids = [...new Set(inputs.map((t) => t.id))];
  const pendingIds = [...new Set(inputs.flatMap((t) => (t.pendingId ? [t.pendingId] : [])))];
  const accountIds = [...new Set(inputs.flatMap((t) => [t.debitAccountId, t.creditAccountId]))].sort();
  return `select ledger_load(${uuidArrayLiteral(accountIds)}, ${uuidArrayLiteral(ids)}, ${uuidArrayLiteral(pendingIds)}) as loaded`;
}

/** ledger_load's JSON: int8 as text (never through a JavaScript number), timestamps as ISO text. */
export interface Loaded {
  /** The database's clock at the start of the batch's transaction: the batch's one clock. */
  now: string;
  /** The shard's business date, read under its lock (ledger_load, migration 006). */
  business_date: string;
  /** The last day the general-ledger step closed on the shard (ledger_load, migration 008); null: none. */
  closed_through: string | null;
  accounts: {
    id: string;
    owner_id: string;
    currency: string;
    debits_must_not_exceed_credits: boolean;
    credits_must_not_exceed_debits: boolean;
    overdraft_limit: string;
    minimum_balance: string;
    debits_pending: string;
    debits_posted: string;
    credits_pending: string;
    credits_posted: string;
    entry_seq: string;
    debits_blocked: boolean;
    closed: boolean;
  }[];
  /** Transfers stored under the batch's ids ('t') and the pending transfers it names ('p'). */
  transfers: (Omit<TransferRow, 'amount' | 'expires_at' | 'created_at'> & {
    src: 't' | 'p';
    amount: string;
    expires_at: string | null;
    created_at: string;
    /** For 'p': the kind of the transfer that resolved it, if one did. */
    resolved_by: number | null;
  })[];
  refusals: { id: string; body_hash: string; result: number; field: string }[];
}

/** The batch's state and clock from ledger_load's JSON. */
export function batchStateFrom(loaded: Loaded): { state: BatchState; clock: BatchClock } {
  const state: BatchState = { accounts: new Map(), transfers: new Map(), rejections: new Map(), pendings: new Map() };
  for (const r of loaded.accounts) {
    state.accounts.set(r.id, {
      id: r.id,
      ownerId: r.owner_id,
      currency: r.currency,
      debitsMustNotExceedCredits: r.debits_must_not_exceed_credits,
      creditsMustNotExceedDebits: r.credits_must_not_exceed_debits,
      overdraftLimit: BigInt(r.overdraft_limit),
      minimumBalance: BigInt(r.minimum_balance),
      debitsPending: BigInt(r.debits_pending),
      debitsPosted: BigInt(r.debits_posted),
      creditsPending: BigInt(r.credits_pending),
      creditsPosted: BigInt(r.credits_posted),
      entrySeq: BigInt(r.entry_seq),
      debitsBlocked: r.debits_blocked,
      closed: r.closed,
    });
  }
  for (const r of loaded.transfers) {
    const t = transferFromRow({
      ...r,
      amount: BigInt(r.amount),
      expires_at: r.expires_at === null ? null : new Date(r.expires_at),
      created_at: new Date(r.created_at),
    });
    if (r.src === 't') state.transfers.set(t.id, t);
    else {
      const resolution = r.resolved_by !== null && isResolution(r.resolved_by) ? r.resolved_by : undefined;
      state.pendings.set(t.id, resolution === undefined ? { transfer: t } : { transfer: t, resolution });
    }
  }
  for (const r of loaded.refusals) {
    state.rejections.set(r.id, { id: r.id, bodyHash: r.body_hash, result: r.result, field: r.field });
  }
  return {
    state,
    clock: {
      now: new Date(loaded.now),
      businessDate: loaded.business_date,
      closedThrough: loaded.closed_through ?? '',
    },
  };
}

/** Writes the batch's journal rows, balances, holds, refusals and events in one statement. */
export async function writeBatch(
  query: (sql: string, bindings: unknown[]) => Promise<unknown>,
  state: BatchState,
  w: BatchWrites,
  events: OutboxEvent[],
): Promise<void> {
  const transfers = unnest(TRANSFER_WRITE, w.transfers);
  const entries = unnest(ENTRY_WRITE, w.entries);
  const balances = unnest(
    BALANCE_WRITE,
    [...w.touched].map((id) => state.accounts.get(id)!),
  );
  const holds = unnest(HOLD_WRITE, w.holdsOpened);
  const refusals = unnest(REJECTION_WRITE, w.rejections);
  const outbox = outboxInsert(events);
  const [, ...balanceColumns] = BALANCE_WRITE.map((c) => c.name);
  // Data-modifying CTEs run together; an empty array inserts nothing.
  await query(
    `with
     new_transfers as (insert into transfers (${names(TRANSFER_WRITE)}) select * from ${transfers.sql}),
     new_entries as (insert into entries (${names(ENTRY_WRITE)}) select * from ${entries.sql}),
     balances as (
       update accounts a set ${balanceColumns.map((c) => `${c} = v.${c}`).join(', ')}
         from ${balances.sql} as v(${names(BALANCE_WRITE)})
        where a.id = v.id),
     holds_closed as (delete from pending_holds where transfer_id = any(?::uuid[])),
     holds_opened as (insert into pending_holds (${names(HOLD_WRITE)}) select * from ${holds.sql}),
     refusals as (insert into transfer_rejections (${names(REJECTION_WRITE)}) select * from ${refusals.sql}),
     events as (${outbox.sql})
     select 1`,
    [
      ...transfers.bindings,
      ...entries.bindings,
      ...balances.bindings,
      w.holdsClosed,
      ...holds.bindings,
      ...refusals.bindings,
      ...outbox.bindings,
    ],
  );
}
