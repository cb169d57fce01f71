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

/** Transfer ids carry no shard, so a lookup asks every shard (in parallel, by primary key). */
export async function getTransfer(router: ShardRouter, rawId: string): Promise<GetTransferResponse> {
  const id = rawId.length === 36 ? rawId.toLowerCase() : '';
  if (!rawId) throw DomainError.invalid([{ field: 'transfer_id', description: 'is required' }]);
  if (!isUuid(id)) throw DomainError.invalid([{ field: 'transfer_id', description: 'is not a UUID' }]);
  const found = await Promise.all(
    router.shards.map((s) =>
      s.db.raw(
        `select ${TRANSFER_COLUMNS}, (select kind from transfers r where r.pending_id = t.id) as resolved_by
           from transfers t where t.id = ?`,
        [id],
      ),
    ),
  );
  const row = found.flatMap((r) => r.rows as Row[])[0];
  if (!row) throw DomainError.notFound('transfer_id', 'transfer');
  const t = transferFromRow(row as Parameters<typeof transferFromRow>[0]);
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
 * Per shard and currency: posted and pending debits equal credits; the balances equal what the
 * journal says they should be; no constrained account is past its limit. Then the same globally.
 */
export async function checkInvariant(router: ShardRouter): Promise<CheckLedgerInvariantResponse> {
  const perShard = await Promise.all(
    router.shards.map(async ({ db }) => {
      const { rows } = await db.raw(`
        with balances as (
          select currency, sum(debits_posted)::text as dpo, sum(credits_posted)::text as cpo,
                 sum(debits_pending)::text as dp, sum(credits_pending)::text as cp
            from accounts group by currency),
        journal as (
          select currency,
                 coalesce(sum(amount) filter (where kind in (1, 3)), 0)::text as posted,
                 coalesce(sum(amount) filter (where kind = 2 and not exists
                   (select 1 from transfers r where r.pending_id = t.id)), 0)::text as pending
            from transfers t group by currency)
        select b.*, coalesce(j.posted, '0') as posted, coalesce(j.pending, '0') as pending
          from balances b left join journal j using (currency) order by currency`);
      const violations = await db.raw(`
        select count(*) as n from accounts
         where (debits_must_not_exceed_credits and debits_pending + debits_posted > credits_posted + overdraft_limit)
            or (credits_must_not_exceed_debits and credits_pending + credits_posted > debits_posted)`);
      const sums = (rows as Record<string, string>[]).map((r) => {
        const dpo = BigInt(r.dpo!);
        const cpo = BigInt(r.cpo!);
        const dp = BigInt(r.dp!);
        const cp = BigInt(r.cp!);
        const posted = BigInt(r.posted!);
        return {
          currency: r.currency!,
          sums: {
            dpo,
            cpo,
            dp,
            cp,
            journal: dpo === posted && cpo === posted && dp === BigInt(r.pending!),
            balanced: dpo === cpo && dp === cp,
          },
        };
      });
      return { sums, violations: (violations.rows[0] as { n: bigint }).n };
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
