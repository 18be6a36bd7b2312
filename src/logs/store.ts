// The log store: groups, streams and events in their own SQLite tables (migration in
// store/store.ts). Events sort by (timestamp, id); `id` is the insertion order, so every
// read is a keyset range scan over an index:
//   log_events_by_stream (stream_id, ts, id)  GetLogEvents
//   log_events_by_group  (group_id, ts, id)   FilterLogEvents, retention
// Each ingested batch is one transaction of prepared inserts.
import type Database from 'better-sqlite3';
import { invalidParameter } from '../api/errors.js';
import type { Clock } from '../domain/clock.js';
import { scopeKey, type Scope } from '../domain/arn.js';
import { checkGroupName, checkStreamName, DAY_MS, truncateMessage, type Position } from './names.js';

export interface LogGroupRow {
  id: number;
  scope: string;
  name: string;
  created: number;
  retention_days: number | null;
  kms_key_id: string | null;
  class: string;
  deletion_protection: number;
  tags: string | null;
  stored_bytes: number;
}

export interface LogStreamRow {
  id: number;
  group_id: number;
  name: string;
  created: number;
  first_event: number | null;
  last_event: number | null;
  last_ingestion: number | null;
  stored_bytes: number;
  upload_seq: number;
}

export interface LogEventRow { id: number; stream_id: number; ts: number; ingested: number; message: string }

export interface LogEventInput { timestamp: number; message: string }

/** How log events are sealed at rest under a group's KMS key, and opened for readers (kms/log-sealing.ts). */
export interface LogSealing {
  seal(scope: string, kmsKeyId: string, message: string): string;
  isSealed(message: string): boolean;
  /** Opens a sealed message for a reader in `scope` (a value that is not sealed comes back as it is). */
  open(scope: string, message: string): string;
  /** Checks a kmsKeyId given to CreateLogGroup/AssociateKmsKey and returns the key ARN to store. */
  checkKey(scope: string, kmsKeyId: string): string;
}

export interface NewGroup { kmsKeyId?: string; logGroupClass?: string; deletionProtection?: boolean; tags?: Record<string, string> }

export interface PutEventsResult {
  /** Events stored by this call. */
  stored: number;
  /** True when every event of the batch was already ingested from its source: nothing was stored. */
  duplicate: boolean;
  /** Events dropped because they are older than the group's retention. */
  expired: number;
  /** Messages cut to 256 KiB. */
  truncated: number;
}

/** The largest timestamp/id a position can hold. */
export const MAX_POS = Number.MAX_SAFE_INTEGER;

/**
 * Where a batch's events come from, for storing a resent one only once: `source` names a file
 * (or any append-only origin) and `positions[i]` is where event i starts in it, strictly
 * increasing.
 */
export interface IngestSource { source: string; positions: number[] }

/** How long an idle source's progress is kept for deduplicating resent batches. */
export const DEDUPE_WINDOW_MS = 14 * DAY_MS;

export class LogStore {
  private readonly s;
  /**
   * `sealing` seals a message at rest for a group with a kmsKeyId (KMS envelope sealing);
   * values already sealed (ECS Exec transcripts) are stored as they are.
   */
  constructor(readonly db: Database.Database, private readonly clock: Clock, private readonly sealing: Pick<LogSealing, 'seal' | 'isSealed'>) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      group: p('SELECT * FROM log_groups WHERE scope = ? AND name = ?'),
      insertGroup: p(`INSERT INTO log_groups (scope, name, created, kms_key_id, class, deletion_protection, tags)
                      VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`),
      groupsAfter: p('SELECT * FROM log_groups WHERE scope = ? AND name >= ? AND name > ? ORDER BY name LIMIT ?'),
      setProtection: p('UPDATE log_groups SET deletion_protection = ? WHERE id = ?'),
      setKmsKey: p('UPDATE log_groups SET kms_key_id = ? WHERE id = ?'),
      groupsWithRetention: p('SELECT * FROM log_groups WHERE retention_days IS NOT NULL'),
      setRetention: p('UPDATE log_groups SET retention_days = ? WHERE id = ?'),
      deleteGroup: p('DELETE FROM log_groups WHERE id = ?'),
      deleteGroupStreams: p('DELETE FROM log_streams WHERE group_id = ?'),
      deleteGroupEvents: p('DELETE FROM log_events WHERE group_id = ?'),
      deleteGroupMarks: p('DELETE FROM log_ingest_progress WHERE stream_id IN (SELECT id FROM log_streams WHERE group_id = ?)'),
      groupBytes: p('UPDATE log_groups SET stored_bytes = stored_bytes + ? WHERE id = ?'),

