// The local instance provider on this machine (as root): isolation of an instance seen from
// inside, agent supervision, registry forward, task networks, two Berths side by side,
// complete cleanup, and recovery after the control plane is SIGKILLed mid-launch.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { instanceType } from '../../src/domain/instance-types.js';
import { LocalInstanceProvider } from '../../src/providers/local/index.js';
import type { LaunchedInstance } from '../../src/providers/provider.js';
import { repoRoot } from '../helpers/berth.js';

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const skip = process.getuid?.() !== 0 ? 'needs root'
  : ['nsenter', 'unshare', 'ip', 'tini', 'flock', 'ss'].filter((b) => !has(b)).map((b) => `needs ${b}`).join(', ') || false;

const T3_MICRO = instanceType('t3.micro')!; // 2 vCPU, 1024 MiB
const newId = () => `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(cmd: string): string {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  return r.stdout;
}

/** Runs argv inside the instance (its mount, network and PID namespaces); async, so this process can serve the forwarder. */
function inInstance(initPid: number, argv: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', ['-t', String(initPid), '-m', '-n', '-p', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('close', (code) => resolve({ code, out }));
  });
}

/** Exists and has not exited (a zombie has exited). */
function running(pid: number): boolean {
  try { return !/^\S+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const comm = (pid: number) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return ''; } };
const children = (pid: number) => {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
};
const cmdline = (pid: number) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { return ''; } };
/** Host pid of the running dummy agent (`sleep 1000` once it has written its facts; the supervisor's child, tini's grandchild). */
const agentPid = (initPid: number) => children(initPid).flatMap(children).find((p) => cmdline(p) === 'sleep 1000');

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Everything an instance (and its task networks) could have left on the host. */
function leftovers(dataDir: string, id: string, extra: { netns?: string[]; links?: string[] } = {}): string[] {
  const out: string[] = [];
  const netns = sh('ip netns list').split('\n').map((l) => l.split(' ')[0]);
  for (const n of [`berth-${id}`, ...(extra.netns ?? [])]) if (netns.includes(n)) out.push(`netns ${n}`);
  for (const n of netns) if (n.endsWith(`-pull-${id}`)) out.push(`netns ${n}`);
  const links = sh('ip -br link').split('\n').map((l) => l.split(/[\s@]/)[0]);
  for (const l of extra.links ?? []) if (links.includes(l)) out.push(`link ${l}`);
  for (const c of readdirSync('/sys/fs/cgroup')) if (existsSync(`/sys/fs/cgroup/${c}/berth/${id}`)) out.push(`cgroup ${c}/berth/${id}`);
  if (readFileSync('/proc/self/mountinfo', 'utf8').includes(`/instances/${id}`)) out.push('mount');
  if (existsSync(join(dataDir, 'instances', id))) out.push('data dir');
  if (existsSync(join(dataDir, 'local-provider', 'instances', `${id}.json`))) out.push('record');
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try { if (readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`/berth/${id}\n`)) out.push(`process ${p} (${comm(Number(p))})`); } catch { /* gone */ }
  }
  return out;
}

describe('local instance provider', { skip, concurrency: false }, () => {
  let work: string;
  let agentScript: string;
  let dataDir: string;
  let provider: LocalInstanceProvider;
  let gateway: string;
  let inst: LaunchedInstance;
  const others: LocalInstanceProvider[] = [];

  const spec = (instanceId = newId(), env: Record<string, string> = {}) => ({
    instanceId, instanceType: T3_MICRO, subnetId: 'subnet-local', availabilityZone: 'local-1a',
    agent: { command: [agentScript, 'arg one'], env: { FOO: 'bar', SECRET_FILE: join(work, 'secrets', 'master.key'), ...env }, bootstrapToken: 'secret-bootstrap-token' },
  });

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-provider-test-'));
    dataDir = join(work, 'berth-a');
    agentScript = join(work, 'agent.sh');
    // The dummy agent: writes what it sees into its data dir, then sleeps.
    writeFileSync(agentScript, `#!/bin/sh
