// bench/authz: what authorization and the audit trail cost the API, in one run. Three Berth
// processes, each with its own data dir, differ only in two switches that exist for this
// benchmark alone: BERTH_AUTHZ=off (no `authorize` hook) and BERTH_AUDIT=off (no trail):
//   full      authorization + audit (Berth as shipped)
//   audit     audit only (BERTH_AUTHZ=off)
//   bare      neither (BERTH_AUTHZ=off BERTH_AUDIT=off)
// The caller is an IAM user with an identity policy (an account root skips policy
// evaluation, so it would not measure authorization). The load is bench/api's ECS mix
// (RegisterTaskDefinition, DescribeClusters, ListTaskDefinitions, DescribeCapacityProviders,
// TagResource), sent as SigV4 requests signed once per round and replayed (within the
// allowed clock skew), so the load generator costs little and the server is the bottleneck.
// Rounds alternate between the configurations; the median of each is reported with the
// server's CPU time per request. Goal: full costs at most 15% of bare's throughput.
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { BerthProcess } from '../../test/helpers/berth.js';
import { summarizeProfile } from '../api/profile.js';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mkdirSync, readdirSync } from 'node:fs';

const { values: flags } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  process.stdout.write('usage: npm run bench:authz -- [--concurrency 16] [--duration 5] [--rounds 3] [--warmup 2] [--cpu-prof DIR]\n');
  process.exit(0);
}
const CONCURRENCY = Number(flags.concurrency);
const DURATION_MS = Number(flags.duration) * 1000;
const ROUNDS = Number(flags.rounds);
const WARMUP_MS = Number(flags.warmup) * 1000;
const GOAL = 0.15;
const Sha256 = Hash.bind(null, 'sha256') as any;

const here = dirname(fileURLToPath(import.meta.url));
const PROFILE_DIR = flags['cpu-prof'] ? resolve(flags['cpu-prof']) : undefined;
/** With --cpu-prof DIR, every Berth is profiled (bench/api's preload) from the first measured round. */
const profileEnv = (name: string): Record<string, string> => {
  if (!PROFILE_DIR) return {};
  mkdirSync(join(PROFILE_DIR, name), { recursive: true });
  return { NODE_OPTIONS: `--import=${pathToFileURL(join(here, '..', 'api', 'cpu-profile-preload.js')).href}`, BENCH_CPU_PROF_DIR: join(PROFILE_DIR, name) };
};

interface Target { name: string; env: Record<string, string>; berth: BerthProcess; user?: { accessKeyId: string; secretAccessKey: string } }

const root = mkdtempSync(join(tmpdir(), 'berth-bench-authz-'));
const targets: Target[] = ([
  { name: 'full', env: {} },
  { name: 'audit', env: { BERTH_AUTHZ: 'off' } },
  { name: 'bare', env: { BERTH_AUTHZ: 'off', BERTH_AUDIT: 'off' } },
] as { name: string; env: Record<string, string> }[]).map((t) => ({ ...t, berth: new BerthProcess(join(root, t.name, 'data'), { ...t.env, ...profileEnv(t.name), BERTH_MASTER_KEY_FILE: join(root, 'master.key') }) }));

async function cleanup(): Promise<void> {
  for (const t of targets) { try { if (t.berth.child) await t.berth.kill('SIGTERM'); } catch { /* gone */ } }
  rmSync(root, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { void cleanup().finally(() => process.exit(130)); });

function cli(t: Target, args: string[], creds?: { accessKeyId: string; secretAccessKey: string }): any {
  const r = t.berth.aws(args, creds ? { env: { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey } } : {});
  if (r.status !== 0) throw new Error(`${t.name}: aws ${args.join(' ')}: ${r.stderr}`);
  return r.json;
}

const TASK_DEFINITION = (family: string) => ({
  family, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'awsvpc', cpu: '256', memory: '512',
  containerDefinitions: [{ name: 'web', image: 'public.ecr.aws/nginx/nginx:stable', essential: true, memory: 256, portMappings: [{ containerPort: 80, protocol: 'tcp' }], environment: [{ name: 'MODE', value: 'bench' }] }],
});

async function setUp(t: Target): Promise<void> {
  await t.berth.start();
  const policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Clusters', Effect: 'Allow', Action: ['ecs:Describe*', 'ecs:List*', 'ecs:TagResource', 'ecs:CreateCluster', 'ecs:CreateCapacityProvider'], Resource: '*' },
      { Sid: 'TaskDefinitions', Effect: 'Allow', Action: 'ecs:RegisterTaskDefinition', Resource: '*' },
      { Sid: 'NoDeletes', Effect: 'Deny', Action: ['ecs:Delete*', 'ecs:Deregister*'], Resource: '*' },
    ],
  });
  cli(t, ['iam', 'create-user', '--user-name', 'bench']);
  cli(t, ['iam', 'put-user-policy', '--user-name', 'bench', '--policy-name', 'bench', '--policy-document', policy]);
  const key = cli(t, ['iam', 'create-access-key', '--user-name', 'bench']).AccessKey;
  t.user = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
  cli(t, ['ecs', 'create-cluster', '--cluster-name', 'bench'], t.user);
  cli(t, ['ecs', 'create-capacity-provider', '--name', 'benchcp', '--cluster', 'bench', '--managed-instances-provider',
    JSON.stringify({ infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['s'] } } })], t.user);
  cli(t, ['ecs', 'register-task-definition', '--cli-input-json', JSON.stringify(TASK_DEFINITION('benchlist'))], t.user);
}

interface Signed { headers: Record<string, string>; body: string }

