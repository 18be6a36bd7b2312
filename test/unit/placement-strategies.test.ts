import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_STRATEGY, PlacementEngine, normalizeStrategies, spreadsOverZones, strategyProblem,
  type InstanceSnapshot, type PlacementStrategy, type TaskRequest,
} from '../../src/placement/index.js';
import { fastPlan } from '../../src/placement/strategies.js';

const inst = (id: string, az: string, freeCpu: number, freeMem: number, over: Partial<InstanceSnapshot> = {}): InstanceSnapshot => ({
  id, providerName: 'p', status: 'ACTIVE', agentConnected: true, registeredCpu: 4096, registeredMemory: 8192,
  usedCpu: 4096 - freeCpu, usedMemory: 8192 - freeMem, eniMax: 3, eniUsed: 0, runningTasksCount: 0, singleTask: false,
  availabilityZone: az, subnetId: `s-${az}`, instanceType: 'm5a.xlarge', architecture: 'X86_64', privilegedCapabilities: [], fips: false, ...over,
});
const task = (id: string, over: Partial<TaskRequest> = {}): TaskRequest => ({ id, providerName: 'p', cpu: 256, memory: 256, group: 'service:web', ...over });

/** Places tasks one after the other with both engines; returns the chosen ids (they must agree). */
function sequence(instances: InstanceSnapshot[], tasks: TaskRequest[]): string[] {
  const a = new PlacementEngine(instances);
  const b = new PlacementEngine(instances, { indexed: false });
  return tasks.map((t) => {
    const x = a.placeAndReserve(t);
    const y = b.placeAndReserve(t);
    const xi = x.placed ? x.instanceId : `!${x.failure.reason}`;
    const yi = y.placed ? y.instanceId : `!${y.failure.reason}`;
    assert.equal(xi, yi, `indexed and reference differ on ${t.id}`);
    return xi;
  });
}

const binpackCpu: PlacementStrategy[] = [{ type: 'binpack', field: 'cpu' }];
const binpackMem: PlacementStrategy[] = [{ type: 'binpack', field: 'memory' }];

const table: [string, InstanceSnapshot[], TaskRequest[], string[]][] = [
  ['binpack cpu: least remaining CPU that fits',
    [inst('a', 'z1', 4096, 8192), inst('b', 'z1', 512, 8192), inst('c', 'z1', 1024, 1000)],
    [task('1', { strategy: binpackCpu }), task('2', { strategy: binpackCpu }), task('3', { strategy: binpackCpu })],
    ['b', 'b', 'c']],
  ['binpack memory: least remaining memory that fits',
    [inst('a', 'z1', 4096, 8192), inst('b', 'z1', 4096, 600), inst('c', 'z1', 300, 300)],
    [task('1', { strategy: binpackMem }), task('2', { strategy: binpackMem }), task('3', { strategy: binpackMem })],
    ['c', 'b', 'b']],
  ['binpack ties go to the earliest instance',
    [inst('a', 'z1', 1024, 1024), inst('b', 'z1', 1024, 1024)],
    [task('1', { strategy: binpackCpu })],
    ['a']],
  ['default: spread over zones, then binpack within the zone',
    [inst('a1', 'z1', 4096, 8192), inst('a2', 'z1', 1024, 8192), inst('b1', 'z2', 4096, 8192), inst('c1', 'z3', 2048, 8192)],
    ['1', '2', '3', '4', '5', '6'].map((i) => task(i)),
    ['a2', 'c1', 'b1', 'a2', 'c1', 'b1']],
  ['default: a single zone is pure bin-packing',
    [inst('a', 'z1', 4096, 8192), inst('b', 'z1', 1024, 8192)],
    ['1', '2', '3', '4', '5'].map((i) => task(i)),
    ['b', 'b', 'b', 'b', 'a']],
  ['default: spread is per task group',
    [inst('a', 'z1', 4096, 8192), inst('b', 'z2', 2048, 8192)],
    [task('1'), task('2', { group: 'service:api' }), task('3'), task('4', { group: 'service:api' })],
    ['b', 'b', 'a', 'a']],
  ['default: a zone where nothing fits is skipped',
    [inst('a', 'z1', 128, 8192), inst('b', 'z2', 4096, 8192)],
    [task('1'), task('2')],
    ['b', 'b']],
  ['spread(instanceId) spreads the group over instances',
    [inst('a', 'z1', 4096, 8192), inst('b', 'z1', 4096, 8192), inst('c', 'z1', 4096, 8192)],
    ['1', '2', '3', '4'].map((i) => task(i, { strategy: [{ type: 'spread', field: 'instanceId' }] })),
    ['a', 'b', 'c', 'a']],
  ['spread(custom attribute) then binpack memory',
    [inst('a', 'z1', 4096, 8192, { attributes: { rack: 'r1' } }), inst('b', 'z1', 4096, 4000, { attributes: { rack: 'r2' } }), inst('c', 'z1', 4096, 2000, { attributes: { rack: 'r2' } })],
    ['1', '2', '3'].map((i) => task(i, { strategy: [{ type: 'spread', field: 'attribute:rack' }, { type: 'binpack', field: 'memory' }] })),
    ['c', 'a', 'c']],
  ['binpack memory then cpu (fast path with tie-break)',
    [inst('a', 'z1', 2048, 1024), inst('b', 'z1', 1024, 1024), inst('c', 'z2', 512, 4096)],
    ['1', '2'].map((i) => task(i, { strategy: [{ type: 'binpack', field: 'memory' }, { type: 'binpack', field: 'cpu' }] })),
    ['b', 'b']],
];

