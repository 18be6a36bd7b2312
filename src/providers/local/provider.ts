// The local instance provider: "EC2 instances" that are isolated hosts on this machine.
//
// An instance is
//   * a network namespace `berth-<instanceId>` with a veth on this Berth's bridge (own
//     address, default route via the gateway), and a second one, `berth<slot>-pull-<id>`,
//     for the agent's image pulls only (the registry relay admits only these);
//   * a mount namespace (slave of the host's, so task netns made later under /run/netns show
//     up) where `/` is read-only, the Berth data dir is hidden, and only the instance data dir
//     `<dataDir>/instances/<instanceId>` is writable;
//   * a PID namespace whose PID 1 is tini (it reaps orphaned conmon processes) and whose
//     tini child is a supervisor that restarts the agent whenever it exits;
//   * the cgroup `/berth/<instanceId>` in every hierarchy, sized from the instance type.
// It runs detached in its own session, so it outlives the control plane.
//
// Crash safety: every host resource is named in an on-disk record (address file, instance or
// task record) before it is created, so `recover` can find and remove anything a crash left
// half-made. Everything this Berth owns on the host is in its slot (bridge `berth<n>`, veths
// `bv<n>-*`, addresses 10.(200+n).*, nftables tables `berth<n>`), so `recover` never touches
// another Berth's instances. The slot's firewall (firewall.ts) is rewritten from the records
// whenever a port comes or goes.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import {
  closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { systemClock, type Clock } from '../../domain/clock.js';
import type { InstanceLaunchSpec, InstanceProvider, LaunchedInstance, TaskNetwork } from '../provider.js';
import { AddressPool, addressOfHostVeth, hostVethName, inSubnet, macForAddress } from './addresses.js';
import { Cgroups, limitsFor, type CgroupLimits } from './cgroups.js';
import { childPids, isExecutable, isSameProcess, killQuietly, processStartTime, readJson, run, sleep, which, writeFileAtomic } from './exec.js';
import { Firewall, nft, removalScript, type BridgePort, type FirewallState } from './firewall.js';
import { Forwarders, parseLoopback } from './forwarder.js';
import { slotNetwork, SlotLeases, type SlotNetwork } from './host-lease.js';
import {
  deleteLink, deleteNetns, ensureBridge, linkExists, listLinks, listNetns, netnsAddresses, plugNetns, securePort, subnetInUse, unplugNetns,
} from './net.js';
import { INIT_SCRIPT, LAUNCH_SCRIPT, SUPERVISOR_SCRIPT } from './scripts.js';

/** Launch steps in order; `onLaunchStep` runs before each ('wait-agent': the instance process exists, its agent may not). */
export type LaunchStep = 'address' | 'record' | 'data-dir' | 'cgroup' | 'network' | 'process' | 'wait-agent' | 'ready';

export interface LocalProviderOptions {
  /** The Berth data dir: instances live in `<dataDir>/instances/<id>`, provider state in `<dataDir>/local-provider`. */
  dataDir: string;
  /** Host-wide coordination shared by every Berth on this host (slot leases). */
  hostStateDir?: string;
  /** Where the cgroup hierarchies are mounted. */
  cgroupMountRoot?: string;
  /** Parent of the instance cgroups in every hierarchy. */
  cgroupBase?: string;
  /** More host directories to hide inside instances (e.g. the master key's); the Berth data dir always is. */
  hiddenPaths?: string[];
  clock?: Clock;
  log?: (line: string) => void;
  /** How long `launch` waits for the agent process to start. */
  launchTimeoutMs?: number;
  /** For crash tests: awaited before each launch step (a test can stall the launch there and kill the process). */
  onLaunchStep?: (step: LaunchStep, instanceId: string) => Promise<void> | void;
}

interface InstanceRecord {
  instanceId: string;
  state: 'launching' | 'running';
  slot: number;
  address: string;
  hostVeth: string;
  netns: string;
  /** The agent's pull namespace (absent in records of instances launched before it existed). */
  pull?: { netns: string; address: string; hostVeth: string };
  cgroupPath: string;
  dataDir: string;
  instanceType: string;
  limits: CgroupLimits;
  subnetId: string;
  availabilityZone: string;
  launchedAt: number;
  launcherPid?: number;
  launcherStart?: string;
  initPid?: number;
  initStart?: string;
}

