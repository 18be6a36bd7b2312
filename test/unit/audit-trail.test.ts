// The audit trail's chain and seals: appends, lookups, and tampering with the SQLite file
// (edit, delete, insert) named by verify; redaction rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqliteStore } from '../../src/store/store.js';
import { AuditTrail, verifyTrail, exportTrail, chainHash, canonicalJson, type CloudTrailRecord } from '../../src/audit/trail.js';
import { Audit } from '../../src/audit/index.js';
import { HIDDEN, redact, apiCallRecord } from '../../src/audit/record.js';
import { ManualClock } from '../../src/domain/clock.js';
import type { RequestContext } from '../../src/api/context.js';

const key = randomBytes(32);

function record(account: string, name: string, i: number): CloudTrailRecord {
  return {
    eventVersion: '1.08', userIdentity: { type: 'Root', arn: `arn:aws:iam::${account}:root`, accountId: account, accessKeyId: `AKIA${account}` },
    eventTime: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), eventSource: 'ecs.amazonaws.com', eventName: name, awsRegion: 'us-east-1',
    sourceIPAddress: '127.0.0.1', requestParameters: { cluster: `c${i}` }, responseElements: null, requestID: `req-${i}`, eventID: '',
    readOnly: name.startsWith('Describe'),
    resources: [{ ARN: `arn:aws:ecs:us-east-1:${account}:cluster/c${i}`, accountId: account, type: 'AWS::ECS::Cluster' }],
    eventType: 'AwsApiCall', managementEvent: true, recipientAccountId: account, eventCategory: 'Management',
  };
}

function withTrail(n: number, fn: (store: SqliteStore, trail: AuditTrail) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'berth-audit-'));
  const store = new SqliteStore(dir);
  try {
    const trail = new AuditTrail(store.db, key);
    for (let i = 1; i <= n; i++) trail.append(record(i % 2 ? '111111111111' : '222222222222', i % 3 ? 'CreateCluster' : 'DescribeClusters', i), Date.UTC(2026, 0, 1, 0, 0, i));
    fn(store, trail);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Tampering as an attacker with the file would: the append-only triggers dropped first. */
function unprotect(store: SqliteStore): void {
  store.db.exec('DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;');
}

test('a fresh chain verifies; the head is the last record; a restart continues the chain', () => {
  withTrail(10, (store, trail) => {
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem, undefined);
    assert.equal(r.records, 10);
    assert.deepEqual(r.head, trail.head());
    const again = new AuditTrail(store.db, key);
    again.append(record('111111111111', 'DeleteCluster', 11), Date.UTC(2026, 0, 1, 0, 0, 11));
    assert.equal(verifyTrail(store.db, key).records, 11);
    assert.equal(verifyTrail(store.db, key).problem, undefined);
    const lines = [...exportTrail(store.db)].map((l) => JSON.parse(l));
    assert.equal(lines.length, 11);
    assert.equal(lines[10].berth.prevHash, lines[9].berth.hash);
    assert.equal(lines[10].record.eventName, 'DeleteCluster');
  });
});

test('the table refuses UPDATE and DELETE (append-only triggers)', () => {
  withTrail(3, (store) => {
    assert.throws(() => store.db.prepare("UPDATE audit_events SET event_name = 'x' WHERE seq = 2").run(), /append-only/);
    assert.throws(() => store.db.prepare('DELETE FROM audit_events WHERE seq = 2').run(), /append-only/);
  });
});

test('tamper: an edited record is named (content, or only a lookup column)', () => {
  withTrail(10, (store) => {
    unprotect(store);
    const rec = store.db.prepare('SELECT record FROM audit_events WHERE seq = 4').pluck().get() as string;
    store.db.prepare('UPDATE audit_events SET record = ? WHERE seq = 4').run(rec.replace('"c4"', '"evil"'));
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem?.seq, 4);
    assert.equal(r.problem?.kind, 'edited');
    assert.equal(r.head.seq, 3);
  });
  withTrail(10, (store) => {
    unprotect(store);
    store.db.prepare("UPDATE audit_events SET account = '999999999999' WHERE seq = 7").run();
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem?.seq, 7);
    assert.equal(r.problem?.kind, 'edited');
  });
  // Re-hashing the edited record and everything after it does not help without the seal key.
  withTrail(10, (store) => {
    unprotect(store);
    const rows = store.db.prepare('SELECT seq, record, prev_hash FROM audit_events WHERE seq >= 5 ORDER BY seq').all() as { seq: number; record: string; prev_hash: string }[];
    let prev = rows[0]!.prev_hash;
    for (const row of rows) {
      const text = row.seq === 5 ? row.record.replace('"c5"', '"evil"') : row.record;
      const hash = chainHash(prev, row.seq, text);
      store.db.prepare('UPDATE audit_events SET record = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(text, prev, hash, row.seq);
      prev = hash;
    }
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem?.seq, 5);
    assert.equal(r.problem?.kind, 'inserted');
    assert.match(r.problem!.message, /seal does not verify/);
    // Without the key only the chain can be checked, and a full re-hash passes it: that is what the seal is for.
    assert.equal(verifyTrail(store.db).problem, undefined);
  });
});

