import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { instanceType, ecsArchitecture } from '../../src/domain/instance-types.js';
import {
  PlacementEngine, assignProviders, compileQuery, planScaleOut, privilegedOnly, QueryError, queryTarget,
  registeredCpu, registeredMemory, taskEnis,
  type InstanceSnapshot, type PlacementStrategy, type TaskRequest,
} from '../../src/placement/index.js';
import { packItems, packingLowerBound, type BinType, type PackItem } from '../../src/placement/packing.js';

const ZONES = ['z1', 'z2', 'z3'];
const CAPS = ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_BPF'];
const STATIC_EXPRS = ['attribute:ecs.availability-zone in [z1, z2]', 'attribute:ecs.instance-type =~ m5.*', 'attribute:rack exists', 'attribute:ecs.cpu-architecture == arm64', 'not(attribute:rack == r2)'];
const EXPRS = [...STATIC_EXPRS, 'not(task:group == g1)', 'runningTasksCount < 3'];
const STRATEGIES: (PlacementStrategy[] | undefined)[] = [
  undefined,
  [{ type: 'binpack', field: 'cpu' }],
  [{ type: 'binpack', field: 'memory' }],
  [{ type: 'spread', field: 'attribute:ecs.availability-zone' }, { type: 'binpack', field: 'memory' }],
  [{ type: 'binpack', field: 'memory' }, { type: 'binpack', field: 'cpu' }],
  [{ type: 'random' }],
  [{ type: 'spread', field: 'instanceId' }],
  [{ type: 'spread', field: 'attribute:rack' }, { type: 'binpack', field: 'cpu' }],
];
const TYPES = ['m5a.large', 'm5.xlarge', 'c6a.large', 'm6g.large'];

const instanceArb = fc.record({
  provider: fc.constantFrom('p1', 'p2'),
  status: fc.constantFrom('ACTIVE', 'ACTIVE', 'ACTIVE', 'ACTIVE', 'DRAINING', 'REGISTERING'),
  connected: fc.constantFrom(true, true, true, true, false),
  regCpu: fc.constantFrom(1024, 2048, 4096),
  regMem: fc.constantFrom(2048, 4096, 8192),
  usedPct: fc.integer({ min: 0, max: 100 }),
  ports: fc.subarray(['80', '443', '8080']),
  udp: fc.subarray(['53']),
  eniMax: fc.integer({ min: 0, max: 3 }),
  eniUsedPct: fc.integer({ min: 0, max: 100 }),
  groups: fc.dictionary(fc.constantFrom('g1', 'g2', 'g3'), fc.integer({ min: 1, max: 2 })),
  singleTask: fc.constantFrom(false, false, false, true),
  zone: fc.constantFrom(...ZONES),
  type: fc.constantFrom(...TYPES),
  arch: fc.constantFrom('X86_64', 'X86_64', 'ARM64') as fc.Arbitrary<'X86_64' | 'ARM64'>,
  rack: fc.option(fc.constantFrom('r1', 'r2'), { nil: undefined }),
  caps: fc.subarray(CAPS),
  fips: fc.constantFrom(false, false, true),
});

type InstX = typeof instanceArb extends fc.Arbitrary<infer U> ? U : never;
function toSnapshots(xs: InstX[]): InstanceSnapshot[] {
  return xs.map((x, i) => {
    const tasks = Object.values(x.groups).reduce((a, b) => a + b, 0);
    return {
      id: `i${i}`, ec2InstanceId: `i-${i}`, providerName: x.provider, status: x.status, agentConnected: x.connected,
      registeredCpu: x.regCpu, registeredMemory: x.regMem,
      usedCpu: Math.floor((x.regCpu * x.usedPct) / 100), usedMemory: Math.floor((x.regMem * x.usedPct) / 100),
      tcpPortsUsed: x.ports, udpPortsUsed: x.udp, eniMax: x.eniMax, eniUsed: Math.floor((x.eniMax * x.eniUsedPct) / 100),
      runningTasksCount: tasks, taskGroups: x.groups, singleTask: x.singleTask,
      availabilityZone: x.zone, subnetId: `s-${x.zone}`, instanceType: x.type, architecture: x.arch,
      attributes: (x.rack ? { rack: x.rack } : {}) as Record<string, string>, privilegedCapabilities: x.caps, fips: x.fips, registeredAt: 0,
    };
  });
}

