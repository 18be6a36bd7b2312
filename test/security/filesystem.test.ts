// Attacks on the task ↔ instance filesystem boundary, each run from inside a real task
// (issue 11, attacks 1, 2 and the task side of 9): host volumes that expose the instance's
// data dir (its credential, other tasks' bundles, secrets and logs), a bundle edit that a
// health check's `runc exec` would honour, symlinks planted by one task to redirect another
// task's host volume, `..` in sourcePath, and a task that fills its disk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { relative } from 'node:path';
import {
  CreateClusterCommand, DescribeContainerInstancesCommand, ListTasksCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, type ECSClient, type Task,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, taskId, waitFor, waitForLogs, waitForStatus, createProvider, registerAppTask } from '../helpers/ecs.js';
import { agentPid } from '../helpers/instances.js';

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;
const cluster = 'fs';
const group = '/security/fs';
/** Small task storage so the disk filler reaches ENOSPC in a second or two. */
const TASK_STORAGE_GIB = '0.25';

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  image = `${registry.address}/busybox:latest`;
  berth = await startTestBerth({ BERTH_TASK_STORAGE_GIB: TASK_STORAGE_GIB });
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  // One capacity provider and small tasks: everything lands on one instance, neighbours included.
  await createProvider(ecs, cluster, 'fs-cp');
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
  // Task storage is loop-mounted inside instances: nothing of it may outlive `berth down`.
  const loops = execFileSync('losetup', ['-a'], { encoding: 'utf8' });
  assert.ok(!loops.includes(berth.dataDir), `loop devices left behind:\n${loops}`);
});

function register(family: string, container: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  return registerAppTask(ecs, { family, image, memory: 32, group: group }, container, extra);
}

async function run(taskDefinition: string): Promise<string> {
  const r = await ecs.send(new RunTaskCommand({ cluster, taskDefinition }));
  assert.equal(r.failures?.length ?? 0, 0, JSON.stringify(r.failures));
  return r.tasks![0]!.taskArn!;
}

const stream = (family: string, arn: string) => `${family}/app/${taskId(arn)}`;
const hostVolume = (name: string, sourcePath: string) => ({ volumes: [{ name, host: { sourcePath } }] });

async function stop(arn: string): Promise<void> {
  await ecs.send(new StopTaskCommand({ cluster, task: arn, reason: 'test done' })).catch(() => undefined);
}

async function assertInstanceHealthy(t: Task): Promise<void> {
  const r = await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }));
  const ci = r.containerInstances![0]!;
  assert.equal(ci.status, 'ACTIVE');
  assert.equal(ci.agentConnected, true);
  assert.equal(ci.healthStatus?.overallStatus, 'OK', JSON.stringify(ci.healthStatus));
}

/** The instance's data dir as the unmodified runtime bound it: `/tmp/` then shows it at this path. */
const dataDirUnderTmp = () => relative('/tmp', berth.dataDir);

test('sourcePath with ".." is refused at registration with InvalidParameterException', async () => {
  for (const sourcePath of ['/var/lib/../..', '/tmp/a/../../etc', '/tmp/./x']) {
    const r = await ecs.send(new RegisterTaskDefinitionCommand({
      family: 'dotdot', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
      containerDefinitions: [{ name: 'app', image, memory: 32, mountPoints: [{ sourceVolume: 'v', containerPath: '/v' }] }],
      volumes: [{ name: 'v', host: { sourcePath } }],
    })).then(() => undefined, (e: Error) => e);
    assert.ok(r, `${sourcePath} was accepted`);
    assert.equal(r.name, 'InvalidParameterException', `${sourcePath}: ${r.name} ${r.message}`);
    assert.match(r.message, /sourcePath/);
  }
  // The refusals are in the audit trail.
  const events = berth.aws(['cloudtrail', 'lookup-events', '--lookup-attributes', 'AttributeKey=EventName,AttributeValue=RegisterTaskDefinition']).json.Events as { CloudTrailEvent: string }[];
  const refused = events.map((e) => JSON.parse(e.CloudTrailEvent)).filter((e) => e.errorCode === 'InvalidParameterException');
  assert.ok(refused.length >= 3, JSON.stringify(events.map((e) => JSON.parse(e.CloudTrailEvent).errorCode)));
});