d=$BERTH_INSTANCE_DATA_DIR
echo $$ >> "$d/starts"
{
  echo "arg=$1"
  echo "addr=$(ip -4 -o addr show dev eth0 | awk '{print $4}')"
  echo "route=$(ip route show default)"
  echo "root_write=$(touch /berth-probe 2>&1)"
  echo "tmp_write=$(touch /tmp/berth-probe 2>&1)"
  echo "data_write=$(touch "$d/probe" && echo ok)"
  echo "tmpdir_write=$(touch "$TMPDIR/probe" && echo ok)"
  echo "pids=$(ls /proc | grep -c '^[0-9]')"
  echo "pid1=$(cat /proc/1/comm)"
  echo "listening=$(ss -ltnuH | wc -l)"
  echo "berth_dir=$(ls "$(dirname "$(dirname "$d")")" | tr '\\n' ' ')"
  echo "token_env=$(env | grep -c secret-bootstrap-token)"
  echo "token_file=$(cat "$BERTH_BOOTSTRAP_TOKEN_FILE")"
  echo "foo=$FOO"
  echo "secret=$(cat "$SECRET_FILE" 2>&1)"
  echo "cgroups=$(grep -vc ":/berth/$BERTH_INSTANCE_ID\$" /proc/self/cgroup)"
} > "$d/facts.tmp" 2>&1
mv "$d/facts.tmp" "$d/facts"
exec sleep 1000
`, { mode: 0o755 });
    mkdirSync(join(work, 'secrets'));
    writeFileSync(join(work, 'secrets', 'master.key'), 'TOPSECRET');
    provider = new LocalInstanceProvider({ dataDir, hiddenPaths: [join(work, 'secrets')] });
    gateway = (await provider.prepare()).gatewayAddress;
  });

  after(async () => {
    for (const p of [provider, ...others]) await p?.releaseHost().catch((e: Error) => console.error(`cleanup: ${e.message}`));
    rmSync(work, { recursive: true, force: true });
  });

  it('reports nothing missing on this host', async () => {
    assert.deepEqual(await provider.check(), []);
    assert.match(gateway, /^10\.2\d\d\.0\.1$/);
    assert.equal((await provider.prepare()).gatewayAddress, gateway, 'prepare is idempotent');
  });

  it('launches an isolated instance: own netns and address, read-only root, own PID ns, sized cgroup, no listener', async (t) => {
    const t0 = performance.now();
    inst = await provider.launch(spec());
    t.diagnostic(`launch: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.match(inst.privateIpv4Address, new RegExp(`^${gateway.split('.').slice(0, 2).join('\\.')}\\.`));
    assert.equal(inst.cgroupPath, `/berth/${inst.instanceId}`);
    assert.equal(inst.dataDir, join(dataDir, 'instances', inst.instanceId));
    assert.equal(comm(inst.initPid), 'tini');
    assert.equal(await provider.isAlive(inst.instanceId), true);

    const factsFile = join(inst.dataDir, 'facts');
    const facts = Object.fromEntries((await waitFor('agent facts', () => existsSync(factsFile) && readFileSync(factsFile, 'utf8')))
      .trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.equal(facts.arg, 'arg one');
    assert.equal(facts.addr, `${inst.privateIpv4Address}/16`);
    assert.match(facts.route!, new RegExp(`^default via ${gateway.replace(/\./g, '\\.')} dev eth0`));
    assert.match(facts.root_write!, /Read-only file system/);
    assert.match(facts.tmp_write!, /Read-only file system/);
    assert.equal(facts.data_write, 'ok');
    assert.equal(facts.tmpdir_write, 'ok');
    assert.ok(Number(facts.pids) < 10, `host processes are invisible (saw ${facts.pids} pids)`);
    assert.equal(facts.pid1, 'tini');
    assert.equal(facts.listening, '0');
    assert.equal(facts.berth_dir!.trim(), 'instances', 'the rest of the Berth data dir is hidden');
    assert.equal(facts.token_env, '0', 'the bootstrap token is not in the environment');
    assert.equal(facts.token_file, 'secret-bootstrap-token');
    assert.equal(statSync(join(inst.dataDir, 'bootstrap-token')).mode & 0o777, 0o600);
    assert.equal(facts.foo, 'bar');
    assert.match(facts.secret!, /No such file/, 'hiddenPaths are hidden');
    assert.equal(facts.cgroups, '0', 'every hierarchy puts the agent in /berth/<id>');

    // Limits from the instance type (t3.micro: 2 vCPU, 1 GiB).
    const cg = (c: string, f: string) => readFileSync(`/sys/fs/cgroup/${c}/berth/${inst.instanceId}/${f}`, 'utf8').trim();
    assert.equal(cg('memory', 'memory.limit_in_bytes'), String(1024 * 1024 * 1024));
    assert.equal(cg('cpu', 'cpu.cfs_quota_us'), '200000');
    assert.equal(cg('cpu', 'cpu.cfs_period_us'), '100000');
    assert.equal(cg('cpu', 'cpu.shares'), '2048');
    assert.equal(cg('pids', 'pids.max'), '4096');
    // The tasks' pool keeps a reserve for the agent and runtime.
    assert.equal(cg('pids', 'workloads/pids.max'), String(4096 - 512));
    assert.equal(cg('memory', 'workloads/memory.limit_in_bytes'), String((1024 - 256) * 1024 * 1024));
    assert.notEqual(cg('cpuset', 'cpuset.cpus'), '');
    assert.notEqual(cg('cpuset', 'workloads/cpuset.cpus'), '');
    for (const h of ['systemd', 'unified']) assert.ok(existsSync(`/sys/fs/cgroup/${h}/berth/${inst.instanceId}`), h);
    const procs = cg('pids', 'cgroup.procs').split('\n').map(Number);
    assert.ok(procs.includes(inst.initPid), 'init is in the instance cgroup');

    // Seen from the host side, through the instance's namespaces.
    assert.equal(sh(`ip netns exec berth-${inst.instanceId} ss -ltnuH`).trim(), '', 'no listening socket in the instance netns');
    const ps = await inInstance(inst.initPid, ['sh', '-c', 'ls /proc | grep -c "^[0-9]"; touch /x 2>&1; cat /proc/1/comm']);
    assert.match(ps.out, /Read-only file system/);
    assert.match(ps.out, /tini/);
  });

  it('restarts the agent within about a second after kill -9, without taking down the instance', async (t) => {
    const before = await waitFor('agent', () => agentPid(inst.initPid));
    const t0 = performance.now();
    process.kill(before, 'SIGKILL');
    const restarted = await waitFor('restarted agent', () => { const p = agentPid(inst.initPid); return p !== before && p; }, 3000);
    const ms = performance.now() - t0;
    t.diagnostic(`agent restart after kill -9: ${ms.toFixed(0)} ms`);
    assert.ok(ms < 1500, `restart took ${ms} ms`);
    assert.ok(restarted > 0);
    assert.equal(comm(inst.initPid), 'tini', 'the instance init survived');
    assert.equal(await provider.isAlive(inst.instanceId), true);
    await waitFor('second start recorded', () => readFileSync(join(inst.dataDir, 'starts'), 'utf8').trim().split('\n').length === 2);
  });

  it('relays a loopback registry on the gateway, for pulls from the instance\'s pull namespace only', async () => {
    // In another process: a relay never forwards to a port of the process it runs in (Berth's own).
    const server = spawn(process.execPath, ['-e', `require('http').createServer((req, res) => res.end('registry says hi to ' + req.method + ' ' + req.url))
      .listen(0, '127.0.0.1', function () { console.log(this.address().port); })`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = Number(await new Promise<string>((r) => server.stdout!.once('data', (d) => r(String(d)))));
      const forwarded = await provider.ensureRegistryForward(`127.0.0.1:${port}`);
      assert.equal(forwarded, `${gateway}:${port}`);
      assert.equal(await provider.ensureRegistryForward(`localhost:${port}`), forwarded, 'idempotent');
      const fetchJs = (url: string, method = 'GET') => [process.execPath, '-e',
        `fetch(${JSON.stringify(url)}, { method: '${method}', signal: AbortSignal.timeout(2000) }).then(async (r) => console.log(r.status, await r.text()), (e) => { console.log('ERR', e.cause?.code ?? e.name); })`];
      const pullNetns = `/run/netns/berth${provider.network!.slot}-pull-${inst.instanceId}`;
      const fromPull = async (url: string, method?: string) => inInstance(inst.initPid, ['nsenter', `--net=${pullNetns}`, '--', ...fetchJs(url, method)]);
      assert.match((await fromPull(`http://${forwarded}/v2/`)).out, /^200 registry says hi to GET \/v2\//);
      assert.match((await fromPull(`http://${forwarded}/v2/x/blobs/uploads/`, 'POST')).out, /^405 .*pulls only/, 'no push');
      assert.match((await fromPull(`http://${forwarded}/elsewhere`)).out, /^404 /, 'only the registry API');
      assert.match((await inInstance(inst.initPid, fetchJs(`http://${forwarded}/v2/`))).out, /^ERR/, 'the instance (and its host-mode tasks) cannot reach the relay');
      assert.match((await inInstance(inst.initPid, fetchJs(`http://127.0.0.1:${port}/v2/`))).out, /ERR ECONNREFUSED/, "the host's loopback is not the instance's");
      assert.equal(sh(`ip netns exec berth-${inst.instanceId} ss -ltnuH`).trim(), '', 'the relay does not listen inside the instance');
      await assert.rejects(provider.ensureRegistryForward('10.1.2.3:5000'), /only a loopback registry/);
    } finally {
      await provider.close();
      server.kill('SIGKILL');
    }
  });

  it('attaches a task network reachable from the host and from the instance, and detaches it', async () => {
    const taskId = randomBytes(16).toString('hex');
    const eni = await provider.attachTaskNetwork(inst.instanceId, taskId);
    assert.deepEqual(await provider.attachTaskNetwork(inst.instanceId, taskId), eni, 'attach is idempotent');
    assert.match(eni.interfaceId, /^eni-[0-9a-f]{17}$/);
    assert.equal(eni.gateway, gateway);
    assert.equal(eni.prefixLength, 16);
    assert.notEqual(eni.ipv4Address, inst.privateIpv4Address);
    assert.ok(existsSync(eni.netnsPath));
    assert.match((await inInstance(inst.initPid, ['ls', '/run/netns'])).out, new RegExp(eni.netnsPath.split('/').pop()!), 'visible inside the instance');
    assert.equal(sh(`ip netns exec ${eni.netnsPath.split('/').pop()} cat /sys/class/net/eth0/address`).trim(), eni.macAddress);

    // A "container" listening in the task netns.
    const server: ChildProcess = spawn('nsenter', [`--net=${eni.netnsPath}`, process.execPath, '-e',
      `require('net').createServer((s) => s.end('hello from the task')).listen(7070, () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((r) => server.stdout!.once('data', () => r()));
      const fromHost = await new Promise<string>((resolve, reject) => {
        let got = '';
        const s = connect(7070, eni.ipv4Address);
        s.on('data', (d) => { got += d; }).on('end', () => resolve(got)).on('error', reject);
      });
      assert.equal(fromHost, 'hello from the task');
      const fromInstance = await inInstance(inst.initPid, [process.execPath, '-e',
        `const s = require('net').connect(7070, ${JSON.stringify(eni.ipv4Address)}); s.pipe(process.stdout); s.on('error', (e) => console.log('ERR', e.code))`]);
      assert.equal(fromInstance.out, 'hello from the task');
    } finally {
      server.kill('SIGKILL');
    }
    await provider.detachTaskNetwork(taskId);
    await provider.detachTaskNetwork(taskId);
    assert.ok(!existsSync(eni.netnsPath));
    const veth = `bv${provider.network!.slot}-${eni.ipv4Address.split('.').slice(2).join('-')}`;
    assert.equal(sh(`ip -br link show ${veth} 2>/dev/null`), '');
  });

  it('terminate removes everything (processes, netns, veths, cgroups, mounts, data dir) and is idempotent', async (t) => {
    const eni = await provider.attachTaskNetwork(inst.instanceId, 'task-to-clean');
    const slot = provider.network!.slot;
    const veth = (a: string) => `bv${slot}-${a.split('.').slice(2).join('-')}`;
    const extra = { netns: [eni.netnsPath.split('/').pop()!], links: [veth(inst.privateIpv4Address), veth(eni.ipv4Address)] };
    // A "container" in a nested cgroup, as runc makes them (/berth/<id>/<task> in every hierarchy).
    const nested = readdirSync('/sys/fs/cgroup').map((c) => `/sys/fs/cgroup/${c}/berth/${inst.instanceId}/task-x`)
      .filter((d) => existsSync(join(d, '..')));
    sh(`mkdir -p ${nested.join(' ')}`);
    const cpuset = `/sys/fs/cgroup/cpuset/berth/${inst.instanceId}`;
    sh(`cat ${cpuset}/cpuset.cpus > ${cpuset}/task-x/cpuset.cpus; cat ${cpuset}/cpuset.mems > ${cpuset}/task-x/cpuset.mems`);
    const container = spawn('nsenter', ['-t', String(inst.initPid), '-m', '-n', '-p', '--', 'sh', '-c',
      `for d in ${nested.join(' ')}; do echo $$ > $d/cgroup.procs; done; echo in; exec sleep 1000`], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    await new Promise((r) => container.stdout!.once('data', r));
    for (const d of nested) assert.notEqual(readFileSync(`${d}/cgroup.procs`, 'utf8').trim(), '', d);
    assert.ok(leftovers(dataDir, inst.instanceId, extra).length > 0);
    const t0 = performance.now();
    await provider.terminate(inst.instanceId);
    t.diagnostic(`terminate (with one task network): ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(leftovers(dataDir, inst.instanceId, extra), []);
    assert.equal(running(inst.initPid), false, 'init is gone');
    assert.equal(await provider.isAlive(inst.instanceId), false);
    await provider.terminate(inst.instanceId);
    assert.deepEqual(await provider.list(), []);
    assert.deepEqual(readdirSync(join(dataDir, 'local-provider', 'addresses')), [], 'addresses released');
  });

  it('runs two Berths side by side in different slots without touching each other', async () => {
    const other = new LocalInstanceProvider({ dataDir: join(work, 'berth-b') });
    others.push(other);
    const gatewayB = (await other.prepare()).gatewayAddress;
    assert.notEqual(gatewayB, gateway);
    assert.notEqual(other.network!.bridge, provider.network!.bridge);
    const a = await provider.launch(spec());
    const b = await other.launch(spec());
    assert.notEqual(a.privateIpv4Address.split('.')[1], b.privateIpv4Address.split('.')[1]);
    await assert.rejects(other.launch(spec(a.instanceId)), /in use on this host by another Berth/);
    await assert.rejects(other.launch({ ...spec(), agent: { ...spec().agent, command: ['/nonexistent/agent'] } }), /not an executable file/);
    await assert.rejects(other.launch(spec('i-../../etc')), /8 to 17 hex digits/);
    // Recovering A (keeping nothing) removes A's instance and leaves B's alone.
    const { removed } = await provider.recover([]);
    assert.deepEqual(removed, [a.instanceId]);
    assert.equal(await other.isAlive(b.instanceId), true);
    assert.deepEqual(leftovers(dataDir, a.instanceId), []);
    await other.terminate(b.instanceId);
    assert.deepEqual(leftovers(join(work, 'berth-b'), b.instanceId), []);
  });

  /** A separate "control plane" process launching one instance (optionally stalling at a step), to be SIGKILLed. */
  const startChild = (childDataDir: string, instanceId: string, stallAt?: string) => {
    const child = join(repoRoot, 'dist', 'test', 'providers', 'fixtures', 'launch-child.js');
    const p = spawn(process.execPath, [child], {
      env: { ...process.env, BERTH_LAUNCH_CHILD: JSON.stringify({ dataDir: childDataDir, instanceId, stallAt, command: [agentScript] }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = new Promise<string>((resolve, reject) => {
      let out = '';
      p.stdout!.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
      p.once('exit', (code) => reject(new Error(`child exited ${code}: ${out}`)));
    });
    return { p, line, instanceId };
  };
  const killChild = async (c: { p: ChildProcess }) => {
    c.p.removeAllListeners('exit');
    if (c.p.exitCode === null && c.p.signalCode === null) {
      const exited = new Promise((r) => c.p.once('exit', r));
      c.p.kill('SIGKILL');
      await exited;
    }
  };

  it('instances outlive a SIGKILLed control plane; recover keeps them and removes half-launched ones', async () => {
    const start = (instanceId: string, stallAt?: string) => startChild(dataDir, instanceId, stallAt);
    const full = start(newId());
    const stalled = ['record', 'data-dir', 'network', 'process', 'wait-agent'].map((s) => ({ step: s, ...start(newId(), s) }));
    const launchedLine = await full.line;
    assert.match(launchedLine, /^launched /);
    const launched = JSON.parse(launchedLine.slice('launched '.length)) as LaunchedInstance;
    for (const s of stalled) assert.equal(await s.line, `stalled at ${s.step}`);
    await Promise.all([full, ...stalled].map(killChild));

    // The control plane is gone; the fully launched instance is not.
    await sleep(100);
    assert.equal(comm(launched.initPid), 'tini');
    assert.equal(await provider.isAlive(launched.instanceId), true);
    await waitFor('its agent still running', () => agentPid(launched.initPid));
    // A stalled instance at 'wait-agent' has processes running; at 'network' it has a cgroup, no netns yet.
    assert.ok(leftovers(dataDir, stalled[4]!.instanceId).some((l) => l.startsWith('process')));

    const { removed } = await provider.recover([launched.instanceId]);
    // 'record' stalled before writing its record: only its address file was left (freed, not an instance).
    assert.deepEqual(removed.sort(), stalled.slice(1).map((s) => s.instanceId).sort());
    for (const s of stalled) assert.deepEqual(leftovers(dataDir, s.instanceId), [], `leftovers of the launch stalled at ${s.step}`);
    const kept = JSON.parse(readFileSync(join(dataDir, 'local-provider', 'instances', `${launched.instanceId}.json`), 'utf8')) as { pull: { address: string } };
    assert.deepEqual(readdirSync(join(dataDir, 'local-provider', 'addresses')).sort(), [launched.privateIpv4Address, kept.pull.address].sort(), 'its own and its pull address');
    assert.equal(await provider.isAlive(launched.instanceId), true, 'kept');
    assert.deepEqual((await provider.list()).map((i) => i.instanceId), [launched.instanceId]);

    await provider.terminate(launched.instanceId);
    assert.deepEqual(leftovers(dataDir, launched.instanceId), []);
  });

  it("a Berth whose data dir is gone loses its slot: the next Berth to prepare wipes the instances it left", async () => {
    const goneDir = join(work, 'berth-gone');
    const c = startChild(goneDir, newId());
    const launched = JSON.parse((await c.line).slice('launched '.length)) as LaunchedInstance;
    await killChild(c);
    rmSync(goneDir, { recursive: true, force: true });
    assert.equal(running(launched.initPid), true);
    const next = new LocalInstanceProvider({ dataDir: join(work, 'berth-next') });
    others.push(next);
    await next.prepare();
    assert.equal(running(launched.initPid), false);
    assert.deepEqual(leftovers(goneDir, launched.instanceId), []);
  });

  it('measures launch (spec → agent running) and terminate over 10 instances', async (t) => {
    const launchMs: number[] = [];
    const terminateMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const x = await provider.launch(spec());
      launchMs.push(performance.now() - t0);
      assert.ok(agentPid(x.initPid) || children(x.initPid).length > 0);
      const t1 = performance.now();
      await provider.terminate(x.instanceId);
      terminateMs.push(performance.now() - t1);
    }
    const t2 = performance.now();
    const batch = await Promise.all(Array.from({ length: 5 }, () => provider.launch(spec())));
    const parallelMs = performance.now() - t2;
    assert.equal(new Set(batch.map((b) => b.privateIpv4Address)).size, 5, 'distinct addresses');
    await Promise.all(batch.map((b) => provider.terminate(b.instanceId)));
    const fmt = (v: number[]) => `p50 ${percentile(v, 50).toFixed(0)} ms, max ${Math.max(...v).toFixed(0)} ms`;
    t.diagnostic(`launch ×10: ${fmt(launchMs)}; terminate ×10: ${fmt(terminateMs)}; 5 parallel launches: ${parallelMs.toFixed(0)} ms`);
    assert.ok(percentile(launchMs, 50) < 2000);
  });
});
