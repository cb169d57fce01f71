// The platform's one retry delay: exponential, capped, never below half its step.
import { describe, expect, it } from 'vitest';
import { backoffMs, sleep } from '../src/backoff.js';

describe('backoffMs', () => {
  const o = { baseMs: 100, maxMs: 30_000 };

  it('doubles per attempt between half and all of its step', () => {
    expect([0, 1, 2, 3].map((a) => backoffMs(a, o, () => 0))).toEqual([50, 100, 200, 400]);
    expect([0, 1, 2, 3].map((a) => backoffMs(a, o, () => 1))).toEqual([100, 200, 400, 800]);
  });

  it('never exceeds the cap, however many attempts (no Infinity, no NaN)', () => {
    for (const attempt of [15, 20, 1_000, Number.MAX_SAFE_INTEGER]) {
      expect(backoffMs(attempt, o, () => 1)).toBe(30_000);
      expect(backoffMs(attempt, o, () => 0)).toBe(15_000);
    }
  });

  it('treats a negative attempt as the first', () => {
    expect(backoffMs(-3, o, () => 1)).toBe(100);
  });
});

describe('sleep', () => {
  it('stops waiting when its signal aborts', async () => {
    const abort = new AbortController();
    const started = Date.now();
    const slept = sleep(60_000, abort.signal);
    abort.abort(new Error('stopping'));
    await expect(slept).rejects.toThrow('stopping');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
