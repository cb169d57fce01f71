// The application scorecard: points from the applicant's risk tier, the bank's existing exposure
// to them, the age of the disbursement account, the turnover of their deposit accounts and, where
// declared, the first instalment against their monthly income; cut-offs turn the score into a
// decision. Pure: the service gathers the facts, this scores them, and every rule that gave
// points is a reason (code, points, detail) stored with the decision.
import { ConfigError } from '@corebank/kit';

export type Tier = 'LOW' | 'MEDIUM' | 'HIGH';
export type Outcome = 'APPROVED' | 'REFERRED' | 'REJECTED';

/** A band: matches when the value is at most `upTo` (ascending bands), or at least `atLeast` (descending bands). */
interface UpTo {
  upTo?: number;
  points: number;
}
interface AtLeast {
  atLeast: number;
  points: number;
}

export interface Scorecard {
  riskTier: Record<Tier, number>;
  /** Principal outstanding of the customer's loans at this bank (minor units), ascending bands; the last has no upTo. */
  exposure: UpTo[];
  /** Days since the disbursement account was opened, descending bands; the last is atLeast 0. */
  accountAgeDays: AtLeast[];
  /** Credits posted to the customer's deposit accounts, as a percent of the amount applied for, descending bands. */
  turnoverPercent: AtLeast[];
  /** The largest instalment as a percent of the declared monthly income, ascending bands; the last has no upTo. */
  incomePercent: UpTo[];
  /** Points when no income is declared. */
  incomeNotDeclared: number;
  /** A score at or above approveAt is APPROVED; at or above referAt REFERRED; below, REJECTED. */
  approveAt: number;
  referAt: number;
}

export const DEFAULT_SCORECARD: Scorecard = {
  riskTier: { LOW: 30, MEDIUM: 15, HIGH: -30 },
  exposure: [{ upTo: 0, points: 15 }, { upTo: 2_000_000, points: 0 }, { points: -30 }],
  accountAgeDays: [
    { atLeast: 365, points: 20 },
    { atLeast: 90, points: 10 },
    { atLeast: 0, points: 0 },
  ],
  turnoverPercent: [
    { atLeast: 100, points: 20 },
    { atLeast: 25, points: 5 },
    { atLeast: 0, points: -10 },
  ],
  incomePercent: [{ upTo: 30, points: 20 }, { upTo: 50, points: 0 }, { points: -40 }],
  incomeNotDeclared: 0,
  approveAt: 50,
  referAt: 20,
};

export interface Facts {
  riskTier: Tier;
  exposure: bigint;
  accountAgeDays: number;
  /** Credits posted to the customer's deposit accounts (minor units). */
  turnover: bigint;
  amount: bigint;
  /** The largest instalment of the schedule (minor units). */
  instalment: bigint;
  /** Declared monthly income (minor units); 0 = not declared. */
  monthlyIncome: bigint;
}

export interface Reason {
  code: string;
  points: number;
  detail: string;
}

export interface Decision {
  outcome: Outcome;
  score: number;
  reasons: Reason[];
}

const upTo = (bands: UpTo[], value: bigint): number =>
  (bands.find((b) => b.upTo === undefined || value <= BigInt(b.upTo)) ?? bands.at(-1)!).points;
const atLeast = (bands: AtLeast[], value: bigint): number =>
  (bands.find((b) => value >= BigInt(b.atLeast)) ?? bands.at(-1)!).points;

/** value / of as a whole percent, rounded down (of > 0). */
const percent = (value: bigint, of: bigint): bigint => (value * 100n) / of;

export function score(card: Scorecard, f: Facts): Decision {
  const reasons: Reason[] = [];
  reasons.push({
    code: `RISK_TIER_${f.riskTier}`,
    points: card.riskTier[f.riskTier],
    detail: `risk tier ${f.riskTier}`,
  });
  reasons.push({
    code: f.exposure === 0n ? 'NO_EXISTING_EXPOSURE' : 'EXISTING_EXPOSURE',
    points: upTo(card.exposure, f.exposure),
    detail: `principal outstanding at this bank ${f.exposure}`,
  });
  reasons.push({
    code: 'ACCOUNT_AGE',
    points: atLeast(card.accountAgeDays, BigInt(f.accountAgeDays)),
    detail: `disbursement account opened ${f.accountAgeDays} days ago`,
  });
  const turnover = percent(f.turnover, f.amount);
  reasons.push({
    code: 'ACCOUNT_TURNOVER',
    points: atLeast(card.turnoverPercent, turnover),
    detail: `credits ${f.turnover} = ${turnover}% of the amount`,
  });
  if (f.monthlyIncome > 0n) {
    const burden = percent(f.instalment, f.monthlyIncome);
    reasons.push({
      code: 'INSTALMENT_TO_INCOME',
      points: upTo(card.incomePercent, burden),
      detail: `instalment ${f.instalment} = ${burden}% of declared monthly income`,
    });
  } else {
    reasons.push({ code: 'INCOME_NOT_DECLARED', points: card.incomeNotDeclared, detail: 'no income declared' });
  }
  const total = reasons.reduce((s, r) => s + r.points, 0);
  const outcome: Outcome = total >= card.approveAt ? 'APPROVED' : total >= card.referAt ? 'REFERRED' : 'REJECTED';
  return { outcome, score: total, reasons };
}

