// bench/api: the same SDK-driven mixed ECS workload against Berth, against moto's server and
// against a bare node:http "ceiling" that replays Berth's response bytes, in one run.
// Prints req/s and p50/p99 latency per target and checks the goals (Berth >= 25x moto,
// Berth >= 30% of the ceiling, Berth p99 < 10 ms). `npm run bench:api -- --help` for flags.
//
// The load generator runs in this process; each server is a separate process, started,
// measured and stopped in turn (Berth, moto, ceiling). Every child process and the temp
// dir are removed at the end, also on failure or Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, DescribeCapacityProvidersCommand, DescribeClustersCommand,
  ECSClient, ListTaskDefinitionsCommand, RegisterTaskDefinitionCommand, TagResourceCommand,
  type RegisterTaskDefinitionCommandInput,
} from '@aws-sdk/client-ecs';
import { BerthProcess } from '../../test/helpers/berth.js';
import { summarizeProfile } from './profile.js';

const here = dirname(fileURLToPath(import.meta.url));
// The SDK warns once that Node 20 support ends in 2027; it is noise in benchmark output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// ---------------------------------------------------------------------------------------
// Flags

const USAGE = `usage: npm run bench:api -- [flags]

  --concurrency N     requests in flight per target (default 16)
  --duration S        measured seconds per target (default 10)
  --warmup S          warm-up seconds per target before measuring (default 2)
  --targets LIST      comma-separated subset of berth,moto,ceiling (default all three;
                      the ceiling needs berth, whose responses it replays)
  --moto-server PATH  moto's server command (default $MOTO_SERVER or moto_server on PATH)
  --list-all          ListTaskDefinitions without familyPrefix, so its answer grows with the
                      revisions RegisterTaskDefinition adds (default: list a one-revision family)
  --sdk-cache-middleware on|off
                      the SDK client option cacheMiddleware for the measured client
                      (default on: the client, not the server, is the bottleneck here)
  --cpu-prof DIR      CPU-profile the Berth process (warm-up and measurement) into
                      DIR/berth-PID.cpuprofile and print a summary
                      (again later: node dist/bench/api/profile.js FILE [TOP])
  --help              this text
`;

