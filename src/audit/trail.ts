// The audit trail: CloudTrail-style records in their own SQLite table, append-only and
// tamper-evident.
//
// Chain: record n stores
//   hash_n = SHA-256( hash_{n-1} || "\n" || n || "\n" || record_n )      (hex; hash_0 = 64 zeros)
//   seal_n = HMAC-SHA256( K_audit, hash_n )                                (K_audit derived from the master key)
// where record_n is the record's canonical JSON (keys sorted, no whitespace) exactly as
// stored. Sequence numbers start at 1 and have no gaps. The lookup columns (account, event
// name, user, …) are derived from the record and re-derived by `verify`, so editing one of
// them is an edit too. The chain alone shows where a record was edited, deleted or inserted
// (a deleted record breaks the chain at its successor); the seal shows that a record and
// its hash were written by Berth, so someone with write access to the database but not the
// master key (which lives outside the data dir) cannot re-hash the chain after an edit.
// Truncating the newest records cannot be seen from inside the file: compare the head that
// `berth audit verify` prints with one kept elsewhere (or an export).
//
// Writes: group commit. Each API call's record is chained at once (in order) and queued;
// at the end of the event-loop turn one transaction of prepared INSERTs commits the queue,
// and only then are the responses of those calls written. So no client ever sees an answer
// whose record is not committed, and with WAL a committed record survives a killed process
// (only an OS crash can lose the last ones, as for every other Berth write). Nothing in the
// code updates or deletes a record, and triggers refuse UPDATE and DELETE.
//
// A commit that fails (e.g. the disk is full) fails the whole batch: the chain continues
// from what is on disk and every waiter's promise rejects with AuditCommitError, so the API
// server answers those calls 503 instead of as if they were recorded.
import * as crypto from 'node:crypto';
import { createHash, createHmac, createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import type Database from 'better-sqlite3';

export const GENESIS = '0'.repeat(64);

/** A batch of records could not be committed; `cause` is SQLite's error. */
export class AuditCommitError extends Error {
  constructor(override readonly cause: Error, readonly records: number) {
    super(`${records} audit record(s) could not be committed: ${cause.message}`);
    this.name = 'AuditCommitError';
  }
}

/** A CloudTrail record (eventVersion 1.08 fields; Berth fills what it knows). */
export interface CloudTrailRecord {
  eventVersion: string;
  userIdentity: Record<string, unknown>;
  eventTime: string;
  eventSource: string;
  eventName: string;
  awsRegion: string;
  sourceIPAddress: string;
  userAgent?: string;
  requestParameters: unknown;
  responseElements: unknown;
  errorCode?: string;
  errorMessage?: string;
  requestID: string;
  eventID: string;
  readOnly: boolean;
  resources?: { ARN: string; accountId?: string; type: string }[];
  eventType: string;
  managementEvent: boolean;
  recipientAccountId: string;
  eventCategory: string;
  serviceEventDetails?: unknown;
  tlsDetails?: unknown;
}

/** What an event carries besides the record: lookup keys. */
export interface AuditColumns {
  eventId: string;
  time: number;
  account: string;
  eventSource: string;
  eventName: string;
  username: string | null;
  accessKeyId: string | null;
  readOnly: number;
  /** [{t: type, n: ARN, s: short name}] */
  resources: string;
}

const sortedKeys = (_k: string, v: unknown): unknown => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v).sort()) out[key] = (v as Record<string, unknown>)[key];
  return out;
};

/** Canonical JSON: object keys sorted (UTF-16 order), no whitespace, undefined members left out. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v ?? null, sortedKeys);
}

export function usernameOf(identity: Record<string, unknown>): string | null {
  if (typeof identity.userName === 'string') return identity.userName;
  if (identity.type === 'Root') return 'root';
  const arn = typeof identity.arn === 'string' ? identity.arn : '';
  const m = /:assumed-role\/[^/]+\/(.+)$/.exec(arn);
  return m ? m[1]! : null;
}

/** The lookup columns of a record (the same function at write and verify time). */
export function columnsOf(r: CloudTrailRecord, time: number): AuditColumns {
  const identity = r.userIdentity ?? {};
  return {
    eventId: r.eventID,
    time,
    account: r.recipientAccountId ?? '',
    eventSource: r.eventSource,
    eventName: r.eventName,
    username: usernameOf(identity),
    accessKeyId: typeof identity.accessKeyId === 'string' ? identity.accessKeyId : null,
    readOnly: r.readOnly ? 1 : 0,
    resources: JSON.stringify((r.resources ?? []).map((x) => ({ t: x.type, n: x.ARN, s: shortName(x.ARN) }))),
  };
}

