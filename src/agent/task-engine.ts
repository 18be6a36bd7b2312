// The agent's task state machine as pure functions: given what the control plane wants
// and what the runtime shows, decide the next steps and the status to report.
// One worker owns each task and runs these steps; nothing here does I/O.
import type { ContainerReport, ContainerSpec, TaskReport, TaskSpec, TaskStatus } from './protocol.js';
import { laterStatus } from './protocol.js';

export type ContainerPhase = 'none' | 'pulling' | 'pulled' | 'created' | 'running' | 'stopped' | 'removed';

export interface ObservedContainer {
  name: string;
  phase: ContainerPhase;
  runtimeId?: string;
  imageDigest?: string;
  exitCode?: number;
  reason?: string;
  health?: 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';
  /** A stop (TERM, then KILL after the timeout) was sent. */
  stopSent?: boolean;
}

export interface TaskState {
  spec: TaskSpec;
  containers: Record<string, ObservedContainer>;
  /** Set once the task has decided to stop, with why. */
  stopping?: { reason: string; code: string };
  /** The last status reported to the control plane. */
  reported: TaskStatus;
  cleanedUp: boolean;
  times: { pullStartedAt?: number; pullStoppedAt?: number; startedAt?: number; stoppingAt?: number; executionStoppedAt?: number; stoppedAt?: number };
}

export type Step =
  | { kind: 'pull'; container: string }
  | { kind: 'create'; container: string }
  | { kind: 'start'; container: string }
  | { kind: 'stop'; container: string; timeoutSeconds: number }
  | { kind: 'cleanup' }
  | { kind: 'fail'; reason: string; code: string };

export function initialState(spec: TaskSpec): TaskState {
  const containers: Record<string, ObservedContainer> = {};
  for (const c of spec.containers) containers[c.name] = { name: c.name, phase: 'none' };
  return { spec, containers, reported: 'PENDING', cleanedUp: false, times: {} };
}

const isUp = (o: ObservedContainer) => o.phase === 'running';
const isDone = (o: ObservedContainer) => o.phase === 'stopped' || o.phase === 'removed';
const notStarted = (o: ObservedContainer) => o.phase === 'none' || o.phase === 'pulling' || o.phase === 'pulled' || o.phase === 'created';

/** Whether a container's dependencies allow it to start now; 'never' if they cannot any more. */
export function dependenciesMet(c: ContainerSpec, s: TaskState): boolean | 'never' {
  for (const d of c.dependsOn) {
    const o = s.containers[d.containerName];
    if (!o) return 'never';
    switch (d.condition) {
      case 'START': if (!(isUp(o) || isDone(o))) return false; break;
      case 'COMPLETE': if (!isDone(o)) return false; break;
      case 'SUCCESS': if (!isDone(o)) return false; if (o.exitCode !== 0) return 'never'; break;
      case 'HEALTHY':
        if (isDone(o)) return 'never';
        if (o.health !== 'HEALTHY') return false;
        break;
    }
  }
  return true;
}