test('tamper: a deleted record is named (the chain breaks at its successor)', () => {
  withTrail(10, (store) => {
    unprotect(store);
    store.db.prepare('DELETE FROM audit_events WHERE seq = 6').run();
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem?.seq, 6);
    assert.equal(r.problem?.kind, 'deleted');
    assert.match(r.problem!.message, /record 6 is missing .*breaks at record 7/);
  });
  // Deleted and the later ones renumbered to hide the gap: record 6 (formerly 7) no longer follows 5.
  withTrail(10, (store) => {
    unprotect(store);
    store.db.prepare('DELETE FROM audit_events WHERE seq = 6').run();
    for (let s = 7; s <= 10; s++) store.db.prepare('UPDATE audit_events SET seq = ? WHERE seq = ?').run(s - 1, s);
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem?.seq, 6);
  });
});

test('tamper: an inserted record is named (in the middle, or appended at the end)', () => {
  withTrail(10, (store) => {
    unprotect(store);
    for (let s = 10; s >= 5; s--) store.db.prepare('UPDATE audit_events SET seq = ? WHERE seq = ?').run(s + 1, s);
    const prev = store.db.prepare('SELECT hash FROM audit_events WHERE seq = 4').pluck().get() as string;
    const forged = canonicalJson({ ...record('111111111111', 'RunTask', 99), eventID: 'forged' });
    const hash = chainHash(prev, 5, forged);
    store.db.prepare(`INSERT INTO audit_events (seq, event_id, time, account, event_source, event_name, username, access_key_id, read_only, resources, record, prev_hash, hash, seal)
      VALUES (5, 'forged', 0, '111111111111', 'ecs.amazonaws.com', 'RunTask', 'root', 'AKIA111111111111', 0, '[]', ?, ?, ?, ?)`).run(forged, prev, hash, 'f'.repeat(64));
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem?.seq, 5);
    assert.ok(['inserted', 'edited'].includes(r.problem!.kind));
  });
  withTrail(10, (store, trail) => {
    const head = trail.head();
    const forged = canonicalJson({ ...record('111111111111', 'RunTask', 11), eventID: 'forged' });
    const hash = chainHash(head.hash, 11, forged);
    store.db.prepare(`INSERT INTO audit_events (seq, event_id, time, account, event_source, event_name, username, access_key_id, read_only, resources, record, prev_hash, hash, seal)
      VALUES (11, 'forged', ?, '111111111111', 'ecs.amazonaws.com', 'RunTask', 'root', 'AKIA111111111111', 0, ?, ?, ?, ?, ?)`)
      .run(Date.UTC(2026, 0, 1, 0, 0, 11), JSON.stringify([{ t: 'AWS::ECS::Cluster', n: 'arn:aws:ecs:us-east-1:111111111111:cluster/c11', s: 'c11' }]), forged, head.hash, hash, 'f'.repeat(64));
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem?.seq, 11);
    assert.equal(r.problem?.kind, 'inserted');
  });
});

