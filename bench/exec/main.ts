// bench/exec: ECS ExecuteCommand → first output byte of `echo hi`, through the whole path a
// real client takes (SDK ExecuteCommand, WebSocket to the streamUrl, token, handshake, size,
// the broker, the agent's connection, node-pty + `runc exec -t` in the container, and back),
// beside a bare `runc exec` of the same container in the same run (the floor: nsenter into
// the instance's mount and PID namespaces, runc with the agent's --root, output on a pipe).
// Runs alternate so both see the same machine.
//   npm run bench:exec -- [--sessions 100] [--warmup 5]
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, DescribeContainerInstancesCommand, ECSClient, ExecuteCommandCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand,
} from '@aws-sdk/client-ecs';
import { agentPid } from '../../test/helpers/instances.js';
import { flag, withBerth } from '../harness.js';
import { waitForStatus } from '../../test/helpers/ecs.js';
import { SsmClient } from '../../test/helpers/ssm-client.js';

const SESSIONS = flag('sessions', 100);
const WARMUP = flag('warmup', 5);
const GOAL_P50_MS = 150;
const GOAL_RATIO = 3;
const cluster = 'bench-exec';

const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!; };
const ms = (x: number) => `${x.toFixed(1)} ms`;


/** One bare `runc exec`: spawn → first stdout byte, and until it exits. */
function bareExec(pid: number, runcRoot: string, runtimeId: string): Promise<{ first: number; total: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = 0, out = '', err = '';
    const child = spawn('nsenter', ['-t', String(pid), '-m', '-p', 'runc', '--root', runcRoot, 'exec', runtimeId, 'echo', 'hi'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => { if (!first) first = performance.now() - t0; out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`bare runc exec failed (${code}): ${err}`));
      else resolve({ first, total: performance.now() - t0, out });
    });
  });
}

interface Phases { response: number; open: number; handshake: number; first: number; closed: number }

async function viaBerth(ecs: ECSClient, task: string): Promise<Phases> {
  const t0 = performance.now();
  const r = await ecs.send(new ExecuteCommandCommand({ cluster, task, container: 'app', interactive: true, command: 'echo hi' }));
  const response = performance.now() - t0;
  const c = new SsmClient(r.session as { sessionId: string; streamUrl: string; tokenValue: string });
  await c.connect();
  const open = performance.now() - t0;
  await c.waitFor('handshake', () => c.handshakeTimeToComplete !== undefined);
  const handshake = performance.now() - t0;
  await c.waitClosed(10_000);
  const closed = performance.now() - t0;
  c.close();
  if (!c.text().startsWith('hi\r\n') || c.exitCode !== 0) throw new Error(`unexpected session output ${JSON.stringify(c.text())} (exit ${c.exitCode})`);
  return { response, open, handshake, first: c.firstOutputAt! - t0, closed };
}

async function main(): Promise<void> {
  await withBerth({}, async (berth, registry) => {
    const ecs = berth.ecs(); // the SDK keeps connections alive
    await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
    await ecs.send(new CreateCapacityProviderCommand({
      name: `${cluster}-cp`, cluster,
      managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-a'] } } },
    }));
    await ecs.send(new RegisterTaskDefinitionCommand({
      family: 'exec', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
      containerDefinitions: [{ name: 'app', image: `${registry.address}/busybox:latest`, memory: 32, command: ['sleep', '3600'] }],
    }));
    const run = await ecs.send(new RunTaskCommand({ cluster, taskDefinition: 'exec', enableExecuteCommand: true }));
    const taskArn = run.tasks![0]!.taskArn!;
    const t = await waitForStatus(ecs, cluster, taskArn, 'RUNNING', 120_000);
    const runtimeId = t.containers![0]!.runtimeId!;
    const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!;
    const instanceId = ci.ec2InstanceId!;
    const runcRoot = join(berth.dataDir, 'instances', instanceId, 'runc');
    const pid = agentPid(instanceId);
    process.stdout.write(`task ${taskArn.slice(taskArn.lastIndexOf('/') + 1)} on ${instanceId}; container ${runtimeId}; runc root ${runcRoot}\n`);

    for (let i = 0; i < WARMUP; i++) { await viaBerth(ecs, taskArn); await bareExec(pid, runcRoot, runtimeId); }
    const berthRuns: Phases[] = [];
    const bare: { first: number; total: number }[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      berthRuns.push(await viaBerth(ecs, taskArn));
      const b = await bareExec(pid, runcRoot, runtimeId);
      if (b.out !== 'hi\n') throw new Error(`bare runc exec printed ${JSON.stringify(b.out)}`);
      bare.push(b);
    }
    const first = berthRuns.map((r) => r.first);
    const floor = bare.map((b) => b.first);
    const p50 = pct(first, 50), p99 = pct(first, 99);
    const f50 = pct(floor, 50), f99 = pct(floor, 99);
    process.stdout.write(`\n${SESSIONS} sessions, alternating with ${SESSIONS} bare runs (after ${WARMUP} warm-up rounds)\n`);
    process.stdout.write(`ExecuteCommand → first output byte: p50 ${ms(p50)}, p99 ${ms(p99)}\n`);
    process.stdout.write(`  phases (p50 from the call): response ${ms(pct(berthRuns.map((r) => r.response), 50))}, socket open ${ms(pct(berthRuns.map((r) => r.open), 50))}, `
      + `handshake complete ${ms(pct(berthRuns.map((r) => r.handshake), 50))}, first byte ${ms(p50)}, channel_closed ${ms(pct(berthRuns.map((r) => r.closed), 50))}\n`);
    process.stdout.write(`bare runc exec → first output byte (floor): p50 ${ms(f50)}, p99 ${ms(f99)}; until exit p50 ${ms(pct(bare.map((b) => b.total), 50))}\n`);
    process.stdout.write(`ratio p50 ${(p50 / f50).toFixed(2)}×, p99 ${(p99 / f99).toFixed(2)}×\n`);
    process.stdout.write(`goal p50 <= ${GOAL_P50_MS} ms: ${p50 <= GOAL_P50_MS ? 'PASS' : 'MISS'}\n`);
    process.stdout.write(`goal p50 <= ${GOAL_RATIO}× the bare floor: ${p50 <= GOAL_RATIO * f50 ? 'PASS' : 'MISS'}\n`);
  });
}

await main();
