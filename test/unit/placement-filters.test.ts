import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PlacementEngine, ecsUnableToPlace, runTaskFailure, serviceEventMessage, stoppedReason,
  type InstanceSnapshot, type PlacementDecision, type TaskRequest,
} from '../../src/placement/index.js';

const inst = (over: Partial<InstanceSnapshot> = {}): InstanceSnapshot => ({
  id: 'i1', ec2InstanceId: 'i-0001', providerName: 'p', status: 'ACTIVE', agentConnected: true,
  registeredCpu: 2048, registeredMemory: 4096, usedCpu: 0, usedMemory: 0, tcpPortsUsed: ['22'], udpPortsUsed: [],
  eniMax: 2, eniUsed: 0, runningTasksCount: 0, taskGroups: {}, singleTask: false,
  availabilityZone: 'az1', subnetId: 's1', instanceType: 'm5a.large', architecture: 'X86_64',
  attributes: [{ name: 'ecs.capability.task-eni' }, { name: 'team', value: 'blue' }],
  privilegedCapabilities: [], fips: false, ...over,
});
const task = (over: Partial<TaskRequest> = {}): TaskRequest => ({ id: 't1', providerName: 'p', cpu: 256, memory: 512, group: 'family:web', ...over });

/** Places with the indexed engine and the reference pipeline; both must agree. */
function decide(instances: InstanceSnapshot[], t: TaskRequest): PlacementDecision {
  const a = new PlacementEngine(instances).place(t);
  const b = new PlacementEngine(instances, { indexed: false }).place(t);
  assert.deepEqual(a, b, 'indexed engine and reference pipeline disagree');
  return a;
}
const reasonOf = (d: PlacementDecision) => (d.placed ? undefined : d.failure.reason);

