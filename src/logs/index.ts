// A CloudWatch Logs–compatible subset (AWS JSON 1.1, target prefix Logs_20140328, signing
// name `logs`): log groups, streams and events of the containers Berth runs, readable with
// the unmodified `aws logs` CLI and SDKs. Timestamps are epoch milliseconds here.
// Berth itself writes events through `putEvents` (the agents' log shipping); users may
// also write with CreateLogStream/PutLogEvents.
import type { Handler, RequestContext } from '../api/context.js';
import { invalidParameter } from '../api/errors.js';
import type { Scope } from '../domain/arn.js';
import { scopeKey } from '../domain/arn.js';
import type { Clock } from '../domain/clock.js';
import type { SqliteStore } from '../store/store.js';
import { isMatchAll, matchesPattern, parseFilterPattern } from './filter-pattern.js';
import {
  checkGroupName, checkRetention, checkStreamName, DAY_MS, decodeToken, encodeToken, EVENT_OVERHEAD_BYTES, eventId,
  formatStreamToken, GROUP_NOT_FOUND, groupArn, groupNameOf, identifierToName, MAX_RESPONSE_BYTES, parseStreamToken,
  resourceAlreadyExists, resourceNotFound, STREAM_NOT_FOUND, streamArn, validationException, type Position,
} from './names.js';
import { LogStore, MAX_POS, type IngestSource, type LogSealing, type LogEventInput, type LogGroupRow, type LogStreamRow, type PutEventsResult } from './store.js';

export { LogStore, type LogEventInput, type PutEventsResult } from './store.js';

const EVENTS_LIMIT = 10_000;
const DESCRIBE_LIMIT = 50;
/** FilterLogEvents examines at most this many events per call and then returns a nextToken. */
export const FILTER_SCAN_BUDGET = 100_000;
/** PutLogEvents: a batch may not span more than 24 hours; events may be at most 2 hours ahead or 14 days old. */
const MAX_BATCH_SPAN_MS = DAY_MS;
const MAX_FUTURE_MS = 2 * 60 * 60 * 1000;
const MAX_AGE_MS = 14 * DAY_MS;
const MAX_BATCH_BYTES = 1_048_576;

const bytesOf = (message: string) => Buffer.byteLength(message, 'utf8') + EVENT_OVERHEAD_BYTES;
const sequenceToken = (n: number) => String(n).padStart(56, '0');
const before = (a: Position, b: Position) => a.ts < b.ts || (a.ts === b.ts && a.id < b.id);
const isPosition = (v: any) => v && Number.isSafeInteger(v.ts) && Number.isSafeInteger(v.id);

interface GetLogEventsInput {
  logGroupName?: string; logGroupIdentifier?: string; logStreamName: string;
  startTime?: number; endTime?: number; nextToken?: string; limit?: number; startFromHead?: boolean; unmask?: boolean;
}

interface FilterLogEventsInput {
  logGroupName?: string; logGroupIdentifier?: string; logStreamNames?: string[]; logStreamNamePrefix?: string;
  startTime?: number; endTime?: number; filterPattern?: string; nextToken?: string; limit?: number; interleaved?: boolean; unmask?: boolean;
}

export class Logs {
  readonly store: LogStore;
  /** `sealing`: events of groups with a kmsKeyId are sealed at rest and opened for readers. */
  constructor(store: SqliteStore, private readonly clock: Clock, private readonly sealing: LogSealing) {
    this.store = new LogStore(store.db, clock, sealing);
  }

  /**
   * Ingestion for the rest of Berth (not exposed over HTTP): see LogStore.putEvents. Creates
   * the group and stream on first use; stores a resent event from `from` only once.
   */
  putEvents(scope: Scope | string, group: string, stream: string, events: LogEventInput[], from?: IngestSource): PutEventsResult {
    return this.store.putEvents(scope, group, stream, events, from);
  }

