// The CloudWatch Logs subset, driven with @aws-sdk/client-cloudwatch-logs and the aws CLI
// against a real Berth process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, DeleteLogGroupCommand, DeleteLogStreamCommand,
  DescribeLogGroupsCommand, DescribeLogStreamsCommand, FilterLogEventsCommand, GetLogEventsCommand, PutLogEventsCommand,
  PutLogGroupDeletionProtectionCommand, PutRetentionPolicyCommand, DeleteRetentionPolicyCommand,
  paginateDescribeLogGroups, paginateFilterLogEvents, paginateGetLogEvents, type InputLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { raw } from '../helpers/raw.js';
import { SqliteStore } from '../../src/store/store.js';
import { Credentials, newAccountId } from '../../src/identity/credentials.js';
import { MasterKey } from '../../src/identity/master-key.js';

let berth: TestBerth;
let logs: CloudWatchLogsClient;
let account: string;

const client = (region = berth.creds.region, creds?: { accessKeyId: string; secretAccessKey: string }) => new CloudWatchLogsClient({
  endpoint: berth.creds.endpoint, region, maxAttempts: 1,
  credentials: creds ?? { accessKeyId: berth.creds.accessKeyId, secretAccessKey: berth.creds.secretAccessKey },
});

before(async () => {
  berth = await startTestBerth();
  logs = client();
  await logs.send(new CreateLogGroupCommand({ logGroupName: 'probe' }));
  const g = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: 'probe' }));
  account = g.logGroups![0]!.logGroupArn!.split(':')[4]!;
});
after(async () => { logs?.destroy(); await berth.cleanup(); });

const now = () => Date.now();
const put = (group: string, stream: string, logEvents: InputLogEvent[]) =>
  logs.send(new PutLogEventsCommand({ logGroupName: group, logStreamName: stream, logEvents }));

async function groupWithStream(group: string, stream: string, logEvents: InputLogEvent[] = []) {
  await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
  await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: stream }));
  if (logEvents.length) await put(group, stream, logEvents);
}

test('log groups: create, describe fields, prefix and pagination, already exists, delete', async () => {
  const before = now();
  const key = berth.aws(['kms', 'create-key']).json.KeyMetadata.Arn as string;
  await assert.rejects(logs.send(new CreateLogGroupCommand({ logGroupName: '/ecs/web', kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/abc' })),
    (e: any) => e.name === 'InvalidParameterException' && /cannot be used with this log group/.test(e.message));
  await logs.send(new CreateLogGroupCommand({ logGroupName: '/ecs/web', kmsKeyId: key, tags: { team: 'a' } }));
  for (const n of ['/ecs/api', '/ecs/worker', '/ecs/cron', '/ecs/db', '/ecs/cache', '/other']) await logs.send(new CreateLogGroupCommand({ logGroupName: n }));

  const web = (await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: '/ecs/web' }))).logGroups!;
  assert.equal(web.length, 1);
  const g = web[0]!;
  assert.equal(g.logGroupName, '/ecs/web');
  assert.equal(g.arn, `arn:aws:logs:us-east-1:${account}:log-group:/ecs/web:*`);
  assert.equal(g.logGroupArn, `arn:aws:logs:us-east-1:${account}:log-group:/ecs/web`);
  assert.equal(g.metricFilterCount, 0);
  assert.equal(g.storedBytes, 0);
  assert.equal(g.logGroupClass, 'STANDARD');
  assert.equal(g.kmsKeyId, key);
  assert.equal(g.retentionInDays, undefined);
  assert.ok(g.creationTime! >= before - 5 && g.creationTime! <= now() + 5, 'creationTime is in epoch milliseconds');

  // Name order, limit and nextToken.
  const names: string[] = [];
  let pages = 0;
  for await (const page of paginateDescribeLogGroups({ client: logs, pageSize: 2 }, { logGroupNamePrefix: '/ecs/' })) {
    names.push(...page.logGroups!.map((x) => x.logGroupName!));
    pages++;
  }
  assert.deepEqual(names, ['/ecs/api', '/ecs/cache', '/ecs/cron', '/ecs/db', '/ecs/web', '/ecs/worker']);
  assert.equal(pages, 3);
  const pattern = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePattern: 'r' }));
  assert.deepEqual(pattern.logGroups!.map((x) => x.logGroupName), ['/ecs/cron', '/ecs/worker', '/other', 'probe']);

  await assert.rejects(logs.send(new CreateLogGroupCommand({ logGroupName: '/ecs/web' })), { name: 'ResourceAlreadyExistsException' });
  await logs.send(new DeleteLogGroupCommand({ logGroupName: '/ecs/worker' }));
  await assert.rejects(logs.send(new DeleteLogGroupCommand({ logGroupName: '/ecs/worker' })),
    { name: 'ResourceNotFoundException', message: 'The specified log group does not exist.' });

  // Deletion protection.
  await logs.send(new CreateLogGroupCommand({ logGroupName: 'protected', deletionProtectionEnabled: true }));
  await assert.rejects(logs.send(new DeleteLogGroupCommand({ logGroupName: 'protected' })), { name: 'ValidationException', message: /deletion protection/ });
  await logs.send(new PutLogGroupDeletionProtectionCommand({ logGroupIdentifier: 'protected', deletionProtectionEnabled: false }));
  await logs.send(new DeleteLogGroupCommand({ logGroupName: 'protected' }));
});

