// The scheduler: a level-triggered loop that places waiting tasks on instances, asks the
// fleet for instances when none fits, attaches task networks, and sends each connected
// agent its desired state whenever it changes.
import { createHash } from 'node:crypto';
import type { TaskSpec } from '../agent/protocol.js';
import { isDefaultCapability, normalizeCapability, PRIVILEGED_CAPABILITIES } from '../domain/capabilities.js';
import { hostArchitecture, instanceType, type Architecture } from '../domain/instance-types.js';
import type { Clock } from '../domain/clock.js';
import type { CapacityProviderRecord } from '../ecs/capacity-providers.js';
import type { ContainerInstanceRecord } from '../ecs/container-instances.js';
import type { Ecs } from '../ecs/index.js';
import type { TaskRecord } from '../ecs/tasks.js';
import type { Json } from '../ecs/task-definition-rules.js';
import type { Gateway } from '../gateway/gateway.js';
import { cheapestFitting, registeredCpu, registeredMemory, selectableTypes } from '../placement/instance-selection.js';
import { place, reserve, type InstanceSnapshot, type TaskDemand } from '../placement/simple.js';
import type { InstanceProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import type { Fleet } from './fleet.js';
import { buildTaskSpec } from './task-spec.js';

/** Capabilities outside Docker's default set that a task definition asks for. */
export function requestedPrivilegedCapabilities(td: Json): string[] {
  const out = new Set<string>();
  for (const c of td.containerDefinitions ?? []) {
    if (c.privileged) PRIVILEGED_CAPABILITIES.forEach((p) => out.add(p));
    for (const a of c.linuxParameters?.capabilities?.add ?? []) {
      if (String(a).toUpperCase() === 'ALL') { PRIVILEGED_CAPABILITIES.forEach((p) => out.add(p)); continue; }
      const cap = normalizeCapability(String(a));
      if (cap && !isDefaultCapability(cap)) out.add(cap);
    }
  }
  return [...out].sort();
}

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
    for (const { scope, cluster, tasks } of byCluster.values()) this.placeCluster(scope, cluster, tasks);
    this.terminateRetired();
    await this.terminateDead();
    await this.pushDesired();
  }

  private snapshot(scope: string, ci: ContainerInstanceRecord): InstanceSnapshot {
    const u = this.o.ecs.containerInstances.usage(scope, ci.id);
    const type = instanceType(ci.instanceType);
    const arch = ci.attributes.find((a) => a.name === 'ecs.cpu-architecture')?.value ?? type?.architecture ?? 'x86_64';
    return {
      id: ci.id,
      providerName: ci.capacityProviderName,
      active: ci.status === 'ACTIVE' && ci.agentConnected,
      cpuFree: ci.registeredCpu - u.cpu,
      memoryFree: ci.registeredMemory - u.memory,
      tcpPortsUsed: new Set(u.tcpPorts),
      udpPortsUsed: new Set(u.udpPorts),
      enisFree: (type?.maxNetworkInterfaces ?? 2) - 1 - u.enis,
      tasks: u.running + u.pending,
      singleTask: ci.launchConfig?.singleTaskMode ?? false,
      subnetId: ci.subnetId,
      availabilityZone: ci.availabilityZone,
      architecture: arch === 'arm64' ? 'ARM64' : 'X86_64',
      privilegedCapabilities: ci.launchConfig?.privilegedCapabilities ?? [],
    };
  }

  private demand(t: TaskRecord, td: Json): TaskDemand {
    return {
      cpu: t.reservation.cpu,
      memory: t.reservation.memory,
      tcpPorts: t.reservation.tcpPorts,
      udpPorts: t.reservation.udpPorts,
      eni: t.reservation.eni,
      providerName: t.capacityProviderName,
      ...(t.pinnedInstanceId ? { pinnedInstanceId: t.pinnedInstanceId } : {}),
      ...(t.subnets ? { subnets: t.subnets } : {}),
      ...(td.runtimePlatform?.cpuArchitecture ? { architecture: td.runtimePlatform.cpuArchitecture } : {}),
      privilegedCapabilities: requestedPrivilegedCapabilities(td),
    };
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
    const instances = this.o.ecs.containerInstances.ofCluster(scope, cluster).filter((ci) => this.o.ecs.containerInstances.isLive(ci));
    const snaps = instances.map((ci) => this.snapshot(scope, ci));
    // Capacity that is on its way (launched, agent not registered yet) also counts.
    const incoming = snaps.filter((s, i) => instances[i]!.status === 'REGISTERING').map((s) => ({ ...s, active: true }));
    const waiting = tasks.filter((t) => t.desiredStatus === 'RUNNING' && !t.containerInstanceId)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    for (const t of waiting) {
      const td = this.o.ecs.taskDefinitions.get(scope, t.family, t.revision);
      if (!td) { this.failTask(scope, t, 'Task definition no longer exists.'); continue; }
      const d = this.demand(t, td.body);
      const placed = place(d, snaps);
      if (placed.instance) {
        reserve(d, placed.instance);
        this.assign(scope, t, placed.instance);
        continue;
      }
      if (t.pinnedInstanceId) {
        this.setWaiting(scope, t, `Instance cannot take the task: ${Object.keys(placed.reasons).join(', ')}`);
        continue;
      }
      const onTheWay = place(d, incoming);
      if (onTheWay.instance) { reserve(d, onTheWay.instance); continue; }
      const provider = this.o.ecs.capacityProviders.get(scope, t.capacityProviderName);
      if (!provider || provider.status !== 'ACTIVE') { this.failTask(scope, t, `Capacity provider ${t.capacityProviderName} is not ACTIVE.`); continue; }
      const blocker = this.launchBlocker(provider);
      if (blocker) { this.failTask(scope, t, blocker); continue; }
      if (d.privilegedCapabilities.length) {
        const allowed = this.o.ecs.capacityProviders.settings(provider).privilegedCapabilities;
        const missing = d.privilegedCapabilities.filter((c) => !(allowed as string[]).includes(c));
        if (missing.length) {
          this.failTask(scope, t, `Task definition ${t.family}:${t.revision} adds the Linux capabilit${missing.length === 1 ? 'y' : 'ies'} ${missing.join(', ')}, which capacity provider ${provider.name} does not allow. Allow ${missing.length === 1 ? 'it' : 'them'} with the tag berth:privileged-capabilities on the capacity provider (e.g. ${missing.join('+')}).`);
          continue;
        }
      }
      const arch = d.architecture === 'ARM64' ? 'arm64' : d.architecture === 'X86_64' ? 'x86_64' : this.hostArch;
      if (arch !== this.hostArch) { this.failTask(scope, t, `The task requires ${d.architecture}, but this host can only run ${this.hostArch} instances.`); continue; }
      const types = selectableTypes(provider.managedInstancesProvider.instanceLaunchTemplate.instanceRequirements, this.hostArch);
      const type = cheapestFitting(types, d.cpu, d.memory);
      if (!type) {
        const biggest = types.reduce<{ cpu: number; mem: number }>((m, x) => ({ cpu: Math.max(m.cpu, registeredCpu(x)), mem: Math.max(m.mem, registeredMemory(x)) }), { cpu: 0, mem: 0 });
        this.failTask(scope, t, types.length === 0
          ? `No instance type satisfies capacity provider ${provider.name}'s instanceRequirements on this host (${this.hostArch}).`
          : `RESOURCE:${d.cpu > biggest.cpu ? 'CPU' : 'MEMORY'}: the task needs ${d.cpu} CPU units and ${d.memory} MiB, more than the largest instance type the capacity provider allows (${biggest.cpu} CPU units, ${biggest.mem} MiB).`);
        continue;
      }
      const subnetCounts = new Map<string, number>();
      for (const ci of instances) subnetCounts.set(ci.subnetId, (subnetCounts.get(ci.subnetId) ?? 0) + 1);
      const subnets = provider.managedInstancesProvider.instanceLaunchTemplate.networkConfiguration.subnets ?? [];
      const candidates = subnets.map((s, i) => ({ s, i })).filter(({ s }) => !d.subnets || d.subnets.includes(s));
      const pick = candidates.sort((a, b) => (subnetCounts.get(a.s) ?? 0) - (subnetCounts.get(b.s) ?? 0) || a.i - b.i)[0];
      const ci = this.o.fleet.launch(scope, provider, type, pick?.i ?? 0);
      instances.push(ci);
      const snap = { ...this.snapshot(scope, ci), active: true };
      reserve(d, snap);
      incoming.push(snap);
      this.setWaiting(scope, t, `Waiting for instance ${ci.ec2InstanceId} (${type.name}) to start.`);
    }
  }

  private setWaiting(scope: string, t: TaskRecord, reason: string): void {
    if (t.waitingReason === reason) return;
    this.o.store.tx(() => {
      const cur = this.o.ecs.tasks.get(scope, t.id);
      if (!cur) return;
      cur.waitingReason = reason;
      this.o.ecs.tasks.save(scope, cur);
    });
  }

  private assign(scope: string, t: TaskRecord, snap: InstanceSnapshot): void {
    this.o.store.tx(() => {
      const cur = this.o.ecs.tasks.get(scope, t.id);
      if (!cur || cur.containerInstanceId || cur.desiredStatus !== 'RUNNING') return;
      cur.containerInstanceId = snap.id;
      cur.availabilityZone = snap.availabilityZone;
      delete cur.waitingReason;
      this.o.ecs.tasks.save(scope, cur);
    });
  }

  /** Attaches the awsvpc network of a placed task (like an ENI attachment). */
  private attachNetwork(scope: string, t: TaskRecord, ci: ContainerInstanceRecord): void {
    if (this.attaching.has(t.id) || !this.o.provider) return;
    this.attaching.add(t.id);
    void this.o.provider.attachTaskNetwork(ci.ec2InstanceId, t.id).then((n) => {
      this.o.store.tx(() => {
        const cur = this.o.ecs.tasks.get(scope, t.id);
        if (!cur) return;
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
    const now = this.o.clock.now();
    for (const { scope, ci } of this.o.ecs.containerInstances.all()) {
      if (ci.ec2State === 'terminated' || this.o.fleet.isTerminating(ci.id) || this.o.fleet.isLaunching(ci.id)) continue;
      if (ci.status === 'REGISTERING' && now - ci.launchedAt > REGISTRATION_TIMEOUT_MS) {
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
    const now = this.o.clock.now();
    for (const { scope, ci } of this.o.ecs.containerInstances.all()) {
      if (ci.ec2State !== 'running' || ci.agentConnected || this.o.fleet.isTerminating(ci.id)) continue;
      if (now - (ci.agentLastSeenAt ?? ci.launchedAt) < this.o.heartbeatTimeoutMs) continue;
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
        specs.push(buildTaskSpec(t, td, ci.launchConfig?.privilegedCapabilities ?? []));
      }
      const registryForwards = await this.registryForwards(specs);
      const body = JSON.stringify({ tasks: specs, registryForwards });
      const hash = createHash('sha1').update(body).digest('hex');
      if (this.sent.get(instanceId) === hash) continue;
      if (this.o.gateway.send(instanceId, { type: 'desired', tasks: specs, registryForwards })) this.sent.set(instanceId, hash);
    }
  }
}
