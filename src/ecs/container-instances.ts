// Container instances: the instances Berth launched for a cluster's managed-instances
// capacity providers, as ECS shows them (one ECS container instance per EC2-style instance).
import type { RequestContext } from '../api/context.js';
import { clientException, invalidParameter } from '../api/errors.js';
import type { Attribute } from '../agent/protocol.js';
import type { Store } from '../store/store.js';
import type { Clusters } from './clusters.js';
import { compileQuery, queryTarget, QueryError, type CompiledQuery } from '../placement/index.js';
import { ecsArn, pageSize, paginate, resolveRef, seconds, sk, type Tag } from './common.js';

export type ContainerInstanceStatus = 'REGISTERING' | 'REGISTRATION_FAILED' | 'ACTIVE' | 'DRAINING' | 'DEREGISTERING' | 'INACTIVE';
export type Ec2State = 'pending' | 'running' | 'shutting-down' | 'terminated';
export type HealthState = 'OK' | 'IMPAIRED' | 'INSUFFICIENT_DATA' | 'INITIALIZING';

export interface ContainerInstanceRecord {
  id: string;
  containerInstanceArn: string;
  ec2InstanceId: string;
  cluster: string;
  capacityProviderName: string;
  instanceType: string;
  subnetId: string;
  availabilityZone: string;
  privateIpv4Address?: string;
  status: ContainerInstanceStatus;
  statusReason?: string;
  ec2State: Ec2State;
  agentConnected: boolean;
  agentLastSeenAt?: number;
  /** CPU units and MiB the instance offers to tasks. */
  registeredCpu: number;
  registeredMemory: number;
  attributes: Attribute[];
  launchedAt: number;
  /** launchedAt on the real-time clock (registration timeouts), when time is virtual. */
  launchedAtReal?: number;
  registeredAt?: number;
  version: number;
  agentVersion?: string;
  tags: Tag[];
  health: { overallStatus: HealthState; details: { type: string; status: HealthState; lastUpdated: number; lastStatusChange: number; statusReason?: string }[] };
  /** Hashes of the single-use bootstrap token and of the agent's long-lived credential. */
  bootstrapTokenHash?: string;
  credentialHash?: string;
  /** The last time a valid credential of this instance was presented from elsewhere or while it was connected. */
  credentialMisuse?: { at: number; sourceIp: string; reason: string; count: number };
  terminatedAt?: number;
  /** Scale-in timers: when it became idle or underutilised, and when a task last started on it. */
  idleSince?: number;
  underutilisedSince?: number;
  lastTaskStartedAt?: number;
  /** The platform (instance image) version it was launched with. */
  platformVersion?: string;
  /** When it started draining, and why (lifecycle, scale-in or a user). */
  drainStartedAt?: number;
  drainReason?: string;
  /** When the drain's hard deadline stopped the remaining tasks. */
  hardStopAt?: number;
  /** What the agent reports about its container runtime. */
  runtimeHealth?: { status: 'OK' | 'IMPAIRED'; reason?: string };
  /** The provider's settings when the instance was launched (later changes apply to new instances). */
  launchConfig?: { singleTaskMode: boolean; privilegedCapabilities: string[]; hostAccess?: string[]; fips: boolean };
}

/** Ports ECS reserves on every container instance. */
export const RESERVED_TCP_PORTS = ['22', '2375', '2376', '51678', '51679'];

/** Live usage of an instance by its tasks (computed by the task module). */
export interface InstanceUsage { cpu: number; memory: number; tcpPorts: string[]; udpPorts: string[]; running: number; pending: number; enis: number }
export type UsageSource = (scope: string, instanceId: string) => InstanceUsage;
const noUsage: UsageSource = () => ({ cpu: 0, memory: 0, tcpPorts: [], udpPorts: [], running: 0, pending: 0, enis: 0 });

const KIND = 'container-instance';
const LIVE: ContainerInstanceStatus[] = ['REGISTERING', 'ACTIVE', 'DRAINING', 'DEREGISTERING'];

export class ContainerInstances {
  usage: UsageSource = noUsage;
  /** Called after an instance is asked to go away (deregistered); the fleet terminates it. */
  onDeregistered: (scope: string, ci: ContainerInstanceRecord) => void = () => {};
  /** Called when an instance's state changes in a way the scheduler cares about. */
  onChange: (scope: string, ci: ContainerInstanceRecord) => void = () => {};

  constructor(private readonly store: Store, private readonly clusters: Clusters) {}

