// Where everything of one instance's runtime lives on disk. All of it is under the instance's
// data dir (the only writable place on an instance whose root is read-only), which is also
// what makes a restarted agent able to rebuild its state from disk alone.
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

  taskDir(taskId: string): string { return join(this.tasksDir, taskId); }
  taskVolume(taskId: string, volume: string): string { return join(this.taskDir(taskId), 'volumes', volume); }
}

export type BundleFile =
  | 'config.json' | 'meta.json' | 'sync.json' | 'pid' | 'conmon.pid' | 'conmon.log' | 'ctr.log' | 'ctl'
  | 'rootfs' | 'upper' | 'work' | 'started' | 'exit.json';