/** The mix, signed now (valid for the server's 15 minutes of skew). */
async function signMix(t: Target): Promise<Signed[]> {
  const url = new URL(t.berth.creds.endpoint);
  const account = cli(t, ['sts', 'get-caller-identity'], t.user).Account as string;
  const clusterArn = `arn:aws:ecs:${t.berth.creds.region}:${account}:cluster/bench`;
  const bodies: [string, unknown][] = [
    ['RegisterTaskDefinition', TASK_DEFINITION('benchreg')],
    ['DescribeClusters', { clusters: ['bench'] }],
    ['ListTaskDefinitions', { familyPrefix: 'benchlist' }],
    ['DescribeCapacityProviders', { capacityProviders: ['benchcp'] }],
    ...Array.from({ length: 5 }, (_, i): [string, unknown] => ['TagResource', { resourceArn: clusterArn, tags: [{ key: `bench-${i}`, value: String(i) }] }]),
  ];
  const signer = new SignatureV4({ credentials: t.user!, region: t.berth.creds.region, service: 'ecs', sha256: Sha256, applyChecksum: false });
  const out: Signed[] = [];
  for (const [action, input] of bodies) {
    const body = JSON.stringify(input);
    const signed: any = await signer.sign({
      method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query: {},
      headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AmazonEC2ContainerServiceV20141113.${action}`, 'content-length': String(Buffer.byteLength(body)) },
      body,
    } as any);
    out.push({ headers: signed.headers, body });
  }
  return out;
}

function cpuSeconds(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function drive(t: Target, mix: Signed[], ms: number): Promise<{ requests: number; seconds: number; cpuPerReq: number }> {
  const url = new URL(t.berth.creds.endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0, done = 0, failed: string | undefined;
  const deadline = Date.now() + ms;
  const cpu0 = cpuSeconds(t.berth.child.pid);
  const started = process.hrtime.bigint();
  const one = (req: Signed) => new Promise<void>((ok) => {
    const r = request({ host: url.hostname, port: url.port, method: 'POST', path: '/', headers: req.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) failed ??= `${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`;
        done++;
        ok();
      });
    });
    r.on('error', (e) => { failed ??= e.message; ok(); });
    r.end(req.body);
  });
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < deadline && !failed) await one(mix[next++ % mix.length]!);
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuSeconds(t.berth.child.pid) - cpu0;
  agent.destroy();
  if (failed) throw new Error(`${t.name}: a request failed: ${failed}`);
  return { requests: done, seconds, cpuPerReq: (cpu / done) * 1e6 };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

async function main(): Promise<number> {
  process.stdout.write(`bench/authz: ${targets.map((t) => t.name).join(', ')}; ${CONCURRENCY} in flight, ${ROUNDS} rounds of ${DURATION_MS / 1000} s each (after ${WARMUP_MS / 1000} s of warm-up), ${cpus().length} CPUs, Node ${process.version}\n`);
  for (const t of targets) await setUp(t);
  const mixes = new Map<string, Signed[]>();
  for (const t of targets) mixes.set(t.name, await signMix(t));
  for (const t of targets) await drive(t, mixes.get(t.name)!, WARMUP_MS);
  if (PROFILE_DIR) for (const t of targets) t.berth.child.kill('SIGUSR2');
  const results = new Map<string, { rps: number[]; cpu: number[] }>(targets.map((t) => [t.name, { rps: [], cpu: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order so drift (thermal, other load) does not favour one configuration.
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const r = await drive(t, mixes.get(t.name)!, DURATION_MS);
      results.get(t.name)!.rps.push(r.requests / r.seconds);
      results.get(t.name)!.cpu.push(r.cpuPerReq);
    }
  }
  process.stdout.write('\nconfiguration            req/s (median; rounds)                  server CPU µs/req (median)\n');
  for (const t of targets) {
    const r = results.get(t.name)!;
    const label = { full: 'authz + audit', audit: 'audit only', bare: 'neither' }[t.name]!;
    process.stdout.write(`${label.padEnd(24)} ${median(r.rps).toFixed(0).padStart(6)}  (${r.rps.map((x) => x.toFixed(0)).join(' / ')})`.padEnd(65) + `${median(r.cpu).toFixed(0).padStart(6)}\n`);
  }
  const full = results.get('full')!, bare = results.get('bare')!, audit = results.get('audit')!;
  const cost = 1 - median(full.rps) / median(bare.rps);
  const auditCost = 1 - median(audit.rps) / median(bare.rps);
  const cpuCost = median(full.cpu) / median(bare.cpu) - 1;
  process.stdout.write(`\nthroughput cost of authorization + audit: ${(cost * 100).toFixed(1)}% (audit alone ${(auditCost * 100).toFixed(1)}%)\n`);
  process.stdout.write(`server CPU per request: +${(cpuCost * 100).toFixed(1)}% (${median(full.cpu).toFixed(0)} vs ${median(bare.cpu).toFixed(0)} µs)\n`);
  const pass = cost <= GOAL;
  process.stdout.write(`goal: authorization + audit cost ≤ ${GOAL * 100}% of throughput: ${pass ? 'PASS' : 'MISS'}\n`);
  return pass ? 0 : 1;
}

main().then(async (code) => {
  await cleanup();
  if (PROFILE_DIR) {
    for (const t of targets) {
      for (const f of readdirSync(join(PROFILE_DIR, t.name)).filter((x) => x.endsWith('.cpuprofile'))) {
        process.stdout.write(`\nprofile of ${t.name} (${join(PROFILE_DIR, t.name, f)}):\n${summarizeProfile(join(PROFILE_DIR, t.name, f), 25).join('\n')}\n`);
      }
    }
  }
  process.exit(code);
}, async (e) => {
  process.stderr.write(`bench:authz: ${(e as Error).stack ?? e}\n`);
  await cleanup();
  process.exit(2);
});