  get(scope: string, id: string): ContainerInstanceRecord | undefined {
    return this.store.get<ContainerInstanceRecord>(KIND, scope, id);
  }

  save(scope: string, ci: ContainerInstanceRecord): void {
    ci.version++;
    // Terminated instances are filed apart, so passes over the fleet skip them.
    this.store.put(KIND, scope, ci.id, ci, ci.cluster, ci.ec2State === 'terminated' ? 'gone' : 'live');
  }

  /** The cluster's instances that are not terminated. */
  ofCluster(scope: string, cluster: string): ContainerInstanceRecord[] {
    return this.store.list<ContainerInstanceRecord>(KIND, scope, { parent: cluster, tag: 'live' });
  }

  /** Every instance that is not terminated, in every scope. */
  all(): { scope: string; ci: ContainerInstanceRecord }[] {
    return this.store.listAll<ContainerInstanceRecord>(KIND, 'live').map(({ scope, body }) => ({ scope, ci: body }));
  }

  isLive(ci: ContainerInstanceRecord): boolean {
    return LIVE.includes(ci.status);
  }

  arn(ctx: RequestContext, cluster: string, id: string): string {
    return ecsArn(ctx.scope, `container-instance/${cluster}/${id}`);
  }

  /** id, `cluster/id` or ARN → the record in `cluster`. */
  resolve(ctx: RequestContext, cluster: string, ref: string): ContainerInstanceRecord | undefined {
    const text = resolveRef(ctx, ref, 'container-instance', 'containerInstance');
    const id = text.includes('/') ? text.slice(text.lastIndexOf('/') + 1) : text;
    const ci = this.get(sk(ctx.scope), id);
    return ci && ci.cluster === cluster ? ci : undefined;
  }

  view(scope: string, ci: ContainerInstanceRecord, includeTags = false): Record<string, unknown> {
    const u = this.usage(scope, ci.id);
    const tcpUsed = [...RESERVED_TCP_PORTS, ...u.tcpPorts];
    const out: Record<string, unknown> = {
      containerInstanceArn: ci.containerInstanceArn,
      ec2InstanceId: ci.ec2InstanceId,
      capacityProviderName: ci.capacityProviderName,
      version: ci.version,
      versionInfo: { agentVersion: ci.agentVersion ?? '', agentHash: '', dockerVersion: 'runc' },
      remainingResources: [
        { name: 'CPU', type: 'INTEGER', integerValue: Math.max(0, ci.registeredCpu - u.cpu) },
        { name: 'MEMORY', type: 'INTEGER', integerValue: Math.max(0, ci.registeredMemory - u.memory) },
        { name: 'PORTS', type: 'STRINGSET', stringSetValue: tcpUsed },
        { name: 'PORTS_UDP', type: 'STRINGSET', stringSetValue: u.udpPorts },
      ],
      registeredResources: [
        { name: 'CPU', type: 'INTEGER', integerValue: ci.registeredCpu },
        { name: 'MEMORY', type: 'INTEGER', integerValue: ci.registeredMemory },
        { name: 'PORTS', type: 'STRINGSET', stringSetValue: RESERVED_TCP_PORTS },
        { name: 'PORTS_UDP', type: 'STRINGSET', stringSetValue: [] },
      ],
      status: ci.status,
      agentConnected: ci.agentConnected,
      runningTasksCount: u.running,
      pendingTasksCount: u.pending,
      attributes: ci.attributes,
      registeredAt: seconds(ci.registeredAt ?? ci.launchedAt),
      attachments: [],
      healthStatus: {
        overallStatus: ci.health.overallStatus,
        details: ci.health.details.map((d) => ({ ...d, lastUpdated: seconds(d.lastUpdated), lastStatusChange: seconds(d.lastStatusChange) })),
      },
    };
    if (ci.statusReason) out.statusReason = ci.statusReason;
    if (includeTags) out.tags = ci.tags;
    return out;
  }