/** `arn:…:cluster/web` → `web`; `arn:…:log-group:/ecs/x` → `/ecs/x`. */
export function shortName(arn: string): string {
  // What follows the fifth colon (nothing when there are fewer).
  let at = -1;
  for (let colons = 0; colons < 5; colons++) { at = arn.indexOf(':', at + 1); if (at < 0) break; }
  const resource = at >= 0 ? arn.slice(at + 1) : '';
  if (resource.startsWith('log-group:')) return resource.slice('log-group:'.length).replace(/:\*$/, '');
  const slash = resource.indexOf('/');
  return slash >= 0 ? resource.slice(slash + 1) : resource;
}

/** Node ≥ 20.12's one-shot digest (no Hash object): the same bytes, hashed at once. */
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : undefined;

export function chainHash(prev: string, seq: number, record: string): string {
  // prev and seq are ASCII, so the UTF-8 of the joined text is the join of the UTF-8 parts.
  if (oneShot) return oneShot('sha256', `${prev}\n${seq}\n${record}`, 'hex');
  return createHash('sha256').update(prev).update('\n').update(String(seq)).update('\n').update(record).digest('hex');
}

export const sealOf = (key: Buffer | KeyObject, hash: string): string => createHmac('sha256', key).update(hash).digest('hex');

interface Row { seq: number; event_id: string; time: number; account: string; event_source: string; event_name: string; username: string | null; access_key_id: string | null; read_only: number; resources: string; record: string; prev_hash: string; hash: string; seal: string }

export interface LookupQuery {
  account: string;
  attribute?: { key: string; value: string };
  start: number;
  end: number;
  limit: number;
  /** Only records with a smaller sequence number (the previous page's last). */
  before?: number;
}

export class AuditTrail {
  private last: { seq: number; hash: string };
  private readonly insert: Database.Statement;
  private readonly insertAll: (rows: unknown[][]) => void;
  private pending: unknown[][] = [];
  private scheduled: Promise<void> | undefined;
  /** Settles the scheduled batch's promise: resolved when committed, rejected when not. */
  private settle: ((failure: AuditCommitError | undefined) => void) | undefined;
  /** The seal key as a KeyObject (HMAC set up without copying the key on every record). */
  private readonly sealKeyObject: KeyObject;
  /** A batch could not be committed (e.g. disk full): its calls are refused, which is logged loudly. */
  onError: ((e: Error, records: number) => void) | undefined;
  private readonly lookups = new Map<string, Database.Statement>();
  /** Records written by this process (for metrics and tests). */
  written = 0;