const taskArb = (exprs: string[]) => fc.record({
  provider: fc.constantFrom('p1', 'p2', undefined),
  cpu: fc.constantFrom(0, 128, 256, 512, 1024, 2048),
  mem: fc.constantFrom(128, 512, 1024, 4096),
  tcp: fc.subarray(['80', '8080']),
  udp: fc.subarray(['53']),
  awsvpc: fc.boolean(),
  arch: fc.constantFrom(undefined, 'X86_64', 'ARM64') as fc.Arbitrary<'X86_64' | 'ARM64' | undefined>,
  caps: fc.subarray([...CAPS, 'CAP_CHOWN']),
  memberOf: fc.subarray(exprs, { maxLength: 2 }),
  distinct: fc.boolean(),
  strategy: fc.constantFrom(...STRATEGIES),
  group: fc.constantFrom('g1', 'g2', 'g3', ''),
  fips: fc.constantFrom(false, false, true),
  subnets: fc.option(fc.subarray(ZONES.map((z) => `s-${z}`), { minLength: 1 }), { nil: undefined }),
  pinned: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined, freq: 8 }),
});

type TaskX = ReturnType<typeof taskArb> extends fc.Arbitrary<infer U> ? U : never;
function toTasks(xs: TaskX[]): TaskRequest[] {
  return xs.map((x, i) => ({
    id: `t${i}`, providerName: x.provider, cpu: x.cpu, memory: x.mem, tcpPorts: x.awsvpc ? [] : x.tcp, udpPorts: x.awsvpc ? [] : x.udp,
    awsvpc: x.awsvpc, cpuArchitecture: x.arch, privilegedCapabilities: x.caps, group: x.group, fipsRequired: x.fips,
    constraints: [...x.memberOf.map((expression) => ({ type: 'memberOf', expression })), ...(x.distinct ? [{ type: 'distinctInstance' }] : [])],
    strategy: x.strategy, subnets: x.subnets, pinnedInstanceId: x.pinned === undefined ? undefined : `i${x.pinned}`,
  }));
}

const clusterArb = fc.array(instanceArb, { minLength: 0, maxLength: 14 });
const tasksArb = fc.array(taskArb(EXPRS), { minLength: 1, maxLength: 40 });

test('property: the indexed engine chooses exactly what the reference pipeline chooses', () => {
  fc.assert(fc.property(clusterArb, tasksArb, (cx, tx) => {
    const snaps = toSnapshots(cx);
    const fast = new PlacementEngine(snaps);
    const ref = new PlacementEngine(snaps, { indexed: false });
    for (const t of toTasks(tx)) assert.deepEqual(fast.placeAndReserve(t), ref.placeAndReserve(t), `task ${t.id}`);
  }), { numRuns: 400 });
});

test('property: placement never over-commits, never breaks a gate, never doubles up a single-task instance', () => {
  fc.assert(fc.property(clusterArb, tasksArb, (cx, tx) => {
    const snaps = toSnapshots(cx);
    const engine = new PlacementEngine(snaps);
    const placed = new Map<string, TaskRequest[]>();
    for (const t of toTasks(tx)) {
      const d = engine.placeAndReserve(t);
      if (!d.placed) continue;
      const s = d.instance;
      const before = placed.get(s.id) ?? [];
      // Gates, checked against the snapshot (not the engine's state).
      assert.ok(s.status === 'ACTIVE' && s.agentConnected, 'only ACTIVE, connected instances');
      if (!t.pinnedInstanceId && t.providerName) assert.equal(s.providerName, t.providerName);
      for (const c of privilegedOnly(t.privilegedCapabilities)) assert.ok(s.privilegedCapabilities.includes(c), `capability ${c} without opt-in`);
      assert.ok(!(s.fips && t.cpuArchitecture === 'ARM64'), 'ARM64 on a FIPS instance');
      assert.ok(!t.fipsRequired || s.fips, 'FIPS provider task on a non-FIPS instance');
      if (t.cpuArchitecture) assert.equal(s.architecture, t.cpuArchitecture);
      if (t.subnets) assert.ok(t.subnets.includes(s.subnetId));
      if (s.singleTask) assert.ok(s.runningTasksCount === 0 && before.length === 0, 'two tasks on a single-task instance');
      const target = queryTarget({ ...s, taskGroups: {} });
      for (const c of t.constraints ?? []) {
        if (c.type === 'memberOf' && STATIC_EXPRS.includes(c.expression!)) assert.ok(compileQuery(c.expression!)(target), c.expression);
        // A task always has a group on ECS (family:NAME by default); '' means none, and the constraint is vacuous.
        if (c.type === 'distinctInstance' && t.group) assert.ok(!(s.taskGroups?.[t.group!]) && !before.some((b) => b.group === t.group), 'distinctInstance');
      }
      before.push(t);
      placed.set(s.id, before);
    }
    for (const s of snaps) {
      const ts = placed.get(s.id) ?? [];
      assert.ok(ts.reduce((a, t) => a + t.cpu, 0) <= s.registeredCpu - s.usedCpu, `cpu over-committed on ${s.id}`);
      assert.ok(ts.reduce((a, t) => a + t.memory, 0) <= s.registeredMemory - s.usedMemory, `memory over-committed on ${s.id}`);
      assert.ok(ts.filter((t) => t.awsvpc).length <= s.eniMax - s.eniUsed, `ENIs over-committed on ${s.id}`);
      for (const [proto, used] of [['tcp', s.tcpPortsUsed ?? []], ['udp', s.udpPortsUsed ?? []]] as const) {
        const all = [...used, ...ts.flatMap((t) => (proto === 'tcp' ? t.tcpPorts : t.udpPorts) ?? [])];
        assert.equal(new Set(all).size, all.length, `${proto} port used twice on ${s.id}`);
      }
    }
  }), { numRuns: 400 });
});

