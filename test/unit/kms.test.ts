// Customer managed keys on a clock the test controls: cryptography, key states, scheduled
// deletion after the pending window, key policies, and Berth's own envelope sealing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqliteStore } from '../../src/store/store.js';
import { MasterKey } from '../../src/identity/master-key.js';
import { Kms, DAY_MS } from '../../src/kms/kms.js';
import { taskSecrets } from '../../src/kms/secrets.js';
import { ManualClock } from '../../src/domain/clock.js';
import type { RequestContext } from '../../src/api/context.js';

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-kms-'));
  const store = new SqliteStore(dir);
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const master = MasterKey.fromBytes(randomBytes(32));
  const kms = new Kms(store, master, clock);
  const ctx = (account = '123456789012', user = 'root') => ({
    requestId: 'r', scope: { account, region: 'us-east-1', partition: 'aws' }, clock, sourceIp: '127.0.0.1', service: 'kms', action: 'x',
    principal: { accountId: account, accessKeyId: 'AKIA', principal: user === 'root' ? `iam::${account}:root` : `iam::${account}:user/${user}`, userName: user },
  } as unknown as RequestContext);
  const h = kms.handlers() as Record<string, (c: RequestContext, i: any) => any>;
  const call = (action: string, input: Record<string, unknown>, c = ctx()) => h[action]!(c, input);
  return { dir, store, clock, master, kms, ctx, call, close: () => { kms.close(); store.close(); rmSync(dir, { recursive: true, force: true }); } };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const code = (name: string) => (e: any) => e.code === name;

test('encrypt, decrypt and data keys: self-describing blobs, encryption context, one account and region only', () => {
  const t = setup();
  try {
    const key = t.call('CreateKey', { Description: 'orders' }).KeyMetadata;
    assert.equal(key.KeyState, 'Enabled');
    assert.equal(key.KeyManager, 'CUSTOMER');
    const enc = t.call('Encrypt', { KeyId: key.KeyId, Plaintext: b64('card 4111'), EncryptionContext: { order: '42' } });
    assert.equal(enc.KeyId, key.Arn);
    // Decrypt needs no key id (the blob names its key), and the same encryption context.
    const dec = t.call('Decrypt', { CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { order: '42' } });
    assert.equal(text(dec.Plaintext), 'card 4111');
    assert.equal(dec.KeyId, key.Arn);
    assert.throws(() => t.call('Decrypt', { CiphertextBlob: enc.CiphertextBlob }), code('InvalidCiphertextException'));
    const other = t.call('CreateKey', {}).KeyMetadata;
    assert.throws(() => t.call('Decrypt', { CiphertextBlob: enc.CiphertextBlob, KeyId: other.KeyId, EncryptionContext: { order: '42' } }), code('IncorrectKeyException'));
    assert.throws(() => t.call('Decrypt', { CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { order: '42' } }, t.ctx('210987654321')), code('NotFoundException'));
    const tampered = Buffer.from(enc.CiphertextBlob, 'base64');
    tampered[tampered.length - 1]! ^= 1;
    assert.throws(() => t.call('Decrypt', { CiphertextBlob: tampered.toString('base64'), EncryptionContext: { order: '42' } }), code('InvalidCiphertextException'));
    const dk = t.call('GenerateDataKey', { KeyId: key.Arn, KeySpec: 'AES_256' });
    assert.equal(Buffer.from(dk.Plaintext, 'base64').length, 32);
    assert.equal(t.call('Decrypt', { CiphertextBlob: dk.CiphertextBlob }).Plaintext, dk.Plaintext);
    assert.throws(() => t.call('GenerateDataKey', { KeyId: key.KeyId }), code('ValidationException'));
    // Aliases name keys everywhere a key id is accepted.
    t.call('CreateAlias', { AliasName: 'alias/orders', TargetKeyId: key.KeyId });
    assert.throws(() => t.call('CreateAlias', { AliasName: 'alias/orders', TargetKeyId: key.KeyId }), code('AlreadyExistsException'));
    assert.equal(t.call('DescribeKey', { KeyId: 'alias/orders' }).KeyMetadata.KeyId, key.KeyId);
    assert.deepEqual(t.call('ListAliases', { KeyId: key.KeyId }).Aliases.map((a: any) => a.AliasName), ['alias/orders']);
    assert.equal(t.call('ListKeys', {}).Keys.length, 2);
    assert.throws(() => t.call('DescribeKey', { KeyId: 'alias/none' }), code('NotFoundException'));
  } finally { t.close(); }
});

