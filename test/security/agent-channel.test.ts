// Attacks on the agent channel (issue 11: "the agent's channel is private and bound",
// "gateway bounded", "agent connections audited"), against a Berth running real instances:
// a victim instance with a task holding a secret, an attacker instance with a host-mode task
// (whose network position is the instance's network namespace). The attacker's programs run
// in that namespace (nsenter --net), as a process inside the task would reach the network.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateClusterCommand, DescribeContainerInstancesCommand, ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, type ContainerInstance, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, repoRoot, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, logsClient, taskId, waitFor, waitForStatus, createProvider } from '../helpers/ecs.js';
import { agentPid } from '../helpers/instances.js';
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';

const client = join(repoRoot, 'dist', 'test', 'helpers', 'agent-client.js');
const SECRET = `s3cret-${Math.random().toString(36).slice(2)}-marker`;

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let work: string;
let capture: ChildProcess | undefined;
const pcap = () => join(work, 'bridge.pcap');
let victim: { cluster: string; task: string; ci: ContainerInstance };
let attacker: { cluster: string; task: string; ci: ContainerInstance };

const gateway = () => JSON.parse(readFileSync(join(berth.dataDir, 'gateway.json'), 'utf8')) as { host: string; port: number };
const caFile = () => join(berth.dataDir, 'gateway-tls', 'ca.pem');
/** The gateway's URL as agents get it (wss:// with the CA once the channel is TLS; the unfixed code had ws://). */
const gatewayUrl = () => `${existsSync(caFile()) ? 'wss' : 'ws'}://${gateway().host}:${gateway().port}/agent`;
const credentialOf = (ci: ContainerInstance) => readFileSync(join(berth.dataDir, 'instances', ci.ec2InstanceId!, 'agent', 'credential'), 'utf8').trim();
const netnsOf = (ci: ContainerInstance) => `/run/netns/berth-${ci.ec2InstanceId}`;

interface HelloResult { opened: boolean; error?: string; reply?: { type: string; message?: string; credential?: string }; closeCode?: number; after: { type: string; seq?: number }[] }

