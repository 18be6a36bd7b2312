// Authorization of every call, end to end (aws CLI and SDK): a user confined to one cluster,
// a user without ecs:ExecuteCommand, resource tags in conditions, and the operator role:
// fleet actions allowed, every customer-data path denied, even after the customer grants all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, CreateServiceCommand, DescribeClustersCommand, ExecuteCommandCommand, ListClustersCommand,
  ListServicesCommand, RegisterTaskDefinitionCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { CreateLogGroupCommand, CreateLogStreamCommand, GetLogEventsCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { logsClient } from '../helpers/ecs.js';
import {
  assumeRole, awsAs, ecsAs, jsonCall, logsAs, mustAws, operatorKey, queryCall, rootKeys, userWithPolicy, type Keys, type SignedResponse,
} from '../helpers/iam.js';
import { AUTHZ_TABLES } from '../../src/authz/index.js';
import { DATA_PATH_ACTIONS, matchesAction } from '../../src/iam/index.js';

let berth: TestBerth;
let admin: ECSClient;
let account: string;
let clusterA: string;
let clusterB: string;
const TASK_ID = '0123456789abcdef0123456789abcdef';

const mip = { infrastructureRoleArn: 'arn:aws:iam::123456789012:role/infra', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-a'] } } };

before(async () => {
  berth = await startTestBerth();
  admin = berth.ecs();
  account = mustAws(berth, ['sts', 'get-caller-identity']).Account;
  clusterA = (await admin.send(new CreateClusterCommand({ clusterName: 'team-a', tags: [{ key: 'team', value: 'red' }] }))).cluster!.clusterArn!;
  clusterB = (await admin.send(new CreateClusterCommand({ clusterName: 'team-b', tags: [{ key: 'team', value: 'blue' }] }))).cluster!.clusterArn!;
  await admin.send(new CreateCapacityProviderCommand({ name: 'cp-a', cluster: 'team-a', managedInstancesProvider: mip }));
  await admin.send(new CreateCapacityProviderCommand({ name: 'cp-b', cluster: 'team-b', managedInstancesProvider: mip }));
  await admin.send(new RegisterTaskDefinitionCommand({
    family: 'web', requiresCompatibilities: ['MANAGED_INSTANCES'],
    containerDefinitions: [{ name: 'web', image: 'busybox', memory: 32, environment: [{ name: 'DB_PASSWORD', value: 'hunter2' }] }],
  }));
  for (const cluster of ['team-a', 'team-b']) {
    await admin.send(new CreateServiceCommand({ cluster, serviceName: 'svc', taskDefinition: 'web', desiredCount: 0 }));
  }
  // Customer data: log events only the customer may read.
  const logs = logsClient(berth);
  await logs.send(new CreateLogGroupCommand({ logGroupName: '/app' }));
  await logs.send(new CreateLogStreamCommand({ logGroupName: '/app', logStreamName: 'web' }));
  await logs.send(new PutLogEventsCommand({ logGroupName: '/app', logStreamName: 'web', logEvents: [{ timestamp: Date.now(), message: 'secret customer line' }] }));
});
after(async () => { await berth.cleanup(); });

const denied = (pattern: RegExp = /is not authorized to perform/) => (e: any) => {
  assert.equal(e.name, 'AccessDeniedException', `${e.name}: ${e.message}`);
  assert.match(e.message, pattern);
  return true;
};
const cliDenied = (r: { status: number; stderr: string }, pattern: RegExp = /AccessDenied/) => {
  assert.notEqual(r.status, 0, 'expected AccessDenied');
  assert.match(r.stderr, pattern, r.stderr);
};

test('a user confined to one cluster neither sees nor touches another', async () => {
  const keys = userWithPolicy(berth, 'alice', {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'OneCluster', Effect: 'Allow', Action: 'ecs:*', Resource: '*', Condition: { ArnEquals: { 'ecs:cluster': clusterA } } },
      { Sid: 'TaskDefinitions', Effect: 'Allow', Action: ['ecs:DescribeTaskDefinition', 'ecs:ListTaskDefinitions'], Resource: '*' },
    ],
  });
  const ecs = ecsAs(berth, keys);
  // Listings show only what the user may see.
  assert.deepEqual((await ecs.send(new ListClustersCommand({}))).clusterArns, [clusterA]);
  assert.deepEqual(mustAws(berth, ['ecs', 'list-clusters'], keys).clusterArns, [clusterA]);
  assert.deepEqual(mustAws(berth, ['ecs', 'describe-capacity-providers'], keys).capacityProviders.map((p: any) => p.name), ['cp-a']);
  assert.deepEqual((await ecs.send(new DescribeClustersCommand({ clusters: ['team-a'] }))).clusters!.map((c) => c.clusterName), ['team-a']);
  assert.equal((await ecs.send(new ListServicesCommand({ cluster: 'team-a' }))).serviceArns!.length, 1);
  mustAws(berth, ['ecs', 'list-tasks', '--cluster', 'team-a'], keys);
  mustAws(berth, ['ecs', 'list-container-instances', '--cluster', 'team-a'], keys);
  mustAws(berth, ['ecs', 'update-service', '--cluster', 'team-a', '--service', 'svc', '--desired-count', '0'], keys);
  mustAws(berth, ['ecs', 'tag-resource', '--resource-arn', clusterA, '--tags', 'key=owner,value=alice'], keys);

  // The other cluster, by name or ARN, whatever the action.
  const other = `User: arn:aws:iam::${account}:user/alice is not authorized to perform: ecs:`;
  await assert.rejects(ecs.send(new DescribeClustersCommand({ clusters: ['team-b'] })),
    denied(new RegExp(`${other}DescribeClusters on resource: ${clusterB} because no identity-based policy allows the ecs:DescribeClusters action`)));
  await assert.rejects(ecs.send(new DescribeClustersCommand({ clusters: ['team-a', clusterB] })), denied());
  await assert.rejects(ecs.send(new ListServicesCommand({ cluster: clusterB })), denied(/ecs:ListServices on resource: \*/));
  for (const args of [
    ['ecs', 'list-services', '--cluster', 'team-b'],
    ['ecs', 'describe-services', '--cluster', 'team-b', '--services', 'svc'],
    ['ecs', 'update-service', '--cluster', 'team-b', '--service', 'svc', '--desired-count', '1'],
    ['ecs', 'delete-service', '--cluster', 'team-b', '--service', 'svc'],
    ['ecs', 'list-tasks', '--cluster', 'team-b'],
    ['ecs', 'describe-tasks', '--cluster', 'team-b', '--tasks', TASK_ID],
    ['ecs', 'stop-task', '--cluster', 'team-b', '--task', TASK_ID],
    ['ecs', 'run-task', '--cluster', 'team-b', '--task-definition', 'web'],
    ['ecs', 'list-container-instances', '--cluster', 'team-b'],
    ['ecs', 'describe-capacity-providers', '--capacity-providers', 'cp-b'],
    ['ecs', 'delete-capacity-provider', '--capacity-provider', 'cp-b'],
    ['ecs', 'update-cluster-settings', '--cluster', 'team-b', '--settings', 'name=containerInsights,value=enabled'],
    ['ecs', 'delete-cluster', '--cluster', 'team-b'],
    ['ecs', 'tag-resource', '--resource-arn', clusterB, '--tags', 'key=owner,value=alice'],
    ['ecs', 'list-tags-for-resource', '--resource-arn', clusterB],
    ['ecs', 'create-cluster', '--cluster-name', 'team-c'],
    ['ecs', 'register-task-definition', '--family', 'x', '--container-definitions', '[{"name":"x","image":"busybox","memory":32}]'],
  ]) {
    cliDenied(awsAs(berth, keys, args), /\(AccessDeniedException\).*is not authorized to perform: ecs:/);
  }
  const exec = await jsonCall(berth, keys, 'ecs', 'AmazonEC2ContainerServiceV20141113.ExecuteCommand', { cluster: 'team-b', task: TASK_ID, command: 'sh', interactive: true });
  assert.equal(exec.code, 'AccessDeniedException', exec.body);
  // Nothing changed in team-b.
  const b = (await admin.send(new DescribeClustersCommand({ clusters: ['team-b'], include: ['TAGS'] }))).clusters![0]!;
  assert.equal(b.status, 'ACTIVE');
  assert.deepEqual(b.tags, [{ key: 'team', value: 'blue' }]);
});

