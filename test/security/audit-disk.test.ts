// A full data disk must not lose audit records (issue 11, finding 9). Berth's data dir is a
// small ext4 filesystem of its own (a loop mount); the test fills it to the last byte, as a
// task writing to the instance's area would, then makes calls: reads (among them a
// DescribeTaskDefinition of a definition with a secret), a StopTask of the offending task,
// writes that would only add data, and reads until the database reserve runs out. After
// the space is freed: every call answered 2xx is in LookupEvents, every call that could
// not be recorded got a 503 that names the cause, `berth audit verify` passes, and
// /healthz said what was wrong meanwhile.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CreateClusterCommand, DescribeContainerInstancesCommand, ECSClient,
  RegisterTaskDefinitionCommand, RunTaskCommand,
} from '@aws-sdk/client-ecs';
import { BerthProcess, repoRoot } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, waitFor, waitForStatus, createProvider } from '../helpers/ecs.js';
import { raw, type RawResponse } from '../helpers/raw.js';

const cluster = 'disk';
const RESERVE_MB = 8;
const secret = `hunter2-${randomBytes(6).toString('hex')}`;
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

let root: string;
let mnt: string;
let berth: BerthProcess;
let registry: TestRegistry;
let ecs: ECSClient;
let victim: string;
let offender: string;
let mounted = false;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'berth-disk-'));
  mnt = join(root, 'mnt');
  mkdirSync(mnt);
  const img = join(root, 'disk.img');
  sh('truncate', ['-s', '160M', img]);
  sh('mkfs.ext4', ['-q', '-m', '0', img]);
  sh('mount', ['-o', 'loop', img, mnt]);
  mounted = true;
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  berth = await new BerthProcess(join(mnt, 'data'), { BERTH_DB_RESERVE_MB: String(RESERVE_MB) }).start();
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await createProvider(ecs, cluster, 'disk-cp');
  await ecs.send(new RegisterTaskDefinitionCommand({
    family: 'secretive', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{
      name: 'app', image: `${registry.address}/busybox:latest`, memory: 32, stopTimeout: 2, command: ['sleep', '3600'],
      environment: [{ name: 'PASSWORD', value: `berth:secret:${secret}` }],
    }],
  }));
  victim = (await ecs.send(new RunTaskCommand({ cluster, taskDefinition: 'secretive' }))).tasks![0]!.taskArn!;
  offender = (await ecs.send(new RunTaskCommand({ cluster, taskDefinition: 'secretive' }))).tasks![0]!.taskArn!;
  await waitForStatus(ecs, cluster, victim, 'RUNNING', 120_000);
  await waitForStatus(ecs, cluster, offender, 'RUNNING', 120_000);
});

after(async () => {
  if (berth) {
    await berth.kill('SIGTERM').catch(() => {});
    spawnSync(process.execPath, [cli, 'down'], { env: berth.env, encoding: 'utf8' });
  }
  await registry?.stop();
  if (mounted) spawnSync('umount', ['-l', mnt]);
  rmSync(root, { recursive: true, force: true });
});

async function healthz(): Promise<any> {
  return (await fetch(`${berth.creds.endpoint}/healthz`)).json();
}

