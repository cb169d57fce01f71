// The partner lender registry: global data, kept on shard 0 (the registry's one home; every other
// shard's partner_lenders table stays empty). Registration is idempotent by key and writes its
// event to shard 0's outbox in the same transaction. Read at every co-lent application (one
// primary-key read on shard 0).
import { createHash } from 'node:crypto';
import {
  DomainError,
  encodePageToken,
  int64,
  newEventId,
  text,
  toTimestamp,
  uint32,
  Violations,
  writeEvents,
  type RpcContext,
  type ShardRouter,
} from '@corebank/kit';
import type { Knex } from 'knex';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { PartnerLenderChanged } from '@corebank/kit/gen/corebank/v1/events';
import type {
  PartnerLender,
  PartnerRules,
  RegisterPartnerLenderRequest,
  RegisterPartnerLenderResponse,
} from '@corebank/kit/gen/corebank/v1/loan';
import type { LoanTerms } from '@corebank/kit/gen/corebank/v1/product';
import type { Accounts } from './clients/accounts.js';
import type { Decision, Outcome, Reason } from './scorecard.js';
import {
  feeUnits,
  partnerDecides,
  partnerToProto,
  twoSieves,
  type FundingAccountRow,
  type PartnerDecisionRow,
  type PartnerFacts,
  type PartnerRow,
} from './colending.js';
import { SUBJECTS } from './events.js';
import { bucketedIdField, idempotencyKeyField } from './validate.js';

export const PARTNER_ID = /^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$/;
export const MAX_FUNDING_ACCOUNTS = 64;
const MAX_SCORE = 10_000;
const TIERS = [RiskTier.RISK_TIER_LOW, RiskTier.RISK_TIER_MEDIUM, RiskTier.RISK_TIER_HIGH];

const COLUMNS = `partner_id, idempotency_key, body_hash, name, funding_accounts, servicing_fee_percent, rules, created_at`;

/** The registry's shard. */
export const registryDb = (router: ShardRouter): Knex => router.shards[0]!.db;

export function partnerIdField(v: Violations, value: string, field = 'partner_id'): void {
  text(v, field, value, { max: 64, required: true, pattern: PARTNER_ID, shape: 'a partner id' });
}

/** Checks a registration; returns the funding account ids, lower-case, and the rules normalized. */
export function validateRegister(req: RegisterPartnerLenderRequest): { ids: string[]; rules: PartnerRules } {
  const v = new Violations();
  idempotencyKeyField(v, req.idempotencyKey);
  partnerIdField(v, req.partnerId);
  text(v, 'name', req.name, { max: 200, required: true });
  const ids: string[] = [];
  if (req.fundingAccountIds.length < 1 || req.fundingAccountIds.length > MAX_FUNDING_ACCOUNTS) {
    v.add('funding_account_ids', `must name 1 to ${MAX_FUNDING_ACCOUNTS} accounts`);
  } else {
    req.fundingAccountIds.forEach((id, i) => {
      const field = `funding_account_ids[${i}]`;
      const ok = bucketedIdField(v, field, id, 'an account id');
      if (ok && ids.includes(ok)) v.add(field, 'is named twice');
      else if (ok) ids.push(ok);
    });
  }
  const units = req.servicingFeePercent.length <= 8 ? feeUnits(req.servicingFeePercent) : undefined;
  if (units === undefined || units > 1_000_000n) {
    v.add('servicing_fee_percent', 'must be a percent 0 to 100 with at most 4 decimals, for example 12.5');
  }
  const r = req.rules ?? { minScore: 0, hasMinScore: false, maxAmount: 0n, maxTermMonths: 0, allowedRiskTiers: [] };
  if (!Number.isSafeInteger(r.minScore) || Math.abs(r.minScore) > MAX_SCORE) {
    v.add('rules.min_score', `must be -${MAX_SCORE} to ${MAX_SCORE}`);
  } else if (!r.hasMinScore && r.minScore !== 0) v.add('rules.min_score', 'must be 0 unless has_min_score');
  int64(v, 'rules.max_amount', r.maxAmount, { min: 0n });
  uint32(v, 'rules.max_term_months', r.maxTermMonths, { max: 600 });
  if (r.allowedRiskTiers.length > TIERS.length) v.add('rules.allowed_risk_tiers', 'must name at most 3 tiers');
  else {
    r.allowedRiskTiers.forEach((t, i) => {
      if (!TIERS.includes(t)) v.add(`rules.allowed_risk_tiers[${i}]`, 'must be LOW, MEDIUM or HIGH');
      else if (r.allowedRiskTiers.indexOf(t) !== i) v.add(`rules.allowed_risk_tiers[${i}]`, 'is named twice');
    });
  }
  v.throwIfAny();
  return {
    ids,
    rules: {
      minScore: r.minScore,
      hasMinScore: r.hasMinScore,
      maxAmount: r.maxAmount,
      maxTermMonths: r.maxTermMonths,
      allowedRiskTiers: [...r.allowedRiskTiers],
    },
  };
}