interface TaskRecord {
  taskId: string;
  instanceId: string;
  netns: string;
  hostVeth: string;
  address: string;
  macAddress: string;
  interfaceId: string;
}

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const BINARIES: [string, string][] = [
  ['nsenter', 'util-linux'], ['unshare', 'util-linux'], ['mount', 'mount'], ['flock', 'util-linux'], ['ip', 'iproute2'],
  ['tini', 'tini'], ['runc', 'runc'], ['conmon', 'conmon'], ['skopeo', 'skopeo'], ['umoci', 'umoci'],
  ['bridge', 'iproute2'], ['nft', 'nftables'],
];

/** Serialises async operations per key (one launch/terminate per instance, one attach/detach per task). */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    try { return await next; } finally { if (this.tails.get(key) === tail) this.tails.delete(key); }
  }
}

export class LocalInstanceProvider implements InstanceProvider {
  readonly name = 'local';
  readonly dataDir: string;
  private readonly stateDir: string;
  private readonly cgroups: Cgroups;
  private readonly leases: SlotLeases;
  private readonly clock: Clock;
  private readonly log: (line: string) => void;
  private readonly forwarders: Forwarders;
  private readonly mutex = new KeyedMutex();
  private prepared?: Promise<SlotNetwork>;
  private net?: SlotNetwork;
  private pool?: AddressPool;
  private firewall?: Firewall;
  /** The agent gateway's port(s), as the control plane reported them. */
  private readonly agentPorts = new Set<number>();

  constructor(private readonly options: LocalProviderOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.dataDir = realpathSync(options.dataDir);
    this.stateDir = join(this.dataDir, 'local-provider');
    this.cgroups = new Cgroups(options.cgroupMountRoot, options.cgroupBase);
    this.leases = new SlotLeases(options.hostStateDir ?? '/run/berth-local');
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? (() => undefined);
    this.forwarders = new Forwarders((line) => this.log(`local provider: ${line}`));
  }

  // ---- paths ------------------------------------------------------------------------------

  private instanceDataDir(id: string): string { return join(this.dataDir, 'instances', id); }
  private recordFile(id: string): string { return join(this.stateDir, 'instances', `${id}.json`); }
  private taskFile(taskId: string): string { return join(this.stateDir, 'tasks', `${taskId}.json`); }
  private consoleFile(id: string): string { return join(this.stateDir, 'console', `${id}.log`); }
  private static markerFile(dataDir: string): string { return join(dataDir, 'local-provider', 'slot.json'); }
  /** Whether a Berth data dir has instance or task records (its slot must then be kept). */
  private static hasState(dataDir: string): boolean {
    const any = (d: string) => { try { return readdirSync(d).some((f) => f.endsWith('.json')); } catch { return false; } };
    return any(join(dataDir, 'local-provider', 'instances')) || any(join(dataDir, 'local-provider', 'tasks'));
  }
  private taskNetnsName(net: SlotNetwork, taskId: string): string { return `berth${net.slot}-task-${taskId}`; }
  private pullNetnsName(net: SlotNetwork, instanceId: string): string { return `berth${net.slot}-pull-${instanceId}`; }

  private records(): InstanceRecord[] {
    const dir = join(this.stateDir, 'instances');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((f) => f.endsWith('.json'))
      .map((f) => readJson<InstanceRecord>(join(dir, f)))
      .filter((r): r is InstanceRecord => !!r);
  }

  private taskRecords(): TaskRecord[] {
    const dir = join(this.stateDir, 'tasks');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((f) => f.endsWith('.json'))
      .map((f) => readJson<TaskRecord>(join(dir, f)))
      .filter((r): r is TaskRecord => !!r);
  }

  private writeRecord(r: InstanceRecord): void { writeFileAtomic(this.recordFile(r.instanceId), JSON.stringify(r, null, 1) + '\n'); }

  // ---- readiness of the host --------------------------------------------------------------

