// The one rule for page sizes of list RPCs: 0 means the default, more than the maximum is bad input.
import type { Violations } from './errors.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export function pageSize(p: { pageSize: number } | undefined, v: Violations): number {
  const size = p?.pageSize || DEFAULT_PAGE_SIZE;
  if (size > MAX_PAGE_SIZE) v.add('page.page_size', `must be at most ${MAX_PAGE_SIZE}`);
  return size;
}
