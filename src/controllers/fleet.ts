// The fleet: launching and terminating instances through the instance provider, and the
// agents' sessions (bootstrap, registration, reports). Every intent is recorded in the
// store before the effect runs, so a control plane killed at any moment recovers.
import { zoneOfSubnet } from '../domain/zones.js';
import { createHash, randomBytes } from 'node:crypto';
import type { AgentMessage, Attribute, ControlMessage, ExecAgentMessage, TaskReport } from '../agent/protocol.js';
import { statusRank } from '../agent/protocol.js';
import { markStopped } from '../ecs/task-stop.js';
import type { Clock } from '../domain/clock.js';
import type { InstanceType } from '../domain/instance-types.js';
import type { CapacityProviderRecord } from '../ecs/capacity-providers.js';
import type { ContainerInstanceRecord } from '../ecs/container-instances.js';
import type { Ecs } from '../ecs/index.js';
import type { TaskRecord } from '../ecs/tasks.js';
import type { GatewayHandlers, Hello, Peer, Welcome } from '../gateway/gateway.js';
import { peerAddress } from '../gateway/limits.js';
import { registeredCpu, registeredMemory } from '../placement/instance-selection.js';
import type { InstanceProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import { formatArn, partitionOf } from '../domain/arn.js';

const EC2_INDEX = 'ec2-instance';
const GLOBAL = 'global';
export const AGENT_VERSION = '0.1.0';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** How long a hello waits for the instance's launch to record its address. */
const ADDRESS_WAIT_MS = 3_000;

/** Whether a hello carries the instance's current bootstrap token or credential. */
function secretMatches(ci: ContainerInstanceRecord, hello: Hello): boolean {
  if (hello.bootstrapToken !== undefined) return typeof hello.bootstrapToken === 'string' && !!ci.bootstrapTokenHash && sha256(hello.bootstrapToken) === ci.bootstrapTokenHash;
  return typeof hello.credential === 'string' && !!ci.credentialHash && sha256(hello.credential) === ci.credentialHash;
}

/** A refused hello, with what the audit trail records of it. */
export class AgentRefused extends Error {
  constructor(message: string, readonly about: { scope?: string; ci?: ContainerInstanceRecord; misuse?: boolean } = {}) { super(message); }
}
const hex = (bytes: number) => randomBytes(bytes).toString('hex');

export interface FleetEvents {
  /** Something the scheduler should look at changed (capacity, task states). */
  changed(): void;
  logs(scope: string, instanceId: string, msg: Extract<AgentMessage, { type: 'logs' }>): void;
  metrics(scope: string, ci: ContainerInstanceRecord, tasks: Extract<AgentMessage, { type: 'metrics' }>['tasks']): void;
  instanceGone(scope: string, ci: ContainerInstanceRecord): void;
  /** ECS Exec output and exits, for the session broker. */
  exec?(instanceId: string, msg: ExecAgentMessage): void;
  /** A valid credential was used from elsewhere or while the instance was connected. */
  credentialMisused?(scope: string, ci: ContainerInstanceRecord, reason: string): void;
}

export interface FleetOptions {
  store: Store;
  ecs: Ecs;
  provider: InstanceProvider | undefined;
  /** The control plane's time (virtual in tests and demos): ages, timestamps. */
  clock: Clock;
  /** Real time, for agent connectivity (heartbeats, registration): never virtual. */
  liveness: Clock;
  log: (line: string) => void;
  agentCommand: string[];
  controlPlaneUrl: () => string;
  /** PEM of the CA the agent pins for the gateway's certificate. */
  gatewayCa: () => string;
  events: FleetEvents;
  /** The newest platform version: new instances launch on it. */
  platformVersion: () => string;
  /** Size of each task's writable storage (the agent makes it a filesystem of its own). */
  taskStorageGiB: number;
}

export class Fleet implements GatewayHandlers {
  private readonly launching = new Set<string>();
  /** Launches under way, by container instance id (a hello may wait for the address). */
  private readonly launches = new Map<string, Promise<void>>();
  private readonly terminating = new Set<string>();

  constructor(private readonly o: FleetOptions) {}

  /** The container instance an agent (by EC2 instance id) belongs to. */
  instance(instanceId: string): { scope: string; ci: ContainerInstanceRecord } | undefined {
    return this.locate(instanceId);
  }

  private locate(instanceId: string): { scope: string; ci: ContainerInstanceRecord } | undefined {
    const idx = this.o.store.get<{ scope: string; id: string }>(EC2_INDEX, GLOBAL, instanceId);
    if (!idx) return undefined;
    const ci = this.o.ecs.containerInstances.get(idx.scope, idx.id);
    return ci && { scope: idx.scope, ci };
  }

  /** Records a new instance (REGISTERING) and starts it; returns the record at once. */
  launch(scope: string, provider: CapacityProviderRecord, type: InstanceType, subnetIndex: number): ContainerInstanceRecord {
    const platformVersion = this.o.platformVersion();
    const [account, region] = scope.split('/') as [string, string];
    const id = hex(16);
    const ec2InstanceId = `i-${hex(9).slice(0, 17)}`;
    const subnets = provider.managedInstancesProvider.instanceLaunchTemplate.networkConfiguration.subnets ?? [];
    const subnetId = subnets[subnetIndex % subnets.length]!;
    const token = randomBytes(32).toString('base64url');
    const now = this.o.clock.now();
    const settings = this.o.ecs.capacityProviders.settings(provider);
    const ci: ContainerInstanceRecord = {
      id,
      containerInstanceArn: formatArn({ partition: partitionOf(region), service: 'ecs', region, account, resource: `container-instance/${provider.cluster}/${id}` }),
      ec2InstanceId,
      cluster: provider.cluster,
      capacityProviderName: provider.name,
      instanceType: type.name,
      subnetId,
      availabilityZone: zoneOfSubnet(region, subnets.indexOf(subnetId)),
      status: 'REGISTERING',
      ec2State: 'pending',
      agentConnected: false,
      registeredCpu: registeredCpu(type),
      registeredMemory: registeredMemory(type),
      attributes: [],
      launchedAt: now,
      launchedAtReal: this.o.liveness.now(),
      platformVersion,
      version: 0,
      tags: provider.managedInstancesProvider.propagateTags === 'CAPACITY_PROVIDER'
        ? [...provider.tags.filter((t) => !t.key.startsWith('berth:'))] : [],
      health: { overallStatus: 'INITIALIZING', details: [] },
      bootstrapTokenHash: sha256(token),
      launchConfig: { singleTaskMode: settings.singleTaskMode, privilegedCapabilities: settings.privilegedCapabilities, hostAccess: settings.hostAccess, fips: provider.managedInstancesProvider.instanceLaunchTemplate.fipsEnabled === true },
    };
    this.o.store.tx(() => {
      this.o.ecs.containerInstances.save(scope, ci);
      this.o.store.put(EC2_INDEX, GLOBAL, ec2InstanceId, { scope, id });
    });
    this.launching.add(id);
    const started = this.start(scope, ci, type, token).finally(() => { this.launching.delete(id); this.launches.delete(id); });
    this.launches.set(id, started);
    void started;
    return ci;
  }

  private async start(scope: string, ci: ContainerInstanceRecord, type: InstanceType, token: string): Promise<void> {
    const provider = this.o.provider;
    try {
      if (!provider) throw new Error('no instance provider');
      const launched = await provider.launch({
        instanceId: ci.ec2InstanceId,
        instanceType: type,
        subnetId: ci.subnetId,
        availabilityZone: ci.availabilityZone,
        agent: {
          command: this.o.agentCommand,
          bootstrapToken: token,
          env: {
            BERTH_AGENT_CONTROL_PLANE: this.o.controlPlaneUrl(),
            // The CA the gateway's certificate comes from: the only one the agent trusts.
            BERTH_AGENT_GATEWAY_CA: this.o.gatewayCa(),
            BERTH_AGENT_INSTANCE_ID: ci.ec2InstanceId,
            BERTH_AGENT_INSTANCE_TYPE: ci.instanceType,
            BERTH_AGENT_AVAILABILITY_ZONE: ci.availabilityZone,
            BERTH_AGENT_SUBNET_ID: ci.subnetId,
            BERTH_AGENT_PLATFORM_VERSION: ci.platformVersion ?? 'unknown',
            BERTH_AGENT_PRIVILEGED_CAPABILITIES: (ci.launchConfig?.privilegedCapabilities ?? []).join(' '),
            BERTH_AGENT_HOST_ACCESS: (ci.launchConfig?.hostAccess ?? []).join(' '),
            BERTH_AGENT_FIPS_REQUESTED: ci.launchConfig?.fips ? '1' : '0',
            BERTH_AGENT_TASK_STORAGE_GIB: String(this.o.taskStorageGiB),
          },
        },
      });
      this.o.store.tx(() => {
        const cur = this.o.ecs.containerInstances.get(scope, ci.id);
        if (!cur) return;
        cur.privateIpv4Address = launched.privateIpv4Address;
        if (cur.ec2State === 'pending') cur.ec2State = 'running';
        this.o.ecs.containerInstances.save(scope, cur);
      });
    } catch (e) {
      this.o.log(`fleet: launching ${ci.ec2InstanceId} failed: ${(e as Error).message}`);
      this.o.store.tx(() => {
        const cur = this.o.ecs.containerInstances.get(scope, ci.id);
        if (!cur) return;
        cur.status = 'REGISTRATION_FAILED';
        cur.statusReason = `Instance launch failed: ${(e as Error).message}`;
        this.o.ecs.containerInstances.save(scope, cur);
      });
      await this.terminate(scope, ci.id, 'launch failed');
    }
    this.o.events.changed();
  }

  /** Removes an instance for good; its remaining tasks are stopped. */
  async terminate(scope: string, id: string, reason: string): Promise<void> {
    if (this.terminating.has(id)) return;
    this.terminating.add(id);
    try {
      const ci = this.o.ecs.containerInstances.get(scope, id);
      if (!ci || ci.ec2State === 'terminated') return;
      this.o.store.tx(() => {
        const cur = this.o.ecs.containerInstances.get(scope, id)!;
        cur.ec2State = 'shutting-down';
        if (cur.status !== 'REGISTRATION_FAILED') cur.status = 'INACTIVE';
        cur.statusReason ??= reason;
        this.o.ecs.containerInstances.save(scope, cur);
      });
      this.o.log(`fleet: terminating ${ci.ec2InstanceId} (${reason})`);
      await this.o.provider?.terminate(ci.ec2InstanceId);
      const now = this.o.clock.now();
      this.o.store.tx(() => {
        const cur = this.o.ecs.containerInstances.get(scope, id)!;
        cur.ec2State = 'terminated';
        cur.agentConnected = false;
        cur.terminatedAt = now;
        delete cur.credentialHash;
        delete cur.bootstrapTokenHash;
        this.o.ecs.containerInstances.save(scope, cur);
        for (const t of this.o.ecs.tasks.onInstance(scope, cur.cluster, id)) {
          if (t.lastStatus === 'STOPPED') continue;
          markStopped(t, { reason: `Host EC2 (instance ${cur.ec2InstanceId}) terminated.`, stopCode: 'TerminationNotice', now });
          this.o.ecs.tasks.save(scope, t);
        }
      });
      this.o.events.instanceGone(scope, this.o.ecs.containerInstances.get(scope, id)!);
    } finally {
      this.terminating.delete(id);
      this.o.events.changed();
    }
  }

  isLaunching(id: string): boolean { return this.launching.has(id); }
  isTerminating(id: string): boolean { return this.terminating.has(id); }

  /** After a restart: keep live instances, terminate half-launched ones, clean host leftovers. */
  async recover(): Promise<void> {
    const keep: string[] = [];
    for (const { scope, ci } of this.o.ecs.containerInstances.all()) {
      if (ci.ec2State === 'terminated') continue;
      if (ci.ec2State === 'shutting-down' || ci.status === 'INACTIVE' || ci.status === 'REGISTRATION_FAILED') {
        await this.terminate(scope, ci.id, ci.statusReason ?? 'recovery');
        continue;
      }
      // Its agent gets the heartbeat timeout from now to reconnect.
      ci.agentConnected = false;
      ci.agentLastSeenAt = this.o.liveness.now();
      this.o.ecs.containerInstances.save(scope, ci);
      const alive = await this.o.provider?.isAlive(ci.ec2InstanceId).catch(() => false);
      if (alive) keep.push(ci.ec2InstanceId);
      else await this.terminate(scope, ci.id, 'Instance was lost while the control plane was down');
    }
    if (this.o.provider) {
      const { removed } = await this.o.provider.recover(keep);
      if (removed.length) this.o.log(`fleet: removed leftovers of ${removed.join(', ')}`);
    }
  }

  // Gateway handlers ------------------------------------------------------------------

  /**
   * Checks a hello: a known instance, its bootstrap token or credential, sent from the
   * instance's own address, while no live connection holds the instance. A valid secret
   * presented from elsewhere or while the instance is connected is misuse (a stolen
   * credential): refused and the instance flagged. Nothing is changed until all checks pass.
   */
  async authenticate(hello: Hello, peer: Peer, liveSession: () => Promise<boolean>): Promise<Welcome> {
    const found = this.locate(hello.instanceId);
    if (!found || found.ci.ec2State === 'terminated' || found.ci.ec2State === 'shutting-down') throw new AgentRefused(`unknown instance ${String(hello.instanceId).slice(0, 64)}`);
    const { scope } = found;
    let ci = found.ci;
    const secret = hello.bootstrapToken !== undefined ? 'bootstrap token' : 'instance credential';
    if (!secretMatches(ci, hello)) {
      throw new AgentRefused(hello.bootstrapToken !== undefined ? 'bootstrap token unknown or already used' : 'instance credential rejected', { scope, ci });
    }
    if (ci.privateIpv4Address === undefined) {
      // The agent can dial in before the provider's launch call has returned the address.
      await Promise.race([this.launches.get(ci.id), new Promise((r) => this.o.liveness.after(ADDRESS_WAIT_MS, () => r(undefined)))]);
      ci = this.o.ecs.containerInstances.get(scope, ci.id) ?? ci;
      if (ci.privateIpv4Address === undefined) throw new AgentRefused('the instance has no address yet', { scope, ci });
    }
    if (peerAddress(peer.address) !== ci.privateIpv4Address) {
      throw this.misuse(scope, ci, peer, `the ${secret} of ${ci.ec2InstanceId} was presented from ${peerAddress(peer.address) || 'an unknown address'}, not from the instance's address ${ci.privateIpv4Address}`);
    }
    if (await liveSession()) {
      throw this.misuse(scope, ci, peer, `the ${secret} of ${ci.ec2InstanceId} was presented while the instance's agent is connected`);
    }
    return this.o.store.tx(() => {
      const cur = this.o.ecs.containerInstances.get(scope, ci.id);
      // Checked again: the token may have been used while the liveness probe waited.
      if (!cur || cur.ec2State === 'terminated' || cur.ec2State === 'shutting-down' || !secretMatches(cur, hello)) throw new AgentRefused(`${secret} no longer valid`, { scope, ci });
      let credential: string | undefined;
      if (hello.bootstrapToken !== undefined) {
        credential = randomBytes(32).toString('base64url');
        delete cur.bootstrapTokenHash;
        cur.credentialHash = sha256(credential);
      }
      cur.agentVersion = hello.agentVersion;
      this.o.ecs.containerInstances.save(scope, cur);
      return { type: 'welcome', containerInstanceArn: cur.containerInstanceArn, heartbeatIntervalMs: 5_000, ...(credential ? { credential } : {}) };
    });
  }

  /** Flags the instance (its record and a lifecycle event); the refusal to throw. */
  private misuse(scope: string, ci: ContainerInstanceRecord, peer: Peer, reason: string): AgentRefused {
    const now = this.o.clock.now();
    const flagged = this.o.store.tx(() => {
      const cur = this.o.ecs.containerInstances.get(scope, ci.id);
      if (!cur) return ci;
      cur.credentialMisuse = { at: now, sourceIp: peerAddress(peer.address), reason, count: (cur.credentialMisuse?.count ?? 0) + 1 };
      this.o.ecs.containerInstances.save(scope, cur);
      return cur;
    });
    this.o.log(`fleet: ${ci.ec2InstanceId}: credential misuse: ${reason}`);
    this.o.events.credentialMisused?.(scope, flagged, reason);
    return new AgentRefused(reason, { scope, ci: flagged, misuse: true });
  }

  onConnect(_instanceId: string): void {}

  /** The agent went away; it was last heard from `silentForMs` before (a silent drop). */
  onDisconnect(instanceId: string, silentForMs = 0): void {
    const found = this.locate(instanceId);
    if (!found) return;
    this.o.store.tx(() => {
      const ci = this.o.ecs.containerInstances.get(found.scope, found.ci.id)!;
      ci.agentConnected = false;
      ci.agentLastSeenAt = this.o.liveness.now() - silentForMs;
      this.o.ecs.containerInstances.save(found.scope, ci);
    });
    this.o.events.changed();
  }

  onMessage(instanceId: string, msg: Exclude<AgentMessage, { type: 'hello' }>): void {
    if (msg.type === 'exec-output' || msg.type === 'exec-exit') { this.o.events.exec?.(instanceId, msg); return; }
    const found = this.locate(instanceId);
    if (!found) return;
    const { scope } = found;
    const now = this.o.clock.now();
    switch (msg.type) {
      case 'register': this.register(scope, found.ci.id, msg.attributes, msg.tasks, now); break;
      case 'task': {
        // A report that stops the task files its release (TaskReleases, on the pass this wakes).
        this.o.store.tx(() => this.o.ecs.tasks.applyReport(scope, found.ci.id, this.stamped(msg.report, now), now));
        this.o.events.changed();
        break;
      }
      case 'logs': this.o.events.logs(scope, instanceId, msg); break;
      case 'metrics': this.o.events.metrics(scope, found.ci, msg.tasks); break;
      case 'heartbeat': break;
      case 'health':
        this.o.store.tx(() => {
          const ci = this.o.ecs.containerInstances.get(scope, found.ci.id)!;
          ci.runtimeHealth = { status: msg.runtime, ...(msg.reason ? { reason: msg.reason } : {}) };
          this.o.ecs.containerInstances.save(scope, ci);
        });
        this.o.events.changed();
        break;
    }
  }

  /** With virtual time, the agent's real-time timestamps are replaced by the control plane's. */
  private stamped(r: TaskReport, now: number): TaskReport {
    if (this.o.clock === this.o.liveness) return r;
    const out: TaskReport = { ...r };
    for (const k of ['pullStartedAt', 'pullStoppedAt', 'startedAt', 'stoppingAt', 'executionStoppedAt', 'stoppedAt'] as const) {
      if (out[k] !== undefined) out[k] = now;
    }
    return out;
  }

  private register(scope: string, id: string, attributes: Attribute[], reports: TaskReport[], now: number): void {
    this.o.store.tx(() => {
      const ci = this.o.ecs.containerInstances.get(scope, id)!;
      ci.attributes = attributes;
      ci.agentConnected = true;
      ci.agentLastSeenAt = this.o.liveness.now();
      if (ci.ec2State === 'pending') ci.ec2State = 'running';
      if (ci.status === 'REGISTERING') {
        ci.status = 'ACTIVE';
        ci.registeredAt = now;
      }
      ci.health = { overallStatus: 'OK', details: [{ type: 'CONTAINER_RUNTIME', status: 'OK', lastUpdated: now, lastStatusChange: ci.health.details[0]?.lastStatusChange ?? now }] };
      this.o.ecs.containerInstances.save(scope, ci);
      const known = new Set(reports.map((r) => r.taskArn));
      for (const r of reports) this.o.ecs.tasks.applyReport(scope, id, this.stamped(r, now), now);
      // A task the agent had accepted but no longer knows is lost.
      for (const t of this.o.ecs.tasks.onInstance(scope, ci.cluster, id)) {
        if (t.lastStatus === 'STOPPED' || known.has(t.taskArn) || statusRank(t.lastStatus) < statusRank('PENDING')) continue;
        markStopped(t, { reason: 'Task was lost: the instance agent no longer knows it.', stopCode: 'TaskFailedToStart', now });
        this.o.ecs.tasks.save(scope, t);
      }
    });
    this.o.events.changed();
  }
}
