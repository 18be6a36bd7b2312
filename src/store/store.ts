// The store holds all desired and observed state as JSON documents keyed by
// (kind, scope, id). Every mutation that must be atomic runs inside `tx`.
// The embedded default is SQLite (better-sqlite3, synchronous); the interface stays
// small so that a PostgreSQL implementation can stand behind it when Berth scales out.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface ListOptions {
  parent?: string;
  /** Only documents filed under this tag (see `put`). */
  tag?: string;
  /** Only ids starting with this prefix. */
  prefix?: string;
  /** Only ids strictly after (or before, when `desc`) this one. */
  after?: string;
  limit?: number;
  desc?: boolean;
}

export interface Store {
  get<T>(kind: string, scope: string, id: string): T | undefined;
  /**
   * `tag` files a document in a bucket (e.g. `live` / `stopped`) so that hot paths list only
   * the bucket they need, however many others accumulate.
   */
  put<T>(kind: string, scope: string, id: string, body: T, parent?: string | null, tag?: string | null): void;
  delete(kind: string, scope: string, id: string): boolean;
  list<T>(kind: string, scope: string, opts?: ListOptions): T[];
  /** Like `list`, but only the named top-level fields (and the id) of each document. */
  listFields<T>(kind: string, scope: string, fields: string[], opts?: ListOptions): (T & { id: string })[];
  /** Every document of a kind in every scope (for controllers and start-up), or of one tag. */
  listAll<T>(kind: string, tag?: string): { scope: string; id: string; body: T }[];
  /** A strictly increasing number per name, durable across restarts. */
  nextSequence(name: string): number;
  /**
   * For caches of data derived from documents: a number that changes whenever a document of
   * one of `kinds` may have changed — every put and delete of such a document in this
   * process, every rolled-back transaction (whatever it wrote), and every commit by another
   * connection to the same database (e.g. `berth operator-key`; seen within 100 ms). Never
   * decreases.
   */
  generation(kinds: readonly string[]): number;
  tx<R>(fn: () => R): R;
  close(): void;
}

