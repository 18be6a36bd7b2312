// The instance cgroup `/berth/<instanceId>` in every cgroup v1 controller (plus the
// `name=systemd` and cgroup2 `unified` hierarchies of a hybrid host, where runc also creates
// its directories), sized from the instance type. Containers nest below it (runc creates
// `/berth/<instanceId>/<task>`), so the instance limits apply to them hierarchically.
//
// The tasks go one level lower, in `/berth/<instanceId>/workloads`, whose pids and memory limits
// leave a reserve for the agent, conmon and runc that no task can consume: a fork bomb or a
// memory hog fills the tasks' share, never the instance, so runc keeps working and the
// instance stays healthy (issue 11: a bomb used to exhaust the instance's pids and get the
// instance and its neighbours' tasks repaired away).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESERVED_MEMORY_MIB } from '../../placement/instance-selection.js';
import { killQuietly, sleep } from './exec.js';

export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'devices', 'freezer', 'blkio'] as const;
const NAMED_HIERARCHIES = ['systemd', 'unified'];

/**
 * Pids no task can take: the agent (node threads), a conmon per container (conmon stays in
 * the agent's cgroup), runc and its children, health checks and exec sessions. An eighth of
 * the instance's, at least 512: more tasks fit on bigger instances, each with its conmon.
 */
export function reservedPids(pidsMax: number): number {
  return Math.max(512, Math.floor(pidsMax / 8));
}
/** The child of the instance cgroup every task's cgroup lives in. */
// Not 'tasks': every v1 cgroup directory already has a file of that name.
export const TASKS_CGROUP = 'workloads';

export interface CgroupLimits {
  memoryBytes: number;
  cpuPeriodUs: number;
  cpuQuotaUs: number;
  cpuShares: number;
  pidsMax: number;
  /** Limits of `<instance>/workloads`: the instance's minus the agent's and runtime's reserve. */
  tasksMemoryBytes?: number;
  tasksPidsMax?: number;
}

export function limitsFor(vcpu: number, memoryMiB: number): CgroupLimits {
  const pidsMax = Math.max(4096, vcpu * 1024);
  return {
    memoryBytes: memoryMiB * 1024 * 1024,
    cpuPeriodUs: 100_000,
    cpuQuotaUs: Math.max(1, Math.round(vcpu * 100_000)),
    cpuShares: Math.max(2, Math.round(vcpu * 1024)),
    pidsMax,
    // Tasks may use the memory the instance registers (placement's RESERVED_MEMORY_MIB stays free).
    tasksMemoryBytes: Math.max(64, memoryMiB - RESERVED_MEMORY_MIB) * 1024 * 1024,
    tasksPidsMax: pidsMax - reservedPids(pidsMax),
  };
}

function isEmptyFile(path: string): boolean {
  try { return readFileSync(path, 'utf8').trim() === ''; } catch { return true; }
}

/** PID 1 of a nested PID namespace (NSpid lists more than one pid, the innermost being 1). */
function isNamespaceInit(pid: number): boolean {
  try {
    const m = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    const ids = m ? m[1]!.trim().split(/\s+/) : [];
    return ids.length > 1 && ids[ids.length - 1] === '1';
  } catch { return false; }
}

