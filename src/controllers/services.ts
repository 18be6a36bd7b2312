// The service controller: each pass, for every service, takes a snapshot of its tasks and
// instances, asks decideService what to do, and applies the answer in one transaction
// (new tasks for the scheduler to place, stops, deployment states, events).
import type { Clock } from '../domain/clock.js';
import { assignProviders } from '../placement/capacity-split.js';
import { zoneOfSubnet } from '../domain/zones.js';
import type { ContainerInstanceRecord } from '../ecs/container-instances.js';
import type { Ecs } from '../ecs/index.js';
import type { DeploymentRecord, ServiceRecord } from '../ecs/services.js';
import type { TaskRecord } from '../ecs/tasks.js';
import type { Store } from '../store/store.js';
import { decideService, type FailedTask, type ServiceTask, type TaskTrouble } from './service-decisions.js';

export interface ServiceControllerOptions {
  store: Store;
  ecs: Ecs;
  clock: Clock;
  /** Real time, for agent connectivity and crash-loop backoff. */
  liveness: Clock;
  log: (line: string) => void;
  /** How long an instance's agent may stay disconnected before its tasks count as lost. */
  heartbeatTimeoutMs: number;
}

const MAX_HISTORY = 20;
const short = (taskId: string) => taskId;

const STOP_REASONS: Record<string, string> = {
  surplus: 'Scaling activity initiated by',
  replaced: 'Task replaced because its container instance is draining; scaling activity initiated by',
  'old-deployment': 'Scaling activity initiated by',
  unhealthy: 'Task failed container health checks; scaling activity initiated by',
  'instance-lost': 'Task replaced because its container instance lost contact with the control plane; scaling activity initiated by',
};

export class ServiceController {
  constructor(private readonly o: ServiceControllerOptions) {}

  /** One pass over every service. Returns true when it changed something. */
  reconcile(): boolean {
    let changed = false;
    for (const { scope, service } of this.o.ecs.services.all()) {
      if (service.status === 'INACTIVE') continue;
      try {
        if (this.reconcileService(scope, service.cluster, service.serviceName)) changed = true;
      } catch (e) {
        this.o.log(`services: ${service.serviceName}: ${(e as Error).stack ?? e}`);
      }
    }
    return changed;
  }

  /** Why a task would be replaced, seen from its instance and its health. */
  private trouble(t: TaskRecord, instances: Map<string, ContainerInstanceRecord>, grace: number, now: number): TaskTrouble | undefined {
    const ci = t.containerInstanceId ? instances.get(t.containerInstanceId) : undefined;
    if (ci) {
      if (ci.ec2State === 'terminated' || ci.status === 'INACTIVE') return 'instance-lost';
      if (!ci.agentConnected && this.o.liveness.now() - (ci.agentLastSeenAt ?? ci.launchedAtReal ?? 0) > this.o.heartbeatTimeoutMs) return 'instance-lost';
      if (ci.status === 'DRAINING') return 'instance-draining';
    }
    if (t.healthStatus === 'UNHEALTHY' && now - (t.startedAt ?? now) >= grace * 1000) return 'unhealthy';
    return undefined;
  }

