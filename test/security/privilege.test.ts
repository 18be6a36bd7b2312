// Privilege is opt-in, and one tenant cannot get its neighbours repaired (issue 11, attacks
// 5b, 7b, 8 and the devices/systemControls part of 12). Every attack runs from inside a real
// busybox task on a real instance; the victims are a neighbour task and the instance itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import {
  CreateClusterCommand, CreateServiceCommand, DeleteServiceCommand, DescribeContainerInstancesCommand,
  ListTasksCommand, RunTaskCommand, StopTaskCommand, type ECSClient,
  type RunTaskCommandOutput,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, taskId, waitFor, waitForLogs, waitForStatus, createProvider, registerAppTask } from '../helpers/ecs.js';
import { instanceInit } from '../helpers/instances.js';

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;
const cluster = 'priv';
/** A default provider, and one that opted in to CAP_SYS_ADMIN and every kind of host access. */
const PLAIN = 'plain-cp';
const OPTED = 'opted-cp';
let optedError: string | undefined;
let neighbour: string;


before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  image = `${registry.address}/busybox:latest`;
  berth = await startTestBerth();
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await createProvider(ecs, cluster, PLAIN);
  try {
    await createProvider(ecs, cluster, OPTED, [{ key: 'berth:privileged-capabilities', value: 'CAP_SYS_ADMIN' }, { key: 'berth:host-access', value: 'ALL' }]);
  } catch (e) {
    optedError = (e as Error).message; // the tests that need it fail with this message
  }
  // The victim: a long-running task on the default provider's instance.
  neighbour = await run(await register('neighbour', { command: ['sh', '-c', 'while true; do sleep 1; done'], stopTimeout: 1 }));
  await waitForStatus(ecs, cluster, neighbour, 'RUNNING', 90_000);
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

function register(family: string, container: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  return registerAppTask(ecs, { family, image, memory: 64, group: '/priv' }, container, extra);
}

function runTask(taskDefinition: string, provider = PLAIN): Promise<RunTaskCommandOutput> {
  return ecs.send(new RunTaskCommand({ cluster, taskDefinition, capacityProviderStrategy: [{ capacityProvider: provider, weight: 1 }] }));
}

async function run(taskDefinition: string, provider = PLAIN): Promise<string> {
  const r = await runTask(taskDefinition, provider);
  assert.equal(r.failures?.length ?? 0, 0, JSON.stringify(r.failures));
  return r.tasks![0]!.taskArn!;
}

/** Runs a one-shot script in a task and returns its log lines once it printed `done`. */
async function script(family: string, sh: string, opts: { provider?: string; container?: Record<string, unknown>; extra?: Record<string, unknown> } = {}): Promise<string[]> {
  const td = await register(family, { command: ['sh', '-c', `${sh}; echo done`], ...opts.container }, opts.extra);
  const arn = await run(td, opts.provider);
  await waitForStatus(ecs, cluster, arn, 'STOPPED', 90_000);
  return waitForLogs(berth, '/priv', `${family}/app/${taskId(arn)}`, (m) => m.includes('done'));
}

/** The victim is unharmed: its task RUNNING, its instance ACTIVE and healthy. */
async function assertNeighbourUnharmed(): Promise<void> {
  const t = await describeTask(ecs, cluster, neighbour);
  assert.equal(t.lastStatus, 'RUNNING', `neighbour ${t.lastStatus}: ${t.stoppedReason}`);
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!;
  assert.equal(ci.status, 'ACTIVE');
  assert.equal(ci.healthStatus?.overallStatus, 'OK', JSON.stringify(ci.healthStatus));
}

/** CloudTrail records of `eventName` (the audit trail), parsed. */
function trail(eventName: string): any[] {
  const r = berth.aws(['cloudtrail', 'lookup-events', '--max-results', '50', '--lookup-attributes', `AttributeKey=EventName,AttributeValue=${eventName}`]);
  assert.equal(r.status, 0, r.stderr);
  return r.json.Events.map((e: { CloudTrailEvent: string }) => JSON.parse(e.CloudTrailEvent));
}

const outcome = (lines: string[], key: string) => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);