test('bad input: names, limits, retention values, unknown groups and streams', async () => {
  await assert.rejects(logs.send(new CreateLogGroupCommand({ logGroupName: 'has space' })), { name: 'InvalidParameterException', message: /regular expression pattern/ });
  await assert.rejects(logs.send(new CreateLogGroupCommand({ logGroupName: 'x'.repeat(513) })), { name: 'InvalidParameterException', message: /length/ });
  await assert.rejects(logs.send(new CreateLogGroupCommand({ logGroupName: 'aws/mine' })), { name: 'InvalidParameterException', message: /aws\// });
  await assert.rejects(logs.send(new CreateLogGroupCommand({ logGroupName: 'x', logGroupClass: 'CHEAP' as any })), { name: 'InvalidParameterException', message: /enum value set/ });
  await assert.rejects(logs.send(new DescribeLogGroupsCommand({ limit: 51 })), { name: 'InvalidParameterException', message: /less than or equal to 50/ });
  await assert.rejects(logs.send(new DescribeLogGroupsCommand({ nextToken: 'garbage' })), { name: 'InvalidParameterException', message: /nextToken/ });

  await groupWithStream('errors', 's');
  await assert.rejects(logs.send(new CreateLogStreamCommand({ logGroupName: 'errors', logStreamName: 's' })), { name: 'ResourceAlreadyExistsException' });
  await assert.rejects(logs.send(new CreateLogStreamCommand({ logGroupName: 'errors', logStreamName: 'a:b' })), { name: 'InvalidParameterException' });
  await assert.rejects(logs.send(new CreateLogStreamCommand({ logGroupName: 'nope', logStreamName: 's' })), { name: 'ResourceNotFoundException', message: 'The specified log group does not exist.' });
  await assert.rejects(logs.send(new GetLogEventsCommand({ logGroupName: 'nope', logStreamName: 's' })), { name: 'ResourceNotFoundException', message: 'The specified log group does not exist.' });
  await assert.rejects(logs.send(new GetLogEventsCommand({ logGroupName: 'errors', logStreamName: 'nope' })), { name: 'ResourceNotFoundException', message: 'The specified log stream does not exist.' });
  await assert.rejects(put('errors', 'nope', [{ timestamp: now(), message: 'x' }]), { name: 'ResourceNotFoundException', message: 'The specified log stream does not exist.' });
  await assert.rejects(logs.send(new FilterLogEventsCommand({ logGroupName: 'nope' })), { name: 'ResourceNotFoundException' });
  await assert.rejects(logs.send(new DescribeLogStreamsCommand({ logGroupName: 'nope' })), { name: 'ResourceNotFoundException' });
  await assert.rejects(logs.send(new DescribeLogStreamsCommand({})), { name: 'InvalidParameterException', message: /logGroupName or logGroupIdentifier/ });
  await assert.rejects(logs.send(new GetLogEventsCommand({ logGroupName: 'errors', logGroupIdentifier: 'errors', logStreamName: 's' })), { name: 'InvalidParameterException', message: /mutually exclusive/ });
  await assert.rejects(logs.send(new GetLogEventsCommand({ logGroupName: 'errors', logStreamName: 's', limit: 10_001 })), { name: 'InvalidParameterException', message: /less than or equal to 10000/ });
  await assert.rejects(logs.send(new GetLogEventsCommand({ logGroupName: 'errors', logStreamName: 's', nextToken: 'f/123' })), { name: 'InvalidParameterException', message: /nextToken/ });
  await assert.rejects(logs.send(new FilterLogEventsCommand({ logGroupName: 'errors', filterPattern: '{ $.level = "x" }' })), { name: 'InvalidParameterException', message: /not supported/ });
  await assert.rejects(logs.send(new FilterLogEventsCommand({ logGroupName: 'errors', logStreamNames: ['s'], logStreamNamePrefix: 's' })), { name: 'InvalidParameterException' });
  await assert.rejects(logs.send(new DescribeLogStreamsCommand({ logGroupName: 'errors', orderBy: 'LastEventTime', logStreamNamePrefix: 's' })),
    { name: 'InvalidParameterException', message: 'Cannot order by LastEventTime with a logStreamNamePrefix.' });

  for (const days of [0, 2, 4, 10, 366, 3650]) {
    await assert.rejects(logs.send(new PutRetentionPolicyCommand({ logGroupName: 'errors', retentionInDays: days })),
      { name: 'InvalidParameterException', message: new RegExp(`Value '${days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: \\[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653\\]`) });
  }
  await assert.rejects(logs.send(new PutRetentionPolicyCommand({ logGroupName: 'nope', retentionInDays: 7 })), { name: 'ResourceNotFoundException' });
  await logs.send(new PutRetentionPolicyCommand({ logGroupName: 'errors', retentionInDays: 3653 }));
  assert.equal((await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: 'errors' }))).logGroups![0]!.retentionInDays, 3653);
  await logs.send(new DeleteRetentionPolicyCommand({ logGroupName: 'errors' }));
  assert.equal((await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: 'errors' }))).logGroups![0]!.retentionInDays, undefined);

  // The logs target must be signed for the logs service.
  const r = await raw(berth.creds, 'DescribeLogGroups', '{}', { target: 'Logs_20140328.DescribeLogGroups', service: 'ecs' });
  assert.equal(r.status, 400);
  assert.equal(r.json.__type, 'InvalidSignatureException');
  const ok = await raw(berth.creds, 'DescribeLogGroups', '{"limit":1}', { target: 'Logs_20140328.DescribeLogGroups', service: 'logs' });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.logGroups.length, 1);
});

