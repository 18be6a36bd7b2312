// The log store and the Logs handlers driven directly (no HTTP), on a temporary data dir
// and a manual clock: ingestion, idempotent resends, ordering, tokens, retention, speed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestContext } from '../../src/api/context.js';
import type { Scope } from '../../src/domain/arn.js';
import { ManualClock } from '../../src/domain/clock.js';
import { Logs } from '../../src/logs/index.js';
import { DAY_MS } from '../../src/logs/names.js';
import { SqliteStore } from '../../src/store/store.js';
import { randomBytes } from 'node:crypto';
import { MasterKey } from '../../src/identity/master-key.js';
import { Kms } from '../../src/kms/kms.js';
import { logSealing } from '../../src/kms/log-sealing.js';

let dir: string;
const master = MasterKey.fromBytes(randomBytes(32));
const sealingFor = (s: SqliteStore) => logSealing(new Kms(s, master, clock));
let store: SqliteStore;
let clock: ManualClock;
let logs: Logs;
const T0 = Date.UTC(2026, 0, 1);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-logs-'));
  store = new SqliteStore(dir);
  clock = new ManualClock(T0);
  logs = new Logs(store, clock, sealingFor(store));
});
after(() => { store.close(); rmSync(dir, { recursive: true, force: true }); });

const scopeA: Scope = { account: '111111111111', region: 'us-east-1', partition: 'aws' };
const scopeB: Scope = { account: '222222222222', region: 'us-east-1', partition: 'aws' };
const scopeGov: Scope = { account: '111111111111', region: 'us-gov-west-1', partition: 'aws-us-gov' };

const ctx = (scope: Scope = scopeA): RequestContext => ({
  requestId: 'test', scope, clock, sourceIp: '127.0.0.1', service: 'logs', action: 'test',
  principal: { accountId: scope.account, accessKeyId: 'AKIATEST', principal: `iam::${scope.account}:root`, userName: 'root' },
});

const events = (n: number, from: number, prefix = 'line') => Array.from({ length: n }, (_, i) => ({ timestamp: from + i, message: `${prefix} ${i}` }));

const at = (...positions: number[]) => ({ source: 'task1/app', positions });

test('putEvents creates the group and stream, stamps ingestionTime, and stores a resent event once', () => {
  const r1 = logs.putEvents(scopeA, '/ecs/web', 'web/app/task1', events(3, T0 - 1000), at(0, 10, 20));
  assert.deepEqual(r1, { stored: 3, duplicate: false, expired: 0, truncated: 0 });
  clock.advance(500);
  // The agent reconnects and resends the same batch: nothing new is stored.
  const again = logs.putEvents(scopeA, '/ecs/web', 'web/app/task1', events(3, T0 - 1000), at(0, 10, 20));
  assert.deepEqual(again, { stored: 0, duplicate: true, expired: 0, truncated: 0 });
  logs.putEvents(scopeA, '/ecs/web', 'web/app/task1', events(2, T0 - 900, 'next'), at(30, 40));
  // Without a source every call stores.
  logs.putEvents(scopeA, '/ecs/web', 'web/app/task1', [{ timestamp: T0, message: 'plain' }]);
  logs.putEvents(scopeA, '/ecs/web', 'web/app/task1', [{ timestamp: T0, message: 'plain' }]);

  const out = logs.getLogEvents(ctx(), { logGroupName: '/ecs/web', logStreamName: 'web/app/task1', startFromHead: true });
  assert.deepEqual(out.events.map((e) => e.message), ['line 0', 'line 1', 'line 2', 'next 0', 'next 1', 'plain', 'plain']);
  assert.equal(out.events[0]!.ingestionTime, T0);
  assert.equal(out.events[3]!.ingestionTime, T0 + 500);

  const groups = logs.describeLogGroups(ctx(), { logGroupNamePrefix: '/ecs/web' }).logGroups;
  assert.equal(groups.length, 1);
  assert.equal(groups[0]!.creationTime, T0);
  assert.equal(groups[0]!.arn, 'arn:aws:logs:us-east-1:111111111111:log-group:/ecs/web:*');
  assert.equal(groups[0]!.storedBytes, 3 * 6 + 2 * 6 + 2 * 5);
  const stream = logs.describeLogStreams(ctx(), { logGroupName: '/ecs/web' }).logStreams[0]!;
  assert.equal(stream.firstEventTimestamp, T0 - 1000);
  assert.equal(stream.lastEventTimestamp, T0);
  assert.equal(stream.lastIngestionTime, T0 + 500);
  assert.equal(stream.arn, 'arn:aws:logs:us-east-1:111111111111:log-group:/ecs/web:log-stream:web/app/task1');

  assert.throws(() => logs.putEvents(scopeA, 'bad group', 's', events(1, T0)), { name: 'InvalidParameterException' });
  assert.throws(() => logs.putEvents(scopeA, 'g', 'bad:stream', events(1, T0)), { name: 'InvalidParameterException' });
});

