import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instanceType, INSTANCE_TYPES } from '../../src/domain/instance-types.js';
import {
  assignProviders, cheapestFitting, costEffective, decideScaleIn, planScaleOut, registeredCpu, registeredMemory,
  scaleInDelayMs, selectableTypes, splitByStrategy, stoppedReason,
  type InstanceSnapshot, type ScaleInInstance, type ScaleOutProvider, type TaskRequest,
} from '../../src/placement/index.js';
import { firstFitDecreasing, packingLowerBound, type BinType, type PackItem } from '../../src/placement/packing.js';
import { makeTasks } from '../../bench/placement/workload.js';

// ---------------------------------------------------------------------------------------
// Capacity provider strategy

const splits: [string, { capacityProvider: string; base?: number; weight?: number }[], number, Record<string, number>, Record<string, number>][] = [
  ['one provider takes everything', [{ capacityProvider: 'A', weight: 1 }], 5, {}, { A: 5 }],
  ['one provider with weight 0 still takes everything', [{ capacityProvider: 'A' }], 3, {}, { A: 3 }],
  ['base first, then by weight (ECS example)', [{ capacityProvider: 'A', base: 1, weight: 1 }, { capacityProvider: 'B', weight: 4 }], 6, {}, { A: 2, B: 4 }],
  ['equal weights alternate', [{ capacityProvider: 'A', weight: 1 }, { capacityProvider: 'B', weight: 1 }], 5, {}, { A: 3, B: 2 }],
  ['base larger than the count', [{ capacityProvider: 'A', base: 10, weight: 0 }, { capacityProvider: 'B', weight: 1 }], 4, {}, { A: 4 }],
  ['weight 0 gets only its base', [{ capacityProvider: 'A', base: 2, weight: 0 }, { capacityProvider: 'B', weight: 1 }], 6, {}, { A: 2, B: 4 }],
  ['a service’s existing tasks count', [{ capacityProvider: 'A', weight: 1 }, { capacityProvider: 'B', weight: 1 }], 2, { A: 3, B: 1 }, { B: 2 }],
  ['existing tasks fill the base', [{ capacityProvider: 'A', base: 2, weight: 1 }, { capacityProvider: 'B', weight: 3 }], 4, { A: 2 }, { B: 3, A: 1 }],
];
for (const [name, items, n, cur, want] of splits) {
  test(`capacity split: ${name}`, () => assert.deepEqual(splitByStrategy(items, n, cur), want));
}

test('capacity split: launch order puts the base first', () => {
  assert.deepEqual(assignProviders([{ capacityProvider: 'B', weight: 4 }, { capacityProvider: 'A', base: 1, weight: 1 }], 3), ['A', 'B', 'B']);
  assert.deepEqual(assignProviders([], 3), []);
});

// ---------------------------------------------------------------------------------------
// Instance selection

test('default selection: cost-effective general purpose, never nano/micro, more than one vCPU', () => {
  for (const arch of ['x86_64', 'arm64'] as const) {
    const types = selectableTypes(undefined, arch);
    assert.ok(types.length > 0);
    for (const t of types) {
      assert.match(t.family, /^m\d/);
      assert.ok(t.vcpu > 1 && !t.burstable && !t.bareMetal && t.generation === 'current' && t.architecture === arch);
      assert.ok(!['nano', 'micro'].includes(t.size));
    }
    for (let i = 1; i < types.length; i++) assert.ok(types[i - 1]!.pricePerHour <= types[i]!.pricePerHour, 'cheapest first');
  }
  const names = selectableTypes(undefined, 'x86_64').map((t) => t.name);
  assert.ok(names.includes('m5a.large') && !names.includes('m5.large') && !names.includes('m7a.large'), names.join(' '));
});