  /** Deletes events older than their group's retention; call periodically. */
  pruneExpired(now: number = this.clock.now()): number {
    return this.store.pruneExpired(now);
  }

  private decoder(ctx: RequestContext): (message: string) => string {
    const sealing = this.sealing;
    const scope = scopeKey(ctx.scope);
    return (m) => sealing.open(scope, m);
  }

  private requireGroup(ctx: RequestContext, name: string): LogGroupRow {
    const g = this.store.group(scopeKey(ctx.scope), name);
    if (!g) throw resourceNotFound(GROUP_NOT_FOUND);
    return g;
  }

  private requireStream(group: LogGroupRow, name: string): LogStreamRow {
    const s = this.store.stream(group, checkStreamName(name));
    if (!s) throw resourceNotFound(STREAM_NOT_FOUND);
    return s;
  }

  private groupView(scope: Scope, g: LogGroupRow) {
    const arn = groupArn(scope, g.name);
    return {
      logGroupName: g.name,
      creationTime: g.created,
      ...(g.retention_days !== null ? { retentionInDays: g.retention_days } : {}),
      metricFilterCount: 0,
      arn: `${arn}:*`,
      storedBytes: g.stored_bytes,
      ...(g.kms_key_id !== null ? { kmsKeyId: g.kms_key_id } : {}),
      logGroupClass: g.class,
      logGroupArn: arn,
      ...(g.deletion_protection ? { deletionProtectionEnabled: true } : {}),
    };
  }

  private streamView(scope: Scope, g: LogGroupRow, s: LogStreamRow) {
    return {
      logStreamName: s.name,
      creationTime: s.created,
      ...(s.first_event !== null ? { firstEventTimestamp: s.first_event } : {}),
      ...(s.last_event !== null ? { lastEventTimestamp: s.last_event } : {}),
      ...(s.last_ingestion !== null ? { lastIngestionTime: s.last_ingestion } : {}),
      uploadSequenceToken: sequenceToken(s.upload_seq + 1),
      arn: streamArn(scope, g.name, s.name),
      // CloudWatch reports 0 for streams since 2019; the group's storedBytes counts.
      storedBytes: 0,
    };
  }

  // Groups ------------------------------------------------------------------------------

  createLogGroup(ctx: RequestContext, input: { logGroupName: string; kmsKeyId?: string; tags?: Record<string, string>; logGroupClass?: string; deletionProtectionEnabled?: boolean }) {
    const name = checkGroupName(input.logGroupName);
    if (name.startsWith('aws/')) throw invalidParameter(`Log group names can't start with 'aws/'; '${name}' is reserved for AWS services.`);
    const kmsKeyId = input.kmsKeyId !== undefined ? this.kmsKeyFor(ctx, input.kmsKeyId) : undefined;
    const created = this.store.createGroup(scopeKey(ctx.scope), name, ctx.clock.now(), {
      ...(kmsKeyId !== undefined ? { kmsKeyId } : {}),
      ...(input.logGroupClass !== undefined ? { logGroupClass: input.logGroupClass } : {}),
      ...(input.deletionProtectionEnabled !== undefined ? { deletionProtection: input.deletionProtectionEnabled } : {}),
      ...(input.tags !== undefined ? { tags: input.tags } : {}),
    });
    if (!created) throw resourceAlreadyExists('The specified log group already exists');
    return {};
  }

  private kmsKeyFor(ctx: RequestContext, kmsKeyId: string): string {
    return this.sealing.checkKey(scopeKey(ctx.scope), kmsKeyId);
  }

  /** New events of the group are sealed under the key; events stored before stay as they are. */
  associateKmsKey(ctx: RequestContext, input: { logGroupName?: string; kmsKeyId: string; resourceIdentifier?: string }) {
    if (input.resourceIdentifier !== undefined) throw invalidParameter('Berth associates KMS keys with log groups only; use logGroupName.');
    if (input.logGroupName === undefined) throw invalidParameter('logGroupName is required.');
    const g = this.requireGroup(ctx, checkGroupName(input.logGroupName));
    this.store.setKmsKey(g, this.kmsKeyFor(ctx, input.kmsKeyId));
    return {};
  }