test('messages above 256 KiB are truncated; empty ones are skipped', () => {
  const big = 'x'.repeat(300 * 1024);
  const r = logs.putEvents(scopeA, 'trunc', 's', [{ timestamp: T0, message: big }, { timestamp: T0, message: '' }, { timestamp: T0, message: 'ok' }]);
  assert.deepEqual(r, { stored: 2, duplicate: false, expired: 0, truncated: 1 });
  const out = logs.getLogEvents(ctx(), { logGroupName: 'trunc', logStreamName: 's', startFromHead: true });
  assert.equal(out.events[0]!.message.length, 256 * 1024);
  assert.equal(out.events[1]!.message, 'ok');
});

test('scopes are separate: the same names in another account or region are other groups', () => {
  logs.putEvents(scopeA, 'shared', 's', [{ timestamp: T0, message: 'from A' }]);
  logs.putEvents(scopeB, 'shared', 's', [{ timestamp: T0, message: 'from B' }]);
  logs.putEvents(scopeGov, 'shared', 's', [{ timestamp: T0, message: 'from gov' }]);
  for (const [scope, msg] of [[scopeA, 'from A'], [scopeB, 'from B'], [scopeGov, 'from gov']] as const) {
    const out = logs.getLogEvents(ctx(scope), { logGroupName: 'shared', logStreamName: 's' });
    assert.deepEqual(out.events.map((e) => e.message), [msg]);
  }
  assert.equal(logs.describeLogGroups(ctx(scopeGov), { logGroupNamePrefix: 'shared' }).logGroups[0]!.arn, 'arn:aws-us-gov:logs:us-gov-west-1:111111111111:log-group:shared:*');
  assert.deepEqual(logs.describeLogGroups(ctx(scopeB), {}).logGroups.map((g) => g.logGroupName), ['shared']);
  // An ARN of another account names nothing this caller can see.
  assert.throws(() => logs.getLogEvents(ctx(scopeB), { logGroupIdentifier: 'arn:aws:logs:us-east-1:111111111111:log-group:trunc', logStreamName: 's' }),
    { name: 'ResourceNotFoundException', message: 'The specified log group does not exist.' });
});

