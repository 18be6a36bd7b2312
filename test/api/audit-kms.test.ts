// The audit trail and customer managed keys, against a real Berth process, with the `aws`
// CLI (kms, logs, cloudtrail, ecs, ec2, sts, ssm) and raw signed requests:
//   - every API call of every service, allowed or refused, is in the trail and found by
//     `aws cloudtrail lookup-events`; an account sees only its own events;
//   - no secret reaches the trail; `berth audit verify` passes, then names a record edited
//     in the SQLite file; acknowledged calls survive kill -9 in the trail;
//   - data under a key (log events, task definition secrets) is not in the raw database
//     files; disabling the key makes it unreadable until it is enabled again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { RegisterTaskDefinitionCommand } from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth, type Creds } from '../helpers/berth.js';
import { raw } from '../helpers/raw.js';
import { registerThroughKill } from '../helpers/ecs.js';
import { SqliteStore } from '../../src/store/store.js';
import { Credentials } from '../../src/identity/credentials.js';
import { MasterKey } from '../../src/identity/master-key.js';

let berth: TestBerth;
let other: Creds;
const marker = `m-${randomBytes(6).toString('hex')}`;

function createAccount(b: TestBerth, accountId: string): Creds {
  const store = new SqliteStore(b.dataDir);
  try {
    const master = MasterKey.fromBytes(Buffer.from(readFileSync(b.env.BERTH_MASTER_KEY_FILE!, 'utf8').trim(), 'base64'));
    store.put('account', 'global', accountId, { accountId, name: 'other', createdAt: Date.now() });
    const { record, secret } = new Credentials(store, master).createAccessKey(accountId, 'root', `iam::${accountId}:root`, Date.now());
    return { ...b.creds, accessKeyId: record.accessKeyId, secretAccessKey: secret };
  } finally {
    store.close();
  }
}

/** Every file of the database (main file, WAL, shared memory) as raw bytes. */
const rawDatabase = () => Buffer.concat(readdirSync(berth.dataDir).filter((f) => f.startsWith('berth.db')).map((f) => readFileSync(join(berth.dataDir, f))));

function aws(args: string[], creds?: Creds) {
  const r = berth.aws(args, creds ? { env: { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey } } : {});
  return r;
}
function ok(args: string[]): any {
  const r = aws(args);
  assert.equal(r.status, 0, `aws ${args.join(' ')}: ${r.stderr}`);
  return r.json;
}

function lookup(attribute?: [string, string], creds?: Creds, max = 50): any[] {
  const args = ['cloudtrail', 'lookup-events', '--max-results', String(max)];
  if (attribute) args.push('--lookup-attributes', `AttributeKey=${attribute[0]},AttributeValue=${attribute[1]}`);
  const r = aws(args, creds);
  assert.equal(r.status, 0, r.stderr);
  return r.json.Events;
}

before(async () => {
  berth = await startTestBerth();
  other = createAccount(berth, '210987654321');
});
after(async () => { await berth?.cleanup(); });

test('KMS with the aws CLI: keys, aliases, encrypt/decrypt, data keys, disable, scheduled deletion', () => {
  const key = ok(['kms', 'create-key', '--description', 'cli key']).KeyMetadata;
  assert.equal(key.KeyState, 'Enabled');
  ok(['kms', 'create-alias', '--alias-name', 'alias/cli', '--target-key-id', key.KeyId]);
  assert.ok(ok(['kms', 'list-keys']).Keys.some((k: any) => k.KeyArn === key.Arn));
  assert.equal(ok(['kms', 'describe-key', '--key-id', 'alias/cli']).KeyMetadata.Arn, key.Arn);
  const file = join(berth.dataDir, '..', 'plain.txt');
  writeFileSync(file, marker);
  const ct = ok(['kms', 'encrypt', '--key-id', 'alias/cli', '--plaintext', `fileb://${file}`, '--encryption-context', 'purpose=test']).CiphertextBlob;
  const blobFile = join(berth.dataDir, '..', 'blob.bin');
  writeFileSync(blobFile, Buffer.from(ct, 'base64'));
  const dec = ok(['kms', 'decrypt', '--ciphertext-blob', `fileb://${blobFile}`, '--encryption-context', 'purpose=test']);
  assert.equal(Buffer.from(dec.Plaintext, 'base64').toString(), marker);
  const dk = ok(['kms', 'generate-data-key', '--key-id', key.Arn, '--key-spec', 'AES_256']);
  assert.equal(Buffer.from(dk.Plaintext, 'base64').length, 32);
  ok(['kms', 'disable-key', '--key-id', key.KeyId]);
  const refused = aws(['kms', 'decrypt', '--ciphertext-blob', `fileb://${blobFile}`, '--encryption-context', 'purpose=test']);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /DisabledException/);
  ok(['kms', 'enable-key', '--key-id', key.KeyId]);
  const sched = ok(['kms', 'schedule-key-deletion', '--key-id', key.KeyId, '--pending-window-in-days', '7']);
  assert.equal(sched.KeyState, 'PendingDeletion');
  assert.ok(Math.abs(sched.DeletionDate * 1000 - (Date.now() + 7 * 86_400_000)) < 60_000);
  assert.match(aws(['kms', 'encrypt', '--key-id', key.KeyId, '--plaintext', `fileb://${file}`]).stderr, /KMSInvalidStateException/);
  ok(['kms', 'cancel-key-deletion', '--key-id', key.KeyId]);
  assert.equal(ok(['kms', 'describe-key', '--key-id', key.KeyId]).KeyMetadata.KeyState, 'Disabled');
  // Another account does not see the key.
  assert.match(aws(['kms', 'describe-key', '--key-id', key.Arn], other).stderr, /NotFoundException/);
});

