// bench/task-start: how long RunTask takes to give a RUNNING task, cold (a new instance:
// launch, agent start and registration, image pull) and warm (an instance with the image
// cached), against the floor of the container runtime itself (bare runc, conmon + runc, the
// agent's runtime library), plus what an instance's agent and each container's conmon cost
// in memory. `npm run bench:task-start -- --help` for flags.
//
// One run: a test registry with the busybox image, Berth as its own process (as the tests
// start it), one cluster with one managed-instances capacity provider. Every task is timed
// from just before its RunTask call until a DescribeTasks answer says RUNNING (polled with a
// raw keep-alive client), and broken down with the timestamps Berth reports (createdAt,
// pullStartedAt, pullStoppedAt, startedAt) and inotify on the instance's data dir (when the
// agent stored the desired task, when the container's bundle appeared). The floor rows are
// measured in chunks between the warm batches, so both see the same (possibly shared, busy)
// machine; the CPU each party used during the warm phase is printed. Everything it starts
// is removed at the end (Berth, its instances via `berth down`, the registry, temp dirs, floor
// containers and cgroups), also on failure or Ctrl-C.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { cpus, tmpdir, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BerthProcess, repoRoot } from '../../test/helpers/berth.js';
import { buildAndPush } from '../../test/helpers/image.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { RawEcs } from './ecs-raw.js';
import { Floor, BENCH_COMMAND, type ConmonSample } from './floor.js';
import { agentPid, conmonPids, memory, rssBytes, RssSampler } from './procs.js';

// ---------------------------------------------------------------------------------------
// Flags

const USAGE = `usage: npm run bench:task-start -- [flags]

  --cold N        cold starts (each on a new instance) (default 5)
  --warm N        measured warm starts, host network mode (default 120)
  --warmup N      warm starts before measuring, not counted (default 5)
  --batch N       warm tasks kept running before the batch is stopped (default 20)
  --awsvpc N      measured warm starts in awsvpc mode, one at a time (default 40; 0 skips)
  --floor N       iterations of each floor row (default 30)
  --poll-ms MS    pause between DescribeTasks polls while waiting for RUNNING (default 2)
  --help          this text
`;