function parseFlags() {
  try {
    return parseArgs({
      options: {
        concurrency: { type: 'string', default: '16' },
        duration: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '2' },
        targets: { type: 'string', default: 'berth,moto,ceiling' },
        'moto-server': { type: 'string', default: process.env.MOTO_SERVER ?? 'moto_server' },
        'cpu-prof': { type: 'string' },
        'sdk-cache-middleware': { type: 'string', default: 'on' },
        'list-all': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`bench:api: ${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}
const flags = parseFlags();
if (flags.help) { process.stdout.write(USAGE); process.exit(0); }

function positive(name: string, text: string, zeroOk = false): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !zeroOk)) { process.stderr.write(`bench:api: --${name} must be a ${zeroOk ? 'non-negative' : 'positive'} number, got '${text}'\n`); process.exit(2); }
  return n;
}
const CONCURRENCY = Math.round(positive('concurrency', flags.concurrency));
const DURATION_MS = positive('duration', flags.duration) * 1000;
const WARMUP_MS = positive('warmup', flags.warmup, true) * 1000;
const TARGETS = new Set(flags.targets.split(',').map((s) => s.trim()).filter(Boolean));
for (const t of TARGETS) if (!['berth', 'moto', 'ceiling'].includes(t)) { process.stderr.write(`bench:api: unknown target '${t}'\n`); process.exit(2); }
if (TARGETS.has('ceiling') && !TARGETS.has('berth')) { process.stderr.write('bench:api: the ceiling replays Berth\'s responses; include berth in --targets\n'); process.exit(2); }
if (!['on', 'off'].includes(flags['sdk-cache-middleware'])) { process.stderr.write('bench:api: --sdk-cache-middleware must be on or off\n'); process.exit(2); }
const SDK_CACHE = flags['sdk-cache-middleware'] === 'on';
const LIST_ALL = flags['list-all'];
const PROFILE_DIR = flags['cpu-prof'] ? resolve(flags['cpu-prof']) : undefined;

// ---------------------------------------------------------------------------------------
// Clean-up of everything this run starts

const cleanups: { name: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const c = cleanups.pop()!;
      try { await c.fn(); } catch (e) { process.stderr.write(`bench:api: clean-up of ${c.name} failed: ${(e as Error).message}\n`); }
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => { process.stderr.write(`\nbench:api: ${sig}, cleaning up\n`); void cleanupAll().finally(() => process.exit(130)); });
}

/** SIGTERM (to the process group when `group`), then SIGKILL after a grace period. */
async function stopChild(child: ChildProcess, group = false, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const send = (sig: NodeJS.Signals) => { try { if (group) process.kill(-pid, sig); else child.kill(sig); } catch { /* gone */ } };
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  send('SIGTERM');
  const timer = new Promise<'timeout'>((ok) => setTimeout(() => ok('timeout'), graceMs).unref());
  if (await Promise.race([exited, timer]) === 'timeout') { send('SIGKILL'); await exited; }
  else if (group) send('SIGKILL'); // leftovers in the group, if any
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => ok(port)); });
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc; undefined elsewhere. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch { return undefined; }
}

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat. */
function machineBusySeconds(): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100;
  } catch { return undefined; }
}

/** Cores kept busy by other processes over `ms` while this run is idle (a noisy-machine check). */
async function backgroundLoad(ms = 1000): Promise<number | undefined> {
  const m0 = machineBusySeconds(), c0 = process.cpuUsage();
  await new Promise((ok) => setTimeout(ok, ms));
  const m1 = machineBusySeconds(), c = process.cpuUsage(c0);
  return m0 === undefined || m1 === undefined ? undefined : Math.max(0, (m1 - m0 - (c.user + c.system) / 1e6) / (ms / 1000));
}

// ---------------------------------------------------------------------------------------
// Servers

interface Server { name: string; endpoint: string; pid: number | undefined; credentials: { accessKeyId: string; secretAccessKey: string }; region: string }

async function startBerth(root: string): Promise<Server> {
  const extraEnv: Record<string, string> = {};
  if (PROFILE_DIR) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    // Node 20 does not allow --cpu-prof in NODE_OPTIONS; a preload drives the inspector instead.
    extraEnv.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(join(here, 'cpu-profile-preload.js')).href}`.trim();
    extraEnv.BENCH_CPU_PROF_DIR = PROFILE_DIR;
  }
  const b = new BerthProcess(join(root, 'data'), extraEnv);
  cleanups.push({ name: 'Berth', fn: () => (b.child ? stopChild(b.child) : undefined) });
  await b.start();
  return {
    name: 'berth', endpoint: b.creds.endpoint, pid: b.child.pid, region: b.creds.region || 'us-east-1',
    credentials: { accessKeyId: b.creds.accessKeyId, secretAccessKey: b.creds.secretAccessKey },
  };
}

function waitForHttp(url: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((ok, fail) => {
    let done = false;
    const finish = (e?: Error) => { if (!done) { done = true; child.off('exit', onExit); if (e) fail(e); else ok(); } };
    const onExit = (code: number | null, sig: string | null) => finish(new Error(`exited (${code ?? sig}) before answering: ${output()}`));
    child.once('exit', onExit);
    child.once('error', (e) => finish(e));
    const attempt = () => {
      if (done) return;
      const req = httpGet(url, { agent: false }, (res) => { res.resume(); finish(); });
      req.on('error', () => {
        if (Date.now() > until) finish(new Error(`did not answer within ${timeoutMs / 1000}s: ${output()}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

async function startMoto(region: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(flags['moto-server'], ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  cleanups.push({ name: 'moto_server', fn: () => stopChild(child, true) });
  let output = '';
  const keep = (d: Buffer) => { output = (output + d.toString()).slice(-4000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  try {
    await waitForHttp(`http://127.0.0.1:${port}/moto-api/`, child, () => output, 30_000);
  } catch (e) {
    throw new Error(`moto_server (${flags['moto-server']}) ${(e as Error).message}\n` +
      'Install it with `pip install "moto[server]"`, pass --moto-server PATH, or leave moto out with --targets berth,ceiling.');
  }
  return { name: 'moto', endpoint: `http://127.0.0.1:${port}`, pid: child.pid, region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
}

async function startCeiling(root: string, responses: Map<string, string>, region: string): Promise<Server> {
  const file = join(root, 'ceiling-responses.json');
  writeFileSync(file, JSON.stringify(Object.fromEntries(responses)));
  const child = spawn(process.execPath, [join(here, 'ceiling-server.js'), file], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push({ name: 'ceiling server', fn: () => stopChild(child) });
  let output = '';
  const port = await new Promise<number>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`ceiling server did not start: ${output}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      const m = /listening (\d+)/.exec(output);
      if (m) { clearTimeout(timer); ok(Number(m[1])); }
    });
    child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`ceiling server exited with ${code}: ${output}`)); });
  });
  child.removeAllListeners('exit');
  return { name: 'ceiling', endpoint: `http://127.0.0.1:${port}`, pid: child.pid, region, credentials: { accessKeyId: 'AKIDBENCHCEILING', secretAccessKey: 'bench' } };
}

// ---------------------------------------------------------------------------------------
// Clients and the workload

interface Client { ecs: ECSClient; close(): void }

/**
 * An SDK client with its own keep-alive agent. `cacheMiddleware` (an ordinary SDK client
 * option) reuses the resolved middleware stack per command type instead of rebuilding it
 * on every send, which takes a good share of the client's CPU; set-up uses a plain client
 * because it adds a capture middleware to the stack.
 */
function client(server: Server, cacheMiddleware = false): Client {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, maxFreeSockets: CONCURRENCY });
  const ecs = new ECSClient({
    endpoint: server.endpoint, region: server.region, credentials: server.credentials, maxAttempts: 1,
    requestHandler: { httpAgent: agent, requestTimeout: 30_000 },
    cacheMiddleware,
  });
  return { ecs, close: () => { ecs.destroy(); agent.destroy(); } };
}

/** What the workload refers to on a target (created during set-up). */
interface Fixture { clusterName: string; clusterArn: string; capacityProvider: string }

const LIST_FAMILY = 'benchlist';
const REGISTER_FAMILY = 'benchreg';
const TAG_KEYS = 20;

function taskDefinition(family: string): RegisterTaskDefinitionCommandInput {
  return {
    family,
    requiresCompatibilities: ['MANAGED_INSTANCES'],
    networkMode: 'awsvpc',
    cpu: '256',
    memory: '512',
    containerDefinitions: [{
      name: 'web', image: 'public.ecr.aws/nginx/nginx:stable', essential: true, memory: 256,
      portMappings: [{ containerPort: 80, protocol: 'tcp' }],
      environment: [{ name: 'MODE', value: 'bench' }],
    }],
  };
}

type Send = (ecs: ECSClient, i: number, fx: Fixture) => Promise<unknown>;
const ACTIONS: { name: string; send: Send }[] = [
  { name: 'RegisterTaskDefinition', send: (ecs) => ecs.send(new RegisterTaskDefinitionCommand(taskDefinition(REGISTER_FAMILY))) },
  { name: 'DescribeClusters', send: (ecs, _i, fx) => ecs.send(new DescribeClustersCommand({ clusters: [fx.clusterName] })) },
  // Lists the family registered once in set-up, so the answer (and the work behind it) stays
  // the same size all run long while RegisterTaskDefinition keeps adding revisions elsewhere.
  // (--list-all drops familyPrefix: then the first page of 100 of a growing list, on moto all of it.)
  { name: 'ListTaskDefinitions', send: (ecs) => ecs.send(new ListTaskDefinitionsCommand(LIST_ALL ? {} : { familyPrefix: LIST_FAMILY })) },
  { name: 'DescribeCapacityProviders', send: (ecs, _i, fx) => ecs.send(new DescribeCapacityProvidersCommand({ capacityProviders: [fx.capacityProvider] })) },
  {
    name: 'TagResource',
    send: (ecs, i, fx) => ecs.send(new TagResourceCommand({ resourceArn: fx.clusterArn, tags: [{ key: `bench-${i % TAG_KEYS}`, value: String(i) }] })),
  },
];

async function setUp(server: Server, ecs: ECSClient): Promise<Fixture> {
  const cluster = await ecs.send(new CreateClusterCommand({ clusterName: 'bench' }));
  const clusterArn = cluster.cluster?.clusterArn;
  if (!clusterArn) throw new Error(`${server.name}: CreateCluster returned no clusterArn`);
  if (server.name === 'moto') {
    // moto 5 accepts only autoScalingGroupProvider (it ignores managedInstancesProvider and cluster).
    await ecs.send(new CreateCapacityProviderCommand({
      name: 'benchcp',
      autoScalingGroupProvider: {
        autoScalingGroupArn: `arn:aws:autoscaling:${server.region}:123456789012:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/bench`,
        managedScaling: { status: 'DISABLED' }, managedTerminationProtection: 'DISABLED',
      },
    }));
  } else {
    await ecs.send(new CreateCapacityProviderCommand({
      name: 'benchcp', cluster: 'bench',
      managedInstancesProvider: {
        infrastructureRoleArn: 'r',
        instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['s'] } },
      },
    }));
  }
  await ecs.send(new RegisterTaskDefinitionCommand(taskDefinition(LIST_FAMILY)));
  return { clusterName: 'bench', clusterArn, capacityProvider: 'benchcp' };
}

/**
 * Sends each action once and checks the answers; with `capture`, keeps the raw response
 * body per X-Amz-Target (read below the SDK's deserializer, then handed back to it).
 */
async function smokeRound(server: Server, ecs: ECSClient, fx: Fixture, capture?: Map<string, string>): Promise<void> {
  const name = 'benchCaptureResponse';
  if (capture) {
    ecs.middlewareStack.add(((next: (a: any) => Promise<any>) => async (args: any) => {
      const out = await next(args);
      const chunks: Buffer[] = [];
      for await (const c of out.response.body as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
      const body = Buffer.concat(chunks);
      out.response.body = body;
      if (out.response.statusCode === 200) capture.set(String(args.request.headers['x-amz-target']), body.toString('utf8'));
      return out;
    }) as any, { step: 'deserialize', priority: 'low', name });
  }
  try {
    const out: Record<string, any> = {};
    for (let i = 0; i < ACTIONS.length; i++) out[ACTIONS[i]!.name] = await ACTIONS[i]!.send(ecs, i, fx);
    const problems: string[] = [];
    if (out.DescribeClusters.clusters?.length !== 1) problems.push('DescribeClusters did not find the cluster');
    if (out.DescribeCapacityProviders.capacityProviders?.length !== 1) problems.push('DescribeCapacityProviders did not find the provider');
    if (!LIST_ALL && out.ListTaskDefinitions.taskDefinitionArns?.length !== 1) problems.push(`ListTaskDefinitions returned ${out.ListTaskDefinitions.taskDefinitionArns?.length} ARNs, expected 1`);
    if (!out.RegisterTaskDefinition.taskDefinition?.taskDefinitionArn) problems.push('RegisterTaskDefinition returned no ARN');
    if (problems.length) throw new Error(`${server.name}: set-up check failed: ${problems.join('; ')}`);
  } finally {
    if (capture) ecs.middlewareStack.remove(name);
  }
}

// ---------------------------------------------------------------------------------------
// Load generation and statistics

interface Run {
  completed: number;
  seconds: number;
  latencies: Map<string, number[]>; // per action, ms
  errors: Map<string, number>;
  loadGenCpu: number; // fraction of one core
  serverCpu: number | undefined;
  /** Cores used by everything else on the machine meanwhile (noise). */
  otherCpu: number | undefined;
}

async function drive(ecs: ECSClient, fx: Fixture, ms: number, serverPid: number | undefined, counter: { next: number }): Promise<Run> {
  const latencies = new Map(ACTIONS.map((a) => [a.name, [] as number[]]));
  const errors = new Map<string, number>();
  let completed = 0;
  const cpu0 = process.cpuUsage();
  const server0 = cpuSecondsOf(serverPid);
  const machine0 = machineBusySeconds();
  const start = performance.now();
  const deadline = start + ms;
  let last = start;
  const worker = async () => {
    while (performance.now() < deadline) {
      const i = counter.next++;
      const action = ACTIONS[i % ACTIONS.length]!;
      const t0 = performance.now();
      try {
        await action.send(ecs, i, fx);
        last = performance.now();
        latencies.get(action.name)!.push(last - t0);
        completed++;
      } catch (e) {
        last = performance.now();
        const key = `${action.name}: ${(e as Error).name}: ${(e as Error).message}`.slice(0, 200);
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (last - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const server1 = cpuSecondsOf(serverPid);
  const machine1 = machineBusySeconds();
  const loadGenCpu = (cpu.user + cpu.system) / 1e6 / seconds;
  const serverCpu = server0 !== undefined && server1 !== undefined ? (server1 - server0) / seconds : undefined;
  const otherCpu = machine0 !== undefined && machine1 !== undefined && serverCpu !== undefined
    ? Math.max(0, (machine1 - machine0) / seconds - loadGenCpu - serverCpu) : undefined;
  return { completed, seconds, latencies, errors, loadGenCpu, serverCpu, otherCpu };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Summary { name: string; rps: number; p50: number; p99: number; errors: number; run: Run; perAction: Map<string, { p50: number; p99: number }> }

function summarize(name: string, run: Run): Summary {
  const all = Float64Array.from([...run.latencies.values()].flat()).sort();
  const perAction = new Map<string, { p50: number; p99: number }>();
  for (const [a, l] of run.latencies) { const s = Float64Array.from(l).sort(); perAction.set(a, { p50: percentile(s, 50), p99: percentile(s, 99) }); }
  const errors = [...run.errors.values()].reduce((s, n) => s + n, 0);
  return { name, rps: run.completed / run.seconds, p50: percentile(all, 50), p99: percentile(all, 99), errors, run, perAction };
}

async function measure(server: Server, ecs: ECSClient, fx: Fixture): Promise<Summary> {
  const counter = { next: 0 };
  if (WARMUP_MS > 0) {
    process.stderr.write(`  ${server.name}: warming up ${WARMUP_MS / 1000}s...\n`);
    const w = await drive(ecs, fx, WARMUP_MS, undefined, counter);
    if (w.errors.size > 0) throw new Error(`${server.name}: errors during warm-up: ${[...w.errors].map(([k, n]) => `${n}x ${k}`).join('; ')}`);
  }
  process.stderr.write(`  ${server.name}: measuring ${DURATION_MS / 1000}s...\n`);
  const s = summarize(server.name, await drive(ecs, fx, DURATION_MS, server.pid, counter));
  process.stderr.write(`  ${server.name}: ${s.rps.toFixed(0)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, ${s.errors} errors\n`);
  return s;
}

// ---------------------------------------------------------------------------------------
// Main

const LABELS: Record<string, string> = { berth: 'Berth', moto: 'moto_server', ceiling: 'bare node:http' };

function report(results: Map<string, Summary>, capturedBytes: Map<string, string>, background: number | undefined): { ok: boolean } {
  const cpu = cpus();
  const lines: string[] = [];
  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  lines.push('');
  lines.push(`bench/api  ${new Date().toISOString()}`);
  lines.push(`machine: ${cpu.length} CPU cores (${cpu[0]?.model.trim() ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${process.platform}`);
  lines.push(`note: the load generator (this process: @aws-sdk/client-ecs, keep-alive agent, cacheMiddleware ${SDK_CACHE ? 'on' : 'off'}) and the server under test share these ${cpu.length} cores.`);
  lines.push(`workload: ${CONCURRENCY} in flight; 20% each of ${ACTIONS.map((a) => a.name).join(', ')}; warm-up ${WARMUP_MS / 1000}s, measured ${DURATION_MS / 1000}s per target`);
  lines.push(`          ListTaskDefinitions ${LIST_ALL ? 'without familyPrefix (--list-all: a growing list)' : `familyPrefix=${LIST_FAMILY} (one revision; RegisterTaskDefinition adds to ${REGISTER_FAMILY})`}`);
  lines.push('');
  lines.push(`${'target'.padEnd(16)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'requests'.padStart(10)}${'errors'.padStart(8)}${'server CPU'.padStart(12)}${'loadgen CPU'.padStart(13)}${'other CPU'.padStart(11)}${'server µs/req'.padStart(15)}`);
  for (const [name, s] of results) {
    const pc = (v: number | undefined) => (v === undefined ? '-' : `${(100 * v).toFixed(0)}%`);
    const sc = pc(s.run.serverCpu);
    lines.push(`${LABELS[name]!.padEnd(16)}${f(s.rps, 0).padStart(9)}${f(s.p50).padStart(9)}${f(s.p99).padStart(9)}${String(s.run.completed).padStart(10)}${String(s.errors).padStart(8)}${sc.padStart(12)}${pc(s.run.loadGenCpu).padStart(13)}${pc(s.run.otherCpu).padStart(11)}${(s.run.serverCpu === undefined ? '-' : f((1e6 * s.run.serverCpu) / s.rps, 0)).padStart(15)}`);
  }
  lines.push('  (CPU columns: % of one core during the measured window; "other" = the rest of the machine, i.e. noise;');
  lines.push('   server µs/req = server CPU time per request, independent of how fast the load generator is)');
  if (background !== undefined) {
    lines.push(`background load before the run: ${(100 * background).toFixed(0)}% of one core${background > 0.15 ? '  WARNING: the machine is not idle; numbers are noisy' : ''}`);
  }
  lines.push('');
  lines.push(`per action p50 / p99 ms:`);
  lines.push(`${''.padEnd(27)}${[...results.keys()].map((n) => LABELS[n]!.padStart(20)).join('')}`);
  for (const a of ACTIONS) {
    lines.push(`${a.name.padEnd(27)}${[...results.values()].map((s) => { const x = s.perAction.get(a.name)!; return `${f(x.p50)} / ${f(x.p99)}`.padStart(20); }).join('')}`);
  }
  if (capturedBytes.size) {
    lines.push(`ceiling replays Berth's set-up responses (bytes): ${ACTIONS.map((a) => `${a.name} ${Buffer.byteLength(capturedBytes.get(`AmazonEC2ContainerServiceV20141113.${a.name}`) ?? '')}`).join(', ')}`);
  }
  const errors = [...results.values()].flatMap((s) => [...s.run.errors].map(([k, n]) => `  ${s.name}: ${n}x ${k}`));
  if (errors.length) { lines.push(''); lines.push('errors:'); lines.push(...errors.slice(0, 20)); }

  lines.push('');
  lines.push('goals:');
  const berth = results.get('berth'), moto = results.get('moto'), ceiling = results.get('ceiling');
  const goal = (text: string, value: string, pass: boolean | undefined) =>
    lines.push(`  ${(pass === undefined ? 'SKIP' : pass ? 'PASS' : 'MISS').padEnd(5)} ${text.padEnd(34)} ${value}`);
  const ratio = berth && moto ? berth.rps / moto.rps : undefined;
  goal('Berth >= 25x moto throughput', ratio === undefined ? '(not measured)' : `Berth/moto = ${ratio.toFixed(1)}x`, ratio === undefined ? undefined : ratio >= 25);
  const share = berth && ceiling ? berth.rps / ceiling.rps : undefined;
  goal('Berth >= 30% of bare-Node ceiling', share === undefined ? '(not measured)' : `Berth = ${(100 * share).toFixed(0)}% of ceiling`, share === undefined ? undefined : share >= 0.3);
  goal('Berth p99 < 10 ms', berth ? `p99 = ${berth.p99.toFixed(2)} ms` : '(not measured)', berth ? berth.p99 < 10 : undefined);
  const cost = (s: Summary | undefined) => (s?.run.serverCpu === undefined ? undefined : (1e6 * s.run.serverCpu) / s.rps);
  const [bc, mc, cc] = [cost(berth), cost(moto), cost(ceiling)];
  if (bc !== undefined) {
    lines.push(`  info  server CPU per request: Berth ${bc.toFixed(0)} µs${mc !== undefined ? `, moto ${mc.toFixed(0)} µs (moto/Berth = ${(mc / bc).toFixed(1)}x)` : ''}` +
      `${cc !== undefined ? `, bare node ${cc.toFixed(0)} µs (Berth = ${((100 * cc) / bc).toFixed(0)}% of bare-node efficiency)` : ''}`);
  }
  if (berth && ceiling && berth.p99 >= 10 && ceiling.p99 >= 10) {
    lines.push(`  note  even the bare server has p99 ${ceiling.p99.toFixed(1)} ms at ${CONCURRENCY} in flight: latency here is mostly queueing in the load generator.`);
  }
  if (ceiling && ceiling.run.loadGenCpu > 0.85) {
    lines.push(`  note  the load generator used ${(100 * ceiling.run.loadGenCpu).toFixed(0)}% of a core against the bare server: the ceiling is the SDK client's, not the server's.`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return { ok: errors.length === 0 };
}

function listProfiles(dir: string): string[] {
  try { return readdirSync(dir).filter((n) => n.endsWith('.cpuprofile')).map((n) => join(dir, n)); } catch { return []; }
}

async function main(): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  cleanups.push({ name: 'temp dir', fn: () => rmSync(root, { recursive: true, force: true }) });
  const results = new Map<string, Summary>();
  const profilesBefore = new Set(PROFILE_DIR ? listProfiles(PROFILE_DIR) : []);
  const captured = new Map<string, string>();
  let region = 'us-east-1';
  let berthFixture: Fixture | undefined;
  const background = await backgroundLoad();
  if (background !== undefined && background > 0.15) {
    process.stderr.write(`bench:api: WARNING: other processes keep ${(100 * background).toFixed(0)}% of a core busy; results will be noisy\n`);
  }

  if (TARGETS.has('berth')) {
    process.stderr.write('bench:api: starting Berth...\n');
    const server = await startBerth(root);
    region = server.region;
    const setup = client(server), c = client(server, SDK_CACHE);
    try {
      const fx = await setUp(server, setup.ecs);
      await smokeRound(server, setup.ecs, fx, captured);
      if (captured.size !== ACTIONS.length) throw new Error(`captured ${captured.size} of ${ACTIONS.length} Berth responses`);
      berthFixture = fx;
      if (PROFILE_DIR && server.pid !== undefined) process.kill(server.pid, 'SIGUSR2'); // start profiling
      results.set('berth', await measure(server, c.ecs, fx));
    } finally { setup.close(); c.close(); }
    await cleanups.pop()!.fn(); // stop Berth (writes its CPU profile, if any)
  }
  if (TARGETS.has('moto')) {
    process.stderr.write('bench:api: starting moto_server...\n');
    const server = await startMoto(region);
    const setup = client(server), c = client(server, SDK_CACHE);
    try {
      const fx = await setUp(server, setup.ecs);
      await smokeRound(server, setup.ecs, fx);
      results.set('moto', await measure(server, c.ecs, fx));
    } finally { setup.close(); c.close(); }
    await cleanups.pop()!.fn();
  }
  if (TARGETS.has('ceiling')) {
    process.stderr.write('bench:api: starting the bare node:http ceiling...\n');
    const server = await startCeiling(root, captured, region);
    const setup = client(server), c = client(server, SDK_CACHE);
    try {
      await smokeRound(server, setup.ecs, berthFixture!);
      results.set('ceiling', await measure(server, c.ecs, berthFixture!));
    } finally { setup.close(); c.close(); }
    await cleanups.pop()!.fn();
  }

  const { ok } = report(results, captured, background);
  if (PROFILE_DIR) {
    const profiles = listProfiles(PROFILE_DIR).filter((f) => !profilesBefore.has(f));
    const biggest = profiles.sort((a, b) => statSync(b).size - statSync(a).size)[0];
    if (biggest) process.stdout.write('\n' + summarizeProfile(biggest).join('\n') + '\n');
    else process.stdout.write(`\nno .cpuprofile found in ${PROFILE_DIR}\n`);
  }
  return ok ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  process.stderr.write(`bench:api failed: ${(e as Error)?.stack ?? e}\n`);
} finally {
  await cleanupAll();
}
process.exit(code);