  async check(): Promise<string[]> {
    const missing: string[] = [];
    const root = process.getuid?.() === 0;
    if (!root) missing.push('root privileges (the local provider creates namespaces, cgroups and network devices)');
    for (const [bin, pkg] of BINARIES) if (!which(bin)) missing.push(`the ${bin} binary (apt-get install ${pkg})`);
    for (const ns of ['net', 'mnt', 'pid']) if (!existsSync(`/proc/self/ns/${ns}`)) missing.push(`kernel support for ${ns} namespaces`);
    let filesystems = '';
    try { filesystems = readFileSync('/proc/filesystems', 'utf8'); } catch { /* reported below */ }
    for (const fs of ['overlay', 'tmpfs']) {
      if (!new RegExp(`\\t${fs}$`, 'm').test(filesystems)) missing.push(`the ${fs} filesystem (kernel module ${fs})`);
    }
    for (const c of this.cgroups.missingControllers()) missing.push(`the cgroup v1 ${c} controller (mounted at ${this.cgroups.mountRoot}/${c})`);
    if (root && which('ip')) {
      const probe = `bchk${randomBytes(3).toString('hex')}`;
      const bridge = await run('ip', ['link', 'add', probe, 'type', 'bridge'], { allowFail: true });
      if (bridge.code !== 0) missing.push(`kernel support for bridge devices (${bridge.stderr.trim()})`);
      else await deleteLink(probe);
      const veth = await run('ip', ['link', 'add', `${probe}a`, 'type', 'veth', 'peer', 'name', `${probe}b`], { allowFail: true });
      if (veth.code !== 0) missing.push(`kernel support for veth devices (${veth.stderr.trim()})`);
      else await deleteLink(`${probe}a`);
    }
    if (root && which('nft')) {
      const probe = `bchk${randomBytes(3).toString('hex')}`;
      for (const family of ['bridge', 'inet']) {
        const r = await run('nft', ['-f', '-'], { input: `add table ${family} ${probe}\ndelete table ${family} ${probe}\n`, allowFail: true });
        if (r.code !== 0) missing.push(`kernel support for nftables ${family} tables (${r.stderr.trim()})`);
      }
    }
    return missing;
  }

  async prepare(): Promise<{ gatewayAddress: string }> {
    this.prepared ??= this.doPrepare().catch((e: unknown) => { this.prepared = undefined; throw e; });
    const net = await this.prepared;
    return { gatewayAddress: net.gateway };
  }

  private async doPrepare(): Promise<SlotNetwork> {
    for (const d of ['instances', 'tasks', 'console', 'addresses']) mkdirSync(join(this.stateDir, d), { recursive: true, mode: 0o700 });
    mkdirSync(join(this.dataDir, 'instances'), { recursive: true, mode: 0o700 });
    const slot = await this.leases.acquire(this.dataDir, {
      markerFile: LocalInstanceProvider.markerFile,
      hasState: LocalInstanceProvider.hasState,
      usable: async (n) => !(await subnetInUse(slotNetwork(n))),
      reclaim: (n) => this.wipeSlot(slotNetwork(n)),
    });
    const net = slotNetwork(slot);
    await ensureBridge(net);
    this.net = net;
    this.pool = new AddressPool(join(this.stateDir, 'addresses'), net);
    this.firewall = new Firewall(net, () => this.firewallState(), nft, () => linkExists(net.bridge));
    // Ports made by an earlier version, or whose settings were lost, are locked down again.
    for (const p of this.ports()) await securePort(net, p.ifname, p.address).catch(() => undefined);
    await this.firewall.sync();
    this.log(`local provider: slot ${slot}, bridge ${net.bridge}, subnet ${net.subnet}, gateway ${net.gateway}`);
    return net;
  }

  /** The slot network, once prepared. */
  get network(): SlotNetwork | undefined { return this.net; }

  /** Every bridge port the records name: instances, their pull namespaces, task networks. */
  private ports(): BridgePort[] {
    const port = (ifname: string, address: string, role: BridgePort['role']): BridgePort => ({ ifname, address, mac: macForAddress(address), role });
    return [
      ...this.records().flatMap((r) => [port(r.hostVeth, r.address, 'instance'), ...(r.pull ? [port(r.pull.hostVeth, r.pull.address, 'pull')] : [])]),
      ...this.taskRecords().map((t) => port(t.hostVeth, t.address, 'task')),
    ];
  }

  private firewallState(): FirewallState {
    return { ports: this.ports(), agentPorts: [...this.agentPorts], relayPorts: this.forwarders.ports() };
  }

