// The container lifecycle on one instance: create (overlay + config.json + conmon + runc
// create), start, stop (stop signal, grace period, KILL), observe exits (conmon's exit dir,
// watched and scanned), and remove — plus rebuilding all of it from disk after the agent was
// killed, so that a restarted agent reports nothing false.
//
// Every container's state is on disk under the instance data dir: the bundle
// (containers/<id>: meta.json, config.json, sync.json, conmon.pid, ctr.log, started,
// exit.json), runc's state (runc/), conmon's exit files (exits/<id>) and the agent's copy of
// its process spec (processes/<id>.json). Ids are derived from (task id, container name), so
// no database is needed to find them again. What the container writes is on its task's own
// bounded filesystem (storage.ts), never beside these.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import type { ContainerSpec, TaskSpec } from '../protocol.js';
import { systemClock, type Clock } from '../../domain/clock.js';
import { resolveBinaries, type Binaries } from './binaries.js';
import { CGROUP_MOUNT, assertCgroupV1, ensureTaskCgroup, readOomKills, readTaskPool, removeCgroup, taskMemoryMiB, taskPidsMax, type TaskPool } from './cgroups.js';
import { isConmonFor, pidAlive, readPidFile, readSync, spawnConmon } from './conmon.js';
import { runtimeId } from './container-id.js';
import { statDevice } from './devices.js';
import { CannotStartContainerError, ContainerExistsError, NoSuchContainerError } from './errors.js';
import { measureHostFacts, type HostFacts } from './host-facts.js';
import type { PulledImage } from './images.js';
import { RuntimeLayout } from './layout.js';
import { CFS_PERIOD_US, buildOciSpec, cfsQuota, taskHostname } from './oci-spec.js';
import { serializeOciConfig, type OciConfig } from './oci-types.js';
import { mountOverlay, unmount, unmountAllUnder } from './overlay.js';
import { stageHostVolume } from './host-volumes.js';
import { Mutex } from './mutex.js';
import { DEFAULT_TASK_STORAGE_BYTES, SpareFilesystem, ensureLoopFilesystem, removeLoopFilesystem, type LoopFilesystem } from './storage.js';
import { readFileInRoot } from './rootfs-files.js';
import { Runc } from './runc.js';
import type { TerminalProcess } from './terminal.js';
import { DEFAULT_SECCOMP_PROFILE, SeccompProfiles } from './seccomp.js';
import { ensureEtcFiles, ensureTaskVolumes, volumePaths } from './task-files.js';
import type { OciProcess } from './oci-types.js';

/** ECS's wording for a container the kernel OOM-killed. */
export const OOM_REASON = 'OutOfMemoryError: Container killed due to memory usage';
/** When conmon (the only witness of the exit code) died: the agent says it does not know. */
export const LOST_REASON = 'ContainerRuntimeError: the container monitor (conmon) died, so the exit code is unknown';

export type RuntimeStatus = 'created' | 'running' | 'stopped';

export interface ContainerState {
  id: string;
  taskArn: string;
  taskId: string;
  name: string;
  status: RuntimeStatus;
  imageRef: string;
  imageDigest: string;
  /** Epoch ms on the runtime's clock. */
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Absent while running, and when unknown (see `reason`). */
  exitCode?: number;
  oomKilled?: boolean;
  /** Why it stopped when that is not a plain exit (OOM, lost monitor, failed create). */
  reason?: string;
  /** The container's k8s-file log (see logs.ts) and conmon's control fifo (log reopen). */
  logPath: string;
  ctlPath: string;
}

interface Meta {
  id: string; taskArn: string; taskId: string; name: string; imageRef: string; imageDigest: string;
  cgroupsPath: string; taskCgroupPath: string; stopTimeoutSeconds: number; stopSignal: string; createdAt: number;
}

interface ExitRecord { exitCode?: number; oomKilled: boolean; reason?: string; finishedAt: number }