for (const [name, instances, tasks, want] of table) {
  test(`strategy: ${name}`, () => assert.deepEqual(sequence(instances, tasks), want));
}

test('random is seeded by the task id: replayable, and different ids spread out', () => {
  const instances = Array.from({ length: 20 }, (_, i) => inst(`i${i}`, 'z1', 4096, 8192));
  const rnd: PlacementStrategy[] = [{ type: 'random' }];
  const first = sequence(instances, [task('same', { strategy: rnd })]);
  const again = sequence(instances, [task('same', { strategy: rnd })]);
  assert.deepEqual(first, again);
  const many = new Set(sequence(instances, Array.from({ length: 40 }, (_, i) => task(`t${i}`, { strategy: rnd }))));
  assert.ok(many.size >= 10, `random placed 40 tasks on only ${many.size} instances`);
});

test('the indexed fast path serves the default and binpack lists, the reference the rest', () => {
  assert.deepEqual(fastPlan(normalizeStrategies(undefined)), { spreadAz: true, primary: 0, tieOther: true });
  assert.deepEqual(fastPlan(normalizeStrategies(binpackMem)), { spreadAz: false, primary: 1, tieOther: false });
  assert.deepEqual(fastPlan(normalizeStrategies([{ type: 'spread', field: 'attribute:ecs.availability-zone' }, { type: 'binpack', field: 'memory' }])), { spreadAz: true, primary: 1, tieOther: false });
  assert.equal(fastPlan(normalizeStrategies([{ type: 'random' }])), undefined);
  assert.equal(fastPlan(normalizeStrategies([{ type: 'spread', field: 'instanceId' }])), undefined);
  const e = new PlacementEngine([inst('a', 'z1', 4096, 8192)]);
  e.place(task('1'));
  e.place(task('2', { strategy: [{ type: 'random' }] }));
  assert.equal(e.stats.indexed, 1);
  assert.equal(e.stats.scanned, 1);
});

test('strategy validation and normalisation', () => {
  assert.equal(strategyProblem([]), undefined);
  assert.equal(strategyProblem([...DEFAULT_STRATEGY]), undefined);
  assert.equal(strategyProblem([{ type: 'spread', field: 'host' }, { type: 'random' }]), undefined);
  assert.match(strategyProblem(Array.from({ length: 6 }, () => ({ type: 'random' })))!, /at most 5/);
  assert.match(strategyProblem([{ type: 'binpack', field: 'disk' }])!, /cpu or memory/);
  assert.match(strategyProblem([{ type: 'spread' }])!, /needs a field/);
  assert.match(strategyProblem([{ type: 'spread', field: 'az' }])!, /instanceId, host or attribute/);
  assert.match(strategyProblem([{ type: 'pack' }])!, /Unknown placement strategy type 'pack'/);
  assert.deepEqual(normalizeStrategies([{ type: 'binpack', field: 'CPU' }, { type: 'binpack', field: 'cpu' }, { type: 'spread', field: 'host' }]),
    [{ kind: 'binpack', resource: 'cpu' }, { kind: 'spread', attribute: null }]);
  assert.ok(spreadsOverZones(undefined));
  assert.ok(!spreadsOverZones(binpackCpu));
});
