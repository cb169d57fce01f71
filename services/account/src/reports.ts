// Read-side of the ledger: a transfer, an account statement, and the invariant check.
import { DomainError, encodePageToken, isUuid, registry, toTimestamp, type Row, type ShardRouter } from '@corebank/kit';
import {
  type CheckLedgerInvariantResponse,
  type CurrencyTotals,
  type GetTransferResponse,
  type StatementEntry,
} from '@corebank/kit/gen/corebank/v1/account';
import { Gauge } from 'prom-client';
import { transferFromRow, TRANSFER_COLUMNS } from './ledger/store.js';
import { pendingStatusOf } from './ledger/types.js';
import { transferToProto } from './proto.js';
import { statementQuery } from './validate.js';

const invariantOk = new Gauge({
  name: 'ledger_invariant_ok',
  help: '1 when debits equal credits for the currency on every shard and balances match the journal',
  labelNames: ['currency'] as const,
  registers: [registry],
});

/**
 * A transfer id is unique within the unit of its accounts, and carries no shard: a lookup asks
 * every shard (in parallel, by primary key), or only `accountId`'s (a checked account id) when
 * given. An id found in more than one unit needs the account to say which transfer is meant.
 */
export async function getTransfer(
  router: ShardRouter,
  rawId: string,
  accountId?: string,
): Promise<GetTransferResponse> {
  const id = rawId.length === 36 ? rawId.toLowerCase() : '';
  if (!rawId) throw DomainError.invalid([{ field: 'transfer_id', description: 'is required' }]);
  if (!isUuid(id)) throw DomainError.invalid([{ field: 'transfer_id', description: 'is not a UUID' }]);
  const home = accountId === undefined ? undefined : router.byId(accountId);
  if (accountId !== undefined && !home) throw DomainError.notFound('account_id', 'account');
  const shards = home ? [home] : router.shards;
  const found = await Promise.all(
    shards.map((s) =>
      s.db.raw(
        `select ${TRANSFER_COLUMNS}, (select kind from transfers r where r.pending_id = t.id) as resolved_by
           from transfers t where t.id = ?`,
        [id],
      ),
    ),
  );
  const rows = found.flatMap((r) => r.rows as Row[]);
  const row = rows[0];
  if (!row) throw DomainError.notFound('transfer_id', 'transfer');
  if (rows.length > 1) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'TRANSFER_ID_AMBIGUOUS',
      'transfer_id: used by transfers in more than one unit; name one of its accounts in account_id',
    );
  }
  const t = transferFromRow(row as Parameters<typeof transferFromRow>[0]);
  if (accountId && t.debitAccountId !== accountId && t.creditAccountId !== accountId) {
    throw DomainError.notFound('transfer_id', 'transfer');
  }
  const resolvedBy = row.resolved_by as number | null;
  return {
    transfer: transferToProto(t),
    pendingStatus: pendingStatusOf(t.kind, resolvedBy),
  };
}

/** An account's entries after sequence `after` (a checked page-token cursor); the id is a checked account id. */
export async function getStatement(router: ShardRouter, accountId: string, pageSize: number, after = 0n) {
  const shard = router.byId(accountId)!;
  const { rows } = await shard.db.raw(
    `select e.*, t.kind, t.reference from entries e join transfers t on t.id = e.transfer_id
      where e.account_id = ? and e.seq > ? order by e.seq limit ?`,
    [accountId, after.toString(), pageSize + 1],
  );
  const entries: StatementEntry[] = (rows as Row[]).slice(0, pageSize).map((r) => ({
    sequence: r.seq,
    transferId: r.transfer_id,
    transferKind: r.kind,
    counterpartyAccountId: r.counterparty_id,
    postedChange: r.posted_change,
    pendingChange: r.pending_change,
    debitsPending: r.debits_pending,
    debitsPosted: r.debits_posted,
    creditsPending: r.credits_pending,
    creditsPosted: r.credits_posted,
    postedBalance: (r.credits_posted as bigint) - (r.debits_posted as bigint),
    createdAt: toTimestamp(r.created_at),
    reference: r.reference,
  }));
  const last = entries[entries.length - 1];
  return {
    entries,
    nextPageToken:
      rows.length > pageSize && last ? encodePageToken(statementQuery(accountId), [last.sequence.toString()]) : '',
  };
}

