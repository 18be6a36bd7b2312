// Network attacks from inside real tasks (issue 11: "network, as a VPC would" and "image pulls
// are the agent's business only"): ARP poisoning and spoofed frames on Berth's bridge, tasks
// dialling services on the host, the agent gateway and the registry relay, and pushes through
// the relay. The attacker is a static C program (test/security/netprobe.c, built with gcc at
// test time) in a busybox image; default awsvpc and host tasks have Docker's NET_RAW.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateClusterCommand, DescribeContainerInstancesCommand, ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, type ContainerInstance, type ECSClient, type Task,
} from '@aws-sdk/client-ecs';
import { macForAddress } from '../../src/providers/local/addresses.js';
import { repoRoot, startTestBerth, type TestBerth } from '../helpers/berth.js';
import { buildAndPush, buildImage } from '../helpers/image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeTask, taskId, waitFor, waitForLogs, waitForStatus, createProvider } from '../helpers/ecs.js';

const gcc = spawnSync('sh', ['-c', 'command -v gcc']).status === 0;
const skip = process.getuid?.() !== 0 ? 'needs root (real instances)' : !gcc ? 'needs gcc (to build the static attack program test/security/netprobe.c)' : false;

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;
let work: string;
let gateway: { host: string; port: number };
let bridge: string;
let slot: number;

const log = (name: string) => ({ logDriver: 'awslogs' as const, options: { 'awslogs-group': '/security-net', 'awslogs-stream-prefix': name } });

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-netprobe-'));
  execFileSync('gcc', ['-static', '-O1', '-o', join(work, 'netprobe'), join(repoRoot, 'test', 'security', 'netprobe.c')]);
  registry = await startRegistry();
  buildAndPush(registry.address, 'attack:latest', { executables: { '/bin/netprobe': readFileSync(join(work, 'netprobe')) } });
  image = `${registry.address}/attack:latest`;
  berth = await startTestBerth();
  ecs = berth.ecs();
  for (const name of ['victim', 'attacker']) {
    await ecs.send(new CreateClusterCommand({ clusterName: name }));
    await createProvider(ecs, name, `${name}-cp`);
  }
  gateway = JSON.parse(readFileSync(join(berth.dataDir, 'gateway.json'), 'utf8')) as { host: string; port: number };
  slot = (JSON.parse(readFileSync(join(berth.dataDir, 'local-provider', 'slot.json'), 'utf8')) as { slot: number }).slot;
  bridge = `berth${slot}`;
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

let families = 0;
/** Runs `script` (sh -c) in a task of `cluster`; returns the task once RUNNING or STOPPED. */
async function runTask(cluster: string, networkMode: 'awsvpc' | 'host', script: string, taskImage = image): Promise<{ arn: string; stream: string; task: Task }> {
  const family = `net-${++families}`;
  const r = await ecs.send(new RegisterTaskDefinitionCommand({
    family, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode,
    containerDefinitions: [{ name: 'app', image: taskImage, memory: 32, stopTimeout: 1, logConfiguration: log(family), command: ['sh', '-c', script] }],
  }));
  const run = await ecs.send(new RunTaskCommand({ cluster, taskDefinition: r.taskDefinition!.taskDefinitionArn! }));
  assert.equal(run.failures?.length ?? 0, 0, JSON.stringify(run.failures));
  const arn = run.tasks![0]!.taskArn!;
  const task = await waitFor(`task ${family} started`, async () => {
    const t = await describeTask(ecs, cluster, arn);
    return t.lastStatus === 'RUNNING' || t.lastStatus === 'STOPPED' ? t : undefined;
  }, 60_000, 200);
  return { arn, stream: `${family}/app/${taskId(arn)}`, task };
}

const logsOf = (stream: string, marker = 'done', timeoutMs = 45_000) => waitForLogs(berth, '/security-net', stream, (m) => m.includes(marker), timeoutMs);

async function instanceOf(cluster: string): Promise<ContainerInstance> {
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  const d = await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }));
  assert.equal(d.containerInstances!.length, 1);
  return d.containerInstances![0]!;
}