test('selection by instanceRequirements', () => {
  const names = (req: Parameters<typeof selectableTypes>[0]) => selectableTypes(req, 'x86_64').map((t) => t.name);
  assert.deepEqual(names({ vCpuCount: { min: 2, max: 2 }, memoryMiB: { min: 0 }, allowedInstanceTypes: ['c6i.*'] }), ['c6i.large']);
  assert.ok(names({ vCpuCount: { min: 0 }, memoryMiB: { min: 0 }, allowedInstanceTypes: ['t3.*'] }).includes('t3.micro'), 'an allow list decides burstable on its own');
  assert.ok(!names({ vCpuCount: { min: 0 }, memoryMiB: { min: 0 } }).some((n) => n.startsWith('t3')), 'burstable excluded by default');
  assert.ok(names({ vCpuCount: { min: 0 }, memoryMiB: { min: 0 }, burstablePerformance: 'required' }).every((n) => n.startsWith('t3')));
  assert.ok(names({ vCpuCount: { min: 0 }, memoryMiB: { min: 0 }, excludedInstanceTypes: ['m5*', 'c*'] }).every((n) => !n.startsWith('m5') && !n.startsWith('c')));
  assert.ok(names({ vCpuCount: { min: 0 }, memoryMiB: { min: 0 }, cpuManufacturers: ['amd'] }).every((n) => /^[mcr]\da|^t3a/.test(n)));
  assert.ok(names({ vCpuCount: { min: 0 }, memoryMiB: { min: 0 }, memoryGiBPerVCpu: { min: 8 } }).every((n) => /^r/.test(n)));
  assert.ok(names({ vCpuCount: { min: 0 }, memoryMiB: { min: 0 }, bareMetal: 'required' }).every((n) => n.endsWith('.metal')));
  assert.deepEqual(names({ vCpuCount: { min: 0 }, memoryMiB: { min: 0 }, acceleratorCount: { min: 1 } }), []);
});

test('cost-effective pruning and cheapestFitting', () => {
  const pruned = costEffective(INSTANCE_TYPES.filter((t) => t.family === 'm5' || t.family === 'm5a'));
  assert.ok(pruned.every((t) => t.family === 'm5a' || t.bareMetal), pruned.map((t) => t.name).join(' '));
  const types = selectableTypes(undefined, 'x86_64');
  assert.equal(cheapestFitting(types, 3000, 1000)?.name, 'm5a.xlarge');
  assert.equal(cheapestFitting(types, 100, 20000)?.name, 'm5a.2xlarge');
  assert.equal(cheapestFitting(types, 1e6, 1), undefined);
});

// ---------------------------------------------------------------------------------------
// Scale-out

const defaults = selectableTypes(undefined, 'x86_64');
const three = [{ subnetId: 's1', availabilityZone: 'za' }, { subnetId: 's2', availabilityZone: 'zb' }, { subnetId: 's3', availabilityZone: 'zc' }];
const provider = (over: Partial<ScaleOutProvider> = {}): ScaleOutProvider => ({
  name: 'p', types: defaults, subnets: three, singleTaskMode: false, privilegedCapabilities: [], fips: false, ...over,
});
const small = (n: number, over: Partial<TaskRequest> = {}): TaskRequest[] =>
  Array.from({ length: n }, (_, i) => ({ id: `t${i}`, providerName: 'p', cpu: 256, memory: 512, group: 'family:web', ...over }));

test('scale-out: a burst of 30 small tasks packs onto few instances across 3 zones', () => {
  const plan = planScaleOut({ provider: provider(), pending: small(30) });
  assert.deepEqual(plan.unplaceable, []);
  assert.equal(plan.launches.length, 3);
  assert.deepEqual(plan.launches.map((l) => l.availabilityZone).sort(), ['za', 'zb', 'zc']);
  assert.deepEqual(plan.launches.map((l) => l.subnetIndex).sort(), [0, 1, 2]);
  assert.ok(plan.launches.every((l) => l.taskIds.length === 10 && l.instanceType.name === 'm5a.xlarge'));
  assert.equal(plan.hourlyCost, 0.516);
});

test('scale-out: one subnet is pure bin-packing', () => {
  const plan = planScaleOut({ provider: provider({ subnets: [three[0]!] }), pending: small(30) });
  assert.equal(plan.launches.length, 1);
  assert.equal(plan.launches[0]!.instanceType.name, 'm5a.2xlarge');
});

test('scale-out: tasks that do not spread over zones share instances', () => {
  const plan = planScaleOut({ provider: provider(), pending: small(6, { strategy: [{ type: 'binpack', field: 'memory' }] }) });
  assert.equal(plan.launches.length, 1);
});

test('scale-out: spread fills the zone where the group is thinnest', () => {
  const plan = planScaleOut({ provider: provider(), pending: small(1), groupZoneCounts: { 'family:web': { za: 2, zb: 1, zc: 2 } } });
  assert.equal(plan.launches[0]!.availabilityZone, 'zb');
  const per = planScaleOut({ provider: provider(), pending: small(1), instancesPerSubnet: { s1: 3, s2: 1, s3: 0 } });
  assert.equal(per.launches[0]!.subnetId, 's3');
});

