// Placement and managed capacity end to end: bin-packing across zones, single-task mode,
// the privileged-capability opt-in, and scale-in of idle instances.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, DescribeContainerInstancesCommand, ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, DescribeTasksCommand, ListTasksCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { taskId, waitFor, waitForLogs, waitForStatus } from '../helpers/ecs.js';

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  image = `${registry.address}/busybox:latest`;
  berth = await startTestBerth();
  ecs = berth.ecs();
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

async function cluster(name: string, subnets: string[], tags: { key: string; value: string }[] = [], extra: Record<string, unknown> = {}): Promise<void> {
  await ecs.send(new CreateClusterCommand({ clusterName: name }));
  await ecs.send(new CreateCapacityProviderCommand({
    name: `${name}-cp`, cluster: name, tags,
    managedInstancesProvider: {
      infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets } }, ...extra,
    } as never,
  }));
}

async function family(name: string, container: Record<string, unknown> = {}): Promise<string> {
  const r = await ecs.send(new RegisterTaskDefinitionCommand({
    family: name, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{ name: 'app', image, cpu: 64, memory: 16, stopTimeout: 1, command: ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"], ...container }],
  } as never));
  return r.taskDefinition!.taskDefinitionArn!;
}

async function instances(clusterName: string) {
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster: clusterName }))).containerInstanceArns!;
  if (!arns.length) return [];
  return (await ecs.send(new DescribeContainerInstancesCommand({ cluster: clusterName, containerInstances: arns }))).containerInstances!;
}

test('a burst of 30 small tasks packs onto few instances spread over 3 availability zones', async () => {
  await cluster('burst', ['subnet-a', 'subnet-b', 'subnet-c']);
  const td = await family('small');
  const arns: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await ecs.send(new RunTaskCommand({ cluster: 'burst', taskDefinition: td, count: 10 }));
    assert.deepEqual(r.failures, []);
    arns.push(...r.tasks!.map((t) => t.taskArn!));
  }
  const tasks = await waitFor('30 running tasks', async () => {
    const all = [];
    for (let i = 0; i < arns.length; i += 100) all.push(...(await ecs.send(new DescribeTasksCommand({ cluster: 'burst', tasks: arns.slice(i, i + 100) }))).tasks!);
    if (all.some((t) => t.lastStatus === 'STOPPED')) throw new Error('a task stopped');
    return all.every((t) => t.lastStatus === 'RUNNING') ? all : undefined;
  }, 90_000, 250);
  const cis = await instances('burst');
  const zones = new Set(tasks.map((t) => t.availabilityZone));
  assert.equal(zones.size, 3, `zones used: ${[...zones].join(', ')}`);
  assert.ok(cis.length <= 4, `${cis.length} instances for 30 small tasks`);
  assert.deepEqual(new Set(cis.map((c) => c.attributes!.find((a) => a.name === 'ecs.availability-zone')!.value)), zones);
  for (const arn of arns) await ecs.send(new StopTaskCommand({ cluster: 'burst', task: arn }));
});

test('single-task mode gives one instance per task, sized to the task', async () => {
  await cluster('single', ['subnet-a'], [{ key: 'berth:single-task-mode', value: 'enabled' }]);
  const td = await family('solo');
  const r = await ecs.send(new RunTaskCommand({ cluster: 'single', taskDefinition: td, count: 3 }));
  const arns = r.tasks!.map((t) => t.taskArn!);
  for (const arn of arns) await waitForStatus(ecs, 'single', arn, 'RUNNING', 60_000);
  const tasks = (await ecs.send(new DescribeTasksCommand({ cluster: 'single', tasks: arns }))).tasks!;
  assert.equal(new Set(tasks.map((t) => t.containerInstanceArn)).size, 3);
  const cis = await instances('single');
  assert.equal(cis.length, 3);
  for (const ci of cis) {
    assert.equal(ci.runningTasksCount, 1);
    assert.equal(ci.attributes!.find((a) => a.name === 'ecs.instance-type')!.value, 'm5a.large');
  }
  for (const arn of arns) await ecs.send(new StopTaskCommand({ cluster: 'single', task: arn }));
});

