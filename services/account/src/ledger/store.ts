// SQL for one ledger batch: lock the accounts and read what the batch needs, then write what
// applyBatch decided. Every statement handles the whole batch at once (arrays + unnest), and a
// batch costs three round trips whatever its size: begin with the load, the write, commit.
import { outboxInsert, uuidArrayLiteral, type OutboxEvent } from '@corebank/kit';
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

/** The batch's first statement: ledger_load (migration 004) locks, then reads, in one call. */
export function loadStatement(inputs: TransferInput[]): string {
  const ids = [...new Set(inputs.map((t) => t.id))];
  const pendingIds = [...new Set(inputs.flatMap((t) => (t.pendingId ? [t.pendingId] : [])))];
  const accountIds = [...new Set(inputs.flatMap((t) => [t.debitAccountId, t.creditAccountId]))].sort();
  return `select ledger_load(${uuidArrayLiteral(accountIds)}, ${uuidArrayLiteral(ids)}, ${uuidArrayLiteral(pendingIds)}) as loaded`;
}

export interface Loaded {
  accounts: Record<string, string | boolean>[];
  transfers: (Record<string, string | number | boolean | null> & { src: 't' | 'p'; resolved_by: number | null })[];
  refusals: { id: string; body_hash: string; result: number; field: string }[];
}

const date = (v: unknown) => (v === null ? null : new Date(v as string));

/**
 * The batch's state from ledger_load's JSON (pg has parsed it; amounts arrive as text and become
 * bigint here, so none passes through a JavaScript number).
 */
export function batchStateFrom(loaded: Loaded): BatchState {
  const state: BatchState = { accounts: new Map(), transfers: new Map(), rejections: new Map(), pendings: new Map() };
  for (const r of loaded.accounts) {
    const a: AccountState = {
      id: r.id as string,
      ownerId: r.owner_id as string,
      currency: r.currency as string,
      debitsMustNotExceedCredits: r.debits_must_not_exceed_credits as boolean,
      creditsMustNotExceedDebits: r.credits_must_not_exceed_debits as boolean,
      overdraftLimit: BigInt(r.overdraft_limit as string),
      debitsPending: BigInt(r.debits_pending as string),
      debitsPosted: BigInt(r.debits_posted as string),
      creditsPending: BigInt(r.credits_pending as string),
      creditsPosted: BigInt(r.credits_posted as string),
      entrySeq: BigInt(r.entry_seq as string),
      debitsBlocked: r.debits_blocked as boolean,
      closed: r.closed as boolean,
    };
    state.accounts.set(a.id, a);
  }
  for (const r of loaded.transfers) {
    const t = transferFromRow({
      ...(r as unknown as TransferRow),
      amount: BigInt(r.amount as string),
      expires_at: date(r.expires_at),
      created_at: date(r.created_at)!,
    });
    if (r.src === 't') state.transfers.set(t.id, t);
    else
      state.pendings.set(t.id, {
        transfer: t,
        ...(r.resolved_by !== null ? { resolution: RESOLUTION_BY_KIND[r.resolved_by] } : {}),
      });
  }
  for (const r of loaded.refusals) {
    state.rejections.set(r.id, { id: r.id, bodyHash: r.body_hash, result: r.result, field: r.field } as Rejection);
  }
  return state;
}

const str = (v: bigint) => v.toString();

/** Writes the batch's journal rows, balances, holds, refusals and events in one statement. */
export async function writeBatch(
  query: (sql: string, bindings: unknown[]) => Promise<unknown>,
  state: BatchState,
  w: BatchWrites,
  events: OutboxEvent[],
): Promise<void> {
  const ts = w.transfers;
  const es = w.entries;
  const as = [...w.touched].map((id) => state.accounts.get(id)!);
  const rs = w.rejections;
  const outbox = outboxInsert(events);
  // Data-modifying CTEs run together; an empty array inserts nothing.
  await query(
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
    [
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
    ],
  );
}
