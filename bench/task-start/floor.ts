// The floor under a task start: what the container runtime itself costs on this machine,
// without Berth's control plane or agent. Three rows, same image, config.json from the
// agent's own builder (buildOciSpec: seccomp profile, capabilities, masks, cgroups, etc files):
//
//   runc run -d          one runc process, from spawn until it exits (the container's process
//                        has been started: runc returns after `start` released it)
//   conmon + runc        what the agent does: conmon (which runs `runc create`), wait for its
//                        sync line, then `runc start`
//   runtime library      ContainerRuntime.create + start, in this process: the agent's code
//                        path (overlay mount, etc files, cgroups, conmon, runc) without the agent
//
// Everything lives under one temp dir and one cgroup parent, and is removed by cleanup().
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ContainerSpec, TaskSpec } from '../../src/agent/protocol.js';
import { resolveBinaries, type Binaries } from '../../src/agent/runtime/binaries.js';
import { statDevice } from '../../src/agent/runtime/devices.js';
import { removeCgroupTree } from '../../src/agent/runtime/cgroups.js';
import { readSync, spawnConmon } from '../../src/agent/runtime/conmon.js';
import { ContainerRuntime } from '../../src/agent/runtime/containers.js';
import { measureHostFacts, type HostFacts } from '../../src/agent/runtime/host-facts.js';
import { ImageStore, type PulledImage } from '../../src/agent/runtime/images.js';
import { buildOciSpec } from '../../src/agent/runtime/oci-spec.js';
import { serializeOciConfig } from '../../src/agent/runtime/oci-types.js';
import { readFileInRoot } from '../../src/agent/runtime/rootfs-files.js';
import { DEFAULT_SECCOMP_PROFILE, SeccompProfiles } from '../../src/agent/runtime/seccomp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Spawns a program and resolves with its exit code and how long it took (ms). */
function timedRun(bin: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null; ms: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let stderr = '';
    // stdin/stdout ignored: a detached container inherits them, and a pipe would stay open.
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env } : {}) });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, ms: performance.now() - t0, stderr }));
  });
}