test('scale-out: single-task mode gives one instance per task, sized to it', () => {
  const plan = planScaleOut({
    provider: provider({ singleTaskMode: true, subnets: [three[0]!] }),
    pending: [{ id: 'a', cpu: 256, memory: 512 }, { id: 'b', cpu: 3000, memory: 1000 }, { id: 'c', cpu: 100, memory: 20000 }],
  });
  assert.deepEqual(plan.launches.map((l) => [l.taskIds.join(), l.instanceType.name]), [['a', 'm5a.large'], ['b', 'm5a.xlarge'], ['c', 'm5a.2xlarge']]);
});

test('scale-out: distinctInstance, host ports and ENIs limit what shares an instance', () => {
  const one = provider({ subnets: [three[0]!] });
  assert.equal(planScaleOut({ provider: one, pending: small(4, { constraints: [{ type: 'distinctInstance' }] }) }).launches.length, 4);
  assert.equal(planScaleOut({ provider: one, pending: small(3, { tcpPorts: ['80'] }) }).launches.length, 3);
  const large = provider({ subnets: [three[0]!], types: [instanceType('m5a.large')!] });
  const plan = planScaleOut({ provider: large, pending: small(10, { awsvpc: true, cpu: 64, memory: 64 }) });
  assert.equal(plan.launches.length, 5, 'm5a.large gives tasks 2 network interfaces');
});

test('scale-out: maxLaunches defers the rest', () => {
  const plan = planScaleOut({ provider: provider({ subnets: [three[0]!] }), pending: small(4, { constraints: [{ type: 'distinctInstance' }] }), maxLaunches: 2 });
  assert.equal(plan.launches.length, 2);
  assert.deepEqual(plan.deferred.sort(), ['t2', 't3']);
});

test('scale-out: chooses the cheapest types for the shape of the work', () => {
  const types = selectableTypes({ vCpuCount: { min: 2, max: 16 }, memoryMiB: { min: 0 }, allowedInstanceTypes: ['m5a.*', 'r6a.*'] }, 'x86_64');
  const plan = planScaleOut({ provider: provider({ types, subnets: [three[0]!] }), pending: small(10, { memory: 15000 }) });
  assert.ok(plan.launches.every((l) => l.instanceType.family === 'r6a'), plan.launches.map((l) => l.instanceType.name).join());
  assert.equal(plan.hourlyCost, 1.134);
});

