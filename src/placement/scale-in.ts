// Scale-in decisions (ECS Managed Instances' infrastructure optimisation), pure.
//
// scaleInAfter (seconds): null/undefined → DEFAULT_SCALE_IN_AFTER_S (300 s: long enough that
// a burst of short tasks reuses the instance, short enough to stop paying for it soon);
// -1 → off; 0–3600 → as given (0 = as soon as the condition holds).
//
// Definitions (per capacity provider; `instances` are that provider's):
// - idle: ACTIVE, and no task that is not STOPPED. Its timer starts at the later of
//   `idleSince` (when it last became empty, or registered) and `lastTaskStartedAt`.
//   Due → deregister.
// - underutilised: ACTIVE with an agent connected, at least one task, every task a service
//   task (no standalone task) without scale-in protection, utilisation — the larger of
//   used/registered CPU and memory — below UNDERUTILISED_BELOW (50%), and ALL its tasks fit
//   on the provider's other ACTIVE, non-idle instances without launching anything (checked
//   by placing them there with the placement engine, each under its own constraints, the
//   instance itself and idle instances excluded). The controller keeps `underutilisedSince`
//   for the ids in `underutilised` (clearing it for the others); the timer starts at the
//   later of that and `lastTaskStartedAt`. Due → drain (service tasks move start-before-stop;
//   the instance is deregistered once empty).
// - DRAINING with no task left → deregister.
// Drains are limited (maxDrains per pass, default 1, lowest utilisation first) and skipped
// while the provider has tasks waiting for capacity; an instance chosen to drain takes the
// capacity its tasks will use out of the picture for the next candidates.
import { PlacementEngine } from './engine.js';
import type { InstanceSnapshot, TaskRequest } from './types.js';

export const DEFAULT_SCALE_IN_AFTER_S = 300;
export const UNDERUTILISED_BELOW = 0.5;

export interface ScaleInTask {
  /** The task's needs, as for placement (its constraints decide where it may move). */
  request: TaskRequest;
  /** Not started by a service: the instance is never drained for scale-in. */
  standalone: boolean;
  /** Task scale-in protection. */
  protected?: boolean;
}

export interface ScaleInInstance {
  /** Usage includes the tasks below. */
  snapshot: InstanceSnapshot;
  /** Tasks on the instance that are not STOPPED. */
  tasks: readonly ScaleInTask[];
  /** When it last became empty (or registered, if it never ran a task), epoch ms. */
  idleSince?: number;
  /** When the controller first saw it underutilised (in an unbroken run), epoch ms. */
  underutilisedSince?: number;
  /** When a task last started on it: restarts both timers. */
  lastTaskStartedAt?: number;
}

export interface ScaleInInput {
  instances: readonly ScaleInInstance[];
  /** infrastructureOptimization.scaleInAfter, seconds. */
  scaleInAfter: number | null | undefined;
  now: number;
  /** Tasks of the provider waiting for capacity: no drains while there are any. */
  pendingTasks?: number;
  maxDrains?: number;
  underutilisedBelow?: number;
}

export interface ScaleInDecision {
  deregister: { instanceId: string; reason: string }[];
  drain: { instanceId: string; reason: string; moves: { taskId: string; toInstanceId: string }[] }[];
  /** ACTIVE instances with no tasks (whether or not their timer ran out). */
  idle: string[];
  /** Instances underutilised right now (keep/start their underutilisedSince; clear the others'). */
  underutilised: string[];
  /** The earliest time a running timer runs out, if any: look again then. */
  nextCheckAt?: number;
}

export function scaleInDelayMs(scaleInAfter: number | null | undefined): number | undefined {
  if (scaleInAfter === -1) return undefined;
  const s = scaleInAfter === null || scaleInAfter === undefined ? DEFAULT_SCALE_IN_AFTER_S : scaleInAfter;
  return Math.max(0, Math.min(3600, s)) * 1000;
}

function utilisation(s: InstanceSnapshot): number {
  return Math.max(s.registeredCpu > 0 ? s.usedCpu / s.registeredCpu : 1, s.registeredMemory > 0 ? s.usedMemory / s.registeredMemory : 1);
}

export function decideScaleIn(input: ScaleInInput): ScaleInDecision {
  const out: ScaleInDecision = { deregister: [], drain: [], idle: [], underutilised: [] };
  const delay = scaleInDelayMs(input.scaleInAfter);
  if (delay === undefined) return out;
  const now = input.now;
  let next = Infinity;
  const due = (since: number | undefined, started: number | undefined): boolean => {
    const at = Math.max(since ?? now, started ?? -Infinity) + delay;
    if (at <= now) return true;
    next = Math.min(next, at);
    return false;
  };

  const idle = new Set<string>();
  for (const i of input.instances) {
    const s = i.snapshot;
    if (i.tasks.length > 0) continue;
    if (s.status === 'DRAINING') { out.deregister.push({ instanceId: s.id, reason: 'Drained: no task left on the instance.' }); continue; }
    if (s.status !== 'ACTIVE') continue;
    idle.add(s.id);
    out.idle.push(s.id);
    if (due(i.idleSince ?? s.registeredAt, i.lastTaskStartedAt)) {
      out.deregister.push({ instanceId: s.id, reason: `Idle for ${delay / 1000} s (infrastructure optimisation).` });
    }
  }

  const below = input.underutilisedBelow ?? UNDERUTILISED_BELOW;
  const candidates = input.instances.filter((i) => {
    const s = i.snapshot;
    return s.status === 'ACTIVE' && s.agentConnected && i.tasks.length > 0 && i.tasks.every((t) => !t.standalone && !t.protected)
      && utilisation(s) < below;
  }).sort((a, b) => utilisation(a.snapshot) - utilisation(b.snapshot) || a.snapshot.id.localeCompare(b.snapshot.id));

  if (candidates.length > 0) {
    const engine = new PlacementEngine(input.instances.map((i) => i.snapshot));
    for (const id of idle) engine.cordon(id);
    const maxDrains = (input.pendingTasks ?? 0) > 0 ? 0 : input.maxDrains ?? 1;
    for (const c of candidates) {
      const id = c.snapshot.id;
      engine.cordon(id);
      const moves: { taskId: string; toInstanceId: string; req: TaskRequest }[] = [];
      let fits = true;
      for (const t of c.tasks) {
        const { pinnedInstanceId: _pinned, ...rest } = t.request;
        const req: TaskRequest = rest;
        const d = engine.placeAndReserve(req);
        if (!d.placed) { fits = false; break; }
        moves.push({ taskId: t.request.id, toInstanceId: d.instanceId, req });
      }
      if (fits) out.underutilised.push(id);
      const drainNow = fits && out.drain.length < maxDrains && due(c.underutilisedSince ?? now, c.lastTaskStartedAt);
      if (drainNow) {
        out.drain.push({
          instanceId: id,
          reason: `Underutilised (below ${Math.round(below * 100)}% of CPU and memory) for ${delay / 1000} s; its tasks fit on the other instances.`,
          moves: moves.map(({ taskId, toInstanceId }) => ({ taskId, toInstanceId })),
        });
        continue;
      }
      for (const m of moves) engine.release(m.req, m.toInstanceId);
      engine.uncordon(id);
    }
  }
  if (Number.isFinite(next)) out.nextCheckAt = next;
  return out;
}