test('log groups with a kmsKeyId: events sealed at rest, unreadable while the key is disabled', () => {
  const key = ok(['kms', 'create-key']).KeyMetadata;
  ok(['logs', 'create-log-group', '--log-group-name', '/sealed', '--kms-key-id', key.Arn]);
  ok(['logs', 'create-log-stream', '--log-group-name', '/sealed', '--log-stream-name', 's']);
  ok(['logs', 'put-log-events', '--log-group-name', '/sealed', '--log-stream-name', 's', '--log-events', `timestamp=${Date.now()},message=sealed-${marker}`]);
  // AssociateKmsKey: a plain group's later events are sealed too.
  ok(['logs', 'create-log-group', '--log-group-name', '/later']);
  ok(['logs', 'associate-kms-key', '--log-group-name', '/later', '--kms-key-id', key.KeyId]);
  ok(['logs', 'create-log-stream', '--log-group-name', '/later', '--log-stream-name', 's']);
  ok(['logs', 'put-log-events', '--log-group-name', '/later', '--log-stream-name', 's', '--log-events', `timestamp=${Date.now()},message=later-${marker}`]);
  const got = ok(['logs', 'get-log-events', '--log-group-name', '/sealed', '--log-stream-name', 's', '--start-from-head']);
  assert.deepEqual(got.events.map((e: any) => e.message), [`sealed-${marker}`]);
  assert.equal(ok(['logs', 'filter-log-events', '--log-group-name', '/later', '--filter-pattern', `"later-${marker}"`]).events.length, 1);
  const db = rawDatabase();
  assert.ok(!db.includes(`sealed-${marker}`) && !db.includes(`later-${marker}`), 'log events are in the database files in clear');

  ok(['kms', 'disable-key', '--key-id', key.KeyId]);
  const refused = aws(['logs', 'get-log-events', '--log-group-name', '/sealed', '--log-stream-name', 's', '--start-from-head']);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /DisabledException.*is disabled; these log events cannot be decrypted until the key is enabled/);
  assert.match(aws(['logs', 'put-log-events', '--log-group-name', '/sealed', '--log-stream-name', 's', '--log-events', `timestamp=${Date.now()},message=x`]).stderr, /DisabledException/);
  // A disabled key cannot be associated with a group.
  ok(['logs', 'create-log-group', '--log-group-name', '/refused']);
  assert.match(aws(['logs', 'associate-kms-key', '--log-group-name', '/refused', '--kms-key-id', key.Arn]).stderr, /InvalidParameterException/);
  ok(['kms', 'enable-key', '--key-id', key.KeyId]);
  assert.equal(ok(['logs', 'get-log-events', '--log-group-name', '/sealed', '--log-stream-name', 's', '--start-from-head']).events.length, 1);
});

