// bench/placement: the placement and capacity-planning core on an in-memory cluster (no
// processes, no I/O). One command: `npm run bench:placement [-- flags]`.
//
// 1. Placement: 10,000 instances, 100,000 tasks (workload.ts documents the seeded sizes).
//    Berth's indexed engine beside a naive first-fit scan and first-fit-decreasing (same
//    filters, same state code; only the search differs), all in this process, one thread.
//    The baselines place the first 20,000 tasks by default (--baseline-tasks): a prefix, on
//    an emptier cluster, flatters them. The engine is warmed up (JIT) on a separate small
//    cluster first. Rates are given by wall clock and by the process's CPU time.
//    Also the reference pipeline (full semantics, linear scan) on a prefix, and a check that
//    the engine chose exactly what the reference chooses on that prefix.
// 2. Growth: the engine at 1k, 3k and 10k instances (10 tasks per instance).
// 3. Scale-out packing: the planner vs first fit and FFD, as instances ÷ the lower bound
//    max(⌈Σcpu/C⌉, ⌈Σmem/M⌉) for one instance type; plus cost on the default catalog.
// 4. Resident memory holding the 10k-instance state with 100k tasks placed.
import { parseArgs } from 'node:util';
import { instanceType } from '../../src/domain/instance-types.js';
import { PlacementEngine } from '../../src/placement/engine.js';
import { feasible, prepareTask } from '../../src/placement/filters.js';
import { registeredCpu, registeredMemory, selectableTypes, taskEnis } from '../../src/placement/instance-selection.js';
import { firstFit, firstFitDecreasing, packingLowerBound, type BinType, type PackItem } from '../../src/placement/packing.js';
import { planScaleOut, type ScaleOutProvider } from '../../src/placement/scale-out.js';
import { ClusterState } from '../../src/placement/state.js';
import type { InstanceSnapshot, TaskRequest } from '../../src/placement/types.js';
import { makeInstances, makeTasks, ZONES } from './workload.js';

const USAGE = `usage: npm run bench:placement -- [flags]
  --instances N     instances for the main run (default 10000)
  --tasks N         tasks for the main run (default 100000)
  --scales LIST     instance counts for the growth table (default 1000,3000,10000)
  --reference N     tasks the reference pipeline places / equivalence prefix (default 1000)
  --baseline-tasks N  tasks the first-fit baselines place (default 20000; 0 = all)
  --pack N          tasks for the scale-out packing runs (default 100000)
  --seed N          workload seed (default 42)`;

const { values: flags } = parseArgs({
  options: {
    instances: { type: 'string', default: '10000' }, tasks: { type: 'string', default: '100000' },
    scales: { type: 'string', default: '1000,3000,10000' }, reference: { type: 'string', default: '1000' },
    'baseline-tasks': { type: 'string', default: '20000' },
    pack: { type: 'string', default: '100000' }, seed: { type: 'string', default: '42' }, help: { type: 'boolean', default: false },
  },
});
if (flags.help) { console.log(USAGE); process.exit(0); }
const N = Number(flags.instances);
const T = Number(flags.tasks);
const SEED = Number(flags.seed);
const REF = Number(flags.reference);
const PACK = Number(flags.pack);
const BASE = Number(flags['baseline-tasks']) || Number(flags.tasks);

const GOAL_RATE = 50_000;
const GOAL_PACK = 1.05;
const GOAL_RSS = 1024 * 1024 * 1024;

const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
const results: { goal: string; ok: boolean }[] = [];

function timeIt<T>(f: () => T): { v: T; ms: number; cpuMs: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const v = f();
  const t1 = process.hrtime.bigint();
  const c = process.cpuUsage(c0);
  return { v, ms: ms(t0, t1), cpuMs: (c.user + c.system) / 1000 };
}

// ---------------------------------------------------------------------------------------
// Placement engines over the same workload.

interface Run { name: string; placed: number; failed: number; ms: number; cpuMs: number; buildMs: number }

function runEngine(instances: readonly InstanceSnapshot[], tasks: readonly TaskRequest[], indexed = true): Run & { engine: PlacementEngine } {
  const b = timeIt(() => new PlacementEngine(instances, { indexed }));
  const engine = b.v;
  let placed = 0;
  const r = timeIt(() => {
    for (const t of tasks) if (engine.placeAndReserve(t).placed) placed++;
  });
  return { name: indexed ? 'berth (indexed)' : 'reference pipeline', placed, failed: tasks.length - placed, ms: r.ms, cpuMs: r.cpuMs, buildMs: b.ms, engine };
}