export interface ContainerRuntimeOptions {
  /** The instance's data dir: everything the runtime writes goes below it. */
  dataDir: string;
  /** Absolute cgroup path of the instance, e.g. /berth/<instanceId>; tasks get <root>/<taskId>. */
  cgroupRoot: string;
  cgroupMount?: string;
  binaries?: Partial<Binaries>;
  seccompProfile?: string;
  /** Measured when absent. */
  host?: HostFacts;
  clock?: Clock;
  /** Hostname of containers in host network mode (default: this process's). */
  instanceHostname?: string;
  /** Files copied into each task (defaults: /etc/hosts, /etc/resolv.conf). */
  instanceHosts?: string;
  instanceResolvConf?: string;
  /** conmon's hard cap on a log file, truncating beyond (rotate earlier with logs.ts). */
  logSizeMax?: number;
  pidsLimit?: number;
  /** Periodic exit-dir scan, a backstop for missed fs.watch events. */
  exitScanIntervalMs?: number;
  /** Where conmon's sockets go when `<dataDir>/s` would be too long a unix socket path. */
  socketsDir?: string;
  /** Size of each task's writable storage, and of the instance's host volume area (default 20 GiB, Fargate's default). */
  taskStorageBytes?: number;
}

export interface CreateOptions {
  /** pidMode "task": join this PID namespace (e.g. /proc/<pid>/ns/pid of the task's first container). */
  pidNamespacePath?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readJson<T>(path: string): T | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as T; } catch { return undefined; }
}

function writeJsonAtomic(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(value));
  renameSync(`${path}.tmp`, path);
}