      stream: p('SELECT * FROM log_streams WHERE group_id = ? AND name = ?'),
      insertStream: p('INSERT INTO log_streams (group_id, name, created) VALUES (?, ?, ?) RETURNING *'),
      streamsByName: p('SELECT * FROM log_streams WHERE group_id = ? AND name >= ? AND name > ? ORDER BY name LIMIT ?'),
      streamsByNameDesc: p('SELECT * FROM log_streams WHERE group_id = ? AND name < ? ORDER BY name DESC LIMIT ?'),
      streamsByNameDescAll: p('SELECT * FROM log_streams WHERE group_id = ? ORDER BY name DESC LIMIT ?'),
      streamsByTime: p(`SELECT * FROM log_streams WHERE group_id = ? AND (coalesce(last_event, -1), name) > (?, ?)
                        ORDER BY coalesce(last_event, -1), name LIMIT ?`),
      streamsByTimeDesc: p(`SELECT * FROM log_streams WHERE group_id = ? AND (coalesce(last_event, -1), name) < (?, ?)
                            ORDER BY coalesce(last_event, -1) DESC, name DESC LIMIT ?`),
      streamsOfGroup: p('SELECT * FROM log_streams WHERE group_id = ? ORDER BY name'),
      deleteStream: p('DELETE FROM log_streams WHERE id = ?'),
      deleteStreamEvents: p('DELETE FROM log_events WHERE stream_id = ?'),
      deleteStreamMarks: p('DELETE FROM log_ingest_progress WHERE stream_id = ?'),
      streamAppended: p(`UPDATE log_streams SET
                           first_event = min(coalesce(first_event, ?), ?),
                           last_event = max(coalesce(last_event, ?), ?),
                           last_ingestion = ?, stored_bytes = stored_bytes + ?, upload_seq = upload_seq + 1
                         WHERE id = ?`),

      insertEvent: p('INSERT INTO log_events (stream_id, group_id, ts, ingested, message) VALUES (?, ?, ?, ?, ?)'),
      storedTo: p('SELECT stored_to FROM log_ingest_progress WHERE stream_id = ? AND source = ?').pluck(),
      setStoredTo: p(`INSERT INTO log_ingest_progress (stream_id, source, stored_to, at) VALUES (?, ?, ?, ?)
                      ON CONFLICT (stream_id, source) DO UPDATE SET stored_to = max(stored_to, excluded.stored_to), at = excluded.at`),
      pruneMarks: p('DELETE FROM log_ingest_progress WHERE at < ?'),

      forward: p(`SELECT id, stream_id, ts, ingested, message FROM log_events
                  WHERE stream_id = ? AND (ts, id) >= (?, ?) AND (ts, id) < (?, ?) ORDER BY ts, id`),
      backward: p(`SELECT id, stream_id, ts, ingested, message FROM log_events
                   WHERE stream_id = ? AND (ts, id) >= (?, ?) AND (ts, id) < (?, ?) ORDER BY ts DESC, id DESC`),
      groupForward: p(`SELECT id, stream_id, ts, ingested, message FROM log_events
                       WHERE group_id = ? AND (ts, id) >= (?, ?) AND (ts, id) < (?, ?) ORDER BY ts, id`),
      // A rowid range scan (`+` keeps SQLite off the stream index): cheap near the end.
      inserted: p(`SELECT id, stream_id, ts, ingested, message FROM log_events
                   WHERE id > ? AND +stream_id = ? ORDER BY id LIMIT ?`),

