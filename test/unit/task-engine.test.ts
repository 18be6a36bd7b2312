import { test } from 'node:test';
import assert from 'node:assert/strict';
import { currentStatus, dependenciesMet, initialState, nextSteps, report } from '../../src/agent/task-engine.js';
import type { ContainerSpec, TaskSpec } from '../../src/agent/protocol.js';

const container = (name: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
  name, image: 'busybox', environment: [], essential: true, cpu: 0, readonlyRootFilesystem: false, privileged: false,
  capabilitiesAdd: [], capabilitiesDrop: [], initProcessEnabled: false, stopTimeoutSeconds: 30, portMappings: [], ulimits: [],
  dependsOn: [], mountPoints: [], log: { group: 'g', stream: `s/${name}` }, pseudoTerminal: false, interactive: false, ...extra,
});
const spec = (containers: ContainerSpec[]): TaskSpec => ({
  taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef', taskId: '0123456789abcdef0123456789abcdef',
  family: 'f', revision: 1, desiredStatus: 'RUNNING', networkMode: 'host', containers, volumes: [], allowedPrivilegedCapabilities: [], enableExecuteCommand: false,
});

test('a new task pulls every container first and reports PENDING', () => {
  const s = initialState(spec([container('a'), container('b')]));
  assert.deepEqual(nextSteps(s), [{ kind: 'pull', container: 'a' }, { kind: 'pull', container: 'b' }]);
  assert.equal(currentStatus(s), 'PENDING');
});

test('containers start in dependency order', () => {
  const s = initialState(spec([container('app', { dependsOn: [{ containerName: 'init', condition: 'SUCCESS' }] }), container('init', { essential: false })]));
  s.containers.app!.phase = 'pulled';
  s.containers.init!.phase = 'pulled';
  assert.deepEqual(nextSteps(s), [{ kind: 'create', container: 'init' }]);
  s.containers.init!.phase = 'running';
  assert.deepEqual(nextSteps(s), []);
  assert.equal(dependenciesMet(s.spec.containers[0]!, s), false);
  s.containers.init!.phase = 'stopped';
  s.containers.init!.exitCode = 0;
  assert.deepEqual(nextSteps(s), [{ kind: 'create', container: 'app' }]);
  s.containers.init!.exitCode = 1;
  assert.equal(nextSteps(s)[0]!.kind, 'fail');
});

test('status moves forward only: RUNNING, then the stop sequence to STOPPED', () => {
  const s = initialState(spec([container('a')]));
  s.containers.a!.phase = 'created';
  assert.equal(currentStatus(s), 'ACTIVATING');
  s.containers.a!.phase = 'running';
  assert.equal(currentStatus(s), 'RUNNING');
  s.reported = 'RUNNING';
  s.spec.desiredStatus = 'STOPPED';
  assert.equal(currentStatus(s), 'DEACTIVATING');
  assert.deepEqual(nextSteps(s), [{ kind: 'stop', container: 'a', timeoutSeconds: 30 }]);
  s.containers.a!.stopSent = true;
  s.reported = 'DEACTIVATING';
  assert.equal(currentStatus(s), 'STOPPING');
  s.containers.a!.phase = 'stopped';
  s.containers.a!.exitCode = 143;
  assert.equal(currentStatus(s), 'DEPROVISIONING');
  assert.deepEqual(nextSteps(s), [{ kind: 'cleanup' }]);
  s.cleanedUp = true;
  assert.equal(currentStatus(s), 'STOPPED');
  // A late observation never moves the status back.
  s.cleanedUp = false;
  s.reported = 'STOPPED';
  assert.equal(currentStatus(s), 'STOPPED');
});

test('an essential container exiting stops the task with ECS reason; a non-essential one does not', () => {
  const s = initialState(spec([container('app'), container('side', { essential: false })]));
  s.containers.app!.phase = 'running';
  s.containers.side!.phase = 'stopped';
  assert.deepEqual(nextSteps(s), []);
  s.containers.app!.phase = 'stopped';
  assert.deepEqual(nextSteps(s), [{ kind: 'fail', reason: 'Essential container in task exited', code: 'EssentialContainerExited' }]);
});

test('reports carry exit codes, reasons and network bindings', () => {
  const s = initialState(spec([container('a', { portMappings: [{ containerPort: 80, hostPort: 80, protocol: 'tcp' }] })]));
  s.containers.a!.phase = 'running';
  s.containers.a!.runtimeId = 'rid';
  const r = report(s, 'RUNNING');
  assert.deepEqual(r.containers[0]!.networkBindings, [{ bindIP: '0.0.0.0', containerPort: 80, hostPort: 80, protocol: 'tcp' }]);
  s.containers.a!.phase = 'stopped';
  s.containers.a!.exitCode = 137;
  s.containers.a!.reason = 'OutOfMemoryError: Container killed due to memory usage';
  const r2 = report(s, 'STOPPED');
  assert.equal(r2.containers[0]!.lastStatus, 'STOPPED');
  assert.equal(r2.containers[0]!.exitCode, 137);
  assert.match(r2.containers[0]!.reason!, /OutOfMemoryError/);
});
