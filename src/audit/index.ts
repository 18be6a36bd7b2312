// The audit trail's public surface: the API server's `audit` hook, service events (ECS Exec
// data channel, agent gateway) and CloudTrail LookupEvents (AWS JSON 1.1, target prefix
// com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101, signing name `cloudtrail`).
import type { Handler, RequestContext } from '../api/context.js';
import { ApiError } from '../api/errors.js';
import type { CallRecord } from '../api/http-server.js';
import type { SqliteStore } from '../store/store.js';
import { apiCallRecord, serviceEventRecord } from './record.js';
import { AuditTrail, type CloudTrailRecord } from './trail.js';

export { AuditTrail, AuditCommitError, verifyTrail, exportTrail, canonicalJson, chainHash, type CloudTrailRecord, type VerifyResult } from './trail.js';
export { redact, HIDDEN } from './record.js';

/** CloudTrail's look-back: 90 days. */
const LOOKBACK_MS = 90 * 24 * 60 * 60 * 1000;
const ATTRIBUTES = new Set(['EventId', 'EventName', 'ReadOnly', 'Username', 'ResourceType', 'ResourceName', 'EventSource', 'AccessKeyId']);

export interface AuditOptions {
  store: SqliteStore;
  /** HMAC key sealing each record (derived from the master key). */
  sealKey: Buffer;
  /** The account an access key belongs to (for calls whose signature did not verify). */
  accountOfKey: (accessKeyId: string) => string | undefined;
  log: (line: string) => void;
  /** A batch of records could not be committed (the disk may be full). */
  onCommitFailed?: (e: Error) => void;
}

export class Audit {
  readonly trail: AuditTrail;

  constructor(private readonly o: AuditOptions) {
    this.trail = new AuditTrail(o.store.db, o.sealKey);
    this.trail.onError = (e, n) => {
      o.log(`audit: ${n} record(s) could not be committed, their calls are answered 503: ${e.message}`);
      o.onCommitFailed?.(e);
    };
  }

  /** The API server's audit hook: the response is written once the returned promise settles (group commit). */
  onCall(call: CallRecord): Promise<void> {
    return this.trail.enqueue(apiCallRecord(call, this.o.accountOfKey, undefined), call.time, true);
  }

  /** Commits what is queued (at shutdown). */
  flush(): void {
    this.trail.flush();
  }

  /** Records something that is not an API call (a data-channel session, an agent refused); the promise says whether it was committed. */
  event(e: Parameters<typeof serviceEventRecord>[0]): Promise<void> {
    const lost = (err: unknown) => { this.o.log(`audit: could not record ${e.eventSource} ${e.eventName}: ${(err as Error).message}`); };
    try {
      const committed = this.trail.enqueue(serviceEventRecord(e), e.time, true);
      committed.catch(lost);
      return committed;
    } catch (err) {
      lost(err);
      const failed = Promise.reject(err as Error);
      failed.catch(() => undefined); // callers that do not wait must not turn it into an unhandled rejection
      return failed;
    }
  }

  handlers(): Record<string, Handler> {
    return { LookupEvents: (ctx, i) => this.lookupEvents(ctx, i) };
  }

  private lookupEvents(ctx: RequestContext, i: { LookupAttributes?: { AttributeKey: string; AttributeValue: string }[]; StartTime?: number | string; EndTime?: number | string; EventCategory?: string; MaxResults?: number; NextToken?: string }) {
    const attrs = i.LookupAttributes ?? [];
    if (attrs.length > 1) throw new ApiError('InvalidLookupAttributesException', 'LookupAttributes can contain only one attribute.');
    const attribute = attrs[0];
    if (attribute && !ATTRIBUTES.has(attribute.AttributeKey)) throw new ApiError('InvalidLookupAttributesException', `Unknown attribute key ${attribute.AttributeKey}.`);
    if (attribute?.AttributeKey === 'ReadOnly' && !['true', 'false'].includes(attribute.AttributeValue)) {
      throw new ApiError('InvalidLookupAttributesException', 'ReadOnly must be true or false.');
    }
    if (i.EventCategory !== undefined) throw new ApiError('InvalidEventCategoryException', 'Berth records no Insights events; leave out EventCategory.');
    const now = ctx.clock.now();
    const toMs = (t: number | string) => (typeof t === 'number' ? t * 1000 : Date.parse(t));
    const end = i.EndTime !== undefined ? toMs(i.EndTime) : now;
    const start = i.StartTime !== undefined ? toMs(i.StartTime) : now - LOOKBACK_MS;
    if (start > end) throw new ApiError('InvalidTimeRangeException', 'StartTime must be earlier than EndTime.');
    const max = i.MaxResults ?? 50;
    if (max < 1 || max > 50) throw new ApiError('InvalidMaxResultsException', 'MaxResults must be between 1 and 50.');
    let before: number | undefined;
    if (i.NextToken !== undefined) {
      const m = /^seq:(\d+)$/.exec(Buffer.from(i.NextToken, 'base64url').toString('utf8'));
      if (!m) throw new ApiError('InvalidNextTokenException', 'The NextToken is not valid; pass the NextToken of the previous response with the same parameters.');
      before = Number(m[1]);
    }
    const rows = this.trail.lookup({
      account: ctx.scope.account, start, end, limit: max + 1,
      ...(attribute ? { attribute: { key: attribute.AttributeKey, value: attribute.AttributeValue } } : {}),
      ...(before !== undefined ? { before } : {}),
    });
    const page = rows.slice(0, max);
    const more = rows.length > max;
    return {
      Events: page.map(({ record, row }) => {
        const r = JSON.parse(record) as CloudTrailRecord;
        return {
          EventId: row.eventId, EventName: row.eventName, ReadOnly: row.readOnly ? 'true' : 'false',
          ...(row.accessKeyId ? { AccessKeyId: row.accessKeyId } : {}),
          EventTime: row.time / 1000, EventSource: row.eventSource,
          ...(row.username ? { Username: row.username } : {}),
          Resources: (r.resources ?? []).map((x) => ({ ResourceType: x.type, ResourceName: x.ARN })),
          CloudTrailEvent: record,
        };
      }),
      ...(more ? { NextToken: Buffer.from(`seq:${page[page.length - 1]!.seq}`).toString('base64url') } : {}),
    };
  }
}