  private reconcileService(scope: string, cluster: string, name: string): boolean {
    const { ecs, store } = this.o;
    const now = this.o.clock.now();
    return store.tx(() => {
      const s = ecs.services.get(scope, cluster, name)!;
      const before = JSON.stringify(s);
      const all = [...ecs.tasks.ofCluster(scope, cluster), ...ecs.tasks.unaccounted(scope, cluster)].filter((t) => t.serviceName === name);
      const instances = new Map(ecs.containerInstances.ofCluster(scope, cluster).map((ci) => [ci.id, ci] as const));

      // Stops the scheduler or a user did not ask for are failures.
      const failed: FailedTask[] = [];
      for (const t of all) {
        if (t.lastStatus !== 'STOPPED' || t.accounted) continue;
        t.accounted = true;
        ecs.tasks.save(scope, t);
        if (t.stopCode === 'ServiceSchedulerInitiated' || t.stopCode === 'UserInitiated') continue;
        failed.push({ id: t.id, deploymentId: t.deploymentId ?? '', reachedRunning: t.startedAt !== undefined });
        ecs.services.event(s, `(task ${short(t.id)}) stopped: ${t.stoppedReason ?? 'unknown reason'}`, now);
      }
      const grace = s.healthCheckGracePeriodSeconds ?? 0;
      const checked = new Map<string, boolean>();
      const hasHealthChecks = (t: TaskRecord) => {
        const key = `${t.family}:${t.revision}`;
        if (!checked.has(key)) {
          const td = ecs.taskDefinitions.get(scope, t.family, t.revision);
          checked.set(key, (td?.body.containerDefinitions ?? []).some((c: { essential?: boolean; healthCheck?: { command?: string[] } }) =>
            c.essential !== false && c.healthCheck && c.healthCheck.command?.[0] !== 'NONE'));
        }
        return checked.get(key)!;
      };
      const snapshot: ServiceTask[] = all.filter((t) => t.lastStatus !== 'STOPPED').map((t) => {
        const trouble = this.trouble(t, instances, grace, now);
        const awaitingHealth = hasHealthChecks(t) && t.healthStatus !== 'HEALTHY';
        const zone = t.containerInstanceId ? instances.get(t.containerInstanceId)?.availabilityZone : undefined;
        return {
          id: t.id, deploymentId: t.deploymentId ?? '', lastStatus: t.lastStatus, stopping: t.desiredStatus === 'STOPPED',
          createdAt: t.createdAt, ...(trouble ? { trouble } : {}), ...(awaitingHealth ? { awaitingHealth } : {}),
          ...((t.protectedUntil ?? 0) > now ? { protected: true } : {}),
          ...(zone ? { zone } : {}), ...(t.rebalanceZone ? { rebalancing: true } : {}),
        };
      });
      const zones = this.rebalanceZones(scope, s);
      const d = decideService({
        desiredCount: s.desiredCount,
        minimumHealthyPercent: s.deploymentConfiguration.minimumHealthyPercent,
        maximumPercent: s.deploymentConfiguration.maximumPercent,
        circuitBreaker: s.deploymentConfiguration.deploymentCircuitBreaker,
        deployments: s.deployments.map((x) => ({ id: x.id, status: x.status, taskDefinition: x.taskDefinition, rolloutState: x.rolloutState, ...(x.rolloutStateReason ? { rolloutStateReason: x.rolloutStateReason } : {}), failedTasks: x.failedTasks, createdAt: x.createdAt })),
        consecutiveFailures: s.consecutiveFailures,
        nextLaunchAt: s.nextLaunchAt,
        ...(s.lastCompletedTaskDefinition ? { lastCompletedTaskDefinition: s.lastCompletedTaskDefinition } : {}),
        ...(zones.size > 1 ? { rebalanceZones: [...zones.keys()] } : {}),
      }, snapshot, failed, this.o.liveness.now()); // its only use of time is the crash-loop backoff: real time

      // Deployments: keep the decision's view, retire the ones that drained.
      const kept = new Set(d.deployments.map((x) => x.id));
      for (const old of s.deployments.filter((x) => !kept.has(x.id))) {
        old.finishedAt = now;
        if (old.rolloutState === 'IN_PROGRESS') { old.rolloutState = 'FAILED'; old.rolloutStateReason = `Replaced by a newer deployment.`; }
        s.history.unshift(old);
      }
      s.history.length = Math.min(s.history.length, MAX_HISTORY);
      s.deployments = s.deployments.filter((x) => kept.has(x.id)).map((x) => {
        const n = d.deployments.find((y) => y.id === x.id)!;
        const rec: DeploymentRecord = { ...x, rolloutState: n.rolloutState, rolloutStateReason: n.rolloutStateReason ?? x.rolloutStateReason, failedTasks: n.failedTasks };
        if (rec.rolloutState !== x.rolloutState) rec.updatedAt = now;
        if (rec.rolloutState === 'COMPLETED' && x.rolloutState !== 'COMPLETED') s.lastCompletedTaskDefinition = rec.taskDefinition;
        return rec;
      });
      s.consecutiveFailures = d.consecutiveFailures;
      s.nextLaunchAt = d.nextLaunchAt;
      for (const e of d.events) ecs.services.event(s, e, now);
      const primary = s.deployments.find((x) => x.status === 'PRIMARY');
      if (d.rollbackTo && primary) {
        const rolled = ecs.services.startDeployment(s, d.rollbackTo, now, primary.id);
        ecs.services.event(s, `(deployment ${rolled.id}) rolling back from deployment ${primary.id}.`, now);
      }

      if (d.stop.length) {
        for (const x of d.stop) {
          const t = all.find((y) => y.id === x.taskId)!;
          ecs.tasks.requestStop(scope, t, `${STOP_REASONS[x.why]} (deployment ${t.deploymentId}).`, 'ServiceSchedulerInitiated', now);
        }
        ecs.services.event(s, `has stopped ${d.stop.length} running tasks: ${d.stop.map((x) => `(task ${short(x.taskId)})`).join(' ')}.`, now);
      }
      if (d.launch > 0 && primary && !d.rollbackTo) {
        const started = this.launch(scope, s, primary, d.launch, all);
        if (started.length) ecs.services.event(s, `has started ${started.length} tasks: ${started.map((t) => `(task ${short(t.id)})`).join(' ')}.`, now);
      }
      if (d.rebalanceTo && primary && !d.rollbackTo) {
        const provider = primary.capacityProviderStrategy[0]!.capacityProvider;
        const started = ecs.tasks.createForService(scope, now, s, primary, provider, 1, { name: d.rebalanceTo, subnets: zones.get(d.rebalanceTo)! });
        if (started.length) ecs.services.event(s, `has started 1 tasks in ${d.rebalanceTo} to rebalance Availability Zones: (task ${short(started[0]!.id)}).`, now);
      }

      // Placement trouble of waiting tasks, reported once per distinct reason.
      const waiting = all.find((t) => t.lastStatus !== 'STOPPED' && !t.containerInstanceId && t.waitingReason);
      if (waiting?.waitingReason && waiting.waitingReason !== s.lastPlacementMessage) {
        s.lastPlacementMessage = waiting.waitingReason;
        ecs.services.event(s, `was unable to place a task: ${waiting.waitingReason}`, now);
      }

      const live = all.filter((t) => t.lastStatus !== 'STOPPED' && t.desiredStatus === 'RUNNING');
      const steady = s.deployments.length === 1 && s.deployments[0]!.rolloutState === 'COMPLETED'
        && live.length === s.desiredCount && live.every((t) => t.lastStatus === 'RUNNING' && (!hasHealthChecks(t) || t.healthStatus === 'HEALTHY'));
      if (steady && !s.steady) ecs.services.event(s, 'has reached a steady state.', now);
      s.steady = steady;
      if (s.status === 'DRAINING' && all.every((t) => t.lastStatus === 'STOPPED')) {
        s.status = 'INACTIVE';
        for (const x of s.deployments) { x.finishedAt = now; s.history.unshift(x); }
        s.deployments = [];
      }
      const changed = JSON.stringify(s) !== before;
      if (changed) ecs.services.save(scope, s);
      return changed || d.launch > 0 || d.stop.length > 0;
    });
  }