const providerArb = fc.record({
  types: fc.subarray(['m5a.large', 'm5a.xlarge', 'm5a.2xlarge', 'c6a.large', 'r6a.large', 'm6g.large', 't3.medium'], { minLength: 1 }),
  zones: fc.subarray(ZONES, { minLength: 1 }),
  singleTask: fc.constantFrom(false, false, true),
  caps: fc.subarray(CAPS),
  fips: fc.constantFrom(false, false, true),
});

test('property: the scale-out plan fits every placeable task, and the others can run nowhere', () => {
  fc.assert(fc.property(providerArb, fc.array(taskArb(STATIC_EXPRS), { minLength: 1, maxLength: 40 }), (px, tx) => {
    const types = px.types.map((n) => instanceType(n)!).sort((a, b) => a.pricePerHour - b.pricePerHour);
    const provider = {
      name: 'p', types, subnets: px.zones.map((z) => ({ subnetId: `s-${z}`, availabilityZone: z })),
      singleTaskMode: px.singleTask, privilegedCapabilities: px.caps, fips: px.fips,
    };
    const tasks = toTasks(tx).map((t) => ({ ...t, providerName: 'p', pinnedInstanceId: undefined, fipsRequired: px.fips || undefined }));
    const plan = planScaleOut({ provider, pending: tasks });
    const where = new Map<string, number>();
    plan.launches.forEach((l, i) => l.taskIds.forEach((id) => { assert.ok(!where.has(id), `${id} planned twice`); where.set(id, i); }));
    const unplaceable = new Set(plan.unplaceable.map((u) => u.taskId));
    assert.deepEqual(plan.deferred, []);
    for (const t of tasks) assert.ok(where.has(t.id) !== unplaceable.has(t.id), `${t.id} is neither planned nor reported (or both)`);
    // Every planned instance, as a snapshot, takes exactly its tasks under the real filters.
    const snaps: InstanceSnapshot[] = plan.launches.map((l, i) => ({
      id: `new${i}`, providerName: 'p', status: 'ACTIVE', agentConnected: true,
      registeredCpu: registeredCpu(l.instanceType), registeredMemory: registeredMemory(l.instanceType), usedCpu: 0, usedMemory: 0,
      eniMax: taskEnis(l.instanceType), eniUsed: 0, runningTasksCount: 0, singleTask: px.singleTask,
      availabilityZone: l.availabilityZone, subnetId: l.subnetId, instanceType: l.instanceType.name,
      architecture: ecsArchitecture(l.instanceType.architecture), privilegedCapabilities: px.caps, fips: px.fips,
    }));
    if (px.singleTask) assert.ok(plan.launches.every((l) => l.taskIds.length === 1));
    const engine = new PlacementEngine(snaps);
    for (const t of tasks) {
      const i = where.get(t.id);
      if (i === undefined) continue;
      const d = engine.placeAndReserve({ ...t, pinnedInstanceId: `new${i}` });
      assert.ok(d.placed, `${t.id} does not fit its planned instance: ${d.placed ? '' : d.failure.message}`);
    }
    // A task reported unplaceable fits no launchable (type, subnet) even alone.
    const options: InstanceSnapshot[] = [];
    for (const ty of types) for (const s of provider.subnets) {
      options.push({ ...snaps[0] ?? {} as InstanceSnapshot, id: `opt${options.length}`, providerName: 'p', status: 'ACTIVE', agentConnected: true,
        registeredCpu: registeredCpu(ty), registeredMemory: registeredMemory(ty), usedCpu: 0, usedMemory: 0, eniMax: taskEnis(ty), eniUsed: 0,
        runningTasksCount: 0, singleTask: false, availabilityZone: s.availabilityZone, subnetId: s.subnetId, instanceType: ty.name,
        architecture: ecsArchitecture(ty.architecture), privilegedCapabilities: px.caps, fips: px.fips });
    }
    for (const t of tasks.filter((x) => unplaceable.has(x.id))) {
      const d = new PlacementEngine(options).place(t);
      assert.ok(!d.placed, `${t.id} was reported unplaceable but fits ${d.placed ? d.instanceId : ''}`);
    }
  }), { numRuns: 250 });
});

