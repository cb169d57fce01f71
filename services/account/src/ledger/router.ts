// Splits a request's transfers by shard, hands each shard's part to its batcher, and puts the
// outcomes back in request order. A transfer (or linked chain) that spans shards is refused
// here: crossing shards is the payment saga's job, never a distributed transaction.
import type { ShardRouter } from '@corebank/kit';
import type { ShardBatcher } from './batcher.js';
import { splitChains } from './chains.js';
import { ResultCode as R, type TransferInput, type TransferOutcome } from './types.js';

export async function routeTransfers(
  inputs: TransferInput[],
  router: ShardRouter,
  batchers: ShardBatcher[],
  signal?: AbortSignal,
): Promise<TransferOutcome[]> {
  const outcomes: TransferOutcome[] = new Array(inputs.length);
  const perShard = new Map<number, { inputs: TransferInput[]; at: number[] }>();
  for (const { transfers: chain, start } of splitChains(inputs)) {
    const failure = misrouted(chain, router);
    if (failure) {
      chain.forEach((t, k) => {
        outcomes[start + k] =
          k === failure.index
            ? { id: t.id, code: failure.code, replayed: false, field: failure.field }
            : {
                id: t.id,
                code: R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED,
                replayed: false,
                field: `${t.path}.linked`,
              };
      });
      continue;
    }
    const shard = router.byId(chain[0]!.debitAccountId)!.index;
    const part = perShard.get(shard) ?? { inputs: [], at: [] };
    chain.forEach((t, k) => {
      part.inputs.push(t);
      part.at.push(start + k);
    });
    perShard.set(shard, part);
  }
  await Promise.all(
    [...perShard].map(async ([shard, part]) => {
      const res = await batchers[shard]!.submit(part.inputs, signal);
      res.forEach((o, k) => (outcomes[part.at[k]!] = o));
    }),
  );
  return outcomes;
}

/**
 * Where a chain cannot go: an account id that names no shard, or accounts on more than one shard
 * (a transfer lives on its debit account's shard, and its credit account must be there too).
 */
function misrouted(chain: TransferInput[], router: ShardRouter): { index: number; code: R; field: string } | undefined {
  let shard: number | undefined;
  for (const [index, t] of chain.entries()) {
    const d = router.byId(t.debitAccountId);
    const c = router.byId(t.creditAccountId);
    if (!d) return { index, code: R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_FOUND, field: `${t.path}.debit_account_id` };
    if (!c)
      return { index, code: R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_NOT_FOUND, field: `${t.path}.credit_account_id` };
    if (d.index !== c.index || (shard !== undefined && shard !== d.index))
      return { index, code: R.TRANSFER_RESULT_CODE_ACCOUNTS_ON_DIFFERENT_SHARDS, field: `${t.path}.credit_account_id` };
    shard = d.index;
  }
  return undefined;
}