test('disabled keys: cryptographic calls and sealed data fail until the key is enabled', () => {
  const t = setup();
  try {
    const key = t.call('CreateKey', {}).KeyMetadata;
    const enc = t.call('Encrypt', { KeyId: key.KeyId, Plaintext: b64('x') });
    const sealed = t.kms.seal('123456789012/us-east-1', key.Arn, 'transcript line');
    assert.equal(t.kms.open('123456789012/us-east-1', sealed), 'transcript line');
    t.call('DisableKey', { KeyId: key.KeyId });
    assert.equal(t.call('DescribeKey', { KeyId: key.KeyId }).KeyMetadata.Enabled, false);
    assert.throws(() => t.call('Decrypt', { CiphertextBlob: enc.CiphertextBlob }), code('DisabledException'));
    assert.throws(() => t.call('Encrypt', { KeyId: key.KeyId, Plaintext: b64('x') }), code('DisabledException'));
    assert.throws(() => t.kms.open('123456789012/us-east-1', sealed, '', 'the transcript'), (e: any) => e.code === 'DisabledException' && /the transcript cannot be decrypted until the key is enabled/.test(e.message));
    assert.throws(() => t.kms.seal('123456789012/us-east-1', key.Arn, 'more'), code('DisabledException'));
    t.call('EnableKey', { KeyId: key.KeyId });
    assert.equal(text(t.call('Decrypt', { CiphertextBlob: enc.CiphertextBlob }).Plaintext), 'x');
    assert.equal(t.kms.open('123456789012/us-east-1', sealed), 'transcript line');
  } finally { t.close(); }
});

test('scheduled deletion: 7-30 days, pending keys unusable, cancel leaves the key disabled, gone after the window on the server clock', () => {
  const t = setup();
  try {
    const key = t.call('CreateKey', {}).KeyMetadata;
    const sealed = t.kms.seal('123456789012/us-east-1', key.KeyId, 'kept');
    assert.throws(() => t.call('ScheduleKeyDeletion', { KeyId: key.KeyId, PendingWindowInDays: 6 }), code('ValidationException'));
    assert.throws(() => t.call('ScheduleKeyDeletion', { KeyId: key.KeyId, PendingWindowInDays: 31 }), code('ValidationException'));
    const s = t.call('ScheduleKeyDeletion', { KeyId: key.KeyId, PendingWindowInDays: 7 });
    assert.equal(s.KeyState, 'PendingDeletion');
    assert.equal(s.DeletionDate * 1000, t.clock.now() + 7 * DAY_MS);
    assert.throws(() => t.kms.open('123456789012/us-east-1', sealed), code('KMSInvalidStateException'));
    assert.throws(() => t.call('EnableKey', { KeyId: key.KeyId }), code('KMSInvalidStateException'));
    t.call('CancelKeyDeletion', { KeyId: key.KeyId });
    assert.equal(t.call('DescribeKey', { KeyId: key.KeyId }).KeyMetadata.KeyState, 'Disabled');
    t.call('EnableKey', { KeyId: key.KeyId });
    assert.equal(t.kms.open('123456789012/us-east-1', sealed), 'kept');

    t.call('ScheduleKeyDeletion', { KeyId: key.KeyId, PendingWindowInDays: 7 });
    t.clock.advance(7 * DAY_MS - 60_000);
    assert.equal(t.call('DescribeKey', { KeyId: key.KeyId }).KeyMetadata.KeyState, 'PendingDeletion');
    t.clock.advance(60_000);
    // The timer fired on the clock: the key, its data key and its material are gone from the store.
    assert.equal(t.store.get('kms-key', '123456789012/us-east-1', key.KeyId), undefined);
    assert.equal(t.store.get('kms-data-key', '123456789012/us-east-1', key.KeyId), undefined);
    assert.throws(() => t.call('DescribeKey', { KeyId: key.KeyId }), code('NotFoundException'));
    assert.throws(() => t.kms.open('123456789012/us-east-1', sealed, '', 'the events'), (e: any) => e.code === 'NotFoundException' && /was deleted/.test(e.message));
    assert.equal(t.call('ListKeys', {}).Keys.length, 0);
    // A restarted control plane past the window deletes at start-up (the sweep).
    const k2 = t.call('CreateKey', {}).KeyMetadata;
    t.call('ScheduleKeyDeletion', { KeyId: k2.KeyId, PendingWindowInDays: 30 });
    t.kms.close();
    const later = new ManualClock(t.clock.now() + 31 * DAY_MS);
    const restarted = new Kms(t.store, t.master, later);
    assert.equal(t.store.get('kms-key', '123456789012/us-east-1', k2.KeyId), undefined);
    restarted.close();
  } finally { t.close(); }
});

