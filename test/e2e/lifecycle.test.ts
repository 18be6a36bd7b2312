// Instance lifecycle end to end, on a manually advanced clock with the real aws ecs/ec2 CLIs:
// maintenance windows, the 14-day drain and the hard deadline, critical patches within the
// disruption budget, auto repair.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, CreateServiceCommand, DescribeContainerInstancesCommand,
  DescribeServicesCommand, DescribeTasksCommand, ListContainerInstancesCommand, ListTasksCommand, RegisterTaskDefinitionCommand,
  RunTaskCommand, UpdateTaskProtectionCommand, GetTaskProtectionCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { waitFor, waitForStatus } from '../helpers/ecs.js';
import { agentPids } from '../helpers/instances.js';

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;
const START = '2026-11-23T00:00:00Z'; // a Monday
const DAY = 86_400;

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  image = `${registry.address}/busybox:latest`;
  // A hung agent on a live host is replaced once it outlasts the repair grace (short here, but
  // longer than the 5 s a silent agent takes to be dropped, so that the wait is seen first).
  berth = await startTestBerth({ BERTH_CLOCK: `manual:${START}`, BERTH_HEARTBEAT_TIMEOUT: '2', BERTH_AGENT_REPAIR_GRACE: '10' });
  ecs = berth.ecs();
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

function advance(duration: string): void {
  const r = berth.cli(['clock', 'advance', duration]);
  assert.equal(r.status, 0, r.stderr);
}

function now(): number {
  const r = berth.cli(['clock']);
  assert.equal(r.status, 0, r.stderr);
  return Date.parse(r.stdout.split(' ')[0]!);
}

async function setup(cluster: string, tags: { key: string; value: string }[] = [], extra: Record<string, unknown> = {}): Promise<void> {
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await ecs.send(new CreateCapacityProviderCommand({
    name: `${cluster}-cp`, cluster, tags,
    managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-a'] } }, ...extra } as never,
  }));
}

async function family(name: string, command: string, extra: Record<string, unknown> = {}): Promise<string> {
  return (await ecs.send(new RegisterTaskDefinitionCommand({
    family: name, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{ name: 'app', image, memory: 16, stopTimeout: 2, command: ['sh', '-c', command], ...extra }],
  } as never))).taskDefinition!.taskDefinitionArn!;
}

const SERVE = "trap 'exit 0' TERM; while true; do sleep 0.2; done";

async function instances(cluster: string, status?: string) {
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster, ...(status ? { status: status as never } : {}) }))).containerInstanceArns!;
  if (!arns.length) return [];
  return (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }))).containerInstances!;
}

async function stableService(cluster: string, name: string) {
  return waitFor(`${name} stable`, async () => {
    const s = (await ecs.send(new DescribeServicesCommand({ cluster, services: [name] }))).services![0]!;
    return s.deployments!.length === 1 && s.runningCount === s.desiredCount && s.pendingCount === 0 ? s : undefined;
  }, 60_000, 200);
}

