// Per-task usage from the task's cgroup (v1): CPU time from cpuacct.usage (ns, cumulative,
// includes containers already removed, since cpuacct charges every ancestor) and memory from
// memory.usage_in_bytes (which includes page cache, like ECS's MemoryUtilized on cgroup v1).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_MOUNT } from './cgroups.js';

export interface TaskUsage { cpuSeconds: number; memoryBytes: number }

function readNumber(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** undefined when the task's cgroup does not exist (no container created yet, or removed). */
export function taskUsage(taskCgroupPath: string, mount = CGROUP_MOUNT): TaskUsage | undefined {
  const cpuNs = readNumber(join(mount, 'cpuacct', taskCgroupPath, 'cpuacct.usage'));
  const memory = readNumber(join(mount, 'memory', taskCgroupPath, 'memory.usage_in_bytes'));
  if (cpuNs === undefined && memory === undefined) return undefined;
  return { cpuSeconds: (cpuNs ?? 0) / 1e9, memoryBytes: memory ?? 0 };
}
