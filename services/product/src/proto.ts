// Conversions between catalog rows and the wire messages.
import { toTimestamp } from '@corebank/kit';
import {
  DepositTerms,
  LoanTerms,
  ValiditySpec,
  type ProductKind,
  type ProductStatus,
  type ProductVersion,
} from '@corebank/kit/gen/corebank/v1/product';
import type { Content } from './validate.js';

export interface VersionRow {
  product_id: string;
  version: number;
  status: ProductStatus;
  kind: ProductKind;
  name: string;
  description: string;
  deposit: unknown;
  loan: unknown;
  validity: unknown;
  content_hash: string;
  created_at: Date;
  updated_at: Date;
  published_at: Date | null;
  retired_at: Date | null;
}

/** Selected from product_versions v joined with products p. */
export const VERSION_COLUMNS = `v.product_id, v.version, v.status, p.kind, v.name, v.description, v.deposit, v.loan,
  v.validity, v.content_hash, v.created_at, v.updated_at, v.published_at, v.retired_at`;

export function versionToProto(r: VersionRow): ProductVersion {
  return {
    productId: r.product_id,
    version: r.version,
    status: r.status,
    kind: r.kind,
    name: r.name,
    description: r.description,
    ...(r.deposit ? { deposit: DepositTerms.fromJSON(r.deposit) } : {}),
    ...(r.loan ? { loan: LoanTerms.fromJSON(r.loan) } : {}),
    ...(r.validity ? { validity: ValiditySpec.fromJSON(r.validity) } : {}),
    createdAt: toTimestamp(r.created_at),
    updatedAt: toTimestamp(r.updated_at),
    ...(r.published_at ? { publishedAt: toTimestamp(r.published_at) } : {}),
    ...(r.retired_at ? { retiredAt: toTimestamp(r.retired_at) } : {}),
  };
}

/** The columns a version's content is stored in (proto3 JSON of each message). */
export function contentColumns(c: Content) {
  return {
    name: c.name,
    description: c.description,
    deposit: c.deposit ? JSON.stringify(DepositTerms.toJSON(c.deposit)) : null,
    loan: c.loan ? JSON.stringify(LoanTerms.toJSON(c.loan)) : null,
    validity: c.validity ? JSON.stringify(ValiditySpec.toJSON(c.validity)) : null,
  };
}