const MIGRATIONS: string[] = [
  `CREATE TABLE docs (
     kind TEXT NOT NULL,
     scope TEXT NOT NULL,
     id TEXT NOT NULL,
     parent TEXT,
     body TEXT NOT NULL,
     PRIMARY KEY (kind, scope, id)
   ) WITHOUT ROWID;
   CREATE INDEX docs_by_parent ON docs(kind, scope, parent, id);
   CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`,
  // CloudWatch Logs (src/logs/store.ts): events are rows, not documents, for range scans.
  `CREATE TABLE log_groups (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     scope TEXT NOT NULL,
     name TEXT NOT NULL,
     created INTEGER NOT NULL,
     retention_days INTEGER,
     kms_key_id TEXT,
     class TEXT NOT NULL DEFAULT 'STANDARD',
     deletion_protection INTEGER NOT NULL DEFAULT 0,
     tags TEXT,
     stored_bytes INTEGER NOT NULL DEFAULT 0,
     UNIQUE (scope, name)
   );
   CREATE TABLE log_streams (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     group_id INTEGER NOT NULL,
     name TEXT NOT NULL,
     created INTEGER NOT NULL,
     first_event INTEGER,
     last_event INTEGER,
     last_ingestion INTEGER,
     stored_bytes INTEGER NOT NULL DEFAULT 0,
     upload_seq INTEGER NOT NULL DEFAULT 0,
     UNIQUE (group_id, name)
   );
   CREATE TABLE log_events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     stream_id INTEGER NOT NULL,
     group_id INTEGER NOT NULL,
     ts INTEGER NOT NULL,
     ingested INTEGER NOT NULL,
     message TEXT NOT NULL
   );
   CREATE INDEX log_events_by_stream ON log_events(stream_id, ts, id);
   CREATE INDEX log_events_by_group ON log_events(group_id, ts, id);
   CREATE TABLE log_ingest_marks (
     stream_id INTEGER NOT NULL,
     source TEXT NOT NULL,
     "offset" INTEGER NOT NULL,
     at INTEGER NOT NULL,
     PRIMARY KEY (stream_id, source, "offset")
   ) WITHOUT ROWID;
   CREATE INDEX log_ingest_marks_by_at ON log_ingest_marks(at);`,
  // Buckets of a kind (e.g. live and stopped tasks), so passes skip what accumulates.
  `ALTER TABLE docs ADD COLUMN tag TEXT;
   CREATE INDEX docs_by_tag ON docs(kind, tag, scope, parent, id);
   UPDATE docs SET tag = CASE WHEN json_extract(body, '$.lastStatus') = 'STOPPED' THEN 'stopped' ELSE 'live' END WHERE kind = 'task';
   UPDATE docs SET tag = CASE WHEN json_extract(body, '$.ec2State') = 'terminated' THEN 'gone' ELSE 'live' END WHERE kind = 'container-instance';`,
  // The audit trail (src/audit/trail.ts): append-only, hash-chained; triggers refuse changes.
  `CREATE TABLE audit_events (
     seq INTEGER PRIMARY KEY,
     event_id TEXT NOT NULL,
     time INTEGER NOT NULL,
     account TEXT NOT NULL,
     event_source TEXT NOT NULL,
     event_name TEXT NOT NULL,
     username TEXT,
     access_key_id TEXT,
     read_only INTEGER NOT NULL,
     resources TEXT NOT NULL,
     record TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL,
     seal TEXT NOT NULL
   );
   CREATE INDEX audit_events_by_account ON audit_events(account, seq);
   CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
     BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
   CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
     BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;`,
  // Log ingestion remembers, per stream and source file, how far it has stored (where the last
  // stored event starts), not where batches started: a batch resent after an agent restart may start
  // where an ingested one did yet hold more events, and only those past the mark are new.
  `DROP TABLE log_ingest_marks;
   CREATE TABLE log_ingest_progress (
     stream_id INTEGER NOT NULL,
     source TEXT NOT NULL,
     stored_to INTEGER NOT NULL,
     at INTEGER NOT NULL,
     PRIMARY KEY (stream_id, source)
   ) WITHOUT ROWID;
   CREATE INDEX log_ingest_progress_by_at ON log_ingest_progress(at);`,
];

/** How often `generation` looks for other connections' commits (ms). */
const EXTERNAL_CHECK_MS = 100;

export class SqliteStore implements Store {
  readonly db: Database.Database;
  private readonly stmts;

  constructor(dataDir: string, fileName = 'berth.db') {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(dataDir, fileName));
    // WAL + NORMAL survives a killed process (committed pages are in the OS cache);
    // only a power loss can drop the last transactions.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    const db = this.db;
    this.stmts = {
      get: db.prepare('SELECT body FROM docs WHERE kind = ? AND scope = ? AND id = ?').pluck(),
      put: db.prepare(`INSERT INTO docs (kind, scope, id, parent, body, tag) VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT (kind, scope, id) DO UPDATE SET parent = excluded.parent, body = excluded.body, tag = excluded.tag`),
      del: db.prepare('DELETE FROM docs WHERE kind = ? AND scope = ? AND id = ?'),
      all: db.prepare('SELECT scope, id, body FROM docs WHERE kind = ?'),
      allTagged: db.prepare('SELECT scope, id, body FROM docs WHERE kind = ? AND tag = ?'),
      seq: db.prepare(`INSERT INTO sequences (name, value) VALUES (?, 1)
                       ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`).pluck(),
    };
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  get<T>(kind: string, scope: string, id: string): T | undefined {
    const body = this.stmts.get.get(kind, scope, id) as string | undefined;
    return body === undefined ? undefined : (JSON.parse(body) as T);
  }

  put<T>(kind: string, scope: string, id: string, body: T, parent: string | null = null, tag: string | null = null): void {
    this.bump(kind);
    this.stmts.put.run(kind, scope, id, parent, JSON.stringify(body), tag);
  }

  delete(kind: string, scope: string, id: string): boolean {
    this.bump(kind);
    return this.stmts.del.run(kind, scope, id).changes > 0;
  }

