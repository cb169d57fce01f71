// The one retry delay of the platform: exponential from `baseMs`, capped at `maxMs`, with "equal
// jitter" (a random half on top of a fixed half), so that many clients failing at the same
// moment (a shard restarting, NATS going away) do not all come back at the same moment, yet
// none retries sooner than half its step.

export interface BackoffOptions {
  /** The delay of attempt 0 (before jitter). */
  baseMs: number;
  /** No delay exceeds this. */
  maxMs: number;
}

/** The delay before retry number `attempt` (0 for the first retry), in whole milliseconds. */
export function backoffMs(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  // Capping the exponent keeps 2 ** n finite however many times a step has failed.
  const step = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Resolves after `ms`; rejects with the signal's reason at once when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => (clearTimeout(timer), reject(signal!.reason));
    const timer = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
