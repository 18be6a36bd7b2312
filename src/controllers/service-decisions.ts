// The service scheduler's decisions as one pure function over a snapshot of a service and
// its tasks: how many tasks to start for the primary deployment, which tasks to stop, and
// how the deployments' rollout states change. It never exceeds maximumPercent and never
// drops the tasks that serve below minimumHealthyPercent (start before stop).

import type { RolloutState } from '../ecs/services.js';

export type { RolloutState };

export interface DeploymentState {
  id: string;
  status: 'PRIMARY' | 'ACTIVE';
  taskDefinition: string;
  rolloutState: RolloutState;
  rolloutStateReason?: string;
  failedTasks: number;
  createdAt: number;
}

/** Why a task should be replaced even though it may still run. */
export type TaskTrouble = 'unhealthy' | 'instance-draining' | 'instance-lost';

export interface ServiceTask {
  id: string;
  deploymentId: string;
  lastStatus: string;
  /** The scheduler (or a user) asked it to stop. */
  stopping: boolean;
  trouble?: TaskTrouble;
  /** Its essential containers have health checks that have not passed yet. */
  awaitingHealth?: boolean;
  /** Task scale-in protection: not stopped for scale-in, deployments or drains. */
  protected?: boolean;
  /** The availability zone of its instance, once placed. */
  zone?: string;
  /** Started by AZ rebalancing (into the zone it is confined to). */
  rebalancing?: boolean;
  createdAt: number;
}

export interface ServiceSnapshot {
  desiredCount: number;
  minimumHealthyPercent: number;
  maximumPercent: number;
  circuitBreaker: { enable: boolean; rollback: boolean };
  deployments: DeploymentState[];
  /** Consecutive task failures, and when the next launch may happen (crash-loop backoff). */
  consecutiveFailures: number;
  nextLaunchAt: number;
  /** The task definition of the last deployment that COMPLETED (for rollback). */
  lastCompletedTaskDefinition?: string;
  /** The zones the service may use, when availabilityZoneRebalancing is ENABLED. */
  rebalanceZones?: string[];
}

export interface FailedTask { id: string; deploymentId: string; reachedRunning: boolean }

export interface ServiceDecision {
  launch: number;
  stop: { taskId: string; why: 'surplus' | 'replaced' | 'unhealthy' | 'instance-lost' | 'old-deployment' }[];
  deployments: DeploymentState[];
  consecutiveFailures: number;
  nextLaunchAt: number;
  /** A new PRIMARY deployment to create (rollback), with the task definition to use. */
  rollbackTo?: string;
  /** AZ rebalancing: start one extra task confined to this zone. */
  rebalanceTo?: string;
  events: string[];
}

export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 5 * 60_000;
/** Failed launches tolerated before throttling starts. */
export const FREE_FAILURES = 3;

/** ECS: half the desired count, at least 3 and at most 200. */
export function circuitBreakerThreshold(desired: number): number {
  return Math.min(200, Math.max(3, Math.ceil(desired * 0.5)));
}

export function maxTasks(desired: number, maximumPercent: number): number {
  return Math.floor((desired * maximumPercent) / 100);
}

export function minHealthy(desired: number, minimumHealthyPercent: number): number {
  return Math.ceil((desired * minimumHealthyPercent) / 100);
}

/** A task that counts as serving: running, not stopping and not in trouble that stops it serving. */
export function isServing(t: ServiceTask): boolean {
  return t.lastStatus === 'RUNNING' && !t.stopping && !t.awaitingHealth && t.trouble !== 'unhealthy' && t.trouble !== 'instance-lost';
}

