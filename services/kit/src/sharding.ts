// Units: a customer id hashes to one of 1,024 buckets; a versioned shard map assigns buckets
// to shards. Account ids carry their owner's bucket in their last four hex digits, so any
// account can be routed without a lookup.
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { ConfigError } from './config.js';
import { createPool } from './db.js';

export const BUCKETS = 1024;

export function bucketOf(customerId: string): number {
  return createHash('sha256').update(customerId).digest().readUInt32BE(0) % BUCKETS;
}

export interface ShardMapSpec {
  version: number;
  /** [firstBucket, lastBucket, shard], inclusive, covering 0..1023 exactly once. */
  ranges: [number, number, number][];
}

export class ShardMap {
  private readonly shardOfBucket: Int16Array;

  constructor(
    readonly spec: ShardMapSpec,
    readonly shardCount: number,
  ) {
    this.shardOfBucket = new Int16Array(BUCKETS).fill(-1);
    for (const [first, last, shard] of spec.ranges) {
      if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 0 && last < BUCKETS && first <= last)) {
        throw new ConfigError('SHARD_MAP', `bad bucket range [${first}, ${last}]`);
      }
      if (!(Number.isInteger(shard) && shard >= 0 && shard < shardCount)) {
        throw new ConfigError('SHARD_MAP', `shard ${shard} is outside 0..${shardCount - 1} (SHARD_COUNT)`);
      }
      for (let b = first; b <= last; b++) {
        if (this.shardOfBucket[b] !== -1) throw new ConfigError('SHARD_MAP', `bucket ${b} is assigned twice`);
        this.shardOfBucket[b] = shard;
      }
    }
    const missing = this.shardOfBucket.indexOf(-1);
    if (missing !== -1) throw new ConfigError('SHARD_MAP', `bucket ${missing} is not assigned to any shard`);
    for (let s = 0; s < shardCount; s++) {
      if (!this.shardOfBucket.includes(s)) throw new ConfigError('SHARD_MAP', `shard ${s} owns no bucket`);
    }
  }

  /** Version 1: buckets split into equal contiguous ranges. */
  static even(shardCount: number): ShardMap {
    const ranges: [number, number, number][] = [];
    for (let s = 0; s < shardCount; s++) {
      ranges.push([Math.floor((s * BUCKETS) / shardCount), Math.floor(((s + 1) * BUCKETS) / shardCount) - 1, s]);
    }
    return new ShardMap({ version: 1, ranges }, shardCount);
  }

  static parse(json: string, shardCount: number): ShardMap {
    if (!json.trim()) return ShardMap.even(shardCount);
    let spec: ShardMapSpec;
    try {
      spec = JSON.parse(json) as ShardMapSpec;
    } catch {
      throw new ConfigError('SHARD_MAP', 'is not valid JSON');
    }
    if (!Number.isInteger(spec.version) || spec.version < 1 || !Array.isArray(spec.ranges)) {
      throw new ConfigError('SHARD_MAP', 'needs an integer "version" >= 1 and a "ranges" array');
    }
    return new ShardMap(spec, shardCount);
  }

  shardOf(bucket: number): number {
    return this.shardOfBucket[bucket]!;
  }

  /** The lowest bucket a shard owns: the bucket of that shard's system accounts. */
  firstBucketOf(shard: number): number {
    return this.shardOfBucket.indexOf(shard);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const isUuid = (s: string): boolean => UUID.test(s);

/** A deterministic UUID (version 8) from its parts: the same parts always give the same id. */
export function hashedUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  return [
    h.slice(0, 8),
    h.slice(8, 12),
    `8${h.slice(13, 16)}`,
    ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16) + h.slice(17, 20),
    h.slice(20, 32),
  ].join('-');
}

/**
 * A deterministic id for a thing owned in a bucket (which makes creation idempotent); the
 * bucket sits in the last four hex digits, so the id routes to its shard without a lookup.
 */
export function bucketedId(bucket: number, ...parts: string[]): string {
  return hashedUuid(...parts).slice(0, -4) + bucket.toString(16).padStart(4, '0');
}

/** The bucket carried by an id from bucketedId, or undefined when the string is not such an id. */
export function bucketOfId(id: string): number | undefined {
  if (!isUuid(id)) return undefined;
  const b = parseInt(id.slice(-4), 16);
  return b < BUCKETS ? b : undefined;
}

export interface Shard {
  index: number;
  db: Knex;
}

/** Gives the knex pool of the shard that owns a key. */
export class ShardRouter {
  readonly shards: Shard[];

  constructor(
    readonly map: ShardMap,
    urls: string[],
    poolMax: number,
    readonly service: string,
  ) {
    this.shards = urls.map((url, index) => ({
      index,
      db: createPool(url, poolMax, `${service}-shard${index}`, service),
    }));
  }

  byBucket(bucket: number): Shard {
    return this.shards[this.map.shardOf(bucket)]!;
  }

  byCustomer(customerId: string): Shard {
    return this.byBucket(bucketOf(customerId));
  }

  /** undefined when the id carries no bucket (it cannot exist anywhere). */
  byId(id: string): Shard | undefined {
    const b = bucketOfId(id);
    return b === undefined ? undefined : this.byBucket(b);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.db.destroy()));
  }
}
