// Group commit against real PostgreSQL: concurrent requests share transactions, one request whose
// data PostgreSQL refuses (or whose decision throws) fails alone while its neighbours commit, and a
// transient failure fails the batch without committing any of it.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createLogger, DomainError, GroupCommit, migrateAllShards, ShardMap, ShardRouter } from '../src/index.js';
import { createDatabases } from '../src/testing/infra.js';

describe('group commit', () => {
  const name = `gc${randomUUID().slice(0, 8)}`;
  let router: ShardRouter;
  beforeAll(async () => {
    await createDatabases(inject('pgAdminUrl'), [`${name}_s0`]);
    router = new ShardRouter(ShardMap.parse('', 1), [`${inject('pgUrl')}/${name}_s0`], 4, 'kittest');
    await migrateAllShards(router, [], createLogger('kittest', 'silent'));
    await router.shards[0]!.db.raw(`create table items (id int primary key, label text not null)`);
  });
  afterAll(async () => {
    await router?.close();
  });

  it('commits many requests together; a refused one fails alone and its neighbours commit', async () => {
    const db = router.shards[0]!.db;
    const sizes: number[] = [];
    const gc = new GroupCommit<{ id: number; label: string }, number>(
      db,
      async (tx, items) => {
        sizes.push(items.length);
        for (const it of items) {
          if (it.label === 'verdict') throw DomainError.invalid([{ field: 'label', description: 'is refused' }]);
          await tx.raw(`insert into items (id, label) values (?, ?)`, [it.id, it.label]);
        }
        return items.map((it) => it.id);
      },
      (it) => String(it.id).padStart(4, '0'),
      { name: 'test', shard: 0 },
      { maxInFlight: 1, maxBatch: 64 },
    );
    // 40 requests at once: the first takes a transaction alone, the rest queue and share one or two.
    // Two are at fault: a NUL byte PostgreSQL cannot store in text (22021), and a verdict.
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        gc.submit({ id: i, label: i === 17 ? 'bad\u0000byte' : i === 29 ? 'verdict' : `item ${i}` }),
      ),
    );
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    expect(failed).toEqual([17, 29]);
    expect((results[29] as PromiseRejectedResult).reason).toBeInstanceOf(DomainError);
    expect((results[17] as PromiseRejectedResult).reason).toMatchObject({ code: '22021' });
    const rows = (await db('items').select('id').orderBy('id')) as { id: number }[];
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 40 }, (_, i) => i).filter((i) => i !== 17 && i !== 29));
    // Batched: fewer first attempts than requests (the splits come on top).
    expect(Math.max(...sizes)).toBeGreaterThan(1);
  });

  it('fails every request of a batch that fails transiently, and commits none of it', async () => {
    const db = router.shards[0]!.db;
    const gc = new GroupCommit<number, number>(
      db,
      async (tx, items) => {
        for (const id of items) await tx.raw(`insert into items (id, label) values (?, 'transient')`, [id]);
        // A lost connection, as pg words it: not the requests' fault.
        throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '08006' });
      },
      String,
      { name: 'test', shard: 0 },
    );
    const results = await Promise.allSettled([1001, 1002, 1003].map((id) => gc.submit(id)));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(await db('items').where('label', 'transient').count({ n: '*' })).toEqual([{ n: 0n }]);
  });
});
