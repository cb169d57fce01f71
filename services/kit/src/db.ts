// PostgreSQL access: one knex pool per shard. int8 is parsed to bigint here, once, for every service.
import { createHash } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { backoffMs, sleep } from './backoff.js';

pg.types.setTypeParser(pg.types.builtins.INT8, (v) => BigInt(v));

export type Db = Knex;
export type Tx = Knex.Transaction;

/**
 * Each service keeps its tables in a schema named after it, so services can share a shard's
 * database or have one each, and never see one another's tables.
 */
export function createPool(url: string, max: number, applicationName: string, schema: string): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, application_name: applicationName },
    searchPath: [schema],
    pool: { min: 0, max },
    acquireConnectionTimeout: 10_000,
  });
}

/** SQLSTATEs after which a whole transaction may be retried safely. */
const RETRYABLE = new Set(['40001', '40P01', '23505']);

function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && RETRYABLE.has((err as { code?: string }).code ?? '');
}

/**
 * Errors that running the same statements again cannot cure: PostgreSQL refused the data itself
 * (class 22 data exception: out of range, NUL in text, bad encoding; class 23 integrity), the
 * statement is wrong (42) or a function raised (P0), or our own code threw a TypeError or
 * RangeError on it. Anything else (a lost connection, a shutdown, a timeout, lack of resources) is
 * transient. A group commit splits a batch that fails permanently, to find the request at fault.
 */
export function isPermanentFailure(err: unknown): boolean {
  if (err instanceof TypeError || err instanceof RangeError) return true;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && ['22', '23', '42', 'P0'].includes(code.slice(0, 2));
}

/**
 * Errors that say PostgreSQL cannot be reached now, a transient failure (not permanent, above) that
 * a caller should hear as UNAVAILABLE and retry later: SQLSTATE class 08 (connection exception),
 * 57P01-57P03 (shutting down, crashed, not yet accepting connections), a socket refused, reset or
 * timed out, the driver losing its connection, or the pool giving up acquiring one.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, name, message } = err as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof code === 'string' && (/^08[0-9A-Z]{3}$/.test(code) || UNREACHABLE.has(code))) return true;
  if (typeof message !== 'string') return false;
  // knex names its pool's timeout, pg words its lost connections; neither has a code.
  if (name === 'KnexTimeoutError') return message.startsWith('Knex: Timeout acquiring a connection');
  return /^Connection terminated|^Client has encountered a connection error/.test(message);
}

const UNREACHABLE = new Set([
  '57P01',
  '57P02',
  '57P03',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** Runs fn again after serialization failures, deadlocks and unique races, a few times. */
export async function retryOnConflict<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isRetryable(err)) throw err;
      // Short: the transaction that won is usually committed within milliseconds.
      await sleep(backoffMs(i - 1, { baseMs: 10, maxMs: 100 }));
    }
  }
}

/** A row as pg returns it (int8 already bigint): typed where the query is read. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Row = Record<string, any>;

/** Raw bindings may be arrays (for unnest and any()); knex's types do not say so. */
export const bind = (values: unknown[]): Knex.RawBinding[] => values as Knex.RawBinding[];

type RawQuery = (sql: string, bindings?: unknown[]) => Promise<pg.QueryResult>;

// ---------------------------------------------------------------------------------------------
// Prepared statements
//
// The hot path's fixed SQL (a payment order's insert and its saga's steps, a ledger batch's write,
// the audit insert) runs as named prepared statements: PostgreSQL parses and plans each once per
// connection (and settles on a generic plan after five runs, where its cost is no worse than a
// custom plan's) instead of for every call. Measured on the payment path (pg_stat_statements with
// track_planning), planning an order's insert or a saga step took 0.2-0.3 ms a call, a third to
// half of its execution.
// The name is a hash of the SQL text, so a text is prepared under one name in every process and
// two texts never share one. Only for statements whose text comes from a small fixed set: a
// process names at most MAX_PREPARED texts and runs any further ones unnamed, so that a caller
// that builds varying text cannot fill every connection with statements. And only for statements
// that name their result columns: a `select *` or `returning *` planned before a migration adds a
// column fails with "cached plan must not change result type" in a process that outlives it.
// DATABASE_PREPARED_STATEMENTS=false turns them off (a transaction-pooling PgBouncer older than
// 1.21 cannot carry them).