/** The provider's record of an instance (its address and host-side veth). */
function instanceRecord(ec2InstanceId: string): { address: string; hostVeth: string } {
  return JSON.parse(readFileSync(join(berth.dataDir, 'local-provider', 'instances', `${ec2InstanceId}.json`), 'utf8')) as { address: string; hostVeth: string };
}

const eniAddress = (t: Task) => t.attachments!.find((a) => a.type === 'ElasticNetworkInterface')!.details!.find((d) => d.name === 'privateIPv4Address')!.value!;
const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout;

let victim: { ci: ContainerInstance; id: string; address: string; hostVeth: string; idleArn: string };
async function victimInstance(): Promise<typeof victim> {
  if (victim) return victim;
  const idle = await runTask('victim', 'host', "trap 'exit 0' TERM; echo up; while true; do sleep 1; done");
  assert.equal(idle.task.lastStatus, 'RUNNING');
  const ci = await instanceOf('victim');
  const rec = instanceRecord(ci.ec2InstanceId!);
  victim = { ci, id: ci.ec2InstanceId!, address: rec.address, hostVeth: rec.hostVeth, idleArn: idle.arn };
  return victim;
}

/** The victim is unharmed: its instance ACTIVE with its agent connected, its task RUNNING. */
async function assertVictimUnharmed(): Promise<void> {
  const ci = await instanceOf('victim');
  assert.equal(ci.status, 'ACTIVE');
  assert.equal(ci.agentConnected, true);
  assert.equal((await describeTask(ecs, 'victim', victim.idleArn)).lastStatus, 'RUNNING');
}

test('ARP poisoning of the gateway and of a neighbour from an awsvpc task is ignored: no traffic diverted, the victim stays connected', { skip }, async () => {
  const v = await victimInstance();
  const gwMac = macForAddress(gateway.host);
  const attack = await runTask('attacker', 'awsvpc', `netprobe mitm eth0 ${gateway.host} ${v.address} 12; echo done`);
  assert.equal(attack.task.lastStatus, 'RUNNING', `the attack task: ${attack.task.stoppedReason}`);
  assert.notEqual(attack.task.containerInstanceArn, v.ci.containerInstanceArn, 'the attacker runs on another instance');
  // While the attack runs: the victim's agent connection and both ends' ARP entries.
  const disconnected: number[] = [];
  const poisoned = new Set<string>();
  const started = Date.now();
  let messages: string[] | undefined;
  while (!messages) {
    // (An instance no longer listed counts too: repairs may have replaced it.)
    const ci = await instanceOf('victim').catch(() => undefined);
    if (!ci?.agentConnected || ci.ec2InstanceId !== v.id) disconnected.push(Date.now() - started);
    const victimView = sh(`ip -n berth-${v.id} neigh show ${gateway.host}`);
    const lladdr = /lladdr (\S+)/.exec(victimView)?.[1];
    if (lladdr && lladdr !== gwMac) poisoned.add(`victim's entry for the gateway: ${victimView.trim()}`);
    const hostView = sh(`ip neigh show ${v.address} dev ${bridge}`);
    const hostLl = /lladdr (\S+)/.exec(hostView)?.[1];
    if (hostLl && hostLl !== macForAddress(v.address)) poisoned.add(`gateway's entry for the victim: ${hostView.trim()}`);
    try { messages = await waitForLogs(berth, '/security-net', attack.stream, (m) => m.includes('done'), 500); } catch { /* still attacking */ }
    if (Date.now() - started > 45_000) break; // the attacker's own agent may be cut off too: no logs
  }
  assert.deepEqual([...poisoned], [], 'ARP entries were poisoned');
  assert.deepEqual(disconnected, [], `the victim's agent was disconnected (ms into the attack: ${disconnected.join(', ')})`);
  assert.ok(messages, "the attack task's logs never arrived");
  const seen = Number(/victim-frames (\d+)/.exec(messages.join('\n'))?.[1] ?? NaN);
  assert.equal(seen, 0, `the attacker saw ${seen} frames of the victim's traffic`);
  await assertVictimUnharmed();
});