test('GetLogEvents: tail by default, startFromHead, forward and backward tokens, same token at the end, time ranges', async () => {
  const t0 = now() - 60_000;
  const evs = Array.from({ length: 25 }, (_, i) => ({ timestamp: t0 + i * 1000, message: `event ${i}` }));
  await groupWithStream('/app/paging', 'main', evs);
  const base = { logGroupName: '/app/paging', logStreamName: 'main' };
  const msgs = (r: { events?: { message?: string }[] }) => r.events!.map((e) => e.message);
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `event ${from + i}`);

  const tail = await logs.send(new GetLogEventsCommand({ ...base, limit: 10 }));
  assert.deepEqual(msgs(tail), range(15, 25));
  assert.match(tail.nextForwardToken!, /^f\/\d{56}$/);
  assert.match(tail.nextBackwardToken!, /^b\/\d{56}$/);
  assert.equal(tail.events![0]!.timestamp, t0 + 15_000);
  assert.ok(tail.events![0]!.ingestionTime! >= t0);

  const b1 = await logs.send(new GetLogEventsCommand({ ...base, limit: 10, nextToken: tail.nextBackwardToken }));
  assert.deepEqual(msgs(b1), range(5, 15));
  const b2 = await logs.send(new GetLogEventsCommand({ ...base, limit: 10, nextToken: b1.nextBackwardToken }));
  assert.deepEqual(msgs(b2), range(0, 5));
  const b3 = await logs.send(new GetLogEventsCommand({ ...base, limit: 10, nextToken: b2.nextBackwardToken }));
  assert.deepEqual(msgs(b3), []);
  assert.equal(b3.nextBackwardToken, b2.nextBackwardToken);

  const head = await logs.send(new GetLogEventsCommand({ ...base, limit: 10, startFromHead: true }));
  assert.deepEqual(msgs(head), range(0, 10));
  const f1 = await logs.send(new GetLogEventsCommand({ ...base, limit: 10, nextToken: head.nextForwardToken }));
  assert.deepEqual(msgs(f1), range(10, 20));
  // And back again from the middle.
  const back = await logs.send(new GetLogEventsCommand({ ...base, limit: 3, nextToken: f1.nextBackwardToken }));
  assert.deepEqual(msgs(back), range(7, 10));
  const f2 = await logs.send(new GetLogEventsCommand({ ...base, limit: 10, nextToken: f1.nextForwardToken }));
  assert.deepEqual(msgs(f2), range(20, 25));
  const f3 = await logs.send(new GetLogEventsCommand({ ...base, limit: 10, nextToken: f2.nextForwardToken }));
  assert.deepEqual(msgs(f3), []);
  assert.equal(f3.nextForwardToken, f2.nextForwardToken);

  // New events appear when following the forward token.
  await put('/app/paging', 'main', [{ timestamp: now(), message: 'fresh' }]);
  const f4 = await logs.send(new GetLogEventsCommand({ ...base, nextToken: f3.nextForwardToken }));
  assert.deepEqual(msgs(f4), ['fresh']);

  // [startTime, endTime)
  const win = await logs.send(new GetLogEventsCommand({ ...base, startTime: t0 + 3000, endTime: t0 + 7000, startFromHead: true }));
  assert.deepEqual(msgs(win), range(3, 7));
  const winTail = await logs.send(new GetLogEventsCommand({ ...base, startTime: t0 + 3000, endTime: t0 + 7000, limit: 2 }));
  assert.deepEqual(msgs(winTail), range(5, 7));

  // The SDK paginator, stopping when the token repeats.
  const all: string[] = [];
  for await (const page of paginateGetLogEvents({ client: logs, pageSize: 7, stopOnSameToken: true }, { ...base, startFromHead: true })) {
    all.push(...msgs(page) as string[]);
  }
  assert.deepEqual(all, [...range(0, 25), 'fresh']);

  // logGroupIdentifier takes a name or an ARN (with or without :*).
  for (const id of ['/app/paging', `arn:aws:logs:us-east-1:${account}:log-group:/app/paging`, `arn:aws:logs:us-east-1:${account}:log-group:/app/paging:*`]) {
    const r = await logs.send(new GetLogEventsCommand({ logGroupIdentifier: id, logStreamName: 'main', limit: 1 }));
    assert.deepEqual(msgs(r), ['fresh']);
  }
});

