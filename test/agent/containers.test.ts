// Real containers on the host (runc + conmon + overlay + cgroups), no instance needed: the
// runtime is pointed at a temp data dir and a private cgroup root.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { ContainerSpec, TaskSpec } from '../../src/agent/protocol.js';
import { OOM_REASON, type ContainerState } from '../../src/agent/runtime/containers.js';
import { CannotStartContainerError, PrivilegedCapabilityError } from '../../src/agent/runtime/errors.js';
import type { PulledImage } from '../../src/agent/runtime/images.js';
import { readLog, rotateLog, START, type LogCursor, type LogEvent } from '../../src/agent/runtime/logs.js';
import { taskUsage } from '../../src/agent/runtime/stats.js';
import { buildAndPush, SYS, syscallProbe } from '../helpers/image.js';
import { cannotRunContainers, makeContainer, makeTask, Sandbox } from './fixtures.js';

const skip = cannotRunContainers();

describe('container runtime (real containers)', { skip }, () => {
  const sb = new Sandbox();
  let image: PulledImage;

  before(async () => {
    await sb.start();
    buildAndPush(sb.registry.address, 'busybox:test', {
      executables: { '/probe/add_key': syscallProbe(SYS.add_key), '/probe/bpf': syscallProbe(SYS.bpf) },
    });
    image = await sb.images.pull(`${sb.registry.address}/busybox:test`);
  });
  after(() => sb.cleanup());

  /** Creates, starts and waits for a container; returns its final state and its output. */
  async function run(command: string, c: Partial<ContainerSpec> = {}, t: Partial<TaskSpec> = {}): Promise<{ state: ContainerState; out: string; events: LogEvent[] }> {
    const task = makeTask(t);
    const created = await sb.runtime.create(task, makeContainer({ command: ['sh', '-c', command], ...c }), image);
    await sb.runtime.start(created.id);
    const state = (await sb.runtime.waitForExit(created.id, 20_000))!;
    assert.ok(state, 'container did not exit in time');
    const { events } = readLog(state.logPath, START, { final: true });
    await sb.runtime.remove(created.id);
    await sb.runtime.removeTask(task.taskId);
    return { state, out: events.map((e) => e.message).join('\n'), events };
  }

  it('runs a container: output through the log tailer, exit code, timestamps', async () => {
    const { state, events } = await run('echo hello; echo oops >&2; printf partial; exit 7', { environment: [{ name: 'GREETING', value: 'hi' }] });
    assert.equal(state.status, 'stopped');
    assert.equal(state.exitCode, 7);
    assert.equal(state.oomKilled, false);
    assert.equal(state.reason, undefined);
    assert.ok(state.startedAt! >= state.createdAt && state.finishedAt! >= state.startedAt!);
    // File order is conmon's read order (stdout's pipe was drained first); the unterminated
    // 'partial' is emitted once the container has exited (final read).
    assert.deepEqual(events.map((e) => [e.stream, e.message]).sort(), [['stderr', 'oops'], ['stdout', 'hello'], ['stdout', 'partial']]);
    assert.ok(events.every((e) => Math.abs(e.timestamp - Date.now()) < 60_000));
  });

  it('applies env, user, working dir and hostname from the image and the definition', async () => {
    const { out } = await run('echo "$GREETING|$(id -u):$(id -g):$(id -G)|$(pwd)|$HOME|$(hostname)"', {
      environment: [{ name: 'GREETING', value: 'hi' }], user: 'app', workingDirectory: '/tmp',
    }, { networkMode: 'host' });
    const [greeting, ids, cwd, home, host] = out.split('|');
    assert.equal(greeting, 'hi');
    assert.equal(ids, '1000:1000:1000 2000'); // supplementary group "extra" from /etc/group
    assert.equal(cwd, '/tmp');
    assert.equal(home, '/home/app');
    assert.equal(host, execFileSync('hostname', { encoding: 'utf8' }).trim()); // host mode: the instance's name
  });

  it('initProcessEnabled runs the container under tini as PID 1 (Docker --init)', { skip: existsSync('/usr/bin/tini-static') ? false : 'needs tini-static' }, async () => {
    const { state, out } = await run('ps -o pid,args; exit 6', { initProcessEnabled: true });
    assert.equal(state.exitCode, 6);
    assert.match(out, /^\s*1 \/sbin\/docker-init -- sh -c/m);
  });

  it('a read-only root filesystem refuses writes (volumes stay writable)', async () => {
    const { state, out } = await run('touch /x 2>&1; echo rc=$?; echo ok > /data/f && cat /data/f', {
      readonlyRootFilesystem: true, mountPoints: [{ sourceVolume: 'scratch', containerPath: '/data', readOnly: false }],
    }, { volumes: [{ name: 'scratch' }] });
    assert.equal(state.exitCode, 0);
    assert.match(out, /Read-only file system/);
    assert.match(out, /rc=1/);
    assert.match(out, /^ok$/m);
  });

  it("gets exactly Docker's default capabilities, plus an allowed CAP_SYS_ADMIN", async () => {
    const def = await run('grep -E "^Cap(Eff|Prm|Bnd|Inh|Amb)" /proc/self/status; grep NoNewPrivs /proc/self/status');
    assert.match(def.out, /CapEff:\s+00000000a80425fb/);
    assert.match(def.out, /CapPrm:\s+00000000a80425fb/);
    assert.match(def.out, /CapBnd:\s+00000000a80425fb/);
    assert.match(def.out, /CapInh:\s+0{16}/);
    assert.match(def.out, /CapAmb:\s+0{16}/);
    assert.match(def.out, /NoNewPrivs:\s+1/);
    const admin = await run('grep CapEff /proc/self/status; mkdir -p /m && mount -t tmpfs t /m && echo mounted', { capabilitiesAdd: ['CAP_SYS_ADMIN'] }, { allowedPrivilegedCapabilities: ['CAP_SYS_ADMIN'] });
    assert.match(admin.out, /CapEff:\s+00000000a82425fb/);
    assert.match(admin.out, /mounted/);
  });

  it('refuses a capability the capacity provider does not allow, leaving nothing behind', async () => {
    const task = makeTask({ allowedPrivilegedCapabilities: ['CAP_NET_ADMIN'] });
    await assert.rejects(
      sb.runtime.create(task, makeContainer({ capabilitiesAdd: ['SYS_ADMIN'] }), image),
      (e: unknown) => e instanceof PrivilegedCapabilityError && /CAP_SYS_ADMIN/.test(e.message) && /berth:privileged-capabilities/.test(e.message),
    );
    await assert.rejects(sb.runtime.create(task, makeContainer({ privileged: true }), image), PrivilegedCapabilityError);
    assert.equal(readdirSync(sb.runtime.layout.containersDir).length, 0);
  });

  it('a command missing from the image fails create with CannotStartContainerError, leaving nothing', async () => {
    const task = makeTask();
    await assert.rejects(sb.runtime.create(task, makeContainer({ command: ['/nonexistent'] }), image),
      (e: unknown) => e instanceof CannotStartContainerError && /^CannotStartContainerError: .*"\/nonexistent": stat \/nonexistent: no such file/.test(e.message));
    assert.deepEqual(readdirSync(sb.runtime.layout.containersDir), []);
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(sb.dataDir + '/containers'), false);
    await sb.runtime.removeTask(task.taskId);
  });

  it('seccomp: add_key is not available, bpf needs CAP_SYS_ADMIN', async () => {
    // Exit code = errno: 38 ENOSYS (profile default action), 1 EPERM (cap-gated rule), 22 EINVAL (the kernel ran bpf).
    const dflt = await run('/probe/add_key; echo add_key=$?; /probe/bpf; echo bpf=$?');
    assert.match(dflt.out, /add_key=38/);
    assert.match(dflt.out, /bpf=1$/m);
    const admin = await run('/probe/bpf; echo bpf=$?', { capabilitiesAdd: ['CAP_SYS_ADMIN'] }, { allowedPrivilegedCapabilities: ['CAP_SYS_ADMIN'] });
    assert.match(admin.out, /bpf=22/);
  });

  it('detects an OOM kill with the ECS reason (and a plain SIGKILL is not one)', async () => {
    const { state } = await run('echo start; tail /dev/zero', { memory: 16 });
    assert.equal(state.exitCode, 137);
    assert.equal(state.oomKilled, true);
    assert.equal(state.reason, OOM_REASON);
    const killed = await run("sh -c 'kill -9 $$'; exit $?"); // 137 without any OOM
    assert.equal(killed.state.exitCode, 137);
    assert.equal(killed.state.oomKilled, false);
    assert.equal(killed.state.reason, undefined);
  });

  it('stop: SIGTERM first, SIGKILL after stopTimeout when the container ignores it', async () => {
    const task = makeTask();
    const stubborn = await sb.runtime.create(task, makeContainer({ name: 'stubborn', command: ['sh', '-c', "trap '' TERM; echo ready; sleep 1000"], stopTimeoutSeconds: 1 }), image);
    const polite = await sb.runtime.create(task, makeContainer({ name: 'polite', command: ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 0.05; done"], stopTimeoutSeconds: 10 }), image);
    await sb.runtime.start(stubborn.id);
    await sb.runtime.start(polite.id);
    await waitForLog(stubborn.logPath, /ready/);
    let t0 = Date.now();
    const p = await sb.runtime.stop(polite.id);
    const politeMs = Date.now() - t0;
    assert.equal(p.exitCode, 0);
    assert.ok(politeMs < 2000, `polite stop took ${politeMs} ms`);
    t0 = Date.now();
    const s = await sb.runtime.stop(stubborn.id);
    const ms = Date.now() - t0;
    assert.equal(s.exitCode, 137);
    assert.equal(s.oomKilled, false);
    assert.ok(ms >= 1000 && ms < 4000, `stop took ${ms} ms with a 1 s stopTimeout`);
    for (const id of [stubborn.id, polite.id]) await sb.runtime.remove(id);
    await sb.runtime.removeTask(task.taskId);
  });

  it("containers of different tasks don't see each other's processes; a task's containers share its volumes", async () => {
    const a = makeTask({ volumes: [{ name: 'shared' }] });
    const b = makeTask();
    const mount = [{ sourceVolume: 'shared', containerPath: '/shared', readOnly: false }];
    const sleeper = await sb.runtime.create(a, makeContainer({ name: 'sleeper', command: ['sh', '-c', 'echo secret > /shared/f; exec sleep 1000'], mountPoints: mount }), image);
    await sb.runtime.start(sleeper.id);
    await waitFor(() => existsSync(`${sb.runtime.layout.taskVolume(a.taskId, 'shared')}/f`));
    const other = await run('ps -o pid,args', {}, b);
    assert.doesNotMatch(other.out, /sleep 1000/);
    const procs = other.out.split('\n').slice(1); // after the PID/COMMAND header: only its own shell and ps
    assert.ok(procs.length >= 1 && procs.length <= 2, other.out);
    assert.equal(procs[0]!.trim().split(/\s+/)[0], '1');
    const sibling = await sb.runtime.create(a, makeContainer({ name: 'sibling', command: ['cat', '/shared/f'], mountPoints: mount }), image);
    await sb.runtime.start(sibling.id);
    const done = await sb.runtime.waitForExit(sibling.id, 10_000);
    assert.equal(done?.exitCode, 0);
    assert.deepEqual(readLog(done!.logPath, START, { final: true }).events.map((e) => e.message), ['secret']);
    await sb.runtime.remove(sibling.id);
    await sb.runtime.remove(sleeper.id);
    await sb.runtime.removeTask(a.taskId);
    assert.equal(existsSync(sb.runtime.layout.taskDir(a.taskId)), false);
  });

  it('awsvpc: the container joins the task netns and is named after the task', async () => {
    // Named as the provider names a task's namespace: the agent refuses any other.
    const task = makeTask({ networkMode: 'awsvpc' });
    const ns = `berthtest${process.pid}-task-${task.taskId}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      task.network = { netnsPath: `/run/netns/${ns}`, ipv4Address: '10.255.0.2', gateway: '10.255.0.1', prefixLength: 24 };
      const { out } = await run('ls /sys/class/net | tr "\\n" " "; echo; hostname; grep "$(hostname)" /etc/hosts', {}, task);
      const [ifaces, host, hosts] = out.split('\n');
      assert.equal(ifaces!.trim(), 'lo');
      assert.equal(host, task.taskId.slice(0, 12));
      assert.match(hosts!, /^10\.255\.0\.2\s/);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });

  it('task stats: cpu seconds and memory bytes from the task cgroup', async () => {
    const task = makeTask({ cpu: 256, memory: 64 });
    const c = await sb.runtime.create(task, makeContainer({ command: ['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo busy; exec sleep 1000'] }), image);
    await sb.runtime.start(c.id);
    await waitForLog(c.logPath, /busy/);
    const usage = taskUsage(sb.runtime.taskCgroupPath(task.taskId));
    assert.ok(usage && usage.cpuSeconds > 0.01 && usage.memoryBytes > 0, JSON.stringify(usage));
    const quota = readFileSync(`/sys/fs/cgroup/cpu${sb.runtime.taskCgroupPath(task.taskId)}/cpu.cfs_quota_us`, 'utf8').trim();
    assert.equal(quota, '25000'); // 256 units = 1/4 CPU over a 100 ms period
    const limit = readFileSync(`/sys/fs/cgroup/memory${sb.runtime.taskCgroupPath(task.taskId)}/memory.limit_in_bytes`, 'utf8').trim();
    assert.equal(limit, String(64 * 1024 * 1024));
    await sb.runtime.remove(c.id);
    await sb.runtime.removeTask(task.taskId);
    assert.equal(taskUsage(sb.runtime.taskCgroupPath(task.taskId)), undefined);
  });

  it('log rotation through conmon loses and repeats nothing', async () => {
    const task = makeTask();
    const c = await sb.runtime.create(task, makeContainer({ command: ['sh', '-c', 'i=0; while [ $i -lt 60 ]; do echo tick-$i; i=$((i+1)); sleep 0.01; done'] }), image);
    await sb.runtime.start(c.id);
    const seen: string[] = [];
    let cursor: LogCursor = START;
    let rotations = 0;
    let exited = false;
    for (let i = 0; i < 500; i++) {
      exited = existsSync(sb.runtime.layout.exitFile(c.id));
      const r = readLog(c.logPath, cursor, { final: exited });
      seen.push(...r.events.map((e) => e.message));
      cursor = r.cursor;
      if (rotateLog(c.logPath, c.ctlPath, cursor, 300)) rotations++;
      if (exited && r.events.length === 0 && seen.length >= 60) break;
      await new Promise((res) => setTimeout(res, 15));
    }
    assert.ok(rotations >= 2, `rotated ${rotations} times`);
    assert.deepEqual(seen, Array.from({ length: 60 }, (_, i) => `tick-${i}`));
    await sb.runtime.remove(c.id);
    await sb.runtime.removeTask(task.taskId);
  });

  it('measures create+start latency over 20 containers and conmon RSS', async (t) => {
    const task = makeTask();
    const times: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = process.hrtime.bigint();
      const c = await sb.runtime.create(task, makeContainer({ name: `c${i}`, command: ['sleep', '1000'] }), image);
      await sb.runtime.start(c.id);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      ids.push(c.id);
    }
    const rss = ids.map((id) => {
      const pid = readFileSync(`${sb.runtime.layout.bundle(id)}/conmon.pid`, 'utf8').trim();
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    });
    times.sort((a, b) => a - b);
    rss.sort((a, b) => a - b);
    t.diagnostic(`create+start p50 ${times[10]!.toFixed(1)} ms, p90 ${times[18]!.toFixed(1)} ms; conmon VmRSS p50 ${rss[10]} KiB`);
    assert.ok(times[10]! < 2000);
    const t0 = Date.now();
    await Promise.all(ids.map((id) => sb.runtime.remove(id)));
    t.diagnostic(`removing 20 running containers took ${Date.now() - t0} ms`);
    await sb.runtime.removeTask(task.taskId);
  });

  it("runc exec (health checks) runs the agent's own copy of the process, whatever the bundle's config.json says", async () => {
    const task = makeTask();
    const c = await sb.runtime.create(task, makeContainer({ command: ['sleep', '1000'], environment: [{ name: 'OWN', value: 'yes' }] }), image);
    await sb.runtime.start(c.id);
    const config = sb.runtime.layout.file(c.id, 'config.json');
    // What the old health-check escalation did from a host volume: add CAP_SYS_ADMIN and an env var.
    writeFileSync(config, readFileSync(config, 'utf8').replaceAll('"CAP_CHOWN"', '"CAP_SYS_ADMIN","CAP_CHOWN"').replace('"OWN=yes"', '"OWN=edited"'));
    const r = await sb.runtime.exec(c.id, ['sh', '-c', 'grep CapEff /proc/self/status; echo "own=$OWN"'], 10_000);
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, /CapEff:\s*00000000a80425fb/);
    assert.match(r.output, /own=yes/);
    assert.deepEqual(readdirSync(sb.runtime.layout.execDir).filter((f) => f.endsWith('.json')), [], 'exec process files are removed');
    await sb.runtime.remove(c.id);
    assert.equal(existsSync(sb.runtime.layout.processSpec(c.id)), false);
    await sb.runtime.removeTask(task.taskId);
  });

  it('a task writes to a bounded filesystem of its own, found again by a restarted runtime and gone with the task', async () => {
    const rt = sb.newRuntime({ taskStorageBytes: 64 * 1024 * 1024 });
    const task = makeTask({ volumes: [{ name: 'scratch' }] });
    const mountPoints = [{ sourceVolume: 'scratch', containerPath: '/scratch', readOnly: false }];
    const filler = await rt.create(task, makeContainer({ command: ['sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=200 2>&1 | head -1; echo kept > /scratch/f; echo filled; exec sleep 1000'], mountPoints }), image);
    await rt.start(filler.id);
    await waitForLog(filler.logPath, /filled/);
    assert.match(readFileSync(filler.logPath, 'utf8'), /No space left on device/);
    const image0 = rt.layout.taskStorageImage(task.taskId);
    assert.ok(loopDevices().includes(image0), 'the task storage is a loop device');
    // A restarted agent (a new runtime on the same data dir) adds a container to the task: same filesystem.
    const again = sb.newRuntime({ taskStorageBytes: 64 * 1024 * 1024 });
    const sibling = await again.create(task, makeContainer({ name: 'sibling', command: ['sh', '-c', 'cat /scratch/f; df -k / | tail -1'], mountPoints }), image);
    await again.start(sibling.id);
    const done = await again.waitForExit(sibling.id, 10_000);
    assert.equal(done?.exitCode, 0);
    const out = readLog(done!.logPath, START, { final: true }).events.map((e) => e.message);
    assert.equal(out[0], 'kept');
    assert.equal(loopDevices().split(image0).length, 2, 'one loop device for the task, not two');
    await again.remove(sibling.id);
    await again.remove(filler.id);
    await again.removeTask(task.taskId);
    assert.equal(existsSync(image0), false);
    assert.equal(loopDevices().includes(image0), false, loopDevices());
    assert.equal(existsSync(again.layout.taskDir(task.taskId)), false);
  });
});

function loopDevices(): string {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' });
}

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waitForLog(path: string, re: RegExp): Promise<void> {
  await waitFor(() => { try { return re.test(readFileSync(path, 'utf8')); } catch { return false; } });
}