      expiredByStream: p(`SELECT stream_id, sum(length(CAST(message AS BLOB))) AS bytes FROM log_events
                          WHERE group_id = ? AND ts < ? GROUP BY stream_id`),
      deleteExpired: p('DELETE FROM log_events WHERE group_id = ? AND ts < ?'),
      streamAfterPrune: p(`UPDATE log_streams SET stored_bytes = max(0, stored_bytes - @bytes),
                             first_event = (SELECT min(ts) FROM log_events WHERE stream_id = @id),
                             last_event = CASE WHEN EXISTS (SELECT 1 FROM log_events WHERE stream_id = @id) THEN last_event END
                           WHERE id = @id`),
    };
  }

  // Groups ------------------------------------------------------------------------------

  group(scope: string, name: string): LogGroupRow | undefined {
    return this.s.group.get(scope, name) as LogGroupRow | undefined;
  }

  /** Creates a group; undefined when one of that name exists already. */
  createGroup(scope: string, name: string, now: number, opts: NewGroup = {}): LogGroupRow | undefined {
    if (this.group(scope, name)) return undefined;
    return this.s.insertGroup.get(scope, name, now, opts.kmsKeyId ?? null, opts.logGroupClass ?? 'STANDARD',
      opts.deletionProtection ? 1 : 0, opts.tags ? JSON.stringify(opts.tags) : null) as LogGroupRow;
  }

  /** Groups of a scope in name order: names >= `from` and strictly after `after`. */
  groups(scope: string, from: string, after: string, limit: number): LogGroupRow[] {
    return this.s.groupsAfter.all(scope, from, after, limit) as LogGroupRow[];
  }

  setDeletionProtection(group: LogGroupRow, enabled: boolean): void {
    this.s.setProtection.run(enabled ? 1 : 0, group.id);
  }

  /** AssociateKmsKey / DisassociateKmsKey: events ingested from now on are sealed under it (or not). */
  setKmsKey(group: LogGroupRow, kmsKeyId: string | null): void {
    this.s.setKmsKey.run(kmsKeyId, group.id);
  }

  setRetention(group: LogGroupRow, days: number | null): void {
    this.s.setRetention.run(days, group.id);
  }

  deleteGroup(group: LogGroupRow): void {
    this.db.transaction(() => {
      this.s.deleteGroupMarks.run(group.id);
      this.s.deleteGroupEvents.run(group.id);
      this.s.deleteGroupStreams.run(group.id);
      this.s.deleteGroup.run(group.id);
    })();
  }

  // Streams -----------------------------------------------------------------------------

  stream(group: LogGroupRow, name: string): LogStreamRow | undefined {
    return this.s.stream.get(group.id, name) as LogStreamRow | undefined;
  }

  createStream(group: LogGroupRow, name: string, now: number): LogStreamRow | undefined {
    if (this.stream(group, name)) return undefined;
    return this.s.insertStream.get(group.id, name, now) as LogStreamRow;
  }

  allStreams(group: LogGroupRow): LogStreamRow[] {
    return this.s.streamsOfGroup.all(group.id) as LogStreamRow[];
  }

  /**
   * A page of streams from `after` (the previous page's last stream: its lastEventTime, or -1
   * without events, and name). Names sort as SQLite compares them (UTF-8 bytes); with
   * `prefix`, the scan starts where that prefix starts and the caller stops where it ends.
   */
  streams(group: LogGroupRow, opts: { orderBy: 'LogStreamName' | 'LastEventTime'; descending: boolean; prefix?: string; after?: { t: number; name: string }; limit: number }): LogStreamRow[] {
    const { descending, limit, after, prefix } = opts;
    if (opts.orderBy === 'LogStreamName') {
      if (!descending) return this.s.streamsByName.all(group.id, prefix ?? '', after?.name ?? '', limit) as LogStreamRow[];
      const upper = after?.name ?? (prefix !== undefined ? prefix + '\u{10FFFF}' : undefined);
      return (upper === undefined
        ? this.s.streamsByNameDescAll.all(group.id, limit)
        : this.s.streamsByNameDesc.all(group.id, upper, limit)) as LogStreamRow[];
    }
    return (descending
      ? this.s.streamsByTimeDesc.all(group.id, after?.t ?? MAX_POS, after?.name ?? '', limit)
      : this.s.streamsByTime.all(group.id, after?.t ?? -2, after?.name ?? '', limit)) as LogStreamRow[];
  }

  deleteStream(stream: LogStreamRow): void {
    this.db.transaction(() => {
      const bytes = stream.stored_bytes;
      this.s.deleteStreamMarks.run(stream.id);
      this.s.deleteStreamEvents.run(stream.id);
      this.s.deleteStream.run(stream.id);
      this.s.groupBytes.run(-bytes, stream.group_id);
    })();
  }

  // Events ------------------------------------------------------------------------------

  /**
   * The ingestion entry point for the rest of Berth (the instance agents' log shipping):
   * stores a batch in `group`/`stream` of `scope`, creating both on first use (the awslogs
   * driver's `awslogs-create-group`), with ingestionTime from the clock. With `from`, only
   * the events starting past the last one this stream has stored from that source are stored, so an
   * agent may resend after a reconnect or a restart, with the same events or more. Messages
   * above 256 KiB are truncated; empty ones are skipped; events older than the group's
   * retention are dropped. One transaction per batch.
   */
  putEvents(scope: Scope | string, group: string, stream: string, events: LogEventInput[], from?: IngestSource): PutEventsResult {
    checkGroupName(group);
    checkStreamName(stream);
    if (from) checkIngestSource(from, events.length);
    const key = typeof scope === 'string' ? scope : scopeKey(scope);
    const now = this.clock.now();
    return this.db.transaction((): PutEventsResult => {
      const g = this.group(key, group) ?? this.createGroup(key, group, now)!;
      const s = this.stream(g, stream) ?? this.createStream(g, stream, now)!;
      let fresh = events;
      if (from) {
        const storedTo = (this.s.storedTo.get(s.id, from.source) as number | undefined) ?? -1;
        const first = from.positions.findIndex((pos) => pos > storedTo);
        if (first < 0) return { stored: 0, duplicate: true, expired: 0, truncated: 0 };
        fresh = events.slice(first);
        this.s.setStoredTo.run(s.id, from.source, from.positions[from.positions.length - 1], now);
      }
      return { ...this.append(g, s, fresh, now), duplicate: false };
    })();
  }

  /** Stores events in an existing stream (inside the caller's transaction). */
  append(group: LogGroupRow, stream: LogStreamRow, events: LogEventInput[], now: number): { stored: number; expired: number; truncated: number } {
    const cutoff = group.retention_days === null ? -1 : now - group.retention_days * DAY_MS;
    let stored = 0, expired = 0, truncated = 0, bytes = 0;
    let first = MAX_POS, last = -1;
    const insert = this.s.insertEvent;
    const sealing = group.kms_key_id !== null ? this.sealing : undefined;
    for (const e of events) {
      const ts = Math.trunc(e.timestamp);
      if (!Number.isSafeInteger(ts) || ts < 0) throw invalidParameter(`Event timestamps must be epoch milliseconds (a non-negative integer); got ${e.timestamp}.`);
      if (typeof e.message !== 'string') throw invalidParameter('Event messages must be strings.');
      if (e.message === '') continue;
      if (ts < cutoff) { expired++; continue; }
      const message = truncateMessage(e.message);
      if (message !== e.message) truncated++;
      insert.run(stream.id, group.id, ts, now, sealing && !sealing.isSealed(message) ? sealing.seal(group.scope, group.kms_key_id!, message) : message);
      stored++;
      bytes += Buffer.byteLength(message, 'utf8');
      if (ts < first) first = ts;
      if (ts > last) last = ts;
    }
    if (stored > 0) {
      this.s.streamAppended.run(first, first, last, last, now, bytes, stream.id);
      this.s.groupBytes.run(bytes, group.id);
    }
    return { stored, expired, truncated };
  }

  /**
   * Events of a stream in [from, to) (positions), ascending; or descending from `to` when
   * `backward`. Iterate lazily: callers stop at a count or byte budget.
   */
  streamEvents(stream: LogStreamRow, from: Position, to: Position, backward: boolean): IterableIterator<LogEventRow> {
    const stmt = backward ? this.s.backward : this.s.forward;
    return stmt.iterate(stream.id, from.ts, from.id, to.ts, to.id) as IterableIterator<LogEventRow>;
  }

  /** Events of every stream of a group in [from, to), ascending (interleaved by time). */
  groupEvents(group: LogGroupRow, from: Position, to: Position): IterableIterator<LogEventRow> {
    return this.s.groupForward.iterate(group.id, from.ts, from.id, to.ts, to.id) as IterableIterator<LogEventRow>;
  }

  /**
   * Events of a stream in insertion order after event id `afterId` (for following a stream,
   * including late events with old timestamps). Scans ids after `afterId` over all streams,
   * so it is meant for cursors near the end of the log.
   */
  eventsInsertedAfter(stream: LogStreamRow, afterId: number, limit: number): LogEventRow[] {
    return this.s.inserted.all(afterId, stream.id, limit) as LogEventRow[];
  }

  /**
   * Deletes events older than their group's retention (by event timestamp, as CloudWatch)
   * and forgets dedupe marks older than DEDUPE_WINDOW_MS. Returns the events removed.
   */
  pruneExpired(now: number = this.clock.now()): number {
    let removed = 0;
    for (const g of this.s.groupsWithRetention.all() as LogGroupRow[]) {
      const cutoff = now - g.retention_days! * DAY_MS;
      removed += this.db.transaction(() => {
        const affected = this.s.expiredByStream.all(g.id, cutoff) as { stream_id: number; bytes: number }[];
        if (affected.length === 0) return 0;
        const n = this.s.deleteExpired.run(g.id, cutoff).changes;
        let bytes = 0;
        for (const a of affected) {
          this.s.streamAfterPrune.run({ id: a.stream_id, bytes: a.bytes });
          bytes += a.bytes;
        }
        this.s.groupBytes.run(-bytes, g.id);
        return n;
      })();
    }
    this.s.pruneMarks.run(now - DEDUPE_WINDOW_MS);
    return removed;
  }
}

function checkIngestSource(from: IngestSource, events: number): void {
  if (typeof from.source !== 'string' || from.source.length === 0 || from.source.length > 512) throw invalidParameter('A batch source must be a string of 1 to 512 characters.');
  if (!Array.isArray(from.positions) || from.positions.length !== events) throw invalidParameter('A batch must give the position of each of its events in its source.');
  let previous = -1;
  for (const pos of from.positions) {
    if (!Number.isSafeInteger(pos) || pos <= previous) throw invalidParameter('Event positions must be non-negative integers, strictly increasing.');
    previous = pos;
  }
}