test('GetLogEvents: order by timestamp then arrival, tail by default, tokens both ways, same token at the end', () => {
  // Out-of-order timestamps across batches: reads are in timestamp order.
  logs.putEvents(scopeA, 'order', 's', [{ timestamp: T0 + 10, message: 'c' }, { timestamp: T0 + 5, message: 'b' }]);
  logs.putEvents(scopeA, 'order', 's', [{ timestamp: T0 + 1, message: 'a' }, { timestamp: T0 + 10, message: 'd' }]);
  const all = logs.getLogEvents(ctx(), { logGroupName: 'order', logStreamName: 's', startFromHead: true });
  assert.deepEqual(all.events.map((e) => e.message), ['a', 'b', 'c', 'd']);

  for (let i = 0; i < 25; i++) logs.putEvents(scopeA, 'pages', 's', [{ timestamp: T0 + i * 10, message: `e${i}` }]);
  const g = { logGroupName: 'pages', logStreamName: 's' };
  const tail = logs.getLogEvents(ctx(), { ...g, limit: 10 });
  assert.deepEqual(tail.events.map((e) => e.message), Array.from({ length: 10 }, (_, i) => `e${15 + i}`));
  const older = logs.getLogEvents(ctx(), { ...g, limit: 10, nextToken: tail.nextBackwardToken });
  assert.deepEqual(older.events.map((e) => e.message), Array.from({ length: 10 }, (_, i) => `e${5 + i}`));
  const oldest = logs.getLogEvents(ctx(), { ...g, limit: 10, nextToken: older.nextBackwardToken });
  assert.deepEqual(oldest.events.map((e) => e.message), ['e0', 'e1', 'e2', 'e3', 'e4']);
  const none = logs.getLogEvents(ctx(), { ...g, limit: 10, nextToken: oldest.nextBackwardToken });
  assert.deepEqual(none.events, []);
  assert.equal(none.nextBackwardToken, oldest.nextBackwardToken);
  // Forward from the very beginning gives the oldest events again.
  const fwd = logs.getLogEvents(ctx(), { ...g, limit: 3, nextToken: none.nextForwardToken });
  assert.deepEqual(fwd.events.map((e) => e.message), ['e0', 'e1', 'e2']);

  // Forward from the tail: nothing yet, the same token; a new event then shows up.
  const end = logs.getLogEvents(ctx(), { ...g, nextToken: tail.nextForwardToken });
  assert.deepEqual(end.events, []);
  assert.equal(end.nextForwardToken, tail.nextForwardToken);
  logs.putEvents(scopeA, 'pages', 's', [{ timestamp: T0 + 1000, message: 'late' }]);
  const more = logs.getLogEvents(ctx(), { ...g, nextToken: end.nextForwardToken });
  assert.deepEqual(more.events.map((e) => e.message), ['late']);

  // Time range: [startTime, endTime).
  const range = logs.getLogEvents(ctx(), { ...g, startTime: T0 + 50, endTime: T0 + 100, startFromHead: true });
  assert.deepEqual(range.events.map((e) => e.message), ['e5', 'e6', 'e7', 'e8', 'e9']);
  const emptyRange = logs.getLogEvents(ctx(), { ...g, startTime: T0 + 5000 });
  assert.deepEqual(emptyRange.events, []);
  assert.match(emptyRange.nextForwardToken, /^f\/\d{56}$/);
  assert.match(emptyRange.nextBackwardToken, /^b\/\d{56}$/);

  // Insertion order, for following a stream including late arrivals.
  const stream = logs.store.stream(logs.store.group('111111111111/us-east-1', 'order')!, 's')!;
  const inserted = logs.store.eventsInsertedAfter(stream, 0, 10);
  assert.deepEqual(inserted.map((e) => e.message), ['c', 'b', 'a', 'd']);
  assert.deepEqual(logs.store.eventsInsertedAfter(stream, inserted[1]!.id, 10).map((e) => e.message), ['a', 'd']);
});