  // Write generations (see Store.generation): bumped before every write, so a reader that
  // cached something at the old generation never keeps it past the write, even if the write
  // then fails; a rollback bumps every kind (`rolledBack`); a commit by another connection
  // (SQLite's data_version moved) bumps every kind too (`external`). data_version is read at
  // most every EXTERNAL_CHECK_MS (it costs about as much as a document read), so another
  // process's writes (`berth operator-key`) are seen within that time, this process's at once.
  private readonly writes = new Map<string, number>();
  private rolledBack = 0;
  private external = 0;
  private dataVersion: number | undefined;
  private dataVersionStmt: Database.Statement | undefined;
  private nextExternalCheck = 0;

  private bump(kind: string): void {
    this.writes.set(kind, (this.writes.get(kind) ?? 0) + 1);
  }

  generation(kinds: readonly string[]): number {
    const now = performance.now();
    if (now >= this.nextExternalCheck) {
      this.nextExternalCheck = now + EXTERNAL_CHECK_MS;
      this.dataVersionStmt ??= this.db.prepare('PRAGMA data_version').pluck();
      const dv = this.dataVersionStmt.get() as number;
      if (dv !== this.dataVersion) { this.dataVersion = dv; this.external++; }
    }
    let n = this.rolledBack + this.external;
    for (const k of kinds) n += this.writes.get(k) ?? 0;
    return n;
  }

  private readonly listCache = new Map<string, Database.Statement>();

  list<T>(kind: string, scope: string, opts: ListOptions = {}): T[] {
    return (this.select('body', kind, scope, opts, true) as string[]).map((b) => JSON.parse(b) as T);
  }

  listFields<T>(kind: string, scope: string, fields: string[], opts: ListOptions = {}): (T & { id: string })[] {
    for (const f of fields) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(f)) throw new Error(`bad field name ${f}`);
    const columns = ['id', ...fields.map((f) => `json_extract(body, '$.${f}') AS "${f}"`)].join(', ');
    return this.select(columns, kind, scope, opts, false) as (T & { id: string })[];
  }

  private select(columns: string, kind: string, scope: string, opts: ListOptions, pluck: boolean): unknown[] {
    const where = ['kind = ?', 'scope = ?'];
    const args: unknown[] = [kind, scope];
    if (opts.tag !== undefined) { where.push('tag = ?'); args.push(opts.tag); }
    if (opts.parent !== undefined) { where.push('parent = ?'); args.push(opts.parent); }
    if (opts.prefix) { where.push('id >= ? AND id < ?'); args.push(opts.prefix, opts.prefix + '\u{10FFFF}'); }
    if (opts.after !== undefined) { where.push(opts.desc ? 'id < ?' : 'id > ?'); args.push(opts.after); }
    const sql = `SELECT ${columns} FROM docs WHERE ${where.join(' AND ')} ORDER BY id ${opts.desc ? 'DESC' : 'ASC'}${opts.limit !== undefined ? ' LIMIT ?' : ''}`;
    if (opts.limit !== undefined) args.push(opts.limit);
    let stmt = this.listCache.get(sql);
    if (!stmt) { stmt = pluck ? this.db.prepare(sql).pluck() : this.db.prepare(sql); this.listCache.set(sql, stmt); }
    return stmt.all(...args);
  }

  listAll<T>(kind: string, tag?: string): { scope: string; id: string; body: T }[] {
    const rows = tag === undefined ? this.stmts.all.all(kind) : this.stmts.allTagged.all(kind, tag);
    return (rows as { scope: string; id: string; body: string }[])
      .map((r) => ({ scope: r.scope, id: r.id, body: JSON.parse(r.body) as T }));
  }

  nextSequence(name: string): number {
    return this.stmts.seq.get(name) as number;
  }

  private txWrapper: ((fn: () => unknown) => unknown) | undefined;

  tx<R>(fn: () => R): R {
    // One wrapper for every transaction: better-sqlite3 nests them as savepoints.
    this.txWrapper ??= this.db.transaction((f: () => unknown) => f());
    try {
      return this.txWrapper(fn) as R;
    } catch (e) {
      // Whatever the transaction wrote is undone: caches derived from it must not survive.
      this.rolledBack++;
      throw e;
    }
  }

  close(): void {
    this.db.close();
  }
}