test('a host volume at /tmp/ or /var/ shows nothing of the instance: no credential, bundles, secrets or logs', async () => {
  const secret = `s3cr3t-${randomUUID()}`;
  const victimTd = await register('victim', {
    command: ['sh', '-c', `echo victim-log-${secret}; while true; do sleep 1; done`],
    environment: [{ name: 'VICTIM_SECRET', value: secret }],
  });
  const victim = await run(victimTd);
  const v = await waitForStatus(ecs, cluster, victim, 'RUNNING', 90_000);
  await waitForLogs(berth, group, stream('victim', victim), (m) => m.some((l) => l.includes('victim-log')));

  const rel = dataDirUnderTmp();
  for (const [family, sourcePath, prefix] of [['reader-tmp', '/tmp/', `/h/${rel}`], ['reader-var', '/var/', '/h']] as const) {
    const td = await register(family, {
      mountPoints: [{ sourceVolume: 'h', containerPath: '/h' }],
      command: ['sh', '-c', [
        `echo "entries: $(ls -A /h | grep -v lost+found | tr '\\n' ' ')"`,
        `for f in ${prefix}/instances/*/agent/credential; do [ -r "$f" ] && echo "CREDENTIAL-READ $(wc -c < "$f")"; done`,
        `grep -rl "${secret}" ${prefix}/instances/*/containers/*/config.json 2>/dev/null | sed 's/^/SECRET-IN-BUNDLE /'`,
        `grep -rl "victim-log-${secret}" ${prefix}/instances/*/containers/*/ctr.log 2>/dev/null | sed 's/^/VICTIM-LOG /'`,
        'echo scan-done',
      ].join('; ')],
    }, hostVolume('h', sourcePath));
    const arn = await run(td);
    const out = await waitForLogs(berth, group, stream(family, arn), (m) => m.includes('scan-done'), 60_000);
    assert.ok(!out.some((l) => /CREDENTIAL-READ|SECRET-IN-BUNDLE|VICTIM-LOG/.test(l)), `${sourcePath}:\n${out.join('\n')}`);
    // The area is the instance's volume area only: a fresh path there is empty.
    assert.ok(out.includes('entries: ') || out.includes('entries:'), `${sourcePath}:\n${out.join('\n')}`);
    const r = await waitForStatus(ecs, cluster, arn, 'STOPPED', 30_000);
    assert.equal(r.containerInstanceArn, v.containerInstanceArn, 'the reader must share the victim\'s instance');
  }
  // The victim is unharmed.
  assert.equal((await describeTask(ecs, cluster, victim)).lastStatus, 'RUNNING');
  await assertInstanceHealthy(v);
  await stop(victim);
});