test('retention: ingestion drops expired events, pruneExpired deletes old ones and fixes the counters', () => {
  const start = clock.now();
  logs.putEvents(scopeA, 'kept', 's', [{ timestamp: start - 10 * DAY_MS, message: 'old' }, { timestamp: start, message: 'new' }]);
  logs.putEvents(scopeA, 'kept', 'only-old', [{ timestamp: start - 10 * DAY_MS, message: 'old' }]);
  logs.putRetentionPolicy(ctx(), { logGroupName: 'kept', retentionInDays: 7 });
  assert.equal(logs.describeLogGroups(ctx(), { logGroupNamePrefix: 'kept' }).logGroups[0]!.retentionInDays, 7);
  assert.equal(logs.describeLogGroups(ctx(), { logGroupNamePrefix: 'kept' }).logGroups[0]!.storedBytes, 9);
  // Groups without retention keep everything.
  logs.putEvents(scopeA, 'forever', 's', [{ timestamp: 0, message: 'ancient' }]);

  assert.equal(logs.pruneExpired(), 2);
  const out = logs.getLogEvents(ctx(), { logGroupName: 'kept', logStreamName: 's', startFromHead: true });
  assert.deepEqual(out.events.map((e) => e.message), ['new']);
  const g = logs.describeLogGroups(ctx(), { logGroupNamePrefix: 'kept' }).logGroups[0]!;
  assert.equal(g.storedBytes, 3);
  const streams = logs.describeLogStreams(ctx(), { logGroupName: 'kept' }).logStreams;
  assert.equal(streams.find((s) => s.logStreamName === 's')!.firstEventTimestamp, start);
  assert.equal(streams.find((s) => s.logStreamName === 'only-old')!.firstEventTimestamp, undefined);
  assert.equal(logs.getLogEvents(ctx(), { logGroupName: 'forever', logStreamName: 's' }).events.length, 1);

  // New events older than the retention are not stored at all.
  const r = logs.putEvents(scopeA, 'kept', 's', [{ timestamp: start - 8 * DAY_MS, message: 'too old' }, { timestamp: start, message: 'fine' }]);
  assert.deepEqual(r, { stored: 1, duplicate: false, expired: 1, truncated: 0 });

  // Time passes: 'new' and 'fine' expire too.
  clock.advance(8 * DAY_MS);
  assert.equal(logs.pruneExpired(), 2);
  assert.deepEqual(logs.getLogEvents(ctx(), { logGroupName: 'kept', logStreamName: 's' }).events, []);
  logs.deleteRetentionPolicy(ctx(), { logGroupName: 'kept' });
  assert.equal(logs.describeLogGroups(ctx(), { logGroupNamePrefix: 'kept' }).logGroups[0]!.retentionInDays, undefined);
});

test('a resent batch that starts where a stored one did but holds more stores only the new events', () => {
  // An agent killed after its batch was stored but before it kept the acknowledgement: the
  // next agent reads again from the old cursor and finds more lines than were sent before.
  const src = (...positions: number[]) => ({ source: 'ticker:42', positions });
  logs.putEvents(scopeA, 'resend', 's', [{ timestamp: T0, message: 'tick 4' }], src(100));
  const r = logs.putEvents(scopeA, 'resend', 's', ['tick 4', 'tick 5', 'tick 6', 'tick 7'].map((message, i) => ({ timestamp: T0 + i, message })), src(100, 120, 140, 160));
  assert.deepEqual(r, { stored: 3, duplicate: false, expired: 0, truncated: 0 });
  // Cut differently again (a part of a split chunk), and overlapping: still once each.
  logs.putEvents(scopeA, 'resend', 's', ['tick 6', 'tick 7', 'tick 8'].map((message, i) => ({ timestamp: T0 + 2 + i, message })), src(140, 160, 180));
  // Another file of the same container is another source.
  logs.putEvents(scopeA, 'resend', 's', [{ timestamp: T0 + 10, message: 'rotated 0' }], { source: 'ticker:43', positions: [0] });
  assert.deepEqual(logs.getLogEvents(ctx(), { logGroupName: 'resend', logStreamName: 's', startFromHead: true }).events.map((e) => e.message),
    ['tick 4', 'tick 5', 'tick 6', 'tick 7', 'tick 8', 'rotated 0']);
  // Positions that do not describe the batch are refused, and nothing of it is stored.
  for (const positions of [[200], [300, 300], [-1, 5].reverse(), [1.5, 2], ['7' as unknown as number, 8]]) {
    assert.throws(() => logs.putEvents(scopeA, 'resend', 's', events(2, T0, 'bad'), { source: 'ticker:42', positions }), /InvalidParameterException|position/);
  }
  assert.equal(logs.getLogEvents(ctx(), { logGroupName: 'resend', logStreamName: 's', startFromHead: true }).events.length, 6);
});