const MAX_PREPARED = 256;
const preparedNames = new Map<string, string>();
let preparing = true;

/** Whether fixed statements are prepared (DATABASE_PREPARED_STATEMENTS; the runtime sets it at start). */
export function usePreparedStatements(on: boolean): void {
  preparing = on;
}

function preparedName(text: string): string | undefined {
  if (!preparing) return undefined;
  let name = preparedNames.get(text);
  if (name === undefined && preparedNames.size < MAX_PREPARED) {
    name = `cb_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    preparedNames.set(text, name);
  }
  return name;
}

/** Runs native SQL ($1, $2, ...) on a connection, as a named prepared statement when it may be. */
function queryNamed(conn: pg.Client, text: string, values: unknown[]): Promise<pg.QueryResult> {
  const name = preparedName(text);
  return name ? conn.query({ name, text, values }) : conn.query(text, values);
}

/** Native texts worked out so far, by their `?` text (a bounded number, like the prepared names). */
const nativeTexts = new Map<string, string>();

/**
 * The native SQL ($1, $2, ...) of a fixed text with `?` bindings, as knex.raw makes it, worked out
 * once per text: knex parses the text again on every call, which was 2 % of the payment service's
 * CPU in the bench's profile. The bindings go to pg as they are (knex passes plain values through
 * unchanged); a binding that knex would write into the text itself (a knex.raw or a query) takes
 * knex's own path every time.
 */
function nativeSql(
  db: Knex | Knex.Transaction,
  sql: string,
  bindings: unknown[],
): { sql: string; bindings: unknown[] } {
  const plain = bindings.every(
    (b) => b !== undefined && typeof b !== 'function' && !(b instanceof Object && 'toSQL' in b),
  );
  const known = plain ? nativeTexts.get(sql) : undefined;
  if (known !== undefined) return { sql: known, bindings };
  const native = db.raw(sql, bind(bindings)).toSQL().toNative();
  if (plain && !sql.includes('??') && nativeTexts.size < MAX_PREPARED * 4) nativeTexts.set(sql, native.sql);
  return { sql: native.sql, bindings: native.bindings as unknown[] };
}

/**
 * Fixed SQL with `?` bindings, as knex.raw takes them, run as a named prepared statement (see
 * above) on the pool's or the transaction's connection. Errors are pg's own (knex would prefix
 * the SQL to their message).
 */
export async function preparedRaw(
  db: Knex | Knex.Transaction,
  sql: string,
  bindings: unknown[],
): Promise<pg.QueryResult> {
  const native = nativeSql(db, sql, bindings);
  const conn = (await db.client.acquireConnection()) as pg.Client;
  try {
    return await queryNamed(conn, native.sql, native.bindings);
  } finally {
    await db.client.releaseConnection(conn);
  }
}

/**
 * A transaction on one pooled connection whose opening statement travels with BEGIN, in one
 * round trip (the simple query protocol). The opening statement therefore takes no parameters:
 * its caller builds it from values it has validated. Later statements take `?` bindings as
 * knex.raw does and run as prepared statements (fixed text only, as for preparedRaw). Retried on
 * serialization failures, deadlocks and unique races, like withRetry.
 */
export function transactionOpenedBy<T>(
  db: Knex,
  opening: string,
  fn: (opened: pg.QueryResult, query: RawQuery) => Promise<T>,
): Promise<T> {
  return retryOnConflict(async () => {
    const conn = (await db.client.acquireConnection()) as pg.Client;
    const query: RawQuery = (sql, bindings = []) => {
      const native = nativeSql(db, sql, bindings);
      return queryNamed(conn, native.sql, native.bindings);
    };
    try {
      const results = (await conn.query(`begin; ${opening}`)) as unknown as pg.QueryResult[];
      const result = await fn(results[1]!, query);
      await conn.query('commit');
      return result;
    } catch (err) {
      await conn.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      await db.client.releaseConnection(conn);
    }
  });
}

/** A uuid[] literal for a statement sent without parameters; refuses anything but UUIDs. */
export function uuidArrayLiteral(ids: string[]): string {
  for (const id of ids) {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id))
      throw new Error(`not a uuid: ${id}`);
  }
  return `'{${ids.join(',')}}'::uuid[]`;
}