/** First fit: scan the instances in order, take the first the filters accept. */
function runScan(name: string, instances: readonly InstanceSnapshot[], tasks: readonly TaskRequest[]): Run {
  const b = timeIt(() => new ClusterState(instances));
  const state = b.v;
  let placed = 0;
  const r = timeIt(() => {
    for (const req of tasks) {
      const t = prepareTask(req);
      for (const rec of state.recs) {
        if (feasible(t, rec)) { state.apply(t, rec); placed++; break; }
      }
    }
  });
  return { name, placed, failed: tasks.length - placed, ms: r.ms, cpuMs: r.cpuMs, buildMs: b.ms };
}

function bySizeDesc(tasks: readonly TaskRequest[]): TaskRequest[] {
  const size = (t: TaskRequest) => Math.max(t.cpu / 8192, t.memory / 32512);
  return tasks.slice().sort((a, b) => size(b) - size(a));
}

function printRuns(runs: Run[]): void {
  console.log('  engine                  placed    failed  build ms    place ms   placements/s  (by CPU time)  µs/placement');
  for (const r of runs) {
    const n = r.placed + r.failed;
    console.log(`  ${r.name.padEnd(22)} ${fmt(r.placed).padStart(8)} ${fmt(r.failed).padStart(9)} ${fmt(r.buildMs, 1).padStart(9)} ${fmt(r.ms, 1).padStart(11)} ${fmt(n / (r.ms / 1000)).padStart(14)} ${fmt(n / (r.cpuMs / 1000)).padStart(14)} ${fmt((r.ms * 1000) / n, 2).padStart(13)}`);
  }
}

function equivalence(instances: readonly InstanceSnapshot[], tasks: readonly TaskRequest[]): { same: number; total: number } {
  const a = new PlacementEngine(instances);
  const b = new PlacementEngine(instances, { indexed: false });
  let same = 0;
  for (const t of tasks) {
    const x = a.placeAndReserve(t);
    const y = b.placeAndReserve(t);
    const xi = x.placed ? x.instanceId : `fail:${x.failure.reason}`;
    const yi = y.placed ? y.instanceId : `fail:${y.failure.reason}`;
    if (xi === yi) same++;
    else { console.log(`  first difference at ${t.id}: engine ${xi}, reference ${yi}`); break; }
  }
  return { same, total: tasks.length };
}

// ---------------------------------------------------------------------------------------

console.log(`bench/placement — Node ${process.version}, one thread, seed ${SEED}`);
console.log(`workload: ${fmt(N)} instances in 3 zones, ${fmt(T)} tasks (see bench/placement/workload.ts)\n`);

const instances = makeInstances(N, SEED);
const tasks = makeTasks(T, SEED);
{
  const cpu = tasks.reduce((s, t) => s + t.cpu, 0);
  const mem = tasks.reduce((s, t) => s + t.memory, 0);
  const ccap = instances.reduce((s, i) => s + i.registeredCpu, 0);
  const mcap = instances.reduce((s, i) => s + i.registeredMemory, 0);
  console.log(`demand: ${fmt(cpu)} CPU units (${fmt((100 * cpu) / ccap, 1)}% of the cluster), ${fmt(mem)} MiB (${fmt((100 * mem) / mcap, 1)}%)\n`);
}

console.log(`1. Placement, ${fmt(N)} instances × ${fmt(T)} tasks`);
runEngine(makeInstances(2000, SEED + 99), makeTasks(20_000, SEED + 99)); // JIT warm-up, separate cluster
const main = runEngine(instances, tasks);
const ff = runScan('naive first fit', instances, tasks.slice(0, BASE));
const ffd = runScan('first-fit-decreasing', instances, bySizeDesc(tasks).slice(0, BASE));
const ref = runEngine(instances, tasks.slice(0, REF), false);
printRuns([main, ff, ffd, ref]);
const rate = T / (main.ms / 1000);
const perTask = (r: Run) => r.ms / (r.placed + r.failed);
console.log(`  per placement, berth is ${fmt(perTask(ff) / perTask(main), 1)}× faster than naive first fit and ${fmt(perTask(ffd) / perTask(main), 1)}× faster than FFD`);
console.log(`  (baselines: the first ${fmt(BASE)} tasks${BASE < T ? ' of each order, which flatters them' : ''}; reference pipeline: the first ${fmt(REF)} tasks)`);
console.log(`  served by the index: ${fmt(main.engine.stats.indexed)}, by a scan: ${fmt(main.engine.stats.scanned)}, failures: ${fmt(main.engine.stats.failed)}`);
const eq = equivalence(instances, tasks.slice(0, REF));
console.log(`  same choice as the reference pipeline: ${fmt(eq.same)}/${fmt(eq.total)}`);
results.push({ goal: `≥ ${fmt(GOAL_RATE)} placements/s at ${fmt(N)} instances: ${fmt(rate)}`, ok: rate >= GOAL_RATE });
results.push({ goal: `engine = reference on ${fmt(eq.total)} placements`, ok: eq.same === eq.total });

