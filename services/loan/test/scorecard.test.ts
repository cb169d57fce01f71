// The scorecard module alone: band matching, cut-offs, and LOAN_SCORECARD's checks.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCORECARD, parseScorecard, score } from '../src/scorecard.js';

describe('scorecard', () => {
  const facts = {
    riskTier: 'MEDIUM' as const,
    exposure: 0n,
    accountAgeDays: 400,
    turnover: 1_000_000n,
    amount: 500_000n,
    instalment: 43_243n,
    monthlyIncome: 300_000n,
  };

  it('adds the points of every rule and applies the cut-offs (default scorecard)', () => {
    // MEDIUM 15, no exposure 15, 400 days >= 365: 20, turnover 200 % >= 100: 20,
    // instalment 43,243 / 300,000 = 14 % <= 30: 20. Total 90 >= 50: APPROVED.
    const d = score(DEFAULT_SCORECARD, facts);
    expect(d.score).toBe(90);
    expect(d.outcome).toBe('APPROVED');
    expect(d.reasons.map((r) => [r.code, r.points])).toEqual([
      ['RISK_TIER_MEDIUM', 15],
      ['NO_EXISTING_EXPOSURE', 15],
      ['ACCOUNT_AGE', 20],
      ['ACCOUNT_TURNOVER', 20],
      ['INSTALMENT_TO_INCOME', 20],
    ]);
    // HIGH -30, exposure 2,000,001 > 2,000,000: -30, 10 days: 0, turnover 0 %: -10, no income: 0 = -70.
    const worst = score(DEFAULT_SCORECARD, {
      ...facts,
      riskTier: 'HIGH',
      exposure: 2_000_001n,
      accountAgeDays: 10,
      turnover: 0n,
      monthlyIncome: 0n,
    });
    expect([worst.score, worst.outcome]).toEqual([-70, 'REJECTED']);
    // Band edges: exposure exactly 2,000,000 is the middle band (0); 90 days is 10 points.
    const edge = score(DEFAULT_SCORECARD, { ...facts, exposure: 2_000_000n, accountAgeDays: 90 });
    expect(edge.reasons.find((r) => r.code === 'EXISTING_EXPOSURE')!.points).toBe(0);
    expect(edge.reasons.find((r) => r.code === 'ACCOUNT_AGE')!.points).toBe(10);
  });

  it('parses LOAN_SCORECARD, naming what is wrong', () => {
    expect(parseScorecard('')).toBe(DEFAULT_SCORECARD);
    expect(parseScorecard('{"approveAt": 70}').approveAt).toBe(70);
    const bad: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['{"bogus": 1}', /unknown keys: bogus/],
      ['{"riskTier": {"LOW": 1, "MEDIUM": 2}}', /riskTier.HIGH/],
      ['{"exposure": [{"upTo": 5, "points": 1}, {"upTo": 3, "points": 1}, {"points": 0}]}', /exposure\[1\].upTo/],
      ['{"accountAgeDays": [{"atLeast": 10, "points": 1}]}', /last band must be atLeast 0/],
      ['{"approveAt": 10, "referAt": 20}', /referAt <= approveAt/],
      ['{"incomeNotDeclared": 5000}', /incomeNotDeclared/],
    ];
    for (const [raw, message] of bad) expect(() => parseScorecard(raw)).toThrow(message);
  });
});
