// The lifecycle controller: every pass, for every instance, it gathers the facts (age,
// windows, pending patches, health, the provider's disruption budget), asks nextAction what
// to do, and applies it — drains, forced stops at the hard deadline, repairs — recording
// every decision as an event with its reason.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { ContainerInstanceRecord, HealthState } from '../ecs/container-instances.js';
import type { Ecs } from '../ecs/index.js';
import type { CapacityProviderRecord } from '../ecs/capacity-providers.js';
import { windowIntervals, type Ec2 } from '../ec2/index.js';
import type { Store } from '../store/store.js';
import { DEFAULT_POLICY, nextAction, type LifecycleAction, type LifecyclePolicy } from './decide.js';
import type { PlatformVersions } from './platform-versions.js';

import { DISRUPTION_BUDGET_TAG } from '../domain/provider-settings.js';
/** By default a provider drains at most 10% of its instances at once (at least one). */
export const DEFAULT_BUDGET = '10%';

export interface LifecycleEvent {
  id: string;
  time: number;
  cluster: string;
  capacityProvider: string;
  instanceId: string;
  containerInstanceArn: string;
  action: string;
  reason: string;
  message: string;
}

export interface LifecycleOptions {
  store: Store;
  ecs: Ecs;
  ec2: Ec2;
  platforms: PlatformVersions;
  clock: Clock;
  liveness: Clock;
  log: (line: string) => void;
  heartbeatTimeoutMs: number;
  policy?: Partial<Pick<LifecyclePolicy, 'maxLifetimeMs' | 'drainGraceMs'>>;
  /** Terminates an instance now (repair). */
  terminate: (scope: string, id: string, reason: string) => void;
  /** Whether the instance's host still runs it (the provider's view, independent of its agent). */
  hostAlive: (ec2InstanceId: string) => Promise<boolean>;
  /** How long (real time) a failed check must last before a repair, when nothing else confirms it. */
  repairGrace: RepairGrace;
  /** Asks for a pass at a time on `clock`. */
  wakeAt: (at: number) => void;
}

const EVENT_KIND = 'lifecycle-event';

export interface RepairGrace {
  /** An agent away this long past the heartbeat timeout is replaced even while its host runs the instance. */
  agentMs: number;
  /** A runtime failure that lasts this long is replaced (a single failed check is not). */
  runtimeMs: number;
}

/** 10 minutes for a silent agent on a live host, 1 minute for a failing runtime. */
export const DEFAULT_REPAIR_GRACE: RepairGrace = { agentMs: 600_000, runtimeMs: 60_000 };

/** How often the host of an instance whose agent is away is asked whether it still runs it. */
const HOST_PROBE_MS = 1_000;
/**
 * Like Karpenter's node repair: when more than this share of a provider's instances look
 * impaired at once (and more than one), the cause is more likely the control plane, the
 * host or the network than the instances, and replacing them all would take the services
 * down with them; repairs wait until the share falls again.
 */
export const REPAIR_PAUSE_SHARE = 0.2;

/** Whether repairs of a provider's instances pause: more than one, and more than the share, impaired. */
export function repairPaused(impaired: number, instances: number): boolean {
  return impaired > 1 && impaired > instances * REPAIR_PAUSE_SHARE;
}
const VOLUNTARY = new Set(['window', 'patch', 'critical-patch']);

/** `N` instances or `N%` of the provider's instances; at least one. */
export function budgetOf(tagValue: string | undefined, instances: number): number {
  const text = (tagValue ?? DEFAULT_BUDGET).trim();
  const pct = /^(\d{1,3})%$/.exec(text);
  if (pct) return Math.max(1, Math.ceil((instances * Number(pct[1])) / 100));
  const n = Number(text);
  return Number.isInteger(n) && n >= 1 ? n : Math.max(1, Math.ceil(instances / 10));
}

export class LifecycleController {
  /** Providers (scope\0name) whose repairs are paused. */
  private readonly paused = new Set<string>();
  /** The provider's last answer about instances whose agent is away (ec2 id → alive). */
  private readonly hosts = new Map<string, { alive?: boolean; probedAt: number; probing: boolean }>();
  /** Since when (real time) an instance's runtime has been reported impaired. */
  private readonly runtimeImpairedSince = new Map<string, number>();

  constructor(private readonly o: LifecycleOptions) {}

  private get policy(): Omit<LifecyclePolicy, 'autoRepair'> {
    return { maxLifetimeMs: this.o.policy?.maxLifetimeMs ?? DEFAULT_POLICY.maxLifetimeMs, drainGraceMs: this.o.policy?.drainGraceMs ?? DEFAULT_POLICY.drainGraceMs };
  }