const rulesJson = (r: PartnerRules) => ({ ...r, maxAmount: String(r.maxAmount) });
const rulesOf = (j: PartnerRules & { maxAmount: string | bigint }): PartnerRules => ({
  ...j,
  maxAmount: BigInt(j.maxAmount),
});
const rowOf = (r: PartnerRow): PartnerRow => ({ ...r, rules: rulesOf(r.rules as never) });

function bodyHash(req: RegisterPartnerLenderRequest, ids: string[], rules: PartnerRules): string {
  const body = [req.partnerId, req.name, ids, req.servicingFeePercent, rulesJson(rules)];
  return createHash('sha256').update(JSON.stringify(body)).digest('base64url');
}

export async function findPartner(router: ShardRouter, partnerId: string): Promise<PartnerRow | undefined> {
  const db = registryDb(router);
  const row = (await db('partner_lenders').select(db.raw(COLUMNS)).where('partner_id', partnerId).first()) as
    PartnerRow | undefined;
  return row && rowOf(row);
}

/** The partners these ids name (any not registered are missing from the map). */
export async function findPartners(router: ShardRouter, ids: string[]): Promise<Map<string, PartnerRow>> {
  if (!ids.length) return new Map();
  const db = registryDb(router);
  const rows = (await db('partner_lenders').select(db.raw(COLUMNS)).whereIn('partner_id', ids)) as PartnerRow[];
  return new Map(rows.map((r) => [r.partner_id, rowOf(r)]));
}

