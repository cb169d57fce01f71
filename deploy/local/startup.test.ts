// The launcher's steps and stops (startup.ts) without any server: a step is announced, says
// what it still waits on, gives up after its bound, and whatever was started is stopped newest
// first, including what a step cut short finished starting.
import { describe, expect, it } from 'vitest';
import { Interrupted, StepFailed, Startup, StepTimeout } from './startup.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const never = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));

function startup(o: Partial<ConstructorParameters<typeof Startup>[0]> = {}) {
  const lines: string[] = [];
  return { lines, s: new Startup({ say: (l) => lines.push(l), settleMs: 500, ...o }) };
}

describe('Startup', () => {
  it('announces each step and returns its value', async () => {
    const { s, lines } = startup();
    expect(await s.step('migrating', async () => 42)).toBe(42);
    expect(lines).toEqual(['migrating...']);
  });

  it('says which step it still waits on, then gives up after the bound, aborting the step', async () => {
    const { s, lines } = startup({ stepTimeoutMs: 250, stillWaitingMs: 100 });
    let seen: unknown;
    const step = s.step('starting PostgreSQL', (signal) => never(signal).catch((e) => ((seen = e), Promise.reject(e))));
    await expect(step).rejects.toThrow(new StepTimeout('starting PostgreSQL: not done after 250 ms; giving up'));
    expect(seen).toBeInstanceOf(StepTimeout);
    expect(lines[0]).toBe('starting PostgreSQL...');
    expect(lines.filter((l) => l.startsWith('still waiting on: starting PostgreSQL (')).length).toBeGreaterThan(0);
  });

  it('names the step that failed and why', async () => {
    const { s } = startup();
    const step = s.step('creating the databases', async () => {
      throw new Error('connection refused');
    });
    await expect(step).rejects.toThrow(new StepFailed('creating the databases', new Error('connection refused')));
    await expect(s.step('creating the databases', () => Promise.reject(new Error('x')))).rejects.toThrow(
      'creating the databases failed: x',
    );
  });

  it('ends the running step on interrupt and refuses the next one', async () => {
    const { s } = startup();
    const step = s.step('migrating', never);
    setTimeout(() => s.interrupt('SIGINT'), 20);
    await expect(step).rejects.toThrow(Interrupted);
    await expect(s.step('starting the services', async () => 1)).rejects.toThrow(Interrupted);
  });

  it('stops newest first, once, and waits for a step cut short to register what it started', async () => {
    const { s, lines } = startup();
    const order: string[] = [];
    s.onStop('PostgreSQL', async () => void order.push('pg'));
    s.onStop('nats-server', async () => void order.push('nats'));
    // The service's start does not watch the signal: it finishes a moment after the interrupt.
    const step = s.step('starting the account service', async () => {
      await sleep(100);
      s.onStop('the account service', async () => void order.push('account'));
    });
    s.interrupt('SIGTERM');
    await expect(step).rejects.toThrow(Interrupted);
    await Promise.all([s.stop(), s.stop()]);
    expect(order).toEqual(['account', 'nats', 'pg']);
    expect(lines.filter((l) => l.startsWith('stopping '))).toEqual([
      'stopping the account service',
      'stopping nats-server',
      'stopping PostgreSQL',
    ]);
  });

  it('goes on stopping the rest when one stop fails or hangs', async () => {
    const { s, lines } = startup({ stopTimeoutMs: 100 });
    const order: string[] = [];
    s.onStop('PostgreSQL', async () => void order.push('pg'));
    s.onStop('nats-server', () => new Promise(() => undefined));
    s.onStop('the account service', () => Promise.reject(new Error('drain failed')));
    await s.stop();
    expect(order).toEqual(['pg']);
    expect(lines).toContain('stopping the account service failed: drain failed');
    expect(lines).toContain('stopping nats-server failed: not stopped after 100 ms');
  });
});