test('key policies: validated, stored, explicit denies enforced, lockout check', () => {
  const t = setup();
  try {
    const key = t.call('CreateKey', {}).KeyMetadata;
    assert.match(t.call('GetKeyPolicy', { KeyId: key.KeyId }).Policy, /Enable IAM User Permissions/);
    assert.throws(() => t.call('PutKeyPolicy', { KeyId: key.KeyId, Policy: '{"Statement": [' }), code('MalformedPolicyDocumentException'));
    assert.throws(() => t.call('PutKeyPolicy', { KeyId: key.KeyId, Policy: JSON.stringify({ Statement: [{ Effect: 'Maybe', Principal: '*', Action: 'kms:*' }] }) }), code('MalformedPolicyDocumentException'));
    assert.throws(() => t.call('PutKeyPolicy', { KeyId: key.KeyId, Policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'kms:*' }] }) }), code('MalformedPolicyDocumentException'));
    const denyAll = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: '*', Action: 'kms:*', Resource: '*' }] });
    assert.throws(() => t.call('PutKeyPolicy', { KeyId: key.KeyId, Policy: denyAll }), (e: any) => e.code === 'MalformedPolicyDocumentException' && /BypassPolicyLockoutSafetyCheck/.test(e.message));
    const denyBob = JSON.stringify({ Version: '2012-10-17', Statement: [
      { Sid: 'root', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 'kms:*', Resource: '*' },
      { Sid: 'no-bob', Effect: 'Deny', Principal: { AWS: 'arn:aws:iam::123456789012:user/bob' }, Action: ['kms:Decrypt', 'kms:Generate*'], Resource: '*' },
    ] });
    t.call('PutKeyPolicy', { KeyId: key.KeyId, Policy: denyBob });
    assert.equal(t.call('GetKeyPolicy', { KeyId: key.KeyId, PolicyName: 'default' }).Policy, denyBob);
    const enc = t.call('Encrypt', { KeyId: key.KeyId, Plaintext: b64('x') }, t.ctx('123456789012', 'bob'));
    assert.throws(() => t.call('Decrypt', { CiphertextBlob: enc.CiphertextBlob }, t.ctx('123456789012', 'bob')), (e: any) => e.code === 'AccessDeniedException' && /explicit deny/.test(e.message));
    assert.throws(() => t.call('GenerateDataKey', { KeyId: key.KeyId, NumberOfBytes: 16 }, t.ctx('123456789012', 'bob')), code('AccessDeniedException'));
    assert.equal(text(t.call('Decrypt', { CiphertextBlob: enc.CiphertextBlob }, t.ctx('123456789012', 'alice')).Plaintext), 'x');
  } finally { t.close(); }
});