  record(scope: string, ci: ContainerInstanceRecord, action: string, reason: string, message: string): void {
    const time = this.o.clock.now();
    const e: LifecycleEvent = {
      id: `${String(time).padStart(15, '0')}-${randomBytes(4).toString('hex')}`, time,
      cluster: ci.cluster, capacityProvider: ci.capacityProviderName, instanceId: ci.ec2InstanceId,
      containerInstanceArn: ci.containerInstanceArn, action, reason, message,
    };
    this.o.store.put(EVENT_KIND, scope, e.id, e, ci.cluster);
    this.o.log(`lifecycle: ${ci.ec2InstanceId} ${action} (${reason}): ${message}`);
  }

  events(scope: string, filter: { cluster?: string; instanceId?: string }, after?: string, limit = 100): LifecycleEvent[] {
    return this.o.store.list<LifecycleEvent>(EVENT_KIND, scope, { desc: true, ...(after ? { after } : {}), ...(filter.cluster ? { parent: filter.cluster } : {}) })
      .filter((e) => !filter.instanceId || e.instanceId === filter.instanceId).slice(0, limit);
  }

  /** The host's last word on an instance (undefined until it answered); asks again when stale. */
  private hostAlive(ec2InstanceId: string): boolean | undefined {
    const now = this.o.liveness.now();
    let h = this.hosts.get(ec2InstanceId);
    if (!h) { h = { probedAt: 0, probing: false }; this.hosts.set(ec2InstanceId, h); }
    if (!h.probing && now - h.probedAt >= HOST_PROBE_MS) {
      const entry = h;
      entry.probing = true;
      void this.o.hostAlive(ec2InstanceId).then((alive) => { entry.alive = alive; }, () => { /* unknown: keep the last answer */ })
        .finally(() => { entry.probing = false; entry.probedAt = this.o.liveness.now(); });
    }
    return h.alive;
  }

  /**
   * Health as DescribeContainerInstances shows it, from the agent's connection and its runtime
   * report; an impairment is `unconfirmed` while the instance may still be fine, so that a
   * network disconnect or a tenant exhausting its own limits does not get it replaced.
   */
  private health(ci: ContainerInstanceRecord): { impaired?: { check: string; reason: string; unconfirmed?: string }; details: ContainerInstanceRecord['health'] } {
    const now = this.o.clock.now();
    const realNow = this.o.liveness.now();
    const grace = this.o.repairGrace;
    const away = realNow - (ci.agentLastSeenAt ?? ci.launchedAtReal ?? 0);
    const agent: HealthState = ci.status === 'REGISTERING' ? 'INITIALIZING' : !ci.agentConnected && away > this.o.heartbeatTimeoutMs ? 'IMPAIRED' : 'OK';
    const runtime: HealthState = ci.status === 'REGISTERING' ? 'INITIALIZING' : ci.runtimeHealth?.status === 'IMPAIRED' ? 'IMPAIRED' : 'OK';
    if (runtime === 'IMPAIRED') { if (!this.runtimeImpairedSince.has(ci.id)) this.runtimeImpairedSince.set(ci.id, realNow); } else this.runtimeImpairedSince.delete(ci.id);
    if (agent === 'OK') this.hosts.delete(ci.ec2InstanceId);
    const prev = new Map(ci.health.details.map((d) => [d.type, d] as const));
    const detail = (type: string, status: HealthState, statusReason?: string) => {
      const p = prev.get(type);
      return { type, status, lastUpdated: now, lastStatusChange: p && p.status === status ? p.lastStatusChange : now, ...(statusReason ? { statusReason } : {}) };
    };
    const agentReason = agent === 'IMPAIRED' ? `The instance agent has not been connected for ${Math.round(away / 1000)} s (heartbeat timeout ${this.o.heartbeatTimeoutMs / 1000} s).` : undefined;
    const runtimeReason = runtime === 'IMPAIRED' ? ci.runtimeHealth?.reason ?? 'The container runtime is failing.' : undefined;
    const details = [detail('AGENT_CONNECTIVITY', agent, agentReason), detail('CONTAINER_RUNTIME', runtime, runtimeReason)];
    // A stolen credential is the thief's doing, not the instance's: shown, never a repair.
    const misuse = ci.credentialMisuse;
    if (misuse) details.push(detail('AGENT_CREDENTIAL', 'INSUFFICIENT_DATA', `The instance credential was misused ${misuse.count} time(s), last at ${new Date(misuse.at).toISOString()} from ${misuse.sourceIp}: ${misuse.reason}`));
    const overall: HealthState = details.some((d) => d.status === 'IMPAIRED') ? 'IMPAIRED' : details.some((d) => d.status === 'INITIALIZING') ? 'INITIALIZING' : 'OK';
    let impaired: { check: string; reason: string; unconfirmed?: string } | undefined;
    if (agent === 'IMPAIRED') {
      const host = this.hostAlive(ci.ec2InstanceId);
      const overdue = away - this.o.heartbeatTimeoutMs >= grace.agentMs;
      impaired = host === false ? { check: 'AGENT_CONNECTIVITY', reason: `${agentReason!} Its host no longer runs the instance.` }
        : overdue ? { check: 'AGENT_CONNECTIVITY', reason: `${agentReason!} The instance still runs, but its agent stayed away for longer than the repair grace (${grace.agentMs / 1000} s).` }
          : {
            check: 'AGENT_CONNECTIVITY', reason: agentReason!,
            unconfirmed: `The instance still runs (${host === undefined ? 'its host is being asked' : 'its host says so'}); only its agent is unreachable, as in a network disconnect. Its tasks keep running; auto repair replaces it only once its host no longer runs it or the agent has been away for ${grace.agentMs / 1000} s more.`,
          };
    } else if (runtime === 'IMPAIRED') {
      const lasted = realNow - this.runtimeImpairedSince.get(ci.id)!;
      impaired = lasted >= grace.runtimeMs
        ? { check: 'CONTAINER_RUNTIME', reason: `${runtimeReason!} (failing for ${Math.round(lasted / 1000)} s)` }
        : {
          check: 'CONTAINER_RUNTIME', reason: runtimeReason!,
          unconfirmed: `The container runtime failed a check; auto repair waits ${grace.runtimeMs / 1000} s for it to recover, so that a task exhausting its own limits cannot get the instance and its neighbours replaced.`,
        };
    }
    return { ...(impaired ? { impaired } : {}), details: { overallStatus: overall, details } };
  }