test('a user without ecs:ExecuteCommand gets AccessDenied from ExecuteCommand', async () => {
  const keys = userWithPolicy(berth, 'bob', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', NotAction: 'ecs:ExecuteCommand', Resource: '*' }] });
  const input = { cluster: 'team-a', task: TASK_ID, container: 'web', command: '/bin/sh', interactive: true };
  const r = await jsonCall(berth, keys, 'ecs', 'AmazonEC2ContainerServiceV20141113.ExecuteCommand', input);
  assert.equal(r.code, 'AccessDeniedException', r.body);
  assert.equal(r.message, `User: arn:aws:iam::${account}:user/bob is not authorized to perform: ecs:ExecuteCommand on resource: ${clusterA} because no identity-based policy allows the ecs:ExecuteCommand action`);
  // The SDK's ExecuteCommand (the aws CLI needs session-manager-plugin before it calls the API).
  await assert.rejects(ecsAs(berth, keys).send(new ExecuteCommandCommand(input)), denied(/ecs:ExecuteCommand/));
  // The account root gets past authorization to the handler's own answer.
  const asRoot = await jsonCall(berth, rootKeys(berth), 'ecs', 'AmazonEC2ContainerServiceV20141113.ExecuteCommand', input);
  assert.equal(asRoot.code, 'InvalidParameterException', asRoot.body);
  // Allowed on the cluster but with a container-name condition that does not hold.
  const carol = userWithPolicy(berth, 'carol', { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: 'ecs:ExecuteCommand', Resource: [clusterA, `arn:aws:ecs:*:${account}:task/team-a/*`], Condition: { StringEquals: { 'ecs:container-name': 'sidecar' } } },
  ] });
  const c = await jsonCall(berth, carol, 'ecs', 'AmazonEC2ContainerServiceV20141113.ExecuteCommand', input);
  assert.equal(c.code, 'AccessDeniedException', c.body);
  const c2 = await jsonCall(berth, carol, 'ecs', 'AmazonEC2ContainerServiceV20141113.ExecuteCommand', { ...input, container: 'sidecar' });
  assert.equal(c2.code, 'InvalidParameterException', c2.body);
});