export async function registerPartner(
  d: { router: ShardRouter; accounts: Accounts },
  req: RegisterPartnerLenderRequest,
  ctx: RpcContext,
): Promise<RegisterPartnerLenderResponse> {
  const { ids, rules } = validateRegister(req);
  const hash = bodyHash(req, ids, rules);
  const db = registryDb(d.router);
  const replay = (row: PartnerRow): RegisterPartnerLenderResponse => {
    if (row.body_hash !== hash) {
      throw new DomainError(
        'ALREADY_EXISTS',
        'PARTNER_EXISTS_WITH_DIFFERENT_BODY',
        'idempotency_key: this key registered a partner with a different body',
        [{ field: 'idempotency_key', description: 'was used before with a different body' }],
      );
    }
    return { partner: partnerToProto(rowOf(row)), replayed: true };
  };
  const byKey = async (q: Knex | Knex.Transaction) =>
    (await q('partner_lenders').select(q.raw(COLUMNS)).where('idempotency_key', req.idempotencyKey).first()) as
      PartnerRow | undefined;
  const seen = await byKey(db);
  if (seen) return replay(seen);

  // Every funding account must be an open account of the ledger; at most one per (shard, currency).
  const accounts = await Promise.all(ids.map((id) => d.accounts.get(id, ctx.deadline)));
  const funding: FundingAccountRow[] = [];
  accounts.forEach((a, i) => {
    const field = `funding_account_ids[${i}]`;
    if (!a) throw DomainError.notFound(field, 'account');
    if (a.closed) {
      throw new DomainError('FAILED_PRECONDITION', 'ACCOUNT_CLOSED', `${field}: is closed`, [
        { field, description: 'is closed' },
      ]);
    }
    if (funding.some((f) => f.shard === a.shard && f.currency === a.currency)) {
      throw new DomainError(
        'INVALID_ARGUMENT',
        'INVALID_ARGUMENT',
        `${field}: a second ${a.currency} account on shard ${a.shard}`,
        [{ field, description: 'is a second account in its currency on its shard' }],
      );
    }
    funding.push({ account_id: a.id, currency: a.currency, shard: a.shard });
  });

  const now = new Date();
  const row: PartnerRow = {
    partner_id: req.partnerId,
    idempotency_key: req.idempotencyKey,
    body_hash: hash,
    name: req.name,
    funding_accounts: funding,
    servicing_fee_percent: req.servicingFeePercent,
    rules,
    created_at: now,
  };
  return db.transaction(async (tx) => {
    const inserted = (await tx('partner_lenders')
      .insert({ ...row, funding_accounts: JSON.stringify(funding), rules: JSON.stringify(rulesJson(rules)) })
      .onConflict()
      .ignore()
      .returning(tx.raw(COLUMNS))) as PartnerRow[];
    if (!inserted.length) {
      const again = await byKey(tx);
      if (again) return replay(again);
      throw new DomainError(
        'ALREADY_EXISTS',
        'PARTNER_EXISTS',
        'partner_id: is registered under another idempotency key',
        [{ field: 'partner_id', description: 'is already registered' }],
      );
    }
    const partner = partnerToProto(rowOf(inserted[0]!));
    const meta = { eventId: newEventId(), occurredAt: toTimestamp(now), shard: 0 };
    await writeEvents(tx, [
      {
        id: meta.eventId,
        subject: SUBJECTS.partnerRegistered,
        payload: PartnerLenderChanged.encode({ meta, partner }).finish(),
      },
    ]);
    ctx.log.info({ partner_id: req.partnerId }, 'partner lender registered');
    return { partner, replayed: false };
  });
}

export const listPartnersQuery = { rpc: 'ListPartnerLenders', filters: [] as string[] };

export async function listPartners(
  router: ShardRouter,
  size: number,
  after: string | undefined,
): Promise<{ partners: PartnerLender[]; nextPageToken: string }> {
  const db = registryDb(router);
  let q = db('partner_lenders').select(db.raw(COLUMNS));
  if (after) q = q.where('partner_id', '>', after);
  const rows = (await q.orderBy('partner_id').limit(size + 1)) as PartnerRow[];
  const page = rows.slice(0, size);
  return {
    partners: page.map((r) => partnerToProto(rowOf(r))),
    nextPageToken: rows.length > size ? encodePageToken(listPartnersQuery, [page.at(-1)!.partner_id]) : '',
  };
}

/**
 * The partners' sieve of an application on a co-lent product: each partner the product names
 * decides by its own rules; with the bank's outcome, twoSieves gives the application's. A partner
 * the product names that is not registered: FAILED_PRECONDITION, nothing written.
 */
export async function partnerSieve(
  router: ShardRouter,
  terms: LoanTerms,
  bank: Decision,
  facts: PartnerFacts,
): Promise<{ outcome: Outcome; reasons: Reason[]; decisions: PartnerDecisionRow[] }> {
  const shares = terms.partners ?? [];
  if (!shares.length) return { outcome: bank.outcome, reasons: bank.reasons, decisions: [] };
  const registered = await findPartners(
    router,
    shares.map((s) => s.partnerId),
  );
  const decisions = shares.map((s) => {
    const partner = registered.get(s.partnerId);
    if (!partner) {
      throw new DomainError(
        'FAILED_PRECONDITION',
        'PARTNER_NOT_REGISTERED',
        `product_id: the product's partner lender ${s.partnerId} is not registered`,
        [{ field: 'product_id', description: 'names a partner lender that is not registered' }],
        { partner_id: s.partnerId },
      );
    }
    return partnerDecides(partner, s.sharePpm, facts);
  });
  const { outcome, reason } = twoSieves(bank.outcome, decisions, terms.partnerDecline);
  return { outcome, reasons: reason ? [...bank.reasons, reason] : bank.reasons, decisions };
}