test('scale-out: tasks that can never fit are reported at once, with why', () => {
  const plan = planScaleOut({
    provider: provider(),
    pending: [
      { id: 'huge', cpu: 512, memory: 500_000 },
      { id: 'arm', cpu: 256, memory: 512, cpuArchitecture: 'ARM64' },
      { id: 'cap', cpu: 256, memory: 512, privilegedCapabilities: ['CAP_SYS_ADMIN'] },
      { id: 'host', cpu: 256, memory: 512, hostAccess: ['pidMode:host', 'devices'] },
      { id: 'type', cpu: 256, memory: 512, constraints: [{ type: 'memberOf', expression: 'attribute:ecs.instance-type == c5.large' }] },
      { id: 'subnet', cpu: 256, memory: 512, subnets: ['s9'] },
      { id: 'attr', cpu: 256, memory: 512, requiresAttributes: [{ name: 'ecs.capability.efs' }] },
      { id: 'ok', cpu: 256, memory: 512 },
    ],
  });
  const why = Object.fromEntries(plan.unplaceable.map((u) => [u.taskId, u]));
  assert.deepEqual(Object.keys(why).sort(), ['arm', 'attr', 'cap', 'host', 'huge', 'subnet', 'type']);
  assert.equal(why.huge!.reason, 'RESOURCE:MEMORY');
  assert.match(stoppedReason(why.huge!), /RESOURCE:MEMORY: the task needs .* more than the largest instance type/);
  assert.equal(why.arm!.reason, 'MISSING ATTRIBUTE');
  assert.match(why.arm!.message, /requires runtimePlatform.cpuArchitecture ARM64, but capacity provider p can only launch X86_64 instances/);
  assert.equal(why.cap!.reason, 'PRIVILEGED_CAPABILITY');
  assert.match(why.cap!.message, /CAP_SYS_ADMIN, which capacity provider p does not allow\. Allow it with the tag berth:privileged-capabilities/);
  assert.equal(why.host!.reason, 'HOST_ACCESS');
  assert.match(why.host!.message, /host access devices, pidMode:host, which capacity provider p does not allow.*berth:host-access=devices\+pidMode:host/);
  assert.equal(planScaleOut({ provider: provider({ hostAccess: ['pidMode:host', 'devices'] }), pending: [{ id: 'h', cpu: 1, memory: 1, hostAccess: ['pidMode:host'] }] }).unplaceable.length, 0);
  assert.equal(why.type!.reason, 'MEMBER_OF');
  assert.match(why.subnet!.message, /None of the task's subnets \(s9\) belongs to capacity provider p/);
  assert.match(why.attr!.message, /lacks the attribute ecs.capability.efs/);
  assert.deepEqual(plan.launches.flatMap((l) => l.taskIds), ['ok']);
  const withAttr = planScaleOut({ provider: provider({ attributes: [{ name: 'ecs.capability.efs' }] }), pending: [{ id: 'attr', cpu: 1, memory: 1, requiresAttributes: [{ name: 'ecs.capability.efs' }] }] });
  assert.equal(withAttr.unplaceable.length, 0);
  const fips = planScaleOut({ provider: provider({ fips: true }), pending: [{ id: 'f', cpu: 1, memory: 1, fipsRequired: true, cpuArchitecture: 'ARM64' }] });
  assert.equal(fips.unplaceable[0]!.reason, 'FIPS');
  const none = planScaleOut({ provider: provider({ types: [] }), pending: small(1) });
  assert.equal(none.unplaceable[0]!.reason, 'NO_INSTANCE_TYPE');
});

test('scale-out: packs tighter than first-fit-decreasing on the benchmark distribution', () => {
  const m = instanceType('m5a.2xlarge')!;
  const tasks = makeTasks(3000, 7, { constraints: false, awsvpc: 0 });
  const plan = planScaleOut({ provider: provider({ types: [m], subnets: [three[0]!] }), pending: tasks });
  const bt: BinType = { name: m.name, cpu: registeredCpu(m), mem: registeredMemory(m), eni: 3, price: m.pricePerHour, ref: m };
  const items: PackItem[] = tasks.map((t) => ({ id: t.id, cpu: t.cpu, mem: t.memory, eni: 0, tcp: [], udp: [], distinct: '' }));
  const lb = packingLowerBound(items, bt);
  const ffd = firstFitDecreasing(items, bt).length;
  assert.ok(plan.launches.length <= ffd, `planner ${plan.launches.length} vs FFD ${ffd}`);
  assert.ok(plan.launches.length <= Math.ceil(lb * 1.05), `planner ${plan.launches.length} vs lower bound ${lb}`);
});

// ---------------------------------------------------------------------------------------
// Scale-in

const NOW = 10_000_000;
const snap = (id: string, usedCpu: number, tasks: number, over: Partial<InstanceSnapshot> = {}): InstanceSnapshot => ({
  id, providerName: 'p', status: 'ACTIVE', agentConnected: true, registeredCpu: 4096, registeredMemory: 16384,
  usedCpu, usedMemory: usedCpu * 2, eniMax: 3, eniUsed: 0, runningTasksCount: tasks, singleTask: false,
  availabilityZone: 'za', subnetId: 's1', instanceType: 'm5a.xlarge', architecture: 'X86_64', privilegedCapabilities: [], fips: false,
  registeredAt: 0, ...over,
});
const svcTask = (id: string, cpu = 512, over: Partial<TaskRequest> = {}) => ({ request: { id, providerName: 'p', cpu, memory: cpu * 2, group: 'service:web', ...over }, standalone: false });

function fleet(over: { under?: Partial<ScaleInInstance>; busyCpu?: number } = {}): ScaleInInstance[] {
  return [
    { snapshot: snap('idle-old', 0, 0), tasks: [], idleSince: NOW - 400_000 },
    { snapshot: snap('idle-new', 0, 0), tasks: [], idleSince: NOW - 100_000 },
    { snapshot: snap('busy', over.busyCpu ?? 3072, 6), tasks: Array.from({ length: 6 }, (_, i) => svcTask(`b${i}`)) },
    { snapshot: snap('under', 512, 1), tasks: [svcTask('u0')], underutilisedSince: NOW - 400_000, ...over.under },
  ];
}

test('scale-in: scaleInAfter null means 300 s, -1 off, 0–3600 as given', () => {
  assert.equal(scaleInDelayMs(null), 300_000);
  assert.equal(scaleInDelayMs(undefined), 300_000);
  assert.equal(scaleInDelayMs(-1), undefined);
  assert.equal(scaleInDelayMs(0), 0);
  assert.equal(scaleInDelayMs(3600), 3_600_000);
  const off = decideScaleIn({ instances: fleet(), scaleInAfter: -1, now: NOW });
  assert.deepEqual([off.deregister, off.drain, off.idle, off.underutilised], [[], [], [], []]);
});

test('scale-in: idle instances go after scaleInAfter; underutilised ones are drained when their tasks fit elsewhere', () => {
  const d = decideScaleIn({ instances: fleet(), scaleInAfter: null, now: NOW });
  assert.deepEqual(d.deregister.map((x) => x.instanceId), ['idle-old']);
  assert.deepEqual(d.idle, ['idle-old', 'idle-new']);
  assert.deepEqual(d.underutilised, ['under']);
  assert.deepEqual(d.drain.map((x) => [x.instanceId, x.moves]), [['under', [{ taskId: 'u0', toInstanceId: 'busy' }]]]);
  assert.equal(d.nextCheckAt, NOW - 100_000 + 300_000);
});

test('scale-in: a task start resets the timers', () => {
  const instances = fleet({ under: { lastTaskStartedAt: NOW - 10_000 } });
  instances[0]!.lastTaskStartedAt = NOW - 10_000;
  const d = decideScaleIn({ instances, scaleInAfter: 60, now: NOW });
  assert.deepEqual(d.deregister.map((x) => x.instanceId), ['idle-new']);
  assert.deepEqual(d.drain, []);
  assert.deepEqual(d.underutilised, ['under']);
  assert.equal(d.nextCheckAt, NOW + 50_000);
});

test('scale-in: standalone or protected tasks, or no room elsewhere, keep an instance', () => {
  const standalone = fleet({ under: { tasks: [{ ...svcTask('u0'), standalone: true }] } });
  assert.deepEqual(decideScaleIn({ instances: standalone, scaleInAfter: 0, now: NOW }).underutilised, []);
  const prot = fleet({ under: { tasks: [{ ...svcTask('u0'), protected: true }] } });
  assert.deepEqual(decideScaleIn({ instances: prot, scaleInAfter: 0, now: NOW }).underutilised, []);
  // busy has 512 CPU units free but the task needs 1024; idle instances are not targets.
  const full = fleet({ busyCpu: 3584, under: { tasks: [svcTask('u0', 1024)], snapshot: snap('under', 1024, 1) } });
  const d = decideScaleIn({ instances: full, scaleInAfter: 0, now: NOW });
  assert.deepEqual(d.underutilised, []);
  assert.deepEqual(d.drain, []);
  // Constraints count: a distinctInstance task cannot join its group on busy.
  const distinct = fleet({ under: { tasks: [svcTask('u0', 512, { constraints: [{ type: 'distinctInstance' }] })] } });
  distinct[2]!.snapshot = snap('busy', 3072, 6, { taskGroups: { 'service:web': 6 } });
  assert.deepEqual(decideScaleIn({ instances: distinct, scaleInAfter: 0, now: NOW }).underutilised, []);
});

test('scale-in: no drains while tasks wait for capacity; at most maxDrains; DRAINING and empty goes', () => {
  const d = decideScaleIn({ instances: fleet(), scaleInAfter: 0, now: NOW, pendingTasks: 2 });
  assert.deepEqual(d.drain, []);
  assert.deepEqual(d.underutilised, ['under']);
  const two = [...fleet(), { snapshot: snap('under2', 256, 1), tasks: [svcTask('v0', 256)], underutilisedSince: 0 }];
  const d2 = decideScaleIn({ instances: two, scaleInAfter: 0, now: NOW });
  assert.deepEqual(d2.drain.map((x) => x.instanceId), ['under2']);
  assert.deepEqual(d2.underutilised.sort(), ['under', 'under2']);
  const d3 = decideScaleIn({ instances: two, scaleInAfter: 0, now: NOW, maxDrains: 2 });
  assert.deepEqual(d3.drain.map((x) => x.instanceId), ['under2', 'under']);
  const draining = decideScaleIn({ instances: [{ snapshot: snap('d', 0, 0, { status: 'DRAINING' }), tasks: [] }], scaleInAfter: 3600, now: NOW });
  assert.deepEqual(draining.deregister.map((x) => x.instanceId), ['d']);
});