/** Writes zeros until the filesystem has no byte left; returns how many were written. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4096, 512]) {
      const chunk = Buffer.alloc(size);
      try { for (;;) written += writeSync(fd, chunk); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e; }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

interface Answer { what: string; status: number; requestId: string; code?: string; message?: string }

const calls: Answer[] = [];

async function call(action: string, input: unknown, opts: { target?: string; service?: string } = {}): Promise<RawResponse> {
  const r = await raw(berth.creds, action, JSON.stringify(input), opts);
  calls.push({
    what: action, status: r.status, requestId: String(r.headers['x-amzn-requestid'] ?? ''),
    ...(r.json?.__type ? { code: r.json.__type, message: r.json.message } : {}),
  });
  return r;
}

/** Every CloudTrail event of the account, by request id. */
async function trailByRequestId(): Promise<Map<string, any>> {
  const out = new Map<string, any>();
  let token: string | undefined;
  do {
    const r = await raw(berth.creds, 'LookupEvents', JSON.stringify({ MaxResults: 50, ...(token ? { NextToken: token } : {}) }),
      { target: 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents', service: 'cloudtrail' });
    assert.equal(r.status, 200, r.body);
    for (const e of r.json.Events) { const rec = JSON.parse(e.CloudTrailEvent); out.set(rec.requestID, rec); }
    token = r.json.NextToken;
  } while (token);
  return out;
}

test('a full data disk: calls are answered only when recorded, the owner can stop the offender, /healthz and errors name the cause', async () => {
  const healthBefore = await healthz();
  const filler = join(mnt, 'filler.bin');
  const health: any[] = [];
  let td: RawResponse;
  let stop: RawResponse;
  let create: RawResponse;
  try {
    fill(filler);
    await new Promise((r) => setTimeout(r, 1_500)); // past Berth's status cache
    health.push(await healthz());
    // Reads, among them the definition with a secret; the owner stops what fills the disk;
    // a write that would only add data.
    td = await call('DescribeTaskDefinition', { taskDefinition: 'secretive' });
    await call('ListTasks', { cluster });
    await call('DescribeTasks', { cluster, tasks: [victim, offender] });
    stop = await call('StopTask', { cluster, task: offender, reason: 'it filled the disk' });
    create = await call('CreateCluster', { clusterName: 'more' });
    // Reads until the reserve is used up and a call's record cannot be committed at all
    // (Berth refuses calls first, recorded, once the reserve is nearly gone; those use up the rest).
    const many = Array.from({ length: 100 }, () => `arn:aws:ecs:${berth.creds.region}:${victim.split(':')[4]}:task/${cluster}/${randomBytes(16).toString('hex')}`);
    const uncommitted = () => calls.filter((c) => c.status === 503 && /audit record could not be committed/.test(c.message ?? '')).length;
    const deadline = Date.now() + 60_000;
    for (let round = 0; round < 1000 && uncommitted() < 8 && Date.now() < deadline; round++) {
      await Promise.all(Array.from({ length: 8 }, () => call('DescribeTasks', { cluster, tasks: many })));
    }
    health.push(await healthz());
  } finally {
    unlinkSync(filler);
  }
  // Space is back.
  const recovered = await waitFor('healthz ok again', async () => {
    const h = await healthz();
    return h.status === 'ok' && (h.disk === undefined || h.disk.reserve.availableBytes >= RESERVE_MB * 1024 * 1024 / 2) ? h : undefined;
  }, 30_000, 250);

  // Nothing was answered 5xx but 503s, and every 503 says why.
  for (const c of calls) {
    assert.ok(c.status === 200 || c.status === 503, `${c.what}: ${c.status} ${c.code} ${c.message}`);
    if (c.status === 503) {
      assert.equal(c.code, 'ServiceUnavailableException');
      assert.match(c.message!, /Berth's data disk is full \(\d+ bytes free on /);
    }
  }
  assert.equal(td.status, 200, td.body);
  assert.equal(stop.status, 200, `the owner can stop the offending task: ${stop.body}`);
  assert.equal(create.status, 503, create.body);
  assert.match(create.json.message, /^Berth's data disk is full \(\d+ bytes free on .*accepts only reads and calls that free resources/);

  // Every 2xx answer is in the trail. A 503 is either a refusal recorded as such (a write
  // refused before it ran) or a call whose record could not be committed (not in the trail).
  const trail = await trailByRequestId();
  for (const c of calls) {
    const rec = trail.get(c.requestId);
    if (c.status === 200) assert.ok(rec, `${c.what} (${c.requestId}) answered 200 but is not in LookupEvents`);
    else if (rec) assert.equal(rec.errorCode, 'ServiceUnavailableException', `${c.what} (${c.requestId}) answered ${c.status}, recorded as ${rec.errorCode}`);
  }
  assert.equal(trail.get(create.headers['x-amzn-requestid'] as string)?.errorCode, 'ServiceUnavailableException', 'the refused write is recorded');
  assert.ok(calls.some((c) => c.status === 503 && !trail.has(c.requestId) && /audit record could not be committed/.test(c.message!)),
    `some calls could not be recorded and were answered 503 instead (${calls.filter((c) => c.status === 200).length} answered, ${calls.filter((c) => c.status === 503).length} refused)`);
  const described = trail.get(td.headers['x-amzn-requestid'] as string);
  assert.equal(described.eventName, 'DescribeTaskDefinition');
  assert.ok(!JSON.stringify(described).includes(secret), 'the secret is not in the trail');
  const verify = spawnSync(process.execPath, [cli, 'audit', 'verify'], { env: berth.env, encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /^OK: \d+ records, chain intact, every seal verifies/);

  // /healthz said what was wrong meanwhile, and that it is over; so did the log.
  assert.equal(healthBefore.disk.state, 'ok');
  assert.ok(healthBefore.disk.reserve.availableBytes >= RESERVE_MB * 1024 * 1024 / 2, JSON.stringify(healthBefore.disk));
  for (const h of health) assert.equal(h.status, 'degraded', JSON.stringify(h));
  assert.equal(health[0].disk.state, 'short');
  assert.match(health[0].problems[0], new RegExp(`^Berth's data disk is full \\(\\d+ bytes free on \\S+ \\(ext4\\) mounted on ${mnt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, which holds `));
  assert.equal(recovered.disk.state, 'ok');
  assert.equal((await call('CreateCluster', { clusterName: 'after' })).status, 200);
  assert.match(berth.output, /disk: Berth's data disk is full \(\d+ bytes free on /);
  assert.match(berth.output, /disk: space is back on /);

  // The offender was stopped; the victim is unharmed.
  await waitForStatus(ecs, cluster, offender, 'STOPPED', 60_000);
  const t = await describeTask(ecs, cluster, victim);
  assert.equal(t.lastStatus, 'RUNNING');
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!;
  assert.equal(ci.status, 'ACTIVE');
});
