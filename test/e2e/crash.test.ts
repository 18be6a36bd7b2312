// Crash safety with real tasks: kill -9 an instance agent, kill -9 the control plane.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, DescribeContainerInstancesCommand, ListContainerInstancesCommand,
  ListTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, taskId, waitFor, waitForLogs, waitForStatus } from '../helpers/ecs.js';
import { agentPids } from '../helpers/instances.js';

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;
const cluster = 'crash';

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  image = `${registry.address}/busybox:latest`;
  berth = await startTestBerth();
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await ecs.send(new CreateCapacityProviderCommand({
    name: 'crash-cp', cluster,
    managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-1'] } } },
  }));
  for (const [family, command] of [
    ['ticker', "trap 'echo got TERM; exit 42' TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"],
    ['short', 'echo short-start; sleep 3; echo short-end; exit 5'],
  ] as const) {
    await ecs.send(new RegisterTaskDefinitionCommand({
      family, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
      containerDefinitions: [{ name: 'app', image, memory: 32, command: ['sh', '-c', command], stopTimeout: 5,
        logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/crash', 'awslogs-stream-prefix': family } } }],
    }));
  }
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

async function run(family: string): Promise<string> {
  const r = await ecs.send(new RunTaskCommand({ cluster, taskDefinition: family }));
  return r.tasks![0]!.taskArn!;
}

async function instances(): Promise<{ id: string; connected: boolean }[]> {
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  if (!arns.length) return [];
  const d = await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }));
  return d.containerInstances!.map((ci) => ({ id: ci.ec2InstanceId!, connected: ci.agentConnected! }));
}

const ticks = (m: string[]) => m.filter((l) => l.startsWith('tick ')).length;

test('kill -9 of an agent: its container keeps running, the new agent re-adopts it and reports the truth', async (t) => {
  const arn = await run('ticker');
  // Stopped whatever happens: a task left running would fail the next test too.
  t.after(() => ecs.send(new StopTaskCommand({ cluster, task: arn })).then(() => {}, () => {}));
  await waitForStatus(ecs, cluster, arn, 'RUNNING');
  const stream = `ticker/app/${taskId(arn)}`;
  await waitForLogs(berth, '/crash', stream, (m) => ticks(m) >= 3);
  const [inst] = await instances();
  const [pid] = agentPids(inst!.id);
  assert.ok(pid, 'agent not found');
  process.kill(pid!, 'SIGKILL');
  // The supervisor restarts the agent; it reconnects and re-adopts the container.
  await waitFor('a new agent', async () => { const p = agentPids(inst!.id); return p.length && !p.includes(pid!) ? p : undefined; }, 10_000);
  const before = ticks(await waitForLogs(berth, '/crash', stream, () => true));
  await waitForLogs(berth, '/crash', stream, (m) => ticks(m) >= before + 10, 20_000);
  assert.equal((await describeTask(ecs, cluster, arn)).lastStatus, 'RUNNING');
  assert.equal((await instances())[0]!.connected, true);
  // No tick was lost or logged twice across the restart.
  const m = await waitForLogs(berth, '/crash', stream, () => true);
  const numbers = m.filter((l) => l.startsWith('tick ')).map((l) => Number(l.slice(5)));
  assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => i + 1));
  await ecs.send(new StopTaskCommand({ cluster, task: arn }));
  const s = await waitForStatus(ecs, cluster, arn, 'STOPPED');
  assert.equal(s.containers![0]!.exitCode, 42);
});

test('kill -9 of the control plane: containers keep running, nothing is lost or duplicated, changes meanwhile are reconciled', async () => {
  const longArn = await run('ticker');
  const shortArn = await run('short');
  await waitForStatus(ecs, cluster, longArn, 'RUNNING');
  await waitForStatus(ecs, cluster, shortArn, 'RUNNING');
  const instancesBefore = await instances();
  // A task accepted just before the crash, perhaps not placed yet.
  const lateArn = await run('ticker');
  await berth.kill('SIGKILL');
  // While the control plane is down the short task exits (exit 5) and the others keep running.
  await new Promise((r) => setTimeout(r, 4_000));
  for (const i of instancesBefore) assert.ok(agentPids(i.id).length > 0, `agent of ${i.id} died with the control plane`);

  await berth.start();
  ecs = berth.ecs();
  const s = await waitForStatus(ecs, cluster, shortArn, 'STOPPED', 20_000);
  assert.equal(s.containers![0]!.exitCode, 5);
  assert.equal(s.stoppedReason, 'Essential container in task exited');
  const l = await describeTask(ecs, cluster, longArn);
  assert.equal(l.lastStatus, 'RUNNING');
  await waitForStatus(ecs, cluster, lateArn, 'RUNNING', 20_000);
  await waitForLogs(berth, '/crash', `short/app/${taskId(shortArn)}`, (m) => m.includes('short-end'));

  // No instance was launched twice and no task exists twice.
  const after = await instances();
  assert.deepEqual(after.map((i) => i.id).sort(), instancesBefore.map((i) => i.id).sort());
  const running = (await ecs.send(new ListTasksCommand({ cluster }))).taskArns!;
  assert.deepEqual(running.sort(), [longArn, lateArn].sort());

  // The restarted control plane still drives its agents.
  const fresh = await run('ticker');
  await waitForStatus(ecs, cluster, fresh, 'RUNNING');
  for (const arn of [longArn, lateArn, fresh]) await ecs.send(new StopTaskCommand({ cluster, task: arn }));
  for (const arn of [longArn, lateArn, fresh]) assert.equal((await waitForStatus(ecs, cluster, arn, 'STOPPED')).containers![0]!.exitCode, 42);
});
