// Co-lending: loans funded by the bank and partner lenders in the shares the product states.
//
// - Two sieves: each partner's own rules (PartnerRules) judge an application independently of the
//   bank's scorecard; a declining partner's share goes to the bank or rejects the application, as
//   the product says (PartnerDeclinePolicy).
// - Disbursement: a partner's part of the principal is principal * share_ppm / 1,000,000 rounded
//   DOWN to the minor unit; the bank's part is the rest (it takes every residue).
// - Repayments: split cumulatively. After a repayment, a partner has been paid
//   floor(principal repaid on the loan so far * share_ppm / 1,000,000) of principal and
//   floor(interest repaid so far * share_ppm / 1,000,000) of interest; a repayment's part is that
//   less what the partner got before (never below 0, never above what the repayment holds). So
//   every split sums exactly to the repayment (the bank takes the rest), a partner gets back
//   exactly the principal it funded when the loan is repaid, and the residue of each repayment
//   is the bank's. Fees and penalties are the bank's (the servicer's).
// - Servicing fee: servicing_fee_percent of the interest collected for the partner, cumulatively
//   rounded half-even to the minor unit, withheld and credited to SERVICING_FEE_INCOME.
//
// Ledger (all on the loan's shard): the loan's own account still carries the whole principal
// outstanding. Each partner's part is drawn from its funding account into the loan's participation
// account for that partner (a liability to the partner: its part of the principal outstanding,
// debits never beyond credits); each repayment moves the partner's principal back from the
// participation account to the funding account, and pays the partner's interest less the fee from
// the repayment account to the funding account. Pure apart from the types it names.
import { hashedUuid, toTimestamp } from '@corebank/kit';
import type { Transfer } from '@corebank/kit/gen/corebank/v1/account';
import { singlePhase } from './clients/accounts.js';
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import type {
  LoanPartnerShare,
  PartnerDecision,
  PartnerLender,
  PartnerRules,
  PartnerSplit,
} from '@corebank/kit/gen/corebank/v1/loan';
import { RepaymentKind } from '@corebank/kit/gen/corebank/v1/loan';
import { PartnerDeclinePolicy } from '@corebank/kit/gen/corebank/v1/product';
import type { Outcome, Reason } from './scorecard.js';

export const PPM = 1_000_000n;
/** Servicing fee percent: up to 4 decimals, 0 to 100. */
export const FEE_PERCENT = /^(\d{1,3})(?:\.(\d{1,4}))?$/;

// ---------------------------------------------------------------------------------------------
// Rows (jsonb; money as decimal strings of minor units).

export interface FundingAccountRow {
  account_id: string;
  currency: string;
  shard: number;
}

export interface PartnerRow {
  partner_id: string;
  idempotency_key: string;
  body_hash: string;
  name: string;
  funding_accounts: FundingAccountRow[];
  servicing_fee_percent: string;
  rules: PartnerRules;
  created_at: Date;
}

export interface PartnerDecisionRow {
  partner_id: string;
  share_ppm: number;
  funded_share_ppm: number;
  approved: boolean;
  reasons: Reason[];
  /** What the loan needs from the partner, fixed at the decision. */
  funding_account_id: string;
  servicing_fee_percent: string;
}

export interface LoanPartnerRow {
  partner_id: string;
  share_ppm: number;
  principal: string;
  funding_account_id: string;
  participation_account_id: string | null;
  servicing_fee_percent: string;
}

export interface PartnerSplitRow {
  partner_id: string;
  principal: string;
  interest: string;
  fee: string;
  funding_account_id: string;
  participation_account_id: string;
  fee_account_id: string;
}

// ---------------------------------------------------------------------------------------------
// The partner's sieve.

export interface PartnerFacts {
  /** The bank's scorecard score. */
  score: number;
  amount: bigint;
  termMonths: number;
  riskTier: RiskTier;
  shard: number;
  currency: string;
}

const TIER_NAME: Partial<Record<RiskTier, string>> = {
  [RiskTier.RISK_TIER_LOW]: 'LOW',
  [RiskTier.RISK_TIER_MEDIUM]: 'MEDIUM',
  [RiskTier.RISK_TIER_HIGH]: 'HIGH',
};