// Resident memory while the main run's state is alive.
(globalThis as { gc?: () => void }).gc?.();
const rss = process.memoryUsage().rss;
const heap = process.memoryUsage().heapUsed;
console.log(`  resident memory holding ${fmt(N)} instances and ${fmt(main.placed)} placed tasks: ${fmt(rss / 2 ** 20)} MiB (heap ${fmt(heap / 2 ** 20)} MiB)`);
results.push({ goal: `resident memory ≤ 1 GiB: ${fmt(rss / 2 ** 20)} MiB`, ok: rss <= GOAL_RSS });
void main.engine.instances().length;

console.log('\n2. Growth (10 tasks per instance)');
console.log('  instances      tasks    build ms    place ms   placements/s   µs/placement   naive FF µs/placement');
for (const n of String(flags.scales).split(',').map(Number)) {
  const inst = makeInstances(n, SEED);
  const ts = makeTasks(n * 10, SEED);
  const r = runEngine(inst, ts);
  const f = runScan('ff', inst, ts.slice(0, Math.min(ts.length, 20_000)));
  const nf = f.placed + f.failed;
  console.log(`  ${fmt(n).padStart(9)} ${fmt(ts.length).padStart(10)} ${fmt(r.buildMs, 1).padStart(11)} ${fmt(r.ms, 1).padStart(11)} ${fmt(ts.length / (r.ms / 1000)).padStart(14)} ${fmt((r.ms * 1000) / ts.length, 2).padStart(14)} ${fmt((f.ms * 1000) / nf, 2).padStart(23)}`);
}

// ---------------------------------------------------------------------------------------

console.log(`\n3. Scale-out packing, ${fmt(PACK)} pending tasks`);
const packTasks = makeTasks(PACK, SEED + 1);
const m5a2x = instanceType('m5a.2xlarge')!;
const bt: BinType = { name: m5a2x.name, cpu: registeredCpu(m5a2x), mem: registeredMemory(m5a2x), eni: taskEnis(m5a2x), price: m5a2x.pricePerHour, ref: m5a2x };
const items: PackItem[] = packTasks.map((t) => ({ id: t.id, cpu: t.cpu, mem: t.memory, eni: t.awsvpc ? 1 : 0, tcp: t.tcpPorts ?? [], udp: [], distinct: t.constraints?.some((c) => c.type === 'distinctInstance') ? t.group! : '', group: t.group }));
const lb = packingLowerBound(items, bt);
const provider = (types: ScaleOutProvider['types'], zones: string[]): ScaleOutProvider => ({
  name: 'bench', types, subnets: zones.map((z) => ({ subnetId: `subnet-${z}`, availabilityZone: z })),
  singleTaskMode: false, privilegedCapabilities: [], fips: false,
});
const p1 = timeIt(() => planScaleOut({ provider: provider([m5a2x], [ZONES[0]!]), pending: packTasks }));
const p3 = timeIt(() => planScaleOut({ provider: provider([m5a2x], ZONES), pending: packTasks }));
const f1 = timeIt(() => firstFit(items, bt));
const f2 = timeIt(() => firstFitDecreasing(items, bt));
console.log(`  one type (${m5a2x.name}: ${bt.cpu} CPU units, ${bt.mem} MiB, ${bt.eni} task ENIs); lower bound max(⌈Σcpu/C⌉, ⌈Σmem/M⌉) = ${fmt(lb)}`);
console.log('  packer                           instances   ÷ lower bound      ms   unplaceable');
const row = (name: string, n: number, t: number, u = 0) => console.log(`  ${name.padEnd(32)} ${fmt(n).padStart(9)} ${fmt(n / lb, 4).padStart(15)} ${fmt(t, 0).padStart(7)} ${fmt(u).padStart(13)}`);
row('berth planner, 1 subnet', p1.v.launches.length, p1.ms, p1.v.unplaceable.length);
row('berth planner, 3 zones (spread)', p3.v.launches.length, p3.ms, p3.v.unplaceable.length);
row('first fit', f1.v.length, f1.ms);
row('first-fit-decreasing', f2.v.length, f2.ms);
{
  // The same distribution without awsvpc tasks (host network mode only): no ENI limit.
  const hostTasks = makeTasks(PACK, SEED + 1, { awsvpc: 0 });
  const hostItems: PackItem[] = hostTasks.map((t) => ({ id: t.id, cpu: t.cpu, mem: t.memory, eni: 0, tcp: t.tcpPorts ?? [], udp: [], distinct: t.constraints?.some((c) => c.type === 'distinctInstance') ? t.group! : '', group: t.group }));
  const hlb = packingLowerBound(hostItems, bt);
  const hp = timeIt(() => planScaleOut({ provider: provider([m5a2x], [ZONES[0]!]), pending: hostTasks }));
  const hf = timeIt(() => firstFitDecreasing(hostItems, bt));
  console.log(`  without awsvpc tasks (lower bound ${fmt(hlb)}):`);
  console.log(`  ${'berth planner, 1 subnet'.padEnd(32)} ${fmt(hp.v.launches.length).padStart(9)} ${fmt(hp.v.launches.length / hlb, 4).padStart(15)} ${fmt(hp.ms, 0).padStart(7)} ${fmt(hp.v.unplaceable.length).padStart(13)}`);
  console.log(`  ${'first-fit-decreasing'.padEnd(32)} ${fmt(hf.v.length).padStart(9)} ${fmt(hf.v.length / hlb, 4).padStart(15)} ${fmt(hf.ms, 0).padStart(7)} ${fmt(0).padStart(13)}`);
}
const ratio = p1.v.launches.length / lb;
results.push({ goal: `scale-out ≤ ${GOAL_PACK}× the lower bound: ${fmt(ratio, 4)}×`, ok: ratio <= GOAL_PACK });
results.push({ goal: `planner ≤ FFD instances: ${fmt(p1.v.launches.length)} vs ${fmt(f2.v.length)}`, ok: p1.v.launches.length <= f2.v.length });

