import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  circuitBreakerThreshold, decideService, isServing, maxTasks, minHealthy,
  type DeploymentState, type ServiceSnapshot, type ServiceTask,
} from '../../src/controllers/service-decisions.js';

const deployment = (id: string, status: 'PRIMARY' | 'ACTIVE', td = `td:${id}`): DeploymentState =>
  ({ id, status, taskDefinition: td, rolloutState: status === 'PRIMARY' ? 'IN_PROGRESS' : 'COMPLETED', failedTasks: 0, createdAt: 0 });
const snapshot = (over: Partial<ServiceSnapshot> = {}): ServiceSnapshot => ({
  desiredCount: 4, minimumHealthyPercent: 100, maximumPercent: 200, circuitBreaker: { enable: false, rollback: false },
  deployments: [deployment('d1', 'PRIMARY')], consecutiveFailures: 0, nextLaunchAt: 0, ...over,
});
const task = (id: string, deploymentId: string, lastStatus = 'RUNNING', extra: Partial<ServiceTask> = {}): ServiceTask =>
  ({ id, deploymentId, lastStatus, stopping: false, createdAt: Number(id.replace(/\D/g, '')) || 0, ...extra });

test('a new service starts desiredCount tasks', () => {
  const d = decideService(snapshot(), [], [], 0);
  assert.equal(d.launch, 4);
  assert.deepEqual(d.stop, []);
});

test('a rolling update with 100/200 starts new tasks first and stops old ones only as new ones serve', () => {
  const s = snapshot({ deployments: [deployment('d2', 'PRIMARY'), deployment('d1', 'ACTIVE')] });
  const old = [1, 2, 3, 4].map((i) => task(`o${i}`, 'd1'));
  let d = decideService(s, old, [], 0);
  assert.equal(d.launch, 4);
  assert.deepEqual(d.stop, []);
  const fresh = [5, 6].map((i) => task(`n${i}`, 'd2'));
  const pending = [7, 8].map((i) => task(`n${i}`, 'd2', 'PENDING'));
  d = decideService(s, [...old, ...fresh, ...pending], [], 0);
  assert.equal(d.launch, 0);
  assert.equal(d.stop.length, 2);
  assert.ok(d.stop.every((x) => x.taskId.startsWith('o')));
});

test('min 50% lets a deployment stop old tasks before new ones run', () => {
  const s = snapshot({ minimumHealthyPercent: 50, maximumPercent: 100, deployments: [deployment('d2', 'PRIMARY'), deployment('d1', 'ACTIVE')] });
  const d = decideService(s, [1, 2, 3, 4].map((i) => task(`o${i}`, 'd1')), [], 0);
  assert.equal(d.launch, 0);
  assert.equal(d.stop.length, 2);
});

test('tasks on a draining instance are replaced start-before-stop', () => {
  const s = snapshot({ desiredCount: 2 });
  const t = [task('a1', 'd1', 'RUNNING', { trouble: 'instance-draining' }), task('a2', 'd1')];
  let d = decideService(s, t, [], 0);
  assert.equal(d.launch, 1);
  assert.deepEqual(d.stop, []);
  d = decideService(s, [...t, task('a3', 'd1')], [], 0);
  assert.deepEqual(d.stop, [{ taskId: 'a1', why: 'replaced' }]);
});

test('unhealthy and lost tasks are stopped at once and replaced', () => {
  const s = snapshot({ desiredCount: 2 });
  const d = decideService(s, [task('a1', 'd1', 'RUNNING', { trouble: 'unhealthy' }), task('a2', 'd1', 'RUNNING', { trouble: 'instance-lost' })], [], 0);
  assert.equal(d.launch, 2);
  assert.deepEqual(d.stop.map((x) => x.why).sort(), ['instance-lost', 'unhealthy']);
});

test('the circuit breaker fails the deployment and rolls back to the last completed task definition', () => {
  const s = snapshot({ circuitBreaker: { enable: true, rollback: true }, lastCompletedTaskDefinition: 'td:good', deployments: [deployment('d2', 'PRIMARY', 'td:bad')] });
  const failures = [1, 2, 3].map((i) => ({ id: `f${i}`, deploymentId: 'd2', reachedRunning: false }));
  const d = decideService(s, [], failures, 0);
  assert.equal(d.deployments[0]!.rolloutState, 'FAILED');
  assert.equal(d.rollbackTo, 'td:good');
  assert.equal(d.launch, 0);
  assert.equal(circuitBreakerThreshold(4), 3);
  assert.equal(circuitBreakerThreshold(100), 50);
  assert.equal(circuitBreakerThreshold(1000), 200);
});

