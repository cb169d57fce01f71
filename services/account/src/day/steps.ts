// The close of business's steps and how a step's work is cut into chunks. A chunk is one shard's
// step over a range of entity ids; every step is idempotent per (business date, step, entity), so
// a chunk that runs twice (redelivered, or re-run after a crash) books nothing twice.
import type { Shard } from '@corebank/kit';

/** The steps of a day, in the order they run (each waits for the one before on every shard). */
export const STEPS = ['loans', 'deposits', 'gl'] as const;
export type StepName = (typeof STEPS)[number];

export interface StepTotal {
  name: string;
  currency: string;
  amount: bigint;
}

export interface StepResult {
  /** Entities processed (loans, accounts, GL accounts). */
  items: number;
  /** Sums to reconcile with the journal (interest accrued, posted, ...), per currency. */
  totals: StepTotal[];
}

export interface ChunkWork {
  date: string;
  shard: Shard;
  /** Entities whose id is > after and <= upTo ('' : open end). */
  after: string;
  upTo: string;
}

export type StepRunner = (w: ChunkWork) => Promise<StepResult>;

const FIRST = (n: number) => n.toString(16).padStart(4, '0');
const TAIL = 'ffff-ffff-ffff-ffff-ffffffffffff';

/**
 * `n` ranges covering every UUID: by the first four hex digits (ids are hashes, so the ranges are
 * even). Chunk i holds ids > after and <= upTo; the first starts open, the last ends open.
 */
export function idRanges(n: number): [string, string][] {
  const bounds = Array.from({ length: n + 1 }, (_, i) => Math.floor((i * 0x10000) / n));
  return Array.from({ length: n }, (_, i) => [
    i === 0 ? '' : `${FIRST(bounds[i]! - 1)}${TAIL}`,
    i === n - 1 ? '' : `${FIRST(bounds[i + 1]! - 1)}${TAIL}`,
  ]);
}

/** Adds totals of the same name and currency. */
export function sumTotals(lists: StepTotal[][]): StepTotal[] {
  const by = new Map<string, StepTotal>();
  for (const t of lists.flat()) {
    const k = `${t.name}\u0000${t.currency}`;
    const had = by.get(k);
    by.set(k, had ? { ...had, amount: had.amount + t.amount } : { ...t });
  }
  return [...by.values()].sort((a, b) => a.name.localeCompare(b.name) || a.currency.localeCompare(b.currency));
}
