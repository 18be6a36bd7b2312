// IAM and STS through the unmodified aws CLI (and raw signed requests): users, access keys,
// inline policies and their validation, roles, AssumeRole and temporary credentials, skew.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateClusterCommand, DeleteClusterCommand, ListClustersCommand } from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { assumeRole, awsAs, ecsAs, jsonCall, mustAws, queryCall, rootKeys, signedCall, userWithPolicy, type Keys } from '../helpers/iam.js';

let berth: TestBerth;
let account: string;

before(async () => {
  // A manual clock: temporary credentials expire when the test moves it (berth AdvanceClock).
  berth = await startTestBerth({ BERTH_CLOCK: 'manual' });
  account = mustAws(berth, ['sts', 'get-caller-identity']).Account;
});
after(async () => { await berth.cleanup(); });

const doc = (...Statement: unknown[]) => JSON.stringify({ Version: '2012-10-17', Statement });
const fails = (r: { status: number; stderr: string }, code: RegExp | string, message?: RegExp) => {
  assert.notEqual(r.status, 0, 'expected the command to fail');
  assert.match(r.stderr, typeof code === 'string' ? new RegExp(`\\(${code}\\)`) : code, r.stderr);
  if (message) assert.match(r.stderr, message, r.stderr);
};

test('every served operation has an authorization rule', () => {
  assert.doesNotMatch(berth.output, /authz: no authorization rule/);
});

test('GetCallerIdentity as the account root, and with a region-less IAM identity for users', () => {
  const root = mustAws(berth, ['sts', 'get-caller-identity']);
  assert.equal(root.Arn, `arn:aws:iam::${account}:root`);
  assert.equal(root.UserId, account);
  const keys = userWithPolicy(berth, 'ident', undefined);
  const me = mustAws(berth, ['sts', 'get-caller-identity'], keys);
  assert.equal(me.Arn, `arn:aws:iam::${account}:user/ident`);
  assert.match(me.UserId, /^AIDA[A-Z2-7]{17}$/);
  // No permission is needed for GetCallerIdentity, even under an explicit deny (as in AWS).
  mustAws(berth, ['iam', 'put-user-policy', '--user-name', 'ident', '--policy-name', 'no', '--policy-document', doc({ Effect: 'Deny', Action: '*', Resource: '*' })]);
  assert.equal(mustAws(berth, ['sts', 'get-caller-identity'], keys).Account, account);
});

test('users: create, get, list, duplicate, missing, delete with conflicts', () => {
  const created = mustAws(berth, ['iam', 'create-user', '--user-name', 'bob', '--path', '/team/', '--tags', 'Key=team,Value=red']).User;
  assert.equal(created.Arn, `arn:aws:iam::${account}:user/team/bob`);
  assert.equal(created.Path, '/team/');
  assert.deepEqual(mustAws(berth, ['iam', 'get-user', '--user-name', 'bob']).User.Tags, [{ Key: 'team', Value: 'red' }]);
  assert.ok(mustAws(berth, ['iam', 'list-users']).Users.some((u: any) => u.UserName === 'bob'));
  assert.deepEqual(mustAws(berth, ['iam', 'list-users', '--path-prefix', '/team/']).Users.map((u: any) => u.UserName), ['bob']);
  fails(berth.aws(['iam', 'create-user', '--user-name', 'BOB']), 'EntityAlreadyExists', /User with name BOB already exists/);
  fails(berth.aws(['iam', 'get-user', '--user-name', 'nobody']), 'NoSuchEntity', /The user with name nobody cannot be found/);
  fails(berth.aws(['iam', 'create-user', '--user-name', 'bad name']), 'ValidationError');

  const key = mustAws(berth, ['iam', 'create-access-key', '--user-name', 'bob']).AccessKey;
  mustAws(berth, ['iam', 'put-user-policy', '--user-name', 'bob', '--policy-name', 'p', '--policy-document', doc({ Effect: 'Allow', Action: 'ecs:List*', Resource: '*' })]);
  fails(berth.aws(['iam', 'delete-user', '--user-name', 'bob']), 'DeleteConflict', /must delete access keys first/);
  mustAws(berth, ['iam', 'delete-access-key', '--user-name', 'bob', '--access-key-id', key.AccessKeyId]);
  fails(berth.aws(['iam', 'delete-user', '--user-name', 'bob']), 'DeleteConflict', /must delete policies first/);
  mustAws(berth, ['iam', 'delete-user-policy', '--user-name', 'bob', '--policy-name', 'p']);
  mustAws(berth, ['iam', 'delete-user', '--user-name', 'bob']);
  fails(berth.aws(['iam', 'get-user', '--user-name', 'bob']), 'NoSuchEntity');
});