/** Runs the stand-in agent, from the host or inside a network namespace. */
function runClient(args: string[], netns?: string, timeoutMs = 30_000): string {
  const argv = netns ? ['nsenter', `--net=${netns}`, process.execPath, client, ...args] : [process.execPath, client, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  assert.equal(r.status, 0, `agent client failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

function hello(url: string, ca: string, ci: ContainerInstance, credential: string, netns?: string, messages?: unknown[]): HelloResult {
  const args = ['hello', url, ca, ci.ec2InstanceId!, credential];
  if (messages) { const f = join(work, `messages-${Date.now()}.json`); writeFileSync(f, JSON.stringify(messages)); args.push(f); }
  return JSON.parse(runClient(args, netns)) as HelloResult;
}

async function instanceOf(cluster: string): Promise<ContainerInstance> {
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  return (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }))).containerInstances![0]!;
}

async function agentConnected(cluster: string): Promise<boolean> {
  return (await instanceOf(cluster)).agentConnected === true;
}

/** The control plane's lines saying this instance's agent connection dropped. */
const disconnects = (ci: ContainerInstance) => berth.output.split('\n').filter((l) => l.includes(`agent ${ci.ec2InstanceId} disconnected`)).length;

function lookup(eventName: string): { sourceIPAddress: string; errorMessage?: string; serviceEventDetails: Record<string, unknown>; resources?: { ARN: string }[] }[] {
  const r = berth.aws(['cloudtrail', 'lookup-events', '--lookup-attributes', `AttributeKey=EventName,AttributeValue=${eventName}`, '--max-results', '50']);
  assert.equal(r.status, 0, r.stderr);
  return (r.json.Events as { CloudTrailEvent: string }[]).map((e) => JSON.parse(e.CloudTrailEvent));
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'berth-chan-'));
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  const image = `${registry.address}/busybox:latest`;
  berth = await startTestBerth();
  ecs = berth.ecs();
  // Everything on the bridge between agents and gateway from before the first instance
  // starts: bootstrap tokens, credentials, desired state.
  const gw = gateway();
  const dev = /^\d+:\s+(\S+)/.exec(spawnSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' }).stdout.split('\n').find((l) => l.includes(`inet ${gw.host}/`)) ?? '')?.[1];
  assert.ok(dev, `no interface has the gateway address ${gw.host}`);
  capture = spawn('tcpdump', ['-i', dev, '-U', '-s', '0', '-w', pcap(), 'tcp', 'port', String(gw.port)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1_000));
  for (const name of ['victim', 'attacker']) {
    await ecs.send(new CreateClusterCommand({ clusterName: name }));
    await createProvider(ecs, name, `${name}-cp`);
    const td = await ecs.send(new RegisterTaskDefinitionCommand({
      family: name, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
      containerDefinitions: [{
        name: 'app', image, memory: 32, command: ['sh', '-c', 'echo up; exec sleep 3600'],
        environment: [{ name: 'PLAIN_MARKER', value: SECRET }], secrets: [{ name: 'DB_PASSWORD', valueFrom: `berth:secret:${SECRET}` }],
        logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': `/${name}`, 'awslogs-stream-prefix': name } },
      }],
    } as never));
    const run = await ecs.send(new RunTaskCommand({ cluster: name, taskDefinition: td.taskDefinition!.taskDefinitionArn! }));
    assert.equal(run.failures?.length ?? 0, 0, JSON.stringify(run.failures));
    const task = run.tasks![0]!.taskArn!;
    await waitForStatus(ecs, name, task, 'RUNNING', 90_000);
    const ci = await instanceOf(name);
    if (name === 'victim') victim = { cluster: name, task, ci }; else attacker = { cluster: name, task, ci };
  }
  assert.notEqual(victim.ci.ec2InstanceId, attacker.ci.ec2InstanceId);
});

after(async () => {
  if (capture && capture.exitCode === null) capture.kill('SIGINT');
  if (attacker) for (const p of [(() => { try { return agentPid(attacker.ci.ec2InstanceId!); } catch { return undefined; } })()]) if (p) try { process.kill(p, 'SIGCONT'); } catch { /* gone */ }
  await berth?.cleanup();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function victimUnharmed(disconnectsBefore: number): Promise<void> {
  assert.equal((await describeTask(ecs, victim.cluster, victim.task)).lastStatus, 'RUNNING');
  const ci = await instanceOf(victim.cluster);
  assert.equal(ci.status, 'ACTIVE');
  assert.equal(ci.agentConnected, true);
  assert.equal(disconnects(victim.ci), disconnectsBefore, 'the victim agent\'s connection was dropped');
}

test('the bridge carries no token, credential or secret in clear; plain ws:// and a gateway from another CA are refused', async () => {
  // A reconnect sends the credential again while the capture runs.
  const pid = agentPid(victim.ci.ec2InstanceId!);
  process.kill(pid, 'SIGKILL');
  await waitFor('the victim agent back', async () => { try { return agentPid(victim.ci.ec2InstanceId!) !== pid && (await agentConnected(victim.cluster)); } catch { return false; } }, 30_000);
  await new Promise((r) => setTimeout(r, 1_000));
  capture!.kill('SIGINT');
  await new Promise((r) => capture!.once('exit', r));
  const bytes = readFileSync(pcap());
  assert.ok(bytes.length > 10_000, `the capture is too small (${bytes.length} bytes) to have seen the agents' traffic`);
  const credential = credentialOf(victim.ci);
  for (const [what, needle] of [['the secret', SECRET], ['the instance credential', credential], ['a hello', '"type":"hello"'], ['a bootstrap token', 'bootstrapToken'], ['desired state', '"desired"']] as const) {
    assert.equal(bytes.includes(Buffer.from(needle)), false, `${what} crossed the bridge in clear`);
  }

  const gw = gateway();
  const plain = hello(`ws://${gw.host}:${gw.port}/agent`, '-', victim.ci, 'x', netnsOf(attacker.ci));
  assert.equal(plain.opened, false, 'a plain ws:// connection reached the gateway');
  // An agent pinned to another CA does not take the gateway's certificate (nor would it
  // take a man in the middle's from any CA but Berth's).
  const other = join(work, 'other-ca');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=other', '-keyout', `${other}.key`, '-out', `${other}.pem`], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const wrongCa = hello(`wss://${gw.host}:${gw.port}/agent`, `${other}.pem`, victim.ci, credential, netnsOf(victim.ci));
  assert.equal(wrongCa.opened, false, 'a TLS connection with a certificate from another CA was accepted');
  assert.match(wrongCa.error ?? '', /certificate|self.signed|unable to verify/i);
  assert.equal(existsSync(caFile()), true, 'the gateway has no CA of its own');
});

test('a stolen instance credential is refused from the host, from another instance and while the victim is connected; audited and flagged', async () => {
  const before = disconnects(victim.ci);
  const credential = credentialOf(victim.ci); // the attacker stole it
  const url = gatewayUrl();
  const ca = existsSync(caFile()) ? caFile() : '-';
  const attempts = [
    { from: 'the host', r: hello(url, ca, victim.ci, credential) },
    { from: 'another instance', r: hello(url, ca, victim.ci, credential, netnsOf(attacker.ci)) },
    { from: 'the victim instance itself while its agent is connected', r: hello(url, ca, victim.ci, credential, netnsOf(victim.ci)) },
  ];
  for (const a of attempts) {
    assert.notEqual(a.r.reply?.type, 'welcome', `a hello with the stolen credential from ${a.from} was accepted: ${JSON.stringify(a.r)}`);
    assert.equal(a.r.reply?.type, 'error', `from ${a.from}: ${JSON.stringify(a.r)}`);
  }
  await new Promise((r) => setTimeout(r, 3_000));
  await victimUnharmed(before);

  // The audit trail (the owner's LookupEvents) has each refusal, with where it came from.
  const refused = await waitFor('the refusals in the audit trail', async () => {
    const rows = lookup('AgentAuthenticationFailed').filter((e) => e.serviceEventDetails.claimedInstanceId === victim.ci.ec2InstanceId && e.serviceEventDetails.credentialMisuse === true);
    return rows.length >= 3 ? rows : undefined;
  }, 15_000);
  const sources = new Set(refused.map((e) => e.sourceIPAddress));
  assert.ok(sources.size >= 3, `the refusals name their sources (the host, the attacker's instance, the victim's): ${[...sources].join(', ')}`);
  assert.ok(refused.some((e) => /while the instance's agent is connected/.test(e.errorMessage ?? '')), JSON.stringify(refused.map((e) => e.errorMessage)));
  assert.ok(refused.some((e) => /not from the instance's address/.test(e.errorMessage ?? '')), JSON.stringify(refused.map((e) => e.errorMessage)));
  assert.ok(refused.every((e) => e.resources?.some((x) => x.ARN === victim.ci.containerInstanceArn)));
  // Accepted connections are audited too, with their source address.
  const connected = lookup('AgentConnected').filter((e) => e.serviceEventDetails.claimedInstanceId === victim.ci.ec2InstanceId);
  assert.ok(connected.length >= 2, 'the victim agent\'s connections are not in the audit trail');
  assert.equal(new Set(connected.map((e) => e.sourceIPAddress)).size, 1, 'the victim agent connected from more than its own address');
  assert.ok(connected[0]!.sourceIPAddress);

  // The instance is flagged: a lifecycle event (berth events) and a health detail; not repaired.
  const events = berth.cli(['events', '--instance', victim.ci.ec2InstanceId!]);
  assert.equal(events.status, 0, events.stderr);
  assert.match(events.stdout, /credential-misuse/);
  const ci = await waitFor('the health detail', async () => {
    const c = await instanceOf(victim.cluster);
    return c.healthStatus?.details?.some((d) => (d.type as string) === 'AGENT_CREDENTIAL') ? c : undefined;
  }, 15_000);
  assert.equal(ci.healthStatus?.overallStatus, 'OK', 'a stolen credential must not get the victim repaired');
  await victimUnharmed(before);
});

test('an agent writes only its own tasks\' logs, reports only its own tasks', async () => {
  const before = disconnects(victim.ci);
  // The attacker holds its own instance's session: its agent frozen (no pong), the stand-in
  // takes over from the instance's address, as a process with the credential there could.
  const pid = agentPid(attacker.ci.ec2InstanceId!);
  process.kill(pid, 'SIGSTOP');
  try {
    const victimStream = `victim/app/${taskId(victim.task)}`;
    const forged = 'forged line from the attacker';
    const r = hello(gatewayUrl(), existsSync(caFile()) ? caFile() : '-', attacker.ci, credentialOf(attacker.ci), netnsOf(attacker.ci), [
      { type: 'logs', seq: 900001, batch: { group: '/victim', stream: victimStream, source: 'forged:1', events: [{ timestamp: Date.now(), message: forged, pos: 1 }] } },
      { type: 'logs', seq: 900002, batch: { group: '/anything-else', stream: `x/app/${taskId(victim.task)}`, source: 'forged:2', events: [{ timestamp: Date.now(), message: forged, pos: 1 }] } },
      { type: 'task', report: { taskArn: victim.task, lastStatus: 'STOPPED', containers: [{ name: 'app', lastStatus: 'STOPPED', exitCode: 0 }] } },
    ]);
    assert.equal(r.reply?.type, 'welcome', `the attacker's own agent session was not taken over: ${JSON.stringify(r)}`);
    assert.deepEqual(r.after.filter((m) => m.type === 'ack'), [], 'a forged log batch was acknowledged');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const logs = logsClient(berth);
  const stored = await logs.send(new GetLogEventsCommand({ logGroupName: '/victim', logStreamName: `victim/app/${taskId(victim.task)}` }));
  assert.ok(!stored.events!.some((e) => e.message?.includes('forged')), 'the forged line is in the victim\'s log stream');
  const refused = await waitFor('the refused batches in the audit trail', async () => {
    const rows = lookup('AgentMessageRefused').filter((e) => e.serviceEventDetails.claimedInstanceId === attacker.ci.ec2InstanceId);
    return rows.length >= 2 ? rows : undefined;
  }, 15_000);
  assert.ok(refused.some((e) => /\/victim/.test(e.errorMessage ?? '')));
  await waitFor('the attacker agent back', () => agentConnected(attacker.cluster), 30_000);
  await victimUnharmed(before);
});

test('a flood of unauthenticated connections with 8 MiB frames from a task\'s network position: memory stays bounded, the victim stays connected', async () => {
  const before = disconnects(victim.ci);
  const pid = berth.child.pid!;
  const rss0 = rssMiB(pid);
  let peak = rss0;
  const sampler = setInterval(() => { try { peak = Math.max(peak, rssMiB(pid)); } catch { /* gone */ } }, 100);
  const flood = new Promise<string>((resolve, reject) => {
    const p = spawn('nsenter', [`--net=${netnsOf(attacker.ci)}`, process.execPath, client, 'flood', gatewayUrl(), '64', String(8 * 1024 * 1024), '15'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`flood client exited with ${code}`))));
  });
  const stats = JSON.parse(await flood) as { opened: number; failed: number; fragmentsSent: number };
  await new Promise((r) => setTimeout(r, 500));
  clearInterval(sampler);
  const grew = peak - rss0;
  process.stderr.write(`# flood: ${JSON.stringify(stats)}; control plane RSS ${rss0.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB (+${grew.toFixed(0)} MiB)\n`);
  assert.ok(grew < 120, `the control plane grew by ${grew.toFixed(0)} MiB under the flood (from ${rss0.toFixed(0)} to ${peak.toFixed(0)} MiB)`);
  await victimUnharmed(before);
  assert.equal(await agentConnected(attacker.cluster), true);
});

test('malformed first messages from a task\'s network position (null, a number, an array, a hello without fields) cannot end the control plane', async () => {
  const before = disconnects(victim.ci);
  const texts = ['null', '42', '[]', '"hello"', '{}', '{"type":"hello"}', '{"type":"hello","instanceId":{"toString":1}}', '{"type":null}', 'not json'];
  const r = spawnSync('nsenter', [`--net=${netnsOf(attacker.ci)}`, process.execPath, client, 'raw', gatewayUrl(), ...texts], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const results = JSON.parse(r.stdout.trim().split('\n').pop()!) as { text: string; opened: boolean }[];
  assert.equal(results.filter((x) => x.opened).length, texts.length, `every connection opened: ${r.stdout}`);
  // Berth is still there and answers; nothing of it was an agent.
  assert.equal(berth.child.exitCode, null, `the control plane exited: ${berth.output.slice(-2000)}`);
  assert.equal((await describeTask(ecs, victim.cluster, victim.task)).lastStatus, 'RUNNING');
  await victimUnharmed(before);
});