export function decideService(s: ServiceSnapshot, tasks: ServiceTask[], newlyFailed: FailedTask[], now: number): ServiceDecision {
  const events: string[] = [];
  const deployments = s.deployments.map((d) => ({ ...d }));
  let consecutiveFailures = s.consecutiveFailures;
  let nextLaunchAt = s.nextLaunchAt;
  let rollbackTo: string | undefined;
  const primary = deployments.find((d) => d.status === 'PRIMARY');

  // Failures feed the circuit breaker and the crash-loop backoff.
  for (const f of newlyFailed) {
    const d = deployments.find((x) => x.id === f.deploymentId);
    if (d) d.failedTasks++;
    consecutiveFailures++;
    if (consecutiveFailures >= FREE_FAILURES) {
      nextLaunchAt = now + Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (consecutiveFailures - FREE_FAILURES));
    }
  }
  if (tasks.some((t) => t.lastStatus === 'RUNNING' && !t.trouble)) {
    // Something runs well: the service is not crash-looping (failures of this pass still count).
    if (newlyFailed.length === 0) { consecutiveFailures = 0; nextLaunchAt = 0; }
  }

  if (primary && primary.rolloutState === 'IN_PROGRESS' && s.circuitBreaker.enable
    && primary.failedTasks >= circuitBreakerThreshold(s.desiredCount)) {
    primary.rolloutState = 'FAILED';
    primary.rolloutStateReason = `ECS deployment circuit breaker: tasks failed to start.`;
    events.push(`(deployment ${primary.id}) deployment failed: tasks failed to start.`);
    if (s.circuitBreaker.rollback && s.lastCompletedTaskDefinition && s.lastCompletedTaskDefinition !== primary.taskDefinition) {
      rollbackTo = s.lastCompletedTaskDefinition;
      events.push(`(deployment ${primary.id}) rolling back to the last completed deployment's task definition ${rollbackTo}.`);
    }
  }

  const desired = s.desiredCount;
  const active = tasks.filter((t) => !t.stopping);
  const stop: ServiceDecision['stop'] = [];
  const stopping = new Set<string>();
  const doStop = (t: ServiceTask, why: ServiceDecision['stop'][number]['why']) => {
    if (stopping.has(t.id)) return;
    stopping.add(t.id);
    stop.push({ taskId: t.id, why });
  };

  // Tasks that cannot serve any more go at once: stopping them lowers nothing that serves.
  for (const t of active) {
    if (t.trouble === 'unhealthy') doStop(t, 'unhealthy');
    else if (t.trouble === 'instance-lost') doStop(t, 'instance-lost');
  }
  const live = active.filter((t) => !stopping.has(t.id));
  const primaryId = rollbackTo ? undefined : primary?.id;
  const isPrimary = (t: ServiceTask) => primaryId !== undefined && t.deploymentId === primaryId;

  // Start: the primary deployment wants `desired` tasks that will stay; every live task
  // counts against maximumPercent (tasks on draining instances too, until replaced).
  const keepers = live.filter((t) => isPrimary(t) && t.trouble !== 'instance-draining');
  const ceiling = Math.max(maxTasks(desired, s.maximumPercent), desired > 0 && s.maximumPercent >= 100 ? desired : 0);
  // A deployment the circuit breaker failed launches nothing more; a crash loop waits.
  const mayLaunch = primaryId !== undefined && !(primary!.rolloutState === 'FAILED' && s.circuitBreaker.enable) && now >= nextLaunchAt;
  const launch = mayLaunch ? Math.max(0, Math.min(desired - keepers.length, ceiling - live.length)) : 0;

  // Stop, in order: surplus and old tasks that do not serve yet, then serving ones while
  // the number that serves stays at or above minimumHealthyPercent.
  const floor = minHealthy(desired, s.minimumHealthyPercent);
  // A rebalancing task on its way is wanted, not surplus; once it serves, the surplus comes
  // from the fullest zone (newest first), which is also how a scale-in keeps zones even.
  const pool = keepers.filter((t) => !(t.rebalancing && !isServing(t)));
  const inZone = new Map<string, number>();
  for (const t of pool) if (t.zone) inZone.set(t.zone, (inZone.get(t.zone) ?? 0) + 1);
  const fullness = (t: ServiceTask) => (t.zone ? inZone.get(t.zone)! : 0);
  const surplusPrimary = pool.length > desired
    ? pool.slice().sort((a, b) => fullness(b) - fullness(a) || b.createdAt - a.createdAt).slice(0, pool.length - desired) : [];
  const candidates: { t: ServiceTask; why: ServiceDecision['stop'][number]['why'] }[] = [
    ...live.filter((t) => !isPrimary(t) && !isServing(t)).map((t) => ({ t, why: 'old-deployment' as const })),
    ...surplusPrimary.filter((t) => !isServing(t)).map((t) => ({ t, why: 'surplus' as const })),
    ...surplusPrimary.filter((t) => isServing(t)).map((t) => ({ t, why: 'surplus' as const })),
    ...live.filter((t) => !isPrimary(t) && isServing(t)).sort((a, b) => a.createdAt - b.createdAt).map((t) => ({ t, why: 'old-deployment' as const })),
    ...live.filter((t) => isPrimary(t) && t.trouble === 'instance-draining').map((t) => ({ t, why: 'replaced' as const })),
  ];
  let serving = live.filter(isServing).length;
  for (const { t, why } of candidates) {
    if (stopping.has(t.id) || t.protected) continue;
    if (isServing(t)) {
      if (serving - 1 < floor) continue;
      serving--;
    }
    doStop(t, why);
  }

  // AZ rebalancing (ECS's availabilityZoneRebalancing): when nothing else is changing and the
  // primary alone serves exactly the desired count, zones more than one task apart get one
  // more task in the emptiest zone (start before stop); the surplus rule above then stops
  // one in the fullest. One move at a time, within maximumPercent.
  let rebalanceTo: string | undefined;
  const zones = s.rebalanceZones ?? [];
  if (zones.length > 1 && primary && primaryId && primary.rolloutState === 'COMPLETED' && launch === 0 && stop.length === 0 && mayLaunch
    && live.length === desired && live.length < ceiling && live.every((t) => isPrimary(t) && isServing(t) && t.zone !== undefined)) {
    const counts = zones.map((z) => live.filter((t) => t.zone === z).length);
    const low = Math.min(...counts);
    const high = Math.max(...counts);
    if (high - low >= 2) {
      rebalanceTo = zones[counts.indexOf(low)]!;
      events.push(`is not AZ balanced with ${zones.map((z, i) => `${counts[i]} tasks in ${z}`).join(', ')}. AZ Rebalancing in progress.`);
    }
  }

  // Rollout: complete once the primary alone serves the desired count.
  if (primary && primaryId && primary.rolloutState === 'IN_PROGRESS') {
    const others = live.filter((t) => !isPrimary(t) && !stopping.has(t.id));
    const servingPrimary = keepers.filter((t) => isServing(t) && !stopping.has(t.id)).length;
    if (others.length === 0 && servingPrimary === desired) {
      primary.rolloutState = 'COMPLETED';
      primary.rolloutStateReason = 'ECS deployment completed.';
      events.push(`(deployment ${primary.id}) deployment completed.`);
    }
  }
  // Deployments with no tasks left, other than the primary, are done.
  const remaining = deployments.filter((d) => d.status === 'PRIMARY' || live.some((t) => t.deploymentId === d.id && !stopping.has(t.id)));
  return { launch, stop, deployments: remaining, consecutiveFailures, nextLaunchAt, ...(rollbackTo ? { rollbackTo } : {}), ...(rebalanceTo ? { rebalanceTo } : {}), events };
}
