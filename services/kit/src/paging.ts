// Paging for every list RPC: one page-size rule and one page-token codec.
//
// A page token is base64url of a small versioned JSON array: [1, query fingerprint, cursor...].
// The fingerprint is a hash of the RPC and its filters, so a token only continues the query it was
// issued for; the cursor (the last row's sort key, as strings) is checked by the RPC's own parser
// before it reaches SQL. Clients treat tokens as opaque.
import { createHash } from 'node:crypto';
import type { PageRequest } from './gen/corebank/v1/common.js';
import type { Violations } from './errors.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** Longest token a client may send back (ours are far shorter). */
export const MAX_PAGE_TOKEN = 1024;

const TOKEN_VERSION = 1;
const FIELD = 'page.page_token';

export function pageSize(p: { pageSize: number } | undefined, v: Violations): number {
  const size = p?.pageSize || DEFAULT_PAGE_SIZE;
  if (size > MAX_PAGE_SIZE) v.add('page.page_size', `must be at most ${MAX_PAGE_SIZE}`);
  return size;
}

/** What a token is tied to: the RPC and the filters of its query (anything JSON-able; bigints allowed). */
export interface PageQuery {
  rpc: string;
  filters: readonly unknown[];
}

function fingerprint(q: PageQuery): string {
  const json = JSON.stringify([q.rpc, ...q.filters], (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  return createHash('sha256').update(json).digest('base64url').slice(0, 16);
}

/** The token that continues `query` after `cursor` (the last row's sort key). */
export function encodePageToken(query: PageQuery, cursor: readonly string[]): string {
  return Buffer.from(JSON.stringify([TOKEN_VERSION, fingerprint(query), ...cursor])).toString('base64url');
}

/**
 * The cursor a token carries, parsed by `parse` (undefined: not a cursor of this RPC); undefined
 * for an empty token or one that is bad, which is reported on page.page_token.
 */
export function decodePageToken<T>(
  v: Violations,
  token: string,
  query: PageQuery,
  parse: (cursor: string[]) => T | undefined,
): T | undefined {
  if (!token) return undefined;
  const bad = () => v.add(FIELD, 'is not a page token');
  if (token.length > MAX_PAGE_TOKEN || !/^[A-Za-z0-9_-]+$/.test(token)) return (bad(), undefined);
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return (bad(), undefined);
  }
  if (
    !Array.isArray(parts) ||
    parts[0] !== TOKEN_VERSION ||
    typeof parts[1] !== 'string' ||
    !parts.slice(2).every((p) => typeof p === 'string')
  ) {
    return (bad(), undefined);
  }
  if (parts[1] !== fingerprint(query)) {
    v.add(FIELD, 'is not a token for this query');
    return undefined;
  }
  const cursor = parse(parts.slice(2) as string[]);
  if (cursor === undefined) bad();
  return cursor;
}

/** Page size and cursor of a list request, both checked: what every list RPC starts with. */
export function readPage<T>(
  v: Violations,
  p: PageRequest | undefined,
  query: PageQuery,
  parse: (cursor: string[]) => T | undefined,
): { size: number; after: T | undefined } {
  return { size: pageSize(p, v), after: decodePageToken(v, p?.pageToken ?? '', query, parse) };
}

/** Cursor parts: a decimal integer that fits a bigint column (>= 0), a lower-case UUID. */
export const cursorInt = (s: string | undefined): bigint | undefined =>
  s !== undefined && /^\d{1,19}$/.test(s) && BigInt(s) <= 9_223_372_036_854_775_807n ? BigInt(s) : undefined;
export const cursorUuid = (s: string | undefined): string | undefined =>
  s !== undefined && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s) ? s : undefined;