test('CAP_SYS_ADMIN: refused on a default provider, granted where the provider opted in', async () => {
  const td = await family('admin', {
    linuxParameters: { capabilities: { add: ['SYS_ADMIN'] } },
    command: ['sh', '-c', 'grep CapEff /proc/self/status; mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted; echo end'],
    logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/placement', 'awslogs-stream-prefix': 'admin' } },
  });
  await cluster('plain', ['subnet-a']);
  const refused = await ecs.send(new RunTaskCommand({ cluster: 'plain', taskDefinition: td }));
  assert.equal(refused.failures![0]!.reason, 'PRIVILEGED_CAPABILITY');
  assert.match(refused.failures![0]!.detail!, /CAP_SYS_ADMIN/);

  await cluster('privileged', ['subnet-a'], [{ key: 'berth:privileged-capabilities', value: 'CAP_SYS_ADMIN' }]);
  const r = await ecs.send(new RunTaskCommand({ cluster: 'privileged', taskDefinition: td }));
  assert.deepEqual(r.failures, []);
  const arn = r.tasks![0]!.taskArn!;
  const t = await waitForStatus(ecs, 'privileged', arn, 'STOPPED', 60_000);
  assert.equal(t.containers![0]!.exitCode, 0);
  const logs = await waitForLogs(berth, '/placement', `admin/app/${taskId(arn)}`, (m) => m.includes('end'));
  assert.ok(logs.includes('CapEff:\t00000000a82425fb'), logs.join('\n'));
  assert.ok(logs.includes('mounted'), logs.join('\n'));
  const [ci] = await instances('privileged');
  assert.equal(ci!.attributes!.find((a) => a.name === 'berth.privileged-capabilities')!.value, 'CAP_SYS_ADMIN');
});

test('idle instances go away after scaleInAfter', async () => {
  await cluster('idle', ['subnet-a'], [], { infrastructureOptimization: { scaleInAfter: 2 } });
  const td = await family('brief', { command: ['sh', '-c', 'echo done'] });
  const r = await ecs.send(new RunTaskCommand({ cluster: 'idle', taskDefinition: td }));
  await waitForStatus(ecs, 'idle', r.tasks![0]!.taskArn!, 'STOPPED', 60_000);
  assert.equal((await instances('idle')).length, 1);
  const stoppedAt = Date.now();
  await waitFor('the idle instance to be scaled in', async () => (await instances('idle')).length === 0, 30_000, 250);
  const waited = Date.now() - stoppedAt;
  assert.ok(waited >= 1_000, `scaled in after ${waited} ms, before scaleInAfter`);
});

test('RunTask --count 10 and a service of 10 split over a strategy as ECS does: base first, then by weight', async () => {
  await cluster('split', ['subnet-a']);
  await ecs.send(new CreateCapacityProviderCommand({
    name: 'split-b', cluster: 'split',
    managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-b'] } } },
  }));
  const td = await family('spread');
  const strategy = 'capacityProvider=split-cp,base=1,weight=1 capacityProvider=split-b,weight=4';
  const run = berth.aws(['ecs', 'run-task', '--cluster', 'split', '--task-definition', td, '--count', '10', '--capacity-provider-strategy', ...strategy.split(' ')]);
  assert.equal(run.status, 0, run.stderr);
  const count = (providers: string[]) => providers.reduce<Record<string, number>>((n, p) => ({ ...n, [p]: (n[p] ?? 0) + 1 }), {});
  const ran = count(run.json.tasks.map((t: { capacityProviderName: string }) => t.capacityProviderName));
  assert.ok(ran['split-cp'] >= 2 && ran['split-cp'] <= 3 && ran['split-b'] >= 7 && ran['split-b'] <= 8, `RunTask split: ${JSON.stringify(ran)}`);

  const svc = berth.aws(['ecs', 'create-service', '--cluster', 'split', '--service-name', 'spread', '--task-definition', td, '--desired-count', '10',
    '--capacity-provider-strategy', ...strategy.split(' ')]);
  assert.equal(svc.status, 0, svc.stderr);
  const serviceTasks = await waitFor('the service\'s 10 tasks', async () => {
    const arns = (await ecs.send(new ListTasksCommand({ cluster: 'split', serviceName: 'spread' }))).taskArns!;
    return arns.length >= 10 ? (await ecs.send(new DescribeTasksCommand({ cluster: 'split', tasks: arns }))).tasks! : undefined;
  }, 60_000, 250);
  const served = count(serviceTasks.map((t) => t.capacityProviderName!));
  assert.deepEqual(served, ran, 'a service splits like RunTask');
  assert.equal(berth.aws(['ecs', 'delete-service', '--cluster', 'split', '--service', 'spread', '--force']).status, 0);
  for (const t of run.json.tasks as { taskArn: string }[]) await ecs.send(new StopTaskCommand({ cluster: 'split', task: t.taskArn }));
});