function lifecycleEvents(cluster: string): string[][] {
  const r = berth.cli(['events', '--cluster', cluster]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
}

test('event windows through the aws ec2 CLI: validation, association, DescribeInstances', async () => {
  const bad = berth.aws(['ec2', 'create-instance-event-window', '--time-range', 'StartWeekDay=saturday,StartHour=2,EndWeekDay=saturday,EndHour=3']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /InvalidParameterValue.*at least 2 hours/);
  const both = berth.aws(['ec2', 'create-instance-event-window', '--cron-expression', '* 1-4 * * 1', '--time-range', 'StartWeekDay=monday,StartHour=1,EndWeekDay=monday,EndHour=9']);
  assert.match(both.stderr, /InvalidParameterCombination/);
  const cron = berth.aws(['ec2', 'create-instance-event-window', '--cron-expression', '* 0-4,20-23 * * 1,5', '--name', 'weeknights']);
  assert.equal(cron.status, 0, cron.stderr);
  assert.match(cron.json.InstanceEventWindow.InstanceEventWindowId, /^iew-[0-9a-f]{17}$/);
  const list = berth.aws(['ec2', 'describe-instance-event-windows', '--filters', 'Name=event-window-name,Values=weeknights']);
  assert.equal(list.json.InstanceEventWindows.length, 1);
  const del = berth.aws(['ec2', 'delete-instance-event-window', '--instance-event-window-id', cron.json.InstanceEventWindow.InstanceEventWindowId]);
  assert.equal(del.json.InstanceEventWindowState.State, 'deleting');
  const missing = berth.aws(['ec2', 'describe-instance-event-windows', '--instance-event-window-ids', 'iew-00000000000000000']);
  assert.match(missing.stderr, /InvalidInstanceEventWindowId.NotFound/);
});

test('with a Saturday 02:00–06:00 window, the instance is replaced inside the last window before day 14, the service never below its minimum', async () => {
  await setup('win');
  const td = await family('win-web', SERVE);
  await ecs.send(new CreateServiceCommand({ cluster: 'win', serviceName: 'web', taskDefinition: td, desiredCount: 2, deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200 } }));
  await stableService('win', 'web');
  const [first] = await instances('win');
  const id = first!.ec2InstanceId!;
  const w = berth.aws(['ec2', 'create-instance-event-window', '--name', 'saturday', '--time-range', 'StartWeekDay=saturday,StartHour=2,EndWeekDay=saturday,EndHour=6']);
  assert.equal(w.status, 0, w.stderr);
  const windowId = w.json.InstanceEventWindow.InstanceEventWindowId;
  const a = berth.aws(['ec2', 'associate-instance-event-window', '--instance-event-window-id', windowId, '--association-target', `InstanceIds=${id}`]);
  assert.equal(a.status, 0, a.stderr);
  assert.deepEqual(a.json.InstanceEventWindow.AssociationTarget.InstanceIds, [id]);
  const d = berth.aws(['ec2', 'describe-instances', '--instance-ids', id]);
  const inst = d.json.Reservations[0].Instances[0];
  assert.equal(inst.State.Name, 'running');
  assert.ok(inst.Tags.some((t: { Key: string; Value: string }) => t.Key === 'aws:ec2:managed-launch' && t.Value === 'ecs-managed-instances'));

  // Saturday 2026-11-28 03:00 is a window, but not the last one before day 14 (2026-12-07).
  advance(`${5 * DAY + 3 * 3600}`);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await instances('win'))[0]!.status, 'ACTIVE');
  // Saturday 2026-12-05 01:59: not yet; 02:01: inside the last window → drain.
  advance(`${7 * DAY - 3600 - 60}`);
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok((await instances('win')).every((ci) => ci.status === 'ACTIVE'));
  const samples: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const arns = (await ecs.send(new ListTasksCommand({ cluster: 'win', serviceName: 'web' }))).taskArns!;
      const tasks = arns.length ? (await ecs.send(new DescribeTasksCommand({ cluster: 'win', tasks: arns }))).tasks! : [];
      samples.push(tasks.filter((t) => t.lastStatus === 'RUNNING' && t.desiredStatus === 'RUNNING').length);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  advance('120');
  const drainedAt = now();
  assert.equal(new Date(drainedAt).getUTCDay(), 6);
  await waitFor('the old instance to be replaced', async () => {
    const cis = await instances('win');
    return cis.every((ci) => ci.ec2InstanceId !== id) && cis.length >= 1 ? cis : undefined;
  }, 60_000, 250);
  await stableService('win', 'web');
  sampling = false;
  await sampler;
  assert.ok(Math.min(...samples) >= 2, `running service tasks dropped to ${Math.min(...samples)} (minimum 100% of 2)`);
  const events = lifecycleEvents('win');
  const drain = events.find((e) => e[2] === id && e[3] === 'drain');
  assert.ok(drain, JSON.stringify(events));
  assert.equal(drain![4], 'window');
  assert.match(drain![0]!, /^2026-12-05T02:0/);
  const s = (await ecs.send(new DescribeServicesCommand({ cluster: 'win', services: ['web'] }))).services![0]!;
  assert.ok(s.events!.some((e) => e.message!.includes(`container instance ${id} is draining (window)`)));
});

test('without a window: drain at day 14; a standalone task gets SIGTERM at the hard deadline and SIGKILL after its stopTimeout', async () => {
  await setup('old');
  const td = await family('old-job', "trap 'echo got TERM' TERM; while true; do sleep 0.2; done");
  const r = await ecs.send(new RunTaskCommand({ cluster: 'old', taskDefinition: td }));
  const arn = r.tasks![0]!.taskArn!;
  await waitForStatus(ecs, 'old', arn, 'RUNNING', 60_000);
  const [ci] = await instances('old');
  const launched = ci!.registeredAt!.getTime();
  // Protection is honoured until the hard deadline.
  await ecs.send(new UpdateTaskProtectionCommand({ cluster: 'old', tasks: [arn], protectionEnabled: true, expiresInMinutes: 2880 }));
  assert.equal((await ecs.send(new GetTaskProtectionCommand({ cluster: 'old', tasks: [arn] }))).protectedTasks![0]!.protectionEnabled, true);
  advance(`${Math.ceil((launched + 14 * DAY * 1000 - now()) / 1000) + 60}`);
  await waitFor('drain at day 14', async () => ((await instances('old', 'DRAINING'))[0]?.status === 'DRAINING' ? true : undefined), 10_000, 200);
  assert.equal((await ecs.send(new DescribeTasksCommand({ cluster: 'old', tasks: [arn] }))).tasks![0]!.lastStatus, 'RUNNING');
  advance(`${6 * DAY}`);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await ecs.send(new DescribeTasksCommand({ cluster: 'old', tasks: [arn] }))).tasks![0]!.lastStatus, 'RUNNING');
  // Timed from before the clock moves: the stop may begin while the CLI is still exiting.
  const stoppedAt = Date.now();
  advance(`${DAY}`);
  const t = await waitForStatus(ecs, 'old', arn, 'STOPPED', 30_000);
  const took = Date.now() - stoppedAt;
  assert.equal(t.containers![0]!.exitCode, 137);
  assert.equal(t.stopCode, 'TerminationNotice');
  assert.match(t.stoppedReason!, /hard deadline/);
  assert.ok(took >= 1_800, `killed ${took} ms after the deadline: stopTimeout is 2 s`);
  await waitFor('the instance terminated', async () => ((await instances('old')).length === 0 ? true : undefined), 20_000, 250);
  const events = lifecycleEvents('old').map((e) => `${e[3]}:${e[4]}`);
  assert.ok(events.includes('drain:expiry') && events.includes('stop-tasks:hard-deadline'), events.join(' '));
});

