// A host-mode task shares its instance's network namespace, and Docker's default NET_RAW
// lets it read every frame of the instance's interface: the agent's own channel to the
// gateway. That channel must carry nothing readable: no instance credential, no hello, no
// desired state, no opened secret (issue 11, "host-mode sniffing"). The sniffer is
// test/security/netprobe.c (built with gcc at test time), run from inside the task.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateClusterCommand, DescribeContainerInstancesCommand, ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { repoRoot, startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, taskId, waitFor, waitForLogs, waitForStatus, createProvider } from '../helpers/ecs.js';
import { agentPid } from '../helpers/instances.js';

const gcc = spawnSync('sh', ['-c', 'command -v gcc']).status === 0;
const skip = process.getuid?.() !== 0 ? 'needs root (real instances)' : !gcc ? 'needs gcc (to build test/security/netprobe.c)' : false;

const cluster = 'sniff';
const group = '/security/sniff';
const ENV_MARKER = `plain-${Math.random().toString(36).slice(2)}-marker`;
const SECRET = `opened-${Math.random().toString(36).slice(2)}-secret`;

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let work: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-sniff-'));
  execFileSync('gcc', ['-static', '-O1', '-o', join(work, 'netprobe'), join(repoRoot, 'test', 'security', 'netprobe.c')]);
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  buildAndPush(registry.address, 'attack:latest', { executables: { '/bin/netprobe': readFileSync(join(work, 'netprobe')) } });
  berth = await startTestBerth();
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await createProvider(ecs, cluster, `${cluster}-cp`);
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function runHostTask(family: string, image: string, command: string, extra: Record<string, unknown> = {}): Promise<string> {
  const td = await ecs.send(new RegisterTaskDefinitionCommand({
    family, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{
      name: 'app', image: `${registry.address}/${image}`, memory: 32, command: ['sh', '-c', command],
      logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': group, 'awslogs-stream-prefix': family } }, ...extra,
    }],
  } as never));
  const run = await ecs.send(new RunTaskCommand({ cluster, taskDefinition: td.taskDefinition!.taskDefinitionArn! }));
  assert.equal(run.failures?.length ?? 0, 0, JSON.stringify(run.failures));
  return run.tasks![0]!.taskArn!;
}

test('a host-mode task reads its instance\'s agent traffic and finds no credential, hello, desired state or secret', { skip }, async () => {
  // The victim: a task whose environment and opened secret travel in the desired state.
  const victim = await runHostTask('victim', 'busybox:latest', 'exec sleep 3600', {
    environment: [{ name: 'PLAIN_MARKER', value: ENV_MARKER }], secrets: [{ name: 'DB_PASSWORD', valueFrom: `berth:secret:${SECRET}` }],
  });
  await waitForStatus(ecs, cluster, victim, 'RUNNING', 90_000);
  const arns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }))).containerInstances![0]!;
  const credential = readFileSync(join(berth.dataDir, 'instances', ci.ec2InstanceId!, 'agent', 'credential'), 'utf8').trim();
  const { port } = JSON.parse(readFileSync(join(berth.dataDir, 'gateway.json'), 'utf8')) as { port: number };

  // The attacker, on the same instance, sniffs the instance's interface for 15 s.
  const needles = [credential, SECRET, ENV_MARKER, '"type":"hello"', '"desired"', '"credential"'];
  const sniffer = await runHostTask('sniffer', 'attack:latest', `netprobe grep eth0 15 ${port} ${needles.map((n) => `'${n}'`).join(' ')}`);
  await waitForStatus(ecs, cluster, sniffer, 'RUNNING', 60_000);
  assert.equal((await describeTask(ecs, cluster, sniffer)).containerInstanceArn, ci.containerInstanceArn, 'the sniffer shares the victim\'s instance');
  await waitForLogs(berth, group, `sniffer/app/${taskId(sniffer)}`, (m) => m.includes('grepping'), 30_000);

  // Meanwhile the agent reconnects: hello with its credential, then the full desired state.
  const pid = agentPid(ci.ec2InstanceId!);
  process.kill(pid, 'SIGKILL');
  await waitFor('the agent back', async () => {
    try { return agentPid(ci.ec2InstanceId!) !== pid && (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }))).containerInstances![0]!.agentConnected; } catch { return false; }
  }, 30_000);

  const lines = await waitForLogs(berth, group, `sniffer/app/${taskId(sniffer)}`, (m) => m.includes('grepped'), 40_000);
  const frames = Number(/^frames (\d+)$/m.exec(lines.join('\n'))?.[1] ?? -1);
  assert.ok(frames > 0, `the sniffer saw the agent's channel (${lines.join(' | ')})`);
  for (const [i, needle] of needles.entries()) {
    const found = lines.find((l) => l.startsWith(`found ${needle} `));
    assert.equal(found, `found ${needle} 0`, `needle ${i} (${i === 0 ? 'the credential' : needle}) crossed the instance's interface in clear`);
  }
  // The victim is unharmed.
  assert.equal((await describeTask(ecs, cluster, victim)).lastStatus, 'RUNNING');
});