  /** New events are stored unsealed; events sealed before still need their key to be read. */
  disassociateKmsKey(ctx: RequestContext, input: { logGroupName?: string; resourceIdentifier?: string }) {
    if (input.resourceIdentifier !== undefined) throw invalidParameter('Berth associates KMS keys with log groups only; use logGroupName.');
    if (input.logGroupName === undefined) throw invalidParameter('logGroupName is required.');
    const g = this.requireGroup(ctx, checkGroupName(input.logGroupName));
    this.store.setKmsKey(g, null);
    return {};
  }

  deleteLogGroup(ctx: RequestContext, input: { logGroupName: string }) {
    const g = this.requireGroup(ctx, checkGroupName(input.logGroupName));
    if (g.deletion_protection) throw validationException('Cannot delete log group with deletion protection enabled. Disable deletion protection first.');
    this.store.deleteGroup(g);
    return {};
  }

  putLogGroupDeletionProtection(ctx: RequestContext, input: { logGroupIdentifier: string; deletionProtectionEnabled: boolean }) {
    const g = this.requireGroup(ctx, identifierToName(ctx.scope, input.logGroupIdentifier, 'logGroupIdentifier'));
    this.store.setDeletionProtection(g, input.deletionProtectionEnabled);
    return {};
  }

  putRetentionPolicy(ctx: RequestContext, input: { logGroupName: string; retentionInDays: number }) {
    const days = checkRetention(input.retentionInDays);
    this.store.setRetention(this.requireGroup(ctx, checkGroupName(input.logGroupName)), days);
    return {};
  }

  deleteRetentionPolicy(ctx: RequestContext, input: { logGroupName: string }) {
    this.store.setRetention(this.requireGroup(ctx, checkGroupName(input.logGroupName)), null);
    return {};
  }

  describeLogGroups(ctx: RequestContext, input: {
    accountIdentifiers?: string[]; logGroupNamePrefix?: string; logGroupNamePattern?: string; nextToken?: string; limit?: number;
    includeLinkedAccounts?: boolean; logGroupClass?: string; logGroupIdentifiers?: string[];
  }) {
    const limit = input.limit ?? DESCRIBE_LIMIT;
    const { logGroupNamePrefix: prefix, logGroupNamePattern: pattern } = input;
    if (prefix !== undefined && pattern !== undefined) throw invalidParameter('logGroupNamePrefix and logGroupNamePattern are mutually exclusive; specify at most one.');
    if (input.logGroupIdentifiers && (prefix !== undefined || pattern !== undefined)) {
      throw invalidParameter('logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern.');
    }
    if (prefix !== undefined) checkGroupName(prefix, 'logGroupNamePrefix');
    if (input.accountIdentifiers?.length && !input.accountIdentifiers.includes(ctx.scope.account)) return { logGroups: [] };
    const wanted = input.logGroupIdentifiers && new Set(input.logGroupIdentifiers.map((id) => {
      try { return identifierToName(ctx.scope, id, 'logGroupIdentifiers'); } catch { return undefined; }
    }));
    const after = decodeToken<string>(input.nextToken, (v) => typeof v === 'string');
    const keep = (g: LogGroupRow) =>
      (pattern === undefined || g.name.includes(pattern)) &&
      (input.logGroupClass === undefined || g.class === input.logGroupClass) &&
      (!wanted || wanted.has(g.name));
    const scope = scopeKey(ctx.scope);
    const page: LogGroupRow[] = [];
    let cursor = after ?? '';
    let more = false;
    scan: for (;;) {
      const batch = this.store.groups(scope, prefix ?? '', cursor, 200);
      for (const g of batch) {
        if (prefix !== undefined && !g.name.startsWith(prefix)) break scan;
        cursor = g.name;
        if (!keep(g)) continue;
        if (page.length === limit) { more = true; break scan; }
        page.push(g);
      }
      if (batch.length < 200) break;
    }
    return {
      logGroups: page.map((g) => this.groupView(ctx.scope, g)),
      ...(more ? { nextToken: encodeToken(page[page.length - 1]!.name) } : {}),
    };
  }