test('resource tags in conditions (aws:ResourceTag, ecs:ResourceTag) and explicit denies', async () => {
  const keys = userWithPolicy(berth, 'dora', { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: ['ecs:DescribeClusters', 'ecs:ListClusters'], Resource: '*', Condition: { StringEquals: { 'aws:ResourceTag/team': ['red', 'blue'] } } },
    { Effect: 'Deny', Action: 'ecs:DescribeClusters', Resource: '*', Condition: { StringEquals: { 'ecs:ResourceTag/team': 'blue' } } },
  ] });
  const ecs = ecsAs(berth, keys);
  assert.equal((await ecs.send(new DescribeClustersCommand({ clusters: ['team-a'] }))).clusters!.length, 1);
  await assert.rejects(ecs.send(new DescribeClustersCommand({ clusters: ['team-b'] })), denied(/with an explicit deny in an identity-based policy$/));
  assert.deepEqual((await ecs.send(new ListClustersCommand({}))).clusterArns!.sort(), [clusterA, clusterB].sort());
  // A user with no ECS permission at all gets AccessDenied from a listing, not an empty list.
  const none = userWithPolicy(berth, 'eve', undefined);
  await assert.rejects(ecsAs(berth, none).send(new ListClustersCommand({})), denied(/ecs:ListClusters on resource: \*/));
});

// The operator ----------------------------------------------------------------------------------