interface Sums {
  dpo: bigint;
  cpo: bigint;
  dp: bigint;
  cp: bigint;
  journal: boolean;
  balanced: boolean;
}

const toTotals = (currency: string, shard: number | undefined, s: Sums): CurrencyTotals => ({
  currency,
  ...(shard !== undefined ? { shard } : {}),
  debitsPosted: s.dpo.toString(),
  creditsPosted: s.cpo.toString(),
  debitsPending: s.dp.toString(),
  creditsPending: s.cp.toString(),
  journalMatchesBalances: s.journal,
  balanced: s.balanced,
});

/**
 * Per shard and currency: posted and pending debits equal credits; every account's balances are
 * what its journal says (the running balances of its last entry, found by primary key); no
 * constrained account is past its limit. Then the same globally.
 *
 * Its cost grows with the number of accounts, not with the journal: one pass over the accounts
 * and one index lookup each, never a sum over every transfer ever written. A journal entry's
 * running balances are its account's balances after it (both written by the same ledger
 * statement), so an account row that drifted from its journal shows here; the sum over all
 * accounts of debits equals that of credits because every transfer adds its amount to one of each.
 */
export async function checkInvariant(router: ShardRouter): Promise<CheckLedgerInvariantResponse> {
  const perShard = await Promise.all(
    router.shards.map(async ({ db }) => {
      // LATERAL ... LIMIT 1 keeps the last-entry lookup a per-account index probe (a plain join
      // may be planned as a hash join over every entry).
      const { rows } = await db.raw(`
        select a.currency,
               sum(a.debits_posted)::text as dpo, sum(a.credits_posted)::text as cpo,
               sum(a.debits_pending)::text as dp, sum(a.credits_pending)::text as cp,
               count(*) filter (where
                 case when a.entry_seq = 0
                      then (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending) <> (0, 0, 0, 0)
                      else e.account_id is null
                        or (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
                           <> (e.debits_posted, e.credits_posted, e.debits_pending, e.credits_pending)
                 end) as off_journal,
               count(*) filter (where
                 (a.debits_must_not_exceed_credits
                    and a.debits_pending + a.debits_posted > a.credits_posted + a.overdraft_limit)
                 or (a.credits_must_not_exceed_debits and a.credits_pending + a.credits_posted > a.debits_posted))
                 as violations
          from accounts a
          left join lateral (
            select e.account_id, e.debits_posted, e.credits_posted, e.debits_pending, e.credits_pending
              from entries e where e.account_id = a.id and e.seq = a.entry_seq limit 1) e on true
         group by a.currency order by a.currency`);
      const sums = (rows as Record<string, string>[]).map((r) => {
        const dpo = BigInt(r.dpo!);
        const cpo = BigInt(r.cpo!);
        const dp = BigInt(r.dp!);
        const cp = BigInt(r.cp!);
        return {
          currency: r.currency!,
          sums: {
            dpo,
            cpo,
            dp,
            cp,
            journal: BigInt(r.off_journal!) === 0n,
            balanced: dpo === cpo && dp === cp,
          },
        };
      });
      const violations = (rows as Record<string, string>[]).reduce((n, r) => n + BigInt(r.violations!), 0n);
      return { sums, violations };
    }),
  );
  const global = new Map<string, Sums>();
  const totals: CurrencyTotals[] = [];
  perShard.forEach((s, shard) => {
    for (const { currency, sums } of s.sums) {
      totals.push(toTotals(currency, shard, sums));
      const g = global.get(currency) ?? { dpo: 0n, cpo: 0n, dp: 0n, cp: 0n, journal: true, balanced: true };
      g.dpo += sums.dpo;
      g.cpo += sums.cpo;
      g.dp += sums.dp;
      g.cp += sums.cp;
      g.journal &&= sums.journal;
      g.balanced &&= sums.balanced;
      global.set(currency, g);
    }
  });
  for (const [currency, g] of global) {
    g.balanced &&= g.dpo === g.cpo && g.dp === g.cp;
    totals.push(toTotals(currency, undefined, g));
    invariantOk.set({ currency }, g.balanced && g.journal ? 1 : 0);
  }
  const constraintViolations = perShard.reduce((n, s) => n + s.violations, 0n);
  return {
    ok: constraintViolations === 0n && totals.every((t) => t.balanced && t.journalMatchesBalances),
    totals,
    constraintViolations,
  };
}
