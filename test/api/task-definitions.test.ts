import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  RegisterTaskDefinitionCommand, DescribeTaskDefinitionCommand, ListTaskDefinitionsCommand, ListTaskDefinitionFamiliesCommand,
  DeregisterTaskDefinitionCommand, DeleteTaskDefinitionsCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';

let berth: TestBerth;
let ecs: ECSClient;
before(async () => { berth = await startTestBerth(); ecs = berth.ecs(); });
after(async () => { await berth.cleanup(); });

const container = { name: 'app', image: '127.0.0.1:5000/busybox:latest', memory: 64, command: ['sleep', '3600'] };
const register = (family: string, extra: Record<string, unknown> = {}) =>
  ecs.send(new RegisterTaskDefinitionCommand({ family, containerDefinitions: [container], requiresCompatibilities: ['MANAGED_INSTANCES'], ...extra } as any));

test('revisions grow per family and describe resolves family, family:revision and ARN', async () => {
  const r1 = await register('web', { tags: [{ key: 'app', value: 'web' }] });
  const r2 = await register('web', { cpu: '256', memory: '512' });
  assert.equal(r1.taskDefinition!.revision, 1);
  assert.equal(r2.taskDefinition!.revision, 2);
  assert.match(r2.taskDefinition!.taskDefinitionArn!, /:task-definition\/web:2$/);
  assert.equal(r2.taskDefinition!.networkMode, 'awsvpc');
  assert.deepEqual(r2.taskDefinition!.compatibilities, ['EC2', 'FARGATE', 'MANAGED_INSTANCES']);
  assert.ok(r2.taskDefinition!.registeredAt instanceof Date);
  assert.match(r2.taskDefinition!.registeredBy!, /^arn:aws:iam::\d{12}:root$/);

  assert.equal((await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'web' }))).taskDefinition!.revision, 2);
  assert.equal((await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'web:1' }))).taskDefinition!.revision, 1);
  const byArn = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: r1.taskDefinition!.taskDefinitionArn!, include: ['TAGS'] }));
  assert.deepEqual(byArn.tags, [{ key: 'app', value: 'web' }]);
  await assert.rejects(ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'web:9' })), { name: 'ClientException', message: 'Unable to describe task definition.' });
  await assert.rejects(ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'nothing' })), { name: 'ClientException' });
});

test('deregister, list by status, families, delete', async () => {
  await register('job');
  await register('job');
  await register('job-b');
  const dereg = await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: 'job:1' }));
  assert.equal(dereg.taskDefinition!.status, 'INACTIVE');
  assert.ok(dereg.taskDefinition!.deregisteredAt instanceof Date);
  await assert.rejects(ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: 'job' })), { name: 'InvalidParameterException', message: /must include a revision/ });

  // A bare family resolves to the latest ACTIVE revision.
  assert.equal((await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'job' }))).taskDefinition!.revision, 2);

  const active = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'job' }));
  // Sorted by family name, then revision.
  assert.deepEqual(active.taskDefinitionArns!.map((a) => a.split('/')[1]), ['job:2', 'job-b:1']);
  const inactive = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'job', status: 'INACTIVE' }));
  assert.deepEqual(inactive.taskDefinitionArns!.map((a) => a.split('/')[1]), ['job:1']);
  const desc = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'job', sort: 'DESC' }));
  assert.deepEqual(desc.taskDefinitionArns!.map((a) => a.split('/')[1]), ['job-b:1', 'job:2']);

  await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: 'job-b:1' }));
  const activeFamilies = await ecs.send(new ListTaskDefinitionFamiliesCommand({ familyPrefix: 'job' }));
  assert.deepEqual(activeFamilies.families, ['job']);
  const inactiveFamilies = await ecs.send(new ListTaskDefinitionFamiliesCommand({ familyPrefix: 'job', status: 'INACTIVE' }));
  assert.deepEqual(inactiveFamilies.families, ['job-b']);
  const all = await ecs.send(new ListTaskDefinitionFamiliesCommand({ familyPrefix: 'job', status: 'ALL' }));
  assert.deepEqual(all.families, ['job', 'job-b']);

  const del = await ecs.send(new DeleteTaskDefinitionsCommand({ taskDefinitions: ['job:1', 'job:2', 'job:77'] }));
  assert.equal(del.taskDefinitions!.length, 1);
  assert.equal(del.taskDefinitions![0]!.status, 'DELETE_IN_PROGRESS');
  assert.ok(del.taskDefinitions![0]!.deleteRequestedAt instanceof Date);
  assert.equal(del.failures!.length, 2);
  assert.match(del.failures![0]!.reason!, /still in ACTIVE status/);
  // Revision numbers are never reused.
  assert.equal((await register('job')).taskDefinition!.revision, 3);
});

test('pagination over many revisions', async () => {
  for (let i = 0; i < 25; i++) await register('many');
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const r = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'many', maxResults: 10, nextToken }));
    arns.push(...r.taskDefinitionArns!);
    nextToken = r.nextToken;
  } while (nextToken);
  assert.equal(arns.length, 25);
  assert.deepEqual(arns.map((a) => Number(a.split(':').pop())), Array.from({ length: 25 }, (_, i) => i + 1));
});

test('managed-instances rules reach the client with what to change', async () => {
  await assert.rejects(register('bad', { networkMode: 'bridge' }), { name: 'ClientException', message: /networkMode 'bridge' is not supported on managed instances; use awsvpc or host/ });
  await assert.rejects(register('bad', { containerDefinitions: [{ ...container, hostname: 'h' }] }), { name: 'ClientException', message: /hostname is not supported/ });
  await assert.rejects(register('bad', { containerDefinitions: [{ name: 'x', image: 'y' }] }), { name: 'ClientException', message: /At least one of 'memory' or 'memoryReservation'/ });
  await assert.rejects(register('bad', { networkMode: 'weird' }), { name: 'InvalidParameterException', message: /enum value set/ });
  const list = await ecs.send(new ListTaskDefinitionFamiliesCommand({ familyPrefix: 'bad', status: 'ALL' }));
  assert.deepEqual(list.families, []);
});

test('the aws CLI registers and describes task definitions', () => {
  const r = berth.aws(['ecs', 'register-task-definition', '--family', 'cli', '--requires-compatibilities', 'MANAGED_INSTANCES',
    '--network-mode', 'host', '--container-definitions', JSON.stringify([{ ...container, portMappings: [{ containerPort: 8080 }] }])]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.taskDefinition.containerDefinitions[0].portMappings[0].hostPort, 8080);
  const d = berth.aws(['ecs', 'describe-task-definition', '--task-definition', 'cli:1']);
  assert.equal(d.json.taskDefinition.networkMode, 'host');
});