test('a health check never runs with capabilities written into the bundle by the container', async () => {
  const mark = `MARK_${randomUUID().replace(/-/g, '')}`;
  const prefix = `/h/${dataDirUnderTmp()}`;
  const td = await register('bundle-edit', {
    environment: [{ name: mark, value: '1' }],
    mountPoints: [{ sourceVolume: 'h', containerPath: '/h' }],
    healthCheck: { command: ['CMD-SHELL', 'grep CapEff /proc/self/status > /hc.tmp; mv /hc.tmp /hc'], interval: 5, timeout: 3, retries: 3, startPeriod: 0 },
    command: ['sh', '-c', [
      // Find this container's own bundle and add CAP_SYS_ADMIN to every capability list.
      `cfg=$(grep -l ${mark} ${prefix}/instances/*/containers/*/config.json 2>/dev/null | head -1)`,
      'if [ -n "$cfg" ] && sed -i \'s/"CAP_CHOWN"/"CAP_SYS_ADMIN","CAP_CHOWN"/g\' "$cfg"; then echo "EDITED $cfg"; else echo no-bundle-reachable; fi',
      'echo "main $(grep CapEff /proc/self/status)"',
      'while true; do if [ -f /hc ]; then echo "health $(cat /hc)"; rm /hc; fi; sleep 1; done',
    ].join('; ')],
  }, hostVolume('h', '/tmp/'));
  const arn = await run(td);
  const t = await waitForStatus(ecs, cluster, arn, 'RUNNING', 90_000);
  const out = await waitForLogs(berth, group, stream('bundle-edit', arn), (m) => m.some((l) => l.startsWith('health ')), 60_000);
  const health = out.filter((l) => l.startsWith('health '));
  const main = out.find((l) => l.startsWith('main '))!;
  // The health check's capabilities are the container's own (Docker's defaults), never CAP_SYS_ADMIN.
  for (const h of health) assert.equal(h.replace('health ', ''), main.replace('main ', ''), out.join('\n'));
  const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(health[0]!)![1]}`);
  assert.equal(capEff & (1n << 21n), 0n, `the health check ran with CAP_SYS_ADMIN:\n${out.join('\n')}`);
  assert.ok(!out.some((l) => l.startsWith('EDITED')), `the container reached its own bundle:\n${out.join('\n')}`);
  await assertInstanceHealthy(t);
  await stop(arn);
});

test('a symlink planted in a host volume by one task does not redirect another task\'s host volume', async () => {
  const plantTd = await register('plant', {
    mountPoints: [{ sourceVolume: 'h', containerPath: '/h' }],
    command: ['sh', '-c', 'mkdir -p /h/shared; ln -s / /h/shared/abs; ln -s ../../../../../../.. /h/shared/rel; ls -l /h/shared; echo planted; sleep 3600'],
  }, hostVolume('h', '/tmp/'));
  const planter = await run(plantTd);
  const p = await waitForStatus(ecs, cluster, planter, 'RUNNING', 90_000);
  await waitForLogs(berth, group, stream('plant', planter), (m) => m.includes('planted'));

  for (const [family, sourcePath] of [['follow-abs', '/tmp/shared/abs'], ['follow-rel', '/tmp/shared/rel/tmp'], ['follow-deep', '/tmp/shared/abs/proc']] as const) {
    const td = await register(family, {
      mountPoints: [{ sourceVolume: 'h', containerPath: '/h' }],
      command: ['sh', '-c', 'echo "listing: $(ls -A /h | tr \'\\n\' \' \')"; echo listed'],
    }, hostVolume('h', sourcePath));
    const arn = await run(td);
    const t = await waitForStatus(ecs, cluster, arn, 'STOPPED', 60_000);
    assert.equal(t.containerInstanceArn, p.containerInstanceArn, 'both tasks must share the instance (and so its volume area)');
    // Refused before the container starts, with a reason naming the link.
    const reason = `${t.stoppedReason} ${t.containers?.map((c) => c.reason).join(' ')}`;
    assert.match(reason, /symbolic link/, `${sourcePath}: ${reason}`);
    assert.equal(t.containers![0]!.exitCode, undefined, `${sourcePath}: the container ran: ${reason}`);
  }
  assert.equal((await describeTask(ecs, cluster, planter)).lastStatus, 'RUNNING');
  await assertInstanceHealthy(p);
  await stop(planter);
});

test('two tasks with the same sourcePath share it, as EC2 host paths do', async () => {
  const token = randomUUID();
  const writer = await run(await register('share-w', {
    mountPoints: [{ sourceVolume: 'h', containerPath: '/h' }],
    command: ['sh', '-c', `mkdir -p /h/d && echo ${token} > /h/d/token && echo wrote`],
  }, hostVolume('h', '/var/lib/app')));
  await waitForStatus(ecs, cluster, writer, 'STOPPED', 90_000);
  const reader = await run(await register('share-r', {
    mountPoints: [{ sourceVolume: 'h', containerPath: '/h' }],
    command: ['sh', '-c', 'echo "token $(cat /h/d/token)"'],
  }, hostVolume('h', '/var/lib/app')));
  const out = await waitForLogs(berth, group, stream('share-r', reader), (m) => m.some((l) => l.startsWith('token')), 60_000);
  assert.ok(out.includes(`token ${token}`), out.join('\n'));
});

test('a task that fills its disk gets ENOSPC alone: its neighbour keeps running, the instance stays healthy, the API answers', async () => {
  const neighbour = await run(await register('neighbour', { command: ['sh', '-c', 'while true; do date > /tick; sleep 1; done'] }));
  const n = await waitForStatus(ecs, cluster, neighbour, 'RUNNING', 90_000);
  // Bounded by count so that, without a per-task bound, it cannot fill the machine's disk.
  const filler = await run(await register('filler', {
    command: ['sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=1024 2>&1 | head -3; echo "filled $(du -m /big | cut -f1)"; sleep 3600'],
    mountPoints: [{ sourceVolume: 'scratch', containerPath: '/scratch' }],
  }, { volumes: [{ name: 'scratch' }] }));
  const f = await waitForStatus(ecs, cluster, filler, 'RUNNING', 90_000);
  assert.equal(f.containerInstanceArn, n.containerInstanceArn, 'filler and neighbour must share the instance');
  const out = await waitForLogs(berth, group, stream('filler', filler), (m) => m.some((l) => l.startsWith('filled')), 60_000);
  assert.ok(out.some((l) => /No space left on device/.test(l)), out.join('\n'));
  const filled = Number(/filled (\d+)/.exec(out.find((l) => l.startsWith('filled'))!)![1]);
  assert.ok(filled < 300, `the task wrote ${filled} MiB, more than its storage`);

  // The neighbour, the instance and the API are unharmed; the filler itself is still running.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal((await describeTask(ecs, cluster, neighbour)).lastStatus, 'RUNNING');
  assert.equal((await describeTask(ecs, cluster, filler)).lastStatus, 'RUNNING');
  await assertInstanceHealthy(n);
  const listed = await ecs.send(new ListTasksCommand({ cluster }));
  assert.ok(listed.taskArns!.includes(neighbour));
  assert.ok(execFileSync('losetup', ['-a'], { encoding: 'utf8' }).includes(taskId(filler)), 'the filler\'s storage is a loop device');

  // A restarted agent adopts the task's storage (kill -9: it cleans up what it did not make).
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [n.containerInstanceArn!] }))).containerInstances![0]!;
  const pid = agentPid(ci.ec2InstanceId!);
  process.kill(pid, 'SIGKILL');
  await waitFor('a new agent', async () => { try { return agentPid(ci.ec2InstanceId!) !== pid; } catch { return false; } }, 15_000, 100);
  await waitFor('the agent to reconnect', async () => {
    const c = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [n.containerInstanceArn!] }))).containerInstances![0]!;
    return c.agentConnected === true && c.status === 'ACTIVE';
  }, 30_000, 200);
  assert.equal((await describeTask(ecs, cluster, neighbour)).lastStatus, 'RUNNING');

  // Stopping the filler gives its storage back (its loop device goes with it).
  await stop(filler);
  await waitForStatus(ecs, cluster, filler, 'STOPPED', 60_000);
  await waitFor('the filler\'s loop device to go', async () => !execFileSync('losetup', ['-a'], { encoding: 'utf8' }).includes(taskId(filler)), 30_000, 500);
  await stop(neighbour);
});
