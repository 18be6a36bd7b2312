// cgroup v1 (the hybrid layout of this machine: one mount per controller plus name=systemd and
// a cgroup2 "unified" mount). runc creates a container's leaf cgroup in every hierarchy and
// removes only the leaf on `runc delete`; the task and instance levels are ours to create
// (with the task-level limits) and to remove.
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CGROUP_MOUNT = '/sys/fs/cgroup';

/** Every cgroup hierarchy mounted under `mount` (directories, not the cpu,cpuacct-style symlinks). */
export function hierarchies(mount = CGROUP_MOUNT): string[] {
  return readdirSync(mount).filter((d) => {
    try { return lstatSync(join(mount, d)).isDirectory(); } catch { return false; }
  });
}

/** Berth's readers (memory.oom_control, cpuacct.usage...) are v1; say so plainly on a v2-only host. */
export function assertCgroupV1(mount = CGROUP_MOUNT): void {
  if (!existsSync(join(mount, 'memory', 'memory.oom_control'))) {
    throw new Error(`cgroup v1 memory controller not found at ${mount}/memory: Berth's runtime needs cgroup v1 (or the hybrid layout); cgroup v2-only hosts are not supported yet.`);
  }
}

export interface TaskLimits { memoryBytes?: number; cpuQuotaUs?: number; cpuPeriodUs?: number; pidsMax?: number }

/** What all of an instance's tasks may use together: the limits of the runtime's cgroup root. */
export interface TaskPool { pids?: number; memoryMiB?: number }

const readLimit = (file: string): number | undefined => {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    // 'max' (pids) and the near-2^63 "unlimited" of memory mean no limit.
    return Number.isFinite(n) && n > 0 && n < 2 ** 52 ? n : undefined;
  } catch { return undefined; }
};

export function readTaskPool(root: string, mount = CGROUP_MOUNT): TaskPool {
  const pids = readLimit(join(mount, 'pids', root, 'pids.max'));
  const memory = readLimit(join(mount, 'memory', root, 'memory.limit_in_bytes'));
  return { ...(pids ? { pids } : {}), ...(memory ? { memoryMiB: Math.floor(memory / 1024 / 1024) } : {}) };
}

/** Pids a task may have when the pool has no limit (ECS has no pids setting): a fork-bomb guard. */
export const DEFAULT_TASK_PIDS = 4096;
/** Every task may have at least this many, whatever its memory share. */
export const MIN_TASK_PIDS = 256;

/**
 * A task's pids.max: its memory's share of the pool's pids (as its memory is its share of
 * the instance's), at least MIN_TASK_PIDS, never the whole pool unless it has all the
 * memory. So one task's fork bomb fails that task alone: its neighbours keep room to
 * start containers, and the pool itself keeps the agent's reserve.
 */
export function taskPidsMax(taskMemoryMiB: number | undefined, pool: TaskPool): number {
  if (!pool.pids) return DEFAULT_TASK_PIDS;
  if (!taskMemoryMiB || !pool.memoryMiB) return Math.min(pool.pids, Math.max(MIN_TASK_PIDS, Math.floor(pool.pids / 4)));
  const share = Math.floor(pool.pids * Math.min(1, taskMemoryMiB / pool.memoryMiB));
  return Math.min(pool.pids, Math.max(MIN_TASK_PIDS, share));
}

/** The memory a task reserves: the task size, else its containers' hard limits or reservations. */
export function taskMemoryMiB(task: { memory?: number; containers: { memory?: number; memoryReservation?: number }[] }): number | undefined {
  if (task.memory) return task.memory;
  const sum = task.containers.reduce((s, c) => s + (c.memory ?? c.memoryReservation ?? 0), 0);
  return sum || undefined;
}

/**
 * Creates a task's cgroup in the memory and cpu hierarchies with the task-level limits (all
 * the task's containers share them, as in ECS). runc creates the other hierarchies' dirs
 * (and fills in cpuset, which an empty mkdir would leave unusable). Idempotent.
 */
export function ensureTaskCgroup(path: string, limits: TaskLimits, mount = CGROUP_MOUNT): void {
  for (const h of ['memory', 'cpu', 'cpuacct', 'pids']) mkdirSync(join(mount, h, path), { recursive: true });
  if (limits.memoryBytes) writeFileSync(join(mount, 'memory', path, 'memory.limit_in_bytes'), String(limits.memoryBytes));
  if (limits.pidsMax) writeFileSync(join(mount, 'pids', path, 'pids.max'), String(limits.pidsMax));
  if (limits.cpuQuotaUs) {
    writeFileSync(join(mount, 'cpu', path, 'cpu.cfs_period_us'), String(limits.cpuPeriodUs ?? 100_000));
    writeFileSync(join(mount, 'cpu', path, 'cpu.cfs_quota_us'), String(limits.cpuQuotaUs));
  }
}

/** The `oom_kill` counter of a memory cgroup (kills inside it); undefined when the cgroup is gone. */
export function readOomKills(path: string, mount = CGROUP_MOUNT): number | undefined {
  try {
    const text = readFileSync(join(mount, 'memory', path, 'memory.oom_control'), 'utf8');
    const m = /^oom_kill (\d+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** rmdir `path` in every hierarchy (an empty cgroup only; busy ones are left and listed). */
export function removeCgroup(path: string, mount = CGROUP_MOUNT): string[] {
  const left: string[] = [];
  for (const h of hierarchies(mount)) {
    const dir = join(mount, h, path);
    try { rmdirSync(dir); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') left.push(`${dir} (${code})`);
    }
  }
  return left;
}

/** Removes `path` and everything below it, deepest first, in every hierarchy (cleanup, tests). */
export function removeCgroupTree(path: string, mount = CGROUP_MOUNT): string[] {
  const left: string[] = [];
  for (const h of hierarchies(mount)) {
    const walk = (dir: string) => {
      let entries: string[];
      try { entries = readdirSync(dir); } catch { return; }
      for (const e of entries) {
        const child = join(dir, e);
        try { if (lstatSync(child).isDirectory()) walk(child); } catch { /* gone */ }
      }
      try { rmdirSync(dir); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') left.push(`${dir} (${code})`);
      }
    };
    walk(join(mount, h, path));
  }
  return left;
}

/** Pids in a cgroup (from the pids hierarchy, where every container process is). */
export function cgroupPids(path: string, mount = CGROUP_MOUNT): number[] {
  try {
    return readFileSync(join(mount, 'pids', path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
