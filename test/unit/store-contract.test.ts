// The Store contract (test/helpers/store-contract.ts) against the SQLite store, and against
// deliberately broken stores to show that the checks can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore, type ListOptions } from '../../src/store/store.js';
import { STORE_CONTRACT, runStoreContract, type StoreDatabase, type StoreEngine } from '../helpers/store-contract.js';

function sqliteEngine(name: string, make: (dir: string) => SqliteStore): StoreEngine {
  return {
    name,
    fresh: async (): Promise<StoreDatabase> => {
      const dir = mkdtempSync(join(tmpdir(), 'berth-store-contract-'));
      return { open: () => make(dir), dispose: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  };
}

const sqlite = sqliteEngine('sqlite', (dir) => new SqliteStore(dir));

for (const check of STORE_CONTRACT) {
  test(`store contract (sqlite): ${check.name}`, async () => {
    const db = await sqlite.fresh();
    try { await check.run(db); } finally { await db.dispose(); }
  });
}

/** Runs its body without a transaction: what it wrote before throwing stays. */
class NoRollbackStore extends SqliteStore {
  override tx<R>(fn: () => R): R { return fn(); }
}

/** Ignores `after`: every page is the first page. */
class NoCursorStore extends SqliteStore {
  override listFields<T>(kind: string, scope: string, fields: string[], opts: ListOptions = {}): (T & { id: string })[] {
    const { after: _ignored, ...rest } = opts;
    return super.listFields<T>(kind, scope, fields, rest);
  }
}

/** Serves reads from a cache of its own: other connections' writes are never seen. */
class StaleReadStore extends SqliteStore {
  private readonly cache = new Map<string, unknown>();
  override get<T>(kind: string, scope: string, id: string): T | undefined {
    const key = `${kind}\u0000${scope}\u0000${id}`;
    if (!this.cache.has(key)) this.cache.set(key, super.get<T>(kind, scope, id));
    return structuredClone(this.cache.get(key)) as T | undefined;
  }
}

test('the contract catches broken stores: no rollback, no cursor, stale reads', async () => {
  const cases: [new (dir: string) => SqliteStore, string][] = [
    [NoRollbackStore, 'a transaction commits as a whole and returns its value; one that throws leaves nothing'],
    [NoCursorStore, 'pagination with `after` returns every document once, forwards and backwards'],
    [StaleReadStore, 'what one connection committed, another reads, also after all are closed and one reopens'],
  ];
  for (const [Broken, expected] of cases) {
    const failed = await runStoreContract(sqliteEngine(Broken.name, (dir) => new Broken(dir)));
    assert.ok(failed.some((f) => f.name === expected), `${Broken.name}: expected "${expected}" to fail; failed: ${JSON.stringify(failed.map((f) => f.name))}`);
  }
  // And the real store passes all of them through the same runner.
  assert.deepEqual(await runStoreContract(sqlite), []);
});
