// Pending transfers whose timeout passed are voided by the ledger itself: the sweeper finds open
// holds past their expiry and submits EXPIRE_PENDING transfers through the shard's batcher, with
// ids derived from the pending id so two sweepers racing cannot expire one hold twice.
import { bucketedId, bucketOfId, type Logger, type ShardRouter } from '@corebank/kit';
import type { ShardBatcher } from './ledger/batcher.js';
import { bodyHash } from './ledger/validate.js';
import { TransferKind as K, type TransferInput } from './ledger/types.js';

export async function sweepExpired(router: ShardRouter, batchers: ShardBatcher[], limit = 1000): Promise<number> {
  let total = 0;
  await Promise.all(
    router.shards.map(async ({ index, db }) => {
      const { rows } = await db.raw(
        `select t.id, t.debit_account_id, t.credit_account_id from pending_holds h join transfers t on t.id = h.transfer_id
          where h.expires_at <= now() order by h.expires_at limit ?`,
        [limit],
      );
      const inputs = (rows as { id: string; debit_account_id: string; credit_account_id: string }[]).map(
        (r, i): TransferInput => {
          const body = {
            debitAccountId: r.debit_account_id,
            creditAccountId: r.credit_account_id,
            amount: 0n,
            kind: K.TRANSFER_KIND_EXPIRE_PENDING,
            linked: false,
            pendingId: r.id,
            timeoutSeconds: 0,
            code: 0,
            reference: 'expired',
          };
          return {
            id: bucketedId(bucketOfId(r.debit_account_id)!, 'expire', r.id),
            ...body,
            bodyHash: bodyHash(body),
            path: `expiry[${i}]`,
          };
        },
      );
      if (inputs.length) {
        await batchers[index]!.submit(inputs);
        total += inputs.length;
      }
    }),
  );
  return total;
}

export function startExpirySweeper(router: ShardRouter, batchers: ShardBatcher[], intervalMs: number, log: Logger) {
  let running = true;
  let current: Promise<unknown> = Promise.resolve();
  const tick = () => {
    if (!running) return;
    current = sweepExpired(router, batchers)
      .catch((err: unknown) => log.warn({ err }, 'expiry sweep failed'))
      .finally(() => {
        if (running) timer = setTimeout(tick, intervalMs);
      });
  };
  let timer = setTimeout(tick, intervalMs);
  return async () => {
    running = false;
    clearTimeout(timer);
    await current;
  };
}