test('a critical platform version replaces the whole fleet within the disruption budget', async () => {
  await setup('fleet', [{ key: 'berth:disruption-budget', value: '1' }, { key: 'berth:single-task-mode', value: 'enabled' }]);
  const td = await family('fleet-web', SERVE);
  await ecs.send(new CreateServiceCommand({ cluster: 'fleet', serviceName: 'web', taskDefinition: td, desiredCount: 3 }));
  await stableService('fleet', 'web');
  const before = (await instances('fleet')).map((ci) => ci.ec2InstanceId!);
  assert.equal(before.length, 3);
  let maxDraining = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      maxDraining = Math.max(maxDraining, (await instances('fleet', 'DRAINING')).length);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const p = berth.cli(['platform', 'publish', '2026.12.1', '--security', 'critical', '--description', 'fixes CVE-0000-0000']);
  assert.equal(p.status, 0, p.stderr);
  const after = await waitFor('all instances replaced', async () => {
    const cis = await instances('fleet');
    return cis.length === 3 && cis.every((ci) => !before.includes(ci.ec2InstanceId!)) ? cis : undefined;
  }, 120_000, 500);
  watching = false;
  await watcher;
  assert.equal(maxDraining, 1, 'more instances drained at once than the budget allows');
  for (const ci of after) assert.equal(ci.attributes!.find((a) => a.name === 'berth.platform-version')!.value, '2026.12.1');
  await stableService('fleet', 'web');
  const reasons = lifecycleEvents('fleet').filter((e) => e[3] === 'drain').map((e) => e[4]);
  assert.deepEqual(reasons, ['critical-patch', 'critical-patch', 'critical-patch']);
});

test('a dead agent: repaired when auto repair is ENABLED, only reported when DISABLED', async () => {
  await setup('repair', [], { autoRepairConfiguration: { actionsStatus: 'ENABLED' } });
  await setup('report', [], { autoRepairConfiguration: { actionsStatus: 'DISABLED' } });
  const td = await family('hold', SERVE);
  for (const c of ['repair', 'report']) await waitForStatus(ecs, c, (await ecs.send(new RunTaskCommand({ cluster: c, taskDefinition: td }))).tasks![0]!.taskArn!, 'RUNNING', 60_000);
  const [fix] = await instances('repair');
  const [keep] = await instances('report');
  const stopped = [agentPids(fix!.ec2InstanceId!)[0], agentPids(keep!.ec2InstanceId!)[0]];
  assert.ok(stopped.every((p) => p !== undefined), 'agent processes not found');
  for (const pid of stopped) process.kill(pid!, 'SIGSTOP');
  try {
    await waitFor('repair', async () => ((await instances('repair')).every((ci) => ci.ec2InstanceId !== fix!.ec2InstanceId) ? true : undefined), 30_000, 250);
    const reported = await waitFor('IMPAIRED reported', async () => {
      const [ci] = await instances('report');
      return ci?.healthStatus?.overallStatus === 'IMPAIRED' ? ci : undefined;
    }, 30_000, 250);
    assert.equal(reported.ec2InstanceId, keep!.ec2InstanceId);
    assert.equal(reported.healthStatus!.details!.find((d) => (d.type as string) === 'AGENT_CONNECTIVITY')!.status, 'IMPAIRED');
    const events = lifecycleEvents('repair').map((e) => `${e[3]}:${e[4]}`);
    assert.ok(events.includes('replace:repair'), events.join(' '));
    // It waited first (the host still ran the instance, only its agent was silent); on this
    // manual clock both decisions carry the same time, so only their presence is checked.
    assert.ok(events.includes('wait:repair'), events.join(' '));
    assert.ok(lifecycleEvents('report').some((e) => e[3] === 'report' && e[4] === 'repair'));
  } finally {
    for (const pid of stopped) { try { process.kill(pid!, 'SIGCONT'); } catch { /* gone */ } }
  }
});