test('a crash loop is throttled with a growing backoff', () => {
  let s = snapshot();
  const now = 1_000_000;
  for (let i = 0; i < 5; i++) {
    const d = decideService(s, [], [{ id: `f${i}`, deploymentId: 'd1', reachedRunning: false }], now);
    s = { ...s, consecutiveFailures: d.consecutiveFailures, nextLaunchAt: d.nextLaunchAt, deployments: d.deployments };
  }
  assert.equal(s.consecutiveFailures, 5);
  assert.ok(s.nextLaunchAt > now);
  assert.equal(decideService(s, [], [], now).launch, 0);
  assert.equal(decideService(s, [], [], s.nextLaunchAt).launch, 4);
});

test('the rollout completes once the primary alone serves the desired count', () => {
  const d = decideService(snapshot({ desiredCount: 2 }), [task('a1', 'd1'), task('a2', 'd1')], [], 0);
  assert.equal(d.deployments[0]!.rolloutState, 'COMPLETED');
  assert.match(d.events[0]!, /deployment completed/);
});

test('AZ rebalancing: one more task in the emptiest zone, then one fewer in the fullest, within maximumPercent', () => {
  const completed = { ...deployment('d1', 'PRIMARY'), rolloutState: 'COMPLETED' as const };
  const zones = ['z-a', 'z-b', 'z-c'];
  const base = snapshot({ desiredCount: 6, deployments: [completed], rebalanceZones: zones });
  const on = (id: string, zone: string, extra: Partial<ServiceTask> = {}) => task(id, 'd1', 'RUNNING', { zone, ...extra });
  const lopsided = [on('t1', 'z-b'), on('t2', 'z-b'), on('t3', 'z-b'), on('t4', 'z-c'), on('t5', 'z-c'), on('t6', 'z-c')];

  let d = decideService(base, lopsided, [], 0);
  assert.equal(d.rebalanceTo, 'z-a');
  assert.equal(d.launch, 0);
  assert.deepEqual(d.stop, []);
  assert.match(d.events.join('\n'), /is not AZ balanced with 0 tasks in z-a, 3 tasks in z-b, 3 tasks in z-c\. AZ Rebalancing in progress\./);

  // While the rebalancing task is on its way: nothing stops, nothing more starts.
  d = decideService(base, [...lopsided, task('t7', 'd1', 'PENDING', { rebalancing: true })], [], 0);
  assert.deepEqual([d.launch, d.stop, d.rebalanceTo], [0, [], undefined]);

  // Once it serves, the newest task of a fullest zone stops, never the rebalancing one.
  d = decideService(base, [...lopsided, on('t7', 'z-a', { rebalancing: true })], [], 0);
  assert.deepEqual(d.stop.map((x) => x.taskId), ['t6']);

  // Balanced enough (at most one apart), or no room above the desired count: nothing.
  d = decideService(base, [on('t1', 'z-a'), on('t2', 'z-b'), on('t3', 'z-b'), on('t4', 'z-c'), on('t5', 'z-c'), on('t6', 'z-a')], [], 0);
  assert.equal(d.rebalanceTo, undefined);
  d = decideService({ ...base, maximumPercent: 100 }, lopsided, [], 0);
  assert.equal(d.rebalanceTo, undefined);
  // Not during a deployment.
  d = decideService({ ...base, deployments: [deployment('d1', 'PRIMARY')] }, lopsided, [], 0);
  assert.equal(d.rebalanceTo, undefined);
});

test('scaling in takes tasks from the fullest zone first', () => {
  const completed = { ...deployment('d1', 'PRIMARY'), rolloutState: 'COMPLETED' as const };
  const tasks = [task('t1', 'd1', 'RUNNING', { zone: 'z-a' }), task('t2', 'd1', 'RUNNING', { zone: 'z-b' }), task('t3', 'd1', 'RUNNING', { zone: 'z-b' }), task('t4', 'd1', 'RUNNING', { zone: 'z-a' })];
  const d = decideService(snapshot({ desiredCount: 3, minimumHealthyPercent: 0, deployments: [completed] }), [...tasks, task('t0', 'd1', 'RUNNING', { zone: 'z-b', createdAt: 99 })], [], 0);
  assert.deepEqual(d.stop.map((x) => x.taskId), ['t0', 't3']);
});

