// Counts the round trips this process makes to PostgreSQL, by database and by statement: every
// call of pg's Client.query is one (knex's queries, transactionOpenedBy's `begin; ...` and the
// relay's, alike). A test-only instrument for "how many statements does one operation cost".
import pg from 'pg';

export interface QueryCounts {
  /** Round trips per database name. */
  byDatabase: Map<string, number>;
  /** Round trips per statement text (whitespace collapsed, array literals elided, cut at 90 characters). */
  byText: Map<string, number>;
}

type QueryFn = (this: pg.Client, ...args: unknown[]) => unknown;

/** Starts counting; `stop` puts pg's query back. Counting is process-wide. */
export function countQueries(): { take: () => QueryCounts; reset: () => void; stop: () => void } {
  const proto = pg.Client.prototype as unknown as { query: QueryFn };
  const original = proto.query;
  let counts: QueryCounts = { byDatabase: new Map(), byText: new Map() };
  proto.query = function (this: pg.Client, ...args: unknown[]) {
    const db = this.database ?? '?';
    const first = args[0];
    const raw = typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '?');
    const text = raw
      .replace(/\s+/g, ' ')
      .replace(/'\{[^']*\}'/g, "'{...}'")
      .trim()
      .slice(0, 90);
    counts.byDatabase.set(db, (counts.byDatabase.get(db) ?? 0) + 1);
    counts.byText.set(text, (counts.byText.get(text) ?? 0) + 1);
    return original.apply(this, args);
  };
  return {
    take: () => {
      const out = counts;
      counts = { byDatabase: new Map(), byText: new Map() };
      return out;
    },
    reset: () => void (counts = { byDatabase: new Map(), byText: new Map() }),
    stop: () => void (proto.query = original),
  };
}
