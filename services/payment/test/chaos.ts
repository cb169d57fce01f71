// What the crash tests share: a service run as a child process by its command (as in
// production, so SIGKILL kills it between any two instructions) that can be killed and
// restarted, kills at random moments while work is in flight, and channels that retry each
// request with its idempotency key until the service answers.
import { spawn, type ChildProcess } from 'node:child_process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGKILL, resolved once the process has exited (at once when it already has). */
export const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

/** A service process run as in production, `<service>/src/command.ts serve` (from the repository root). */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private tail = '';

  constructor(
    private readonly service: string,
    private readonly env: Record<string, string>,
  ) {}

  /** Starts the process (it listens a moment later); the last 4,000 characters of its stderr are kept. */
  start(): void {
    const c = spawn(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', `services/${this.service}/src/command.ts`, 'serve'],
      {
        env: { ...process.env, ...this.env },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    c.stderr?.on('data', (d: Buffer) => (this.tail = (this.tail + d.toString()).slice(-4000)));
    this.child = c;
  }

  /** SIGKILL, waiting until it has exited. */
  async kill(): Promise<void> {
    if (this.child) await killed(this.child);
  }

  /** SIGKILL and start again at once. */
  async restart(): Promise<void> {
    await this.kill();
    this.start();
  }

  /** The end of what the process (and the ones it replaced) wrote to stderr. */
  get stderr(): string {
    return this.tail;
  }
}

/** count random marks in [from, to), ascending, each at least minGap above the one before. */
export function randomMarks(count: number, from: number, to: number, minGap = 0): number[] {
  const span = to - from - minGap * (count - 1);
  return Array.from({ length: count }, () => from + Math.floor(Math.random() * span))
    .sort((a, b) => a - b)
    .map((m, i) => m + i * minGap);
}

/**
 * Kills and restarts the process at random moments: each time progress() passes the next mark,
 * after a random extra delay of up to maxDelayMs. onRestart runs just after each restart.
 * Resolves with the number of kills.
 */
export async function killAtMarks(
  proc: ServiceProcess,
  marks: number[],
  progress: () => number,
  maxDelayMs = 300,
  onRestart: () => void = () => undefined,
): Promise<number> {
  let kills = 0;
  for (const mark of marks) {
    while (progress() < mark) await sleep(20);
    await sleep(Math.random() * maxDelayMs);
    await proc.restart();
    kills++;
    onRestart();
  }
  return kills;
}

/**
 * Channels submitting requests: each of `concurrency` workers takes the next request and sends
 * it until the call succeeds, waiting retryDelayMs after each failure (a channel retries with the
 * same idempotency key until it gets an answer). `done` counts the answered requests.
 */
export class RetryingChannels<T> {
  done = 0;
  retries = 0;

  constructor(
    private readonly requests: T[],
    private readonly call: (req: T) => Promise<unknown>,
    private readonly retryDelayMs = 250,
  ) {}

  async run(concurrency: number): Promise<void> {
    const queue = [...this.requests];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        for (;;) {
          try {
            await this.call(r);
            break;
          } catch {
            this.retries++;
            await sleep(this.retryDelayMs);
          }
        }
        this.done++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
}
