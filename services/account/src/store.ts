// Accounts and their owners in a shard's tables (a ledger batch's SQL is ledger/store.ts): opening,
// reading and listing accounts, the per-shard GL (system) accounts, and locking an owner's row.
import { createHash } from 'node:crypto';
import {
  bucketedId,
  bucketOf,
  DomainError,
  encodePageToken,
  writeEvents,
  type ShardMap,
  type ShardRouter,
  type Tx,
} from '@corebank/kit';
import {
  CreateAccountResultCode as C,
  SystemAccountKind,
  type Account,
  type CreateAccountResult,
  type NewAccount,
} from '@corebank/kit/gen/corebank/v1/account';
import { accountOpenedEvent } from './events.js';
import { listAccountsQuery } from './validate.js';
import { accountToProto, type AccountRow } from './proto.js';

const accountBodyHash = (a: AccountToOpen) =>
  createHash('sha256')
    .update(
      JSON.stringify([
        a.currency,
        a.code,
        !!a.flags?.debitsMustNotExceedCredits,
        !!a.flags?.creditsMustNotExceedDebits,
        a.overdraftLimit.toString(),
        a.reference,
        a.productId ?? '',
        a.productVersion ?? 0,
      ]),
    )
    .digest('base64url');

export const accountIdFor = (ownerId: string, idempotencyKey: string) =>
  bucketedId(bucketOf(ownerId), 'account', ownerId, idempotencyKey);

export const ACCOUNT_COLUMNS = `id, owner_id, currency, code, debits_must_not_exceed_credits, credits_must_not_exceed_debits,
  overdraft_limit, debits_pending, debits_posted, credits_pending, credits_posted, system, reference, created_at, body_hash,
  product_id, product_version, debits_blocked, closed, minimum_balance`;

/** An account to open; product accounts also pin the product version they were opened on. */
export type AccountToOpen = NewAccount & { productId?: string; productVersion?: number; minimumBalance?: bigint };

/** Locks the owner's row (creating it if needed) and returns its state. */
export async function lockOwner(tx: Tx, ownerId: string): Promise<{ debits_blocked: boolean; closed: boolean }> {
  const { rows } = await tx.raw(
    `insert into owners (owner_id) values (?) on conflict (owner_id) do update set owner_id = excluded.owner_id
     returning debits_blocked, closed`,
    [ownerId],
  );
  return rows[0] as { debits_blocked: boolean; closed: boolean };
}

/** Inserts what is new, returns what existed: per shard, one transaction with its events. */
export async function createAccounts(router: ShardRouter, items: AccountToOpen[]): Promise<CreateAccountResult[]> {
  const results: CreateAccountResult[] = new Array(items.length);
  const byShard = new Map<number, number[]>();
  items.forEach((a, i) => {
    const s = router.byCustomer(a.ownerId).index;
    byShard.set(s, [...(byShard.get(s) ?? []), i]);
  });
  await Promise.all(
    [...byShard].map(async ([shardIndex, idx]) => {
      const shard = router.shards[shardIndex]!;
      await shard.db.transaction(async (tx) => {
        const now = new Date();
        // New accounts take their owner's freeze; a closed owner opens nothing.
        const owners = new Map<string, { debits_blocked: boolean; closed: boolean }>();
        for (const owner of [...new Set(idx.map((i) => items[i]!.ownerId))].sort()) {
          const state = await lockOwner(tx, owner);
          if (state.closed) {
            throw new DomainError('FAILED_PRECONDITION', 'OWNER_CLOSED', `owner ${owner} is closed: no new accounts`);
          }
          owners.set(owner, state);
        }
        const rows = idx.map((i) => {
          const a = items[i]!;
          return {
            debits_blocked: owners.get(a.ownerId)!.debits_blocked,
            id: accountIdFor(a.ownerId, a.idempotencyKey),
            owner_id: a.ownerId,
            idempotency_key: a.idempotencyKey,
            body_hash: accountBodyHash(a),
            currency: a.currency,
            code: a.code,
            debits_must_not_exceed_credits: !!a.flags?.debitsMustNotExceedCredits,
            credits_must_not_exceed_debits: !!a.flags?.creditsMustNotExceedDebits,
            overdraft_limit: a.overdraftLimit.toString(),
            reference: a.reference,
            product_id: a.productId ?? '',
            product_version: a.productVersion ?? 0,
            // Pinned by the product version (which is in the body hash), so no hash change.
            minimum_balance: (a.minimumBalance ?? 0n).toString(),
            created_at: now,
          };
        });
        const inserted = (await tx('accounts')
          .insert(rows)
          .onConflict('id')
          .ignore()
          .returning(ACCOUNT_COLUMNS.split(/,\s*/))) as AccountRow[];
        const insertedIds = new Set(inserted.map((r) => r.id));
        const existing = (await tx('accounts')
          .select(tx.raw(ACCOUNT_COLUMNS))
          .whereIn(
            'id',
            rows.map((r) => r.id),
          )) as AccountRow[];
        const byId = new Map(existing.map((r) => [r.id, r]));
        const opened: Account[] = [];
        idx.forEach((i, k) => {
          const row = byId.get(rows[k]!.id)!;
          const account = accountToProto(row, shardIndex);
          if (insertedIds.has(row.id)) {
            insertedIds.delete(row.id); // a key repeated in one request opens one account
            opened.push(account);
            results[i] = { code: C.CREATE_ACCOUNT_RESULT_CODE_OK, account, replayed: false };
          } else if (row.body_hash === rows[k]!.body_hash) {
            results[i] = { code: C.CREATE_ACCOUNT_RESULT_CODE_OK, account, replayed: true };
          } else {
            results[i] = { code: C.CREATE_ACCOUNT_RESULT_CODE_EXISTS_WITH_DIFFERENT_BODY, account, replayed: true };
          }
        });
        await writeEvents(
          tx,
          opened.map((a) => accountOpenedEvent(a, shardIndex, now)),
        );
      });
    }),
  );
  return results;
}

