// Attacks on the control plane's own doors (issue 11, findings 11 and 12): taking over
// another principal's ECS Exec session into a real task, signed header names that reach an
// object prototype, /metrics without credentials or from another account, and a restart
// refused because server.json names a zombie or a reused pid.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import {
  CreateClusterCommand, DescribeContainerInstancesCommand, ECSClient, ExecuteCommandCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand,
} from '@aws-sdk/client-ecs';
import { BerthProcess, repoRoot, startTestBerth, type Creds, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, waitFor, waitForStatus, createProvider } from '../helpers/ecs.js';
import { raw } from '../helpers/raw.js';
import { jsonCall, userWithPolicy, type Keys } from '../helpers/iam.js';
import { SsmClient, type SessionInfo } from '../helpers/ssm-client.js';
import { SqliteStore } from '../../src/store/store.js';
import { MasterKey } from '../../src/identity/master-key.js';
import { Credentials } from '../../src/identity/credentials.js';

const cluster = 'cp-sec';
const METRICS_TOKEN = 'scrape-credential-for-tests-0123456789';
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const Sha256 = Hash.bind(null, 'sha256') as any;

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let victim: string; // the administrator's task, started with enableExecuteCommand
let other: Creds; // a second account's root
let mallory: Keys; // allowed ssm:ResumeSession/TerminateSession, denied ecs:ExecuteCommand
let deputy: Keys; // allowed ecs:ExecuteCommand on the task: may take sessions over

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  berth = await startTestBerth({ BERTH_METRICS_TOKEN: METRICS_TOKEN, BERTH_EXEC_RESUME_WINDOW: '30' });
  ecs = berth.ecs();
  other = createAccount(berth);
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await createProvider(ecs, cluster, 'cp-sec-cp');
  await ecs.send(new RegisterTaskDefinitionCommand({
    family: 'victim-family', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{ name: 'app', image: `${registry.address}/busybox:latest`, memory: 48, stopTimeout: 2, command: ['sleep', '3600'] }],
  }));
  victim = (await ecs.send(new RunTaskCommand({ cluster, taskDefinition: 'victim-family', enableExecuteCommand: true }))).tasks![0]!.taskArn!;
  await waitForStatus(ecs, cluster, victim, 'RUNNING', 120_000);
  mallory = userWithPolicy(berth, 'mallory', { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: ['ssm:ResumeSession', 'ssm:TerminateSession', 'ecs:Describe*', 'ecs:List*', 'berth:GetMetrics'], Resource: '*' },
    { Effect: 'Deny', Action: 'ecs:ExecuteCommand', Resource: '*' },
  ] });
  deputy = userWithPolicy(berth, 'deputy', { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: ['ssm:ResumeSession', 'ssm:TerminateSession', 'ecs:ExecuteCommand', 'ecs:Describe*'], Resource: '*' },
  ] });
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

/** A second account with its own root access key, written where Berth keeps keys. */
function createAccount(b: TestBerth): Creds {
  const store = new SqliteStore(b.dataDir);
  try {
    const master = MasterKey.fromBytes(Buffer.from(readFileSync(b.env.BERTH_MASTER_KEY_FILE!, 'utf8').trim(), 'base64'));
    const accountId = '210987654321';
    store.put('account', 'global', accountId, { accountId, name: 'other', createdAt: Date.now() });
    const { record, secret } = new Credentials(store, master).createAccessKey(accountId, 'root', `iam::${accountId}:root`, Date.now());
    return { ...b.creds, accessKeyId: record.accessKeyId, secretAccessKey: secret };
  } finally {
    store.close();
  }
}