test('LookupEvents: an account sees only its own events, newest first, filtered and paged', () => {
  withTrail(0, (store) => {
    const audit = new Audit({ store, sealKey: key, accountOfKey: () => undefined, log: () => {} });
    for (let i = 1; i <= 9; i++) audit.trail.append(record(i % 2 ? '111111111111' : '222222222222', i % 3 ? 'CreateCluster' : 'DescribeClusters', i), Date.UTC(2026, 0, 1, 0, 0, i));
    const clock = new ManualClock(Date.UTC(2026, 0, 2));
    const ctx = (account: string) => ({ scope: { account, region: 'us-east-1', partition: 'aws' }, clock } as unknown as RequestContext);
    const lookup = audit.handlers().LookupEvents!;
    const a = lookup(ctx('111111111111'), {}) as any;
    assert.deepEqual(a.Events.map((e: any) => JSON.parse(e.CloudTrailEvent).requestParameters.cluster), ['c9', 'c7', 'c5', 'c3', 'c1']);
    assert.ok(a.Events.every((e: any) => JSON.parse(e.CloudTrailEvent).recipientAccountId === '111111111111'));
    const b = lookup(ctx('222222222222'), { LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'true' }] }) as any;
    assert.deepEqual(b.Events.map((e: any) => e.EventName), ['DescribeClusters']);
    const byName = lookup(ctx('111111111111'), { LookupAttributes: [{ AttributeKey: 'ResourceName', AttributeValue: 'c5' }] }) as any;
    assert.equal(byName.Events.length, 1);
    const p1 = lookup(ctx('111111111111'), { MaxResults: 2 }) as any;
    const p2 = lookup(ctx('111111111111'), { MaxResults: 2, NextToken: p1.NextToken }) as any;
    const p3 = lookup(ctx('111111111111'), { MaxResults: 2, NextToken: p2.NextToken }) as any;
    assert.deepEqual([...p1.Events, ...p2.Events, ...p3.Events].map((e: any) => e.Resources[0].ResourceName.split('/')[1]), ['c9', 'c7', 'c5', 'c3', 'c1']);
    assert.equal(p3.NextToken, undefined);
    const ranged = lookup(ctx('111111111111'), { StartTime: Date.UTC(2026, 0, 1, 0, 0, 3) / 1000, EndTime: Date.UTC(2026, 0, 1, 0, 0, 5) / 1000 }) as any;
    assert.equal(ranged.Events.length, 2);
    assert.throws(() => lookup(ctx('111111111111'), { StartTime: 10, EndTime: 5 }), /StartTime must be earlier/);
    assert.throws(() => lookup(ctx('111111111111'), { LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'x' }, { AttributeKey: 'Username', AttributeValue: 'y' }] }), /only one/);
  });
});