// ---------------------------------------------------------------------------------------------
// LOAN_SCORECARD: the scorecard as JSON, checked at start-up.

const VAR = 'LOAN_SCORECARD';
const isPoints = (n: unknown): n is number => Number.isSafeInteger(n) && Math.abs(n as number) <= 1000;
const isBound = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

function upToBands(name: string, raw: unknown): UpTo[] {
  if (!Array.isArray(raw) || raw.length < 1 || raw.length > 20) throw new ConfigError(VAR, `${name}: 1 to 20 bands`);
  let last = -1;
  raw.forEach((b: { upTo?: unknown; points?: unknown }, i) => {
    if (!isPoints(b?.points)) throw new ConfigError(VAR, `${name}[${i}].points: an integer -1000 to 1000`);
    const final = i === raw.length - 1;
    if (final ? b.upTo !== undefined : !isBound(b.upTo) || (b.upTo as number) <= last) {
      throw new ConfigError(VAR, `${name}[${i}].upTo: ascending non-negative integers, absent on the last band`);
    }
    if (!final) last = b.upTo as number;
  });
  return raw as UpTo[];
}

function atLeastBands(name: string, raw: unknown): AtLeast[] {
  if (!Array.isArray(raw) || raw.length < 1 || raw.length > 20) throw new ConfigError(VAR, `${name}: 1 to 20 bands`);
  let last = Infinity;
  raw.forEach((b: { atLeast?: unknown; points?: unknown }, i) => {
    if (!isPoints(b?.points)) throw new ConfigError(VAR, `${name}[${i}].points: an integer -1000 to 1000`);
    if (!isBound(b?.atLeast) || (b.atLeast as number) >= last) {
      throw new ConfigError(VAR, `${name}[${i}].atLeast: descending non-negative integers`);
    }
    last = b.atLeast as number;
  });
  if ((raw.at(-1) as AtLeast).atLeast !== 0) throw new ConfigError(VAR, `${name}: the last band must be atLeast 0`);
  return raw as AtLeast[];
}

/** Parses LOAN_SCORECARD (empty: the default scorecard); a bad one names what is wrong. */
export function parseScorecard(raw: string): Scorecard {
  if (!raw.trim()) return DEFAULT_SCORECARD;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new ConfigError(VAR, 'is not valid JSON');
  }
  if (typeof j !== 'object' || j === null) throw new ConfigError(VAR, 'must be a JSON object');
  const known = Object.keys(DEFAULT_SCORECARD);
  const unknown = Object.keys(j).filter((k) => !known.includes(k));
  if (unknown.length) throw new ConfigError(VAR, `unknown keys: ${unknown.join(', ')}`);
  const card = { ...DEFAULT_SCORECARD, ...j } as Scorecard;
  const tiers = card.riskTier as unknown as Record<string, unknown>;
  for (const t of ['LOW', 'MEDIUM', 'HIGH']) {
    if (!isPoints(tiers?.[t])) throw new ConfigError(VAR, `riskTier.${t}: an integer -1000 to 1000`);
  }
  upToBands('exposure', card.exposure);
  atLeastBands('accountAgeDays', card.accountAgeDays);
  atLeastBands('turnoverPercent', card.turnoverPercent);
  upToBands('incomePercent', card.incomePercent);
  if (!isPoints(card.incomeNotDeclared)) throw new ConfigError(VAR, 'incomeNotDeclared: an integer -1000 to 1000');
  if (!Number.isSafeInteger(card.approveAt) || !Number.isSafeInteger(card.referAt) || card.referAt > card.approveAt) {
    throw new ConfigError(VAR, 'approveAt and referAt: integers with referAt <= approveAt');
  }
  return card;
}