test('a default task cannot create namespaces, mount, or write /proc/sysrq-trigger, /sys or cgroup release files', async () => {
  const lines = await script('escape', [
    'unshare -U true 2>/dev/null; echo userns=$?',
    'unshare -r true 2>/dev/null; echo maproot=$?',
    'unshare -m true 2>/dev/null; echo mountns=$?',
    'unshare -rm sh -c "mount -t tmpfs none /tmp" 2>/dev/null; echo userns_mount=$?',
    'unshare -n true 2>/dev/null; echo netns=$?',
    'unshare -p -f true 2>/dev/null; echo pidns=$?',
    'mkdir -p /tmp/cg; mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null; echo cgroup_mount=$?',
    'mount -t tmpfs none /tmp/cg 2>/dev/null; echo tmpfs_mount=$?',
    '(echo 1 > /sys/fs/cgroup/memory/notify_on_release) 2>/dev/null; echo notify_on_release=$?',
    '(echo /x > /sys/fs/cgroup/memory/release_agent) 2>/dev/null; echo release_agent=$?',
    '(echo h > /proc/sysrq-trigger) 2>/dev/null; echo sysrq=$?',
    '(echo 1 > /sys/kernel/profiling) 2>/dev/null; echo sys=$?',
    'touch /sys/berth 2>/dev/null; echo sys_create=$?',
    'mknod /tmp/sda b 8 0 2>/dev/null; (head -c1 /tmp/sda >/dev/null) 2>/dev/null; echo rawdisk=$?',
  ].join('; '));
  for (const key of ['userns', 'maproot', 'mountns', 'userns_mount', 'netns', 'pidns', 'cgroup_mount', 'tmpfs_mount', 'notify_on_release', 'release_agent', 'sysrq', 'sys', 'sys_create', 'rawdisk']) {
    const rc = outcome(lines, key);
    assert.ok(rc !== undefined, `${key} not reported: ${lines.join(' | ')}`);
    assert.notEqual(rc, '0', `${key} succeeded from a default task: ${lines.join(' | ')}`);
  }
  await assertNeighbourUnharmed();
});

test('with the CAP_SYS_ADMIN opt-in, namespaces can be created', async () => {
  assert.equal(optedError, undefined, optedError);
  const lines = await script('admin', 'unshare -U true; echo userns=$?; unshare -m true; echo mountns=$?', {
    provider: OPTED, container: { linuxParameters: { capabilities: { add: ['SYS_ADMIN'] } } },
  });
  assert.equal(outcome(lines, 'userns'), '0', lines.join(' | '));
  assert.equal(outcome(lines, 'mountns'), '0', lines.join(' | '));
});

test('pidMode host is refused without the provider opt-in, naming the tag', async () => {
  // The attack this closes: from pidMode host, `kill -9` of another task's process and of the agent.
  const td = await register('pidhost', { command: ['sh', '-c', 'for p in $(pidof node conmon sleep); do kill -9 $p; done; echo done'] }, { pidMode: 'host' });
  const r = await runTask(td);
  assert.equal(r.tasks?.length ?? 0, 0, 'a pidMode host task was started on a provider that did not opt in');
  assert.match(r.failures![0]!.reason!, /HOST_ACCESS/);
  assert.match(r.failures![0]!.detail!, /berth:host-access/);
  assert.match(r.failures![0]!.detail!, /pidMode:host/);
  // The refused attempt is in the audit trail, with the failure the caller got.
  assert.ok(trail('RunTask').some((e) => e.requestParameters?.taskDefinition === td && JSON.stringify(e.responseElements ?? {}).includes('HOST_ACCESS')),
    'the refused RunTask is not in the audit trail with its HOST_ACCESS failure');
  await new Promise((ok) => setTimeout(ok, 2000));
  await assertNeighbourUnharmed();
});

test('a service with pidMode host on a provider without the opt-in starts nothing, saying which tag to set', async () => {
  const td = await register('pidhost-svc', { command: ['sh', '-c', 'sleep 600'] }, { pidMode: 'host' });
  await ecs.send(new CreateServiceCommand({ cluster, serviceName: 'pidhost', taskDefinition: td, desiredCount: 1, capacityProviderStrategy: [{ capacityProvider: PLAIN, weight: 1 }] }));
  try {
    const stopped = await waitFor('a refused service task', async () => {
      const arns = (await ecs.send(new ListTasksCommand({ cluster, serviceName: 'pidhost', desiredStatus: 'STOPPED' }))).taskArns ?? [];
      return arns.length ? describeTask(ecs, cluster, arns[0]!) : undefined;
    }, 30_000, 300);
    assert.match(stopped.stoppedReason ?? '', /HOST_ACCESS.*berth:host-access/);
    assert.equal(stopped.startedAt, undefined, 'the refused task was started');
    const running = (await ecs.send(new ListTasksCommand({ cluster, serviceName: 'pidhost', desiredStatus: 'RUNNING' }))).taskArns ?? [];
    for (const arn of running) assert.notEqual((await describeTask(ecs, cluster, arn)).lastStatus, 'RUNNING');
  } finally {
    await ecs.send(new DeleteServiceCommand({ cluster, service: 'pidhost', force: true }));
  }
  await assertNeighbourUnharmed();
});