/** One partner's decision on an application: every rule it has, met or not, is a reason. */
export function partnerDecides(partner: PartnerRow, share: number, f: PartnerFacts): PartnerDecisionRow {
  const reasons: Reason[] = [];
  let approved = true;
  const rule = (code: string, met: boolean, detail: string) => {
    reasons.push({ code: `${code}_${met ? 'MET' : 'FAILED'}`, points: 0, detail });
    if (!met) approved = false;
  };
  const funding = partner.funding_accounts.find((a) => a.shard === f.shard && a.currency === f.currency);
  rule('FUNDING_ACCOUNT', funding !== undefined, `a ${f.currency} funding account on shard ${f.shard}`);
  const r = partner.rules;
  if (r.hasMinScore) rule('MIN_SCORE', f.score >= r.minScore, `bank score ${f.score}, at least ${r.minScore}`);
  if (BigInt(r.maxAmount) > 0n) {
    rule('MAX_AMOUNT', f.amount <= BigInt(r.maxAmount), `amount ${f.amount}, at most ${r.maxAmount}`);
  }
  if (r.maxTermMonths > 0) {
    rule('MAX_TERM', f.termMonths <= r.maxTermMonths, `term ${f.termMonths}, at most ${r.maxTermMonths}`);
  }
  if (r.allowedRiskTiers.length > 0) {
    const names = r.allowedRiskTiers.map((t) => TIER_NAME[t]).join(', ');
    rule(
      'RISK_TIER',
      r.allowedRiskTiers.includes(f.riskTier),
      `risk tier ${TIER_NAME[f.riskTier] ?? 'UNSPECIFIED'}, one of ${names}`,
    );
  }
  return {
    partner_id: partner.partner_id,
    share_ppm: share,
    funded_share_ppm: approved ? share : 0,
    approved,
    reasons,
    funding_account_id: funding?.account_id ?? '',
    servicing_fee_percent: partner.servicing_fee_percent,
  };
}

/**
 * The two sieves together: the bank's outcome, unless a partner declined under REJECT (then
 * REJECTED); under BANK_TAKES_SHARE a declining partner's share is the bank's. The reason added
 * to the application's reasons, if any.
 */