  reconcile(): void {
    const { ecs } = this.o;
    const now = this.o.clock.now();
    const byProvider = new Map<string, { scope: string; p: CapacityProviderRecord | undefined; list: ContainerInstanceRecord[] }>();
    for (const { scope, ci } of ecs.containerInstances.all()) {
      if (ci.ec2State !== 'running' || (ci.status !== 'ACTIVE' && ci.status !== 'DRAINING')) continue;
      const key = `${scope}\0${ci.capacityProviderName}`;
      let e = byProvider.get(key);
      if (!e) { e = { scope, p: ecs.capacityProviders.get(scope, ci.capacityProviderName), list: [] }; byProvider.set(key, e); }
      e.list.push(ci);
    }
    const live = [...byProvider.values()].flatMap((e) => e.list);
    const liveEc2 = new Set(live.map((ci) => ci.ec2InstanceId));
    const liveIds = new Set(live.map((ci) => ci.id));
    for (const id of this.hosts.keys()) if (!liveEc2.has(id)) this.hosts.delete(id);
    for (const id of this.runtimeImpairedSince.keys()) if (!liveIds.has(id)) this.runtimeImpairedSince.delete(id);
    for (const { scope, p, list } of byProvider.values()) {
      const budget = budgetOf(p?.tags.find((t) => t.key === DISRUPTION_BUDGET_TAG)?.value, list.length);
      let available = budget - list.filter((ci) => ci.status === 'DRAINING' && VOLUNTARY.has(ci.drainReason ?? '')).length;
      const enabled = p?.managedInstancesProvider.autoRepairConfiguration?.actionsStatus !== 'DISABLED';
      const health = new Map(list.map((ci) => [ci.id, this.health(ci)] as const));
      const impaired = [...health.values()].filter((h) => h.impaired && !h.impaired.unconfirmed).length;
      const paused = enabled && repairPaused(impaired, list.length);
      const key = `${scope}\0${p?.name ?? ''}`;
      if (paused !== this.paused.has(key)) {
        if (paused) this.paused.add(key); else this.paused.delete(key);
        this.o.log(`lifecycle: ${p?.name ?? '?'}: ${impaired} of ${list.length} instances impaired; repairs ${paused ? `paused (more than ${REPAIR_PAUSE_SHARE * 100}% at once)` : 'resumed'}`);
      }
      const autoRepair = enabled && !paused;
      // Oldest first: when the budget is short, the instances closest to their deadline go first.
      for (const ci of list.sort((a, b) => a.launchedAt - b.launchedAt)) {
        const taken = this.decide(scope, ci, health.get(ci.id)!, now, available, { ...this.policy, autoRepair }, paused);
        if (taken) available--;
      }
    }
  }

