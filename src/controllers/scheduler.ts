// The scheduler: a level-triggered loop that places waiting tasks on instances, asks the
// fleet for instances when none fits, attaches task networks, and sends each connected
// agent its desired state whenever it changes.
import { zoneOfSubnet } from '../domain/zones.js';
import { createHash } from 'node:crypto';
import type { TaskSpec } from '../agent/protocol.js';
import { hostArchitecture, type Architecture } from '../domain/instance-types.js';
import type { Clock } from '../domain/clock.js';
import type { CapacityProviderRecord } from '../ecs/capacity-providers.js';
import type { ContainerInstanceRecord } from '../ecs/container-instances.js';
import type { Ecs } from '../ecs/index.js';
import type { TaskRecord } from '../ecs/tasks.js';
import type { Gateway } from '../gateway/gateway.js';
import {
  PlacementEngine, decideScaleIn, planScaleOut, selectableTypes, stoppedReason, serviceEventMessage,
  type InstanceSnapshot, type ScaleInInstance, type TaskRequest,
} from '../placement/index.js';
import { AGENT_CAPABILITIES } from '../agent/attributes.js';
import { instanceSnapshots, taskRequest } from './cluster-snapshot.js';
import type { InstanceProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import type { Fleet } from './fleet.js';
import { allowedOf, buildTaskSpec } from './task-spec.js';
import { SecretUnavailable } from '../kms/secrets.js';

/** Instances one pass may launch: a burst is spread over a few passes. */
export const MAX_LAUNCHES_PER_PASS = 20;

/** How long a launched instance's agent may take to register before the instance is replaced. */
export const REGISTRATION_TIMEOUT_MS = 60_000;

const LOOPBACK_REGISTRY = /^(localhost|127\.0\.0\.1|\[::1\]):(\d+)\//;

export interface SchedulerOptions {
  store: Store;
  ecs: Ecs;
  fleet: Fleet;
  gateway: Gateway;
  provider: InstanceProvider | undefined;
  /** Why instances cannot be launched on this host (empty when they can). */
  providerProblems: () => string[];
  hostFips: boolean;
  clock: Clock;
  /** Real time for agent connectivity (see FleetOptions.liveness). */
  liveness: Clock;
  log: (line: string) => void;
  hostArch?: Architecture;
  /** Runs at the start of every pass (the service controller). */
  beforePass?: () => void;
  /** How long an agent may be disconnected before its instance is checked for being gone. */
  heartbeatTimeoutMs: number;
}

export class Scheduler {
  private running = false;
  private again = false;
  private readonly sent = new Map<string, string>();
  private readonly attaching = new Set<string>();
  private readonly forwards = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly hostArch: Architecture;
  private readonly wakeTimes = new Set<number>();

  constructor(private readonly o: SchedulerOptions) {
    this.hostArch = o.hostArch ?? hostArchitecture();
  }

  start(periodMs = 1000): void {
    this.timer = setInterval(() => this.wake(), periodMs);
    this.timer.unref();
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** Asks for a pass soon; passes never overlap. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    this.running = true;
    setImmediate(() => {
      void this.pass().catch((e) => this.o.log(`scheduler: ${(e as Error).stack ?? e}`)).finally(() => {
        this.running = false;
        if (this.again) { this.again = false; this.wake(); }
      });
    });
  }

  /** Forget what was sent to an agent so it gets its full desired state again. */
  resend(instanceId: string): void {
    this.sent.delete(instanceId);
    this.wake();
  }

  private async pass(): Promise<void> {
    this.o.beforePass?.();
    const byCluster = new Map<string, { scope: string; cluster: string; tasks: TaskRecord[] }>();
    for (const { scope, task } of this.o.ecs.tasks.all()) {
      if (task.lastStatus === 'STOPPED') continue;
      const key = `${scope}\0${task.cluster}`;
      let entry = byCluster.get(key);
      if (!entry) { entry = { scope, cluster: task.cluster, tasks: [] }; byCluster.set(key, entry); }
      entry.tasks.push(task);
    }
    // Clusters with instances but no task still need passes (scale-in).
    for (const { scope, ci } of this.o.ecs.containerInstances.all()) {
      const key = `${scope}\0${ci.cluster}`;
      if (!byCluster.has(key) && this.o.ecs.containerInstances.isLive(ci)) byCluster.set(key, { scope, cluster: ci.cluster, tasks: [] });
    }
    for (const { scope, cluster, tasks } of byCluster.values()) this.placeCluster(scope, cluster, tasks);
    this.terminateRetired();
    await this.terminateDead();
    await this.pushDesired();
  }

  private failTask(scope: string, t: TaskRecord, reason: string): void {
    this.o.store.tx(() => {
      const cur = this.o.ecs.tasks.get(scope, t.id);
      if (!cur || cur.containerInstanceId) return;
      this.o.ecs.tasks.requestStop(scope, cur, reason, 'TaskFailedToStart', this.o.clock.now());
    });
    this.o.log(`scheduler: task ${t.id} cannot run: ${reason}`);
  }

  /** Why a provider's tasks cannot get instances on this host at all, if so. */
  private launchBlocker(p: CapacityProviderRecord): string | undefined {
    const problems = this.o.providerProblems();
    if (problems.length) return `Berth cannot launch instances on this host: ${problems.join('; ')}.`;
    if (p.managedInstancesProvider.instanceLaunchTemplate.fipsEnabled && !this.o.hostFips) {
      return `Capacity provider ${p.name} requires FIPS-140 instances, but this host's kernel is not in FIPS mode (/proc/sys/crypto/fips_enabled is not 1), so Berth cannot launch FIPS instances here. Create the provider with "fipsEnabled": false, or run Berth on a FIPS-enabled host.`;
    }
    return undefined;
  }

  private placeCluster(scope: string, cluster: string, tasks: TaskRecord[]): void {
    const { ecs } = this.o;
    const instances = ecs.containerInstances.ofCluster(scope, cluster).filter((ci) => ecs.containerInstances.isLive(ci));
    const snaps = instanceSnapshots(instances, tasks);
    // Instances on their way (launched, agent not registered yet) take part in placement
    // as if ready, so that spread counts them; a task placed there waits for its agent.
    // Their agents have not reported attributes yet: assume what every agent reports.
    // So do instances whose agent is briefly away (restarting, or this control plane
    // restarted): new capacity is launched only once they count as lost.
    const realNow = this.o.liveness.now();
    const registering = new Set(instances.filter((ci) => ci.status === 'REGISTERING'
      || (ci.status === 'ACTIVE' && !ci.agentConnected && realNow - (ci.agentLastSeenAt ?? ci.launchedAtReal ?? 0) < this.o.heartbeatTimeoutMs)).map((ci) => ci.id));
    const expected = AGENT_CAPABILITIES.map((name) => ({ name }));
    const engine = new PlacementEngine(snaps
      .filter((s) => (s.status === 'ACTIVE' && s.agentConnected) || registering.has(s.id))
      .map((s) => (registering.has(s.id) ? { ...s, status: 'ACTIVE', agentConnected: true, attributes: expected } : s)));
    const waiting = tasks.filter((t) => t.desiredStatus === 'RUNNING' && !t.containerInstanceId)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    const pending = new Map<string, { task: TaskRecord; request: TaskRequest }[]>();
    const providers = new Map<string, CapacityProviderRecord | undefined>();
    const providerOf = (name: string) => {
      if (!providers.has(name)) providers.set(name, ecs.capacityProviders.get(scope, name));
      return providers.get(name);
    };
    for (const t of waiting) {
      const td = ecs.taskDefinitions.get(scope, t.family, t.revision);
      if (!td) { this.failTask(scope, t, 'Task definition no longer exists.'); continue; }
      const provider = providerOf(t.capacityProviderName);
      if (!provider || provider.status !== 'ACTIVE') { this.failTask(scope, t, `Capacity provider ${t.capacityProviderName} is not ACTIVE.`); continue; }
      const request = taskRequest(t, td.body, provider.managedInstancesProvider.instanceLaunchTemplate.fipsEnabled === true);
      // A task already waiting for a planned instance keeps its place there.
      let placed = t.awaitingInstanceId && !t.pinnedInstanceId
        ? engine.place({ ...request, pinnedInstanceId: t.awaitingInstanceId }) : undefined;
      if (placed?.placed) engine.reserve(request, placed.instanceId);
      else placed = engine.placeAndReserve(request);
      if (placed.placed) {
        if (registering.has(placed.instanceId)) this.setWaiting(scope, t, `Waiting for instance ${placed.instance.ec2InstanceId} to start.`, placed.instanceId);
        else this.assign(scope, t, placed.instanceId, placed.availabilityZone);
        continue;
      }
      if (t.pinnedInstanceId) { this.setWaiting(scope, t, placed.failure.message); continue; }
      const blocker = this.launchBlocker(provider);
      if (blocker) { this.failTask(scope, t, blocker); continue; }
      const list = pending.get(provider.name) ?? [];
      list.push({ task: t, request });
      pending.set(provider.name, list);
      if (t.serviceName && placed.failure.reason !== 'NO_INSTANCES') this.noteServicePlacement(scope, t, serviceEventMessage(t.serviceName, placed.failure));
    }
    for (const [name, list] of pending) this.scaleOut(scope, providerOf(name)!, instances, list);
    this.scaleIn(scope, instances, snaps, tasks, pending);
  }

  /** Launches instances for tasks that fit nowhere, as the planner packs them. */
  private scaleOut(scope: string, p: CapacityProviderRecord, instances: ContainerInstanceRecord[], list: { task: TaskRecord; request: TaskRequest }[]): void {
    const template = p.managedInstancesProvider.instanceLaunchTemplate;
    const settings = this.o.ecs.capacityProviders.settings(p);
    const region = scope.split('/')[1]!;
    const subnets = (template.networkConfiguration.subnets ?? []).map((subnetId, i) => ({ subnetId, availabilityZone: zoneOfSubnet(region, i) }));
    const instancesPerSubnet: Record<string, number> = {};
    for (const ci of instances) if (ci.capacityProviderName === p.name) instancesPerSubnet[ci.subnetId] = (instancesPerSubnet[ci.subnetId] ?? 0) + 1;
    const plan = planScaleOut({
      provider: {
        name: p.name,
        types: selectableTypes(template.instanceRequirements, this.hostArch),
        subnets,
        singleTaskMode: settings.singleTaskMode,
        privilegedCapabilities: settings.privilegedCapabilities,
        hostAccess: settings.hostAccess,
        fips: template.fipsEnabled === true,
        attributes: AGENT_CAPABILITIES.map((name) => ({ name })),
      },
      pending: list.map((x) => x.request),
      instancesPerSubnet,
      maxLaunches: MAX_LAUNCHES_PER_PASS,
    });
    const byId = new Map(list.map((x) => [x.task.id, x.task] as const));
    for (const u of plan.unplaceable) {
      const t = byId.get(u.taskId)!;
      this.failTask(scope, t, stoppedReason(u));
    }
    for (const l of plan.launches) {
      const ci = this.o.fleet.launch(scope, p, l.instanceType, l.subnetIndex);
      for (const id of l.taskIds) this.setWaiting(scope, byId.get(id)!, `Waiting for instance ${ci.ec2InstanceId} (${l.instanceType.name}) to start.`, ci.id);
    }
  }

  /** Idle instances go away after scaleInAfter; underutilised ones are drained first. */
  private scaleIn(scope: string, instances: ContainerInstanceRecord[], snaps: InstanceSnapshot[], tasks: TaskRecord[], pending: Map<string, unknown[]>): void {
    const { ecs, store } = this.o;
    const now = this.o.clock.now();
    const byProvider = new Map<string, ContainerInstanceRecord[]>();
    for (const ci of instances) {
      if (ci.status !== 'ACTIVE' && ci.status !== 'DRAINING') continue;
      byProvider.set(ci.capacityProviderName, [...(byProvider.get(ci.capacityProviderName) ?? []), ci]);
    }
    const snapById = new Map(snaps.map((s) => [s.id, s] as const));
    for (const [name, cis] of byProvider) {
      const p = ecs.capacityProviders.get(scope, name);
      if (!p || p.status !== 'ACTIVE') continue;
      const input: ScaleInInstance[] = cis.map((ci) => {
        const on = tasks.filter((t) => t.containerInstanceId === ci.id && t.lastStatus !== 'STOPPED');
        return {
          snapshot: snapById.get(ci.id)!,
          tasks: on.map((t) => {
            const td = ecs.taskDefinitions.get(scope, t.family, t.revision);
            return { request: taskRequest(t, td?.body ?? {}, false), standalone: !t.serviceName, protected: (t.protectedUntil ?? 0) > now };
          }),
          ...(ci.idleSince !== undefined ? { idleSince: ci.idleSince } : {}),
          ...(ci.underutilisedSince !== undefined ? { underutilisedSince: ci.underutilisedSince } : {}),
          ...(ci.lastTaskStartedAt !== undefined ? { lastTaskStartedAt: ci.lastTaskStartedAt } : {}),
        };
      });
      const d = decideScaleIn({
        instances: input, scaleInAfter: p.managedInstancesProvider.infrastructureOptimization?.scaleInAfter, now,
        pendingTasks: pending.get(name)?.length ?? 0,
      });
      store.tx(() => {
        const idle = new Set(d.idle);
        const under = new Set(d.underutilised);
        for (const ci of cis) {
          const cur = ecs.containerInstances.get(scope, ci.id)!;
          const idleSince = idle.has(ci.id) ? (cur.idleSince ?? now) : undefined;
          const underSince = under.has(ci.id) ? (cur.underutilisedSince ?? now) : undefined;
          if (cur.idleSince === idleSince && cur.underutilisedSince === underSince) continue;
          if (idleSince === undefined) delete cur.idleSince; else cur.idleSince = idleSince;
          if (underSince === undefined) delete cur.underutilisedSince; else cur.underutilisedSince = underSince;
          ecs.containerInstances.save(scope, cur);
        }
        for (const x of d.drain) {
          const cur = ecs.containerInstances.get(scope, x.instanceId)!;
          cur.status = 'DRAINING';
          cur.drainStartedAt = now;
          cur.drainReason = 'scale-in';
          cur.statusReason = x.reason;
          ecs.containerInstances.save(scope, cur);
          this.o.log(`scheduler: draining ${cur.ec2InstanceId}: ${x.reason}`);
        }
        for (const x of d.deregister) {
          const cur = ecs.containerInstances.get(scope, x.instanceId)!;
          cur.status = 'INACTIVE';
          cur.statusReason = x.reason;
          ecs.containerInstances.save(scope, cur);
          this.o.log(`scheduler: scaling in ${cur.ec2InstanceId}: ${x.reason}`);
        }
      });
      if (d.nextCheckAt !== undefined) this.wakeAt(d.nextCheckAt);
    }
  }

  /**
   * Whether a new task can never run (bigger than any type its provider may launch, a
   * capability or architecture the provider cannot offer): then RunTask reports a failure.
   */
  /** Wakes a pass at `at` on the scheduler's clock (one timer per distinct time). */
  wakeAt(at: number): void {
    if (this.wakeTimes.has(at)) return;
    this.wakeTimes.add(at);
    this.o.clock.after(Math.max(0, at - this.o.clock.now()) + 5, () => { this.wakeTimes.delete(at); this.wake(); });
  }

  private noteServicePlacement(scope: string, t: TaskRecord, message: string): void {
    this.setWaiting(scope, t, message);
  }

  private setWaiting(scope: string, t: TaskRecord, reason: string, awaitingInstanceId?: string): void {
    if (t.waitingReason === reason && t.awaitingInstanceId === awaitingInstanceId) return;
    this.o.store.tx(() => {
      const cur = this.o.ecs.tasks.get(scope, t.id);
      if (!cur) return;
      cur.waitingReason = reason;
      if (awaitingInstanceId) cur.awaitingInstanceId = awaitingInstanceId;
      this.o.ecs.tasks.save(scope, cur);
    });
  }

  private assign(scope: string, t: TaskRecord, instanceId: string, availabilityZone: string): void {
    const now = this.o.clock.now();
    this.o.store.tx(() => {
      const cur = this.o.ecs.tasks.get(scope, t.id);
      if (!cur || cur.containerInstanceId || cur.desiredStatus !== 'RUNNING') return;
      cur.containerInstanceId = instanceId;
      cur.availabilityZone = availabilityZone;
      delete cur.waitingReason;
      delete cur.awaitingInstanceId;
      this.o.ecs.tasks.save(scope, cur);
      const ci = this.o.ecs.containerInstances.get(scope, instanceId);
      if (ci) {
        // A task start restarts the instance's scale-in timers.
        ci.lastTaskStartedAt = now;
        delete ci.idleSince;
        delete ci.underutilisedSince;
        this.o.ecs.containerInstances.save(scope, ci);
      }
    });
  }

  /** Attaches the awsvpc network of a placed task (like an ENI attachment). */
  private attachNetwork(scope: string, t: TaskRecord, ci: ContainerInstanceRecord): void {
    if (this.attaching.has(t.id) || !this.o.provider) return;
    this.attaching.add(t.id);
    void this.o.provider.attachTaskNetwork(ci.ec2InstanceId, t.id).then((n) => {
      this.o.store.tx(() => {
        const cur = this.o.ecs.tasks.get(scope, t.id);
        // Recorded even on a task that stopped meanwhile: saving it files a release that detaches it.
        if (!cur) { void this.o.provider?.detachTaskNetwork(t.id).catch(() => {}); return; }
        if (cur.lastStatus === 'STOPPED') cur.released = false;
        cur.network = {
          attachmentId: `${t.id.slice(0, 8)}-${t.id.slice(8, 12)}-${t.id.slice(12, 16)}-${t.id.slice(16, 20)}-${t.id.slice(20)}`,
          interfaceId: n.interfaceId, netnsPath: n.netnsPath, ipv4Address: n.ipv4Address, gateway: n.gateway,
          prefixLength: n.prefixLength, macAddress: n.macAddress, subnetId: ci.subnetId,
        };
        this.o.ecs.tasks.save(scope, cur);
      });
    }).catch((e) => {
      this.o.log(`scheduler: attaching the network of task ${t.id} failed: ${(e as Error).message}`);
    }).finally(() => {
      this.attaching.delete(t.id);
      this.wake();
    });
  }

  /** Instances deregistered by the user, or whose provider is going away, are terminated. */
  private terminateRetired(): void {
    const realNow = this.o.liveness.now();
    for (const { scope, ci } of this.o.ecs.containerInstances.all()) {
      if (ci.ec2State === 'terminated' || this.o.fleet.isTerminating(ci.id) || this.o.fleet.isLaunching(ci.id)) continue;
      if (ci.status === 'REGISTERING' && realNow - (ci.launchedAtReal ?? realNow) > REGISTRATION_TIMEOUT_MS) {
        // An agent that never registers (crash loop, no route to the gateway) gets its instance replaced.
        this.o.store.tx(() => {
          const cur = this.o.ecs.containerInstances.get(scope, ci.id)!;
          cur.status = 'REGISTRATION_FAILED';
          cur.statusReason = `The instance agent did not register within ${REGISTRATION_TIMEOUT_MS / 1000} s.`;
          this.o.ecs.containerInstances.save(scope, cur);
        });
        this.o.log(`scheduler: ${ci.ec2InstanceId} did not register in time; replacing it`);
        continue;
      }
      const provider = this.o.ecs.capacityProviders.get(scope, ci.capacityProviderName);
      if (ci.status === 'INACTIVE' || ci.status === 'REGISTRATION_FAILED') {
        void this.o.fleet.terminate(scope, ci.id, ci.statusReason ?? 'deregistered');
      } else if (provider?.status === 'DEPROVISIONING') {
        const busy = this.o.ecs.tasks.onInstance(scope, ci.cluster, ci.id).some((t) => t.lastStatus !== 'STOPPED');
        if (!busy) void this.o.fleet.terminate(scope, ci.id, `Capacity provider ${provider.name} is being deleted`);
      }
    }
    for (const { scope, body: p } of this.o.store.listAll<CapacityProviderRecord>('capacity-provider')) {
      if (p.status !== 'DEPROVISIONING') continue;
      this.o.store.tx(() => {
        const cur = this.o.ecs.capacityProviders.get(scope, p.name)!;
        if (this.o.ecs.capacityProviders.finishDeletionIfEmpty(scope, cur)) this.o.ecs.capacityProviders.save(scope, cur);
      });
    }
  }

  /** Instances whose agent is gone past the heartbeat timeout and whose host is gone too are terminated. */
  private async terminateDead(): Promise<void> {
    if (!this.o.provider) return;
    const realNow = this.o.liveness.now();
    for (const { scope, ci } of this.o.ecs.containerInstances.all()) {
      if (ci.ec2State !== 'running' || ci.agentConnected || this.o.fleet.isTerminating(ci.id)) continue;
      if (realNow - (ci.agentLastSeenAt ?? ci.launchedAtReal ?? 0) < this.o.heartbeatTimeoutMs) continue;
      if (await this.o.provider.isAlive(ci.ec2InstanceId).catch(() => true)) continue;
      void this.o.fleet.terminate(scope, ci.id, `Instance ${ci.ec2InstanceId} stopped unexpectedly.`);
    }
  }

  private async registryForwards(specs: TaskSpec[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const s of specs) {
      for (const c of s.containers) {
        const m = LOOPBACK_REGISTRY.exec(c.image);
        if (!m) continue;
        const hostPort = `${m[1]}:${m[2]}`;
        let fwd = this.forwards.get(m[2]!);
        if (!fwd && this.o.provider) {
          fwd = await this.o.provider.ensureRegistryForward(`127.0.0.1:${m[2]}`);
          this.forwards.set(m[2]!, fwd);
        }
        if (fwd) out[hostPort] = fwd;
      }
    }
    return out;
  }

  private async pushDesired(): Promise<void> {
    for (const instanceId of this.o.gateway.connectedInstances()) {
      const idx = this.o.store.get<{ scope: string; id: string }>('ec2-instance', 'global', instanceId);
      if (!idx) continue;
      const ci = this.o.ecs.containerInstances.get(idx.scope, idx.id);
      if (!ci) continue;
      const specs: TaskSpec[] = [];
      for (const t of this.o.ecs.tasks.onInstance(idx.scope, ci.cluster, ci.id)) {
        if (t.lastStatus === 'STOPPED') continue;
        if (t.networkMode === 'awsvpc' && !t.network) {
          if (t.desiredStatus === 'RUNNING') this.attachNetwork(idx.scope, t, ci);
          continue;
        }
        const td = this.o.ecs.taskDefinitions.get(idx.scope, t.family, t.revision);
        if (!td) continue;
        // Sealed secrets are opened here, as the spec goes to the agent (kms/secrets.ts).
        try {
          specs.push(buildTaskSpec(t, td, allowedOf(ci), this.o.ecs.taskDefinitions.secrets.opener(idx.scope, t)));
        } catch (e) {
          if (!(e instanceof SecretUnavailable)) throw e;
          // The agent gets the task to stop (never to start), its secrets still sealed.
          const cur = this.o.store.tx(() => {
            const x = this.o.ecs.tasks.get(idx.scope, t.id);
            if (x) this.o.ecs.tasks.requestStop(idx.scope, x, e.message.slice(0, 1024), 'TaskFailedToStart', this.o.clock.now());
            return x;
          });
          this.o.log(`scheduler: task ${t.id} cannot start: ${e.message}`);
          if (cur) specs.push(buildTaskSpec(cur, td, allowedOf(ci)));
        }
      }
      const registryForwards = await this.registryForwards(specs);
      const body = JSON.stringify({ tasks: specs, registryForwards });
      const hash = createHash('sha1').update(body).digest('hex');
      if (this.sent.get(instanceId) === hash) continue;
      if (this.o.gateway.send(instanceId, { type: 'desired', tasks: specs, registryForwards })) this.sent.set(instanceId, hash);
    }
  }
}
