// Carries out the releases stopped tasks filed (ecs/task-stop.ts): whatever path stopped a
// task, this lets go of its awsvpc network, its metrics series and its exec sessions, then
// marks the task released and deletes the release, in one transaction. A release that fails
// (the provider could not detach) stays and is tried again on the next pass; one filed before
// a crash is found by the next control plane.
import type { Store } from '../store/store.js';
import type { Tasks } from '../ecs/tasks.js';
import { RELEASE_KIND, type TaskRelease } from '../ecs/task-stop.js';

export interface TaskReleaseEffects {
  /** Detaches a task's awsvpc network; null when no instance provider runs (none was attached). */
  network: { detachTaskNetwork(taskId: string): Promise<void> } | null;
  metrics: { remove(cluster: string, task: string, family: string): void };
  /** Ends the task's exec sessions; null when ECS Exec is not served. */
  exec: { onTaskStopped(scope: string, taskArn: string): void } | null;
}

export interface TaskReleasesOptions extends TaskReleaseEffects {
  store: Store;
  tasks: Tasks;
  log: (line: string) => void;
}

export class TaskReleases {
  private readonly inFlight = new Set<string>();

  constructor(private readonly o: TaskReleasesOptions) {}

  /** Releases every filed release not already being released; resolves when this round is done. */
  async run(): Promise<void> {
    const pending = this.o.store.listAll<TaskRelease>(RELEASE_KIND).filter(({ scope, id }) => !this.inFlight.has(`${scope}/${id}`));
    await Promise.all(pending.map(({ scope, body }) => this.release(scope, body)));
  }

  private async release(scope: string, r: TaskRelease): Promise<void> {
    const key = `${scope}/${r.taskId}`;
    this.inFlight.add(key);
    try {
      this.o.exec?.onTaskStopped(scope, r.taskArn);
      this.o.metrics.remove(r.cluster, r.taskId, r.family);
      if (r.network && this.o.network) await this.o.network.detachTaskNetwork(r.taskId);
      this.o.store.tx(() => {
        const t = this.o.tasks.get(scope, r.taskId);
        // Filed again while this one ran (e.g. a network attached after the stop): that newer
        // release stays for the next pass.
        const current = this.o.store.get<TaskRelease>(RELEASE_KIND, scope, r.taskId);
        if (current && current.version !== r.version) return;
        this.o.store.delete(RELEASE_KIND, scope, r.taskId);
        if (t && !t.released) { t.released = true; this.o.tasks.save(scope, t); }
      });
    } catch (e) {
      this.o.log(`releasing task ${r.taskId}: ${(e as Error).message}; trying again on the next pass`);
    } finally {
      this.inFlight.delete(key);
    }
  }
}