test('frames with another port\'s source MAC or IP never arrive, and never move its forwarding entry', { skip }, async () => {
  const v = await victimInstance();
  const sniffer = await runTask('victim', 'awsvpc', 'netprobe sniff eth0 12; echo done');
  assert.equal(sniffer.task.lastStatus, 'RUNNING');
  await logsOf(sniffer.stream, 'sniffing');
  const ip = eniAddress(sniffer.task);
  const mac = macForAddress(ip);
  const to = `${mac} ${ip} 10`;
  const attack = await runTask('attacker', 'awsvpc', [
    `netprobe spoof eth0 self self ${to} LEGIT`,
    `netprobe spoof eth0 ${macForAddress(v.address)} ${v.address} ${to} SPOOF-VICTIM`,
    `netprobe spoof eth0 self ${v.address} ${to} SPOOF-VICTIM-IP`,
    `netprobe spoof eth0 ${macForAddress(v.address)} self ${to} SPOOF-VICTIM-MAC`,
    `netprobe spoof eth0 ${macForAddress(gateway.host)} ${gateway.host} ${to} SPOOF-GATEWAY`,
    'echo done',
  ].join('; '));
  await logsOf(attack.stream);
  // Right after the spoofing: the bridge still sends the victim's MAC to the victim's port only.
  const all = sh(`bridge fdb show br ${bridge}`);
  const fdb = all.split('\n').filter((l) => l.startsWith(macForAddress(v.address)));
  assert.ok(fdb.length > 0 && fdb.every((l) => l.includes(`dev ${v.hostVeth} `)), `forwarding entries of the victim's MAC ${macForAddress(v.address)} (port ${v.hostVeth}): ${all}`);
  const seen = (await logsOf(sniffer.stream, 'sniffed')).join('\n');
  assert.match(seen, /^LEGIT ([1-9]\d*)$/m, `the sniffer works (it sees the attacker's honest frames): ${seen}`);
  assert.doesNotMatch(seen, /SPOOF/, `spoofed frames arrived: ${seen}`);
  await assertVictimUnharmed();
});

test('services on the host and the agent gateway are unreachable from tasks', { skip }, async () => {
  await victimInstance();
  let connections = 0;
  const server: Server = createServer((s) => { connections++; s.end('host-secret\n'); });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    // The gateway address and every other address of the host (not loopback, not Berth's bridges).
    const hostAddrs = [gateway.host, ...sh('ip -4 -o addr show').split('\n').map((l) => /^\d+: (\S+)\s+inet (\S+)\//.exec(l))
      .filter((m): m is RegExpExecArray => !!m && m[1] !== 'lo' && !/^berth\d+$/.test(m[1]!)).map((m) => m[2]!)];
    // stdin stays open a second: busybox nc stops reading once its stdin ends.
    const probe = hostAddrs.map((a) => `echo "try ${a}"; sleep 1 | nc -w 2 ${a} ${port}`).join('; ');
    const gatewayProbe = `(printf 'GET /agent HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; sleep 1) | nc -w 2 ${gateway.host} ${gateway.port}`;
    const [awsvpc, host] = await Promise.all([
      runTask('attacker', 'awsvpc', `${probe}; echo "try gateway port"; ${gatewayProbe}; echo done`),
      runTask('attacker', 'host', `${probe}; echo done`),
    ]);
    for (const t of [awsvpc, host]) {
      const out = (await logsOf(t.stream)).join('\n');
      assert.doesNotMatch(out, /host-secret/, `a ${t === host ? 'host' : 'awsvpc'} task reached a host service:\n${out}`);
      assert.doesNotMatch(out, /HTTP\/1\.1/, `an awsvpc task reached the agent gateway:\n${out}`);
    }
    assert.equal(connections, 0, 'connections the host service accepted from tasks');
  } finally {
    server.close();
  }
  await assertVictimUnharmed();
});

