// The one way a task record reaches STOPPED, and the release it files on the way.
//
// Every path to STOPPED (a stop before the task reached an agent, an agent's report, a task
// the agent no longer knows, the termination of its instance) calls `markStopped` and then
// `Tasks.save`, which files a TaskRelease in the same transaction. The release controller
// (controllers/task-releases.ts) then lets go of what the task held outside its record: its
// awsvpc network, its metrics series, its exec sessions. A release is a document of its own,
// so it survives the task being reaped and a crash between the stop and the release.
import type { TaskRecord } from './tasks.js';

/** Why: kept only where the task has no reason yet (an agent's report brings its own). */
export interface StopCause { reason?: string; stopCode?: string; now: number }

/** Pure: the task's record as STOPPED (reasons and times already set are kept). */
export function markStopped(t: TaskRecord, cause: StopCause): void {
  t.desiredStatus = 'STOPPED';
  t.lastStatus = 'STOPPED';
  if (cause.reason !== undefined) t.stoppedReason ??= cause.reason;
  if (cause.stopCode !== undefined) t.stopCode ??= cause.stopCode;
  t.stoppingAt ??= cause.now;
  t.stoppedAt ??= cause.now;
  t.executionStoppedAt ??= t.stoppedAt;
  for (const c of t.containers) if (c.lastStatus !== 'STOPPED') c.lastStatus = 'STOPPED';
}

/** What a stopped task still holds, filed when it stops; self-contained (the task may be reaped first). */
export interface TaskRelease {
  taskId: string;
  taskArn: string;
  cluster: string;
  family: string;
  /** The awsvpc network was attached (or may be): detach it. */
  network: boolean;
  filedAt: number;
  /** The task's version when filed: a release filed again meanwhile (a network attached) is newer. */
  version: number;
}

export const RELEASE_KIND = 'task-release';

/** Pure: the release a stopped task needs, or none when it has already been released. */
export function releaseFor(t: TaskRecord): TaskRelease | undefined {
  if (t.lastStatus !== 'STOPPED' || t.released) return undefined;
  return { taskId: t.id, taskArn: t.taskArn, cluster: t.cluster, family: t.family, network: t.network !== undefined, filedAt: t.stoppedAt ?? 0, version: t.version };
}