  /**
   * The zones (and their subnets) a service rebalances over: availabilityZoneRebalancing
   * ENABLED and one capacity provider in the primary deployment's strategy; the provider's
   * subnets, narrowed to the service's awsvpc subnets when it names some.
   */
  private rebalanceZones(scope: string, s: ServiceRecord): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const primary = s.deployments.find((d) => d.status === 'PRIMARY');
    if (s.availabilityZoneRebalancing !== 'ENABLED' || !primary || primary.capacityProviderStrategy.length !== 1) return out;
    const p = this.o.ecs.capacityProviders.get(scope, primary.capacityProviderStrategy[0]!.capacityProvider);
    const subnets: string[] = p?.managedInstancesProvider.instanceLaunchTemplate.networkConfiguration.subnets ?? [];
    const allowed: string[] | undefined = primary.networkConfiguration?.awsvpcConfiguration?.subnets;
    const region = scope.split('/')[1]!;
    subnets.forEach((subnet, i) => {
      if (allowed && !allowed.includes(subnet)) return;
      const zone = zoneOfSubnet(region, i);
      out.set(zone, [...(out.get(zone) ?? []), subnet]);
    });
    return out;
  }

  /** Creates tasks for the primary deployment, spread over the strategy's providers (base, then weight). */
  private launch(scope: string, s: ServiceRecord, d: DeploymentRecord, count: number, existing: TaskRecord[]): TaskRecord[] {
    const perProvider: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const t of existing) if (t.lastStatus !== 'STOPPED' && t.desiredStatus === 'RUNNING') perProvider[t.capacityProviderName] = (perProvider[t.capacityProviderName] ?? 0) + 1;
    return assignProviders(d.capacityProviderStrategy, count, perProvider)
      .flatMap((provider) => this.o.ecs.tasks.createForService(scope, this.o.clock.now(), s, d, provider, 1));
  }
}