// Property: over random event sequences, the controller never goes above maximumPercent
// and never itself takes the serving tasks below minimumHealthyPercent.
const eventArb = fc.oneof(
  fc.record({ kind: fc.constant('start-running' as const), n: fc.nat(5) }),
  fc.record({ kind: fc.constant('fail' as const), i: fc.nat(50) }),
  fc.record({ kind: fc.constant('lose' as const), i: fc.nat(50) }),
  fc.record({ kind: fc.constant('drain' as const), i: fc.nat(50) }),
  fc.record({ kind: fc.constant('unhealthy' as const), i: fc.nat(50) }),
  fc.record({ kind: fc.constant('deploy' as const) }),
  fc.record({ kind: fc.constant('scale' as const), desired: fc.integer({ min: 0, max: 12 }) }),
);

test('property: maximumPercent and minimumHealthyPercent hold over random histories', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 100, max: 200 }), fc.array(eventArb, { maxLength: 40 }),
    (desired0, minPct, maxPct, events) => {
      let s = snapshot({ desiredCount: desired0, minimumHealthyPercent: minPct, maximumPercent: maxPct, rebalanceZones: ['z1', 'z2', 'z3'] });
      let tasks: ServiceTask[] = [];
      let seq = 0;
      let dep = 1;
      for (const e of events) {
        const failed: { id: string; deploymentId: string; reachedRunning: boolean }[] = [];
        const pick = (i: number) => tasks.filter((t) => !t.stopping)[i % Math.max(1, tasks.filter((t) => !t.stopping).length)];
        if (e.kind === 'start-running') {
          for (const t of tasks.filter((x) => x.lastStatus === 'PENDING').slice(0, e.n)) { t.lastStatus = 'RUNNING'; t.zone ??= `z${1 + (Number(t.id.slice(1)) % 2)}`; }
        }
        if (e.kind === 'fail') { const t = pick(e.i); if (t) { tasks = tasks.filter((x) => x !== t); failed.push({ id: t.id, deploymentId: t.deploymentId, reachedRunning: t.lastStatus === 'RUNNING' }); } }
        if (e.kind === 'lose') { const t = pick(e.i); if (t) t.trouble = 'instance-lost'; }
        if (e.kind === 'drain') { const t = pick(e.i); if (t && !t.trouble) t.trouble = 'instance-draining'; }
        if (e.kind === 'unhealthy') { const t = pick(e.i); if (t && t.lastStatus === 'RUNNING') t.trouble = 'unhealthy'; }
        if (e.kind === 'deploy') {
          dep++;
          s = { ...s, deployments: [deployment(`d${dep}`, 'PRIMARY'), ...s.deployments.map((d) => ({ ...d, status: 'ACTIVE' as const }))] };
        }
        if (e.kind === 'scale') s = { ...s, desiredCount: e.desired };
        const servingBefore = tasks.filter(isServing).length;
        const liveBefore = tasks.filter((t) => !t.stopping).length;
        const d = decideService(s, tasks, failed, 0);
        const stopped = new Set(d.stop.map((x) => x.taskId));
        for (const t of tasks) if (stopped.has(t.id)) t.stopping = true;
        const live = tasks.filter((t) => !t.stopping).length + d.launch + (d.rebalanceTo ? 1 : 0);
        const ceiling = Math.max(maxTasks(s.desiredCount, s.maximumPercent), s.desiredCount);
        // Never above maximumPercent by launching.
        if (d.launch > 0 || d.rebalanceTo) assert.ok(live <= ceiling, `live ${live} > ceiling ${ceiling}`);
        // Never below minimumHealthyPercent by stopping tasks that served.
        const servingAfter = tasks.filter(isServing).length;
        assert.ok(servingAfter >= Math.min(servingBefore, minHealthy(s.desiredCount, s.minimumHealthyPercent)),
          `serving ${servingBefore} → ${servingAfter}, floor ${minHealthy(s.desiredCount, s.minimumHealthyPercent)}`);
        assert.ok(d.launch >= 0 && liveBefore >= 0);
        const primary = d.deployments.find((x) => x.status === 'PRIMARY');
        for (let i = 0; i < d.launch; i++) tasks.push(task(`t${++seq}`, primary!.id, 'PENDING', { createdAt: seq }));
        if (d.rebalanceTo) tasks.push(task(`t${++seq}`, primary!.id, 'PENDING', { createdAt: seq, rebalancing: true, zone: d.rebalanceTo }));
        tasks = tasks.filter((t) => !t.stopping);
        s = { ...s, deployments: d.deployments, consecutiveFailures: 0, nextLaunchAt: 0 };
      }
    },
  ), { numRuns: 500 });
});
