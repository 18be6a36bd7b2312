// One tenant cannot get its neighbours repaired: an instance whose agent is cut off by the
// network (what ARP poisoning from a task did) keeps its instance and its tasks until repairs
// are sure the instance is gone; the decision to wait is in `berth events` with its reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  CreateClusterCommand, DescribeContainerInstancesCommand, ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, type ContainerInstance, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, waitFor, waitForStatus, createProvider } from '../helpers/ecs.js';

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
const cluster = 'repair-sec';

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  // Auto repair ENABLED (the default) with the default repair grace: only a short heartbeat timeout.
  berth = await startTestBerth({ BERTH_HEARTBEAT_TIMEOUT: '2' });
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await createProvider(ecs, cluster, `${cluster}-cp`);
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

async function instance(): Promise<ContainerInstance | undefined> {
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  if (!arns.length) return undefined;
  return (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }))).containerInstances![0];
}

function events(): string[][] {
  const r = berth.cli(['events', '--cluster', cluster]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
}

test('a network disconnect of an instance does not get it or its tasks terminated', async () => {
  const td = (await ecs.send(new RegisterTaskDefinitionCommand({
    family: 'victim', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{ name: 'app', image: `${registry.address}/busybox:latest`, memory: 16, command: ['sh', '-c', 'while true; do sleep 0.2; done'] }],
  } as never))).taskDefinition!.taskDefinitionArn!;
  const arn = (await ecs.send(new RunTaskCommand({ cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
  const running = await waitForStatus(ecs, cluster, arn, 'RUNNING', 60_000);
  const ci = (await instance())!;
  const netns = `berth-${ci.ec2InstanceId}`;

  // The partition: the instance's link to the bridge goes down (ARP poisoning had the same effect).
  execFileSync('ip', ['-n', netns, 'link', 'set', 'eth0', 'down']);
  try {
    const impaired = await waitFor('IMPAIRED', async () => {
      const c = await instance();
      return c?.healthStatus?.overallStatus === 'IMPAIRED' ? c : undefined;
    }, 30_000, 250);
    assert.equal(impaired.healthStatus!.details!.find((d) => (d.type as string) === 'AGENT_CONNECTIVITY')!.status, 'IMPAIRED');
    // Well past the heartbeat timeout, the instance is still there and ACTIVE, its task too.
    await new Promise((r) => setTimeout(r, 6_000));
    const still = (await instance())!;
    assert.equal(still.ec2InstanceId, ci.ec2InstanceId, 'the instance was replaced');
    assert.equal(still.status, 'ACTIVE');
    assert.equal((await describeTask(ecs, cluster, arn)).lastStatus, 'RUNNING');
    const waited = events().find((e) => e[3] === 'wait' && e[4] === 'repair');
    assert.ok(waited, `a 'wait' repair decision is recorded: ${JSON.stringify(events())}`);
    assert.match(waited.slice(5).join(' '), /still runs/);
    assert.ok(!events().some((e) => e[3] === 'replace'), 'no repair replaced the instance');
  } finally {
    // Not execFileSync: when the instance was (wrongly) terminated its netns is gone.
    spawnSync('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  }

  // The network comes back: the agent reconnects, the instance is healthy, the task never restarted.
  await waitFor('healthy again', async () => ((await instance())?.healthStatus?.overallStatus === 'OK' ? true : undefined), 60_000, 250);
  const after = await describeTask(ecs, cluster, arn);
  assert.equal(after.lastStatus, 'RUNNING');
  assert.equal(after.startedAt?.getTime(), running.startedAt?.getTime(), 'the task kept running through the disconnect');
});
