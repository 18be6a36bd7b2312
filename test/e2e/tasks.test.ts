// End to end: real tasks in real containers on instances Berth launches by itself,
// driven through the aws CLI and the SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, DescribeContainerInstancesCommand, ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, taskId, waitFor, waitForLogs, waitForStatus } from '../helpers/ecs.js';
import { agentPids } from '../helpers/instances.js';

/** /metrics answers the administrator only; the test scrapes with a configured bearer token. */
const SCRAPE = 'tasks-test-scrape-token';
let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;
const cluster = 'e2e';

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  image = `${registry.address}/busybox:latest`;
  berth = await startTestBerth({ BERTH_METRICS_TOKEN: SCRAPE });
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await ecs.send(new CreateCapacityProviderCommand({
    name: 'e2e-cp', cluster,
    managedInstancesProvider: {
      infrastructureRoleArn: 'arn:aws:iam::123456789012:role/infra',
      instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-1'] } },
    },
  }));
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

const log = (name: string) => ({ logDriver: 'awslogs' as const, options: { 'awslogs-group': '/e2e', 'awslogs-stream-prefix': name } });

async function register(family: string, container: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await ecs.send(new RegisterTaskDefinitionCommand({
    family, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{ name: 'app', image, memory: 64, logConfiguration: log(family), ...container }],
    ...extra,
  } as never));
  return r.taskDefinition!.taskDefinitionArn!;
}

async function run(taskDefinition: string): Promise<string> {
  const r = await ecs.send(new RunTaskCommand({ cluster, taskDefinition }));
  assert.equal(r.failures?.length ?? 0, 0, JSON.stringify(r.failures));
  return r.tasks![0]!.taskArn!;
}