function parseFlags() {
  try {
    return parseArgs({
      options: {
        cold: { type: 'string', default: '5' },
        warm: { type: 'string', default: '120' },
        warmup: { type: 'string', default: '5' },
        batch: { type: 'string', default: '20' },
        awsvpc: { type: 'string', default: '40' },
        floor: { type: 'string', default: '30' },
        'poll-ms': { type: 'string', default: '2' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`bench:task-start: ${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}
const flags = parseFlags();
if (flags.help) { process.stdout.write(USAGE); process.exit(0); }
function count(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) { process.stderr.write(`bench:task-start: --${name} must be an integer >= ${min}, got '${text}'\n`); process.exit(2); }
  return n;
}
const COLD = count('cold', flags.cold, 1);
const WARM = count('warm', flags.warm, 1);
const WARMUP = count('warmup', flags.warmup, 0);
const BATCH = count('batch', flags.batch, 1);
const AWSVPC = count('awsvpc', flags.awsvpc, 0);
const FLOOR_N = count('floor', flags.floor, 1);
const POLL_MS = Number(flags['poll-ms']);
if (!Number.isFinite(POLL_MS) || POLL_MS < 0) { process.stderr.write('bench:task-start: --poll-ms must be >= 0\n'); process.exit(2); }

const CLUSTER = 'bench';
const PROVIDER = 'bench-cp';
const SUBNET = 'subnet-bench';
const say = (line: string) => process.stderr.write(`bench:task-start: ${line}\n`);

// ---------------------------------------------------------------------------------------
// Clean-up of everything this run starts (in reverse order), also on failure or Ctrl-C

const cleanups: { name: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;
let interrupted = false;
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const c = cleanups.pop()!;
      try { await c.fn(); } catch (e) { process.stderr.write(`bench:task-start: clean-up of ${c.name} failed: ${(e as Error).message}\n`); }
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => { interrupted = true; process.stderr.write(`\nbench:task-start: ${sig}, cleaning up\n`); void cleanupAll().finally(() => process.exit(130)); });
}

// ---------------------------------------------------------------------------------------
// Time and statistics

/**
 * Epoch ms with sub-ms resolution on the bench side, in the same domain as Date.now() (what
 * Berth and its agents stamp, in integer ms): performance.timeOrigin can be off from Date.now()
 * by a millisecond or more, so the offset is measured (the largest Date.now() - now() seen
 * while Date.now() ticks over is within a few µs of the true one).
 */
function measureAnchor(): number {
  let best = -Infinity;
  const start = Date.now();
  while (Date.now() - start < 3) best = Math.max(best, Date.now() - performance.now());
  return best;
}
let anchor = measureAnchor();
const epochNow = () => anchor + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(values: number[], p: number): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const mean = (v: number[]) => { const f = v.filter(Number.isFinite); return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN; };
const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
const mib = (b: number) => b / 1024 / 1024;

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ
  } catch { return undefined; }
}

/** CPU seconds used by everything in an instance's cgroup (agent, skopeo, runc, conmon, containers). */
function instanceCpuSeconds(instanceId: string): number | undefined {
  try { return Number(readFileSync(`/sys/fs/cgroup/cpuacct/berth/${instanceId}/cpuacct.usage`, 'utf8')) / 1e9; } catch { return undefined; }
}

interface CpuMark { wall: number; bench: number; berth?: number; instance?: number; agent?: number; machine?: number }
function cpuMark(berthPid: number | undefined, instanceId: string, agent: number | undefined): CpuMark {
  const c = process.cpuUsage();
  return {
    wall: performance.now() / 1000, bench: (c.user + c.system) / 1e6, berth: cpuSecondsOf(berthPid),
    instance: instanceCpuSeconds(instanceId), agent: cpuSecondsOf(agent), machine: machineBusySeconds(),
  };
}

/** Adds what was used between two marks to `sum`. */
function cpuAdd(sum: CpuMark, a: CpuMark, b: CpuMark): void {
  sum.wall += b.wall - a.wall;
  sum.bench += b.bench - a.bench;
  for (const k of ['berth', 'instance', 'agent', 'machine'] as const) {
    const x = sum[k], p = a[k], q = b[k];
    sum[k] = x === undefined || p === undefined || q === undefined ? undefined : x + (q - p);
  }
}

/** CPU used over the measured warm batches (`used`: sums), in % of one core, by who. */
function cpuReport(used: CpuMark, tasks: number): string[] {
  const wall = used.wall;
  const d = (k: keyof CpuMark) => (used[k] === undefined ? NaN : used[k]!);
  const pc = (v: number) => `${fmt((100 * v) / wall, 0)}%`;
  const per = (v: number) => `${fmt((1000 * v) / tasks, 0)} ms`;
  const rest = d('machine') - d('bench') - d('berth') - d('instance');
  return [
    `CPU over the measured warm host batches (${fmt(wall, 1)} s, ${tasks} task starts and stops; % of one core, CPU per task):`,
    `  bench client (polling) ${pc(d('bench'))} ${per(d('bench'))}; Berth ${pc(d('berth'))} ${per(d('berth'))}; ` +
    `instance ${pc(d('instance'))} ${per(d('instance'))} (of which the agent's node process ${pc(d('agent'))} ${per(d('agent'))}; ` +
    `skopeo, mount, conmon, runc, containers ${pc(d('instance') - d('agent'))} ${per(d('instance') - d('agent'))}); rest of the machine ${pc(rest)}`,
    ...(rest / wall > 0.15 ? [`  WARNING: other processes kept ${pc(rest)} of a core busy during the warm phase; the latencies above are inflated by that`] : []),
  ];
}

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat. */
function machineBusySeconds(): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100; // user nice system irq softirq steal
  } catch { return undefined; }
}

/** Cores kept busy by other processes over `ms` while this run is idle (a noisy-machine check). */
async function backgroundLoad(ms = 1000): Promise<number | undefined> {
  const m0 = machineBusySeconds(), c0 = process.cpuUsage();
  await sleep(ms);
  const m1 = machineBusySeconds(), c = process.cpuUsage(c0);
  return m0 === undefined || m1 === undefined ? undefined : Math.max(0, (m1 - m0 - (c.user + c.system) / 1e6) / (ms / 1000));
}

// ---------------------------------------------------------------------------------------
// Watching an instance's data dir (inotify: no polling, no change to Berth)

/** First time a name appeared in a directory, by name. */
class DirWatch {
  readonly seen = new Map<string, number>();
  private readonly w: FSWatcher | undefined;
  constructor(readonly dir: string, private readonly key: (name: string) => string | undefined = (n) => n, onNew?: (key: string, at: number) => void) {
    try {
      this.w = watch(dir, (_e, name) => {
        if (!name) return;
        const k = this.key(name.toString());
        if (k !== undefined && !this.seen.has(k)) { const at = epochNow(); this.seen.set(k, at); onNew?.(k, at); }
      });
    } catch { this.w = undefined; }
  }
  get ok(): boolean { return this.w !== undefined; }
  close(): void { this.w?.close(); }
}

// ---------------------------------------------------------------------------------------
// One task start, measured

interface Sample {
  taskId: string;
  taskArn: string;
  instanceArn?: string;
  /** Bench-side epoch ms just before RunTask. */
  t0: number;
  runTaskMs: number;
  /** RunTask → the DescribeTasks answer that said RUNNING was received. */
  totalMs: number;
  /** Time between the last two poll answers (how late RUNNING may have been seen). */
  pollGapMs: number;
  polls: number;
  /** First poll answer that named the container instance (placement), ms after t0. */
  placedSeenMs?: number;
  createdAt?: number;
  pullStartedAt?: number;
  pullStoppedAt?: number;
  startedAt?: number;
  /** inotify: the agent wrote the task's state file (it has the desired state). */
  agentHasIt?: number;
  /** inotify: the container's bundle dir appeared (runtime create underway). */
  bundleAt?: number;
}

const ms = (sec: unknown) => (typeof sec === 'number' ? sec * 1000 : undefined);

async function startAndWait(ecs: RawEcs, taskDefinition: string, pollMs: number, timeoutMs: number): Promise<Sample> {
  const t0 = epochNow();
  const p0 = performance.now();
  const r = await ecs.call('RunTask', { cluster: CLUSTER, taskDefinition, count: 1 });
  const runTaskMs = performance.now() - p0;
  if (r.failures?.length || !r.tasks?.[0]) throw new Error(`RunTask failed: ${JSON.stringify(r.failures)}`);
  const taskArn: string = r.tasks[0].taskArn;
  const s: Sample = { taskId: taskArn.slice(taskArn.lastIndexOf('/') + 1), taskArn, t0, runTaskMs, totalMs: NaN, pollGapMs: NaN, polls: 0 };
  let last = performance.now();
  for (;;) {
    if (pollMs > 0) await sleep(pollMs);
    const d = await ecs.call('DescribeTasks', { cluster: CLUSTER, tasks: [taskArn] });
    const now = performance.now();
    s.polls++;
    const t = d.tasks?.[0];
    if (!t) throw new Error(`DescribeTasks did not find ${taskArn}`);
    if (t.containerInstanceArn && s.placedSeenMs === undefined) s.placedSeenMs = now - p0;
    if (t.lastStatus === 'RUNNING') {
      s.totalMs = now - p0;
      s.pollGapMs = now - last;
      s.instanceArn = t.containerInstanceArn;
      s.createdAt = ms(t.createdAt);
      s.pullStartedAt = ms(t.pullStartedAt);
      s.pullStoppedAt = ms(t.pullStoppedAt);
      s.startedAt = ms(t.startedAt);
      return s;
    }
    if (t.lastStatus === 'STOPPED') throw new Error(`task ${s.taskId} stopped before RUNNING: ${t.stoppedReason} ${JSON.stringify(t.containers?.map((c: any) => c.reason))}`);
    if (now - p0 > timeoutMs) throw new Error(`task ${s.taskId} not RUNNING after ${timeoutMs / 1000}s (last status ${t.lastStatus})`);
    last = now;
  }
}

/** Stops tasks and waits until every one is STOPPED. */
async function stopAll(ecs: RawEcs, arns: string[], timeoutMs = 60_000): Promise<void> {
  for (const task of arns) await ecs.call('StopTask', { cluster: CLUSTER, task, reason: 'bench' });
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < arns.length; i += 100) {
    const chunk = arns.slice(i, i + 100);
    for (;;) {
      const d = await ecs.call('DescribeTasks', { cluster: CLUSTER, tasks: chunk });
      if ((d.tasks as any[]).every((t) => t.lastStatus === 'STOPPED')) break;
      if (performance.now() > deadline) throw new Error(`tasks not STOPPED within ${timeoutMs / 1000}s`);
      await sleep(50);
    }
  }
}

async function waitUntil(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000, everyMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await fn())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------
// Breakdown of samples into consecutive segments (each ends where the next begins)

interface Segment { name: string; of: (s: Sample) => number | undefined }

function warmSegments(): Segment[] {
  const d = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
  return [
    { name: 'RunTask call (client round trip)', of: (s) => s.runTaskMs },
    { name: 'RunTask answer -> agent stored the task (scheduler pass, desired state over WebSocket)', of: (s) => d(s.t0 + s.runTaskMs, s.agentHasIt) },
    { name: 'agent stored the task -> pullStartedAt', of: (s) => d(s.agentHasIt, s.pullStartedAt) },
    { name: 'pull (pullStartedAt -> pullStoppedAt; image cached)', of: (s) => d(s.pullStartedAt, s.pullStoppedAt) },
    { name: 'pullStoppedAt -> bundle dir created (spec, etc files)', of: (s) => d(s.pullStoppedAt, s.bundleAt) },
    { name: 'bundle dir -> startedAt (overlay, cgroup, conmon+runc create, runc state, runc start)', of: (s) => d(s.bundleAt, s.startedAt) },
    { name: 'startedAt -> RUNNING seen by a poll (report, store, poll lag)', of: (s) => d(s.startedAt, s.t0 + s.totalMs) },
  ];
}

function breakdown(lines: string[], title: string, samples: Sample[], segments: Segment[]): void {
  lines.push(title);
  lines.push(`  ${'segment'.padEnd(92)}${'p50'.padStart(8)}${'mean'.padStart(8)}${'p99'.padStart(8)}   (ms)`);
  let sum = 0;
  for (const seg of segments) {
    const v = samples.map(seg.of).filter((x): x is number => x !== undefined);
    if (v.length === 0) { lines.push(`  ${seg.name.padEnd(92)}${'n/a'.padStart(8)}`); continue; }
    sum += mean(v);
    lines.push(`  ${seg.name.padEnd(92)}${fmt(pct(v, 50)).padStart(8)}${fmt(mean(v)).padStart(8)}${fmt(pct(v, 99)).padStart(8)}`);
  }
  lines.push(`  ${'total (RunTask -> RUNNING seen)'.padEnd(92)}${fmt(pct(samples.map((s) => s.totalMs), 50)).padStart(8)}${fmt(mean(samples.map((s) => s.totalMs))).padStart(8)}${fmt(pct(samples.map((s) => s.totalMs), 99)).padStart(8)}   (sum of segment means ${fmt(sum)})`);
}

// ---------------------------------------------------------------------------------------
// Main

interface Row { name: string; values: number[]; note?: string }

async function main(): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), 'berth-bts-'));
  cleanups.push({ name: 'temp dir', fn: () => rmSync(root, { recursive: true, force: true }) });
  const background = await backgroundLoad();
  if (background !== undefined && background > 0.15) say(`WARNING: other processes keep ${(100 * background).toFixed(0)}% of a core busy; results will be noisy`);

  // Registry and image -------------------------------------------------------------------
  say('starting a test registry and pushing busybox...');
  const registry = await startRegistry();
  cleanups.push({ name: 'registry', fn: () => registry.stop() });
  buildAndPush(registry.address, 'busybox:latest');
  const image = `${registry.address}/busybox:latest`;

  // Floor: measured in chunks between the warm batches (the instance idle, Berth alive), so
  // that the floor and the warm starts see the same machine (a shared one is often busy).
  const floor = new Floor(root, image);
  cleanups.push({ name: 'floor containers', fn: () => floor.cleanup() });
  await floor.prepare();
  const spawnTrue: number[] = [], bare: number[] = [], library: number[] = [];
  const viaConmon: ConmonSample[] = [];
  const floorChunk = async (n: number) => {
    n = Math.min(n, FLOOR_N - bare.length);
    if (n <= 0) return;
    spawnTrue.push(...await floor.spawnTrue(n));
    bare.push(...await floor.bareRunc(n));
    viaConmon.push(...await floor.conmonRunc(n));
    library.push(...await floor.runtimeLibrary(n));
  };
  const floorPerBatch = Math.ceil(FLOOR_N / Math.ceil(WARM / BATCH));

  // Berth ------------------------------------------------------------------------------
  say('starting Berth...');
  const berth = new BerthProcess(join(root, 'data'));
  cleanups.push({
    name: 'Berth (berth down)',
    fn: async () => {
      if (berth.child && berth.child.exitCode === null && berth.child.signalCode === null) {
        const exited = new Promise<void>((ok) => berth.child.once('exit', () => ok()));
        berth.child.kill('SIGTERM');
        if (await Promise.race([exited.then(() => 'ok'), sleep(10_000).then(() => 'timeout')]) === 'timeout') { berth.child.kill('SIGKILL'); await exited; }
      }
      // Instances outlive the control plane: terminate them and free the host slot.
      const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'down'], { env: berth.env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`berth down failed: ${r.stderr}`);
    },
  });
  await berth.start();
  const ecs = new RawEcs(berth.creds);
  cleanups.push({ name: 'client', fn: () => ecs.close() });
  const dataDir = join(root, 'data');

  await ecs.call('CreateCluster', { clusterName: CLUSTER });
  await ecs.call('CreateCapacityProvider', {
    name: PROVIDER, cluster: CLUSTER,
    managedInstancesProvider: {
      infrastructureRoleArn: 'arn:aws:iam::000000000000:role/bench',
      instanceLaunchTemplate: { ec2InstanceProfileArn: 'bench', networkConfiguration: { subnets: [SUBNET] } },
    },
  });
  const container = { name: 'app', image, essential: true, memory: 16, stopTimeout: 1, command: BENCH_COMMAND };
  await ecs.call('RegisterTaskDefinition', { family: 'bench-host', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host', containerDefinitions: [container] });
  await ecs.call('RegisterTaskDefinition', { family: 'bench-awsvpc', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'awsvpc', containerDefinitions: [container] });

  const describeInstance = async (arn: string) =>
    (await ecs.call('DescribeContainerInstances', { cluster: CLUSTER, containerInstances: [arn] })).containerInstances[0];

  // Cold starts --------------------------------------------------------------------------
  interface Cold { s: Sample; instanceId: string; dataDirAt?: number; agentCodeAt?: number; agentReadyAt?: number; registeredAt?: number }
  const colds: Cold[] = [];
  let warmInstance: { arn: string; id: string } | undefined;
  for (let k = 0; k < COLD; k++) {
    say(`cold start ${k + 1}/${COLD} (a new instance)...`);
    anchor = measureAnchor();
    // inotify: the instance's data dir appears (launch underway), then the first dir the agent makes.
    const agentCode = new Map<string, number>();
    const inner: DirWatch[] = [];
    const instances = new DirWatch(join(dataDir, 'instances'), (n) => (/^i-[0-9a-f]+$/.test(n) ? n : undefined), (id) => {
      inner.push(new DirWatch(join(dataDir, 'instances', id), (n) => (n === 'images' ? n : undefined), (_n, at) => { agentCode.set(id, at); }));
    });
    let s: Sample;
    try {
      s = await startAndWait(ecs, 'bench-host', 5, 120_000);
    } finally { instances.close(); for (const w of inner) w.close(); }
    const ci = await describeInstance(s.instanceArn!);
    const id: string = ci.ec2InstanceId;
    const c: Cold = { s, instanceId: id, registeredAt: ms(ci.registeredAt) };
    const dd = instances.seen.get(id);
    if (dd !== undefined) c.dataDirAt = dd;
    const ac = agentCode.get(id);
    if (ac !== undefined) c.agentCodeAt = ac;
    try {
      const consoleLog = readFileSync(join(dataDir, 'local-provider', 'console', `${id}.log`), 'utf8');
      const m = /^(\S+) berth-agent: instance \S+ started$/m.exec(consoleLog);
      if (m) c.agentReadyAt = Date.parse(m[1]!);
    } catch { /* no console log */ }
    colds.push(c);
    say(`  ${fmt(s.totalMs, 0)} ms on ${id}`);
    if (k < COLD - 1) {
      await ecs.call('DeregisterContainerInstance', { cluster: CLUSTER, containerInstance: s.instanceArn, force: true });
      await waitUntil(`instance ${id} to be terminated`, () =>
        !existsSync(join(dataDir, 'local-provider', 'instances', `${id}.json`)) && agentPid(id) === undefined, 60_000, 50);
    } else {
      warmInstance = { arn: s.instanceArn!, id };
      await stopAll(ecs, [s.taskArn]);
    }
  }
  const wi = warmInstance!;
  const instDir = join(dataDir, 'instances', wi.id);

  // Warm starts, host mode ---------------------------------------------------------------
  const pid0 = agentPid(wi.id);
  if (pid0 === undefined) throw new Error(`cannot find the agent process of ${wi.id}`);
  let currentAgentPid = pid0;
  const agentPidNow = () => {
    if (rssBytes(currentAgentPid) === undefined) currentAgentPid = agentPid(wi.id) ?? currentAgentPid;
    return currentAgentPid;
  };
  await sleep(500); // let the stopped cold task's clean-up finish
  const agentIdle = memory(agentPidNow());
  const sampler = new RssSampler(agentPidNow, 100);
  cleanups.push({ name: 'rss sampler', fn: () => sampler.stop() });
  const conmonRss: number[] = [];
  const agentTasks = new DirWatch(join(instDir, 'agent', 'tasks'), (n) => /^([0-9a-f]{32})\.json/.exec(n)?.[1]);
  const bundles = new DirWatch(join(instDir, 'containers'), (n) => n.slice(0, 12));
  cleanups.push({ name: 'watchers', fn: () => { agentTasks.close(); bundles.close(); } });
  if (!agentTasks.ok || !bundles.ok) say('warning: cannot watch the instance data dir; the breakdown will miss some segments');
  const fill = (s: Sample) => {
    const a = agentTasks.seen.get(s.taskId);
    if (a !== undefined) s.agentHasIt = a;
    const b = bundles.seen.get(s.taskId.slice(0, 12));
    if (b !== undefined) s.bundleAt = b;
  };

  const warm: Sample[] = [];
  const total = WARMUP + WARM;
  const pollsBefore = ecs.calls;
  const cpuUsed: CpuMark = { wall: 0, bench: 0, berth: 0, instance: 0, agent: 0, machine: 0 };
  for (let done = 0; done < total;) {
    const n = Math.min(BATCH, total - done, done < WARMUP ? WARMUP - done : BATCH);
    say(`warm (host): tasks ${done + 1}-${done + n} of ${total}${done < WARMUP ? ' (warm-up)' : ''}...`);
    anchor = measureAnchor(); // follow the wall clock if it is being slewed
    const arns: string[] = [];
    const measured = done >= WARMUP;
    const cpu0 = cpuMark(berth.child.pid, wi.id, agentPidNow());
    for (let j = 0; j < n; j++, done++) {
      const s = await startAndWait(ecs, 'bench-host', POLL_MS, 30_000);
      arns.push(s.taskArn);
      fill(s);
      if (s.instanceArn !== wi.arn) throw new Error(`warm task ${s.taskId} ran on another instance (${s.instanceArn}); the warm instance was full?`);
      if (done >= WARMUP) warm.push(s);
    }
    // Memory with the batch running.
    sampler.sample();
    for (const p of conmonPids(wi.id)) { const r = rssBytes(p); if (r !== undefined) conmonRss.push(r); }
    await stopAll(ecs, arns);
    await sleep(300);
    if (measured) cpuAdd(cpuUsed, cpu0, cpuMark(berth.child.pid, wi.id, agentPidNow()));
    if (measured) {
      say(`floor: ${floorPerBatch} more of each row...`);
      await floorChunk(floorPerBatch);
    }
  }
  await floorChunk(FLOOR_N); // whatever is missing
  await floor.cleanup();
  const warmPolls = ecs.calls - pollsBefore;

  // Warm starts, awsvpc ------------------------------------------------------------------
  const awsvpc: Sample[] = [];
  let awsvpcError: string | undefined;
  if (AWSVPC > 0) {
    say(`warm (awsvpc): ${AWSVPC} tasks, one at a time (an m5a.large has 2 task ENIs)...`);
    try {
      for (let i = 0; i < AWSVPC + 1; i++) {
        anchor = measureAnchor();
        const s = await startAndWait(ecs, 'bench-awsvpc', POLL_MS, 30_000);
        fill(s);
        if (i > 0) awsvpc.push(s); // the first one is a warm-up
        await stopAll(ecs, [s.taskArn]);
        await waitUntil('the task network namespace to be removed', () => !existsSync('/run/netns') || !readdirSync('/run/netns').some((n) => n.endsWith(`-task-${s.taskId}`)), 10_000, 10);
      }
    } catch (e) {
      awsvpcError = (e as Error).message;
      say(`awsvpc failed: ${awsvpcError}`);
    }
  }
  sampler.sample();
  sampler.stop();

  // Report -------------------------------------------------------------------------------
  const cpu = cpus();
  const lines: string[] = [];
  lines.push('');
  lines.push(`bench/task-start  ${new Date().toISOString()}`);
  lines.push(`machine: ${cpu.length} vCPUs (${cpu[0]?.model.trim() ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}`);
  lines.push(`task: busybox \`${BENCH_COMMAND.join(' ')}\`, memory 16, stopTimeout 1; instance type of the capacity provider's choice (m5a.large by default)`);
  if (background !== undefined) lines.push(`background load before the run: ${(100 * background).toFixed(0)}% of one core${background > 0.15 ? '  WARNING: the machine was not idle; numbers are noisy' : ''}`);
  lines.push(`warm: ${WARM} measured after ${WARMUP} warm-up, sequential, in batches of ${BATCH} left running then stopped; DescribeTasks polled ${POLL_MS} ms after each answer`);
  lines.push('');
  const rows: Row[] = [
    { name: 'cold: RunTask -> RUNNING, new instance', values: colds.map((c) => c.s.totalMs) },
    { name: 'warm host: RunTask -> RUNNING', values: warm.map((s) => s.totalMs) },
    ...(AWSVPC > 0 ? [{ name: 'warm awsvpc: RunTask -> RUNNING', values: awsvpc.map((s) => s.totalMs), ...(awsvpcError ? { note: `failed: ${awsvpcError}` } : {}) }] : []),
    { name: 'warm host: startedAt - createdAt (Berth clocks)', values: warm.map((s) => (s.startedAt ?? NaN) - (s.createdAt ?? NaN)) },
    { name: 'floor: runc run -d', values: bare },
    { name: 'floor: conmon + runc create + runc start', values: viaConmon.map((c) => c.total) },
    { name: '  of which conmon + runc create', values: viaConmon.map((c) => c.create) },
    { name: '  of which runc start', values: viaConmon.map((c) => c.start) },
    { name: 'floor: runtime library create+start', values: library },
    { name: 'info: spawn /bin/true from node', values: spawnTrue },
  ];
  lines.push(`${'row'.padEnd(50)}${'n'.padStart(5)}${'p50'.padStart(9)}${'p90'.padStart(9)}${'p99'.padStart(9)}${'max'.padStart(9)}   (ms)`);
  for (const r of rows) {
    lines.push(`${r.name.padEnd(50)}${String(r.values.filter(Number.isFinite).length).padStart(5)}${fmt(pct(r.values, 50)).padStart(9)}${fmt(pct(r.values, 90)).padStart(9)}${fmt(pct(r.values, 99)).padStart(9)}${fmt(pct(r.values, 100)).padStart(9)}${r.note ? `   ${r.note}` : ''}`);
  }
  const gaps = warm.map((s) => s.pollGapMs);
  lines.push(`polling: ${warmPolls} requests for ${WARMUP + WARM} warm tasks; the RUNNING answer came ${fmt(pct(gaps, 50))} ms (p50, max ${fmt(pct(gaps, 100))}) after the previous poll answer,`);
  lines.push('         so a warm latency overstates the true one by at most that (about half of it on average).');
  lines.push(`placement: the first poll answer naming the instance came ${fmt(pct(warm.map((s) => s.placedSeenMs ?? NaN), 50))} ms (p50) after RunTask was sent (includes the poll gap)`);
  const byBatch: string[] = [];
  for (let i = 0; i < warm.length; i += BATCH) byBatch.push(fmt(pct(warm.slice(i, i + BATCH).map((s) => s.totalMs), 50)));
  lines.push(...cpuReport(cpuUsed, WARM));
  lines.push(`warm host p50 per batch of ${BATCH} (in order): ${byBatch.join(' ')} ms`);
  lines.push(`cold starts, each: ${colds.map((c) => fmt(c.s.totalMs, 0)).join(' ')} ms`);
  lines.push('');

  breakdown(lines, 'warm host breakdown (Berth\'s timestamps + inotify on the instance data dir; integer-ms agent clock):', warm, warmSegments());
  if (awsvpc.length) { lines.push(''); breakdown(lines, 'warm awsvpc breakdown (the scheduler attaches the task network before sending the task):', awsvpc, warmSegments()); }
  lines.push('');
  const cd = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
  const coldSegs: { name: string; of: (c: Cold) => number | undefined }[] = [
    { name: 'RunTask call', of: (c) => c.s.runTaskMs },
    { name: 'RunTask answer -> instance data dir created (scheduler pass, fleet.launch)', of: (c) => cd(c.s.t0 + c.s.runTaskMs, c.dataDirAt) },
    { name: 'data dir -> agent code runs (cgroup, netns+veth, launcher, init mounts, tini, node boot)', of: (c) => cd(c.dataDirAt, c.agentCodeAt) },
    { name: 'agent code runs -> agent started (runtime set-up, adoption)', of: (c) => cd(c.agentCodeAt, c.agentReadyAt) },
    { name: 'agent started -> registered (WebSocket, hello, register)', of: (c) => cd(c.agentReadyAt, c.registeredAt) },
    { name: 'registered -> pullStartedAt (desired state)', of: (c) => cd(c.registeredAt, c.s.pullStartedAt) },
    { name: 'pull (skopeo inspect + copy, umoci unpack)', of: (c) => cd(c.s.pullStartedAt, c.s.pullStoppedAt) },
    { name: 'pullStoppedAt -> startedAt (create + start)', of: (c) => cd(c.s.pullStoppedAt, c.s.startedAt) },
    { name: 'startedAt -> RUNNING seen', of: (c) => cd(c.s.startedAt, c.s.t0 + c.s.totalMs) },
  ];
  lines.push(`cold breakdown (p50 / max over ${colds.length}; the agent logs "started" with ms precision):`);
  for (const seg of coldSegs) {
    const v = colds.map(seg.of).filter((x): x is number => x !== undefined);
    lines.push(`  ${seg.name.padEnd(92)}${fmt(pct(v, 50)).padStart(8)}${fmt(pct(v, 100)).padStart(8)}`);
  }
  lines.push('');
  const conmonAvg = mean(conmonRss);
  const parts = (m: { anon: number; file: number } | undefined) => (m ? ` (anon ${fmt(mib(m.anon))} + file ${fmt(mib(m.file))})` : '');
  lines.push(`memory: agent RSS ${fmt(mib(agentIdle?.rss ?? NaN))} MiB idle${parts(agentIdle)}, peak ${fmt(mib(sampler.peak))} MiB${parts(sampler.peakDetail)}`);
  lines.push(`        (sampled every 100 ms during the warm runs; file pages are mostly the node binary, shared with every node process), last ${fmt(mib(sampler.last))} MiB;`);
  lines.push(`        conmon RSS per container ${fmt(mib(conmonAvg), 2)} MiB (mean of ${conmonRss.length}, max ${fmt(mib(conmonRss.length ? Math.max(...conmonRss) : NaN), 2)})`);
  lines.push('');

  const warmP50 = pct(warm.map((s) => s.totalMs), 50);
  const floorP50 = pct(bare, 50);
  const coldP50 = pct(colds.map((c) => c.s.totalMs), 50);
  const coldMax = pct(colds.map((c) => c.s.totalMs), 100);
  lines.push('goals:');
  const goal = (pass: boolean, text: string, value: string) => lines.push(`  ${(pass ? 'PASS' : 'MISS').padEnd(5)} ${text.padEnd(40)} ${value}`);
  goal(warmP50 <= 2 * floorP50, 'warm p50 <= 2x bare-runc floor', `${fmt(warmP50)} ms vs 2 x ${fmt(floorP50)} = ${fmt(2 * floorP50)} ms (${fmt(warmP50 / floorP50, 1)}x)`);
  goal(warmP50 <= 250, 'warm p50 <= 250 ms', `${fmt(warmP50)} ms`);
  goal(coldP50 <= 1500, 'cold start <= 1.5 s (p50)', `p50 ${fmt(coldP50, 0)} ms, max ${fmt(coldMax, 0)} ms${coldMax > 1500 && coldP50 <= 1500 ? ' (max over)' : ''}`);
  goal(sampler.peak <= 64 * 1024 * 1024, 'agent RSS <= 64 MiB (peak)', `${fmt(mib(sampler.peak))} MiB`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  if (!interrupted) process.stderr.write(`bench:task-start failed: ${(e as Error)?.stack ?? e}\n`);
} finally {
  await cleanupAll();
}
process.exit(code);