test('task definition secrets: sealed at registration, not in the database in clear, never in the trail', () => {
  const key = ok(['kms', 'create-key']).KeyMetadata;
  const file = join(berth.dataDir, '..', 'token.txt');
  writeFileSync(file, `token-${marker}`);
  const blob = ok(['kms', 'encrypt', '--key-id', key.KeyId, '--plaintext', `fileb://${file}`]).CiphertextBlob;
  const containers = JSON.stringify([{
    name: 'app', image: 'busybox', memory: 32,
    environment: [{ name: 'PLAIN', value: 'visible' }, { name: 'PASSWORD', value: `berth:secret:pw-${marker}` }],
    secrets: [{ name: 'TOKEN', valueFrom: blob }],
  }]);
  const td = ok(['ecs', 'register-task-definition', '--family', 'secretive', '--container-definitions', containers,
    '--tags', `key=berth:kms-key-id,value=${key.Arn}`]).taskDefinition;
  const env = td.containerDefinitions[0].environment;
  assert.equal(env.find((e: any) => e.name === 'PLAIN').value, 'visible');
  assert.ok(env.find((e: any) => e.name === 'PASSWORD').value.startsWith(`berth:kms:v1:${key.KeyId}:`));
  assert.equal(td.containerDefinitions[0].secrets[0].valueFrom, blob);
  assert.ok(!rawDatabase().includes(`pw-${marker}`), 'a secret environment value is in the database in clear');
  // describe → register again keeps the sealed value as it is.
  const again = ok(['ecs', 'register-task-definition', '--family', 'secretive', '--container-definitions', JSON.stringify(td.containerDefinitions)]).taskDefinition;
  assert.equal(again.containerDefinitions[0].environment.find((e: any) => e.name === 'PASSWORD').value, env.find((e: any) => e.name === 'PASSWORD').value);
  const bad = aws(['ecs', 'register-task-definition', '--family', 'secretive', '--container-definitions',
    JSON.stringify([{ name: 'app', image: 'busybox', memory: 32, secrets: [{ name: 'X', valueFrom: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x' }] }])]);
  assert.match(bad.stderr, /ClientException.*KMS ciphertext/);
});

test('every call of every service is in the trail, allowed or refused; lookup-events filters; accounts are isolated; no secret in the trail', async () => {
  const calls: [string, string, string[]][] = [
    ['ecs.amazonaws.com', 'CreateCluster', ['ecs', 'create-cluster', '--cluster-name', 'audited']],
    ['ecs.amazonaws.com', 'DescribeClusters', ['ecs', 'describe-clusters', '--clusters', 'audited']],
    ['ecs.amazonaws.com', 'ListTaskDefinitions', ['ecs', 'list-task-definitions']],
    ['logs.amazonaws.com', 'DescribeLogGroups', ['logs', 'describe-log-groups']],
    ['kms.amazonaws.com', 'ListAliases', ['kms', 'list-aliases']],
    ['ssm.amazonaws.com', 'TerminateSession', ['ssm', 'terminate-session', '--session-id', 'ecs-execute-command-none']],
    ['ec2.amazonaws.com', 'DescribeInstances', ['ec2', 'describe-instances']],
    ['sts.amazonaws.com', 'GetCallerIdentity', ['sts', 'get-caller-identity']],
    ['cloudtrail.amazonaws.com', 'LookupEvents', ['cloudtrail', 'lookup-events', '--max-results', '1']],
  ];
  for (const [, , args] of calls) aws(args);
  // Refused calls are recorded too: a failed validation, and a signature made with the wrong secret.
  assert.notEqual(aws(['ecs', 'delete-cluster', '--cluster', 'no-such-cluster']).status, 0);
  const forged = await raw(berth.creds, 'ListClusters', '{}', { secret: 'not-the-secret' });
  assert.equal(forged.json.__type, 'InvalidSignatureException');

  for (const [source, name] of calls) {
    const events = lookup(['EventName', name]);
    assert.ok(events.some((e) => e.EventSource === source), `${source} ${name} is not in the trail`);
  }
  const deleted = lookup(['EventName', 'DeleteCluster'])[0];
  assert.equal(JSON.parse(deleted.CloudTrailEvent).errorCode, 'ClusterNotFoundException');
  const signed = lookup(['EventName', 'ListClusters']).map((e) => JSON.parse(e.CloudTrailEvent));
  assert.ok(signed.some((r) => r.errorCode === 'InvalidSignatureException' && r.userIdentity.accessKeyId === berth.creds.accessKeyId));

  // The record: CloudTrail's format, who and from where, resources, redacted parameters.
  const create = JSON.parse(lookup(['EventName', 'CreateCluster'])[0].CloudTrailEvent);
  assert.equal(create.eventVersion, '1.08');
  assert.equal(create.userIdentity.type, 'Root');
  assert.equal(create.userIdentity.accessKeyId, berth.creds.accessKeyId);
  assert.equal(create.sourceIPAddress, '127.0.0.1');
  assert.match(create.userAgent, /aws-cli/);
  assert.equal(create.requestParameters.clusterName, 'audited');
  assert.ok(create.resources.some((r: any) => r.type === 'AWS::ECS::Cluster' && r.ARN.endsWith(':cluster/audited')));
  assert.ok(create.requestID && create.eventID);
  assert.equal(lookup(['ResourceName', 'audited']).length >= 2, true);
  assert.ok(lookup(['ReadOnly', 'false']).every((e) => e.ReadOnly === 'false'));
  assert.ok(lookup(['Username', 'root']).length > 0);
  assert.ok(lookup(['AccessKeyId', berth.creds.accessKeyId]).length > 0);
  const encrypts = lookup(['EventName', 'Encrypt']).map((e) => JSON.parse(e.CloudTrailEvent));
  assert.ok(encrypts.every((r) => r.requestParameters.Plaintext === 'HIDDEN_DUE_TO_SECURITY_REASONS'));
  const page = aws(['cloudtrail', 'lookup-events', '--max-items', '3']);
  assert.equal(page.json.Events.length, 3);

  // The other account sees its own calls only.
  assert.equal(aws(['ecs', 'list-clusters'], other).status, 0);
  const theirs = lookup(undefined, other);
  assert.ok(theirs.length >= 1);
  assert.ok(theirs.every((e) => JSON.parse(e.CloudTrailEvent).recipientAccountId === '210987654321'));
  assert.ok(!theirs.some((e) => e.EventName === 'CreateCluster'));

  // Nothing secret is in the trail (environment values, KMS plaintexts, sealed values).
  const exported = berth.cli(['audit', 'export']);
  assert.equal(exported.status, 0);
  const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length > 20);
  assert.ok(!exported.stdout.includes(marker), `a secret is in the audit trail: ${lines.filter((l) => JSON.stringify(l).includes(marker)).map((l) => JSON.stringify(l.record.requestParameters)).join(" ")}`);
  assert.ok(lines.some((l) => l.record.eventName === 'RegisterTaskDefinition' && l.record.requestParameters.containerDefinitions[0].environment[1].value === 'HIDDEN_DUE_TO_SECURITY_REASONS'));
});

test('berth audit verify: intact, then the first edited record is named; acknowledged calls survive kill -9', async () => {
  const verified = berth.cli(['audit', 'verify']);
  assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /^OK: \d+ records, chain intact, every seal verifies; head record \d+ hash [0-9a-f]{64}/);

  // Writes while the process is killed: every acknowledged call has its record.
  const ecs = berth.ecs();
  const acknowledged = await registerThroughKill(berth, ecs, 'durable-audit');
  assert.ok(acknowledged > 0);
  let tamperedSeq = 0;
  const db = new Database(join(berth.dataDir, 'berth.db'));
  try {
    const recorded = db.prepare(`SELECT count(*) FROM audit_events WHERE event_name = 'RegisterTaskDefinition' AND record LIKE '%durable-audit%' AND record NOT LIKE '%"errorCode"%'`).pluck().get() as number;
    assert.ok(recorded >= acknowledged, `${acknowledged} calls acknowledged, ${recorded} recorded`);
    const after = berth.cli(['audit', 'verify']);
    assert.equal(after.status, 0, after.stdout);

    // Edit one record in the middle of the file, as someone with the file but not Berth would.
    const seq = Math.floor((db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number) / 2);
    db.exec('DROP TRIGGER audit_events_no_update');
    db.prepare(`UPDATE audit_events SET record = replace(record, '"eventVersion":"1.08"', '"eventVersion":"1.09"') WHERE seq = ?`).run(seq);
    tamperedSeq = seq;
  } finally {
    db.close();
  }
  const tampered = berth.cli(['audit', 'verify']);
  assert.equal(tampered.status, 1);
  assert.match(tampered.stdout, new RegExp(`^TAMPERED at record ${tamperedSeq}: record ${tamperedSeq} \\(event [0-9a-f-]+\\) was edited`));
  await berth.start();
});