  async gatewayListening(port: number): Promise<void> {
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`the gateway port must be 1-65535, got ${port}`);
    await this.prepare();
    this.agentPorts.add(port);
    await this.firewall!.sync();
  }

  // ---- instances --------------------------------------------------------------------------

  async launch(spec: InstanceLaunchSpec): Promise<LaunchedInstance> {
    const id = spec.instanceId;
    if (!INSTANCE_ID.test(id)) throw new Error(`instance id must be i- followed by 8 to 17 hex digits, got '${id}'`);
    if (spec.agent.command.length === 0) throw new Error('the agent command is empty');
    const { vcpu, memoryMiB } = spec.instanceType;
    if (!(vcpu > 0) || !(memoryMiB > 0)) throw new Error(`instance type ${spec.instanceType.name} has no vCPUs or memory`);
    await this.prepare();
    return this.mutex.run(`i:${id}`, () => this.doLaunch(spec));
  }

  private async doLaunch(spec: InstanceLaunchSpec): Promise<LaunchedInstance> {
    const net = this.net!;
    const id = spec.instanceId;
    const netns = `berth-${id}`;
    if (existsSync(this.recordFile(id))) throw new Error(`instance ${id} already exists`);
    if (existsSync(`/run/netns/${netns}`) || this.cgroups.exists(id)) {
      throw new Error(`instance id ${id} is in use on this host by another Berth (netns ${netns} or cgroup ${this.cgroups.path(id)} exists)`);
    }
    const step = async (s: LaunchStep) => { await this.options.onLaunchStep?.(s, id); };
    const missing = ['nsenter', 'unshare', 'tini'].filter((b) => !which(b));
    if (missing.length) throw new Error(`cannot launch: missing ${missing.join(', ')} (see check())`);
    const agentBin = spec.agent.command[0]!;
    if (agentBin.includes('/') ? !isExecutable(agentBin) : !which(agentBin)) throw new Error(`the agent command ${agentBin} is not an executable file`);

    await step('address');
    const address = this.pool!.allocate({ kind: 'instance', instanceId: id });
    let pullAddress: string;
    try { pullAddress = this.pool!.allocate({ kind: 'pull', instanceId: id }); } catch (e) { this.pool!.release(address); throw e; }
    const dataDir = this.instanceDataDir(id);
    const rec: InstanceRecord = {
      instanceId: id, state: 'launching', slot: net.slot, address, hostVeth: hostVethName(net, address), netns,
      pull: { netns: this.pullNetnsName(net, id), address: pullAddress, hostVeth: hostVethName(net, pullAddress) },
      cgroupPath: this.cgroups.path(id), dataDir, instanceType: spec.instanceType.name,
      limits: limitsFor(spec.instanceType.vcpu, spec.instanceType.memoryMiB),
      subnetId: spec.subnetId, availabilityZone: spec.availabilityZone, launchedAt: this.clock.now(),
    };
    try {
      await step('record');
      this.writeRecord(rec);

      await step('data-dir');
      mkdirSync(join(dataDir, 'tmp'), { recursive: true, mode: 0o700 });
      const tokenFile = join(dataDir, 'bootstrap-token');
      writeFileSync(tokenFile, spec.agent.bootstrapToken, { mode: 0o600 });

      await step('cgroup');
      this.cgroups.create(id, rec.limits);

      await step('network');
      await Promise.all([
        plugNetns(net, netns, rec.hostVeth, address),
        // No default route: pulls reach the relays on the gateway and nothing else.
        plugNetns(net, rec.pull!.netns, rec.pull!.hostVeth, pullAddress, { defaultRoute: false }),
      ]);
      await this.firewall!.sync();

      await step('process');
      const env: Record<string, string> = {
        PATH: SYSTEM_PATH, HOME: dataDir, TMPDIR: join(dataDir, 'tmp'), LANG: 'C.UTF-8',
        BERTH_INSTANCE_ID: id, BERTH_INSTANCE_DATA_DIR: dataDir, BERTH_BOOTSTRAP_TOKEN_FILE: tokenFile,
        BERTH_GATEWAY_ADDRESS: net.gateway, BERTH_PRIVATE_IPV4_ADDRESS: address, BERTH_INSTANCE_TYPE: spec.instanceType.name,
        BERTH_AVAILABILITY_ZONE: spec.availabilityZone, BERTH_SUBNET_ID: spec.subnetId, BERTH_CGROUP_PATH: rec.cgroupPath,
        BERTH_TASKS_CGROUP_PATH: this.cgroups.tasksPath(id),
        BERTH_PULL_NETNS: `/run/netns/${rec.pull!.netns}`,
        ...spec.agent.env,
      };
      const hide = this.pathsToHide(spec.agent.command);
      const consoleFd = openSync(this.consoleFile(id), 'a', 0o600);
      const child = spawn('/bin/sh', [
        '-c', LAUNCH_SCRIPT, 'berth-launch',
        this.cgroups.procsFiles(id).join(':'), `/run/netns/${netns}`, which('nsenter')!, which('unshare')!, INIT_SCRIPT,
        hide.join(':'), dataDir, which('tini')!, SUPERVISOR_SCRIPT, ...spec.agent.command,
      ], { detached: true, env, cwd: '/', stdio: ['ignore', consoleFd, consoleFd, 'pipe'] });
      closeSync(consoleFd);
      child.unref();
      const launcherPid = child.pid;
      if (!launcherPid) throw new Error('cannot start the instance launcher');
      rec.launcherPid = launcherPid;
      rec.launcherStart = processStartTime(launcherPid);
      this.writeRecord(rec);

      const agentStarted = this.waitForAgent(child.stdio[3] as Readable, child, id);
      agentStarted.catch(() => undefined);
      await step('wait-agent');
      await agentStarted;
      const initPid = await this.findInit(launcherPid);
      rec.initPid = initPid;
      rec.initStart = processStartTime(initPid);
      rec.state = 'running';
      this.writeRecord(rec);
      await step('ready');
      return this.launched(rec);
    } catch (e) {
      const consoleTail = this.consoleTail(id);
      await this.destroy(rec).catch((err: unknown) => this.log(`cleanup of failed launch ${id}: ${(err as Error).message}`));
      const msg = (e as Error).message;
      throw new Error(`launch of ${id} failed: ${msg}${consoleTail ? `\n--- instance console ---\n${consoleTail}` : ''}`);
    }
  }

  /**
   * Directories to cover with an empty read-only tmpfs inside the instance: the Berth data dir
   * (other instances' tokens, the store) and `hiddenPaths`, except one that would hide what the
   * instance runs (tini, the agent's files) or `/`.
   */
  private pathsToHide(command: string[]): string[] {
    const needed = [which('tini')!, ...command.filter((a) => a.startsWith('/'))];
    const within = (p: string, dir: string) => p === dir || p.startsWith(dir + '/');
    const candidates = [this.dataDir, ...(this.options.hiddenPaths ?? [])].map((p) => resolve(p)).filter((p, i, all) => {
      if (p === '/' || p.includes(':') || all.indexOf(p) !== i) return false;
      try { if (!statSync(p).isDirectory()) return false; } catch { return false; }
      const blocks = needed.find((n) => within(n, p));
      if (blocks) this.log(`local provider: not hiding ${p} in instances: the instance needs ${blocks}`);
      return !blocks;
    });
    // A path inside another hidden one is hidden with it (and no longer exists to mount on).
    return candidates.filter((p) => !candidates.some((q) => q !== p && within(p, q)));
  }

  private waitForAgent(pipe: Readable, child: ReturnType<typeof spawn>, id: string): Promise<void> {
    const timeoutMs = this.options.launchTimeoutMs ?? 15_000;
    return new Promise<void>((resolve, reject) => {
      let buf = '';
      const done = (err?: Error) => {
        clearTimeout(timer);
        pipe.removeAllListeners('data');
        child.removeListener('exit', onExit);
        pipe.destroy();
        if (err) reject(err); else resolve();
      };
      const onExit = (code: number | null, signal: string | null) => done(new Error(`instance exited during start (${signal ?? `exit ${code}`})`));
      const timer = setTimeout(() => done(new Error(`agent of ${id} did not start within ${timeoutMs} ms`)), timeoutMs);
      pipe.setEncoding('utf8');
      pipe.on('data', (d: string) => { buf += d; if (/^agent \d+\n/m.test(buf)) done(); });
      pipe.on('end', () => done(new Error('instance init closed its readiness pipe before starting the agent')));
      pipe.on('error', () => undefined);
      child.once('exit', onExit);
    });
  }

  /** PID 1 of the instance is the only child of the launcher (`unshare --fork`). */
  private async findInit(launcherPid: number): Promise<number> {
    for (let i = 0; i < 200; i++) {
      const kids = childPids(launcherPid);
      if (kids.length > 0) return kids[0]!;
      await sleep(5);
    }
    throw new Error(`cannot find the init process of launcher ${launcherPid}`);
  }

  private consoleTail(id: string): string {
    try { return readFileSync(this.consoleFile(id), 'utf8').split('\n').slice(-20).join('\n').trim(); } catch { return ''; }
  }

  private launched(rec: InstanceRecord): LaunchedInstance {
    return { instanceId: rec.instanceId, privateIpv4Address: rec.address, dataDir: rec.dataDir, cgroupPath: rec.cgroupPath, initPid: rec.initPid ?? 0 };
  }

  async terminate(instanceId: string): Promise<void> {
    if (!INSTANCE_ID.test(instanceId)) throw new Error(`instance id must be i- followed by 8 to 17 hex digits, got '${instanceId}'`);
    await this.prepare();
    await this.mutex.run(`i:${instanceId}`, async () => {
      const rec = readJson<InstanceRecord>(this.recordFile(instanceId));
      if (rec) await this.destroy(rec);
      else await this.removeUnrecorded(instanceId);
    });
  }

  /** Removes an instance and everything it made, in the reverse order of creation; safe on a half-made one. */
  private async destroy(rec: InstanceRecord): Promise<void> {
    const id = rec.instanceId;
    if (isSameProcess(rec.initPid, rec.initStart)) {
      killQuietly(rec.initPid!); // ends the whole PID namespace
      // Let the launcher (`unshare`, init's parent) reap init and exit by itself: killing it
      // first would leave init a zombie of the host's PID 1, which reaps only now and then.
      for (let i = 0; i < 50 && isSameProcess(rec.launcherPid, rec.launcherStart); i++) await sleep(5);
    }
    await this.cgroups.killAll(id);
    for (const t of this.taskRecords().filter((t) => t.instanceId === id)) await this.removeTask(t);
    await Promise.all([unplugNetns(rec.netns, rec.hostVeth), rec.pull && unplugNetns(rec.pull.netns, rec.pull.hostVeth)]);
    await this.cgroups.remove(id);
    await this.removeDataDir(rec.dataDir);
    rmSync(this.consoleFile(id), { force: true });
    this.pool?.release(rec.address);
    if (rec.pull) this.pool?.release(rec.pull.address);
    rmSync(this.recordFile(id), { force: true });
    await this.firewall?.sync();
    this.log(`local provider: removed instance ${id}`);
  }

  private async removeDataDir(dir: string): Promise<void> {
    if (!dir.startsWith(join(this.dataDir, 'instances') + '/')) return;
    // Instance mounts live in its private mount namespace, but never recurse through a host mount.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' ')).filter((m): m is string => !!m && (m === dir || m.startsWith(dir + '/')));
    for (const m of mounts.sort((a, b) => b.length - a.length)) await run('umount', ['-l', m], { allowFail: true });
    rmSync(dir, { recursive: true, force: true });
  }

  /** An instance without a record: its netns counts as ours only when its address is in our subnet. */
  private async removeUnrecorded(instanceId: string): Promise<boolean> {
    const net = this.net!;
    const netns = `berth-${instanceId}`;
    if (!existsSync(`/run/netns/${netns}`)) return false;
    const addrs = await netnsAddresses(netns);
    const address = addrs.find((a) => inSubnet(net, a));
    if (!address) return false;
    await this.cgroups.killAll(instanceId);
    await unplugNetns(netns, hostVethName(net, address));
    await this.unplugUnrecordedPull(net, instanceId);
    await this.cgroups.remove(instanceId);
    await this.removeDataDir(this.instanceDataDir(instanceId));
    return true;
  }

  /** The pull namespace of an instance without a record (and its veth), when it is in our slot. */
  private async unplugUnrecordedPull(net: SlotNetwork, instanceId: string): Promise<void> {
    const pullNetns = this.pullNetnsName(net, instanceId);
    if (!existsSync(`/run/netns/${pullNetns}`)) return;
    const address = (await netnsAddresses(pullNetns)).find((a) => inSubnet(net, a));
    if (address) await deleteLink(hostVethName(net, address));
    await deleteNetns(pullNetns);
  }

  async isAlive(instanceId: string): Promise<boolean> {
    const rec = readJson<InstanceRecord>(this.recordFile(instanceId));
    return !!rec && rec.state === 'running' && isSameProcess(rec.initPid, rec.initStart);
  }

  async list(): Promise<LaunchedInstance[]> {
    return this.records().map((r) => this.launched(r));
  }

  async recover(keep: string[]): Promise<{ removed: string[] }> {
    await this.prepare();
    const net = this.net!;
    const keepSet = new Set(keep);
    const removed: string[] = [];
    for (const rec of this.records()) {
      if (keepSet.has(rec.instanceId)) continue;
      await this.mutex.run(`i:${rec.instanceId}`, () => this.destroy(rec));
      removed.push(rec.instanceId);
    }
    const instances = new Set(this.records().map((r) => r.instanceId));
    for (const t of this.taskRecords()) if (!instances.has(t.instanceId)) await this.mutex.run(`t:${t.taskId}`, () => this.removeTask(t));
    const tasks = new Set(this.taskRecords().map((t) => t.taskId));

    // Addresses reserved by a launch or attach that crashed before writing its record.
    for (const { address, owner } of this.pool!.list()) {
      const owned = owner?.kind === 'instance' || owner?.kind === 'pull' ? instances.has(owner.instanceId) : owner?.kind === 'task' ? tasks.has(owner.taskId) : false;
      if (!owned) this.pool!.release(address);
    }
    // Host state of our slot that no record names.
    const used = new Set(this.pool!.list().map((a) => a.address));
    for (const link of await listLinks()) {
      const address = addressOfHostVeth(net, link.ifname.split('@')[0]!);
      if (address && !used.has(address)) await deleteLink(link.ifname.split('@')[0]!);
    }
    const taskPrefix = `berth${net.slot}-task-`;
    const pullPrefix = `berth${net.slot}-pull-`;
    for (const ns of await listNetns()) {
      if (ns.startsWith(taskPrefix) && !tasks.has(ns.slice(taskPrefix.length))) await deleteNetns(ns);
      if (ns.startsWith(pullPrefix) && !instances.has(ns.slice(pullPrefix.length))) await deleteNetns(ns);
      const m = /^berth-(i-[0-9a-f]{8,17})$/.exec(ns);
      if (m && !instances.has(m[1]!) && (await this.removeUnrecorded(m[1]!))) removed.push(m[1]!);
    }
    // Data dirs and console logs of instances without a record.
    for (const d of readdirSync(join(this.dataDir, 'instances'))) {
      if (!instances.has(d)) { await this.removeDataDir(join(this.dataDir, 'instances', d)); if (!removed.includes(d)) removed.push(d); }
    }
    for (const f of readdirSync(join(this.stateDir, 'console'))) {
      if (!instances.has(f.replace(/\.log$/, ''))) rmSync(join(this.stateDir, 'console', f), { force: true });
    }
    await this.firewall!.sync();
    return { removed };
  }

  // ---- task networks (ENIs) ---------------------------------------------------------------

  async attachTaskNetwork(instanceId: string, taskId: string): Promise<TaskNetwork> {
    if (!TASK_ID.test(taskId)) throw new Error(`task id must be 1 to 64 letters, digits, '-' or '_', got '${taskId}'`);
    await this.prepare();
    const net = this.net!;
    return this.mutex.run(`t:${taskId}`, async () => {
      if (!readJson<InstanceRecord>(this.recordFile(instanceId))) throw new Error(`instance ${instanceId} does not exist`);
      const existing = readJson<TaskRecord>(this.taskFile(taskId));
      if (existing) {
        if (existing.instanceId !== instanceId) throw new Error(`task ${taskId} already has a network on instance ${existing.instanceId}`);
        if (existsSync(`/run/netns/${existing.netns}`)) return this.taskNetwork(existing);
        await this.removeTask(existing);
      }
      const address = this.pool!.allocate({ kind: 'task', taskId, instanceId });
      const rec: TaskRecord = {
        taskId, instanceId, netns: this.taskNetnsName(net, taskId), hostVeth: hostVethName(net, address), address,
        macAddress: macForAddress(address), interfaceId: `eni-${randomBytes(9).toString('hex').slice(0, 17)}`,
      };
      try {
        writeFileAtomic(this.taskFile(taskId), JSON.stringify(rec, null, 1) + '\n');
        await plugNetns(net, rec.netns, rec.hostVeth, address);
        await this.firewall!.sync();
      } catch (e) {
        await this.removeTask(rec).catch(() => undefined);
        throw e;
      }
      return this.taskNetwork(rec);
    });
  }

  private taskNetwork(rec: TaskRecord): TaskNetwork {
    const net = this.net!;
    return {
      netnsPath: `/run/netns/${rec.netns}`, ipv4Address: rec.address, gateway: net.gateway, prefixLength: net.prefixLength,
      macAddress: rec.macAddress, interfaceId: rec.interfaceId,
    };
  }

  async detachTaskNetwork(taskId: string): Promise<void> {
    if (!TASK_ID.test(taskId)) return;
    await this.prepare();
    const net = this.net!;
    await this.mutex.run(`t:${taskId}`, async () => {
      const rec = readJson<TaskRecord>(this.taskFile(taskId));
      if (rec) await this.removeTask(rec);
      else await deleteNetns(this.taskNetnsName(net, taskId));
    });
  }

  private async removeTask(rec: TaskRecord): Promise<void> {
    await unplugNetns(rec.netns, rec.hostVeth);
    this.pool?.release(rec.address);
    rmSync(this.taskFile(rec.taskId), { force: true });
    await this.firewall?.sync();
  }

  // ---- registry forward -------------------------------------------------------------------

  async ensureRegistryForward(loopbackHostPort: string): Promise<string> {
    const target = parseLoopback(loopbackHostPort);
    const { gatewayAddress } = await this.prepare();
    const relay = await this.forwarders.ensure(gatewayAddress, target);
    await this.firewall!.sync();
    return relay.address;
  }

  async close(): Promise<void> {
    await this.forwarders.close();
  }

  /**
   * Gives this Berth's host resources back: terminates every instance, removes the bridge and
   * releases the slot lease. For uninstalling a Berth and for tests; not part of normal operation.
   */
  async releaseHost(): Promise<void> {
    await this.close();
    await this.recover([]);
    const net = this.net!;
    await this.firewall!.remove();
    await deleteLink(net.bridge);
    await this.leases.release(this.dataDir, net.slot, LocalInstanceProvider.markerFile(this.dataDir));
    this.prepared = undefined;
    this.net = undefined;
    this.pool = undefined;
    this.firewall = undefined;
  }

  /**
   * Wipes the host state of a slot nobody holds (its Berth's data dir is gone): the instances
   * whose netns has an address in the slot (processes, cgroups), task and pull namespaces,
   * veths, bridge, firewall tables.
   */
  private async wipeSlot(net: SlotNetwork): Promise<void> {
    await nft(removalScript(net)).catch((e: Error) => this.log(`local provider: removing the firewall of slot ${net.slot}: ${e.message}`));
    const links = (await listLinks()).map((l) => l.ifname.split('@')[0]!);
    const taskPrefix = `berth${net.slot}-task-`;
    const pullPrefix = `berth${net.slot}-pull-`;
    const namespaces = await listNetns();
    const traces = links.includes(net.bridge) || links.some((l) => addressOfHostVeth(net, l)) || namespaces.some((n) => n.startsWith(taskPrefix) || n.startsWith(pullPrefix));
    if (!traces) return;
    this.log(`local provider: reclaiming stale slot ${net.slot}`);
    for (const ns of namespaces) {
      if (ns.startsWith(taskPrefix) || ns.startsWith(pullPrefix)) { await deleteNetns(ns); continue; }
      const m = /^berth-(i-[0-9a-f]{8,17})$/.exec(ns);
      if (!m) continue;
      const address = (await netnsAddresses(ns)).find((a) => inSubnet(net, a));
      if (!address) continue;
      await this.cgroups.killAll(m[1]!);
      await unplugNetns(ns, hostVethName(net, address));
      await this.cgroups.remove(m[1]!);
    }
    for (const l of links) if (addressOfHostVeth(net, l)) await deleteLink(l);
    await deleteLink(net.bridge);
  }
}
