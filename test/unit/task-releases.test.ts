// Whatever stops a task, what it held is let go once: its awsvpc network, its metrics series,
// its exec sessions. Driven on the real store and ECS model; the instance provider's network
// detach is recorded (the end-to-end tests detach real ones). Also: client tokens go with their tasks.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { TaskMetrics } from '../../src/api/metrics.js';
import { TaskReleases } from '../../src/controllers/task-releases.js';
import { Ecs } from '../../src/ecs/index.js';
import { markStopped, RELEASE_KIND } from '../../src/ecs/task-stop.js';
import type { TaskRecord } from '../../src/ecs/tasks.js';
import { SqliteStore } from '../../src/store/store.js';
import { ManualClock, systemClock } from '../../src/domain/clock.js';
import type { RequestContext } from '../../src/api/context.js';
import type { Scope } from '../../src/domain/arn.js';
import { sk } from '../../src/ecs/common.js';
import { MasterKey } from '../../src/identity/master-key.js';
import { Kms } from '../../src/kms/kms.js';
import { taskSecrets } from '../../src/kms/secrets.js';
import { taskPrecheck } from '../../src/controllers/precheck.js';
import { hostArchitecture } from '../../src/domain/instance-types.js';

const SCOPE = '111111111111/us-east-1';
let dir: string;
let store: SqliteStore;
let ecs: Ecs;
let registry: Registry;
let metrics: TaskMetrics;
let detached: string[];
let failDetach: boolean;
let execStopped: string[];