export class ContainerRuntime {
  readonly layout: RuntimeLayout;
  readonly host: HostFacts;
  readonly binaries: Binaries;
  private readonly runc: Runc;
  private readonly clock: Clock;
  private readonly cgroupMount: string;
  private readonly seccomp: SeccompProfiles;
  /** The limits all tasks share (the provider's tasks cgroup); each task gets its share of the pids. */
  private readonly pool: TaskPool;
  private readonly watched = new Set<string>();
  /** Creates in flight in this process: list()/state() must not judge them half-made. */
  private readonly creating = new Set<string>();
  private readonly finalizing = new Map<string, Promise<ContainerState>>();
  private readonly waiters = new Map<string, Set<(s: ContainerState) => void>>();
  private readonly listeners = new Set<(s: ContainerState) => void>();
  /** Task storage and host volume mounts are made once, however many containers ask at once. */
  private readonly storageLock = new Mutex();
  /** A task filesystem made ahead, so that a task start does not wait for mkfs and the loop mount. */
  readonly spareStorage: SpareFilesystem;
  private watcher?: FSWatcher;
  private scanTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: ContainerRuntimeOptions) {
    if (!opts.cgroupRoot.startsWith('/')) {
      // Relative paths resolve against runc's (conmon's) own cgroup: never what we want.
      throw new Error(`cgroupRoot must be absolute, e.g. /berth/<instanceId>; got ${opts.cgroupRoot}`);
    }
    this.layout = new RuntimeLayout(opts.dataDir, opts.socketsDir);
    // conmon binds <sockets>/<id>/attach; ids are ≤ 42 chars and sun_path holds 107.
    if (this.layout.socketsDir.length + 1 + 42 + '/attach'.length > 107) {
      throw new Error(`the conmon socket dir is too long for a unix socket path (keep it under ~55 characters): ${this.layout.socketsDir}`);
    }
    this.cgroupMount = opts.cgroupMount ?? CGROUP_MOUNT;
    assertCgroupV1(this.cgroupMount);
    this.binaries = resolveBinaries(opts.binaries);
    this.host = opts.host ?? measureHostFacts();
    this.clock = opts.clock ?? systemClock;
    this.runc = new Runc(this.binaries.runc, this.layout.runcRoot);
    this.pool = readTaskPool(opts.cgroupRoot, this.cgroupMount);
    this.seccomp = new SeccompProfiles(opts.seccompProfile ?? DEFAULT_SECCOMP_PROFILE, this.host.arch, this.host.kernel);
    for (const d of [this.layout.runcRoot, this.layout.exitsDir, this.layout.socketsDir, this.layout.containersDir, this.layout.tasksDir, join(opts.dataDir, 'persist')]) {
      mkdirSync(d, { recursive: true });
    }
    for (const d of [this.layout.processesDir, this.layout.execDir, this.layout.storageImagesDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
    this.spareStorage = new SpareFilesystem(this.layout.storageImagesDir, opts.taskStorageBytes ?? DEFAULT_TASK_STORAGE_BYTES);
    this.spareStorage.replenish();
    this.watchExits();
  }

  /** Deterministic runtime id of a task's container. */
  static runtimeId(taskId: string, containerName: string): string {
    return runtimeId(taskId, containerName);
  }

  /** The task's cgroup (task-level limits; stats.ts reads its usage). */
  taskCgroupPath(taskId: string): string {
    return `${this.opts.cgroupRoot}/${taskId.replace(/[^a-zA-Z0-9_.-]/g, '_')}`;
  }

  /** Calls `fn` with every container that stops (exit observed, lost, or failed). Returns an unsubscribe. */
  onExit(fn: (s: ContainerState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // ---- create / start -------------------------------------------------------------------

  async create(task: TaskSpec, container: ContainerSpec, image: PulledImage, opts: CreateOptions = {}): Promise<ContainerState> {
    const id = runtimeId(task.taskId, container.name);
    const L = this.layout;
    if (existsSync(L.file(id, 'meta.json'))) throw new ContainerExistsError(`container ${id} (${task.taskId}/${container.name}) already exists`);
    const taskCgroupPath = this.taskCgroupPath(task.taskId);
    const cgroupsPath = `${taskCgroupPath}/${id}`;
    const hostname = task.networkMode === 'awsvpc' ? taskHostname(task.taskId) : (this.opts.instanceHostname ?? osHostname());

    // Build (and so validate: privilege gate, user, ulimits...) before touching anything.
    const etcPlanned = { hosts: join(L.taskEtcDir(task.taskId), 'hosts'), hostname: join(L.taskEtcDir(task.taskId), 'hostname') };
    const specInput = {
      task, container, image: image.config, rootfsPath: L.file(id, 'rootfs'), cgroupsPath,
      passwd: readFileInRoot(image.rootfs, '/etc/passwd'), group: readFileInRoot(image.rootfs, '/etc/group'),
      host: this.host, seccompFor: (caps: readonly string[]) => this.seccomp.forCapabilities(caps),
      instanceHostname: hostname, volumePaths: volumePaths(L, task), etcFiles: etcPlanned,
      ...(this.binaries.tiniStatic ? { initBinary: this.binaries.tiniStatic } : {}),
      ...(opts.pidNamespacePath ? { pidNamespacePath: opts.pidNamespacePath } : {}),
      pidsLimit: this.opts.pidsLimit ?? taskPidsMax(taskMemoryMiB(task), this.pool),
      statDevice,
    };
    buildOciSpec(specInput);

    await this.prepareTask(task);
    const etc = ensureEtcFiles(L, task, hostname, { hosts: this.opts.instanceHosts ?? '/etc/hosts', resolvConf: this.opts.instanceResolvConf ?? '/etc/resolv.conf' });
    ensureTaskVolumes(L, task);
    const spec = buildOciSpec({ ...specInput, etcFiles: etc });

    const meta: Meta = {
      id, taskArn: task.taskArn, taskId: task.taskId, name: container.name, imageRef: image.ref, imageDigest: image.digest,
      cgroupsPath, taskCgroupPath, stopTimeoutSeconds: container.stopTimeoutSeconds, stopSignal: image.config.stopSignal ?? 'SIGTERM',
      createdAt: this.clock.now(),
    };
    this.creating.add(id);
    try {
      return await this.createBundle(id, task, container, image, meta, spec, taskCgroupPath);
    } finally {
      this.creating.delete(id);
    }
  }

  private taskStorage(taskId: string): LoopFilesystem {
    return { image: this.layout.taskStorageImage(taskId), mountPoint: this.layout.taskStorage(taskId), sizeBytes: this.opts.taskStorageBytes ?? DEFAULT_TASK_STORAGE_BYTES };
  }

  /**
   * The task's bounded storage, and its host volumes bound from the instance's area, before
   * any of its containers is made (found again, not remade, by a restarted agent).
   */
  private prepareTask(task: TaskSpec): Promise<void> {
    const L = this.layout;
    return this.storageLock.run(async () => {
      try {
        await ensureLoopFilesystem(this.taskStorage(task.taskId), this.spareStorage);
        const hostVolumes = task.volumes.filter((v) => v.hostSourcePath !== undefined);
        if (hostVolumes.length) {
          await ensureLoopFilesystem({ image: L.hostVolumeImage, mountPoint: L.hostVolumeArea, sizeBytes: this.opts.taskStorageBytes ?? DEFAULT_TASK_STORAGE_BYTES });
        }
        for (const v of hostVolumes) await stageHostVolume(L.hostVolumeArea, v.hostSourcePath!, L.hostVolumeMount(task.taskId, v.name));
      } catch (e) {
        throw e instanceof CannotStartContainerError ? e : new CannotStartContainerError(`preparing the task's storage: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  private async createBundle(id: string, task: TaskSpec, container: ContainerSpec, image: PulledImage, meta: Meta, spec: OciConfig, taskCgroupPath: string): Promise<ContainerState> {
    const L = this.layout;
    const bundle = L.bundle(id);
    // meta.json first: a bundle without it is garbage from a crash and list() removes it.
    mkdirSync(bundle, { recursive: true });
    writeJsonAtomic(L.file(id, 'meta.json'), meta);
    const upper = L.containerLayer(task.taskId, id, 'upper');
    const work = L.containerLayer(task.taskId, id, 'work');
    for (const d of [upper, work, L.file(id, 'rootfs')]) mkdirSync(d, { recursive: true });
    try {
      await mountOverlay(image.rootfs, upper, work, L.file(id, 'rootfs'));
      // The agent's own copy of the process, which `runc exec` uses (never the bundle's).
      writeJsonAtomic(L.processSpec(id), spec.process);
      writeFileSync(L.file(id, 'config.json'), serializeOciConfig(spec));
      ensureTaskCgroup(taskCgroupPath, {
        ...(task.memory ? { memoryBytes: task.memory * 1024 * 1024 } : {}),
        ...(task.cpu ? { cpuQuotaUs: cfsQuota(task.cpu), cpuPeriodUs: CFS_PERIOD_US } : {}),
        ...(spec.linux.resources.pids ? { pidsMax: spec.linux.resources.pids.limit } : {}),
      }, this.cgroupMount);
      mkdirSync(L.persistDir(id), { recursive: true });
      rmSync(L.exitFile(id), { force: true });
      rmSync(L.file(id, 'sync.json'), { force: true });
      this.watched.add(id);
      const { exited } = spawnConmon(this.binaries.conmon, {
        id, bundle, runcBin: this.binaries.runc, runcRoot: L.runcRoot, exitsDir: L.exitsDir, persistDir: L.persistDir(id),
        socketsDir: L.socketsDir, logPath: L.file(id, 'ctr.log'), pidFile: L.file(id, 'pid'), conmonPidFile: L.file(id, 'conmon.pid'),
        logSizeMax: this.opts.logSizeMax ?? 64 * 1024 * 1024, terminal: container.pseudoTerminal,
      }, L.file(id, 'sync.json'), L.file(id, 'conmon.log'));
      const sync = await this.waitForSync(id, exited);
      if (sync.pid <= 0) throw new CannotStartContainerError(runcMessage(sync.message ?? 'runc create failed'));
    } catch (e) {
      this.watched.delete(id);
      await this.destroy(id, meta).catch(() => undefined);
      throw e instanceof CannotStartContainerError ? e : new CannotStartContainerError(e instanceof Error ? e.message : String(e));
    }
    return this.describe(meta, 'created');
  }

  /** Waits for conmon's `{"data": pid}` line (or its failure). */
  private async waitForSync(id: string, exited: Promise<number | null>): Promise<{ pid: number; message?: string }> {
    let exitCode: number | null | undefined;
    void exited.then((c) => { exitCode = c; });
    const deadline = performance.now() + 60_000; // monotonic: a mechanical timeout, not domain time
    for (let delay = 1; ; delay = Math.min(delay * 2, 5)) {
      const s = readSync(this.layout.file(id, 'sync.json'));
      if (s) return s;
      if (exitCode !== undefined && exitCode !== 0) {
        const log = readFileSafe(this.layout.file(id, 'conmon.log'));
        return { pid: -1, message: `conmon exited with ${exitCode}: ${log.trim()}` };
      }
      if (performance.now() > deadline) return { pid: -1, message: 'timed out waiting for runc create' };
      await sleep(delay);
    }
  }

  async start(id: string): Promise<ContainerState> {
    const meta = this.meta(id);
    await this.runc.start(id);
    writeFileSync(this.layout.file(id, 'started'), String(this.clock.now()));
    this.watched.add(id);
    // It may already have exited (the watcher records that); don't pay a `runc state` to know.
    return readJson<ExitRecord>(this.layout.file(id, 'exit.json')) ? this.state(id, meta) : this.describe(meta, 'running');
  }

  // ---- stop / remove --------------------------------------------------------------------

  /**
   * Sends the image's stop signal (SIGTERM by default), waits up to `timeoutSeconds` (the
   * container's stopTimeout) on the runtime's clock, then SIGKILLs every process left.
   */
  async stop(id: string, timeoutSeconds?: number): Promise<ContainerState> {
    const meta = this.meta(id);
    const st = await this.runc.state(id);
    if (st && (st.status === 'running' || st.status === 'created' || st.status === 'paused')) {
      const grace = (timeoutSeconds ?? meta.stopTimeoutSeconds) * 1000;
      const signalled = st.status === 'running' ? await this.runc.kill(id, meta.stopSignal) : false;
      const exited = signalled ? await this.waitForExit(id, grace) : undefined;
      if (!exited) {
        await this.runc.kill(id, 'KILL', true);
        await this.waitForExit(id, 10_000, true);
      }
    }
    return this.state(id, meta);
  }

  /** Forcefully stops (if needed) and deletes the container with its overlay, cgroups and files. */
  async remove(id: string): Promise<void> {
    const meta = readJson<Meta>(this.layout.file(id, 'meta.json'));
    if (!meta) {
      if (existsSync(this.layout.bundle(id))) await this.destroy(id, undefined);
      return;
    }
    const st = await this.runc.state(id);
    if (st && st.status !== 'stopped') {
      await this.runc.kill(id, 'KILL', true);
      if (pidAlive(readPidFile(this.layout.file(id, 'conmon.pid')))) await this.waitForExit(id, 10_000, true);
    }
    if (existsSync(this.layout.exitFile(id)) && !existsSync(this.layout.file(id, 'exit.json'))) await this.finalize(id, meta, true);
    await this.destroy(id, meta);
  }

  /** Tears down whatever exists of a container, in reverse order of creation. */
  private async destroy(id: string, meta: Meta | undefined): Promise<void> {
    const L = this.layout;
    this.watched.delete(id);
    await this.runc.delete(id, true);
    await unmount(L.file(id, 'rootfs'));
    if (meta) {
      // runc delete leaves the leaf in name=systemd and the cgroup2 "unified" mount; the task
      // level goes when its last container does (rmdir fails harmlessly while others remain).
      removeCgroup(meta.cgroupsPath, this.cgroupMount);
      removeCgroup(meta.taskCgroupPath, this.cgroupMount);
      rmSync(join(L.taskStorage(meta.taskId), 'containers', id), { recursive: true, force: true });
    }
    await unmountAllUnder(L.bundle(id));
    for (const p of [L.bundle(id), L.persistDir(id), L.exitFile(id), L.socketLink(id), L.processSpec(id)]) rmSync(p, { recursive: true, force: true });
  }

  /**
   * Removes a task's files (etc files, task-scoped volumes: its whole storage, image included),
   * its host volume mounts (the area itself stays) and its cgroup, once its containers are removed.
   */
  async removeTask(taskId: string): Promise<void> {
    const remaining = this.ids().filter((id) => readJson<Meta>(this.layout.file(id, 'meta.json'))?.taskId === taskId);
    if (remaining.length) throw new Error(`task ${taskId} still has containers: ${remaining.join(', ')}`);
    await this.storageLock.run(async () => {
      // Host volume binds and the task's storage (unmounting it detaches its loop device);
      // with nothing mounted below it, deleting the dir never reaches into a shared filesystem.
      await unmountAllUnder(this.layout.taskDir(taskId));
      await removeLoopFilesystem(this.taskStorage(taskId));
      rmSync(this.layout.taskDir(taskId), { recursive: true, force: true });
    });
    removeCgroup(this.taskCgroupPath(taskId), this.cgroupMount);
  }

  // ---- observe --------------------------------------------------------------------------

  private ids(): string[] {
    try { return readdirSync(this.layout.containersDir); } catch { return []; }
  }

  private meta(id: string): Meta {
    const meta = readJson<Meta>(this.layout.file(id, 'meta.json'));
    if (!meta) throw new NoSuchContainerError(`no container ${id} on this instance`);
    return meta;
  }

  /**
   * Every container on this instance, rebuilt from disk — what a restarted agent calls first.
   * Applies the conmon report's rules: an exit file is the truth; a live conmon means the
   * container is as runc says; a dead conmon means the exit code is lost (the container is
   * killed and reported so) or the create never finished (cleaned up and reported failed).
   */
  async list(): Promise<ContainerState[]> {
    const out: ContainerState[] = [];
    for (const id of this.ids()) {
      const meta = readJson<Meta>(this.layout.file(id, 'meta.json'));
      if (!meta) { await this.destroy(id, undefined).catch(() => undefined); continue; } // crashed before meta: garbage
      out.push(await this.state(id, meta));
    }
    return out;
  }

  /** One container's current state (reconciled as in `list()`). */
  async state(id: string, meta: Meta = this.meta(id)): Promise<ContainerState> {
    const L = this.layout;
    if (this.creating.has(id)) return this.describe(meta, 'created');
    const exit = readJson<ExitRecord>(L.file(id, 'exit.json'));
    if (exit) return this.describe(meta, 'stopped', exit);
    if (existsSync(L.exitFile(id))) return this.finalize(id, meta, false);

    const conmonPid = readPidFile(L.file(id, 'conmon.pid'));
    const conmonAlive = pidAlive(conmonPid) && isConmonFor(conmonPid, id);
    const sync = readSync(L.file(id, 'sync.json'));
    const st = await this.runc.state(id);
    if (sync && sync.pid <= 0) return this.fail(id, meta, `CannotStartContainerError: ${runcMessage(sync.message ?? 'runc create failed')}`);
    if (conmonAlive) {
      this.watched.add(id);
      if (!st || st.status === 'creating') return this.describe(meta, 'created'); // runc create in flight
      if (st.status === 'created') return this.describe(meta, 'created');
      if (st.status === 'stopped') {
        // conmon is writing the exit file right now; give it a moment.
        const s = await this.waitForExit(id, 2000, true);
        if (s) return s;
      }
      return this.describe(meta, 'running');
    }
    // conmon is dead. Check the exit file once more: it is written just before conmon exits.
    if (existsSync(L.exitFile(id))) return this.finalize(id, meta, false);
    if (!st || st.status === 'creating' || st.status === 'created' || !sync) {
      return this.fail(id, meta, 'CannotStartContainerError: the agent or conmon stopped while the container was being created');
    }
    if (st.status !== 'stopped') await this.killLost(id);
    return this.recordExit(id, meta, { oomKilled: false, reason: LOST_REASON, finishedAt: this.clock.now() });
  }

  /** Kills a container nobody can observe any more, and waits until runc sees it stopped. */
  private async killLost(id: string): Promise<void> {
    await this.runc.kill(id, 'KILL', true);
    for (let i = 0; i < 200; i++) {
      const st = await this.runc.state(id);
      if (!st || st.status === 'stopped') return;
      await sleep(25);
    }
  }

  private async fail(id: string, meta: Meta, reason: string): Promise<ContainerState> {
    await this.runc.delete(id, true).catch(() => undefined);
    return this.recordExit(id, meta, { oomKilled: false, reason, finishedAt: this.clock.now() });
  }

  /**
   * Turns conmon's exit file into the durable exit record. OOM = exit 137 (SIGKILL) AND a raised
   * oom_kill counter in the container's own memory cgroup, read before `runc delete` removes it:
   * conmon's oom file and runc's events also fire for OOMs elsewhere in the subtree.
   */
  private finalize(id: string, meta: Meta, live: boolean): Promise<ContainerState> {
    let p = this.finalizing.get(id);
    if (!p) {
      p = (async () => {
        const done = readJson<ExitRecord>(this.layout.file(id, 'exit.json'));
        if (done) return this.describe(meta, 'stopped', done);
        const file = this.layout.exitFile(id);
        const text = readFileSafe(file).trim();
        const code = /^-?\d+$/.test(text) ? Number(text) : undefined;
        const oomKilled = code === 137 && (readOomKills(meta.cgroupsPath, this.cgroupMount) ?? 0) > 0;
        // Observed live: now, on the runtime's clock. Found after a restart: when conmon wrote it.
        const finishedAt = live ? this.clock.now() : statSync(file).mtimeMs;
        return this.recordExit(id, meta, {
          ...(code !== undefined ? { exitCode: code } : {}), oomKilled,
          ...(oomKilled ? { reason: OOM_REASON } : code === undefined ? { reason: LOST_REASON } : {}),
          finishedAt,
        });
      })().finally(() => this.finalizing.delete(id));
      this.finalizing.set(id, p);
    }
    return p;
  }

  private recordExit(id: string, meta: Meta, exit: ExitRecord): ContainerState {
    writeJsonAtomic(this.layout.file(id, 'exit.json'), exit);
    this.watched.delete(id);
    const state = this.describe(meta, 'stopped', exit);
    for (const w of this.waiters.get(id) ?? []) w(state);
    this.waiters.delete(id);
    for (const l of this.listeners) { try { l(state); } catch { /* a listener's bug is not ours */ } }
    return state;
  }

  private describe(meta: Meta, status: RuntimeStatus, exit?: ExitRecord): ContainerState {
    const started = Number(readFileSafe(this.layout.file(meta.id, 'started'))) || undefined;
    return {
      id: meta.id, taskArn: meta.taskArn, taskId: meta.taskId, name: meta.name, status,
      imageRef: meta.imageRef, imageDigest: meta.imageDigest, createdAt: meta.createdAt,
      ...(started ? { startedAt: started } : {}),
      ...(exit ? {
        // The exit file's mtime (the kernel's coarse clock) can read a few ms before the
        // `started` stamp of a container that exited while `runc start` returned: keep order.
        finishedAt: Math.max(exit.finishedAt, started ?? 0), oomKilled: exit.oomKilled,
        ...(exit.exitCode !== undefined ? { exitCode: exit.exitCode } : {}),
        ...(exit.reason ? { reason: exit.reason } : {}),
      } : {}),
      logPath: this.layout.file(meta.id, 'ctr.log'),
      ctlPath: this.layout.file(meta.id, 'ctl'),
    };
  }

  /**
   * Writes the process of an exec (`runc exec --process`) from the agent's own copy of the
   * container's process spec: without `--process`, runc would read the bundle's config.json.
   */
  private execProcessFile(id: string, argv: string[], terminal: boolean): { file: string; base: string } {
    const own = readJson<OciProcess>(this.layout.processSpec(id));
    if (!own) throw new NoSuchContainerError(`no process spec of container ${id} is kept by this agent (it was made by an older one): cannot exec in it`);
    const env = terminal ? [...own.env.filter((e) => !e.startsWith('TERM=')), 'TERM=xterm'] : own.env;
    const base = join(this.layout.execDir, `${id}-${randomBytes(6).toString('hex')}`);
    writeFileSync(`${base}.process.json`, JSON.stringify({ ...own, args: argv, env, terminal }), { mode: 0o600 });
    return { file: `${base}.process.json`, base };
  }

  /** Runs a command inside a running container (health checks); exit code -1 on timeout. */
  async exec(id: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const { file } = this.execProcessFile(id, argv, false);
    try {
      return await this.runc.execIn(id, file, timeoutMs);
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** Opens a command in a running container on a pseudo-terminal (ECS Exec). */
  async execTerminal(id: string, argv: string[], size: { cols: number; rows: number }): Promise<TerminalProcess> {
    const { file, base } = this.execProcessFile(id, argv, true);
    try {
      const term = await this.runc.execTerminal(id, file, { ...size, pidFile: `${base}.pid` });
      term.onExit(() => rmSync(file, { force: true }));
      return term;
    } catch (e) {
      rmSync(file, { force: true });
      throw e;
    }
  }

  /**
   * Resolves with the stopped state once the container's exit is recorded, or undefined after
   * `timeoutMs` (on the runtime's clock unless `realTime`).
   */
  waitForExit(id: string, timeoutMs?: number, realTime = false): Promise<ContainerState | undefined> {
    const meta = this.meta(id);
    const exit = readJson<ExitRecord>(this.layout.file(id, 'exit.json'));
    if (exit) return Promise.resolve(this.describe(meta, 'stopped', exit));
    return new Promise((resolve) => {
      let timer: { cancel(): void } | undefined;
      const set = this.waiters.get(id) ?? new Set();
      const done = (s: ContainerState | undefined) => { timer?.cancel(); set.delete(done); resolve(s); };
      set.add(done);
      this.waiters.set(id, set);
      if (timeoutMs !== undefined) {
        if (realTime) { const t = setTimeout(() => done(undefined), timeoutMs); timer = { cancel: () => clearTimeout(t) }; }
        else timer = this.clock.after(timeoutMs, () => done(undefined));
      }
      this.watched.add(id);
      if (existsSync(this.layout.exitFile(id))) void this.finalize(id, meta, true);
    });
  }

  /** fs.watch on the exit dir, plus a periodic scan in case an event was missed. */
  private watchExits(): void {
    const onExitFile = (id: string) => {
      if (!this.watched.has(id) || !existsSync(this.layout.exitFile(id))) return;
      const meta = readJson<Meta>(this.layout.file(id, 'meta.json'));
      if (meta) void this.finalize(id, meta, true).catch(() => undefined);
    };
    try {
      this.watcher = watch(this.layout.exitsDir, (_event, filename) => { if (filename) onExitFile(filename.toString()); });
      this.watcher.unref();
    } catch { /* the scan below still works */ }
    this.scanTimer = setInterval(() => { for (const id of [...this.watched]) onExitFile(id); }, this.opts.exitScanIntervalMs ?? 1000);
    this.scanTimer.unref();
  }

  /** Stops watching (containers keep running: conmon, not the agent, owns them). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    if (this.scanTimer) clearInterval(this.scanTimer);
  }
}

/** runc logs `time="…" level=error msg="…"`: keep the message. */
function runcMessage(text: string): string {
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(text);
  return m ? m[1]!.replace(/\\(.)/g, '$1') : text.trim();
}

function readFileSafe(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}