test('PutLogEvents: accepted, rejected (too new, too old, expired) and refused batches', async () => {
  await groupWithStream('/app/put', 's');
  const t = now();
  const DAY = 86_400_000, HOUR = 3_600_000;
  // A batch may span 24 hours: one event just past CloudWatch's 14 days, one just within.
  const r = await put('/app/put', 's', [{ timestamp: t - 14 * DAY - HOUR, message: 'too old' }, { timestamp: t - 14 * DAY + HOUR, message: 'old' }]);
  assert.deepEqual(r.rejectedLogEventsInfo, { tooOldLogEventEndIndex: 1 });
  const r1 = await put('/app/put', 's', [{ timestamp: t, message: 'ok' }, { timestamp: t + 3 * HOUR, message: 'too new' }]);
  assert.deepEqual(r1.rejectedLogEventsInfo, { tooNewLogEventStartIndex: 1 });
  const got1 = await logs.send(new GetLogEventsCommand({ logGroupName: '/app/put', logStreamName: 's', startFromHead: true }));
  assert.deepEqual(got1.events!.map((e) => e.message), ['old', 'ok']);
  assert.match(r.nextSequenceToken!, /^\d{56}$/);
  await logs.send(new PutRetentionPolicyCommand({ logGroupName: '/app/put', retentionInDays: 1 }));
  const r2 = await put('/app/put', 's', [{ timestamp: t - DAY - HOUR, message: 'expired' }, { timestamp: t - HOUR, message: 'ok 2' }]);
  assert.deepEqual(r2.rejectedLogEventsInfo, { expiredLogEventEndIndex: 1 });
  const got = await logs.send(new GetLogEventsCommand({ logGroupName: '/app/put', logStreamName: 's', startFromHead: true }));
  // Stored events past the retention stay readable until the periodic pruning (as in CloudWatch, which deletes later too).
  assert.deepEqual(got.events!.map((e) => e.message), ['old', 'ok 2', 'ok']);
  await assert.rejects(put('/app/put', 's', [{ timestamp: t - 25 * 3_600_000, message: 'a' }, { timestamp: t, message: 'b' }]),
    { name: 'InvalidParameterException', message: /24 hours/ });
  await assert.rejects(put('/app/put', 's', []), { name: 'InvalidParameterException' });
  await assert.rejects(put('/app/put', 's', [{ timestamp: t, message: '' }]), { name: 'InvalidParameterException' });

  const stream = (await logs.send(new DescribeLogStreamsCommand({ logGroupName: '/app/put' }))).logStreams![0]!;
  assert.equal(stream.logStreamName, 's');
  assert.equal(stream.firstEventTimestamp, t - 14 * DAY + HOUR);
  assert.equal(stream.lastEventTimestamp, t);
  assert.ok(stream.lastIngestionTime! >= t - 1000);
  assert.equal(stream.arn, `arn:aws:logs:us-east-1:${account}:log-group:/app/put:log-stream:s`);
  assert.equal((await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: '/app/put' }))).logGroups![0]!.storedBytes, 3 + 2 + 4);
});

