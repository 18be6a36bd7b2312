// What any Store implementation must do: a list of checks, run by test/unit/store-contract.test.ts
// against the SQLite store (and, later, against every other engine). Each check gets a fresh,
// empty database and may open several connections to it. A check throws when the store
// breaks the contract; the suite's own test runs some of them against deliberately broken
// stores to show that they can fail.
//
// Checks `await` every store call, so they hold for a synchronous store today and an
// asynchronous one later; transaction bodies stay synchronous until the Store goes async.
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.js';

/** A fresh, empty database: `open()` gives another connection to it each time. */
export interface StoreDatabase {
  open(): Store;
  dispose(): Promise<void>;
}

export interface StoreEngine {
  name: string;
  fresh(): Promise<StoreDatabase>;
}

export interface StoreContractCheck {
  name: string;
  run(db: StoreDatabase): Promise<void>;
}

interface Doc { n: number; name?: string; nested?: { deep: string[] } }

const K = 'contract-doc';
const S = '111111111111/us-east-1';
const S2 = '222222222222/us-east-1';

async function withStore(db: StoreDatabase, fn: (s: Store) => Promise<void>): Promise<void> {
  const s = db.open();
  try { await fn(s); } finally { s.close(); }
}

async function ids(s: Store, opts: Parameters<Store['list']>[2] = {}, kind = K, scope = S): Promise<string[]> {
  return (await s.listFields<{ id: string }>(kind, scope, [], opts)).map((d) => d.id);
}