function isRunning(pid: number): boolean {
  try { return !/^\S+ \(.*\) [ZX] /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

export class Cgroups {
  constructor(readonly mountRoot = '/sys/fs/cgroup', readonly base = '/berth') {}

  /** Mounted hierarchies Berth uses (v1 controllers first). */
  hierarchies(): string[] {
    return [...V1_CONTROLLERS, ...NAMED_HIERARCHIES].filter((h) => existsSync(join(this.mountRoot, h, 'cgroup.procs')));
  }

  missingControllers(): string[] {
    return V1_CONTROLLERS.filter((c) => !existsSync(join(this.mountRoot, c, 'cgroup.procs')));
  }

  /** The path of the instance cgroup inside each hierarchy, e.g. `/berth/i-0abc…`. */
  path(instanceId: string): string { return `${this.base}/${instanceId}`; }

  /** Where the instance's tasks' cgroups go (the agent's runtime root). */
  tasksPath(instanceId: string): string { return `${this.path(instanceId)}/${TASKS_CGROUP}`; }

  private dirs(instanceId: string): string[] {
    return this.hierarchies().map((h) => join(this.mountRoot, h, this.path(instanceId)));
  }

  exists(instanceId: string): boolean { return this.dirs(instanceId).some((d) => existsSync(d)); }

  /** The cgroup.procs files a process writes its pid to, to join the instance cgroup everywhere. */
  procsFiles(instanceId: string): string[] { return this.dirs(instanceId).map((d) => join(d, 'cgroup.procs')); }

  create(instanceId: string, limits: CgroupLimits): void {
    for (const h of this.hierarchies()) mkdirSync(join(this.mountRoot, h, this.tasksPath(instanceId)), { recursive: true });
    // v1 cpusets start empty: copy cpus and mems top-down, /berth first.
    const cpuset = join(this.mountRoot, 'cpuset');
    if (existsSync(join(cpuset, 'cgroup.procs'))) {
      let parent = cpuset;
      for (const part of this.tasksPath(instanceId).split('/').filter(Boolean)) {
        const dir = join(parent, part);
        for (const f of ['cpuset.cpus', 'cpuset.mems']) {
          if (isEmptyFile(join(dir, f))) writeFileSync(join(dir, f), readFileSync(join(parent, f), 'utf8').trim());
        }
        parent = dir;
      }
    }
    const write = (controller: string, file: string, value: number, path = this.path(instanceId)) => {
      const p = join(this.mountRoot, controller, path, file);
      if (existsSync(p)) writeFileSync(p, String(value));
    };
    write('memory', 'memory.limit_in_bytes', limits.memoryBytes);
    write('cpu', 'cpu.cfs_period_us', limits.cpuPeriodUs);
    write('cpu', 'cpu.cfs_quota_us', limits.cpuQuotaUs);
    write('cpu', 'cpu.shares', limits.cpuShares);
    write('pids', 'pids.max', limits.pidsMax);
    if (limits.tasksMemoryBytes) write('memory', 'memory.limit_in_bytes', Math.min(limits.tasksMemoryBytes, limits.memoryBytes), this.tasksPath(instanceId));
    if (limits.tasksPidsMax) write('pids', 'pids.max', Math.min(limits.tasksPidsMax, limits.pidsMax), this.tasksPath(instanceId));
  }

  /** Every cgroup directory of the instance's subtree, deepest first. */
  private subtree(instanceId: string): string[] {
    const out: string[] = [];
    const walk = (dir: string) => {
      let entries: import('node:fs').Dirent[];
      try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
      for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name));
      out.push(dir);
    };
    for (const d of this.dirs(instanceId)) if (existsSync(d)) walk(d);
    return out;
  }

  /** Host pids of every process in the instance's subtree, in any hierarchy. */
  pids(instanceId: string): number[] {
    const pids = new Set<number>();
    for (const dir of this.subtree(instanceId)) {
      try {
        for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line) pids.add(Number(line));
      } catch { /* removed meanwhile */ }
    }
    return [...pids];
  }

  /**
   * SIGKILLs every process of the instance subtree. The freezer stops a fork race (nothing
   * can start between listing and killing); killed tasks die once thawed.
   */
  async killAll(instanceId: string, timeoutMs = 5000): Promise<void> {
    // PID-namespace inits first (the instance's tini, containers' inits), giving their parents a
    // moment to reap them: killed together with its parent, an init stays a zombie of the host's
    // PID 1, which on this kind of host reaps only now and then.
    const inits = this.pids(instanceId).filter(isNamespaceInit);
    if (inits.length > 0) {
      for (const pid of inits) killQuietly(pid, 'SIGKILL');
      for (let i = 0; i < 50 && inits.some(isRunning); i++) await sleep(5);
    }
    const freezer = join(this.mountRoot, 'freezer', this.path(instanceId), 'freezer.state');
    const deadline = performance.now() + timeoutMs;
    for (let round = 0; ; round++) {
      const pids = this.pids(instanceId);
      if (pids.length === 0) return;
      if (performance.now() > deadline) throw new Error(`processes ${pids.join(', ')} of ${this.path(instanceId)} did not exit`);
      const frozen = round % 5 === 0 && existsSync(freezer) && this.trySet(freezer, 'FROZEN');
      for (const pid of this.pids(instanceId)) killQuietly(pid, 'SIGKILL');
      if (frozen) this.trySet(freezer, 'THAWED');
      await sleep(round < 10 ? 10 : 50);
    }
  }

  private trySet(file: string, value: string): boolean {
    try { writeFileSync(file, value); return true; } catch { return false; }
  }

  /** rmdir of the whole subtree in every hierarchy, bottom-up. Processes must be gone. */
  async remove(instanceId: string, timeoutMs = 3000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const failures: string[] = [];
      for (const dir of this.subtree(instanceId)) {
        try { rmdirSync(dir); } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT') failures.push(`${dir}: ${code}`);
        }
      }
      if (failures.length === 0) return;
      if (performance.now() > deadline) throw new Error(`cannot remove cgroups: ${failures.join('; ')}`);
      await sleep(20);
    }
  }
}