test('DescribeLogStreams: prefix, order by name or last event time, descending, pagination', async () => {
  await logs.send(new CreateLogGroupCommand({ logGroupName: '/app/streams' }));
  const t = now() - 10_000;
  const order = ['web/c', 'web/a', 'api/x', 'web/b', 'api/y'];
  for (const [i, name] of order.entries()) {
    await logs.send(new CreateLogStreamCommand({ logGroupName: '/app/streams', logStreamName: name }));
    await put('/app/streams', name, [{ timestamp: t + i * 1000, message: name }]);
  }
  await logs.send(new CreateLogStreamCommand({ logGroupName: '/app/streams', logStreamName: 'empty' }));
  const list = async (input: Omit<ConstructorParameters<typeof DescribeLogStreamsCommand>[0], 'logGroupName'>) => {
    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const r = await logs.send(new DescribeLogStreamsCommand({ logGroupName: '/app/streams', ...input, nextToken }));
      names.push(...r.logStreams!.map((s) => s.logStreamName!));
      nextToken = r.nextToken;
    } while (nextToken);
    return names;
  };
  assert.deepEqual(await list({}), ['api/x', 'api/y', 'empty', 'web/a', 'web/b', 'web/c']);
  assert.deepEqual(await list({ limit: 2 }), ['api/x', 'api/y', 'empty', 'web/a', 'web/b', 'web/c']);
  assert.deepEqual(await list({ logStreamNamePrefix: 'web/', limit: 2 }), ['web/a', 'web/b', 'web/c']);
  assert.deepEqual(await list({ logStreamNamePrefix: 'web/', descending: true, limit: 2 }), ['web/c', 'web/b', 'web/a']);
  assert.deepEqual(await list({ descending: true }), ['web/c', 'web/b', 'web/a', 'empty', 'api/y', 'api/x']);
  assert.deepEqual(await list({ orderBy: 'LastEventTime', limit: 4 }), ['empty', 'web/c', 'web/a', 'api/x', 'web/b', 'api/y']);
  assert.deepEqual(await list({ orderBy: 'LastEventTime', descending: true, limit: 1 }), ['api/y', 'web/b', 'api/x', 'web/a', 'web/c', 'empty']);
  const empty = (await logs.send(new DescribeLogStreamsCommand({ logGroupName: '/app/streams', logStreamNamePrefix: 'empty' }))).logStreams![0]!;
  assert.equal(empty.firstEventTimestamp, undefined);
  assert.equal(empty.lastEventTimestamp, undefined);
  assert.equal(empty.storedBytes, 0);
  assert.ok(empty.creationTime! > t);

  await logs.send(new DeleteLogStreamCommand({ logGroupName: '/app/streams', logStreamName: 'web/a' }));
  assert.deepEqual(await list({ logStreamNamePrefix: 'web/' }), ['web/b', 'web/c']);
  await assert.rejects(logs.send(new DeleteLogStreamCommand({ logGroupName: '/app/streams', logStreamName: 'web/a' })), { name: 'ResourceNotFoundException' });
  assert.equal((await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: '/app/streams' }))).logGroups![0]!.storedBytes, 5 * 4);
});