export function twoSieves(
  bank: Outcome,
  decisions: PartnerDecisionRow[],
  policy: PartnerDeclinePolicy,
): { outcome: Outcome; reason?: Reason } {
  const declined = decisions.filter((d) => !d.approved).map((d) => d.partner_id);
  if (!declined.length) return { outcome: bank };
  if (policy === PartnerDeclinePolicy.PARTNER_DECLINE_POLICY_REJECT) {
    return {
      outcome: 'REJECTED',
      reason: {
        code: 'PARTNER_DECLINED',
        points: 0,
        detail: `declined by ${declined.join(', ')}; the product rejects`,
      },
    };
  }
  if (bank === 'REJECTED') return { outcome: bank };
  return {
    outcome: bank,
    reason: {
      code: 'PARTNER_SHARE_TO_BANK',
      points: 0,
      detail: `declined by ${declined.join(', ')}; the bank funds their shares`,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Splits.

/** A loan's partner shares of `principal`: each rounded down to the minor unit; the bank has the rest. */
export function loanPartners(decisions: PartnerDecisionRow[], principal: bigint): LoanPartnerRow[] {
  return decisions
    .filter((d) => d.funded_share_ppm > 0)
    .map((d) => ({
      partner_id: d.partner_id,
      share_ppm: d.funded_share_ppm,
      principal: String((principal * BigInt(d.funded_share_ppm)) / PPM),
      funding_account_id: d.funding_account_id,
      participation_account_id: null,
      servicing_fee_percent: d.servicing_fee_percent,
    }));
}

/** A fee percent ("12.5") in units of 1e-4 percent, i.e. parts per million of the amount (125000). */
export function feeUnits(percent: string): bigint | undefined {
  const m = FEE_PERCENT.exec(percent);
  if (!m) return undefined;
  return BigInt(m[1]!) * 10_000n + BigInt((m[2] ?? '').padEnd(4, '0'));
}

/** n / d rounded half-even (n >= 0, d > 0). */
export function divHalfEven(n: bigint, d: bigint): bigint {
  const q = n / d;
  const r = n - q * d;
  if (2n * r > d || (2n * r === d && q % 2n === 1n)) return q + 1n;
  return q;
}

export interface Collected {
  principal: bigint;
  interest: bigint;
  fee: bigint;
}

/**
 * One repayment's partner splits (see the header). `paidAfter` is the loan's principal and interest
 * repaid including this repayment; `before` what each partner was paid by the earlier repayments
 * (not refused).
 */
export function splitRepayment(
  partners: LoanPartnerRow[],
  repayment: { principal: bigint; interest: bigint },
  paidAfter: { principal: bigint; interest: bigint },
  before: Map<string, Collected>,
  feeAccountId: string,
): PartnerSplitRow[] {
  let principalLeft = repayment.principal;
  let interestLeft = repayment.interest;
  const clamp = (x: bigint, max: bigint) => (x < 0n ? 0n : x > max ? max : x);
  return partners.map((p) => {
    const got = before.get(p.partner_id) ?? { principal: 0n, interest: 0n, fee: 0n };
    const share = BigInt(p.share_ppm);
    const principalTarget = (paidAfter.principal * share) / PPM;
    const funded = BigInt(p.principal);
    const principal = clamp((principalTarget < funded ? principalTarget : funded) - got.principal, principalLeft);
    principalLeft -= principal;
    const interest = clamp((paidAfter.interest * share) / PPM - got.interest, interestLeft);
    interestLeft -= interest;
    const feeTarget = divHalfEven((got.interest + interest) * feeUnits(p.servicing_fee_percent)!, PPM);
    const fee = clamp(feeTarget - got.fee, interest);
    return {
      partner_id: p.partner_id,
      principal: String(principal),
      interest: String(interest),
      fee: String(fee),
      funding_account_id: p.funding_account_id,
      participation_account_id: p.participation_account_id!,
      fee_account_id: feeAccountId,
    };
  });
}

/** What each partner was paid by these repayments' splits. */
export function collectedBy(splits: PartnerSplitRow[][]): Map<string, Collected> {
  const out = new Map<string, Collected>();
  for (const s of splits.flat()) {
    const c = out.get(s.partner_id) ?? { principal: 0n, interest: 0n, fee: 0n };
    out.set(s.partner_id, {
      principal: c.principal + BigInt(s.principal),
      interest: c.interest + BigInt(s.interest),
      fee: c.fee + BigInt(s.fee),
    });
  }
  return out;
}

/** The partners' interest in a repayment (taken off the bank's income leg). */
export const partnerInterest = (splits: PartnerSplitRow[]): bigint =>
  splits.reduce((s, x) => s + BigInt(x.interest), 0n);

// ---------------------------------------------------------------------------------------------
// Ledger transfer ids (derived, so a retried step replays).

export const partnerDisbursementId = (loanId: string, partnerId: string) =>
  hashedUuid(loanId, 'partner-disbursement', partnerId);

export const partnerTransferIds = (repaymentId: string, partnerId: string) => ({
  principal: hashedUuid(repaymentId, 'partner-principal', partnerId),
  interest: hashedUuid(repaymentId, 'partner-interest', partnerId),
  fee: hashedUuid(repaymentId, 'partner-fee', partnerId),
});

// ---------------------------------------------------------------------------------------------
// Messages.

export function partnerToProto(p: PartnerRow): PartnerLender {
  return {
    partnerId: p.partner_id,
    name: p.name,
    fundingAccounts: p.funding_accounts.map((a) => ({ accountId: a.account_id, currency: a.currency, shard: a.shard })),
    servicingFeePercent: p.servicing_fee_percent,
    rules: p.rules,
    createdAt: toTimestamp(p.created_at),
  };
}

export const decisionsToProto = (rows: PartnerDecisionRow[] | undefined): PartnerDecision[] =>
  (rows ?? []).map((d) => ({
    partnerId: d.partner_id,
    sharePpm: d.share_ppm,
    fundedSharePpm: d.funded_share_ppm,
    approved: d.approved,
    reasons: d.reasons.map((r) => ({ code: r.code, points: r.points, detail: r.detail })),
  }));

export const loanPartnersToProto = (loanId: string, rows: LoanPartnerRow[] | undefined): LoanPartnerShare[] =>
  (rows ?? []).map((p) => ({
    partnerId: p.partner_id,
    sharePpm: p.share_ppm,
    principal: BigInt(p.principal),
    fundingAccountId: p.funding_account_id,
    participationAccountId: p.participation_account_id ?? '',
    servicingFeePercent: p.servicing_fee_percent,
    disbursementTransferId: BigInt(p.principal) > 0n ? partnerDisbursementId(loanId, p.partner_id) : '',
  }));

export const splitsToProto = (repaymentId: string, rows: PartnerSplitRow[] | undefined): PartnerSplit[] =>
  (rows ?? []).map((s) => {
    const ids = partnerTransferIds(repaymentId, s.partner_id);
    const [principal, interest, fee] = [BigInt(s.principal), BigInt(s.interest), BigInt(s.fee)];
    return {
      partnerId: s.partner_id,
      principal,
      interest,
      servicingFee: fee,
      principalTransferId: principal > 0n ? ids.principal : '',
      interestTransferId: interest - fee > 0n ? ids.interest : '',
      feeTransferId: fee > 0n ? ids.fee : '',
    };
  });

// ---------------------------------------------------------------------------------------------
// Ledger legs.

/** Chart-of-accounts codes of co-lending (beside the loan codes 7000-7003 in clients/accounts.ts). */
export const PARTNER_CODES = {
  participationAccount: 7010,
  disbursement: 7011,
  principal: 7012,
  interest: 7013,
  servicingFee: 7014,
} as const;

const leg = (id: string, debit: string, credit: string, amount: bigint, code: number, reference: string): Transfer =>
  singlePhase({ id, debitAccountId: debit, creditAccountId: credit, amount, code, reference });

/** Each partner's part of the principal, from its funding account to the loan's participation account. */
export const disbursementLegs = (loanId: string, partners: LoanPartnerRow[]): Transfer[] =>
  partners
    .filter((p) => BigInt(p.principal) > 0n)
    .map((p) =>
      leg(
        partnerDisbursementId(loanId, p.partner_id),
        p.funding_account_id,
        p.participation_account_id!,
        BigInt(p.principal),
        PARTNER_CODES.disbursement,
        `loan ${loanId} partner ${p.partner_id} funding`,
      ),
    );

/**
 * A repayment's partner legs: principal back from participation, interest less the fee, the fee.
 * The borrower pays the whole repayment to the bank (the loan's interest is the bank's income as
 * it accrues, day by day, or when paid); the partners' interest and the servicing fee then come
 * out of the bank's LOAN_INTEREST_INCOME, so the receivable is always cleared in full.
 */
export function repaymentLegs(
  r: { id: string; loan_id: string; income_account_id: string; kind?: number; business_date?: string | null },
  splits: PartnerSplitRow[],
) {
  // A collection by the close of business belongs to the day it was collected for.
  const businessDate =
    r.kind === RepaymentKind.REPAYMENT_KIND_COLLECTION && r.business_date ? r.business_date : undefined;
  const out: Transfer[] = [];
  const push = (t: Transfer) => out.push(businessDate ? { ...t, businessDate } : t);
  for (const s of splits) {
    const ids = partnerTransferIds(r.id, s.partner_id);
    const ref = `loan ${r.loan_id} repayment ${r.id} partner ${s.partner_id}`;
    const [principal, interest, fee] = [BigInt(s.principal), BigInt(s.interest), BigInt(s.fee)];
    if (principal > 0n) {
      push(
        leg(ids.principal, s.participation_account_id, s.funding_account_id, principal, PARTNER_CODES.principal, ref),
      );
    }
    if (interest - fee > 0n) {
      push(leg(ids.interest, r.income_account_id, s.funding_account_id, interest - fee, PARTNER_CODES.interest, ref));
    }
    if (fee > 0n) push(leg(ids.fee, r.income_account_id, s.fee_account_id, fee, PARTNER_CODES.servicingFee, ref));
  }
  return out;
}