test('property: packing puts every item in exactly one bin, within capacity, never below the lower bound', () => {
  const itemArb = fc.record({
    cpu: fc.integer({ min: 1, max: 4096 }), mem: fc.integer({ min: 1, max: 16000 }), eni: fc.constantFrom(0, 0, 1),
    port: fc.option(fc.constantFrom('80', '81'), { nil: undefined }), distinct: fc.constantFrom(false, false, false, true),
    group: fc.constantFrom('', 'g', 'h'),
  });
  fc.assert(fc.property(fc.array(itemArb, { minLength: 1, maxLength: 120 }), (xs) => {
    const type: BinType = { name: 't', cpu: 4096, mem: 16000, eni: 3, price: 1, ref: null };
    const items: PackItem[] = xs.map((x, i) => ({ id: `x${i}`, cpu: x.cpu, mem: x.mem, eni: x.eni, tcp: x.port ? [x.port] : [], udp: [], distinct: x.distinct && x.group ? x.group : '', group: x.group }));
    const bins = packItems(items, [type]);
    const seen = bins.flatMap((b) => b.items.map((i) => i.id)).sort();
    assert.deepEqual(seen, items.map((i) => i.id).sort());
    for (const b of bins) {
      assert.ok(b.items.reduce((a, i) => a + i.cpu, 0) <= type.cpu && b.items.reduce((a, i) => a + i.mem, 0) <= type.mem);
      assert.ok(b.items.reduce((a, i) => a + i.eni, 0) <= type.eni);
      const ports = b.items.flatMap((i) => i.tcp);
      assert.equal(new Set(ports).size, ports.length);
      for (const d of b.items.filter((i) => i.distinct !== '')) assert.equal(b.items.filter((i) => i.group === d.distinct).length, 1, 'a distinctInstance item shares with its group');
    }
    assert.ok(bins.length >= packingLowerBound(items, type));
  }), { numRuns: 300 });
});

test('property: capacity split assigns every task, base first, weight-0 providers only their base', () => {
  const itemsArb = fc.uniqueArray(fc.record({ capacityProvider: fc.constantFrom('A', 'B', 'C', 'D'), weight: fc.integer({ min: 0, max: 5 }) }), { selector: (x) => x.capacityProvider, minLength: 1, maxLength: 4 });
  fc.assert(fc.property(itemsArb, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 30 }), (items0, base, n) => {
    const items = items0.map((x, i) => ({ ...x, base: i === 0 ? base : 0 }));
    const seq = assignProviders(items, n);
    assert.equal(seq.length, n);
    const firstBase = Math.min(base, n);
    assert.ok(seq.slice(0, firstBase).every((p) => p === items[0]!.capacityProvider));
    if (items.some((x) => x.weight > 0)) {
      for (const x of items) if (x.weight === 0) assert.ok(seq.filter((p) => p === x.capacityProvider).length <= (x.base ?? 0));
    }
  }), { numRuns: 300 });
});

test('property: the query parser returns a function or a QueryError, never anything else', () => {
  const pieces = fc.constantFrom('attribute:a', 'task:group', 'runningTasksCount', '==', '!=', '>', 'in', '[', ']', ',', '(', ')', 'and', 'or', 'not', '!', 'exists', '=~', 'x', '1', '"q"', ' ');
  fc.assert(fc.property(fc.oneof(fc.string(), fc.array(pieces, { maxLength: 12 }).map((a) => a.join(' '))), (s) => {
    try {
      const q = compileQuery(s);
      assert.equal(typeof q(queryTarget({ attributes: { a: '1' }, taskGroups: ['x'], runningTasksCount: 1 })), 'boolean');
    } catch (e) {
      assert.ok(e instanceof QueryError, `${JSON.stringify(s)} threw ${(e as Error).name}: ${(e as Error).message}`);
    }
  }), { numRuns: 2000 });
});