test('redaction: credentials, tokens, key material, environment values, secrets and log messages', () => {
  const input = {
    family: 'web',
    containerDefinitions: [{ name: 'app', environment: [{ name: 'DB_PASSWORD', value: 'hunter2' }], secrets: [{ name: 'API', valueFrom: 'QktNUw…' }] }],
    Plaintext: 'c2VjcmV0', CiphertextBlob: 'QktNUw', SecretAccessKey: 'abc', SessionToken: 'tok', session: { tokenValue: 'bearer' },
    logEvents: [{ timestamp: 1, message: 'customer data' }], nextToken: 'page-2', PolicyDocument: '{"Statement":[]}',
  };
  const out = redact(input) as any;
  assert.equal(out.containerDefinitions[0].environment[0].value, HIDDEN);
  assert.equal(out.containerDefinitions[0].environment[0].name, 'DB_PASSWORD');
  assert.equal(out.containerDefinitions[0].secrets[0].valueFrom, HIDDEN);
  for (const k of ['Plaintext', 'CiphertextBlob', 'SecretAccessKey', 'SessionToken']) assert.equal(out[k], HIDDEN, k);
  assert.equal(out.session.tokenValue, HIDDEN);
  assert.equal(out.logEvents[0].message, HIDDEN);
  assert.equal(out.nextToken, 'page-2');
  assert.equal(out.PolicyDocument, '{"Statement":[]}');
  assert.ok(!JSON.stringify(out).includes('hunter2'));

  // A call record: identity, resources from input and output, responseElements only for writes.
  const ctx = { requestId: 'r1', scope: { account: '123456789012', region: 'us-east-1', partition: 'aws' }, principal: { accountId: '123456789012', accessKeyId: 'AKIAX', principal: 'iam::123456789012:user/alice', userName: 'alice' } } as unknown as RequestContext;
  const rec = apiCallRecord({ requestId: 'r1', time: Date.UTC(2026, 0, 1), service: 'ecs', action: 'RunTask', sourceIp: '::ffff:10.0.0.1', ctx, input: { cluster: 'web', taskDefinition: 'app' }, output: { tasks: [{ taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/web/abc' }] }, status: 200 }, () => undefined, undefined);
  assert.equal(rec.userIdentity.type, 'IAMUser');
  assert.equal(rec.userIdentity.userName, 'alice');
  assert.equal(rec.sourceIPAddress, '10.0.0.1');
  assert.deepEqual(rec.resources!.map((r) => r.type).sort(), ['AWS::ECS::Cluster', 'AWS::ECS::Task']);
  assert.notEqual(rec.responseElements, null);
  const denied = apiCallRecord({ requestId: 'r2', time: Date.UTC(2026, 0, 1), service: 'ecs', action: 'ListClusters', sourceIp: '127.0.0.1', accessKeyId: 'AKIAUNKNOWN', status: 400, errorCode: 'UnrecognizedClientException', errorMessage: 'no' }, () => '123456789012', 'us-east-1');
  assert.equal(denied.userIdentity.type, 'Unknown');
  assert.equal(denied.recipientAccountId, '123456789012');
  assert.equal(denied.errorCode, 'UnrecognizedClientException');
  // Records are built with sorted keys, so their plain JSON is the canonical one the chain hashes.
  for (const r of [rec, denied, apiCallRecord({ requestId: 'r3', time: 0, service: 'ecs', action: 'RegisterTaskDefinition', sourceIp: '', ctx, input, output: { taskDefinition: { b: 1, a: [{ z: 1, y: { d: 1, c: 2 } }] } }, status: 200, tls: { tlsVersion: 'TLSv1.3', cipherSuite: 'x', clientProvidedHostHeader: 'h' } }, () => undefined, undefined)]) {
    assert.equal(JSON.stringify(r), canonicalJson(r));
  }
});

test('API call records: keys in canonical order whatever members are present; the 16 KiB bound is exact', () => {
  const ctx = { requestId: 'r1', scope: { account: '123456789012', region: 'us-east-1', partition: 'aws' }, principal: { accountId: '123456789012', accessKeyId: 'AKIAX', principal: 'iam::123456789012:user/u', userName: 'u' } } as unknown as RequestContext;
  const calls = [
    { requestId: 'a', time: 0, service: 'ecs', action: 'CreateCluster', sourceIp: '::ffff:10.0.0.1', status: 200, ctx, input: { clusterName: 'c' }, output: { cluster: { clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/c' } } },
    { requestId: 'b', time: 0, service: 'ecs', action: 'CreateCluster', sourceIp: '10.0.0.1', status: 400, accessKeyId: 'AKIAY', errorCode: 'AccessDeniedException', errorMessage: 'no', userAgent: 'ua', tls: { tlsVersion: 'TLSv1.3', cipherSuite: 'x' } },
    { requestId: 'c', time: 0, service: 'iam', action: 'ListUsers', sourceIp: '10.0.0.1', status: 200, ctx, userAgent: 'ua', input: {}, output: { Users: [] } },
  ];
  for (const call of calls) {
    const r = apiCallRecord(call, () => '123456789012', 'eu-west-1');
    assert.deepEqual(Object.keys(r), Object.keys(r).sort());
    assert.equal(JSON.stringify(r), canonicalJson(r));
  }
  // {"a":"…"} is 8 characters plus the string: 16,384 in all is kept, one more is not.
  const at = (n: number) => apiCallRecord({ requestId: 'd', time: 0, service: 'ecs', action: 'TagResource', sourceIp: '', status: 200, ctx, input: { a: 'x'.repeat(n) } }, () => undefined, undefined).requestParameters;
  assert.deepEqual(at(16_376), { a: 'x'.repeat(16_376) });
  assert.deepEqual(at(16_377), { berthOmitted: 'parameters of about 16385 bytes are too large for the trail' });
  // Escapes count as JSON writes them (a newline is two characters).
  const newlines = (n: number) => apiCallRecord({ requestId: 'e', time: 0, service: 'ecs', action: 'TagResource', sourceIp: '', status: 200, ctx, input: { a: '\n'.repeat(n) } }, () => undefined, undefined).requestParameters as Record<string, unknown>;
  assert.equal(newlines(8_188).a, '\n'.repeat(8_188));
  assert.equal(newlines(8_189).berthOmitted, 'parameters of about 16386 bytes are too large for the trail');
});

test('records appended through the API hook (group commit) verify', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-audit-'));
  const store = new SqliteStore(dir);
  try {
    const audit = new Audit({ store, sealKey: key, accountOfKey: () => '123456789012', log: () => {} });
    const ctx = { requestId: 'r1', scope: { account: '123456789012', region: 'us-east-1', partition: 'aws' }, principal: { accountId: '123456789012', accessKeyId: 'AKIAX', principal: 'iam::123456789012:root', userName: 'root' } } as unknown as RequestContext;
    const pending = Array.from({ length: 50 }, (_, i) => audit.onCall({ requestId: `r${i}`, time: Date.UTC(2026, 0, 1) + i, service: 'ecs', action: i % 2 ? 'CreateCluster' : 'ListClusters', sourceIp: '127.0.0.1', ctx, input: { clusterName: `c${i}`, tags: [{ value: 'v', key: 'k' }] }, output: { cluster: { clusterName: `c${i}`, status: 'ACTIVE' } }, status: 200 }));
    assert.equal(store.db.prepare('SELECT count(*) FROM audit_events').pluck().get(), 0, 'committed at the end of the turn, not before');
    await Promise.all(pending);
    assert.equal(store.db.prepare('SELECT count(*) FROM audit_events').pluck().get(), 50);
    const r = verifyTrail(store.db, key);
    assert.equal(r.problem, undefined, r.problem?.message);
    assert.equal(r.records, 50);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
