// Linked chains: `linked: true` ties a transfer to the next one, so a run of linked transfers and
// the first unlinked one after it succeed or fail together. The router (which keeps a chain on
// one shard) and the rules (which apply it atomically) both cut requests here, the same way.
import type { TransferInput } from './types.js';

export interface Chain {
  transfers: TransferInput[];
  /** Index of the chain's first transfer in the list it was cut from. */
  start: number;
  /** The last transfer still says "linked": nothing closes the chain (LINKED_EVENT_CHAIN_OPEN). */
  open: boolean;
}

export function splitChains(transfers: TransferInput[]): Chain[] {
  const chains: Chain[] = [];
  let start = 0;
  while (start < transfers.length) {
    let end = start;
    while (end < transfers.length - 1 && transfers[end]!.linked) end++;
    chains.push({ transfers: transfers.slice(start, end + 1), start, open: transfers[end]!.linked });
    start = end + 1;
  }
  return chains;
}
