// ListCustomers: every shard is asked for its first page_size + 1 matches after the cursor, in the
// same order (search_name byte-wise, then id); the answers are merged and the first page_size
// returned. The cursor is the last (search_name, id) returned, so the next page continues
// exactly where this one stopped on every shard, whatever the shards' sizes.
import {
  cursorUuid,
  encodePageToken,
  readPage,
  type PageQuery,
  type ShardRouter,
  type Violations,
} from '@corebank/kit';
import { CustomerKind, type Customer, type ListCustomersRequest } from '@corebank/kit/gen/corebank/v1/customer';
import { identityHash } from './identity.js';
import { CUSTOMER_COLUMNS, customerToProto, foldName, type CustomerRow } from './proto.js';

interface Cursor {
  /** search_name of the last customer returned. */
  n: string;
  /** its id. */
  i: string;
}

/** What a page token is tied to: the filters, identity numbers only as their keyed hashes. */
function searchQuery(req: ListCustomersRequest, key: Uint8Array): PageQuery {
  return {
    rpc: 'ListCustomers',
    filters: [
      foldName(req.namePrefix),
      req.status,
      req.kycStatus,
      req.kind,
      req.identityNumber ? identityHashes(key, req) : [],
    ],
  };
}

/** The cursor of a token: a search name (no longer than any stored one) and a customer id. */
const parseCursor = ([n, i, ...rest]: string[]): Cursor | undefined =>
  n !== undefined && n.length <= 1000 && !/\p{Cc}/u.test(n) && cursorUuid(i) && !rest.length ? { n, i: i! } : undefined;

function identityHashes(key: Uint8Array, req: ListCustomersRequest): string[] {
  const kinds =
    req.kind === CustomerKind.CUSTOMER_KIND_PERSON
      ? (['person'] as const)
      : req.kind === CustomerKind.CUSTOMER_KIND_BUSINESS
        ? (['business'] as const)
        : (['person', 'business'] as const);
  return kinds.map((k) => identityHash(key, k, req.identityCountry, req.identityNumber));
}

/** Checks a request's page: its size and its token (tied to these filters); reports on `v`. */
export function readSearchPage(v: Violations, req: ListCustomersRequest, key: Uint8Array) {
  return readPage(v, req.page, searchQuery(req, key), parseCursor);
}

/** Byte-wise UTF-8 order, as PostgreSQL's "C" collation sorts search_name. */
export function compareRows(a: Pick<CustomerRow, 'search_name' | 'id'>, b: Pick<CustomerRow, 'search_name' | 'id'>) {
  const byName = Buffer.compare(Buffer.from(a.search_name, 'utf8'), Buffer.from(b.search_name, 'utf8'));
  return byName !== 0 ? byName : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export async function searchCustomers(
  router: ShardRouter,
  key: Uint8Array,
  req: ListCustomersRequest,
  pageSize: number,
  after: Cursor | undefined,
  signal?: AbortSignal,
): Promise<{ customers: Customer[]; nextPageToken: string }> {
  const prefix = foldName(req.namePrefix);
  const hashes = req.identityNumber ? identityHashes(key, req) : undefined;
  const perShard = await Promise.all(
    router.shards.map(async ({ index, db }) => {
      if (signal?.aborted) throw signal.reason;
      const q = db('customers').select(db.raw(CUSTOMER_COLUMNS));
      if (prefix) q.whereRaw(`search_name like ? escape '\\'`, [`${escapeLike(prefix)}%`]);
      if (req.status) q.where('status', req.status);
      if (req.kycStatus) q.where('kyc_status', req.kycStatus);
      if (req.kind) q.where('kind', req.kind);
      if (hashes) q.whereIn('id_hash', hashes).where('id_country', req.identityCountry);
      if (after) q.whereRaw(`(search_name, id) > (? collate "C", ?::uuid)`, [after.n, after.i]);
      const rows = (await q
        .orderBy([{ column: 'search_name' }, { column: 'id' }])
        .limit(pageSize + 1)) as CustomerRow[];
      return rows.map((row) => ({ row, shard: index }));
    }),
  );
  const merged = perShard.flat().sort((a, b) => compareRows(a.row, b.row));
  const page = merged.slice(0, pageSize);
  const last = page.at(-1);
  return {
    customers: page.map((r) => customerToProto(r.row, r.shard)),
    nextPageToken:
      merged.length > pageSize && last
        ? encodePageToken(searchQuery(req, key), [last.row.search_name, last.row.id])
        : '',
  };
}
