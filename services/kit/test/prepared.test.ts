// Prepared statements against real PostgreSQL: preparedRaw names a fixed statement once per
// connection (PostgreSQL's pg_prepared_statements lists it, with the server's count of generic and
// custom plans), inside a transaction as on the pool, with the same results as knex.raw; and with
// DATABASE_PREPARED_STATEMENTS off nothing is prepared; a text is turned into native SQL once.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { inject } from 'vitest';
import {
  createLogger,
  migrateAllShards,
  preparedRaw,
  ShardMap,
  ShardRouter,
  usePreparedStatements,
} from '../src/index.js';
import { createDatabases } from '../src/testing/infra.js';

describe('prepared statements', () => {
  const name = `ps${randomUUID().slice(0, 8)}`;
  let router: ShardRouter;
  // One connection, so every statement of a test meets the statements its earlier ones prepared.
  beforeAll(async () => {
    await createDatabases(inject('pgAdminUrl'), [`${name}_s0`]);
    router = new ShardRouter(ShardMap.parse('', 1), [`${inject('pgUrl')}/${name}_s0`], 1, 'kittest');
    await migrateAllShards(router, [], createLogger('kittest', 'silent'));
    await router.shards[0]!.db.raw(`create table items (id int primary key, label text not null, amount int8)`);
  });
  afterAll(async () => {
    await router?.close();
  });
  afterEach(() => usePreparedStatements(true));

  const prepared = async (text: string) =>
    (
      await router.shards[0]!.db.raw(
        `select name, generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements
          where statement = ?`,
        [text],
      )
    ).rows as { name: string; generic: number; custom: number }[];

  it('prepares a fixed statement once per connection and runs it with its bindings', async () => {
    const db = router.shards[0]!.db;
    const insert = `insert into items (id, label, amount) values (?, ?, ?) returning id, label, amount`;
    for (let i = 1; i <= 7; i++) {
      const { rows } = await preparedRaw(db, insert, [i, `item ${i}`, 10n ** 15n + BigInt(i)]);
      expect(rows).toEqual([{ id: i, label: `item ${i}`, amount: 10n ** 15n + BigInt(i) }]);
    }
    const text = `insert into items (id, label, amount) values ($1, $2, $3) returning id, label, amount`;
    const [statement] = await prepared(text);
    expect(statement!.name).toMatch(/^cb_[0-9a-f]{24}$/);
    // Seven runs of one prepared statement: planned afresh for the first five, generic after.
    expect(statement!.generic + statement!.custom).toBe(7);
    // In a transaction, on its connection: rolled back with it.
    await db
      .transaction(async (tx) => {
        await preparedRaw(tx, insert, [100, 'in a transaction', null]);
        expect((await tx('items').where('id', 100)).length).toBe(1);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    expect((await db('items').where('id', 100)).length).toBe(0);
    expect((await prepared(text))[0]!.generic + (await prepared(text))[0]!.custom).toBe(8);
    // PostgreSQL's errors come through as pg's, with their SQLSTATE.
    await expect(preparedRaw(db, insert, [1, 'again', null])).rejects.toMatchObject({ code: '23505' });
  });

  it('prepares nothing when DATABASE_PREPARED_STATEMENTS is off', async () => {
    usePreparedStatements(false);
    const db = router.shards[0]!.db;
    const select = `select label from items where id = ? and label <> ?`;
    expect((await preparedRaw(db, select, [3, 'unprepared'])).rows).toEqual([{ label: 'item 3' }]);
    expect(await prepared(`select label from items where id = $1 and label <> $2`)).toEqual([]);
  });

  it('works out a text once, yet binds a knex.raw into the text and refuses an undefined binding', async () => {
    const db = router.shards[0]!.db;
    const select = `select label from items where id = ? and label <> ?`;
    expect((await preparedRaw(db, select, [2, 'x'])).rows).toEqual([{ label: 'item 2' }]);
    // The same text with a knex.raw binding: written into the statement, as knex.raw does.
    expect((await preparedRaw(db, select, [db.raw('3'), 'x'])).rows).toEqual([{ label: 'item 3' }]);
    // Plain values again: the text worked out at the first call, knex not asked.
    const knexRaw = vi.spyOn(db, 'raw');
    expect((await preparedRaw(db, select, [4, 'x'])).rows).toEqual([{ label: 'item 4' }]);
    expect(knexRaw).not.toHaveBeenCalled();
    knexRaw.mockRestore();
    await expect(preparedRaw(db, select, [undefined, 'x'])).rejects.toThrow(/Undefined binding/);
  });
});
