// The agent's ContainerDriver on top of the runtime library (runc + conmon, skopeo/umoci).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerDriver, ContainerObservation, LogChunk, PulledImage } from './driver.js';
import { withinLaunchGrant, type LaunchGrant } from './launch-grant.js';
import type { ContainerSpec, TaskSpec } from './protocol.js';
import { ContainerRuntime, ImageStore, LOST_REASON, readLog, START, taskUsage, type ContainerState, type LogCursor } from './runtime/index.js';
import { CannotPullContainerError, ContainerExistsError } from './runtime/errors.js';
import { parseStorageGiB } from './runtime/storage.js';

const PULL_ATTEMPTS = 5;

const RESERVED_MEMORY_MIB = 256;

/** The instance cgroup this agent runs in (the same path in every v1 hierarchy). */
export function ownCgroup(procSelfCgroup = readFileSync('/proc/self/cgroup', 'utf8')): string {
  for (const line of procSelfCgroup.split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers?.split(',').includes('memory') && path) return path;
  }
  throw new Error('cannot find the memory cgroup of the agent in /proc/self/cgroup');
}

const readNumber = (path: string): number | undefined => {
  try { const n = Number(readFileSync(path, 'utf8').trim()); return Number.isFinite(n) ? n : undefined; } catch { return undefined; }
};

function observe(s: ContainerState): ContainerObservation {
  const lost = s.status === 'stopped' && s.exitCode === undefined && s.reason === LOST_REASON;
  return {
    runtimeId: s.id, taskId: s.taskId, containerName: s.name,
    state: lost ? 'unknown' : s.status,
    ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
    ...(s.oomKilled ? { oomKilled: true } : {}),
  };
}

export async function createRuncDriver(o: { dataDir: string; log: (line: string) => void; cgroupRoot?: string; launchGrant?: LaunchGrant; taskStorageBytes?: number }): Promise<ContainerDriver> {
  const cgroupRoot = o.cgroupRoot ?? process.env.BERTH_CGROUP_PATH ?? ownCgroup();
  // Each task's writable storage (and the host volume area) is a filesystem of this size.
  const taskStorageBytes = o.taskStorageBytes ?? parseStorageGiB(process.env.BERTH_AGENT_TASK_STORAGE_GIB);
  const images = new ImageStore({ dataDir: o.dataDir, ...(process.env.BERTH_PULL_NETNS ? { pullNetns: process.env.BERTH_PULL_NETNS } : {}) });
  // conmon's sockets need a short path; a deep data dir uses the instance's private /dev/shm.
  const socketsDir = join(o.dataDir, 's').length > 55 ? '/dev/shm/berth-conmon' : undefined;
  // Tasks go below the provider's tasks cgroup (limits that keep a reserve for the agent and runtime) when there is one.
  const tasksRoot = o.cgroupRoot ?? process.env.BERTH_TASKS_CGROUP_PATH ?? cgroupRoot;
  const runtime = new ContainerRuntime({ dataDir: o.dataDir, cgroupRoot: tasksRoot, taskStorageBytes, ...(socketsDir ? { socketsDir } : {}) });
  const logPaths = new Map<string, string>();
  const logPath = async (id: string) => {
    let p = logPaths.get(id);
    if (!p) { p = (await runtime.state(id)).logPath; logPaths.set(id, p); }
    return p;
  };

  return {
    async pull(image: string, forwards: Record<string, string>): Promise<PulledImage> {
      images.setRegistryForwards(forwards);
      // Like the ECS agent, retry pulls that fail for transient reasons (a registry or its
      // forwarder restarting) before giving up on the task.
      for (let attempt = 1; ; attempt++) {
        try {
          const pulled = await images.pull(image);
          return { image, digest: pulled.digest };
        } catch (e) {
          const transient = e instanceof CannotPullContainerError && (e.kind === 'unreachable' || e.kind === 'other');
          if (!transient || attempt >= PULL_ATTEMPTS) throw e;
          o.log(`agent: pulling ${image} failed (attempt ${attempt}), retrying: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
        }
      }
    },
    async create(task: TaskSpec, container: ContainerSpec, image: PulledImage): Promise<string> {
      const id = ContainerRuntime.runtimeId(task.taskId, container.name);
      const pulled = images.get(image.digest, image.image) ?? await images.pull(image.image);
      try {
        await runtime.create(o.launchGrant ? withinLaunchGrant(task, o.launchGrant) : task, container, pulled);
      } catch (e) {
        if (!(e instanceof ContainerExistsError)) throw e;
      }
      return id;
    },
    async start(id: string): Promise<void> {
      try {
        await runtime.start(id);
      } catch (e) {
        // Already started (e.g. by an agent that died right after): not an error.
        if ((await runtime.state(id)).status === 'created') throw e;
      }
    },
    async stop(id: string, timeoutSeconds: number): Promise<void> {
      // The runtime waits out the grace period; the exit arrives as an event.
      void runtime.stop(id, timeoutSeconds).catch((e) => o.log(`agent: stopping ${id}: ${(e as Error).message}`));
    },
    async inspect(id: string): Promise<ContainerObservation> {
      return observe(await runtime.state(id));
    },
    async remove(id: string): Promise<void> {
      logPaths.delete(id);
      await runtime.remove(id);
    },
    async list(): Promise<ContainerObservation[]> {
      return (await runtime.list()).map(observe);
    },
    onExit(listener: (runtimeId: string) => void): void {
      runtime.onExit((s) => listener(s.id));
    },
    async readLogs(id: string, cursor: string | undefined, final = false): Promise<LogChunk> {
      const from: LogCursor = cursor ? JSON.parse(cursor) as LogCursor : START;
      const read = readLog(await logPath(id), from, { final });
      return {
        events: read.events.map((e) => ({ timestamp: e.timestamp, message: e.message, pos: e.pos })),
        cursor: JSON.stringify(read.cursor),
        // The file actually read (a cursor may name the rotated one, or none yet).
        source: `${id}:${read.cursor.ino}`,
      };
    },
    async checkRuntime() {
      for (const [bin, args] of [[runtime.binaries.runc, ['--version']], [runtime.binaries.conmon, ['--version']]] as const) {
        try {
          await new Promise<void>((ok, fail) => execFile(bin, [...args], { timeout: 5_000 }, (e) => (e ? fail(e) : ok())));
        } catch (e) {
          return { ok: false, reason: `${bin} ${args.join(' ')} failed: ${(e as Error).message.split('\n')[0]}` };
        }
      }
      return { ok: true };
    },
    exec(id: string, argv: string[], timeoutMs: number) {
      return runtime.exec(id, argv, timeoutMs);
    },
    openTerminal(id: string, argv: string[], size: { cols: number; rows: number }) {
      return runtime.execTerminal(id, argv, size);
    },
    async taskStats(taskId: string) {
      return taskUsage(runtime.taskCgroupPath(taskId));
    },
    async cleanupTask(taskId: string): Promise<void> {
      await runtime.removeTask(taskId);
    },
    resources() {
      const base = join('/sys/fs/cgroup');
      const quota = readNumber(join(base, 'cpu', cgroupRoot, 'cpu.cfs_quota_us'));
      const period = readNumber(join(base, 'cpu', cgroupRoot, 'cpu.cfs_period_us'));
      const limit = readNumber(join(base, 'memory', cgroupRoot, 'memory.limit_in_bytes'));
      return {
        cpu: quota && period && quota > 0 ? Math.round((quota / period) * 1024) : 1024,
        memory: limit ? Math.floor(limit / 1024 / 1024) - RESERVED_MEMORY_MIB : 0,
      };
    },
  };
}
