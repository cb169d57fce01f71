// Pending transfers whose timeout passed are voided by the ledger itself: the sweeper finds open
// holds past their expiry and submits EXPIRE_PENDING transfers through the shard's batcher, with
// ids derived from the pending id so two sweepers racing cannot expire one hold twice.
import { bucketedId, bucketOfId, Waker, type Logger, type ShardRouter } from '@corebank/kit';
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

/**
 * Milliseconds until the earliest open hold of any shard expires (0 when one has; Infinity when no
 * hold has a timeout), by the database's clock, which is the one the sweep's query uses.
 */
export async function nextExpiryInMs(router: ShardRouter): Promise<number> {
  const each = await Promise.all(
    router.shards.map(async ({ db }) => {
      const { rows } = await db.raw(
        `select (extract(epoch from min(expires_at) - now()) * 1000)::float8 as ms from pending_holds`,
      );
      const ms = (rows as { ms: number | null }[])[0]?.ms;
      // No row: min() is null (which greatest() would turn into 0, a busy loop).
      return ms === null || ms === undefined ? Infinity : Math.max(0, Math.ceil(ms));
    }),
  );
  return Math.min(...each);
}

export interface ExpirySweeper {
  /** Makes the sweeper run by `at` (epoch ms) at the latest: a hold opened here expires then. */
  wakeAt(at: number): void;
  stop(): Promise<void>;
}

/**
 * Sweeps, then sleeps until the earliest hold expires, at most maxSleepMs: the cap is the safety
 * net for holds another replica opened meanwhile (holds this process opens wake it through
 * wakeAt). Idle, with no holds, it looks once per maxSleepMs.
 */
export function startExpirySweeper(
  router: ShardRouter,
  batchers: ShardBatcher[],
  maxSleepMs: number,
  log: Logger,
  limit = 1000,
): ExpirySweeper {
  const waker = new Waker();
  let running = true;
  const loop = (async () => {
    await waker.sleep(maxSleepMs);
    while (running) {
      let sleepMs = maxSleepMs;
      try {
        const expired = await sweepExpired(router, batchers, limit);
        // A full window on some shard may leave more expired holds: go on at once.
        sleepMs = expired >= limit ? 0 : Math.min(sleepMs, await nextExpiryInMs(router));
      } catch (err) {
        log.warn({ err }, 'expiry sweep failed');
      }
      if (running) await waker.sleep(sleepMs);
    }
  })();
  return {
    wakeAt: (at) => waker.wakeAt(at),
    stop: async () => {
      running = false;
      waker.wake();
      await loop;
    },
  };
}