test('FilterLogEvents: patterns, streams, time range, interleaving, pagination', async () => {
  await logs.send(new CreateLogGroupCommand({ logGroupName: '/app/filter' }));
  const t = now() - 100_000;
  const lines: Record<string, string[]> = {
    'web/1': ['GET /api/items 200', 'ERROR timeout talking to db', 'GET /health 200', 'WARN slow request'],
    'web/2': ['POST /api/items 500', 'ERROR NullPointerException at x', 'GET /api/users 200'],
    'worker/1': ['job started', 'ERROR job failed: "disk full"', 'job done'],
  };
  let i = 0;
  for (const [stream, msgs] of Object.entries(lines)) {
    await logs.send(new CreateLogStreamCommand({ logGroupName: '/app/filter', logStreamName: stream }));
    // Interleave timestamps across streams: stream k gets t + k, t + 10 + k, ...
    await put('/app/filter', stream, msgs.map((m, j) => ({ timestamp: t + j * 10 + i, message: m })));
    i++;
  }
  const filter = async (input: Omit<ConstructorParameters<typeof FilterLogEventsCommand>[0], 'logGroupName'> = {}) =>
    (await logs.send(new FilterLogEventsCommand({ logGroupName: '/app/filter', ...input })));
  const msgs = (r: { events?: { message?: string }[] }) => r.events!.map((e) => e.message);

  const all = await filter();
  assert.equal(all.events!.length, 10);
  // Interleaved in timestamp order.
  assert.deepEqual(msgs(all).slice(0, 3), ['GET /api/items 200', 'POST /api/items 500', 'job started']);
  const e0 = all.events![0]!;
  assert.equal(e0.logStreamName, 'web/1');
  assert.match(e0.eventId!, /^\d{56}$/);
  assert.equal(new Set(all.events!.map((e) => e.eventId)).size, 10);
  assert.ok(e0.ingestionTime! >= t);
  assert.deepEqual(all.searchedLogStreams!.map((s) => [s.logStreamName, s.searchedCompletely]), [['web/1', true], ['web/2', true], ['worker/1', true]]);

  assert.deepEqual(msgs(await filter({ filterPattern: 'ERROR' })), ['ERROR timeout talking to db', 'ERROR NullPointerException at x', 'ERROR job failed: "disk full"']);
  assert.deepEqual(msgs(await filter({ filterPattern: 'error' })), [], 'case-sensitive');
  assert.deepEqual(msgs(await filter({ filterPattern: 'ERROR -Exception' })), ['ERROR timeout talking to db', 'ERROR job failed: "disk full"']);
  assert.deepEqual(msgs(await filter({ filterPattern: '?WARN ?500' })), ['POST /api/items 500', 'WARN slow request']);
  assert.deepEqual(msgs(await filter({ filterPattern: '"disk full"' })), ['ERROR job failed: "disk full"']);
  assert.deepEqual(msgs(await filter({ filterPattern: 'GET "/api" 200' })), ['GET /api/items 200', 'GET /api/users 200']);
  assert.deepEqual(msgs(await filter({ filterPattern: 'ERROR', logStreamNames: ['web/2', 'worker/1', 'missing'] })), ['ERROR NullPointerException at x', 'ERROR job failed: "disk full"']);
  assert.deepEqual(msgs(await filter({ filterPattern: 'ERROR', logStreamNamePrefix: 'web/' })), ['ERROR timeout talking to db', 'ERROR NullPointerException at x']);
  // startTime inclusive, endTime inclusive (as CloudWatch's FilterLogEvents).
  assert.deepEqual(msgs(await filter({ startTime: t + 10, endTime: t + 20 })), ['ERROR timeout talking to db', 'ERROR NullPointerException at x', 'ERROR job failed: "disk full"', 'GET /health 200']);
  // logGroupIdentifier works too.
  assert.equal((await logs.send(new FilterLogEventsCommand({ logGroupIdentifier: `arn:aws:logs:us-east-1:${account}:log-group:/app/filter`, limit: 1 }))).events!.length, 1);

  // Pagination with limit: nextToken until done, nothing lost or repeated.
  const paged: string[] = [];
  let pages = 0;
  for await (const page of paginateFilterLogEvents({ client: logs, pageSize: 3 }, { logGroupName: '/app/filter' })) {
    paged.push(...msgs(page) as string[]);
    pages++;
  }
  assert.deepEqual(paged, msgs(all));
  assert.equal(pages, 4);
  const first = await filter({ limit: 3 });
  assert.ok(first.nextToken);
  assert.ok(first.searchedLogStreams!.some((s) => s.searchedCompletely === false));
});