  list(ctx: RequestContext, input: { cluster?: string; filter?: string; status?: ContainerInstanceStatus; maxResults?: number; nextToken?: string }) {
    const c = this.clusters.require(ctx, input.cluster);
    const max = pageSize(input.maxResults, 100);
    let query: CompiledQuery | undefined;
    if (input.filter !== undefined) {
      try { query = compileQuery(input.filter); } catch (e) {
        if (e instanceof QueryError) throw invalidParameter(`filter: ${e.message}`);
        throw e;
      }
    }
    const scope = sk(ctx.scope);
    const all = this.ofCluster(scope, c.clusterName)
      .filter((ci) => (input.status ? ci.status === input.status : ci.status === 'ACTIVE' || ci.status === 'DRAINING'))
      .filter((ci) => !query || query(queryTarget({
        attributes: ci.attributes, availabilityZone: ci.availabilityZone, subnetId: ci.subnetId, instanceType: ci.instanceType,
        agentConnected: ci.agentConnected, ec2InstanceId: ci.ec2InstanceId, runningTasksCount: this.usage(scope, ci.id).running,
        ...(ci.agentVersion ? { agentVersion: ci.agentVersion } : {}), ...(ci.registeredAt ? { registeredAt: ci.registeredAt } : {}),
      })));
    const { page, nextToken } = paginate(all, (ci) => ci.id, max, input.nextToken);
    return { containerInstanceArns: page.map((ci) => ci.containerInstanceArn), ...(nextToken ? { nextToken } : {}) };
  }

  describe(ctx: RequestContext, input: { cluster?: string; containerInstances: string[]; include?: string[] }) {
    const c = this.clusters.require(ctx, input.cluster);
    if (input.containerInstances.length === 0 || input.containerInstances.length > 100) {
      throw invalidParameter(`containerInstances must list between 1 and 100 container instances; got ${input.containerInstances.length}.`);
    }
    const scope = sk(ctx.scope);
    const includeTags = (input.include ?? []).includes('TAGS');
    const containerInstances: unknown[] = [];
    const failures: { arn: string; reason: string }[] = [];
    for (const ref of input.containerInstances) {
      const ci = this.resolve(ctx, c.clusterName, ref);
      if (ci) containerInstances.push(this.view(scope, ci, includeTags));
      else failures.push({ arn: ref.startsWith('arn:') ? ref : this.arn(ctx, c.clusterName, ref), reason: 'MISSING' });
    }
    return { containerInstances, failures };
  }

  updateState(ctx: RequestContext, input: { cluster?: string; containerInstances: string[]; status: ContainerInstanceStatus }) {
    if (input.status !== 'ACTIVE' && input.status !== 'DRAINING') {
      throw invalidParameter(`Container instances can only be set to ACTIVE or DRAINING; got ${input.status}.`);
    }
    if (input.containerInstances.length === 0 || input.containerInstances.length > 10) {
      throw invalidParameter(`containerInstances must list between 1 and 10 container instances; got ${input.containerInstances.length}.`);
    }
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const c = this.clusters.require(ctx, input.cluster);
      const containerInstances: unknown[] = [];
      const failures: { arn: string; reason: string; detail?: string }[] = [];
      for (const ref of input.containerInstances) {
        const ci = this.resolve(ctx, c.clusterName, ref);
        if (!ci || !this.isLive(ci)) { failures.push({ arn: ref, reason: 'MISSING' }); continue; }
        if (ci.status !== 'ACTIVE' && ci.status !== 'DRAINING') {
          failures.push({ arn: ci.containerInstanceArn, reason: 'INVALID_STATE', detail: `The container instance is ${ci.status}.` });
          continue;
        }
        if (ci.status !== input.status) {
          ci.status = input.status;
          if (input.status === 'DRAINING') { ci.drainStartedAt = ctx.clock.now(); ci.drainReason = 'user'; }
          else { delete ci.drainStartedAt; delete ci.drainReason; delete ci.hardStopAt; delete ci.statusReason; }
          this.save(scope, ci);
          this.onChange(scope, ci);
        }
        containerInstances.push(this.view(scope, ci));
      }
      return { containerInstances, failures };
    });
  }

  deregister(ctx: RequestContext, input: { cluster?: string; containerInstance: string; force?: boolean }) {
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const c = this.clusters.require(ctx, input.cluster);
      const ci = this.resolve(ctx, c.clusterName, input.containerInstance);
      if (!ci || !this.isLive(ci)) throw invalidParameter('The specified container instance was not found, or it is not registered.');
      const u = this.usage(scope, ci.id);
      if (u.running + u.pending > 0 && !input.force) {
        throw clientException(`The container instance has ${u.running + u.pending} tasks; stop them first, or deregister with force (its tasks are then stopped).`);
      }
      ci.status = 'INACTIVE';
      ci.statusReason = 'Deregistered by user';
      this.save(scope, ci);
      this.onDeregistered(scope, ci);
      return { containerInstance: this.view(scope, ci) };
    });
  }
}