test('access keys: at most two per user, listed without secrets, deleting one takes effect at once', async () => {
  const first = userWithPolicy(berth, 'carol', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' }] });
  const second = mustAws(berth, ['iam', 'create-access-key', '--user-name', 'carol']).AccessKey;
  fails(berth.aws(['iam', 'create-access-key', '--user-name', 'carol']), 'LimitExceeded', /Cannot exceed quota for AccessKeysPerUser: 2/);
  const listed = mustAws(berth, ['iam', 'list-access-keys', '--user-name', 'carol']).AccessKeyMetadata;
  assert.deepEqual(listed.map((k: any) => k.AccessKeyId).sort(), [first.accessKeyId, second.AccessKeyId].sort());
  assert.ok(listed.every((k: any) => k.Status === 'Active' && k.SecretAccessKey === undefined));

  const ecs = ecsAs(berth, first);
  await ecs.send(new ListClustersCommand({}));
  // Deactivated, then active again, then deleted: each takes effect on the very next request.
  mustAws(berth, ['iam', 'update-access-key', '--user-name', 'carol', '--access-key-id', first.accessKeyId, '--status', 'Inactive']);
  await assert.rejects(ecs.send(new ListClustersCommand({})), { name: 'UnrecognizedClientException' });
  mustAws(berth, ['iam', 'update-access-key', '--user-name', 'carol', '--access-key-id', first.accessKeyId, '--status', 'Active']);
  await ecs.send(new ListClustersCommand({}));
  mustAws(berth, ['iam', 'delete-access-key', '--user-name', 'carol', '--access-key-id', first.accessKeyId]);
  await assert.rejects(ecs.send(new ListClustersCommand({})), { name: 'UnrecognizedClientException' });
  fails(berth.aws(['iam', 'delete-access-key', '--user-name', 'carol', '--access-key-id', first.accessKeyId]), 'NoSuchEntity');

  // A user manages its own keys without naming itself (when its policy allows it).
  const self = { accessKeyId: second.AccessKeyId, secretAccessKey: second.SecretAccessKey };
  fails(awsAs(berth, self, ['iam', 'list-access-keys']), 'AccessDenied', /is not authorized to perform: iam:ListAccessKeys on resource: arn:aws:iam::\d{12}:user\/carol because no identity-based policy allows/);
  mustAws(berth, ['iam', 'put-user-policy', '--user-name', 'carol', '--policy-name', 'own-keys', '--policy-document',
    doc({ Effect: 'Allow', Action: ['iam:ListAccessKeys', 'iam:CreateAccessKey'], Resource: `arn:aws:iam::${account}:user/\${aws:username}` })]);
  assert.equal(mustAws(berth, ['iam', 'list-access-keys'], self).AccessKeyMetadata.length, 1);
  fails(awsAs(berth, self, ['iam', 'list-access-keys', '--user-name', 'ident']), 'AccessDenied');
});

test('policy changes apply on the very next request, however often the caller was just authorized', async () => {
  const keys = userWithPolicy(berth, 'kira', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' }] });
  const ecs = ecsAs(berth, keys);
  const put = (statement: unknown) => mustAws(berth, ['iam', 'put-user-policy', '--user-name', 'kira', '--policy-name', 'access', '--policy-document', doc(statement)]);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 3; i++) await ecs.send(new ListClustersCommand({}));
    put({ Effect: 'Deny', Action: 'ecs:List*', Resource: '*' });
    await assert.rejects(ecs.send(new ListClustersCommand({})), { name: 'AccessDeniedException' });
    put({ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' });
  }
  await ecs.send(new ListClustersCommand({}));
  // An explicit deny on every resource refuses the listing itself (not an empty list), and says so.
  mustAws(berth, ['iam', 'put-user-policy', '--user-name', 'kira', '--policy-name', 'access', '--policy-document',
    doc({ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' }, { Effect: 'Deny', Action: 'ecs:List*', Resource: '*' })]);
  await assert.rejects(ecs.send(new ListClustersCommand({})), (e: any) => e.name === 'AccessDeniedException' && /with an explicit deny in an identity-based policy/.test(e.message));
  put({ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' });
  await ecs.send(new ListClustersCommand({}));
  mustAws(berth, ['iam', 'delete-user-policy', '--user-name', 'kira', '--policy-name', 'access']);
  await assert.rejects(ecs.send(new ListClustersCommand({})), (e: any) => e.name === 'AccessDeniedException' && /because no identity-based policy allows/.test(e.message));
  // A deleted key, then a deleted user: the next request is refused.
  mustAws(berth, ['iam', 'delete-access-key', '--user-name', 'kira', '--access-key-id', keys.accessKeyId]);
  await assert.rejects(ecs.send(new ListClustersCommand({})), { name: 'UnrecognizedClientException' });
  mustAws(berth, ['iam', 'delete-user', '--user-name', 'kira']);
  await assert.rejects(ecs.send(new ListClustersCommand({})), { name: 'UnrecognizedClientException' });
});

test('role sessions: a removed role policy and a deleted role apply to live sessions on the very next request', async () => {
  mustAws(berth, ['iam', 'create-role', '--role-name', 'fleeting', '--assume-role-policy-document',
    doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' })]);
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'fleeting', '--policy-name', 'p', '--policy-document', doc({ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' })]);
  const user = userWithPolicy(berth, 'lena', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] });
  const session = assumeRole(berth, user, `arn:aws:iam::${account}:role/fleeting`, 'live');
  const ecs = ecsAs(berth, session);
  for (let i = 0; i < 3; i++) await ecs.send(new ListClustersCommand({}));
  mustAws(berth, ['iam', 'delete-role-policy', '--role-name', 'fleeting', '--policy-name', 'p']);
  await assert.rejects(ecs.send(new ListClustersCommand({})), { name: 'AccessDeniedException' });
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'fleeting', '--policy-name', 'p', '--policy-document', doc({ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' })]);
  await ecs.send(new ListClustersCommand({}));
  mustAws(berth, ['iam', 'delete-role-policy', '--role-name', 'fleeting', '--policy-name', 'p']);
  mustAws(berth, ['iam', 'delete-role', '--role-name', 'fleeting']);
  mustAws(berth, ['iam', 'create-role', '--role-name', 'fleeting', '--assume-role-policy-document',
    doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' })]);
  // A new role of the same name has no policies: the old session gets nothing from it.
  await assert.rejects(ecs.send(new ListClustersCommand({})), { name: 'AccessDeniedException' });
});

test('inline policies round-trip through the CLI (documents come back URL-decoded)', () => {
  mustAws(berth, ['iam', 'create-user', '--user-name', 'dave']);
  const policy = { Version: '2012-10-17', Statement: [{ Sid: 'Clusters', Effect: 'Allow', Action: ['ecs:Describe*'], Resource: 'arn:aws:ecs:*:*:cluster/a+b%', Condition: { StringLike: { 'aws:username': 'd*' } } }] };
  mustAws(berth, ['iam', 'put-user-policy', '--user-name', 'dave', '--policy-name', 'read', '--policy-document', JSON.stringify(policy)]);
  const got = mustAws(berth, ['iam', 'get-user-policy', '--user-name', 'dave', '--policy-name', 'read']);
  assert.deepEqual(got.PolicyDocument, policy);
  assert.deepEqual(mustAws(berth, ['iam', 'list-user-policies', '--user-name', 'dave']).PolicyNames, ['read']);
  fails(berth.aws(['iam', 'get-user-policy', '--user-name', 'dave', '--policy-name', 'nope']), 'NoSuchEntity', /The user policy with name nope cannot be found/);
});

test('malformed policies get IAM\'s MalformedPolicyDocument errors', () => {
  mustAws(berth, ['iam', 'create-user', '--user-name', 'erin']);
  const put = (text: string) => berth.aws(['iam', 'put-user-policy', '--user-name', 'erin', '--policy-name', 'p', '--policy-document', text]);
  fails(put('{"Version": "2012-10-17", "Statement": ['), 'MalformedPolicyDocument', /This policy contains invalid Json/);
  fails(put(doc({ Action: '*', Resource: '*' })), 'MalformedPolicyDocument', /Missing required field Effect/);
  fails(put(doc({ Effect: 'Allow', Resource: '*' })), 'MalformedPolicyDocument', /Policy statement must contain actions/);
  fails(put(doc({ Effect: 'Allow', Action: '*' })), 'MalformedPolicyDocument', /Policy statement must contain resources/);
  fails(put(doc({ Effect: 'Allow', Action: 'ListClusters', Resource: '*' })), 'MalformedPolicyDocument', /Actions\/Conditions must be prefaced by a vendor/);
  fails(put(doc({ Effect: 'Allow', Action: 'ecs:*', Resource: 'cluster/a' })), 'MalformedPolicyDocument', /Resource cluster\/a must be in ARN format or "\*"/);
  fails(put(doc({ Effect: 'Allow', Principal: '*', Action: 'ecs:*', Resource: '*' })), 'MalformedPolicyDocument', /Policy document should not specify a principal/);
  fails(put(doc({ Effect: 'Allow', Action: 'ecs:*', Resource: '*', Condition: { StringEqualz: { 'aws:username': 'x' } } })), 'MalformedPolicyDocument', /Invalid Condition type : StringEqualz/);
  fails(put(doc({ Sid: 'a', Effect: 'Allow', Action: '*', Resource: '*' }, { Sid: 'a', Effect: 'Deny', Action: 'iam:*', Resource: '*' })), 'MalformedPolicyDocument', /Statement IDs \(SID\) in a single policy must be unique/);
  fails(put(doc({ Effect: 'Allow', Action: 'ecs:*', Resource: '*', Extra: true })), 'MalformedPolicyDocument', /Syntax errors in policy/);
  // Characters outside what IAM accepts in policy documents (tab, LF, CR, U+0020–U+00FF).
  fails(put(doc({ Effect: 'Allow', Action: 'ecs:*', Resource: 'arn:aws:ecs:*:*:cluster/\u0100' })), 'ValidationError', /regular expression pattern/);
  assert.deepEqual(mustAws(berth, ['iam', 'list-user-policies', '--user-name', 'erin']).PolicyNames, []);
});

test('oversized policies are refused: 2,048 characters per user, 10,240 per role, white space not counted', () => {
  mustAws(berth, ['iam', 'create-user', '--user-name', 'frank']);
  const sized = (n: number) => {
    // {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*","Sid":"xxx"}]}
    const base = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*', Sid: '' }] });
    return JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*', Sid: 'x'.repeat(n - base.length) }] });
  };
  assert.equal(sized(2048).length, 2048);
  const put = (user: string, name: string, text: string) => berth.aws(['iam', 'put-user-policy', '--user-name', user, '--policy-name', name, '--policy-document', text]);
  assert.equal(put('frank', 'exact', sized(2048)).status, 0);
  fails(put('frank', 'second', sized(200)), 'LimitExceeded', /Maximum policy size of 2048 bytes exceeded for user frank/);
  // Replacing a policy counts its new size only; white space is free.
  const pretty = sized(2048).replace(/,/g, `,${' '.repeat(500)}\n`);
  assert.ok(pretty.length > 4000);
  assert.equal(put('frank', 'exact', pretty).status, 0);
  fails(put('frank', 'exact', sized(2049)), 'LimitExceeded');

  mustAws(berth, ['iam', 'create-role', '--role-name', 'big', '--assume-role-policy-document',
    doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' })]);
  const putRole = (name: string, text: string) => berth.aws(['iam', 'put-role-policy', '--role-name', 'big', '--policy-name', name, '--policy-document', text]);
  for (let i = 0; i < 5; i++) assert.equal(putRole(`p${i}`, sized(2048)).status, 0);
  fails(putRole('p5', sized(150)), 'LimitExceeded', /Maximum policy size of 10240 bytes exceeded for role big/);
  fails(berth.aws(['iam', 'create-role', '--role-name', 'bigtrust', '--assume-role-policy-document',
    doc(...Array.from({ length: 30 }, () => ({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' })))]),
  'LimitExceeded', /Cannot exceed quota for ACLSizePerRole: 2048/);
});

test('roles: create, get, list, trust policy validation, the built-in BerthOperator cannot be deleted', () => {
  const trust = doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' });
  const role = mustAws(berth, ['iam', 'create-role', '--role-name', 'deployer', '--assume-role-policy-document', trust, '--description', 'CI']).Role;
  assert.equal(role.Arn, `arn:aws:iam::${account}:role/deployer`);
  assert.match(role.RoleId, /^AROA[A-Z2-7]{17}$/);
  assert.deepEqual(mustAws(berth, ['iam', 'get-role', '--role-name', 'deployer']).Role.AssumeRolePolicyDocument, JSON.parse(trust));
  const names = mustAws(berth, ['iam', 'list-roles']).Roles.map((r: any) => r.RoleName);
  assert.ok(names.includes('deployer') && names.includes('BerthOperator'), names.join());
  fails(berth.aws(['iam', 'create-role', '--role-name', 'deployer', '--assume-role-policy-document', trust]), 'EntityAlreadyExists');
  fails(berth.aws(['iam', 'create-role', '--role-name', 'x', '--assume-role-policy-document', doc({ Effect: 'Allow', Action: 'sts:AssumeRole' })]), 'MalformedPolicyDocument', /Missing required field Principal/);
  fails(berth.aws(['iam', 'create-role', '--role-name', 'x', '--assume-role-policy-document', doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:user/ghost` }, Action: 'sts:AssumeRole' })]),
    'MalformedPolicyDocument', /Invalid principal in policy/);
  fails(berth.aws(['iam', 'delete-role', '--role-name', 'BerthOperator']), 'UnmodifiableEntity', /protected role 'BerthOperator'/);
  fails(berth.aws(['iam', 'get-role', '--role-name', 'ghost']), 'NoSuchEntity', /The role with name ghost cannot be found/);
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'deployer', '--policy-name', 'p', '--policy-document', doc({ Effect: 'Allow', Action: 'ecs:*', Resource: '*' })]);
  assert.deepEqual(mustAws(berth, ['iam', 'list-role-policies', '--role-name', 'deployer']).PolicyNames, ['p']);
  fails(berth.aws(['iam', 'delete-role', '--role-name', 'deployer']), 'DeleteConflict');
  mustAws(berth, ['iam', 'delete-role-policy', '--role-name', 'deployer', '--policy-name', 'p']);
  mustAws(berth, ['iam', 'delete-role', '--role-name', 'deployer']);
});

test('AssumeRole: identity policy and trust policy both needed; session credentials carry the role\'s policies', async () => {
  mustAws(berth, ['iam', 'create-role', '--role-name', 'builder', '--assume-role-policy-document',
    doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole', Condition: { StringLike: { 'sts:RoleSessionName': 'ci-*' } } })]);
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'builder', '--policy-name', 'p', '--policy-document',
    doc({ Effect: 'Allow', Action: ['ecs:CreateCluster', 'ecs:ListClusters'], Resource: '*' })]);
  const roleArn = `arn:aws:iam::${account}:role/builder`;
  const allowed = userWithPolicy(berth, 'gina', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: roleArn }] });
  const notAllowed = userWithPolicy(berth, 'hank', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:*', Resource: '*' }] });

  fails(awsAs(berth, notAllowed, ['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', 'ci-1']), 'AccessDenied',
    /User: arn:aws:iam::\d{12}:user\/hank is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::\d{12}:role\/builder/);
  fails(awsAs(berth, allowed, ['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', 'adhoc']), 'AccessDenied'); // trust condition
  fails(berth.aws(['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', 'ci-root']), 'AccessDenied', /Roles may not be assumed by root accounts/);
  fails(awsAs(berth, allowed, ['sts', 'assume-role', '--role-arn', `arn:aws:iam::${account}:role/ghost`, '--role-session-name', 'ci-1']), 'AccessDenied');
  fails(awsAs(berth, allowed, ['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', 'ci-1', '--duration-seconds', '7200']), 'ValidationError', /MaxSessionDuration/);

  const session = assumeRole(berth, allowed, roleArn, 'ci-1');
  assert.match(session.accessKeyId, /^ASIA[A-Z2-7]{16}$/);
  assert.equal(session.arn, `arn:aws:sts::${account}:assumed-role/builder/ci-1`);
  const who = mustAws(berth, ['sts', 'get-caller-identity'], session);
  assert.equal(who.Arn, session.arn);
  // The SDK with the session's credentials (token included): what the role allows, and no more.
  const ecs = ecsAs(berth, session);
  await ecs.send(new CreateClusterCommand({ clusterName: 'built' }));
  await ecs.send(new ListClustersCommand({}));
  await assert.rejects(ecs.send(new DeleteClusterCommand({ cluster: 'built' })),
    (e: any) => e.name === 'AccessDeniedException' && /assumed-role\/builder\/ci-1 is not authorized to perform: ecs:DeleteCluster/.test(e.message));
  // The token is required and must be the session's own.
  await assert.rejects(ecsAs(berth, { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey }).send(new ListClustersCommand({})), { name: 'UnrecognizedClientException' });
  await assert.rejects(ecsAs(berth, { ...session, sessionToken: Buffer.alloc(96, 1).toString('base64') }).send(new ListClustersCommand({})), { name: 'UnrecognizedClientException' });
  const noToken = await queryCall(berth, { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey }, 'sts', 'GetCallerIdentity');
  assert.equal(noToken.code, 'InvalidClientTokenId');
  // A role policy change applies to live sessions at once.
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'builder', '--policy-name', 'p', '--policy-document', doc({ Effect: 'Allow', Action: 'ecs:CreateCluster', Resource: '*' })]);
  await assert.rejects(ecs.send(new ListClustersCommand({})), { name: 'AccessDeniedException' });

  // A session policy narrows the session further.
  const narrowed = assumeRole(berth, allowed, roleArn, 'ci-2', ['--policy', doc({ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' })]);
  await assert.rejects(ecsAs(berth, narrowed).send(new CreateClusterCommand({ clusterName: 'narrow' })),
    (e: any) => e.name === 'AccessDeniedException' && /because no session policy allows the ecs:CreateCluster action/.test(e.message));
});

test('temporary credentials expire on the server clock', async () => {
  mustAws(berth, ['iam', 'create-role', '--role-name', 'short', '--assume-role-policy-document',
    doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' })]);
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'short', '--policy-name', 'p', '--policy-document', doc({ Effect: 'Allow', Action: 'ecs:ListClusters', Resource: '*' })]);
  const user = userWithPolicy(berth, 'ivy', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] });
  const session = assumeRole(berth, user, `arn:aws:iam::${account}:role/short`, 'short-lived', ['--duration-seconds', '900']);
  const clock = await jsonCall(berth, rootKeys(berth), 'berth', 'Berth_20261101.GetClock', {});
  assert.equal(clock.status, 200, clock.body);
  assert.ok(Math.abs(Date.parse(session.expiration) - (clock.json.now * 1000 + 900_000)) < 1000, `${session.expiration} vs ${clock.json.now}`);
  await ecsAs(berth, session).send(new ListClustersCommand({}));
  const advanced = await jsonCall(berth, rootKeys(berth), 'berth', 'Berth_20261101.AdvanceClock', { seconds: 899 });
  assert.equal(advanced.status, 200, advanced.body);
  await ecsAs(berth, session).send(new ListClustersCommand({}));
  await jsonCall(berth, rootKeys(berth), 'berth', 'Berth_20261101.AdvanceClock', { seconds: 2 });
  await assert.rejects(ecsAs(berth, session).send(new ListClustersCommand({})),
    (e: any) => e.name === 'ExpiredTokenException' && /The security token included in the request is expired/.test(e.message));
  const viaSts = await queryCall(berth, session, 'sts', 'GetCallerIdentity');
  assert.equal(viaSts.code, 'ExpiredToken');
  fails(awsAs(berth, session, ['sts', 'get-caller-identity']), 'ExpiredToken');
});

test('SigV4 requests signed outside the allowed skew are refused by IAM and STS too', async () => {
  const root: Keys = rootKeys(berth);
  const ok = await queryCall(berth, root, 'iam', 'ListUsers');
  assert.equal(ok.status, 200, ok.body);
  for (const [service, action] of [['iam', 'ListUsers'], ['sts', 'GetCallerIdentity']] as const) {
    const old = await queryCall(berth, root, service, action, {}, { signingDate: new Date(Date.now() - 16 * 60 * 1000) });
    assert.equal(old.code, 'InvalidSignatureException', old.body);
    assert.match(old.message!, /Signature expired/);
    const future = await queryCall(berth, root, service, action, {}, { signingDate: new Date(Date.now() + 16 * 60 * 1000) });
    assert.equal(future.code, 'InvalidSignatureException', future.body);
    assert.match(future.message!, /Signature not yet current/);
    // Another second than the signed one (replacing it with :00 was no change once a minute).
    const tampered = await queryCall(berth, root, service, action, {}, { tamper: (h) => { h['x-amz-date'] = h['x-amz-date']!.replace(/(\d\d)Z$/, (_m, ss: string) => `${ss === '00' ? '01' : '00'}Z`); } });
    assert.equal(tampered.code, 'InvalidSignatureException', tampered.body);
  }
  // IAM is global: a request signed for another region reaches the same identities.
  const elsewhere = await signedCall(berth, root, 'iam', new URLSearchParams({ Action: 'ListUsers', Version: '2010-05-08' }).toString(), { region: 'eu-west-3' });
  assert.match(elsewhere.body, /<UserName>ident<\/UserName>/);
});
