// The operator on a real fleet: a customer's task runs in a real container on a real instance;
// the operator (berth operator-key → sts assume-role BerthOperator) drains and deregisters the
// instance, and gets AccessDenied on every path to the customer's data — the running task's
// shell, its logs, its environment — even after the customer grants the role everything.
// A customer user without ecs:ExecuteCommand cannot exec into the same task.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, DescribeContainerInstancesCommand, ExecuteCommandCommand, ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { taskId, waitFor, waitForLogs, waitForStatus } from '../helpers/ecs.js';
import { assumeRole, awsAs, ecsAs, jsonCall, mustAws, operatorKey, userWithPolicy, type Keys } from '../helpers/iam.js';

const cluster = 'ops';
let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let task: string;
let stream: string;

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  berth = await startTestBerth();
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await ecs.send(new CreateCapacityProviderCommand({
    name: 'ops-cp', cluster,
    managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-1'] } } },
  }));
  await ecs.send(new RegisterTaskDefinitionCommand({
    family: 'app', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{
      name: 'app', image: `${registry.address}/busybox:latest`, memory: 48, stopTimeout: 2,
      environment: [{ name: 'DB_PASSWORD', value: 'hunter2' }],
      command: ['sh', '-c', 'echo "customer secret: $DB_PASSWORD"; sleep 3600'],
      logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/ops', 'awslogs-stream-prefix': 'app' } },
    }],
  }));
  task = (await ecs.send(new RunTaskCommand({ cluster, taskDefinition: 'app', enableExecuteCommand: true }))).tasks![0]!.taskArn!;
  await waitForStatus(ecs, cluster, task, 'RUNNING', 120_000);
  stream = `app/app/${taskId(task)}`;
  await waitForLogs(berth, '/ops', stream, (m) => m.includes('customer secret: hunter2'));
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

async function dataPaths(keys: Keys): Promise<[string, { code?: string; message?: string; body: string }][]> {
  const ecsCall = (op: string, input: unknown) => jsonCall(berth, keys, 'ecs', `AmazonEC2ContainerServiceV20141113.${op}`, input);
  const logsCall = (op: string, input: unknown) => jsonCall(berth, keys, 'logs', `Logs_20140328.${op}`, input);
  return [
    ['ecs:ExecuteCommand', await ecsCall('ExecuteCommand', { cluster, task, container: 'app', command: 'cat /proc/self/environ', interactive: true })],
    ['logs:GetLogEvents', await logsCall('GetLogEvents', { logGroupName: '/ops', logStreamName: stream, startFromHead: true })],
    ['logs:FilterLogEvents', await logsCall('FilterLogEvents', { logGroupName: '/ops', filterPattern: 'secret' })],
    ['ecs:DescribeTasks', await ecsCall('DescribeTasks', { cluster, tasks: [task] })],
    ['ecs:DescribeTaskDefinition', await ecsCall('DescribeTaskDefinition', { taskDefinition: 'app' })],
  ];
}

test('a customer user without ecs:ExecuteCommand cannot exec into a running task', async () => {
  const keys = userWithPolicy(berth, 'dev', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', NotAction: 'ecs:ExecuteCommand', Resource: '*' }] });
  await assert.rejects(ecsAs(berth, keys).send(new ExecuteCommandCommand({ cluster, task, container: 'app', interactive: true, command: '/bin/sh' })),
    (e: any) => e.name === 'AccessDeniedException' && /is not authorized to perform: ecs:ExecuteCommand on resource: arn:aws:ecs:[^ ]+:cluster\/ops because no identity-based policy allows/.test(e.message));
  // The same user reads what it is allowed to.
  assert.equal(mustAws(berth, ['ecs', 'describe-tasks', '--cluster', cluster, '--tasks', task], keys).tasks[0].lastStatus, 'RUNNING');
});

test('the operator drains and deregisters the instance, and reaches none of the customer data', async () => {
  const account = mustAws(berth, ['sts', 'get-caller-identity']).Account;
  const op = operatorKey(berth);
  const session = assumeRole(berth, op, `arn:aws:iam::${account}:role/BerthOperator`, 'oncall');
  const asOperator = ecsAs(berth, session);

  const walk = async (when: string) => {
    for (const [action, r] of await dataPaths(session)) {
      assert.equal(r.code, 'AccessDeniedException', `${when}: ${action}: ${r.body}`);
      assert.match(r.message!, new RegExp(`assumed-role/BerthOperator/oncall is not authorized to perform: ${action} .*with an explicit deny in a permissions boundary`));
      assert.doesNotMatch(r.body, /hunter2/);
    }
  };
  await walk('built-in policy');
  mustAws(berth, ['iam', 'put-role-policy', '--role-name', 'BerthOperator', '--policy-name', 'all', '--policy-document',
    JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] })]);
  await walk('allow-all attached');

  // The fleet: list, describe, drain, deregister.
  const instances = (await asOperator.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  assert.equal(instances.length, 1);
  const ec2Id = (await asOperator.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: instances }))).containerInstances![0]!.ec2InstanceId!;
  assert.ok(mustAws(berth, ['ec2', 'describe-instances'], session).Reservations.some((r: any) => r.Instances.some((i: any) => i.InstanceId === ec2Id)));
  const drained = mustAws(berth, ['ecs', 'update-container-instances-state', '--cluster', cluster, '--container-instances', instances[0]!, '--status', 'DRAINING'], session);
  assert.equal(drained.containerInstances[0].status, 'DRAINING');
  const dereg = awsAs(berth, session, ['ecs', 'deregister-container-instance', '--cluster', cluster, '--container-instance', instances[0]!, '--force']);
  assert.equal(dereg.status, 0, dereg.stderr);
  await waitFor('the instance to leave the cluster', async () =>
    (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!.length === 0, 60_000);
  // The customer still reads its own logs.
  await waitForLogs(berth, '/ops', stream, (m) => m.includes('customer secret: hunter2'));
});