  constructor(private readonly db: Database.Database, sealKey: Buffer) {
    const head = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
    this.last = head ?? { seq: 0, hash: GENESIS };
    this.sealKeyObject = createSecretKey(sealKey);
    this.insert = db.prepare(`INSERT INTO audit_events (seq, event_id, time, account, event_source, event_name, username, access_key_id, read_only, resources, record, prev_hash, hash, seal)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    // One prepared INSERT per row: a multi-row INSERT measured no faster (bench/authz, 8 rows a batch).
    this.insertAll = db.transaction((rows: unknown[][]) => { for (const r of rows) this.insert.run(r); });
  }

  /** Chains one record (its eventID is set when empty): the row to insert, in order. */
  private chain(record: CloudTrailRecord, time: number, presorted = false): unknown[] {
    if (!record.eventID) record.eventID = randomUUID();
    // Records are built with sorted keys (record.ts), so plain JSON.stringify is canonical;
    // `verify` re-checks that every stored text is (canonicalJson of its parse).
    const text = presorted ? JSON.stringify(record) : canonicalJson(record);
    const seq = this.last.seq + 1;
    const hash = chainHash(this.last.hash, seq, text);
    const c = columnsOf(record, time);
    const row = [seq, c.eventId, c.time, c.account, c.eventSource, c.eventName, c.username, c.accessKeyId, c.readOnly, c.resources,
      text, this.last.hash, hash, sealOf(this.sealKeyObject, hash)];
    this.last = { seq, hash };
    return row;
  }

  /** Appends one record now (after any queued ones); returns its sequence number; throws AuditCommitError when not committed. */
  append(record: CloudTrailRecord, time: number): number {
    const row = this.chain(record, time);
    this.pending.push(row);
    const failure = this.flush();
    if (failure) throw failure;
    return row[0] as number;
  }

  /**
   * Queues one record for the group commit at the end of this event-loop turn; the promise
   * settles once it is committed (the API server writes the response only then). Records
   * keep their order: the chain is extended here, synchronously.
   */
  enqueue(record: CloudTrailRecord, time: number, presorted = false): Promise<void> {
    this.pending.push(this.chain(record, time, presorted));
    this.scheduled ??= new Promise<void>((resolve, reject) => {
      this.settle = (failure) => (failure ? reject(failure) : resolve());
      setImmediate(() => this.flush());
    });
    return this.scheduled;
  }

  /**
   * Commits every queued record in one transaction and settles their waiters; returns the
   * failure when the batch could not be committed (none of it is then on disk).
   */
  flush(): AuditCommitError | undefined {
    const settle = this.settle;
    this.scheduled = undefined;
    this.settle = undefined;
    const rows = this.pending;
    this.pending = [];
    let failure: AuditCommitError | undefined;
    if (rows.length > 0) {
      try {
        this.insertAll(rows);
        this.written += rows.length;
      } catch (e) {
        // Nothing of the batch was written: continue the chain from what is on disk.
        const head = this.db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
        this.last = head ?? { seq: 0, hash: GENESIS };
        failure = new AuditCommitError(e as Error, rows.length);
        this.onError?.(e as Error, rows.length);
      }
    }
    settle?.(failure);
    return failure;
  }

  head(): { seq: number; hash: string } {
    return { ...this.last };
  }

  /** Newest first, as CloudTrail's LookupEvents. */
  lookup(q: LookupQuery): { seq: number; record: string; row: AuditColumns }[] {
    const where = ['account = ?', 'time >= ?', 'time <= ?'];
    const args: unknown[] = [q.account, q.start, q.end];
    if (q.before !== undefined) { where.push('seq < ?'); args.push(q.before); }
    const a = q.attribute;
    if (a) {
      switch (a.key) {
        case 'EventId': where.push('event_id = ?'); args.push(a.value); break;
        case 'EventName': where.push('event_name = ?'); args.push(a.value); break;
        case 'Username': where.push('username = ?'); args.push(a.value); break;
        case 'EventSource': where.push('event_source = ?'); args.push(a.value); break;
        case 'AccessKeyId': where.push('access_key_id = ?'); args.push(a.value); break;
        case 'ReadOnly': where.push('read_only = ?'); args.push(a.value === 'true' ? 1 : 0); break;
        case 'ResourceName':
          where.push(`EXISTS (SELECT 1 FROM json_each(resources) r WHERE json_extract(r.value, '$.n') = ? OR json_extract(r.value, '$.s') = ?)`);
          args.push(a.value, a.value);
          break;
        case 'ResourceType':
          where.push(`EXISTS (SELECT 1 FROM json_each(resources) r WHERE json_extract(r.value, '$.t') = ?)`);
          args.push(a.value);
          break;
        default: throw new Error(`unknown lookup attribute ${a.key}`);
      }
    }
    const sql = `SELECT * FROM audit_events WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`;
    args.push(q.limit);
    let stmt = this.lookups.get(sql);
    if (!stmt) { stmt = this.db.prepare(sql); this.lookups.set(sql, stmt); }
    return (stmt.all(...args) as Row[]).map((r) => ({ seq: r.seq, record: r.record, row: rowColumns(r) }));
  }
}

function rowColumns(r: Row): AuditColumns {
  return {
    eventId: r.event_id, time: r.time, account: r.account, eventSource: r.event_source, eventName: r.event_name,
    username: r.username, accessKeyId: r.access_key_id, readOnly: r.read_only, resources: r.resources,
  };
}

export interface VerifyProblem { seq: number; kind: 'edited' | 'deleted' | 'inserted' | 'unsealed' | 'reordered'; message: string }

export interface VerifyResult {
  records: number;
  head: { seq: number; hash: string };
  sealsChecked: boolean;
  /** The first problem, walking from the oldest record. */
  problem?: VerifyProblem;
}

/**
 * Walks the chain from the oldest record and names the first one that was edited,
 * deleted or inserted. Without `sealKey` only the hash chain is checked.
 */
export function verifyTrail(db: Database.Database, sealKey?: Buffer): VerifyResult {
  let prev = GENESIS;
  let expected = 1;
  let records = 0;
  let head = { seq: 0, hash: GENESIS };
  const rows = db.prepare('SELECT * FROM audit_events ORDER BY seq').iterate() as IterableIterator<Row>;
  const fail = (problem: VerifyProblem): VerifyResult => ({ records, head, sealsChecked: sealKey !== undefined, problem });
  for (const r of rows) {
    records++;
    if (r.seq > expected) {
      const missing = r.seq - 1 === expected ? `record ${expected} is` : `records ${expected}–${r.seq - 1} are`;
      return fail({ seq: expected, kind: 'deleted', message: `${missing} missing (deleted): the chain breaks at record ${r.seq}, which follows record ${expected - 1}` });
    }
    if (r.seq < expected) return fail({ seq: r.seq, kind: 'reordered', message: `record ${r.seq} appears out of order` });
    const hash = chainHash(r.prev_hash, r.seq, r.record);
    if (r.prev_hash !== prev) {
      // Its predecessor's hash is not what it was chained to: something before it changed.
      const own = hash === r.hash && (!sealKey || sealOf(sealKey, r.hash) === r.seal);
      return fail(own
        ? { seq: r.seq, kind: 'deleted', message: `record ${r.seq} does not follow record ${r.seq - 1} (a record was deleted before it and the rest renumbered, or record ${r.seq - 1} was replaced)` }
        : { seq: r.seq, kind: 'inserted', message: `record ${r.seq} was inserted or replaced: it is not chained to record ${r.seq - 1}` });
    }
    if (hash !== r.hash) return fail({ seq: r.seq, kind: 'edited', message: `record ${r.seq} (event ${r.event_id}) was edited: its content no longer matches its hash` });
    let parsed: CloudTrailRecord | undefined;
    try { parsed = JSON.parse(r.record) as CloudTrailRecord; } catch { parsed = undefined; }
    const cols = parsed && columnsOf(parsed, r.time);
    if (!cols || JSON.stringify(cols) !== JSON.stringify(rowColumns(r)) || canonicalJson(parsed) !== r.record) {
      return fail({ seq: r.seq, kind: 'edited', message: `record ${r.seq} (event ${r.event_id}) was edited: its lookup columns do not match its content` });
    }
    if (sealKey && sealOf(sealKey, r.hash) !== r.seal) {
      return fail({ seq: r.seq, kind: 'inserted', message: `record ${r.seq} (event ${r.event_id}) was not written by Berth: its seal does not verify (inserted, or re-hashed after an edit)` });
    }
    prev = r.hash;
    head = { seq: r.seq, hash: r.hash };
    expected = r.seq + 1;
  }
  return { records, head, sealsChecked: sealKey !== undefined };
}

/** Every record, oldest first, as JSON lines (the CloudTrail record plus its place in the chain). */
export function* exportTrail(db: Database.Database, account?: string): Generator<string> {
  const stmt = account === undefined
    ? db.prepare('SELECT seq, record, prev_hash, hash FROM audit_events ORDER BY seq')
    : db.prepare('SELECT seq, record, prev_hash, hash FROM audit_events WHERE account = ? ORDER BY seq');
  const rows = (account === undefined ? stmt.iterate() : stmt.iterate(account)) as IterableIterator<{ seq: number; record: string; prev_hash: string; hash: string }>;
  for (const r of rows) yield `{"berth":{"seq":${r.seq},"prevHash":"${r.prev_hash}","hash":"${r.hash}"},"record":${r.record}}`;
}