test('pidMode host works with the opt-in: the task sees the instance\'s processes', async () => {
  assert.equal(optedError, undefined, optedError);
  const td = await register('pidhost-ok', { command: ['sh', '-c', 'echo procs=$(ls /proc | grep -c "^[0-9]"); echo agent=$(pidof node | wc -w); echo done'] }, { pidMode: 'host' });
  const arn = await run(td, OPTED);
  await waitForStatus(ecs, cluster, arn, 'STOPPED', 90_000);
  const lines = await waitForLogs(berth, '/priv', `pidhost-ok/app/${taskId(arn)}`, (m) => m.includes('done'));
  assert.ok(Number(outcome(lines, 'agent')) >= 1, lines.join(' | '));
  const t = await describeTask(ecs, cluster, arn);
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!;
  assert.equal(ci.attributes!.find((x) => x.name === 'berth.host-access')?.value, 'pidMode:host+ipcMode:host+devices');
});

test('ipcMode host needs the opt-in; ipcMode task and none are refused with a message', async () => {
  const td = await register('ipchost', { command: ['true'] }, { ipcMode: 'host' });
  const r = await runTask(td);
  assert.equal(r.tasks?.length ?? 0, 0);
  assert.match(r.failures![0]!.detail!, /berth:host-access/);
  assert.match(r.failures![0]!.detail!, /ipcMode:host/);
  for (const mode of ['task', 'none']) {
    await assert.rejects(register(`ipc${mode}`, { command: ['true'] }, { ipcMode: mode }), (e: Error) => /ipcMode/.test(e.message));
  }
  // With the opt-in the task shares the instance's IPC namespace; a default task has its own.
  assert.equal(optedError, undefined, optedError);
  const shared = await script('ipchost-ok', 'echo ipc=$(readlink /proc/self/ns/ipc)', { provider: OPTED, extra: { ipcMode: 'host' } });
  const own = await script('ipc-default', 'echo ipc=$(readlink /proc/self/ns/ipc)', { provider: OPTED });
  const ci = async (family: string) => {
    const arns = (await ecs.send(new ListTasksCommand({ cluster, family, desiredStatus: 'STOPPED' }))).taskArns!;
    const t = await describeTask(ecs, cluster, arns[0]!);
    return (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!.ec2InstanceId!;
  };
  const init = instanceInit(await ci('ipchost-ok'));
  assert.ok(init, 'instance init not found');
  assert.equal(outcome(shared, 'ipc'), readlinkSync(`/proc/${init}/ns/ipc`));
  assert.notEqual(outcome(own, 'ipc'), readlinkSync(`/proc/${init}/ns/ipc`));
});

test('linuxParameters.devices: refused without the opt-in, honoured with it', async () => {
  assert.ok(existsSync('/dev/fuse'), 'this test maps /dev/fuse');
  const devices = [{ hostPath: '/dev/fuse', containerPath: '/dev/berth-fuse', permissions: ['read'] }];
  const td = await register('dev', {
    linuxParameters: { devices },
    command: ['sh', '-c', 'ls -l /dev/berth-fuse; echo exists=$?; (exec 3</dev/berth-fuse) 2>/dev/null; echo read=$?; (exec 3>/dev/berth-fuse) 2>/dev/null; echo write=$?; mknod /tmp/sda b 8 0 && (head -c1 /tmp/sda >/dev/null) 2>/dev/null; echo rawdisk=$?; echo done'],
  });
  const refused = await runTask(td);
  assert.equal(refused.tasks?.length ?? 0, 0, 'a task with devices was started on a provider that did not opt in');
  assert.match(refused.failures![0]!.detail!, /berth:host-access/);
  assert.match(refused.failures![0]!.detail!, /devices/);

  assert.equal(optedError, undefined, optedError);
  const arn = await run(td, OPTED);
  await waitForStatus(ecs, cluster, arn, 'STOPPED', 90_000);
  const lines = await waitForLogs(berth, '/priv', `dev/app/${taskId(arn)}`, (m) => m.includes('done'));
  assert.equal(outcome(lines, 'exists'), '0', lines.join(' | '));
  assert.ok(lines.some((l) => /^c.* 10,\s+229 .*\/dev\/berth-fuse/.test(l)), lines.join(' | '));
  assert.equal(outcome(lines, 'read'), '0', lines.join(' | '));
  assert.notEqual(outcome(lines, 'write'), '0', `write allowed though only read was granted: ${lines.join(' | ')}`);
  assert.notEqual(outcome(lines, 'rawdisk'), '0', lines.join(' | '));
});

test('systemControls: a namespaced sysctl is applied in an awsvpc task; others are refused naming them', async () => {
  const lines = await script('sysctl', 'echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); echo shm=$(cat /proc/sys/kernel/shmmni)', {
    extra: { networkMode: 'awsvpc' },
    container: { systemControls: [{ namespace: 'net.ipv4.ip_forward', value: '1' }, { namespace: 'kernel.shmmni', value: '1234' }] },
  });
  assert.equal(outcome(lines, 'fwd'), '1', lines.join(' | '));
  assert.equal(outcome(lines, 'shm'), '1234', lines.join(' | '));
  await assert.rejects(register('sysctl-bad', { command: ['true'], systemControls: [{ namespace: 'kernel.panic', value: '1' }] }),
    (e: Error & { name: string }) => e.name === 'InvalidParameterException' && /kernel\.panic/.test(e.message));
  await assert.rejects(register('sysctl-hostnet', { command: ['true'], systemControls: [{ namespace: 'net.ipv4.ip_forward', value: '1' }] }),
    (e: Error & { name: string }) => e.name === 'InvalidParameterException' && /net\.ipv4\.ip_forward/.test(e.message) && /host/.test(e.message));
  assert.ok(trail('RegisterTaskDefinition').some((e) => e.requestParameters?.family === 'sysctl-bad' && e.errorCode === 'InvalidParameterException'),
    'the refused registration is not in the audit trail');
});

test('a fork bomb fails alone: its task is bounded, the neighbour runs on, the instance stays healthy and starts tasks', async () => {
  const bomb = await run(await register('bomb', {
    memory: 2048, stopTimeout: 1,
    command: ['sh', '-c', 'while true; do sh -c "while true; do sleep 600 & done" 2>/dev/null; done'],
  }));
  const t = await waitForStatus(ecs, cluster, bomb, 'RUNNING', 90_000);
  const n = await describeTask(ecs, cluster, neighbour);
  assert.equal(t.containerInstanceArn, n.containerInstanceArn, 'the bomb must share the neighbour\'s instance');
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!;
  const instancePids = `/sys/fs/cgroup/pids/berth/${ci.ec2InstanceId}`;
  const instanceMax = Number(readFileSync(`${instancePids}/pids.max`, 'utf8'));
  // Memory, too: all tasks together get less than the instance, the rest is the runtime's.
  const memLimit = (dir: string) => Number(readFileSync(`/sys/fs/cgroup/memory/berth/${ci.ec2InstanceId}/${dir}memory.limit_in_bytes`, 'utf8'));
  assert.ok(memLimit('workloads/') <= memLimit('') - 256 * 1024 * 1024, 'no memory reserve for the agent and runtime');
  // The bomb fills what it may take.
  const taskDir = `${instancePids}/workloads/${taskId(bomb)}`;
  const full = await waitFor('the bomb to reach its limit', async () => {
    const cur = Number(readFileSync(`${instancePids}/pids.current`, 'utf8'));
    const own = existsSync(`${taskDir}/pids.current`) ? Number(readFileSync(`${taskDir}/pids.current`, 'utf8')) : 0;
    const max = existsSync(`${taskDir}/pids.max`) ? readFileSync(`${taskDir}/pids.max`, 'utf8').trim() : 'max';
    // Full: at its own limit, or (without one) when the instance has no pids left.
    return (max !== 'max' && own >= Number(max) - 5) || cur >= instanceMax - 20 ? { own, cur, max } : undefined;
  }, 60_000, 250);
  // While the bomb holds its pids: a new task still starts on that instance, the neighbour
  // runs on and the instance stays healthy.
  const probe = await run(await register('probe', { command: ['sh', '-c', 'echo alive; echo done'] }));
  const p = await waitForStatus(ecs, cluster, probe, 'STOPPED', 60_000);
  assert.equal(p.containers![0]!.exitCode, 0, `${p.stoppedReason} ${p.containers![0]!.reason}`);
  assert.equal(p.containerInstanceArn, t.containerInstanceArn);
  await new Promise((ok) => setTimeout(ok, 3000));
  await assertNeighbourUnharmed();
  // The bomb's own task is what is bounded, with a reserve left below the instance's limit.
  assert.notEqual(full.max, 'max', `the task cgroup has no pids.max (the bomb took ${full.own} of the instance's ${instanceMax})`);
  assert.ok(Number(full.max) < instanceMax - 256, `task pids.max ${full.max} leaves no reserve below the instance's ${instanceMax}`);
  await ecs.send(new StopTaskCommand({ cluster, task: bomb }));
  await waitForStatus(ecs, cluster, bomb, 'STOPPED', 60_000);
  await assertNeighbourUnharmed();
});
