// Progress of long-running work on a terminal (the close of business, bulk loads, benchmarks):
// one bar per task with done/total, rate and ETA, redrawn in place on a TTY and printed as a
// plain line now and then (and at the end) when the output is a file or a CI log.

export interface ProgressLine {
  label: string;
  done: number;
  total: number;
  /** What `done` counts for the rate, e.g. "loans/s"; the rate is items per second. */
  items?: number;
  unit?: string;
  startedAt: number;
  finishedAt?: number;
}

const fmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** One line: `label [#####.....]  50%  5/10  1,234 loans/s  ETA 0:04` (or its time once done). */
export function renderProgress(p: ProgressLine, now = Date.now(), width = 24): string {
  const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const filled = Math.round(fraction * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const elapsed = (p.finishedAt ?? now) - p.startedAt;
  const rate = elapsed > 0 && p.items !== undefined ? (p.items * 1000) / elapsed : undefined;
  const eta =
    p.finishedAt !== undefined
      ? `took ${duration(elapsed)}`
      : fraction > 0
        ? `ETA ${duration((elapsed * (1 - fraction)) / fraction)}`
        : 'ETA -';
  return [
    p.label.padEnd(10),
    bar,
    `${String(Math.round(fraction * 100)).padStart(3)}%`,
    `${fmt.format(p.done)}/${fmt.format(p.total)}`,
    rate !== undefined ? `${fmt.format(rate)} ${p.unit ?? 'items/s'}` : '',
    eta,
  ]
    .filter(Boolean)
    .join('  ');
}

/** Draws lines in place on a TTY; elsewhere prints them every `plainEveryMs` and on finish. */
export class ProgressBoard {
  private drawn = 0;
  private lastPlain = 0;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 10_000,
  ) {}

  draw(lines: ProgressLine[], final = false): void {
    const text = lines.map((l) => renderProgress(l));
    if (this.out.isTTY) {
      if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A`);
      this.out.write(text.map((t) => `\x1b[2K${t}\n`).join(''));
      this.drawn = text.length;
      return;
    }
    const now = Date.now();
    if (final || now - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = now;
      this.out.write(text.map((t) => `${t}\n`).join(''));
    }
  }
}