test('run-task with the aws CLI: running, logs, stop-task with the real exit code', async () => {
  await register('hello', { command: ['sh', '-c', "trap 'echo got TERM; exit 42' TERM; echo started; while true; do sleep 0.1; done"] });
  const r = berth.aws(['ecs', 'run-task', '--cluster', cluster, '--task-definition', 'hello', '--count', '1', '--started-by', 'e2e-test']);
  assert.equal(r.status, 0, r.stderr);
  const arn: string = r.json.tasks[0].taskArn;
  assert.equal(r.json.tasks[0].lastStatus, 'PROVISIONING');
  assert.equal(r.json.tasks[0].desiredStatus, 'RUNNING');
  const wait = berth.aws(['ecs', 'wait', 'tasks-running', '--cluster', cluster, '--tasks', arn]);
  assert.equal(wait.status, 0, wait.stderr);
  const d = berth.aws(['ecs', 'describe-tasks', '--cluster', cluster, '--tasks', arn]).json.tasks[0];
  assert.equal(d.lastStatus, 'RUNNING');
  assert.equal(d.launchType, 'MANAGED_INSTANCES');
  assert.equal(d.capacityProviderName, 'e2e-cp');
  assert.match(d.containers[0].runtimeId, /^[0-9a-f]{12}/);
  assert.match(d.containers[0].imageDigest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(d.startedAt >= d.createdAt);
  assert.equal(d.startedBy, 'e2e-test');

  await waitForLogs(berth, '/e2e', `hello/app/${taskId(arn)}`, (m) => m.includes('started'));
  const listed = berth.aws(['ecs', 'list-tasks', '--cluster', cluster, '--started-by', 'e2e-test']);
  assert.deepEqual(listed.json.taskArns, [arn]);

  const stop = berth.aws(['ecs', 'stop-task', '--cluster', cluster, '--task', arn, '--reason', 'done testing']);
  assert.equal(stop.status, 0, stop.stderr);
  assert.equal(stop.json.task.desiredStatus, 'STOPPED');
  const stopped = berth.aws(['ecs', 'wait', 'tasks-stopped', '--cluster', cluster, '--tasks', arn]);
  assert.equal(stopped.status, 0, stopped.stderr);
  const s = berth.aws(['ecs', 'describe-tasks', '--cluster', cluster, '--tasks', arn]).json.tasks[0];
  assert.equal(s.lastStatus, 'STOPPED');
  assert.equal(s.containers[0].exitCode, 42);
  assert.equal(s.stoppedReason, 'done testing');
  assert.equal(s.stopCode, 'UserInitiated');
  assert.ok(s.stoppedAt >= s.stoppingAt);
  const logs = berth.aws(['logs', 'get-log-events', '--log-group-name', '/e2e', '--log-stream-name', `hello/app/${taskId(arn)}`]);
  assert.deepEqual(logs.json.events.map((e: { message: string }) => e.message), ['started', 'got TERM']);
});

test('an essential container that exits stops its task with ECS reason and exit code', async () => {
  const td = await register('exits', { command: ['sh', '-c', 'echo bye; exit 7'] });
  const arn = await run(td);
  const t = await waitForStatus(ecs, cluster, arn, 'STOPPED');
  assert.equal(t.stoppedReason, 'Essential container in task exited');
  assert.equal(t.stopCode, 'EssentialContainerExited');
  assert.equal(t.containers![0]!.exitCode, 7);
});

test('secure defaults: read-only root honoured, default capabilities only, no new privileges', async () => {
  const td = await register('secure', {
    readonlyRootFilesystem: true,
    command: ['sh', '-c', 'touch /probe 2>&1; grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status; echo done'],
  });
  const arn = await run(td);
  await waitForStatus(ecs, cluster, arn, 'STOPPED');
  const m = await waitForLogs(berth, '/e2e', `secure/app/${taskId(arn)}`, (x) => x.includes('done'));
  assert.ok(m.some((l) => /Read-only file system/.test(l)), m.join('\n'));
  assert.ok(m.includes('CapEff:\t00000000a80425fb'), m.join('\n'));
  assert.ok(m.includes('CapBnd:\t00000000a80425fb'), m.join('\n'));
  assert.ok(m.includes('NoNewPrivs:\t1'), m.join('\n'));
});

test('a memory-hungry container is OOM-killed and the reason says so', async () => {
  const td = await register('hungry', { memory: 16, command: ['sh', '-c', 'tail /dev/zero'] });
  const arn = await run(td);
  const t = await waitForStatus(ecs, cluster, arn, 'STOPPED');
  assert.equal(t.containers![0]!.exitCode, 137);
  assert.match(t.containers![0]!.reason ?? '', /^OutOfMemoryError/);
});

test('a container that ignores SIGTERM is killed after its stopTimeout', async () => {
  const td = await register('stubborn', { stopTimeout: 2, command: ['sh', '-c', "trap '' TERM; echo ready; while true; do sleep 0.2; done"] });
  const arn = await run(td);
  await waitForStatus(ecs, cluster, arn, 'RUNNING');
  await waitForLogs(berth, '/e2e', `stubborn/app/${taskId(arn)}`, (m) => m.includes('ready'));
  const started = Date.now();
  await ecs.send(new StopTaskCommand({ cluster, task: arn }));
  const t = await waitForStatus(ecs, cluster, arn, 'STOPPED');
  const elapsed = Date.now() - started;
  assert.equal(t.containers![0]!.exitCode, 137);
  assert.ok(elapsed >= 2_000 && elapsed < 8_000, `stopped after ${elapsed} ms`);
});

test('isolation: tasks on one instance see neither each other\'s processes nor files', async () => {
  // PID 1 without a TERM handler ignores SIGTERM: a short stopTimeout keeps the test quick.
  const tdA = await register('iso-a', { stopTimeout: 1, command: ['sh', '-c', 'echo secret > /tmp/only-a; exec sleep 3600'] });
  const a = await run(tdA);
  const ta = await waitForStatus(ecs, cluster, a, 'RUNNING');
  const tdB = await register('iso-b', { command: ['sh', '-c', 'echo pids: $(ls /proc | grep -E "^[0-9]+$" | tr "\\n" " "); ls /tmp; ps -o comm; echo end'] });
  const b = await run(tdB);
  const tb = await waitForStatus(ecs, cluster, b, 'STOPPED');
  assert.equal(tb.containerInstanceArn, ta.containerInstanceArn, 'both tasks should share the instance');
  const m = await waitForLogs(berth, '/e2e', `iso-b/app/${taskId(b)}`, (x) => x.includes('end'));
  const text = m.join('\n');
  assert.ok(!/only-a/.test(text), text);
  assert.ok(!/sleep/.test(text), text);
  assert.match(text, /^pids: 1 ?/m);
  await ecs.send(new StopTaskCommand({ cluster, task: a }));
  await waitForStatus(ecs, cluster, a, 'STOPPED');
});

async function instanceIds(): Promise<string[]> {
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  const d = await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }));
  return d.containerInstances!.map((ci) => ci.ec2InstanceId!);
}