function releases(): TaskReleases {
  return new TaskReleases({
    store, tasks: ecs.tasks, log: () => {}, metrics,
    network: { detachTaskNetwork: async (id) => { if (failDetach) throw new Error('provider unavailable'); detached.push(id); } },
    exec: { onTaskStopped: (_scope, arn) => execStopped.push(arn) },
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-releases-'));
  store = new SqliteStore(dir);
  ecs = new Ecs(store, { precheck: taskPrecheck(hostArchitecture()), secrets: taskSecrets(new Kms(store, MasterKey.fromBytes(randomBytes(32)), systemClock)) });
  registry = new Registry();
  metrics = new TaskMetrics(registry);
  detached = [];
  execStopped = [];
  failDetach = false;
});
afterEach(() => { store.close(); rmSync(dir, { recursive: true, force: true }); });

let n = 0;
function task(extra: Partial<TaskRecord> = {}): TaskRecord {
  const id = `${(++n).toString(16).padStart(8, '0')}0000000000000000000000aa`.slice(0, 32);
  const t = {
    id, taskArn: `arn:aws:ecs:us-east-1:111111111111:task/c/${id}`, cluster: 'c', clusterArn: 'arn:aws:ecs:us-east-1:111111111111:cluster/c',
    taskDefinitionArn: 'arn:aws:ecs:us-east-1:111111111111:task-definition/web:1', family: 'web', revision: 1,
    capacityProviderName: 'cp', lastStatus: 'RUNNING', desiredStatus: 'RUNNING', createdAt: 1, group: 'family:web', tags: [], overrides: {},
    enableExecuteCommand: true, containers: [{ name: 'app', image: 'i', lastStatus: 'RUNNING', networkBindings: [] }],
    reservation: { cpu: 0, memory: 32, tcpPorts: [], udpPorts: [], eni: true }, networkMode: 'awsvpc', version: 0,
    containerInstanceId: 'ci-1',
    network: { attachmentId: 'a', interfaceId: 'eni-1', netnsPath: '/run/netns/x', ipv4Address: '10.0.0.2', gateway: '10.0.0.1', prefixLength: 24, macAddress: '02:00:00:00:00:01', subnetId: 's' },
    ...extra,
  } as unknown as TaskRecord;
  ecs.tasks.save(SCOPE, t);
  metrics.set('c', t.id, 'web', 1.5, 1024);
  return t;
}

async function series(taskId: string): Promise<number> {
  let count = 0;
  for (const m of await registry.getMetricsAsJSON()) count += m.values.filter((v) => v.labels.task === taskId).length;
  return count;
}

async function assertReleased(t: TaskRecord, network: boolean): Promise<void> {
  assert.equal(await series(t.id), 0, 'metrics series left behind');
  assert.ok(execStopped.includes(t.taskArn), 'exec broker not told');
  assert.equal(detached.includes(t.id), network, network ? 'network left attached' : 'detached a network it did not have');
  assert.equal(store.get(RELEASE_KIND, SCOPE, t.id), undefined, 'release not settled');
  const rec = ecs.tasks.get(SCOPE, t.id);
  if (rec) assert.equal(rec.released, true);
}

test('an agent report that stops the task releases its network, metrics and exec sessions', async () => {
  const t = task();
  store.tx(() => ecs.tasks.applyReport(SCOPE, 'ci-1', {
    taskArn: t.taskArn, lastStatus: 'STOPPED', containers: [{ name: 'app', lastStatus: 'STOPPED', exitCode: 0 }],
  } as never, 5));
  assert.ok(store.get(RELEASE_KIND, SCOPE, t.id), 'no release filed with the stop');
  await releases().run();
  await assertReleased(t, true);
  // Later saves of the stopped task file nothing again.
  ecs.tasks.save(SCOPE, ecs.tasks.get(SCOPE, t.id)!);
  assert.equal(store.get(RELEASE_KIND, SCOPE, t.id), undefined);
});

test('a stop before the task reached an agent releases too', async () => {
  const t = task({ containerInstanceId: undefined, network: undefined, lastStatus: 'PROVISIONING' } as Partial<TaskRecord>);
  ecs.tasks.requestStop(SCOPE, t, 'Task stopped by user', 'UserInitiated', 7);
  assert.equal(ecs.tasks.get(SCOPE, t.id)!.lastStatus, 'STOPPED');
  await releases().run();
  await assertReleased(t, false);
});

test('the fleet\'s stops (task lost, instance terminated) release through the same save', async () => {
  for (const reason of ['Task was lost: the instance agent no longer knows it.', 'Host EC2 (instance i-1) terminated.']) {
    const t = task();
    store.tx(() => { const cur = ecs.tasks.get(SCOPE, t.id)!; markStopped(cur, { reason, stopCode: 'TaskFailedToStart', now: 9 }); ecs.tasks.save(SCOPE, cur); });
    await releases().run();
    await assertReleased(t, true);
  }
});

test('a failed detach is kept and tried again; a release filed before a crash is done after it', async () => {
  const t = task();
  ecs.tasks.requestStop(SCOPE, t, 'x', 'UserInitiated', 7);
  ecs.tasks.applyReport(SCOPE, 'ci-1', { taskArn: t.taskArn, lastStatus: 'STOPPED', containers: [] } as never, 8);
  failDetach = true;
  await releases().run();
  assert.ok(store.get(RELEASE_KIND, SCOPE, t.id), 'a failed release was dropped');
  assert.notEqual(ecs.tasks.get(SCOPE, t.id)!.released, true);
  // The control plane dies and starts again on the same data.
  store.close();
  store = new SqliteStore(dir);
  ecs = new Ecs(store, { precheck: taskPrecheck(hostArchitecture()), secrets: taskSecrets(new Kms(store, MasterKey.fromBytes(randomBytes(32)), systemClock)) });
  failDetach = false;
  await releases().run();
  await assertReleased(t, true);
});

test('a release outlives the task being reaped', async () => {
  const t = task();
  ecs.tasks.applyReport(SCOPE, 'ci-1', { taskArn: t.taskArn, lastStatus: 'STOPPED', containers: [] } as never, 8);
  assert.equal(ecs.tasks.reapStopped(Number.MAX_SAFE_INTEGER, 0), 1);
  await releases().run();
  assert.deepEqual(detached, [t.id]);
  assert.equal(await series(t.id), 0);
  assert.equal(store.get(RELEASE_KIND, SCOPE, t.id), undefined);
});

test('a network attached after the task stopped (and was released) is released again', async () => {
  const t = task({ network: undefined } as Partial<TaskRecord>);
  ecs.tasks.applyReport(SCOPE, 'ci-1', { taskArn: t.taskArn, lastStatus: 'STOPPED', containers: [] } as never, 8);
  await releases().run();
  assert.deepEqual(detached, []);
  // The attach that was under way when it stopped completes (scheduler.attachNetwork).
  const cur = ecs.tasks.get(SCOPE, t.id)!;
  cur.released = false;
  cur.network = { attachmentId: 'a', interfaceId: 'eni-2', netnsPath: '/run/netns/y', ipv4Address: '10.0.0.3', gateway: '10.0.0.1', prefixLength: 24, macAddress: '02:00:00:00:00:02', subnetId: 's' };
  ecs.tasks.save(SCOPE, cur);
  await releases().run();
  assert.deepEqual(detached, [t.id]);
});

test('RunTask client tokens: a retry gets the same tasks; the token is reaped with its tasks, not before', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const scope: Scope = { account: '111111111111', region: 'us-east-1', partition: 'aws' };
  const ctx = {
    requestId: 'test', scope, clock, sourceIp: '127.0.0.1', service: 'ecs', action: 'test',
    principal: { accountId: scope.account, accessKeyId: 'AKIATEST', principal: `iam::${scope.account}:root`, userName: 'root' },
  } as RequestContext;
  ecs.clusters.create(ctx, { clusterName: 'tok' });
  ecs.capacityProviders.create(ctx, { name: 'tok-cp', cluster: 'tok', managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-1'] } } } } as never);
  ecs.taskDefinitions.register(ctx, { family: 'tok', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host', containerDefinitions: [{ name: 'a', image: 'i', memory: 32 }] });
  const first = ecs.tasks.run(ctx, { cluster: 'tok', taskDefinition: 'tok', count: 2, clientToken: 'retry-me' });
  const again = ecs.tasks.run(ctx, { cluster: 'tok', taskDefinition: 'tok', count: 2, clientToken: 'retry-me' });
  const arns = (r: typeof first) => r.tasks.map((t) => t.taskArn).sort();
  assert.deepEqual(arns(again), arns(first));
  const tokens = () => store.listAll('run-task-token').length;
  assert.equal(tokens(), 1);
  // Two hours on, the tasks still exist: the token stays, or a retry would start them twice.
  clock.advance(2 * 60 * 60 * 1000);
  ecs.tasks.reapStopped(clock.now());
  assert.equal(tokens(), 1);
  for (const t of first.tasks) ecs.tasks.requestStop(sk(scope), ecs.tasks.get(sk(scope), t.taskArn.split('/').pop()!)!, 'done', 'UserInitiated', clock.now());
  clock.advance(2 * 60 * 60 * 1000);
  ecs.tasks.reapStopped(clock.now());
  assert.equal(tokens(), 0, 'the token of reaped tasks was kept');
});

test('a network attached while its release is under way is released by the next pass', async () => {
  const t = task();
  ecs.tasks.applyReport(SCOPE, 'ci-1', { taskArn: t.taskArn, lastStatus: 'STOPPED', containers: [] } as never, 8);
  let finishDetach!: () => void;
  const slow = new TaskReleases({
    store, tasks: ecs.tasks, log: () => {}, metrics, exec: { onTaskStopped: () => {} },
    network: { detachTaskNetwork: (id) => new Promise<void>((resolve) => { finishDetach = () => { detached.push(id); resolve(); }; }) },
  });
  const running = slow.run();
  await new Promise((r) => setImmediate(r));
  // The attach completes meanwhile (scheduler.attachNetwork): the task is filed again.
  const cur = ecs.tasks.get(SCOPE, t.id)!;
  cur.released = false;
  cur.network = { ...cur.network!, interfaceId: 'eni-3' };
  ecs.tasks.save(SCOPE, cur);
  finishDetach();
  await running;
  assert.ok(store.get(RELEASE_KIND, SCOPE, t.id), 'the newer release was dropped with the older one');
  await releases().run();
  assert.equal(detached.length, 2);
  await assertReleased(t, true);
});
