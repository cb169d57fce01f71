// How `npm run up` starts and stops the bank: named steps, each announced, each bounded, and one
// stack of things to stop. Whatever ends the launcher (Ctrl-C, SIGTERM, a step that fails or
// takes too long) stops what was started, in reverse order of starting: the services drain while
// PostgreSQL and nats-server are still there, and those two go last.

const duration = (ms: number) => (ms < 10_000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`);

export class StepTimeout extends Error {
  override name = 'StepTimeout';
}

/** A step that failed by itself: its name and why. */
export class StepFailed extends Error {
  override name = 'StepFailed';
  constructor(what: string, cause: unknown) {
    super(`${what} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The launcher was asked to stop (a signal) while it was starting. */
export class Interrupted extends Error {
  override name = 'Interrupted';
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

export interface StartupOptions {
  /** Prints a progress line. */
  say: (line: string) => void;
  /** A step that takes longer fails the start (default 120 s). */
  stepTimeoutMs?: number;
  /** A step still running after this long says so, and again after each further interval (default 10 s). */
  stillWaitingMs?: number;
  /** How long one stop may take before the next one runs anyway (default 20 s). */
  stopTimeoutMs?: number;
  /**
   * After an interrupt or a timeout, how long the step may take to undo what it began and register
   * what it finished starting, so that nothing started late is left out of the stop (default 10 s).
   */
  settleMs?: number;
}

export class Startup {
  private readonly abort = new AbortController();
  private readonly stops: { what: string; stop: () => Promise<unknown> }[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly o: StartupOptions) {}

  /** Aborted when the launcher is told to stop: steps that take it give up at once and clean up. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Asks the start to end: the running step fails with Interrupted. */
  interrupt(signal: NodeJS.Signals): void {
    if (!this.abort.signal.aborted) this.abort.abort(new Interrupted(signal));
  }

  /** Something started that must be stopped; stops run last-registered first. */
  onStop(what: string, stop: () => Promise<unknown>): void {
    this.stops.push({ what, stop });
  }

  /**
   * Runs one step: says so, says again while it is still running, and fails when it takes longer
   * than the bound or the launcher is interrupted. The step gets a signal that aborts in both
   * cases, so that it can stop what it began; it is then given settleMs to do so.
   */
  async step<T>(what: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.abort.signal.throwIfAborted();
    const started = Date.now();
    const limit = this.o.stepTimeoutMs ?? 120_000;
    this.o.say(`${what}...`);
    const own = new AbortController();
    const stopOwn = () => own.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', stopOwn, { once: true });
    const timer = setTimeout(
      () => own.abort(new StepTimeout(`${what}: not done after ${duration(limit)}; giving up`)),
      limit,
    );
    const still = setInterval(
      () => this.o.say(`still waiting on: ${what} (${Math.round((Date.now() - started) / 1000)} s)`),
      this.o.stillWaitingMs ?? 10_000,
    );
    const cut = new Promise<{ cut: unknown }>((resolve) => {
      const onCut = () => resolve({ cut: own.signal.reason });
      if (own.signal.aborted) onCut();
      else own.signal.addEventListener('abort', onCut, { once: true });
    });
    try {
      const work = run(own.signal).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      const outcome = await Promise.race([work, cut]);
      if ('value' in outcome) return outcome.value;
      // A step that failed because it was cut short reports why it was cut, not its own words.
      if ('error' in outcome) throw own.signal.aborted ? own.signal.reason : new StepFailed(what, outcome.error);
      await Promise.race([work, new Promise((r) => setTimeout(r, this.o.settleMs ?? 10_000).unref())]);
      throw outcome.cut;
    } finally {
      clearTimeout(timer);
      clearInterval(still);
      this.abort.signal.removeEventListener('abort', stopOwn);
    }
  }

  /** Stops everything registered, newest first, each bounded; runs once however often it is called. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const { what, stop } of this.stops.splice(0).reverse()) {
        this.o.say(`stopping ${what}`);
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            stop(),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new StepTimeout(`not stopped after ${duration(this.o.stopTimeoutMs ?? 20_000)}`)),
                this.o.stopTimeoutMs ?? 20_000,
              );
            }),
          ]);
        } catch (err) {
          this.o.say(`stopping ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.stopping;
  }
}