test('the instance has no listening socket, a read-only root for the agent, and says so in its attributes', async () => {
  const [id] = await instanceIds();
  assert.ok(id);
  const ss = execFileSync('nsenter', [`--net=/run/netns/berth-${id}`, 'ss', '-Hltnu'], { encoding: 'utf8' });
  assert.equal(ss.trim(), '', `listening sockets in the instance: ${ss}`);
  const [pid] = agentPids(id!);
  assert.ok(pid, 'agent process not found');
  const write = spawnSync('nsenter', ['-t', String(pid), '-m', 'sh', '-c', 'touch /usr/berth-probe'], { encoding: 'utf8' });
  assert.notEqual(write.status, 0);
  assert.match(write.stderr, /Read-only file system/);
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }))).containerInstances![0]!;
  const attr = (n: string) => ci.attributes!.find((a) => a.name === n)?.value;
  assert.equal(attr('berth.root-filesystem'), 'read-only');
  assert.equal(attr('berth.listening-sockets'), '0');
  assert.equal(attr('berth.selinux'), 'unavailable');
  assert.equal(attr('ecs.cpu-architecture'), 'x86_64');
  assert.equal(attr('ecs.subnet-id'), 'subnet-1');
  assert.equal(ci.agentConnected, true);
  assert.equal(ci.status, 'ACTIVE');
  assert.equal(ci.healthStatus!.overallStatus, 'OK');
});

