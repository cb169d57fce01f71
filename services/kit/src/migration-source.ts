// Migrations as code (not files), so the same list runs from TypeScript sources in tests and from
// dist/ in the image; its own module so that every list (the shards', the global database's) can
// use it without importing migrate.ts.
import type { Knex } from 'knex';

export interface Migration {
  name: string;
  up: (db: Knex) => Promise<void>;
}

/** knex's source of migrations that are code: a list, applied in its order. */
export class ListSource implements Knex.MigrationSource<Migration> {
  constructor(private readonly list: Migration[]) {}
  getMigrations() {
    return Promise.resolve(this.list);
  }
  getMigrationName(m: Migration) {
    return m.name;
  }
  getMigration(m: Migration) {
    return Promise.resolve({ up: m.up, down: () => Promise.reject(new Error('migrations only go forward')) });
  }
}
