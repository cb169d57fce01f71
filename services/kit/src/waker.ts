// How a background loop sleeps: until its next due time or a wake-up (a NOTIFY, a step deferred
// in this process), with a cap as the safety net. One timer and one pending promise at most, per
// loop, however many times it is woken: nothing accumulates between sweeps.

export class Waker {
  /** The earliest time (epoch ms) someone asked the loop to run at, not yet consumed by a sleep. */
  private due = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private resolve: (() => void) | undefined;

  /** Ends the current sleep now, or makes the next one return at once. */
  wake(): void {
    this.wakeAt(0);
  }

  /**
   * Makes the loop run by `at` (epoch ms) at the latest. A later time than one already asked for
   * changes nothing: loops re-read their due times (from the database) after every wake.
   */
  wakeAt(at: number): void {
    if (at >= this.due) return;
    this.due = at;
    if (this.resolve) this.arm();
  }

  /**
   * Whether a wake-up came that no sleep has consumed yet (a due time now or past); consumes it.
   * For a loop that would go on at once anyway and need not sleep first.
   */
  takeWake(): boolean {
    if (this.resolve || this.due > Date.now()) return false;
    this.due = Infinity;
    return true;
  }

  /** Sleeps at most maxMs, less when a wake time comes first. One sleeper at a time. */
  sleep(maxMs: number): Promise<void> {
    this.due = Math.min(this.due, Date.now() + maxMs);
    return new Promise<void>((resolve) => {
      this.resolve = resolve;
      this.arm();
    });
  }

  /** Whether a sleep is in progress (for tests and metrics). */
  get sleeping(): boolean {
    return this.resolve !== undefined;
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), Math.max(0, this.due - Date.now()));
  }

  private fire(): void {
    const resolve = this.resolve;
    this.resolve = undefined;
    this.timer = undefined;
    this.due = Infinity;
    resolve?.();
  }
}