const cases: [string, Partial<InstanceSnapshot>, Partial<TaskRequest>, string | undefined][] = [
  ['fits an empty ACTIVE instance', {}, {}, undefined],
  ['DRAINING never takes tasks', { status: 'DRAINING' }, {}, 'INSTANCE_STATUS'],
  ['REGISTERING never takes tasks', { status: 'REGISTERING' }, {}, 'INSTANCE_STATUS'],
  ['disconnected agent', { agentConnected: false }, {}, 'INSTANCE_STATUS'],
  ['single-task instance with a task', { singleTask: true, runningTasksCount: 1 }, {}, 'SINGLE_TASK'],
  ['empty single-task instance', { singleTask: true }, {}, undefined],
  ['FIPS instance refuses ARM64', { fips: true }, { cpuArchitecture: 'ARM64', fipsRequired: false }, 'FIPS'],
  ['FIPS instance takes X86_64', { fips: true }, { cpuArchitecture: 'X86_64', fipsRequired: true }, undefined],
  ['FIPS instance takes unset architecture', { fips: true }, { fipsRequired: true }, undefined],
  ['FIPS provider refuses a non-FIPS instance', {}, { fipsRequired: true }, 'FIPS'],
  ['FIPS provider + ARM64 fails before any instance', { fips: true, architecture: 'ARM64' }, { fipsRequired: true, cpuArchitecture: 'ARM64' }, 'FIPS'],
  ['privileged capability without opt-in', {}, { privilegedCapabilities: ['CAP_SYS_ADMIN'] }, 'PRIVILEGED_CAPABILITY'],
  ['privileged capability with opt-in', { privilegedCapabilities: ['CAP_SYS_ADMIN'] }, { privilegedCapabilities: ['SYS_ADMIN'] }, undefined],
  ['opt-in to one of two capabilities', { privilegedCapabilities: ['CAP_BPF'] }, { privilegedCapabilities: ['CAP_BPF', 'CAP_PERFMON'] }, 'PRIVILEGED_CAPABILITY'],
  ['pidMode host without opt-in', {}, { hostAccess: ['pidMode:host'] }, 'HOST_ACCESS'],
  ['pidMode host with opt-in', { hostAccess: ['pidMode:host', 'devices'] }, { hostAccess: ['pidMode:host'] }, undefined],
  ['devices with only pidMode host allowed', { hostAccess: ['pidMode:host'] }, { hostAccess: ['devices'] }, 'HOST_ACCESS'],
  ['default capabilities need no opt-in', {}, { privilegedCapabilities: ['CAP_CHOWN', 'NET_BIND_SERVICE'] }, undefined],
  ['ARM64 task on X86_64', {}, { cpuArchitecture: 'ARM64' }, 'MISSING ATTRIBUTE'],
  ['ARM64 task on ARM64', { architecture: 'ARM64' }, { cpuArchitecture: 'ARM64' }, undefined],
  ['subnet not among the task subnets', {}, { subnets: ['s2'] }, 'MISSING ATTRIBUTE'],
  ['subnet among the task subnets', {}, { subnets: ['s2', 's1'] }, undefined],
  ['requiresAttributes present', {}, { requiresAttributes: [{ name: 'ecs.capability.task-eni' }] }, undefined],
  ['requiresAttributes missing', {}, { requiresAttributes: [{ name: 'ecs.capability.efs' }] }, 'MISSING ATTRIBUTE'],
  ['requiresAttributes value mismatch', {}, { requiresAttributes: [{ name: 'team', value: 'red' }] }, 'MISSING ATTRIBUTE'],
  ['memberOf matches', {}, { constraints: [{ type: 'memberOf', expression: 'attribute:team == blue' }] }, undefined],
  ['memberOf does not match', {}, { constraints: [{ type: 'memberOf', expression: 'attribute:ecs.availability-zone in [az2, az3]' }] }, 'MEMBER_OF'],
  ['malformed memberOf fails the request', {}, { constraints: [{ type: 'memberOf', expression: 'attribute:team ==' }] }, 'MEMBER_OF'],
  ['distinctInstance with the group present', { taskGroups: { 'family:web': 1 }, runningTasksCount: 1 }, { constraints: [{ type: 'distinctInstance' }] }, 'DISTINCT_INSTANCE'],
  ['distinctInstance with another group present', { taskGroups: { 'family:db': 1 }, runningTasksCount: 1 }, { constraints: [{ type: 'distinctInstance' }] }, undefined],
  ['too little CPU', { usedCpu: 1900 }, {}, 'RESOURCE:CPU'],
  ['CPU exactly enough', { usedCpu: 1792 }, {}, undefined],
  ['too little memory', { usedMemory: 3700 }, {}, 'RESOURCE:MEMORY'],
  ['memory exactly enough', { usedMemory: 3584 }, {}, undefined],
  ['tcp port in use', { tcpPortsUsed: ['22', '80'] }, { tcpPorts: ['80'] }, 'RESOURCE:PORTS'],
  ['udp port in use', { udpPortsUsed: ['53'] }, { udpPorts: ['53'] }, 'RESOURCE:PORTS'],
  ['same number, other protocol', { udpPortsUsed: ['80'] }, { tcpPorts: ['80'] }, undefined],
  ['awsvpc with every ENI used', { eniUsed: 2 }, { awsvpc: true }, 'RESOURCE:ENI'],
  ['host mode ignores ENIs', { eniUsed: 2 }, {}, undefined],
  ['awsvpc with an ENI free', { eniUsed: 1 }, { awsvpc: true }, undefined],
  ['first failing filter is the one counted', { status: 'DRAINING', usedCpu: 2048 }, {}, 'INSTANCE_STATUS'],
  ['another provider’s instance is not a candidate', { providerName: 'q' }, {}, 'NO_INSTANCES'],
  ['pinned to an unknown instance', {}, { pinnedInstanceId: 'nope' }, 'NOT_FOUND'],
  ['pinned instance is taken regardless of provider', { providerName: 'q' }, { pinnedInstanceId: 'i1' }, undefined],
];

for (const [name, i, t, want] of cases) {
  test(`filter: ${name}`, () => {
    const d = decide([inst(i)], task(t));
    assert.equal(reasonOf(d), want, d.placed ? 'placed' : d.failure.message);
    if (!d.placed && want && want !== 'NO_INSTANCES' && want !== 'NOT_FOUND' && !['FIPS provider + ARM64 fails before any instance', 'malformed memberOf fails the request'].includes(name)) {
      assert.equal(d.failure.counts[d.failure.reason as keyof typeof d.failure.counts], 1);
      assert.equal(d.failure.closest?.instanceId, 'i1');
    }
  });
}

test('rejections are counted per reason and the closest instance is the one that got furthest', () => {
  const d = decide([
    inst({ id: 'a', status: 'DRAINING' }),
    inst({ id: 'b', usedMemory: 4000 }),
    inst({ id: 'c', usedMemory: 3800 }),
    inst({ id: 'd', usedCpu: 2000 }),
    inst({ id: 'e', agentConnected: false }),
  ], task());
  assert.ok(!d.placed);
  assert.deepEqual(d.failure.counts, { INSTANCE_STATUS: 2, 'RESOURCE:CPU': 1, 'RESOURCE:MEMORY': 2 });
  assert.equal(d.failure.reason, 'RESOURCE:MEMORY');
  assert.equal(d.failure.closest?.instanceId, 'c', 'the one with the most memory free');
  assert.match(d.failure.message, /Of 5 instances: 2 INSTANCE_STATUS .*, 1 RESOURCE:CPU .*, 2 RESOURCE:MEMORY .*\. The closest, c, has 296 MiB of memory free; the task needs 512 MiB\./);
});

