// Where everything of one instance's runtime lives on disk. All of it is under the instance's
// data dir (the only writable place on an instance whose root is read-only), which is also
// what makes a restarted agent able to rebuild its state from disk alone.
//
// What containers can write is never on the data dir's own filesystem: each task's writable
// storage (overlay upper/work dirs, task volumes, /etc files) is a loop-mounted filesystem of
// its own at tasks/<taskId>/storage, and host volumes resolve inside host-volumes/, another
// one. Bundles, process specs, runc's state and the images stay where no container reaches.
import { join } from 'node:path';

export class RuntimeLayout {
  constructor(readonly dataDir: string, private readonly shortSocketsDir?: string) {}

  /** runc --root: runc's own container state. */
  get runcRoot(): string { return join(this.dataDir, 'runc'); }
  /** conmon --exit-dir: one file per exited container, named by its id, holding the exit code. */
  get exitsDir(): string { return join(this.dataDir, 'exits'); }
  /**
   * conmon --socket-dir-path: kept short for the unix socket path limit; a deep data dir
   * can name another (per-instance, e.g. on the instance's own /dev/shm) instead.
   */
  get socketsDir(): string { return this.shortSocketsDir ?? join(this.dataDir, 's'); }
  get containersDir(): string { return join(this.dataDir, 'containers'); }
  get tasksDir(): string { return join(this.dataDir, 'tasks'); }

  bundle(id: string): string { return join(this.containersDir, id); }
  exitFile(id: string): string { return join(this.exitsDir, id); }
  persistDir(id: string): string { return join(this.dataDir, 'persist', id); }
  socketLink(id: string): string { return join(this.socketsDir, id); }

  /** Files inside a bundle. */
  file(id: string, name: BundleFile): string { return join(this.bundle(id), name); }

  /** The agent's own copy of each container's process spec (`runc exec --process` is built from it). */
  get processesDir(): string { return join(this.dataDir, 'processes'); }
  processSpec(id: string): string { return join(this.processesDir, `${id}.json`); }
  /** Short-lived files of `runc exec` (process specs, pid files): agent-only. */
  get execDir(): string { return join(this.dataDir, 'exec'); }
  /** Sparse filesystem images (task storage, the host volume area): agent-only. */
  get storageImagesDir(): string { return join(this.dataDir, 'storage'); }

  /** The instance's host volume area: `sourcePath` /x/y is <area>/x/y. */
  get hostVolumeArea(): string { return join(this.dataDir, 'host-volumes'); }
  get hostVolumeImage(): string { return join(this.storageImagesDir, 'host-volumes.img'); }

  taskDir(taskId: string): string { return join(this.tasksDir, taskId); }
  /** The task's own bounded filesystem (mount point) and its image. */
  taskStorage(taskId: string): string { return join(this.taskDir(taskId), 'storage'); }
  taskStorageImage(taskId: string): string { return join(this.storageImagesDir, `task-${taskId}.img`); }
  taskEtcDir(taskId: string): string { return join(this.taskStorage(taskId), 'etc'); }
  taskVolume(taskId: string, volume: string): string { return join(this.taskStorage(taskId), 'volumes', volume); }
  /** A container's overlay upper and work dirs, on its task's storage. */
  containerLayer(taskId: string, id: string, dir: 'upper' | 'work'): string { return join(this.taskStorage(taskId), 'containers', id, dir); }
  /** Where a host volume of the task is bound (from the area) for its containers to bind in turn. */
  hostVolumeMount(taskId: string, volume: string): string { return join(this.taskDir(taskId), 'host-volumes', volume); }
}

export type BundleFile =
  | 'config.json' | 'meta.json' | 'sync.json' | 'pid' | 'conmon.pid' | 'conmon.log' | 'ctr.log' | 'ctl'
  | 'rootfs' | 'started' | 'exit.json';