test('the registry relay: unreachable from tasks in both modes, and pull only even from the agent\'s pull namespace', { skip }, async () => {
  const v = await victimInstance();
  // The relay Berth opened for the loopback registry of the task images: a listener on the gateway address.
  const relays = sh('ss -Hltn').split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '')
    .filter((a) => a.startsWith(`${gateway.host}:`) && a !== `${gateway.host}:${gateway.port}`).map((a) => Number(a.split(':')[1]));
  assert.ok(relays.length > 0, 'no relay listening on the gateway address');
  const relay = relays[0]!;
  const request = (line: string) => `(printf '${line} HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 2 ${gateway.host} ${relay}`;
  const probe = `${request('GET /v2/')}; ${request('POST /v2/evil/blobs/uploads/')}; echo done`;
  const [awsvpc, host] = await Promise.all([runTask('attacker', 'awsvpc', probe), runTask('victim', 'host', probe)]);
  for (const t of [awsvpc, host]) {
    const out = (await logsOf(t.stream)).join('\n');
    assert.doesNotMatch(out, /HTTP\//, `a ${t === host ? 'host' : 'awsvpc'} task reached the relay:\n${out}`);
  }

  // The agent's pull namespace reaches the relay, for pulls only.
  const pullNetns = `/run/netns/berth${slot}-pull-${v.id}`;
  const fetchIn = (method: string, path: string) => {
    const r = spawnSync('nsenter', [`--net=${pullNetns}`, process.execPath, '-e',
      `fetch('http://${gateway.host}:${relay}${path}', { method: '${method}', ${method === 'GET' || method === 'HEAD' ? '' : "body: 'x', "}` +
      "headers: { accept: 'application/vnd.oci.image.manifest.v1+json' }, signal: AbortSignal.timeout(5000) })" +
      '.then((r) => console.log(r.status), (e) => console.log("ERR", e.cause?.code ?? e.message))'], { encoding: 'utf8' });
    return (r.stdout + r.stderr).trim();
  };
  assert.equal(fetchIn('GET', '/v2/'), '200', 'the pull namespace reaches the registry through the relay');
  assert.equal(fetchIn('HEAD', '/v2/attack/manifests/latest'), '200');
  for (const [method, path] of [['POST', '/v2/evil/blobs/uploads/'], ['PUT', '/v2/evil/manifests/latest'], ['PATCH', '/v2/evil/blobs/uploads/x'], ['DELETE', '/v2/attack/manifests/latest']] as const) {
    assert.equal(fetchIn(method, path), '405', `${method} ${path} through the relay`);
  }
  assert.equal(fetchIn('GET', '/metrics'), '404', 'only the registry API is relayed');
  await waitFor('the refusal in Berth\'s log', async () => /registry relay to 127\.0\.0\.1:\d+: refused PUT \/v2\/evil\/manifests\/latest from 10\.\d+\.\d+\.\d+: 405/.test(berth.output), 5_000);
  // And skopeo, pushing for real from the pull namespace, is refused.
  const img = buildImage();
  try {
    const push = spawnSync('nsenter', [`--net=${pullNetns}`, 'skopeo', 'copy', '--quiet', '--dest-tls-verify=false',
      `oci:${img.layout}:latest`, `docker://${gateway.host}:${relay}/evil:latest`], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(push.status, 0, 'a push through the relay succeeded');
  } finally { img.cleanup(); }
  assert.equal((await fetch(`http://${registry.address}/v2/evil/tags/list`)).status, 404, 'the registry got an image through the relay');

  // An image "on" Berth's own API port: the relay opens, and never passes a request to the API.
  const apiPort = Number(new URL(berth.creds.endpoint).port);
  const onApi = await runTask('victim', 'host', 'true', `127.0.0.1:${apiPort}/x:latest`);
  const stopped = onApi.task.lastStatus === 'STOPPED' ? onApi.task : await waitForStatus(ecs, 'victim', onApi.arn, 'STOPPED', 90_000);
  assert.match(`${stopped.stoppedReason} ${stopped.containers![0]!.reason}`, /CannotPullContainerError/);
  const apiRelay = sh('ss -Hltn').split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').find((a) => a === `${gateway.host}:${apiPort}`);
  assert.ok(apiRelay, 'a relay for the API port');
  const viaApiRelay = spawnSync('nsenter', [`--net=${pullNetns}`, process.execPath, '-e',
    `fetch('http://${apiRelay}/v2/', { signal: AbortSignal.timeout(5000) }).then(async (r) => console.log(r.status, await r.text()), (e) => console.log('ERR', e.message))`], { encoding: 'utf8' }).stdout;
  assert.match(viaApiRelay, /^403 .*a port of Berth itself/, viaApiRelay);
  await assertVictimUnharmed();
});