function sessionRecords(): Record<string, any>[] {
  const r = berth.cli(['sessions', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** CloudTrail events of one name in the caller's account, newest first (the aws CLI). */
function trail(eventName: string, as?: Creds): Record<string, any>[] {
  const r = berth.aws(['cloudtrail', 'lookup-events', '--lookup-attributes', `AttributeKey=EventName,AttributeValue=${eventName}`, '--max-results', '50'],
    as ? { env: { AWS_ACCESS_KEY_ID: as.accessKeyId, AWS_SECRET_ACCESS_KEY: as.secretAccessKey } } : {});
  assert.equal(r.status, 0, r.stderr);
  return r.json.Events.map((e: any) => JSON.parse(e.CloudTrailEvent));
}

async function victimUnharmed(): Promise<void> {
  const t = await describeTask(ecs, cluster, victim);
  assert.equal(t.lastStatus, 'RUNNING');
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!;
  assert.equal(ci.status, 'ACTIVE');
}

const ssm = (keys: Keys, action: string, sessionId: string) => jsonCall(berth, keys, 'ssm', `AmazonSSM.${action}`, { SessionId: sessionId });

test('ECS Exec: a principal denied ecs:ExecuteCommand cannot resume or terminate the administrator\'s live session; one allowed it takes it over, recorded', async () => {
  const r = await ecs.send(new ExecuteCommandCommand({ cluster, task: victim, container: 'app', interactive: true, command: 'sh' }));
  const session = r.session as SessionInfo;
  const owner = new SsmClient(session);
  await owner.connect();
  await owner.waitForText('#');
  try {
    // The attack: ResumeSession for a fresh token (then a root shell in the session), TerminateSession to kick the owner.
    const resumed = await ssm(mallory, 'ResumeSession', session.sessionId);
    assert.equal(resumed.code, 'AccessDeniedException', resumed.body);
    assert.equal(resumed.json.TokenValue, undefined, 'no token for another principal\'s session');
    assert.match(resumed.message!, /^User: arn:aws:iam::\d{12}:user\/mallory is not authorized to perform: ssm:ResumeSession on resource: arn:aws:ssm:[a-z0-9-]+:\d{12}:session\/ecs-execute-command-/);
    const terminated = await ssm(mallory, 'TerminateSession', session.sessionId);
    assert.equal(terminated.code, 'AccessDeniedException', terminated.body);

    // The owner's session is untouched: still connected, still its shell.
    owner.type('echo still-$((40+2))\r');
    await owner.waitForText('still-42');
    assert.equal(owner.closed, false);
    const mine = sessionRecords().find((x) => x.sessionId === session.sessionId)!;
    assert.equal(mine.status, 'ACTIVE');
    assert.match(mine.principalArn, /:root$/);
    assert.equal(mine.previousOwners, undefined);

    // Both attempts are in the audit trail, as mallory's, refused.
    for (const name of ['ResumeSession', 'TerminateSession']) {
      const e = trail(name).find((x) => x.userIdentity?.userName === 'mallory' && JSON.stringify(x.requestParameters).includes(session.sessionId));
      assert.ok(e, `mallory's ${name} is in the trail`);
      assert.equal(e.errorCode, 'AccessDeniedException');
    }

    // A principal allowed ecs:ExecuteCommand on the task may take the session over: it becomes the owner.
    const taken = await ssm(deputy, 'ResumeSession', session.sessionId);
    assert.equal(taken.status, 200, taken.body);
    assert.ok(taken.json.TokenValue);
    const record = sessionRecords().find((x) => x.sessionId === session.sessionId)!;
    assert.match(record.principalArn, /:user\/deputy$/);
    assert.equal(record.accessKeyId, deputy.accessKeyId);
    assert.equal(record.previousOwners.length, 1);
    assert.match(record.previousOwners[0].principalArn, /:root$/);
    assert.equal(record.ownerSince.by, 'ResumeSession');
    const table = berth.cli(['sessions', '--task', victim.split('/').pop()!]);
    assert.match(table.stdout, /user\/deputy \(took over from arn:aws:iam::\d{12}:root\)/);
    // And now the first owner is "another principal" for mallory's purposes too: still refused.
    assert.equal((await ssm(mallory, 'ResumeSession', session.sessionId)).code, 'AccessDeniedException');
    // As the owner, the deputy may end it; the first owner's connection is closed with it.
    const ended = await ssm(deputy, 'TerminateSession', session.sessionId);
    assert.equal(ended.status, 200, ended.body);
    await owner.waitClosed(20_000);
    assert.equal(sessionRecords().find((x) => x.sessionId === session.sessionId)!.endReason, 'terminated');
  } finally {
    owner.close();
  }
  await victimUnharmed();
});

test('signed header names that reach an object prototype (__proto__, constructor, toString) are a signature error, not a 500', async () => {
  for (const names of ['host;__proto__;constructor', 'host;constructor', 'host;tostring;hasownproperty', 'host;x-amz-date;__proto__']) {
    // With and without request headers of those names.
    for (const headers of [{}, { constructor: 'c', tostring: 't' }] as Record<string, string>[]) {
      const r = await raw(berth.creds, 'ListClusters', '{}', {
        headers,
        tamper: (h) => { h.authorization = h.authorization!.replace(/SignedHeaders=[^,]+/, `SignedHeaders=${names}`); },
      });
      assert.ok(r.status < 500, `${names}: ${r.status} ${r.body}`);
      assert.equal(r.json.__type, 'InvalidSignatureException', `${names}: ${r.body}`);
    }
  }
  // The same through the Query front door (IAM), and the server still answers.
  const q = await raw(berth.creds, '', 'Action=ListUsers&Version=2010-05-08', {
    target: '', service: 'iam', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    tamper: (h) => { h.authorization = h.authorization!.replace(/SignedHeaders=[^,]+/, 'SignedHeaders=host;__proto__;constructor'); },
  });
  assert.ok(q.status < 500, `${q.status} ${q.body}`);
  assert.match(q.body, /InvalidSignatureException|SignatureDoesNotMatch/);
  const ok = await raw(berth.creds, 'ListClusters', '{}');
  assert.equal(ok.status, 200);
  // Refused attempts that reach Berth are recorded.
  assert.ok(trail('ListClusters').some((e) => e.errorCode === 'InvalidSignatureException'));
});

/** GET /metrics, SigV4-signed as `keys` for service `berth` when given, else with `headers`. */
async function metrics(opts: { keys?: { accessKeyId: string; secretAccessKey: string }; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  const url = new URL(berth.creds.endpoint);
  let headers: Record<string, string> = { host: url.host, ...opts.headers };
  if (opts.keys) {
    const signer = new SignatureV4({ credentials: opts.keys, region: berth.creds.region, service: 'berth', sha256: Sha256, applyChecksum: false });
    const signed: any = await signer.sign({ method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/metrics', query: {}, headers } as any);
    headers = {};
    for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = String(v);
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'GET', path: '/metrics', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('/metrics: nothing without the administrator\'s credentials, and never one account\'s names to another', async () => {
  const names = [cluster, 'victim-family', victim.split('/').pop()!];
  // The administrator sees the task series (once the agent has reported them).
  const admin = await waitFor('task metrics', async () => {
    const m = await metrics({ keys: berth.creds });
    return m.status === 200 && m.body.includes('berth_task_memory_bytes{') ? m : undefined;
  }, 60_000, 500);
  for (const n of names) assert.ok(admin.body.includes(n), `the administrator sees ${n}`);
  const scraped = await metrics({ headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  assert.equal(scraped.status, 200);
  assert.ok(scraped.body.includes(cluster));

  const refused = [
    ['no credentials', await metrics()],
    ['a wrong bearer token', await metrics({ headers: { authorization: 'Bearer not-the-token' } })],
    ['another account\'s root', await metrics({ keys: other })],
    ['a user of the administrator\'s account without berth:GetMetrics', await metrics({ keys: deputy })],
  ] as const;
  for (const [who, m] of refused) {
    assert.equal(m.status, 403, `${who}: ${m.status} ${m.body.slice(0, 200)}`);
    for (const n of names) assert.ok(!m.body.includes(n), `${who} must not see ${n}`);
  }
  // A user granted berth:GetMetrics in the administrator's account may read them.
  assert.equal((await metrics({ keys: mallory })).status, 200);
  // Refusals that reach Berth are recorded.
  const denied = trail('GetMetrics').filter((e) => e.errorCode);
  assert.ok(trail('GetMetrics', other).some((e) => e.errorCode === 'AccessDeniedException' && e.userIdentity?.accessKeyId === other.accessKeyId),
    'the other account\'s attempt is in its trail');
  assert.ok(denied.some((e) => e.userIdentity?.userName === 'deputy'));
});

/** A Berth process of its own (no instances), for the restart cases. */
async function spareBerth(): Promise<{ b: BerthProcess; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'berth-restart-'));
  return { b: new BerthProcess(join(root, 'data')), root };
}

/** The state letter in /proc/<pid>/stat (after the parenthesised command name). */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch { return undefined; }
}

test('restart after kill -9: a dead pid lingering as a zombie, or a pid now used by another process, does not block it; a live Berth still does', async () => {
  const { b, root } = await spareBerth();
  // Berth as the child of a parent that never reaps (sh exec'ing sleep keeps the child).
  const parent = spawn('sh', ['-c', `"$0" --enable-source-maps ${JSON.stringify(cli)} up >/dev/null 2>&1 & echo $!; exec sleep 120`, process.execPath], { env: b.env, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = Number(await new Promise<string>((ok) => parent.stdout!.once('data', (d: Buffer) => ok(d.toString().trim()))));
    const info = join(b.dataDir, 'server.json');
    await waitFor('the first Berth to write server.json', async () => existsSync(info) && JSON.parse(readFileSync(info, 'utf8')).pid === pid, 20_000, 100);
    process.kill(pid, 'SIGKILL');
    await waitFor('a zombie', async () => procState(pid) === 'Z', 5_000, 50);
    // While the zombie lingers, a restart goes ahead.
    await b.start();
    assert.notEqual(JSON.parse(readFileSync(info, 'utf8')).pid, pid);
    await waitFor('the zombie named in the log', async () => new RegExp(`pid ${pid}[^\\n]*not running Berth any more[^\\n]*not yet reaped`).test(b.output), 5_000, 50);
    // A second Berth on the same data dir while this one lives is still refused.
    const second = spawnSync(process.execPath, [cli, 'up'], { env: b.env, encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(second.status, 0);
    assert.match(second.stderr, /another Berth \(pid \d+\) is already using/);
    await b.kill();

    // kill -9, and the pid now belongs to an unrelated live process.
    const stranger = spawn('sleep', ['120'], { stdio: 'ignore' });
    try {
      const recorded = JSON.parse(readFileSync(info, 'utf8'));
      writeFileSync(info, JSON.stringify({ ...recorded, pid: stranger.pid }) + '\n');
      await b.start();
      await waitFor('the foreign pid named in the log', async () => new RegExp(`pid ${stranger.pid}[^\\n]*not running Berth any more[^\\n]*another process`).test(b.output), 5_000, 50);
      assert.equal(stranger.exitCode, null, 'the unrelated process was left alone');
      await b.kill('SIGTERM');
    } finally {
      stranger.kill();
    }
  } finally {
    parent.kill();
    await b.kill().catch(() => {});
    spawnSync(process.execPath, [cli, 'down'], { env: b.env, encoding: 'utf8' });
    rmSync(root, { recursive: true, force: true });
  }
});