export async function getAccount(router: ShardRouter, id: string, field = 'account_id'): Promise<Account> {
  const shard = router.byId(id.toLowerCase());
  if (!shard) throw DomainError.notFound(field, 'account');
  const row = (await shard
    .db('accounts')
    .select(shard.db.raw(ACCOUNT_COLUMNS))
    .where('id', id.toLowerCase())
    .first()) as AccountRow | undefined;
  if (!row) throw DomainError.notFound(field, 'account');
  return accountToProto(row, shard.index);
}

/** An owner's accounts by id; `after` is the last id of the previous page (a checked page-token cursor). */
export async function listAccounts(router: ShardRouter, ownerId: string, pageSize: number, after: string | undefined) {
  const shard = router.byCustomer(ownerId);
  const rows = (await shard
    .db('accounts')
    .select(shard.db.raw(ACCOUNT_COLUMNS))
    .where('owner_id', ownerId)
    .andWhere('id', '>', after ?? '00000000-0000-0000-0000-000000000000')
    .orderBy('id')
    .limit(pageSize + 1)) as AccountRow[];
  const page = rows.slice(0, pageSize).map((r) => accountToProto(r, shard.index));
  const last = page.at(-1);
  return {
    accounts: page,
    nextPageToken: rows.length > pageSize && last ? encodePageToken(listAccountsQuery(ownerId), [last.id]) : '',
  };
}

export const systemOwner = (shard: number) => `system:shard-${shard}`;

export function systemAccountId(map: ShardMap, shard: number, kind: SystemAccountKind, currency: string): string {
  return bucketedId(map.firstBucketOf(shard), 'system', String(shard), String(kind), currency);
}

/** Every kind of the chart of accounts (SystemAccountKind but UNSPECIFIED and UNRECOGNIZED). */
export const SYSTEM_KINDS = Object.values(SystemAccountKind).filter(
  (k): k is SystemAccountKind => typeof k === 'number' && k > 0,
);

/**
 * Every shard has, per currency, one GL account of each kind of the chart of accounts (no balance
 * constraints). A kind added later is created by the next start-up (insert, ignore existing).
 */
export async function ensureSystemAccounts(router: ShardRouter, currencies: string[]): Promise<void> {
  await Promise.all(
    router.shards.map(({ index, db }) =>
      db('accounts')
        .insert(
          currencies.flatMap((currency) =>
            SYSTEM_KINDS.map((kind) => ({
              id: systemAccountId(router.map, index, kind, currency),
              owner_id: systemOwner(index),
              idempotency_key: `${SystemAccountKind[kind]}:${currency}`,
              body_hash: '',
              currency,
              code: kind,
              debits_must_not_exceed_credits: false,
              credits_must_not_exceed_debits: false,
              system: true,
              reference: SystemAccountKind[kind].replace('SYSTEM_ACCOUNT_KIND_', '').toLowerCase(),
            })),
          ),
        )
        .onConflict('id')
        .ignore(),
    ),
  );
}

export async function listSystemAccounts(router: ShardRouter) {
  const all = await Promise.all(
    router.shards.map(async ({ index, db }) => {
      const rows = (await db('accounts')
        .select(db.raw(ACCOUNT_COLUMNS))
        .where('system', true)
        .orderBy(['currency', 'code'])) as AccountRow[];
      return rows.map((r) => ({ kind: r.code as SystemAccountKind, account: accountToProto(r, index) }));
    }),
  );
  return all.flat();
}