/** One real request per customer-data path Berth serves, as the caller `keys`. */
function dataPaths(keys: Keys): Record<string, () => Promise<SignedResponse>> {
  const ecs = (op: string, input: unknown) => () => jsonCall(berth, keys, 'ecs', `AmazonEC2ContainerServiceV20141113.${op}`, input);
  const logs = (op: string, input: unknown) => () => jsonCall(berth, keys, 'logs', `Logs_20140328.${op}`, input);
  const kms = (op: string, input: unknown) => () => jsonCall(berth, keys, 'kms', `TrentService.${op}`, input);
  const keyId = '11111111-2222-3333-4444-555555555555';
  return {
    'ecs:ExecuteCommand': ecs('ExecuteCommand', { cluster: 'team-a', task: TASK_ID, command: 'sh', interactive: true }),
    'ssm:ResumeSession': () => jsonCall(berth, keys, 'ssm', 'AmazonSSM.ResumeSession', { SessionId: 'ecs-execute-command-0123456789abcdef01234567' }),
    'ssm:TerminateSession': () => jsonCall(berth, keys, 'ssm', 'AmazonSSM.TerminateSession', { SessionId: 'ecs-execute-command-0123456789abcdef01234567' }),
    'logs:GetLogEvents': logs('GetLogEvents', { logGroupName: '/app', logStreamName: 'web' }),
    'logs:FilterLogEvents': logs('FilterLogEvents', { logGroupName: '/app' }),
    'logs:PutLogEvents': logs('PutLogEvents', { logGroupName: '/app', logStreamName: 'web', logEvents: [{ timestamp: Date.now(), message: 'x' }] }),
    'ecs:DescribeTaskDefinition': ecs('DescribeTaskDefinition', { taskDefinition: 'web' }),
    'ecs:DescribeTasks': ecs('DescribeTasks', { cluster: 'team-a', tasks: [TASK_ID] }),
    'ecs:RegisterTaskDefinition': ecs('RegisterTaskDefinition', { family: 'evil', containerDefinitions: [{ name: 'x', image: 'busybox', memory: 32 }] }),
    'ecs:RunTask': ecs('RunTask', { cluster: 'team-a', taskDefinition: 'web' }),
    'ecs:StartTask': ecs('StartTask', { cluster: 'team-a', taskDefinition: 'web', containerInstances: ['0123'] }),
    'ecs:CreateService': ecs('CreateService', { cluster: 'team-a', serviceName: 'evil', taskDefinition: 'web', desiredCount: 0 }),
    'ecs:UpdateService': ecs('UpdateService', { cluster: 'team-a', service: 'svc', enableExecuteCommand: true }),
    'ecs:UpdateCluster': ecs('UpdateCluster', { cluster: 'team-a', configuration: { executeCommandConfiguration: { logging: 'NONE' } } }),
    'kms:Decrypt': kms('Decrypt', { CiphertextBlob: Buffer.alloc(64, 7).toString('base64') }),
    'kms:Encrypt': kms('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x').toString('base64') }),
    'kms:GenerateDataKey': kms('GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256' }),
    'kms:PutKeyPolicy': kms('PutKeyPolicy', { KeyId: keyId, PolicyName: 'default', Policy: '{}' }),
    'cloudtrail:LookupEvents': () => jsonCall(berth, keys, 'cloudtrail', 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents', {}),
    'iam:CreateUser': () => queryCall(berth, keys, 'iam', 'CreateUser', { UserName: 'backdoor' }),
    'iam:CreateAccessKey': () => queryCall(berth, keys, 'iam', 'CreateAccessKey', { UserName: 'alice' }),
    'iam:PutUserPolicy': () => queryCall(berth, keys, 'iam', 'PutUserPolicy', { UserName: 'alice', PolicyName: 'x', PolicyDocument: '{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}' }),
    'iam:PutRolePolicy': () => queryCall(berth, keys, 'iam', 'PutRolePolicy', { RoleName: 'BerthOperator', PolicyName: 'x', PolicyDocument: '{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}' }),
    'iam:ListUsers': () => queryCall(berth, keys, 'iam', 'ListUsers'),
    'sts:AssumeRole': () => queryCall(berth, keys, 'sts', 'AssumeRole', { RoleArn: `arn:aws:iam::${account}:role/BerthOperator`, RoleSessionName: 'chain' }),
  };
}

test('every customer-data action Berth serves is walked by the operator tests', () => {
  const walked = new Set(Object.keys(dataPaths({ accessKeyId: 'x', secretAccessKey: 'y' })));
  const missing: string[] = [];
  for (const table of Object.values(AUTHZ_TABLES)) {
    for (const [op, rule] of Object.entries(table.rules)) {
      const action = rule.action ?? `${table.prefix}:${op}`;
      if (table.prefix === 'iam') continue; // iam:* is denied as a whole; a sample is walked
      if (DATA_PATH_ACTIONS.some((p) => matchesAction(p, action)) && !walked.has(action)) missing.push(action);
    }
  }
  assert.deepEqual(missing, []);
});

