// The admission gate on its own, with a clock the test moves: the in-flight limit, the share of
// it kept for reads, and each channel's token bucket, with the retry hint a shed call carries.
import { describe, expect, it } from 'vitest';
import { ADAPT_WINDOW_MS, AdmissionGate, DomainError, loadConfig, baseSpec, ConfigError } from '@corebank/kit';
import { testAuth } from '@corebank/kit/testing';

function shedBy(f: () => void): DomainError {
  try {
    f();
  } catch (err) {
    return err as DomainError;
  }
  throw new Error('the call was admitted');
}

describe('admission gate', () => {
  it('sheds writes beyond their share and keeps the reserve for reads', () => {
    const gate = new AdmissionGate('t', { maxInFlight: 10, readReservePercent: 30, channelRates: new Map() });
    for (let i = 0; i < 7; i++) gate.enter(false);
    const e = shedBy(() => gate.enter(false));
    expect(e).toMatchObject({ code: 'RESOURCE_EXHAUSTED', reason: 'OVERLOADED' });
    expect(e.retryAfterMs).toBeGreaterThanOrEqual(50);
    expect(e.metadata.retry_after_ms).toBe(String(e.retryAfterMs));
    // Reads use the three reserved slots, then they are shed too.
    for (let i = 0; i < 3; i++) gate.enter(true);
    expect(shedBy(() => gate.enter(true)).reason).toBe('OVERLOADED');
    expect(gate.current).toBe(10);
    // A call that leaves frees its slot.
    gate.leave(true);
    gate.leave(true);
    gate.leave(true);
    gate.leave(false);
    gate.enter(false);
    expect(gate.current).toBe(7);
  });

  it('adapts the write limit to the latency target: down while admitted writes are slow, up while they are fast', () => {
    let now = 0;
    const gate = new AdmissionGate(
      't',
      { maxInFlight: 80, readReservePercent: 20, channelRates: new Map(), latencyTargetMs: 100 },
      () => now,
    );
    expect(gate.currentWriteLimit).toBe(64);
    /** One window: the limit's worth of writes in flight, one more shed, all leaving after `ms`. */
    const window = (ms: number) => {
      const n = gate.currentWriteLimit;
      for (let i = 0; i < n; i++) gate.enter(false);
      expect(shedBy(() => gate.enter(false)).reason).toBe('OVERLOADED');
      // All of them in this window: the last one to leave closes it.
      for (let i = 0; i < n - 1; i++) gate.leave(false, ms);
      now += ADAPT_WINDOW_MS;
      gate.leave(false, ms);
    };
    // Slow writes at the limit: it falls by a fifth a window, to an eighth of the ceiling (8).
    window(300);
    expect(gate.currentWriteLimit).toBe(51);
    for (let i = 0; i < 20; i++) window(300);
    expect(gate.currentWriteLimit).toBe(8);
    // Reads keep every slot: 80 at once while writes are held to 8.
    for (let i = 0; i < 80; i++) gate.enter(true);
    expect(shedBy(() => gate.enter(true)).reason).toBe('OVERLOADED');
    for (let i = 0; i < 80; i++) gate.leave(true);
    // Fast writes that meet the limit raise it by a tenth (at least one), up to the ceiling.
    window(20);
    expect(gate.currentWriteLimit).toBe(9);
    for (let i = 0; i < 60; i++) window(20);
    expect(gate.currentWriteLimit).toBe(64);
    // Slow writes that never meet the limit leave it alone: it is not what makes them slow.
    now += ADAPT_WINDOW_MS;
    gate.enter(false);
    now += ADAPT_WINDOW_MS;
    gate.leave(false, 5_000);
    expect(gate.currentWriteLimit).toBe(64);
  });

  it('keeps the fixed limit without a latency target', () => {
    let now = 0;
    const gate = new AdmissionGate(
      't',
      { maxInFlight: 10, readReservePercent: 20, channelRates: new Map() },
      () => now,
    );
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 8; j++) gate.enter(false);
      expect(shedBy(() => gate.enter(false)).reason).toBe('OVERLOADED');
      now += ADAPT_WINDOW_MS;
      for (let j = 0; j < 8; j++) gate.leave(false, 10_000);
    }
    expect(gate.currentWriteLimit).toBe(8);
  });

  it('does not limit at 0', () => {
    const gate = new AdmissionGate('t', { maxInFlight: 0, readReservePercent: 20, channelRates: new Map() });
    for (let i = 0; i < 10_000; i++) gate.enter(false);
    expect(gate.current).toBe(10_000);
  });

  it('gives each channel a bucket of one second of its rate, refilled with time', () => {
    let now = 0;
    const gate = new AdmissionGate(
      't',
      {
        maxInFlight: 0,
        readReservePercent: 0,
        channelRates: new Map([
          ['mobile', 5],
          ['*', 2],
        ]),
      },
      () => now,
    );
    for (let i = 0; i < 5; i++) gate.charge('mobile');
    const e = shedBy(() => gate.charge('mobile'));
    expect(e).toMatchObject({ code: 'RESOURCE_EXHAUSTED', reason: 'RATE_LIMITED' });
    expect(e.retryAfterMs).toBe(200); // one token of 5 per second
    // Other channels have buckets of their own ('*': 2 per second each).
    gate.charge('web');
    gate.charge('web');
    expect(shedBy(() => gate.charge('web')).reason).toBe('RATE_LIMITED');
    gate.charge('branch');
    now += 200;
    gate.charge('mobile');
    expect(shedBy(() => gate.charge('mobile')).retryAfterMs).toBe(200);
    // A long pause refills at most one second's worth.
    now += 60_000;
    for (let i = 0; i < 5; i++) gate.charge('mobile');
    expect(shedBy(() => gate.charge('mobile')).reason).toBe('RATE_LIMITED');
  });

  it('leaves channels not named unlimited when there is no "*"', () => {
    const gate = new AdmissionGate('t', {
      maxInFlight: 0,
      readReservePercent: 0,
      channelRates: new Map([['batch', 1]]),
    });
    for (let i = 0; i < 1000; i++) gate.charge('mobile');
    gate.charge('batch');
    expect(shedBy(() => gate.charge('batch')).reason).toBe('RATE_LIMITED');
  });

  it('reads its limits from the environment, naming a bad variable', async () => {
    const env = (await testAuth()).env();
    const c = loadConfig(baseSpec, { ...env, CHANNEL_RATE_LIMITS: 'mobile=500, *=2000' });
    expect(c.admissionMaxInFlight).toBe(512);
    expect([...c.channelRateLimits]).toEqual([
      ['mobile', 500],
      ['*', 2000],
    ]);
    expect(() => loadConfig(baseSpec, { ...env, CHANNEL_RATE_LIMITS: 'mobile=fast' })).toThrow(ConfigError);
    expect(() => loadConfig(baseSpec, { ...env, CHANNEL_RATE_LIMITS: 'mobile=0' })).toThrow(/CHANNEL_RATE_LIMITS/);
    expect(() => loadConfig(baseSpec, { ...env, ADMISSION_READ_RESERVE_PERCENT: '95' })).toThrow(
      /ADMISSION_READ_RESERVE_PERCENT/,
    );
  });
});