// Cost on the default catalog: the planner vs FFD on the best single default type.
const defaults = selectableTypes(undefined, 'x86_64');
const pd = timeIt(() => planScaleOut({ provider: provider(defaults, [ZONES[0]!]), pending: packTasks }));
let bestFfd = { cost: Infinity, name: '', n: 0 };
for (const t of defaults) {
  const b: BinType = { name: t.name, cpu: registeredCpu(t), mem: registeredMemory(t), eni: taskEnis(t), price: t.pricePerHour, ref: t };
  if (items.some((it) => it.cpu > b.cpu || it.mem > b.mem)) continue;
  const bins = firstFitDecreasing(items, b);
  const cost = bins.length * t.pricePerHour;
  if (cost < bestFfd.cost) bestFfd = { cost, name: t.name, n: bins.length };
}
const mix = new Map<string, number>();
for (const l of pd.v.launches) mix.set(l.instanceType.name, (mix.get(l.instanceType.name) ?? 0) + 1);
console.log(`  default catalog (${defaults.map((t) => t.name).join(' ')}), 1 subnet:`);
console.log(`    berth planner: $${fmt(pd.v.hourlyCost, 2)}/h on ${fmt(pd.v.launches.length)} instances (${[...mix].map(([k, v]) => `${v}× ${k}`).join(', ')}) in ${fmt(pd.ms)} ms`);
console.log(`    FFD on the best single type (${bestFfd.name}): $${fmt(bestFfd.cost, 2)}/h on ${fmt(bestFfd.n)} instances`);
results.push({ goal: `planner cost ≤ best single-type FFD: $${fmt(pd.v.hourlyCost, 2)} vs $${fmt(bestFfd.cost, 2)}`, ok: pd.v.hourlyCost <= bestFfd.cost + 1e-9 });

// A burst of 30 small tasks on the default catalog, 3 zones.
const burst = Array.from({ length: 30 }, (_, i): TaskRequest => ({ id: `burst-${i}`, providerName: 'bench', cpu: 256, memory: 512, group: 'family:burst' }));
const pb = planScaleOut({ provider: provider(defaults, ZONES), pending: burst });
console.log(`  burst of 30 × (256 CPU units, 512 MiB), default catalog, 3 zones: ${pb.launches.map((l) => `${l.instanceType.name} in ${l.availabilityZone} (${l.taskIds.length} tasks)`).join('; ')}`);

console.log('\nGoals');
for (const r of results) console.log(`  ${verdict(r.ok)}  ${r.goal}`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