export const STORE_CONTRACT: StoreContractCheck[] = [
  {
    name: 'a document is stored as JSON and read back equal; a missing one is undefined',
    run: (db) => withStore(db, async (s) => {
      const body: Doc = { n: 1, name: 'ünïcödé ☃ \u0000 "quoted"', nested: { deep: ['a', 'b'] } };
      await s.put(K, S, 'a', body);
      assert.deepEqual(await s.get<Doc>(K, S, 'a'), body);
      assert.equal(await s.get(K, S, 'missing'), undefined);
      // A read returns a copy: changing it changes nothing stored.
      const read = (await s.get<Doc>(K, S, 'a'))!;
      read.n = 99;
      assert.equal((await s.get<Doc>(K, S, 'a'))!.n, 1);
      const big = { n: 2, name: 'x'.repeat(1024 * 1024) };
      await s.put(K, S, 'big', big);
      assert.deepEqual(await s.get(K, S, 'big'), big);
    }),
  },
  {
    name: 'put replaces body, parent and tag; delete says whether there was something to delete',
    run: (db) => withStore(db, async (s) => {
      await s.put<Doc>(K, S, 'a', { n: 1 }, 'p1', 'live');
      await s.put<Doc>(K, S, 'a', { n: 2 }, 'p2', 'stopped');
      assert.deepEqual(await s.get(K, S, 'a'), { n: 2 });
      assert.deepEqual(await ids(s, { parent: 'p1' }), []);
      assert.deepEqual(await ids(s, { parent: 'p2' }), ['a']);
      assert.deepEqual(await ids(s, { tag: 'live' }), []);
      assert.deepEqual(await ids(s, { tag: 'stopped' }), ['a']);
      await s.put<Doc>(K, S, 'a', { n: 3 });
      assert.deepEqual(await ids(s, { parent: 'p2' }), [], 'a put without parent clears it');
      assert.equal(await s.delete(K, S, 'a'), true);
      assert.equal(await s.delete(K, S, 'a'), false);
      assert.equal(await s.get(K, S, 'a'), undefined);
    }),
  },
  {
    name: 'kinds and scopes are separate name spaces',
    run: (db) => withStore(db, async (s) => {
      await s.put<Doc>(K, S, 'same', { n: 1 });
      await s.put<Doc>(K, S2, 'same', { n: 2 });
      await s.put<Doc>('other-kind', S, 'same', { n: 3 });
      assert.equal((await s.get<Doc>(K, S, 'same'))!.n, 1);
      assert.equal((await s.get<Doc>(K, S2, 'same'))!.n, 2);
      assert.equal((await s.get<Doc>('other-kind', S, 'same'))!.n, 3);
      assert.deepEqual(await ids(s), ['same']);
      await s.delete(K, S2, 'same');
      assert.equal((await s.get<Doc>(K, S, 'same'))!.n, 1);
      const all = (await s.listAll<Doc>(K)).map((d) => `${d.scope}:${d.id}:${d.body.n}`).sort();
      assert.deepEqual(all, [`${S}:same:1`]);
    }),
  },
  {
    name: 'names that are object-prototype keys are plain data',
    run: (db) => withStore(db, async (s) => {
      for (const id of ['__proto__', 'constructor', 'prototype', 'hasOwnProperty']) {
        await s.put(K, S, id, JSON.parse(`{"n": 1, "__proto__": {"polluted": true}}`));
        const back = await s.get<Record<string, unknown>>(K, S, id);
        assert.equal(back!.n, 1);
      }
      await s.put('__proto__', '__proto__', '__proto__', { n: 7 });
      assert.deepEqual(await s.get('__proto__', '__proto__', '__proto__'), { n: 7 });
      assert.deepEqual(await ids(s), ['__proto__', 'constructor', 'hasOwnProperty', 'prototype']);
      assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was polluted');
    }),
  },
  {
    name: 'list orders by id (binary order), both ways, with prefix, parent, tag and limit',
    run: (db) => withStore(db, async (s) => {
      const names = ['b', 'a', 'B', 'a-1', 'a/2', 'é', 'z', 'ab'];
      for (const [i, id] of names.entries()) await s.put<Doc>(K, S, id, { n: i }, i % 2 ? 'odd' : 'even', i < 4 ? 'first' : 'second');
      const sorted = [...names].sort((x, y) => (Buffer.compare(Buffer.from(x), Buffer.from(y))));
      assert.deepEqual(await ids(s), sorted);
      assert.deepEqual(await ids(s, { desc: true }), [...sorted].reverse());
      assert.deepEqual(await ids(s, { prefix: 'a' }), ['a', 'a-1', 'a/2', 'ab']);
      assert.deepEqual(await ids(s, { prefix: 'a', desc: true, limit: 2 }), ['ab', 'a/2']);
      assert.deepEqual(await ids(s, { parent: 'odd' }), sorted.filter((id) => names.indexOf(id) % 2));
      assert.deepEqual(await ids(s, { tag: 'first', parent: 'even' }), ['B', 'b']);
      assert.deepEqual(await ids(s, { limit: 3 }), sorted.slice(0, 3));
      assert.deepEqual(await ids(s, { limit: 0 }), []);
      assert.deepEqual((await s.list<Doc>(K, S, { prefix: 'z' })).map((d) => d.n), [names.indexOf('z')]);
    }),
  },
  {
    name: 'pagination with `after` returns every document once, forwards and backwards',
    run: (db) => withStore(db, async (s) => {
      const all = Array.from({ length: 57 }, (_, i) => `id-${String(i).padStart(3, '0')}`);
      await s.tx(() => { for (const id of [...all].reverse()) void s.put<Doc>(K, S, id, { n: 0 }); });
      for (const desc of [false, true]) {
        const seen: string[] = [];
        let after: string | undefined;
        for (let pages = 0; ; pages++) {
          // A store that ignores `after` would page for ever.
          assert.ok(pages <= all.length / 10 + 1, 'pagination does not end: `after` is not honoured');
          const page = await ids(s, { limit: 10, desc, ...(after !== undefined ? { after } : {}) });
          if (page.length === 0) break;
          seen.push(...page);
          after = page[page.length - 1];
        }
        assert.deepEqual(seen, desc ? [...all].reverse() : all);
      }
      assert.deepEqual(await ids(s, { after: 'id-055' }), ['id-056']);
      assert.deepEqual(await ids(s, { after: 'id-001', desc: true }), ['id-000']);
    }),
  },
  {
    name: 'listFields returns only the named top-level fields and the id, and refuses other names',
    run: (db) => withStore(db, async (s) => {
      await s.put(K, S, 'a', { n: 1, name: 'one', nested: { deep: ['x'] } });
      const [row] = await s.listFields<{ n: number; name: string }>(K, S, ['n', 'name']);
      assert.deepEqual({ ...row }, { id: 'a', n: 1, name: 'one' });
      for (const bad of ["n') FROM docs --", 'a.b', '', '1n']) {
        assert.throws(() => s.listFields(K, S, [bad]), Error, `field name ${JSON.stringify(bad)} was accepted`);
      }
    }),
  },
  {
    name: 'listAll sees every scope, or one tag',
    run: (db) => withStore(db, async (s) => {
      await s.put<Doc>(K, S, 'a', { n: 1 }, null, 'live');
      await s.put<Doc>(K, S2, 'b', { n: 2 }, null, 'gone');
      await s.put<Doc>('other-kind', S, 'c', { n: 3 });
      const key = (d: { scope: string; id: string }) => `${d.scope}:${d.id}`;
      assert.deepEqual((await s.listAll(K)).map(key).sort(), [`${S}:a`, `${S2}:b`]);
      assert.deepEqual((await s.listAll(K, 'gone')).map(key), [`${S2}:b`]);
      assert.deepEqual(await s.listAll('nothing-here'), []);
    }),
  },
  {
    name: 'a transaction commits as a whole and returns its value; one that throws leaves nothing',
    run: (db) => withStore(db, async (s) => {
      assert.equal(await s.tx(() => { void s.put<Doc>(K, S, 'a', { n: 1 }); void s.put<Doc>(K, S, 'b', { n: 1 }); return 'done'; }), 'done');
      assert.throws(() => s.tx(() => {
        void s.put<Doc>(K, S, 'a', { n: 2 });
        void s.delete(K, S, 'b');
        void s.put<Doc>(K, S, 'c', { n: 2 });
        throw new Error('abort');
      }), /abort/);
      assert.deepEqual(await ids(s), ['a', 'b']);
      assert.equal((await s.get<Doc>(K, S, 'a'))!.n, 1);
      // Reads inside a transaction see its own writes.
      await s.tx(() => {
        void s.put<Doc>(K, S, 'a', { n: 5 });
        assert.equal((s.get<Doc>(K, S, 'a') as Doc).n, 5);
      });
    }),
  },
  {
    name: 'a nested transaction that throws undoes only its own writes',
    run: (db) => withStore(db, async (s) => {
      await s.tx(() => {
        void s.put<Doc>(K, S, 'outer', { n: 1 });
        try {
          s.tx(() => { void s.put<Doc>(K, S, 'inner', { n: 1 }); throw new Error('inner'); });
        } catch { /* the outer one goes on */ }
        void s.put<Doc>(K, S, 'after', { n: 1 });
      });
      assert.deepEqual(await ids(s), ['after', 'outer']);
    }),
  },
  {
    name: 'sequences increase strictly, per name, across connections and reopening',
    run: async (db) => {
      const a = db.open();
      const b = db.open();
      let highest = 0;
      try {
        const got = [await a.nextSequence('x'), await b.nextSequence('x'), await a.nextSequence('x'), await a.nextSequence('y')];
        assert.deepEqual(got.slice(0, 3), [got[0]!, got[0]! + 1, got[0]! + 2]);
        assert.equal(got[3], 1);
        // A number taken in a rolled-back transaction may be reused or skipped, never go back.
        assert.throws(() => a.tx(() => { void a.nextSequence('x'); throw new Error('abort'); }));
        highest = await b.nextSequence('x');
        assert.ok(highest > got[2]!);
      } finally { a.close(); b.close(); }
      await withStore(db, async (s) => assert.ok((await s.nextSequence('x')) > highest, 'a sequence went back after reopening'));
    },
  },
  {
    name: 'what one connection committed, another reads, also after all are closed and one reopens',
    run: async (db) => {
      const a = db.open();
      const b = db.open();
      try {
        assert.equal(await b.get(K, S, 'x'), undefined);
        await a.tx(() => { void a.put<Doc>(K, S, 'x', { n: 1 }); });
        assert.deepEqual(await b.get(K, S, 'x'), { n: 1 });
        await b.delete(K, S, 'x');
        assert.equal(await a.get(K, S, 'x'), undefined);
        await a.put<Doc>(K, S, 'kept', { n: 2 });
      } finally { a.close(); b.close(); }
      await withStore(db, async (s) => assert.deepEqual(await s.get(K, S, 'kept'), { n: 2 }));
    },
  },
  {
    name: 'read-modify-write transactions on two connections lose no update',
    run: async (db) => {
      const conns = [db.open(), db.open()];
      try {
        await conns[0]!.put<Doc>(K, S, 'counter', { n: 0 });
        const rounds = 200;
        await Promise.all(conns.map(async (c) => {
          for (let i = 0; i < rounds; i++) {
            await c.tx(() => {
              const d = c.get<Doc>(K, S, 'counter') as Doc;
              void c.put<Doc>(K, S, 'counter', { n: d.n + 1 });
            });
            if (i % 10 === 0) await new Promise((r) => setImmediate(r));
          }
        }));
        assert.equal((await conns[1]!.get<Doc>(K, S, 'counter'))!.n, 2 * rounds);
      } finally { for (const c of conns) c.close(); }
    },
  },
  {
    name: 'generation moves on every write of its kinds, on a rollback, and on another connection\'s commit',
    run: async (db) => {
      const a = db.open();
      const b = db.open();
      try {
        const g0 = a.generation([K]);
        await a.put<Doc>('unrelated', S, 'x', { n: 1 });
        assert.equal(a.generation([K]), g0, 'a write of another kind moved the generation');
        await a.put<Doc>(K, S, 'x', { n: 1 });
        const g1 = a.generation([K]);
        assert.ok(g1 > g0);
        await a.delete(K, S, 'x');
        const g2 = a.generation([K]);
        assert.ok(g2 > g1);
        assert.throws(() => a.tx(() => { void a.put<Doc>('unrelated', S, 'y', { n: 1 }); throw new Error('abort'); }));
        const g3 = a.generation([K]);
        assert.ok(g3 > g2, 'a rollback did not move the generation');
        await b.put<Doc>(K, S, 'from-b', { n: 1 });
        const deadline = Date.now() + 2_000;
        while (a.generation([K]) === g3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.ok(a.generation([K]) > g3, 'another connection\'s commit was not seen within 2 s');
      } finally { a.close(); b.close(); }
    },
  },
];

/** Runs every check; returns the names of those that failed, with why. */
export async function runStoreContract(engine: StoreEngine, checks = STORE_CONTRACT): Promise<{ name: string; error: string }[]> {
  const failed: { name: string; error: string }[] = [];
  for (const c of checks) {
    const db = await engine.fresh();
    try { await c.run(db); } catch (e) { failed.push({ name: c.name, error: (e as Error).message }); } finally { await db.dispose(); }
  }
  return failed;
}
