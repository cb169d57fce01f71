// The catalog in the global database. Every change locks what it changes and writes its event
// in the same transaction.
import { createHash } from 'node:crypto';
import { DomainError, writeEvents, type Db, type Tx } from '@corebank/kit';
import {
  DepositTerms,
  LoanTerms,
  ProductStatus as P,
  ValiditySpec,
  type ProductKind,
  type ProductVersion,
} from '@corebank/kit/gen/corebank/v1/product';
import { productEvent, SUBJECTS } from './events.js';
import { contentColumns, VERSION_COLUMNS, versionToProto, type VersionRow } from './proto.js';
import { productTransition, requireDraft } from './state.js';
import type { Content } from './validate.js';

export function contentHash(c: Content): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        c.name,
        c.description,
        c.deposit ? DepositTerms.toJSON(c.deposit) : null,
        c.loan ? LoanTerms.toJSON(c.loan) : null,
        c.validity ? ValiditySpec.toJSON(c.validity) : null,
      ]),
    )
    .digest('base64url');
}

const versions = (q: Db | Tx) => q('product_versions as v').join('products as p', 'p.product_id', 'v.product_id');

async function lockVersion(tx: Tx, productId: string, version: number): Promise<VersionRow> {
  const row = (await versions(tx)
    .select(tx.raw(VERSION_COLUMNS))
    .where({ 'v.product_id': productId, 'v.version': version })
    .forUpdate('v')
    .first()) as VersionRow | undefined;
  if (!row) {
    throw new DomainError('NOT_FOUND', 'NOT_FOUND', `product ${productId} has no version ${version}`, [
      { field: 'version', description: 'no such version of this product' },
    ]);
  }
  return row;
}

export async function productKind(db: Db, productId: string): Promise<ProductKind> {
  const row = (await db('products').select('kind').where('product_id', productId).first()) as
    { kind: ProductKind } | undefined;
  if (!row) throw DomainError.notFound('product_id', 'product');
  return row.kind;
}

export async function createProduct(
  db: Db,
  productId: string,
  kind: ProductKind,
  content: Content,
): Promise<{ product: ProductVersion; replayed: boolean }> {
  const hash = contentHash(content);
  const bodyHash = createHash('sha256')
    .update(JSON.stringify([productId, kind, hash]))
    .digest('base64url');
  return db.transaction(async (tx) => {
    const now = new Date();
    const created = await tx('products')
      .insert({ product_id: productId, kind, create_hash: bodyHash, created_at: now })
      .onConflict('product_id')
      .ignore()
      .returning('product_id');
    if (!created.length) {
      const existing = (await tx('products').select('create_hash').where('product_id', productId).first()) as {
        create_hash: string;
      };
      if (existing.create_hash !== bodyHash) {
        throw new DomainError(
          'ALREADY_EXISTS',
          'PRODUCT_EXISTS_WITH_DIFFERENT_BODY',
          `product_id: product ${productId} exists with a different body`,
          [{ field: 'product_id', description: 'was used before with a different body' }],
        );
      }
      return { product: versionToProto(await lockVersion(tx, productId, 1)), replayed: true };
    }
    await tx('product_versions').insert({
      product_id: productId,
      version: 1,
      status: P.PRODUCT_STATUS_DRAFT,
      ...contentColumns(content),
      content_hash: hash,
      created_at: now,
      updated_at: now,
    });
    const product = versionToProto(await lockVersion(tx, productId, 1));
    await writeEvents(tx, [productEvent(SUBJECTS.productCreated, product, now)]);
    return { product, replayed: false };
  });
}

/** One version; version 0 = the latest PUBLISHED one. */
export async function getVersion(db: Db, productId: string, version: number): Promise<ProductVersion> {
  const q = versions(db).select(db.raw(VERSION_COLUMNS)).where('v.product_id', productId);
  const row = (
    version === 0
      ? await q.andWhere('v.status', P.PRODUCT_STATUS_PUBLISHED).orderBy('v.version', 'desc').first()
      : await q.andWhere('v.version', version).first()
  ) as VersionRow | undefined;
  if (row) return versionToProto(row);
  await productKind(db, productId); // NOT_FOUND product_id when there is no such product
  if (version === 0) {
    throw new DomainError('NOT_FOUND', 'PRODUCT_NOT_PUBLISHED', `product ${productId} has no published version`, [
      { field: 'version', description: 'the product has no published version' },
    ]);
  }
  throw new DomainError('NOT_FOUND', 'NOT_FOUND', `product ${productId} has no version ${version}`, [
    { field: 'version', description: 'no such version of this product' },
  ]);
}