test('failure text in ECS words and Berth words', () => {
  const d = decide([inst({ usedMemory: 4000 })], task());
  assert.ok(!d.placed);
  const f = d.failure;
  assert.equal(ecsUnableToPlace('service web', f),
    'service web was unable to place a task because no container instance met all of its requirements. The closest matching container-instance i1 has insufficient memory available.');
  assert.match(serviceEventMessage('web', f), /^service web was unable to place a task .* No container instance of capacity provider p can take task t1 \(256 CPU units, 512 MiB\)/);
  assert.deepEqual(runTaskFailure(f, (id) => `arn:aws:ecs:us-east-1:1:container-instance/c/${id}`),
    { arn: 'arn:aws:ecs:us-east-1:1:container-instance/c/i1', reason: 'RESOURCE:MEMORY', detail: f.message });
  assert.match(stoppedReason(f), /^RESOURCE:MEMORY: No container instance/);
  const phrases: [Partial<InstanceSnapshot>, Partial<TaskRequest>, RegExp][] = [
    [{ usedCpu: 2048 }, {}, /has insufficient CPU units available\.$/],
    [{ tcpPortsUsed: ['80'] }, { tcpPorts: ['80'] }, /is already using a port required by your task\.$/],
    [{}, { cpuArchitecture: 'ARM64' }, /is missing an attribute required by your task\.$/],
    [{}, { constraints: [{ type: 'memberOf', expression: 'attribute:team == red' }] }, /encountered error "MemberOf placement constraint unsatisfied\."$/],
    [{ agentConnected: false }, {}, /encountered error "AGENT"\.$/],
    [{}, { privilegedCapabilities: ['CAP_NET_ADMIN'] }, /encountered error "PRIVILEGED_CAPABILITY"\.$/],
  ];
  for (const [i, t, re] of phrases) {
    const x = decide([inst(i)], task(t));
    assert.ok(!x.placed);
    assert.match(ecsUnableToPlace('service web', x.failure), re);
  }
});

test('FIPS + ARM64 gets a clear request-level error', () => {
  const d = decide([inst({ fips: true })], task({ fipsRequired: true, cpuArchitecture: 'ARM64', providerName: 'p' }));
  assert.ok(!d.placed);
  assert.match(d.failure.message, /capacity provider p is FIPS-enabled, and FIPS instances run only X86_64 tasks, but the task definition sets runtimePlatform.cpuArchitecture to ARM64/);
});

test('the privileged gate names the missing capability', () => {
  const d = decide([inst()], task({ privilegedCapabilities: ['CAP_SYS_ADMIN', 'CAP_CHOWN'] }));
  assert.ok(!d.placed);
  assert.match(d.failure.message, /does not allow the Linux capability CAP_SYS_ADMIN/);
});

test('no instances at all', () => {
  const d = decide([], task());
  assert.ok(!d.placed);
  assert.equal(d.failure.reason, 'NO_INSTANCES');
  assert.match(ecsUnableToPlace('service web', d.failure), /no container instances were found/);
});

test('reservations take resources, ports, ENIs and groups; release gives them back', () => {
  const e = new PlacementEngine([inst({ eniMax: 1 })]);
  const t = task({ tcpPorts: ['80'], awsvpc: true, constraints: [{ type: 'distinctInstance' }] });
  const d = e.placeAndReserve(t);
  assert.ok(d.placed);
  const v = e.view('i1')!;
  assert.equal(v.cpuFree, 2048 - 256);
  assert.equal(v.memFree, 4096 - 512);
  assert.equal(v.eniUsed, 1);
  assert.equal(v.runningTasksCount, 1);
  assert.ok(v.tcp.has('80'));
  assert.equal(v.groups.get('family:web'), 1);
  const again = e.place({ ...t, id: 't2' });
  assert.ok(!again.placed);
  assert.equal(again.failure.reason, 'DISTINCT_INSTANCE');
  e.release(t, 'i1');
  assert.equal(e.view('i1')!.cpuFree, 2048);
  assert.ok(e.place({ ...t, id: 't3' }).placed);
});

test('cordon takes an instance out until uncordon', () => {
  const e = new PlacementEngine([inst({ id: 'a' }), inst({ id: 'b', usedCpu: 1024 })]);
  e.cordon('b');
  const d = e.place(task());
  assert.ok(d.placed && d.instanceId === 'a');
  e.uncordon('b');
  const d2 = e.place(task());
  assert.ok(d2.placed && d2.instanceId === 'b');
});