/** The next steps for a task; empty when it only has to wait for an event. */
export function nextSteps(s: TaskState): Step[] {
  const steps: Step[] = [];
  const wantsStop = s.spec.desiredStatus === 'STOPPED' || s.stopping !== undefined;
  if (!wantsStop) {
    for (const c of s.spec.containers) {
      const o = s.containers[c.name]!;
      if (c.essential && isDone(o)) {
        return [{ kind: 'fail', reason: `Essential container in task exited`, code: 'EssentialContainerExited' }];
      }
    }
    for (const c of s.spec.containers) {
      const o = s.containers[c.name]!;
      if (o.phase === 'none') { steps.push({ kind: 'pull', container: c.name }); continue; }
      if (o.phase === 'pulled' || o.phase === 'created') {
        const met = dependenciesMet(c, s);
        if (met === 'never') return [{ kind: 'fail', reason: `Container ${c.name} cannot start: a container it depends on did not reach the required condition`, code: 'TaskFailedToStart' }];
        if (met) steps.push(o.phase === 'pulled' ? { kind: 'create', container: c.name } : { kind: 'start', container: c.name });
      }
    }
    if (s.spec.containers.every((c) => isDone(s.containers[c.name]!))) {
      return [{ kind: 'fail', reason: 'All containers in the task exited', code: 'EssentialContainerExited' }];
    }
    return steps;
  }
  // Stopping: stop what runs (reverse dependency order is approximated by stopping all at once).
  for (const c of s.spec.containers) {
    const o = s.containers[c.name]!;
    if (isUp(o) && !o.stopSent) steps.push({ kind: 'stop', container: c.name, timeoutSeconds: c.stopTimeoutSeconds });
  }
  const settled = s.spec.containers.every((c) => { const o = s.containers[c.name]!; return isDone(o) || notStarted(o); });
  if (settled && !s.cleanedUp && steps.length === 0 && !s.spec.containers.some((c) => s.containers[c.name]!.phase === 'pulling')) {
    steps.push({ kind: 'cleanup' });
  }
  return steps;
}

/** The status the task is in, from what is observed (never earlier than already reported). */
export function currentStatus(s: TaskState): TaskStatus {
  let status: TaskStatus;
  const obs = s.spec.containers.map((c) => ({ c, o: s.containers[c.name]! }));
  if (s.cleanedUp) status = 'STOPPED';
  else if (s.spec.desiredStatus === 'STOPPED' || s.stopping) {
    const anyUp = obs.some(({ o }) => isUp(o));
    const anyStopSent = obs.some(({ o }) => o.stopSent);
    status = !anyUp ? 'DEPROVISIONING' : anyStopSent ? 'STOPPING' : 'DEACTIVATING';
  } else if (obs.filter(({ c }) => c.essential).every(({ o }) => isUp(o))) status = 'RUNNING';
  else if (obs.some(({ o }) => o.phase === 'created' || isUp(o))) status = 'ACTIVATING';
  else status = 'PENDING';
  return laterStatus(s.reported, status);
}

export function report(s: TaskState, status: TaskStatus): TaskReport {
  const containers: ContainerReport[] = s.spec.containers.map((c) => {
    const o = s.containers[c.name]!;
    const last = isUp(o) ? 'RUNNING' : isDone(o) || (status === 'STOPPED') ? 'STOPPED' : 'PENDING';
    return {
      name: c.name,
      lastStatus: last,
      ...(o.runtimeId ? { runtimeId: o.runtimeId } : {}),
      ...(o.imageDigest ? { imageDigest: o.imageDigest } : {}),
      ...(o.exitCode !== undefined ? { exitCode: o.exitCode } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
      ...(o.health ? { healthStatus: o.health } : {}),
      ...(isUp(o) && c.portMappings.length ? {
        networkBindings: c.portMappings.map((p) => ({
          bindIP: s.spec.network?.ipv4Address ?? '0.0.0.0', containerPort: p.containerPort, hostPort: p.hostPort, protocol: p.protocol,
        })),
      } : {}),
    };
  });
  const checked = s.spec.containers.filter((c) => c.essential && c.healthCheck && c.healthCheck.command[0] !== 'NONE');
  const healthStatus = checked.some((c) => s.containers[c.name]!.health === 'UNHEALTHY') ? 'UNHEALTHY'
    : checked.length > 0 && checked.every((c) => s.containers[c.name]!.health === 'HEALTHY') ? 'HEALTHY' : 'UNKNOWN';
  const stop = s.stopping ?? (s.spec.desiredStatus === 'STOPPED' ? { reason: s.spec.stopReason ?? 'Task stopped', code: s.spec.stopCode ?? 'UserInitiated' } : undefined);
  return {
    taskArn: s.spec.taskArn,
    lastStatus: status,
    healthStatus,
    containers,
    ...(stop ? { stoppedReason: stop.reason, stopCode: stop.code } : {}),
    ...s.times,
  };
}