  /** Decides and applies for one instance; true when it started a voluntary drain. */
  private decide(scope: string, ci: ContainerInstanceRecord, health: ReturnType<LifecycleController['health']>, now: number, budget: number, policy: LifecyclePolicy, paused = false): boolean {
    const { ecs, store } = this.o;
    const tasks = ecs.tasks.onInstance(scope, ci.cluster, ci.id);
    const windows = this.o.ec2.windowsFor(scope, ci).map(windowIntervals);
    const pendingPatch = this.o.platforms.pendingPatch(ci.platformVersion);
    const decision: LifecycleAction = nextAction({
      launchedAt: ci.launchedAt,
      ...(ci.drainStartedAt !== undefined && ci.status === 'DRAINING' ? { drainStartedAt: ci.drainStartedAt } : {}),
      ...(health.impaired ? { impaired: health.impaired } : {}),
      ...(pendingPatch ? { pendingPatch } : {}),
      empty: tasks.length === 0,
    }, now, windows, policy, budget);
    return store.tx(() => {
      const cur = ecs.containerInstances.get(scope, ci.id)!;
      const healthChanged = JSON.stringify(cur.health.details.map((d) => [d.type, d.status])) !== JSON.stringify(health.details.details.map((d) => [d.type, d.status]))
        || cur.health.overallStatus !== health.details.overallStatus;
      if (healthChanged) {
        cur.health = health.details;
        if (health.impaired && !policy.autoRepair) {
          this.record(scope, cur, 'report', 'repair', paused
            ? `The instance is IMPAIRED (${health.impaired.check}): repairs are paused while more than ${REPAIR_PAUSE_SHARE * 100}% of the provider's instances are impaired at once.`
            : `The instance is IMPAIRED (${health.impaired.check}): auto repair is DISABLED, so it is only reported.`);
        } else if (health.impaired?.unconfirmed) {
          this.record(scope, cur, 'wait', 'repair', `The instance is IMPAIRED (${health.impaired.check}: ${health.impaired.reason}) ${health.impaired.unconfirmed}`);
        }
        ecs.containerInstances.save(scope, cur);
      }
      switch (decision.action) {
        case 'none':
          if (decision.recheckAt !== undefined) this.o.wakeAt(decision.recheckAt);
          return false;
        case 'drain': {
          cur.status = 'DRAINING';
          cur.drainStartedAt = now;
          cur.drainReason = decision.reason;
          cur.statusReason = decision.message;
          ecs.containerInstances.save(scope, cur);
          this.record(scope, cur, 'drain', decision.reason, decision.message);
          this.tellServices(scope, cur, tasks, `container instance ${cur.ec2InstanceId} is draining (${decision.reason}): ${decision.message} Its tasks are replaced before they are stopped.`);
          this.o.wakeAt(now + policy.drainGraceMs);
          return VOLUNTARY.has(decision.reason);
        }
        case 'terminate': {
          if (decision.reason === 'repair') {
            this.record(scope, cur, 'replace', 'repair', decision.message);
            this.tellServices(scope, cur, tasks, `container instance ${cur.ec2InstanceId} is replaced: ${decision.message}`);
            this.o.terminate(scope, cur.id, decision.message);
            return false;
          }
          if (decision.reason === 'hard-deadline') {
            if (cur.hardStopAt !== undefined) return false;
            cur.hardStopAt = now;
            ecs.containerInstances.save(scope, cur);
            this.record(scope, cur, 'stop-tasks', 'hard-deadline', decision.message);
            for (const t of tasks) {
              // Task protection and remaining service tasks end here: SIGTERM, stopTimeout, SIGKILL.
              ecs.tasks.requestStop(scope, t, `Task stopped because container instance ${cur.ec2InstanceId} reached the hard deadline of its drain (maximum instance lifetime).`, 'TerminationNotice', now);
            }
            return false;
          }
          cur.status = 'INACTIVE';
          cur.statusReason = decision.message;
          ecs.containerInstances.save(scope, cur);
          this.record(scope, cur, 'terminate', decision.reason, decision.message);
          return false;
        }
      }
    });
  }

  private tellServices(scope: string, ci: ContainerInstanceRecord, tasks: { serviceName?: string }[], message: string): void {
    const names = new Set(tasks.map((t) => t.serviceName).filter((n): n is string => !!n));
    for (const name of names) {
      const s = this.o.ecs.services.get(scope, ci.cluster, name);
      if (!s) continue;
      this.o.ecs.services.event(s, message, this.o.clock.now());
      this.o.ecs.services.save(scope, s);
    }
  }
}