test('the operator drains and deregisters instances but reaches no customer data, even after the customer grants it everything', async () => {
  const op = operatorKey(berth);
  assert.notEqual(op.account, account);
  // The operator user itself lives in the operator account: it sees no customer resource.
  assert.equal(mustAws(berth, ['sts', 'get-caller-identity'], op).Account, op.account);
  cliDenied(awsAs(berth, op, ['ecs', 'list-clusters']), /\(AccessDeniedException\)/);
  const platforms = await jsonCall(berth, op, 'berth', 'Berth_20261101.ListPlatformVersions', {});
  assert.equal(platforms.status, 200, platforms.body);

  const roleArn = `arn:aws:iam::${account}:role/BerthOperator`;
  const session = assumeRole(berth, op, roleArn, 'oncall');
  assert.equal(session.arn, `arn:aws:sts::${account}:assumed-role/BerthOperator/oncall`);
  // Nobody but the operator account may assume it.
  const customer = userWithPolicy(berth, 'mallory', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
  cliDenied(awsAs(berth, customer, ['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', 'intruder']), /AccessDenied/);

  // Fleet operations work.
  const ecs = ecsAs(berth, session);
  assert.deepEqual((await ecs.send(new ListClustersCommand({}))).clusterArns!.sort(), [clusterA, clusterB].sort());
  mustAws(berth, ['ecs', 'describe-clusters', '--clusters', 'team-a', 'team-b'], session);
  mustAws(berth, ['ecs', 'list-container-instances', '--cluster', 'team-a'], session);
  const drained = mustAws(berth, ['ecs', 'update-container-instances-state', '--cluster', 'team-a', '--container-instances', 'c0ffee', '--status', 'DRAINING'], session);
  assert.equal(drained.failures[0].reason, 'MISSING');
  const dereg = awsAs(berth, session, ['ecs', 'deregister-container-instance', '--cluster', 'team-a', '--container-instance', 'c0ffee', '--force']);
  assert.doesNotMatch(dereg.stderr, /AccessDenied/);
  mustAws(berth, ['ecs', 'list-tasks', '--cluster', 'team-a'], session);
  mustAws(berth, ['ecs', 'describe-services', '--cluster', 'team-a', '--services', 'svc'], session);
  mustAws(berth, ['ec2', 'describe-instances'], session);
  assert.equal((await jsonCall(berth, session, 'berth', 'Berth_20261101.ListLifecycleEvents', {})).status, 200);

  const walk = async (when: string) => {
    for (const [action, call] of Object.entries(dataPaths(session))) {
      const r = await call();
      assert.match(r.code ?? '', /^AccessDenied(Exception)?$/, `${when}: ${action} answered ${r.status} ${r.body}`);
      assert.match(r.message ?? '', new RegExp(`is not authorized to perform: ${action.replace('*', '')}.* with an explicit deny in a permissions boundary`), `${when}: ${action}: ${r.message}`);
    }
  };
  await walk('built-in policy');
  // The customer attaches an allow-all policy to the role: the boundary still holds.
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'BerthOperator', '--policy-name', 'everything', '--policy-document',
    JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] })]);
  await walk('allow-all attached');
  await assert.rejects(logsAs(berth, session).send(new GetLogEventsCommand({ logGroupName: '/app', logStreamName: 'web' })), denied(/permissions boundary/));
  // Actions outside the fleet set stay out of reach too (the boundary allows only those).
  cliDenied(awsAs(berth, session, ['logs', 'describe-log-groups']), /because no permissions boundary allows the logs:DescribeLogGroups action/);
  cliDenied(awsAs(berth, session, ['ecs', 'delete-cluster', '--cluster', 'team-b']), /because no permissions boundary allows/);
  // The customer can still read its own data, and can restrict the operator further.
  const mine = await logsClient(berth).send(new GetLogEventsCommand({ logGroupName: '/app', logStreamName: 'web', startFromHead: true }));
  assert.deepEqual(mine.events!.map((e) => e.message), ['secret customer line']);
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'BerthOperator', '--policy-name', 'not-b', '--policy-document',
    JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'ecs:*', Resource: '*', Condition: { ArnEquals: { 'ecs:cluster': clusterB } } }] })]);
  cliDenied(awsAs(berth, session, ['ecs', 'list-container-instances', '--cluster', 'team-b']), /with an explicit deny in an identity-based policy/);
  mustAws(berth, ['ecs', 'list-container-instances', '--cluster', 'team-a'], session);
  cliDenied(berth.aws(['iam', 'delete-role', '--role-name', 'BerthOperator']), /UnmodifiableEntity/);
});