test('dedupe marks are forgotten after the window; deleting a group deletes its events and marks', () => {
  const src = { source: 'src', positions: [7] };
  logs.putEvents(scopeA, 'marks', 's', [{ timestamp: clock.now(), message: 'one' }], src);
  assert.equal(logs.putEvents(scopeA, 'marks', 's', [{ timestamp: clock.now(), message: 'one' }], src).duplicate, true);
  logs.deleteLogGroup(ctx(), { logGroupName: 'marks' });
  assert.equal(store.db.prepare('SELECT count(*) FROM log_ingest_progress m JOIN log_streams s ON s.id = m.stream_id JOIN log_groups g ON g.id = s.group_id WHERE g.name = ?').pluck().get('marks'), 0);
  // The resend after a deletion is stored into the recreated group.
  assert.equal(logs.putEvents(scopeA, 'marks', 's', [{ timestamp: clock.now(), message: 'one' }], src).duplicate, false);
  clock.advance(15 * DAY_MS);
  logs.pruneExpired();
  assert.equal(logs.putEvents(scopeA, 'marks', 's', [{ timestamp: clock.now(), message: 'two' }], src).duplicate, false);
});

test('50,000 events: ingested in batches and read back page by page, forward, backward and filtered, quickly', () => {
  const started = process.hrtime.bigint();
  const base = clock.now() - 60_000;
  const N = 50_000;
  for (let b = 0; b < N / 500; b++) {
    const batch = Array.from({ length: 500 }, (_, i) => ({ timestamp: base + b * 500 + i, message: `request ${b * 500 + i} status=${(b * 500 + i) % 10 === 0 ? 500 : 200} path=/api/items` }));
    logs.putEvents(scopeA, '/perf', b % 2 ? 'odd' : 'even', batch, { source: 'perf', positions: batch.map((_, i) => b * 500 + i) });
  }
  const ingested = Number(process.hrtime.bigint() - started) / 1e6;

  const seen: number[] = [];
  for (const stream of ['even', 'odd']) {
    let token: string | undefined;
    for (;;) {
      const r = logs.getLogEvents(ctx(), { logGroupName: '/perf', logStreamName: stream, startFromHead: true, limit: 1000, ...(token ? { nextToken: token } : {}) });
      for (const e of r.events) seen.push(Number(e.message.split(' ')[1]));
      if (r.nextForwardToken === token) break;
      token = r.nextForwardToken;
    }
  }
  assert.equal(seen.length, N);
  assert.equal(new Set(seen).size, N);

  let back = 0;
  let token: string | undefined;
  for (;;) {
    const r = logs.getLogEvents(ctx(), { logGroupName: '/perf', logStreamName: 'odd', limit: 2500, ...(token ? { nextToken: token } : {}) });
    back += r.events.length;
    if (r.nextBackwardToken === token) break;
    token = r.nextBackwardToken;
  }
  assert.equal(back, N / 2);

  // Interleaved across streams, in timestamp order, with a filter.
  let matched = 0, last = -1, pages = 0;
  let next: string | undefined;
  do {
    const r = logs.filterLogEvents(ctx(), { logGroupName: '/perf', filterPattern: '"status=500"', ...(next ? { nextToken: next } : {}) });
    for (const e of r.events) { assert.ok(e.timestamp! >= last); last = e.timestamp!; }
    matched += r.events.length;
    next = r.nextToken;
    pages++;
  } while (next);
  assert.equal(matched, N / 10);
  const total = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(total < 3000, `50,000 events took ${total.toFixed(0)} ms (ingest ${ingested.toFixed(0)} ms)`);
});

test('the log tables survive a reopen of the store', () => {
  logs.putEvents(scopeA, 'durable', 's', [{ timestamp: clock.now(), message: 'kept across restarts' }], { source: 'd', positions: [1] });
  store.close();
  store = new SqliteStore(dir);
  logs = new Logs(store, clock, sealingFor(store));
  assert.deepEqual(logs.getLogEvents(ctx(), { logGroupName: 'durable', logStreamName: 's' }).events.map((e) => e.message), ['kept across restarts']);
  assert.equal(logs.putEvents(scopeA, 'durable', 's', [{ timestamp: clock.now(), message: 'x' }], { source: 'd', positions: [1] }).duplicate, true);
});