  // Streams -----------------------------------------------------------------------------

  createLogStream(ctx: RequestContext, input: { logGroupName: string; logStreamName: string }) {
    const g = this.requireGroup(ctx, checkGroupName(input.logGroupName));
    if (!this.store.createStream(g, checkStreamName(input.logStreamName), ctx.clock.now())) {
      throw resourceAlreadyExists('The specified log stream already exists');
    }
    return {};
  }

  deleteLogStream(ctx: RequestContext, input: { logGroupName: string; logStreamName: string }) {
    const g = this.requireGroup(ctx, checkGroupName(input.logGroupName));
    if (g.deletion_protection) throw validationException('Cannot delete log stream of a log group with deletion protection enabled. Disable deletion protection first.');
    this.store.deleteStream(this.requireStream(g, input.logStreamName));
    return {};
  }

  describeLogStreams(ctx: RequestContext, input: {
    logGroupName?: string; logGroupIdentifier?: string; logStreamNamePrefix?: string; orderBy?: 'LogStreamName' | 'LastEventTime';
    descending?: boolean; nextToken?: string; limit?: number;
  }) {
    const g = this.requireGroup(ctx, groupNameOf(ctx.scope, input)!);
    const orderBy = input.orderBy ?? 'LogStreamName';
    const prefix = input.logStreamNamePrefix;
    if (prefix !== undefined && orderBy === 'LastEventTime') throw invalidParameter('Cannot order by LastEventTime with a logStreamNamePrefix.');
    if (prefix !== undefined) checkStreamName(prefix, 'logStreamNamePrefix');
    const descending = input.descending ?? false;
    const limit = input.limit ?? DESCRIBE_LIMIT;
    const after = decodeToken<{ t: number; name: string }>(input.nextToken, (v) => v && typeof v.name === 'string' && Number.isSafeInteger(v.t));
    const rows = this.store.streams(g, { orderBy, descending, limit: limit + 1, ...(after ? { after } : {}), ...(prefix !== undefined ? { prefix } : {}) })
      .filter((s) => prefix === undefined || s.name.startsWith(prefix));
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      logStreams: page.map((s) => this.streamView(ctx.scope, g, s)),
      ...(more && last ? { nextToken: encodeToken({ t: last.last_event ?? -1, name: last.name }) } : {}),
    };
  }

  // Events ------------------------------------------------------------------------------

  putLogEvents(ctx: RequestContext, input: { logGroupName: string; logStreamName: string; logEvents: LogEventInput[]; sequenceToken?: string; entity?: unknown }) {
    const g = this.requireGroup(ctx, checkGroupName(input.logGroupName));
    const s = this.requireStream(g, input.logStreamName);
    const events = input.logEvents;
    let bytes = 0, min = MAX_POS, max = -1;
    for (const e of events) {
      bytes += bytesOf(e.message);
      min = Math.min(min, e.timestamp);
      max = Math.max(max, e.timestamp);
    }
    if (bytes > MAX_BATCH_BYTES) throw invalidParameter(`The batch of log events is ${bytes} bytes (message bytes + 26 per event); the maximum is ${MAX_BATCH_BYTES}.`);
    if (max - min > MAX_BATCH_SPAN_MS) throw invalidParameter('The batch of log events in a single PutLogEvents request cannot span more than 24 hours.');
    const now = ctx.clock.now();
    const retentionCutoff = g.retention_days === null ? -1 : now - g.retention_days * DAY_MS;
    // As CloudWatch: indexes assume a chronological batch; rejected events are not stored.
    let tooNewStart: number | undefined, tooOldEnd: number | undefined, expiredEnd: number | undefined;
    const accepted: LogEventInput[] = [];
    events.forEach((e, i) => {
      if (e.timestamp > now + MAX_FUTURE_MS) { tooNewStart ??= i; return; }
      if (e.timestamp < retentionCutoff) { expiredEnd = i + 1; return; }
      if (e.timestamp < now - MAX_AGE_MS) { tooOldEnd = i + 1; return; }
      accepted.push(e);
    });
    this.store.db.transaction(() => { this.store.append(g, s, accepted, now); })();
    const rejected = {
      ...(tooNewStart !== undefined ? { tooNewLogEventStartIndex: tooNewStart } : {}),
      ...(tooOldEnd !== undefined ? { tooOldLogEventEndIndex: tooOldEnd } : {}),
      ...(expiredEnd !== undefined ? { expiredLogEventEndIndex: expiredEnd } : {}),
    };
    return { nextSequenceToken: sequenceToken(s.upload_seq + 2), ...(Object.keys(rejected).length ? { rejectedLogEventsInfo: rejected } : {}) };
  }

  getLogEvents(ctx: RequestContext, input: GetLogEventsInput) {
    const g = this.requireGroup(ctx, groupNameOf(ctx.scope, input)!);
    const s = this.requireStream(g, input.logStreamName);
    const limit = input.limit ?? EVENTS_LIMIT;
    // The time range is [startTime, endTime); a token is a point between two events.
    const lo: Position = { ts: input.startTime ?? 0, id: 0 };
    const hi: Position = { ts: input.endTime ?? MAX_POS, id: 0 };
    let backward: boolean;
    let boundary: Position;
    if (input.nextToken !== undefined) {
      const t = parseStreamToken(input.nextToken);
      backward = t.direction === 'b';
      boundary = t.position;
    } else {
      backward = !(input.startFromHead ?? false);
      boundary = backward ? hi : lo;
    }
    const from = !backward && before(lo, boundary) ? boundary : lo;
    const to = backward && before(boundary, hi) ? boundary : hi;
    const rows = [];
    let bytes = 0;
    const decode = this.decoder(ctx);
    if (before(from, to)) {
      for (const r of this.store.streamEvents(s, from, to, backward)) {
        r.message = decode(r.message);
        const size = bytesOf(r.message);
        if (rows.length === limit || (rows.length > 0 && bytes + size > MAX_RESPONSE_BYTES)) break;
        bytes += size;
        rows.push(r);
      }
    }
    if (backward) rows.reverse();
    const first = rows[0], last = rows[rows.length - 1];
    let forward: Position, back: Position;
    if (first && last) {
      forward = { ts: last.ts, id: last.id + 1 };
      back = { ts: first.ts, id: first.id };
    } else {
      // Nothing (more) in this direction: the same point both ways, so a client that was
      // paging gets its own token back; a first call points at the start of the range.
      const point = input.nextToken !== undefined ? boundary : lo;
      forward = back = point;
    }
    return {
      events: rows.map((r) => ({ timestamp: r.ts, message: r.message, ingestionTime: r.ingested })),
      nextForwardToken: formatStreamToken('f', forward),
      nextBackwardToken: formatStreamToken('b', back),
    };
  }

  filterLogEvents(ctx: RequestContext, input: FilterLogEventsInput) {
    const g = this.requireGroup(ctx, groupNameOf(ctx.scope, input)!);
    if (input.logStreamNames && input.logStreamNamePrefix !== undefined) {
      throw invalidParameter('logStreamNames and logStreamNamePrefix are mutually exclusive; specify at most one.');
    }
    const pattern = parseFilterPattern(input.filterPattern ?? '');
    const matchAll = isMatchAll(pattern);
    const limit = input.limit ?? EVENTS_LIMIT;
    const streams = this.store.allStreams(g);
    const names = new Map(streams.map((s) => [s.id, s.name] as const));
    let selected = streams;
    if (input.logStreamNames) {
      const wanted = new Set(input.logStreamNames.map((n) => checkStreamName(n, 'logStreamNames')));
      selected = streams.filter((s) => wanted.has(s.name));
    } else if (input.logStreamNamePrefix !== undefined) {
      const prefix = checkStreamName(input.logStreamNamePrefix, 'logStreamNamePrefix');
      selected = streams.filter((s) => s.name.startsWith(prefix));
    }
    const only = selected.length === streams.length ? undefined : new Set(selected.map((s) => s.id));
    // FilterLogEvents' endTime is inclusive.
    const lo: Position = { ts: input.startTime ?? 0, id: 0 };
    const hi: Position = { ts: input.endTime === undefined ? MAX_POS : Math.min(input.endTime + 1, MAX_POS), id: 0 };
    const after = decodeToken<Position>(input.nextToken, isPosition);
    const from = after && before(lo, after) ? after : lo;
    const events = [];
    let bytes = 0, scanned = 0;
    let next: Position | undefined;
    const decode = this.decoder(ctx);
    if (selected.length > 0 && before(from, hi)) {
      for (const r of this.store.groupEvents(g, from, hi)) {
        if (events.length === limit || scanned === FILTER_SCAN_BUDGET) { next = { ts: r.ts, id: r.id }; break; }
        scanned++;
        if (only && !only.has(r.stream_id)) continue;
        r.message = decode(r.message);
        if (!matchAll && !matchesPattern(pattern, r.message)) continue;
        const size = bytesOf(r.message);
        if (events.length > 0 && bytes + size > MAX_RESPONSE_BYTES) { next = { ts: r.ts, id: r.id }; break; }
        bytes += size;
        events.push({ logStreamName: names.get(r.stream_id)!, timestamp: r.ts, message: r.message, ingestionTime: r.ingested, eventId: eventId(r) });
      }
    }
    const searched = selected
      .filter((s) => s.first_event !== null && s.first_event < hi.ts && s.last_event! >= lo.ts)
      .map((s) => ({ logStreamName: s.name, searchedCompletely: next === undefined || s.last_event! < next.ts }));
    return { events, searchedLogStreams: searched, ...(next ? { nextToken: encodeToken(next) } : {}) };
  }

  handlers(): Record<string, Handler> {
    return {
      CreateLogGroup: (ctx, i) => this.createLogGroup(ctx, i),
      DeleteLogGroup: (ctx, i) => this.deleteLogGroup(ctx, i),
      DescribeLogGroups: (ctx, i) => this.describeLogGroups(ctx, i),
      PutRetentionPolicy: (ctx, i) => this.putRetentionPolicy(ctx, i),
      DeleteRetentionPolicy: (ctx, i) => this.deleteRetentionPolicy(ctx, i),
      PutLogGroupDeletionProtection: (ctx, i) => this.putLogGroupDeletionProtection(ctx, i),
      CreateLogStream: (ctx, i) => this.createLogStream(ctx, i),
      DeleteLogStream: (ctx, i) => this.deleteLogStream(ctx, i),
      DescribeLogStreams: (ctx, i) => this.describeLogStreams(ctx, i),
      PutLogEvents: (ctx, i) => this.putLogEvents(ctx, i),
      GetLogEvents: (ctx, i) => this.getLogEvents(ctx, i),
      FilterLogEvents: (ctx, i) => this.filterLogEvents(ctx, i),
      AssociateKmsKey: (ctx, i) => this.associateKmsKey(ctx, i),
      DisassociateKmsKey: (ctx, i) => this.disassociateKmsKey(ctx, i),
    };
  }
}