/** Each product's latest version, by product_id, after the cursor. */
export async function listProducts(db: Db, kind: ProductKind, pageSize: number, after: string) {
  const q = db
    .select(db.raw(`distinct on (v.product_id) ${VERSION_COLUMNS}`))
    .from('product_versions as v')
    .join('products as p', 'p.product_id', 'v.product_id')
    .where('v.product_id', '>', after)
    .orderBy([{ column: 'v.product_id' }, { column: 'v.version', order: 'desc' }])
    .limit(pageSize + 1);
  if (kind) q.andWhere('p.kind', kind);
  const rows = (await q) as VersionRow[];
  const page = rows.slice(0, pageSize);
  return { products: page.map(versionToProto), last: rows.length > pageSize ? page.at(-1)!.product_id : '' };
}

export async function listVersions(db: Db, productId: string): Promise<ProductVersion[]> {
  const rows = (await versions(db)
    .select(db.raw(VERSION_COLUMNS))
    .where('v.product_id', productId)
    .orderBy('v.version', 'desc')) as VersionRow[];
  if (!rows.length) throw DomainError.notFound('product_id', 'product');
  return rows.map(versionToProto);
}

/** A new DRAFT copying the latest version; the open draft itself when the latest is one. */
export async function createVersion(db: Db, productId: string): Promise<{ product: ProductVersion; changed: boolean }> {
  return db.transaction(async (tx) => {
    const product = await tx('products').select('product_id').where('product_id', productId).forUpdate().first();
    if (!product) throw DomainError.notFound('product_id', 'product');
    const latest = (await versions(tx)
      .select(tx.raw(VERSION_COLUMNS))
      .where('v.product_id', productId)
      .orderBy('v.version', 'desc')
      .first()) as VersionRow;
    if (latest.status === P.PRODUCT_STATUS_DRAFT) return { product: versionToProto(latest), changed: false };
    const now = new Date();
    await tx('product_versions').insert({
      product_id: productId,
      version: latest.version + 1,
      status: P.PRODUCT_STATUS_DRAFT,
      name: latest.name,
      description: latest.description,
      deposit: latest.deposit === null ? null : JSON.stringify(latest.deposit),
      loan: latest.loan === null ? null : JSON.stringify(latest.loan),
      validity: latest.validity === null ? null : JSON.stringify(latest.validity),
      content_hash: latest.content_hash,
      created_at: now,
      updated_at: now,
    });
    const draft = versionToProto(await lockVersion(tx, productId, latest.version + 1));
    await writeEvents(tx, [productEvent(SUBJECTS.versionCreated, draft, now)]);
    return { product: draft, changed: true };
  });
}

export async function updateVersion(
  db: Db,
  productId: string,
  version: number,
  content: Content,
): Promise<{ product: ProductVersion; changed: boolean }> {
  const hash = contentHash(content);
  return db.transaction(async (tx) => {
    const row = await lockVersion(tx, productId, version);
    requireDraft(row.status);
    if (row.content_hash === hash) return { product: versionToProto(row), changed: false };
    const now = new Date();
    await tx('product_versions')
      .where({ product_id: productId, version })
      .update({ ...contentColumns(content), content_hash: hash, updated_at: now });
    const product = versionToProto(await lockVersion(tx, productId, version));
    await writeEvents(tx, [productEvent(SUBJECTS.versionUpdated, product, now)]);
    return { product, changed: true };
  });
}

/** PUBLISHED or RETIRED, per the state table; unchanged when the version already has it. */
export async function moveVersion(
  db: Db,
  productId: string,
  version: number,
  to: P.PRODUCT_STATUS_PUBLISHED | P.PRODUCT_STATUS_RETIRED,
): Promise<{ product: ProductVersion; changed: boolean }> {
  return db.transaction(async (tx) => {
    const row = await lockVersion(tx, productId, version);
    if (productTransition(row.status, to) === 'unchanged') return { product: versionToProto(row), changed: false };
    const now = new Date();
    await tx('product_versions')
      .where({ product_id: productId, version })
      .update({
        status: to,
        updated_at: now,
        ...(to === P.PRODUCT_STATUS_PUBLISHED ? { published_at: now } : { retired_at: now }),
      });
    const product = versionToProto(await lockVersion(tx, productId, version));
    const subject = to === P.PRODUCT_STATUS_PUBLISHED ? SUBJECTS.versionPublished : SUBJECTS.versionRetired;
    await writeEvents(tx, [productEvent(subject, product, now)]);
    return { product, changed: true };
  });
}