test('key material and sealed values are not readable from the database files', () => {
  const t = setup();
  try {
    const key = t.call('CreateKey', {}).KeyMetadata;
    const secret = `secret-${randomBytes(6).toString('hex')}`;
    const sealed = t.kms.seal('123456789012/us-east-1', key.KeyId, secret);
    t.store.put('probe', 'x', 'y', { sealed });
    const raw = Buffer.concat(readdirSync(t.dir).filter((f) => f.startsWith('berth.db')).map((f) => readFileSync(join(t.dir, f))));
    assert.ok(raw.includes(Buffer.from(sealed.slice(0, 40))), 'the sealed value is stored');
    assert.ok(!raw.includes(Buffer.from(secret)), 'the secret is in the database in clear');
    // Another master key (a copy of the data dir elsewhere) opens nothing.
    const stranger = new Kms(t.store, MasterKey.fromBytes(randomBytes(32)), t.clock);
    assert.throws(() => stranger.open('123456789012/us-east-1', sealed));
    stranger.close();
  } finally { t.close(); }
});

test('task definition secrets: marked values sealed at registration, opened for the spec, refused when the key is disabled', () => {
  const t = setup();
  try {
    const scope = '123456789012/us-east-1';
    const key = t.call('CreateKey', {}).KeyMetadata;
    const blob = t.call('Encrypt', { KeyId: key.KeyId, Plaintext: b64('api-token') }).CiphertextBlob;
    const secrets = taskSecrets(t.kms);
    const body = secrets.protect(scope, { containerDefinitions: [{ name: 'app', environment: [{ name: 'PLAIN', value: 'v' }, { name: 'PW', value: 'berth:secret:hunter2' }], secrets: [{ name: 'TOKEN', valueFrom: blob }] }] }, []);
    const env = body.containerDefinitions[0].environment;
    assert.equal(env[0].value, 'v');
    assert.match(env[1].value, /^berth:kms:v1:/);
    assert.ok(!JSON.stringify(body).includes('hunter2'));
    // Sealed under the account's AWS managed key alias/aws/ecs (no berth:kms-key-id tag).
    assert.equal(t.call('DescribeKey', { KeyId: 'alias/aws/ecs' }).KeyMetadata.KeyManager, 'AWS');
    const open = secrets.opener(scope, { taskArn: 't1', lastStatus: 'PROVISIONING' });
    assert.equal(open(env[1].value, 'environment', 'PW'), 'hunter2');
    assert.equal(open(blob, 'secret', 'TOKEN'), 'api-token');
    assert.equal(open('v', 'environment', 'PLAIN'), 'v');
    // Tagged with a key: sealed under it; disabled, a new task cannot open it, a started one keeps what it had.
    const tagged = secrets.protect(scope, { containerDefinitions: [{ name: 'app', environment: [{ name: 'PW', value: 'berth:secret:s3cret' }] }] }, [{ key: 'berth:kms-key-id', value: key.Arn }]);
    const v = tagged.containerDefinitions[0].environment[0].value;
    assert.ok(v.startsWith(`berth:kms:v1:${key.KeyId}:`));
    const running = secrets.opener(scope, { taskArn: 't2', lastStatus: 'PROVISIONING' });
    assert.equal(running(v, 'environment', 'PW'), 's3cret');
    t.call('DisableKey', { KeyId: key.KeyId });
    assert.throws(() => secrets.opener(scope, { taskArn: 't3', lastStatus: 'PROVISIONING' })(v, 'environment', 'PW'), /ResourceInitializationError: .*disabled/);
    assert.equal(secrets.opener(scope, { taskArn: 't2', lastStatus: 'RUNNING' })(v, 'environment', 'PW'), 's3cret');
    assert.throws(() => secrets.protect(scope, { containerDefinitions: [{ name: 'app', secrets: [{ name: 'X', valueFrom: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x' }] }] }, []), /KMS ciphertext/);
  } finally { t.close(); }
});
