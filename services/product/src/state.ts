// A product version's lifecycle as a table: DRAFT -> PUBLISHED -> RETIRED. Only a DRAFT's content
// may change; asking for the status a version already has is "unchanged" (idempotent).
import { DomainError } from '@corebank/kit';
import { ProductStatus as P } from '@corebank/kit/gen/corebank/v1/product';

export const PRODUCT_TRANSITIONS: Readonly<Record<P, readonly P[]>> = {
  [P.PRODUCT_STATUS_UNSPECIFIED]: [],
  [P.PRODUCT_STATUS_DRAFT]: [P.PRODUCT_STATUS_PUBLISHED],
  [P.PRODUCT_STATUS_PUBLISHED]: [P.PRODUCT_STATUS_RETIRED],
  [P.PRODUCT_STATUS_RETIRED]: [],
  [P.UNRECOGNIZED]: [],
};

export const statusName = (s: P) => P[s]?.replace('PRODUCT_STATUS_', '') ?? String(s);

export function productTransition(from: P, to: P): 'unchanged' | 'changed' {
  if (from === to) return 'unchanged';
  if (PRODUCT_TRANSITIONS[from]?.includes(to)) return 'changed';
  throw new DomainError(
    'FAILED_PRECONDITION',
    'ILLEGAL_PRODUCT_TRANSITION',
    `version: cannot go from ${statusName(from)} to ${statusName(to)}`,
    [],
    { from: statusName(from), to: statusName(to) },
  );
}

export function requireDraft(status: P): void {
  if (status !== P.PRODUCT_STATUS_DRAFT) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'PRODUCT_VERSION_IMMUTABLE',
      `version: a ${statusName(status)} version cannot change; create a new version`,
      [],
      { status: statusName(status) },
    );
  }
}