test('regions and accounts are separate', async () => {
  await groupWithStream('/app/regional', 's', [{ timestamp: now(), message: 'in us-east-1' }]);
  const eu = client('eu-west-1');
  try {
    assert.deepEqual((await eu.send(new DescribeLogGroupsCommand({}))).logGroups, []);
    await assert.rejects(eu.send(new GetLogEventsCommand({ logGroupName: '/app/regional', logStreamName: 's' })), { name: 'ResourceNotFoundException' });
    await groupWithStreamIn(eu, '/app/regional', 's', 'in eu-west-1');
    const r = await eu.send(new GetLogEventsCommand({ logGroupName: '/app/regional', logStreamName: 's' }));
    assert.deepEqual(r.events!.map((e) => e.message), ['in eu-west-1']);
    const g = (await eu.send(new DescribeLogGroupsCommand({}))).logGroups![0]!;
    assert.equal(g.arn, `arn:aws:logs:eu-west-1:${account}:log-group:/app/regional:*`);
    // An ARN of the other region names nothing here.
    await assert.rejects(eu.send(new GetLogEventsCommand({ logGroupIdentifier: `arn:aws:logs:us-east-1:${account}:log-group:/app/regional`, logStreamName: 's' })),
      { name: 'ResourceNotFoundException' });
  } finally { eu.destroy(); }

  // A second account, with its own key (created in the data dir the running Berth reads).
  const store = new SqliteStore(berth.dataDir);
  let other: { accessKeyId: string; secretAccessKey: string };
  const otherAccount = newAccountId();
  try {
    const key = MasterKey.fromBytes(Buffer.from(readFileSync(join(berth.dataDir, '..', 'master.key'), 'utf8').trim(), 'base64'));
    const created = new Credentials(store, key).createAccessKey(otherAccount, 'root', `iam::${otherAccount}:root`, Date.now());
    other = { accessKeyId: created.record.accessKeyId, secretAccessKey: created.secret };
  } finally { store.close(); }
  const theirs = client(berth.creds.region, other);
  try {
    assert.deepEqual((await theirs.send(new DescribeLogGroupsCommand({}))).logGroups, []);
    await assert.rejects(theirs.send(new GetLogEventsCommand({ logGroupName: '/app/regional', logStreamName: 's' })), { name: 'ResourceNotFoundException' });
    await assert.rejects(theirs.send(new GetLogEventsCommand({ logGroupIdentifier: `arn:aws:logs:us-east-1:${account}:log-group:/app/regional`, logStreamName: 's' })),
      { name: 'ResourceNotFoundException' });
    await theirs.send(new CreateLogGroupCommand({ logGroupName: '/app/regional' }));
    const g = (await theirs.send(new DescribeLogGroupsCommand({}))).logGroups!;
    assert.deepEqual(g.map((x) => x.logGroupArn), [`arn:aws:logs:us-east-1:${otherAccount}:log-group:/app/regional`]);
  } finally { theirs.destroy(); }
  // Ours is untouched.
  const mine = await logs.send(new GetLogEventsCommand({ logGroupName: '/app/regional', logStreamName: 's' }));
  assert.deepEqual(mine.events!.map((e) => e.message), ['in us-east-1']);
});