test('awsvpc: the task gets its own network namespace and address, reachable from the host', async () => {
  const r = await ecs.send(new RegisterTaskDefinitionCommand({
    family: 'web', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'awsvpc',
    containerDefinitions: [{
      name: 'web', image, memory: 64, portMappings: [{ containerPort: 8080 }], logConfiguration: log('web'), stopTimeout: 1,
      command: ['sh', '-c', 'mkdir -p /tmp/www && ip -o -4 addr show eth0 > /tmp/www/addr && exec httpd -f -p 8080 -h /tmp/www'],
    }],
  }));
  const arn = await run(r.taskDefinition!.taskDefinitionArn!);
  const t = await waitForStatus(ecs, cluster, arn, 'RUNNING');
  const eni = t.attachments!.find((a) => a.type === 'ElasticNetworkInterface')!;
  const ip = eni.details!.find((d) => d.name === 'privateIPv4Address')!.value!;
  assert.match(ip, /^10\.\d+\.\d+\.\d+$/);
  assert.equal(t.containers![0]!.networkInterfaces![0]!.privateIpv4Address, ip);
  assert.deepEqual(t.containers![0]!.networkBindings!.map((b) => [b.containerPort, b.hostPort]), [[8080, 8080]]);
  const body = await waitFor('httpd answers', async () => (await fetch(`http://${ip}:8080/addr`)).text(), 10_000);
  assert.match(body, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`));
  await ecs.send(new StopTaskCommand({ cluster, task: arn }));
  await waitForStatus(ecs, cluster, arn, 'STOPPED');
  const after = await describeTask(ecs, cluster, arn);
  assert.equal(after.attachments![0]!.status, 'DELETED');
});

test('a task that can never fit fails at once, saying why', async () => {
  const td = await register('huge', { memory: 4 * 1024 * 1024, command: ['true'] });
  const r = berth.aws(['ecs', 'run-task', '--cluster', cluster, '--task-definition', td]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.json.tasks, []);
  assert.equal(r.json.failures[0].reason, 'RESOURCE:MEMORY');
  assert.match(r.json.failures[0].detail, /MiB/);
  assert.match(r.json.failures[0].arn, /:capacity-provider\/e2e-cp$/);
});

test('a task needing a privileged capability fails on a default provider with a clear message', async () => {
  const td = await register('priv', { linuxParameters: { capabilities: { add: ['SYS_ADMIN'] } }, command: ['true'] });
  const r = await ecs.send(new RunTaskCommand({ cluster, taskDefinition: td }));
  assert.equal(r.tasks!.length, 0);
  assert.equal(r.failures![0]!.reason, 'PRIVILEGED_CAPABILITY');
  assert.match(r.failures![0]!.detail!, /CAP_SYS_ADMIN/);
  assert.match(r.failures![0]!.detail!, /berth:privileged-capabilities/);
});

test('metrics show per-task cpu and memory', async () => {
  const td = await register('busy', { stopTimeout: 1, command: ['sh', '-c', 'while true; do :; done'] });
  const arn = await run(td);
  await waitForStatus(ecs, cluster, arn, 'RUNNING');
  const id = taskId(arn);
  const text = await waitFor('task metrics', async () => {
    const t = await (await fetch(`${berth.creds.endpoint}/metrics`, { headers: { authorization: `Bearer ${SCRAPE}` } })).text();
    return new RegExp(`berth_task_memory_bytes\\{cluster="${cluster}",task="${id}"`).test(t) ? t : undefined;
  }, 20_000, 500);
  assert.match(text, new RegExp(`berth_task_cpu_seconds_total\\{cluster="${cluster}",task="${id}",family="busy"\\} [0-9.e+-]+`));
  await ecs.send(new StopTaskCommand({ cluster, task: arn }));
  await waitForStatus(ecs, cluster, arn, 'STOPPED');
});

test('task semantics: entryPoint, command, environment, user, workingDirectory, dependsOn and overrides', async () => {
  const r = await ecs.send(new RegisterTaskDefinitionCommand({
    family: 'semantics', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [
      { name: 'init', image, memory: 32, essential: false, command: ['sh', '-c', 'echo init ran'], logConfiguration: log('semantics') },
      {
        name: 'main', image, memory: 32, entryPoint: ['sh', '-c'], command: ['echo overridden-not'], user: 'app', workingDirectory: '/tmp',
        environment: [{ name: 'GREETING', value: 'hello' }], dependsOn: [{ containerName: 'init', condition: 'SUCCESS' }], logConfiguration: log('semantics'),
      },
    ],
  }));
  const run = await ecs.send(new RunTaskCommand({
    cluster, taskDefinition: r.taskDefinition!.taskDefinitionArn!,
    overrides: { containerOverrides: [{ name: 'main', command: ['echo "$GREETING $EXTRA as $(id -u):$(id -g) in $(pwd)"'], environment: [{ name: 'EXTRA', value: 'world' }] }] },
  }));
  const arn = run.tasks![0]!.taskArn!;
  const t = await waitForStatus(ecs, cluster, arn, 'STOPPED');
  assert.deepEqual(t.containers!.map((c) => [c.name, c.exitCode]).sort(), [['init', 0], ['main', 0]]);
  const init = await waitForLogs(berth, '/e2e', `semantics/init/${taskId(arn)}`, (m) => m.length > 0);
  assert.deepEqual(init, ['init ran']);
  const main = await waitForLogs(berth, '/e2e', `semantics/main/${taskId(arn)}`, (m) => m.length > 0);
  assert.deepEqual(main, ['hello world as 1000:1000 in /tmp']);
  assert.deepEqual(t.overrides!.containerOverrides![0]!.environment, [{ name: 'EXTRA', value: 'world' }]);
});

test('StartTask pins a task to an instance; deregistering the instance terminates it and stops its tasks', async () => {
  const [ciArn] = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  const td = await register('pinned', { stopTimeout: 1, command: ['sh', '-c', 'exec sleep 3600'] });
  const started = berth.aws(['ecs', 'start-task', '--cluster', cluster, '--task-definition', td, '--container-instances', ciArn!]);
  assert.equal(started.status, 0, started.stderr);
  const arn: string = started.json.tasks[0].taskArn;
  const t = await waitForStatus(ecs, cluster, arn, 'RUNNING');
  assert.equal(t.containerInstanceArn, ciArn);
  const refused = berth.aws(['ecs', 'deregister-container-instance', '--cluster', cluster, '--container-instance', ciArn!]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /ClientException.*has 1 tasks/);
  const d = berth.aws(['ecs', 'deregister-container-instance', '--cluster', cluster, '--container-instance', ciArn!, '--force']);
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.json.containerInstance.status, 'INACTIVE');
  const s = await waitForStatus(ecs, cluster, arn, 'STOPPED', 15_000);
  assert.match(s.stoppedReason!, /^Host EC2 \(instance i-[0-9a-f]+\) terminated\.$/);
  const id = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [ciArn!] }))).containerInstances![0]!.ec2InstanceId!;
  await waitFor('instance netns gone', async () => !execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(`berth-${id}`), 10_000);
  assert.deepEqual((await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns, []);
});
