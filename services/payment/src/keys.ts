// A channel's idempotency keys for payment orders: each key is claimed once, for one order with
// one body, in payment_keys on the key's own shard (a hash of channel and key), before the order
// is written on its payer's shard. A claim is one statement that always returns the key's claim:
// ours when the key was free, else the one made before (by an earlier attempt of this request, or
// for another order or body). Under load the claims of concurrent requests for one shard go
// together in one statement (the kit's BatchQueue): one round trip and one commit for many.
import {
  BatchQueue,
  bucketOf,
  distinctRounds,
  DomainError,
  isPermanentFailure,
  preparedRaw,
  retryOnConflict,
  type Shard,
  type ShardRouter,
} from '@corebank/kit';

/** A channel's claim on an idempotency key for one order. */
export interface KeyClaim {
  channel: string;
  key: string;
  paymentId: string;
  bodyHash: string;
}

/** The claim a key holds. */
export interface RecordedClaim {
  paymentId: string;
  bodyHash: string;
  /** This statement made it: no order with this key can exist yet. */
  fresh: boolean;
  /** When the key was first claimed. */
  firstAt: Date;
}

export const keyReused = (paymentId: string) =>
  new DomainError(
    'ALREADY_EXISTS',
    'PAYMENT_EXISTS_WITH_DIFFERENT_BODY',
    'idempotency_key: this channel made a payment with this key and a different body',
    [{ field: 'idempotency_key', description: 'was used before with a different body' }],
    { payment_id: paymentId },
  );

/** Throws ALREADY_EXISTS unless the claim recorded is this order's, with this body. */
export function requireOwnClaim(c: KeyClaim, claimed: { paymentId: string; bodyHash: string }): void {
  if (claimed.paymentId !== c.paymentId || claimed.bodyHash !== c.bodyHash) throw keyReused(claimed.paymentId);
}

export interface KeyBatching {
  /** Claim statements in flight per shard. */
  maxInFlight: number;
  /** Claims in one statement at most. */
  maxBatch: number;
}

export class KeyClaims {
  /** One queue per shard when claims are batched; absent: one statement per claim. */
  private readonly queues?: ReadonlyMap<number, BatchQueue<KeyClaim, RecordedClaim>>;

  constructor(
    private readonly router: ShardRouter,
    batching?: KeyBatching,
  ) {
    if (batching) {
      this.queues = new Map(
        router.shards.map((s) => [
          s.index,
          new BatchQueue<KeyClaim, RecordedClaim>((claims) => claimAll(s, claims), {
            ...batching,
            // A claim PostgreSQL refuses for its own data is refused alone.
            splits: isPermanentFailure,
          }),
        ]),
      );
    }
  }

  private shardOf(c: KeyClaim): Shard {
    return this.router.byBucket(bucketOf(keyOf(c)));
  }

  /** Claims the channel's key for the order; returns the claim the key holds (ours, or an earlier one). */
  claim(c: KeyClaim): Promise<RecordedClaim> {
    const shard = this.shardOf(c);
    const queue = this.queues?.get(shard.index);
    return queue ? queue.submit(c) : claimAll(shard, [c]).then((r) => r[0]!);
  }

  /** Gives the order's claim back (the caller checked that no order was written). */
  async release(c: KeyClaim): Promise<void> {
    await this.shardOf(c).db.raw(
      `delete from payment_keys where channel = ? and idempotency_key = ? and payment_id = ?`,
      [c.channel, c.key, c.paymentId],
    );
  }
}

/**
 * The claims in one statement per round (a key asked twice in one batch goes in a second round:
 * one statement cannot insert and update the same row). DO UPDATE, unlike DO NOTHING, locks and
 * returns the row that conflicts, even one committed after the statement began; xmax is 0 only in
 * a row this statement inserted. A second statement to read the claim could find none: a request
 * that fails with a verdict gives its claim back, and may do so in between. The rows go in the
 * order of their keys, so that two statements lock keys in one order and never deadlock.
 */
async function claimAll(shard: Shard, claims: KeyClaim[]): Promise<RecordedClaim[]> {
  const recorded = new Array<RecordedClaim>(claims.length);
  const entries = claims.map((c, i) => ({ c, i }));
  for (const round of distinctRounds(entries, ({ c }) => keyOf(c))) {
    const { rows } = await retryOnConflict(() =>
      preparedRaw(
        shard.db,
        `insert into payment_keys (channel, idempotency_key, payment_id, body_hash)
         select channel, idempotency_key, payment_id, body_hash
           from unnest(?::text[], ?::text[], ?::uuid[], ?::text[]) as c(channel, idempotency_key, payment_id, body_hash)
          order by channel, idempotency_key
         on conflict (channel, idempotency_key) do update set payment_id = payment_keys.payment_id
         returning channel, idempotency_key, payment_id, body_hash, xmax = 0 as fresh, created_at`,
        [
          round.map(({ c }) => c.channel),
          round.map(({ c }) => c.key),
          round.map(({ c }) => c.paymentId),
          round.map(({ c }) => c.bodyHash),
        ],
      ),
    );
    const byKey = new Map(
      (rows as ClaimRow[]).map((r) => [
        keyOf({ channel: r.channel, key: r.idempotency_key }),
        { paymentId: r.payment_id, bodyHash: r.body_hash, fresh: r.fresh, firstAt: r.created_at },
      ]),
    );
    for (const { i, c } of round) {
      const claimed = byKey.get(keyOf(c));
      if (!claimed) throw new Error('a key claim returned no row');
      recorded[i] = claimed;
    }
  }
  return recorded;
}

interface ClaimRow {
  channel: string;
  idempotency_key: string;
  payment_id: string;
  body_hash: string;
  fresh: boolean;
  created_at: Date;
}

const keyOf = (c: { channel: string; key: string }) => `${c.channel}\u0000${c.key}`;