async function runOk(bin: string, args: string[]): Promise<string> {
  const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out, err }));
  });
  if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.code}): ${r.err.trim() || r.out.trim()}`);
  return r.out;
}

export const BENCH_COMMAND = ['sh', '-c', 'exec sleep 3600'];

export function benchContainer(image: string): ContainerSpec {
  return {
    name: 'app', image, command: BENCH_COMMAND, environment: [], essential: true, cpu: 0, memory: 16,
    readonlyRootFilesystem: false, privileged: false, capabilitiesAdd: [], capabilitiesDrop: [], initProcessEnabled: false,
    stopTimeoutSeconds: 1, portMappings: [], ulimits: [], dependsOn: [], mountPoints: [],
    log: { group: '/bench', stream: 'floor' }, pseudoTerminal: false, interactive: false,
  };
}

export function benchTask(container: ContainerSpec, taskId = randomBytes(16).toString('hex')): TaskSpec {
  return {
    taskArn: `arn:aws:ecs:us-east-1:000000000000:task/bench-floor/${taskId}`, taskId, family: 'bench-floor', revision: 1,
    desiredStatus: 'RUNNING', networkMode: 'host', containers: [container], volumes: [], allowedPrivilegedCapabilities: [],
    enableExecuteCommand: false,
  };
}

export interface ConmonSample { total: number; create: number; start: number }

export class Floor {
  private readonly dir: string;
  private readonly runcRoot: string;
  /** Parent cgroup of everything the floor creates (in every hierarchy). */
  readonly cgroupBase = `/berth-bench-${randomBytes(4).toString('hex')}`;
  private readonly bins: Binaries;
  private host!: HostFacts;
  private seccomp!: SeccompProfiles;
  private image!: PulledImage;
  private etc!: { hosts: string; hostname: string; resolvConf: string };
  private readonly live = new Set<string>();
  private runtime: ContainerRuntime | undefined;
  private readonly runtimeLive = new Map<string, string>(); // runtime id -> task id
  private n = 0;
  /** Set by cleanup(): the row in progress stops after its current iteration. */
  private aborted = false;
  private current: Promise<unknown> | undefined;

  constructor(root: string, private readonly imageRef: string) {
    this.dir = join(root, 'floor');
    this.runcRoot = join(this.dir, 'runc');
    this.bins = resolveBinaries();
  }

  async prepare(): Promise<void> {
    for (const d of ['runc', 'bundles', 'exits', 'persist', 's', 'etc']) mkdirSync(join(this.dir, d), { recursive: true });
    this.host = measureHostFacts();
    this.seccomp = new SeccompProfiles(DEFAULT_SECCOMP_PROFILE, this.host.arch, this.host.kernel);
    this.image = await new ImageStore({ dataDir: join(this.dir, 'images') }).pull(this.imageRef);
    this.etc = { hosts: join(this.dir, 'etc', 'hosts'), hostname: join(this.dir, 'etc', 'hostname'), resolvConf: join(this.dir, 'etc', 'resolv.conf') };
    copyFileSync('/etc/hosts', this.etc.hosts);
    copyFileSync('/etc/resolv.conf', this.etc.resolvConf);
    writeFileSync(this.etc.hostname, `${hostname()}\n`);
  }

  /** A bundle whose config.json is what the agent would write (rootfs: the image's unpacked dir, shared). */
  private bundle(id: string): string {
    const bundle = join(this.dir, 'bundles', id);
    mkdirSync(bundle, { recursive: true });
    const container = benchContainer(this.imageRef);
    const spec = buildOciSpec({
      task: benchTask(container), container, image: this.image.config, rootfsPath: this.image.rootfs, statDevice,
      cgroupsPath: `${this.cgroupBase}/${id}`,
      passwd: readFileInRoot(this.image.rootfs, '/etc/passwd'), group: readFileInRoot(this.image.rootfs, '/etc/group'),
      host: this.host, seccompFor: (caps) => this.seccomp.forCapabilities(caps),
      instanceHostname: hostname(), volumePaths: {}, etcFiles: this.etc,
    });
    writeFileSync(join(bundle, 'config.json'), serializeOciConfig(spec));
    return bundle;
  }

  private nextId(kind: string): string {
    if (this.aborted) throw new Error('interrupted');
    return `bf-${kind}-${process.pid}-${this.n++}`;
  }

  /** Runs one row, so that cleanup() can wait for its iteration in flight. */
  private row<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    this.current = p.catch(() => undefined);
    return p;
  }

  private async assertRunning(id: string): Promise<void> {
    const st = JSON.parse(await runOk(this.bins.runc, ['--root', this.runcRoot, 'state', id])) as { status: string; pid: number };
    if (st.status !== 'running') throw new Error(`floor container ${id} is ${st.status}, not running`);
    // `runc start` returns once it has released the container's init, which then execs the
    // command: for a moment /proc still shows `runc init`.
    let cmd: string[] = [];
    for (let i = 0; i < 200; i++) {
      cmd = readFileSync(`/proc/${st.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (cmd[0] === 'sleep') return;
      await sleep(5);
    }
    throw new Error(`floor container ${id} runs ${cmd.join(' ')}, expected sleep`);
  }

  private async removeContainer(id: string): Promise<void> {
    await runOk(this.bins.runc, ['--root', this.runcRoot, 'delete', '--force', id]).catch(() => undefined);
    removeCgroupTree(`${this.cgroupBase}/${id}`);
    rmSync(join(this.dir, 'bundles', id), { recursive: true, force: true });
    rmSync(join(this.dir, 'persist', id), { recursive: true, force: true });
    rmSync(join(this.dir, 'exits', id), { force: true });
    this.live.delete(id);
  }

  /** Spawning a trivial program from this (node) process: the fixed cost of every helper exec. */
  async spawnTrue(n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await timedRun('/bin/true', [])).ms);
    return out;
  }

  /** `runc run -d`: spawn → runc exited (the container process is started). */
  bareRunc(n: number): Promise<number[]> { return this.row(() => this.bareRuncRow(n)); }
  private async bareRuncRow(n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.nextId('run');
      const bundle = this.bundle(id);
      this.live.add(id);
      const r = await timedRun(this.bins.runc, ['--root', this.runcRoot, 'run', '-d', '--bundle', bundle, id]);
      if (r.code !== 0) throw new Error(`runc run -d failed (${r.code}): ${r.stderr.trim()}`);
      out.push(r.ms);
      await this.assertRunning(id);
      await this.removeContainer(id);
    }
    return out;
  }

  /** conmon (runc create inside) → sync line seen (polled every 1 ms) → `runc start` exited. */
  conmonRunc(n: number): Promise<ConmonSample[]> { return this.row(() => this.conmonRuncRow(n)); }
  private async conmonRuncRow(n: number): Promise<ConmonSample[]> {
    const out: ConmonSample[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.nextId('cm');
      const bundle = this.bundle(id);
      const persist = join(this.dir, 'persist', id);
      mkdirSync(persist, { recursive: true });
      this.live.add(id);
      const syncFile = join(bundle, 'sync.json');
      const t0 = performance.now();
      const { exited } = spawnConmon(this.bins.conmon, {
        id, bundle, runcBin: this.bins.runc, runcRoot: this.runcRoot, exitsDir: join(this.dir, 'exits'), persistDir: persist,
        socketsDir: join(this.dir, 's'), logPath: join(bundle, 'ctr.log'), pidFile: join(bundle, 'pid'),
        conmonPidFile: join(bundle, 'conmon.pid'), logSizeMax: 64 * 1024 * 1024, terminal: false,
      }, syncFile, join(bundle, 'conmon.log'));
      let failed: number | null | undefined;
      void exited.then((c) => { if (c !== 0) failed = c; });
      let sync;
      for (;;) {
        sync = readSync(syncFile);
        if (sync) break;
        if (failed !== undefined) throw new Error(`conmon exited with ${failed}: ${readFileSync(join(bundle, 'conmon.log'), 'utf8')}`);
        if (performance.now() - t0 > 30_000) throw new Error('conmon: no sync line within 30 s');
        await sleep(1);
      }
      if (sync.pid <= 0) throw new Error(`runc create (via conmon) failed: ${sync.message ?? ''}`);
      const t1 = performance.now();
      const r = await timedRun(this.bins.runc, ['--root', this.runcRoot, 'start', id]);
      if (r.code !== 0) throw new Error(`runc start failed (${r.code}): ${r.stderr.trim()}`);
      const t2 = performance.now();
      out.push({ total: t2 - t0, create: t1 - t0, start: t2 - t1 });
      await this.assertRunning(id);
      await this.removeContainer(id);
    }
    return out;
  }

  /** ContainerRuntime.create + start (the agent's runtime library), in this process. */
  runtimeLibrary(n: number): Promise<number[]> { return this.row(() => this.runtimeLibraryRow(n)); }
  private async runtimeLibraryRow(n: number): Promise<number[]> {
    this.runtime ??= new ContainerRuntime({ dataDir: join(this.dir, 'rt'), cgroupRoot: `${this.cgroupBase}/rt` });
    const rt = this.runtime;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      if (this.aborted) throw new Error('interrupted');
      const task = benchTask(benchContainer(this.imageRef));
      const id = ContainerRuntime.runtimeId(task.taskId, 'app');
      this.runtimeLive.set(id, task.taskId);
      const t0 = performance.now();
      await rt.create(task, task.containers[0]!, this.image);
      await rt.start(id);
      out.push(performance.now() - t0);
      const s = await rt.state(id);
      if (s.status !== 'running') throw new Error(`runtime-library container ${id} is ${s.status}`);
      await rt.remove(id);
      await rt.removeTask(task.taskId);
      this.runtimeLive.delete(id);
    }
    return out;
  }

  async cleanup(): Promise<void> {
    this.aborted = true;
    await this.current;
    for (const id of [...this.live]) await this.removeContainer(id);
    if (this.runtime) {
      for (const [id, taskId] of this.runtimeLive) {
        await this.runtime.remove(id).catch(() => undefined);
        await this.runtime.removeTask(taskId).catch(() => undefined);
      }
      this.runtime.close();
    }
    // Anything still mounted below the floor dir (an overlay of a failed runtime-library run).
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(this.dir + '/'));
    for (const m of mounts.sort().reverse()) await runOk('umount', ['-l', m]).catch(() => undefined);
    removeCgroupTree(this.cgroupBase);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