async function groupWithStreamIn(c: CloudWatchLogsClient, group: string, stream: string, message: string) {
  await c.send(new CreateLogGroupCommand({ logGroupName: group }));
  await c.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: stream }));
  await c.send(new PutLogEventsCommand({ logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: now(), message }] }));
}

test('the aws CLI: create, put, get, filter, describe, retention', () => {
  const ok = (args: string[]) => {
    const r = berth.aws(args);
    assert.equal(r.status, 0, `aws ${args.join(' ')}: ${r.stderr}`);
    return r.json;
  };
  ok(['logs', 'create-log-group', '--log-group-name', '/cli/app']);
  ok(['logs', 'create-log-stream', '--log-group-name', '/cli/app', '--log-stream-name', 'app/main/1']);
  const t = now() - 5000;
  const events = Array.from({ length: 5 }, (_, i) => ({ timestamp: t + i, message: i % 2 ? `ERROR number ${i}` : `info number ${i}` }));
  ok(['logs', 'put-log-events', '--log-group-name', '/cli/app', '--log-stream-name', 'app/main/1', '--log-events', JSON.stringify(events)]);

  const got = ok(['logs', 'get-log-events', '--log-group-name', '/cli/app', '--log-stream-name', 'app/main/1', '--start-from-head']);
  assert.deepEqual(got.events.map((e: any) => e.message), events.map((e) => e.message));
  assert.equal(got.events[0].timestamp, t);
  assert.match(got.nextForwardToken, /^f\/\d{56}$/);
  assert.match(got.nextBackwardToken, /^b\/\d{56}$/);
  const limited = ok(['logs', 'get-log-events', '--log-group-name', '/cli/app', '--log-stream-name', 'app/main/1', '--limit', '2']);
  assert.deepEqual(limited.events.map((e: any) => e.message), ['ERROR number 3', 'info number 4']);
  const older = ok(['logs', 'get-log-events', '--log-group-name', '/cli/app', '--log-stream-name', 'app/main/1', '--limit', '2', '--next-token', limited.nextBackwardToken]);
  assert.deepEqual(older.events.map((e: any) => e.message), ['ERROR number 1', 'info number 2']);

  // The CLI follows nextToken by itself.
  const filtered = ok(['logs', 'filter-log-events', '--log-group-name', '/cli/app', '--filter-pattern', 'ERROR', '--limit', '1']);
  assert.deepEqual(filtered.events.map((e: any) => e.message), ['ERROR number 1']);
  const everything = ok(['logs', 'filter-log-events', '--log-group-name', '/cli/app', '--filter-pattern', 'ERROR']);
  assert.deepEqual(everything.events.map((e: any) => e.message), ['ERROR number 1', 'ERROR number 3']);
  assert.equal(everything.events[0].logStreamName, 'app/main/1');

  const groups = ok(['logs', 'describe-log-groups', '--log-group-name-prefix', '/cli/']);
  assert.equal(groups.logGroups.length, 1);
  assert.equal(groups.logGroups[0].arn, `arn:aws:logs:us-east-1:${account}:log-group:/cli/app:*`);
  const streams = ok(['logs', 'describe-log-streams', '--log-group-name', '/cli/app', '--order-by', 'LastEventTime', '--descending']);
  assert.equal(streams.logStreams[0].logStreamName, 'app/main/1');
  assert.equal(streams.logStreams[0].lastEventTimestamp, t + 4);

  ok(['logs', 'put-retention-policy', '--log-group-name', '/cli/app', '--retention-in-days', '14']);
  assert.equal(ok(['logs', 'describe-log-groups', '--log-group-name-prefix', '/cli/']).logGroups[0].retentionInDays, 14);
  const bad = berth.aws(['logs', 'put-retention-policy', '--log-group-name', '/cli/app', '--retention-in-days', '15']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /InvalidParameterException/);
  assert.match(bad.stderr, /enum value set/);
  const missing = berth.aws(['logs', 'get-log-events', '--log-group-name', '/cli/app', '--log-stream-name', 'nope']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /ResourceNotFoundException.*The specified log stream does not exist\./);
  ok(['logs', 'delete-log-group', '--log-group-name', '/cli/app']);
  assert.deepEqual(ok(['logs', 'describe-log-groups', '--log-group-name-prefix', '/cli/']).logGroups, []);
});
