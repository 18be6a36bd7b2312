// Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks, and the task records the
// scheduler places and the agents report on. Statuses only move forward.
import { randomBytes, randomUUID } from 'node:crypto';
import type { RequestContext } from '../api/context.js';
import { scopeFromKey, type Scope } from '../domain/arn.js';
import { clientException, invalidParameter } from '../api/errors.js';
import { laterStatus, statusRank, type TaskReport, type TaskStatus } from '../agent/protocol.js';
import type { Store } from '../store/store.js';
import type { CapacityProviderRecord, CapacityProviders } from './capacity-providers.js';
import type { Clusters } from './clusters.js';
import type { ContainerInstances, InstanceUsage } from './container-instances.js';
import { decodeToken, ecsArn, encodeToken, pageSize, resolveRef, seconds, sk, validateTags, type Tag } from './common.js';
import { effectiveStrategy } from './strategy.js';
import { markStopped, RELEASE_KIND, releaseFor } from './task-stop.js';
import { assignProviders } from '../placement/capacity-split.js';
import { managedInstancesProblems, parseTaskCpu, parseTaskMemory, type Json } from './task-definition-rules.js';
import type { TaskDefinitionRecord, TaskDefinitions } from './task-definitions.js';
import { placementConstraintsProblem, strategyProblem } from '../placement/index.js';

export interface TaskContainerRecord {
  containerArn: string;
  name: string;
  image: string;
  imageDigest?: string;
  runtimeId?: string;
  lastStatus: 'PENDING' | 'RUNNING' | 'STOPPED';
  exitCode?: number;
  reason?: string;
  healthStatus?: string;
  networkBindings: { bindIP: string; containerPort: number; hostPort: number; protocol: string }[];
  cpu: number;
  memory?: number;
  memoryReservation?: number;
}

export interface TaskNetworkAttachment {
  attachmentId: string;
  interfaceId: string;
  netnsPath: string;
  ipv4Address: string;
  gateway: string;
  prefixLength: number;
  macAddress: string;
  subnetId: string;
}

/** What a task holds on its instance while it is not STOPPED. */
export interface TaskReservation { cpu: number; memory: number; tcpPorts: string[]; udpPorts: string[]; eni: boolean }

export interface TaskRecord {
  id: string;
  taskArn: string;
  cluster: string;
  clusterArn: string;
  taskDefinitionArn: string;
  family: string;
  revision: number;
  capacityProviderName: string;
  containerInstanceId?: string;
  availabilityZone?: string;
  lastStatus: TaskStatus;
  desiredStatus: 'RUNNING' | 'STOPPED';
  createdAt: number;
  startedBy?: string;
  group: string;
  tags: Tag[];
  overrides: Json;
  enableExecuteCommand: boolean;
  cpu?: string;
  memory?: string;
  containers: TaskContainerRecord[];
  reservation: TaskReservation;
  networkMode: 'awsvpc' | 'host';
  /** Subnets the task may be placed in (RunTask networkConfiguration, or the provider's). */
  subnets?: string[];
  network?: TaskNetworkAttachment;
  /** Instance a StartTask call pinned the task to. */
  pinnedInstanceId?: string;
  /** Started by AZ rebalancing, confined to this zone (its `subnets` are the zone's). */
  rebalanceZone?: string;
  stoppedReason?: string;
  stopCode?: string;
  pullStartedAt?: number;
  pullStoppedAt?: number;
  startedAt?: number;
  stoppingAt?: number;
  executionStoppedAt?: number;
  stoppedAt?: number;
  connectivityAt?: number;
  version: number;
  /** Placement failure reasons while the task waits for capacity. */
  waitingReason?: string;
  healthStatus?: 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';
  /** The service and deployment that started the task, if any. */
  serviceName?: string;
  deploymentId?: string;
  /** The service controller has counted this task's stop. */
  accounted?: boolean;
  /** What the task held outside its record has been let go (see task-stop.ts). */
  released?: boolean;
  placementConstraints?: Json[];
  placementStrategy?: Json[];
  /** The instance launched for this task, while it waits for it. */
  awaitingInstanceId?: string;
  /** Task scale-in protection, until (epoch ms). */
  protectedUntil?: number;
}

const KIND = 'task';
// Tasks are filed by lifecycle, so that passes over live tasks ignore the stopped ones.
const LIVE = 'live';
const STOPPED = 'stopped';
const UNACCOUNTED = 'stopped-unaccounted';
const tagOf = (t: TaskRecord) => (t.lastStatus !== 'STOPPED' ? LIVE : t.serviceName && !t.accounted ? UNACCOUNTED : STOPPED);
const CLIENT_TOKEN = 'run-task-token';

/** CPU units, MiB and ports a task needs, from its definition and overrides. */
export function taskReservation(td: TaskDefinitionRecord, overrides: Json): TaskReservation {
  const body = td.body;
  const ov = new Map<string, Json>((overrides.containerOverrides ?? []).map((o: Json) => [o.name, o] as const));
  const containers: Json[] = body.containerDefinitions.map((c: Json) => ({ ...c, ...pick(ov.get(c.name), ['cpu', 'memory', 'memoryReservation']) }));
  const taskCpu = overrides.cpu ?? body.cpu;
  const taskMemory = overrides.memory ?? body.memory;
  const cpu = taskCpu !== undefined ? parseTaskCpu(String(taskCpu))! : containers.reduce((s, c) => s + (c.cpu ?? 0), 0);
  const memory = taskMemory !== undefined ? parseTaskMemory(String(taskMemory))! : containers.reduce((s, c) => s + (c.memoryReservation ?? c.memory ?? 0), 0);
  const tcpPorts: string[] = [];
  const udpPorts: string[] = [];
  if (body.networkMode === 'host') {
    for (const c of containers) {
      for (const pm of c.portMappings ?? []) {
        if (pm.containerPort === undefined) continue;
        (pm.protocol === 'udp' ? udpPorts : tcpPorts).push(String(pm.hostPort ?? pm.containerPort));
      }
    }
  }
  return { cpu, memory, tcpPorts, udpPorts, eni: body.networkMode === 'awsvpc' };
}

function pick(o: Json | undefined, keys: string[]): Json {
  const out: Json = {};
  for (const k of keys) if (o?.[k] !== undefined) out[k] = o[k];
  return out;
}

const newTaskId = () => randomBytes(16).toString('hex');

/** Why a new task could never run on its provider (a RunTask failure), or undefined. */
export type TaskPrecheck = (t: TaskRecord, td: TaskDefinitionRecord, provider: CapacityProviderRecord) => { reason: string; detail: string } | undefined;

export class Tasks {
  /** Wakes the scheduler when tasks need placing or stopping. */
  onChange: (scope: string, cluster: string) => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly clusters: Clusters,
    private readonly taskDefinitions: TaskDefinitions,
    private readonly providers: CapacityProviders,
    private readonly instances: ContainerInstances,
    /** Says why a new task can never run, if it cannot (controllers/precheck.ts). */
    private readonly precheck: TaskPrecheck,
  ) {
    instances.usage = (scope, id) => this.usage(scope, id);
    taskDefinitions.inUse = (scope, arn) => this.store.listAll<TaskRecord>(KIND, LIVE).some((t) => t.scope === scope && t.body.taskDefinitionArn === arn);
  }

  get(scope: string, id: string): TaskRecord | undefined {
    return this.store.get<TaskRecord>(KIND, scope, id);
  }

  /** Writes the task; a stopped one not yet released files its release in the same transaction. */
  save(scope: string, t: TaskRecord): void {
    t.version++;
    const release = releaseFor(t);
    if (!release) { this.store.put(KIND, scope, t.id, t, t.cluster, tagOf(t)); return; }
    this.store.tx(() => {
      this.store.put(KIND, scope, t.id, t, t.cluster, tagOf(t));
      this.store.put(RELEASE_KIND, scope, t.id, release);
    });
  }

  /** The cluster's tasks that are not STOPPED. */
  ofCluster(scope: string, cluster: string): TaskRecord[] {
    return this.store.list<TaskRecord>(KIND, scope, { parent: cluster, tag: LIVE });
  }

  /** Stopped service tasks the service controller has not looked at yet. */
  unaccounted(scope: string, cluster: string): TaskRecord[] {
    return this.store.list<TaskRecord>(KIND, scope, { parent: cluster, tag: UNACCOUNTED });
  }

  /** The cluster's STOPPED tasks (kept for an hour). */
  stoppedOfCluster(scope: string, cluster: string): TaskRecord[] {
    return [...this.unaccounted(scope, cluster), ...this.store.list<TaskRecord>(KIND, scope, { parent: cluster, tag: STOPPED })];
  }

  /** Every task that is not STOPPED, in every scope. */
  all(): { scope: string; task: TaskRecord }[] {
    return this.store.listAll<TaskRecord>(KIND, LIVE).map(({ scope, body }) => ({ scope, task: body }));
  }

  onInstance(scope: string, cluster: string, instanceId: string): TaskRecord[] {
    return this.ofCluster(scope, cluster).filter((t) => t.containerInstanceId === instanceId);
  }

  usage(scope: string, instanceId: string): InstanceUsage {
    const ci = this.instances.get(scope, instanceId);
    const u: InstanceUsage = { cpu: 0, memory: 0, tcpPorts: [], udpPorts: [], running: 0, pending: 0, enis: 0 };
    if (!ci) return u;
    for (const t of this.onInstance(scope, ci.cluster, instanceId)) {
      if (t.lastStatus === 'STOPPED') continue;
      u.cpu += t.reservation.cpu;
      u.memory += t.reservation.memory;
      u.tcpPorts.push(...t.reservation.tcpPorts);
      u.udpPorts.push(...t.reservation.udpPorts);
      if (t.reservation.eni) u.enis++;
      if (t.lastStatus === 'RUNNING') u.running++; else u.pending++;
    }
    return u;
  }

  view(scope: string, t: TaskRecord, includeTags = false): Json {
    const ts = (k: keyof TaskRecord) => (t[k] !== undefined ? { [k]: seconds(t[k] as number) } : {});
    const ci = t.containerInstanceId ? this.instances.get(scope, t.containerInstanceId) : undefined;
    const out: Json = {
      attachments: t.network ? [{
        id: t.network.attachmentId, type: 'ElasticNetworkInterface',
        status: t.lastStatus === 'STOPPED' ? 'DELETED' : 'ATTACHED',
        details: [
          { name: 'subnetId', value: t.network.subnetId },
          { name: 'networkInterfaceId', value: t.network.interfaceId },
          { name: 'macAddress', value: t.network.macAddress },
          { name: 'privateIPv4Address', value: t.network.ipv4Address },
        ],
      }] : [],
      attributes: [{ name: 'ecs.cpu-architecture', value: ci?.attributes.find((a) => a.name === 'ecs.cpu-architecture')?.value ?? 'x86_64' }],
      ...(t.availabilityZone ? { availabilityZone: t.availabilityZone } : {}),
      capacityProviderName: t.capacityProviderName,
      clusterArn: t.clusterArn,
      ...(ci ? { containerInstanceArn: ci.containerInstanceArn } : {}),
      containers: t.containers.map((c) => ({
        containerArn: c.containerArn, taskArn: t.taskArn, name: c.name, image: c.image,
        ...(c.imageDigest ? { imageDigest: c.imageDigest } : {}),
        ...(c.runtimeId ? { runtimeId: c.runtimeId } : {}),
        lastStatus: c.lastStatus,
        ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
        ...(c.reason ? { reason: c.reason } : {}),
        networkBindings: c.networkBindings,
        networkInterfaces: t.network ? [{ attachmentId: t.network.attachmentId, privateIpv4Address: t.network.ipv4Address }] : [],
        healthStatus: c.healthStatus ?? 'UNKNOWN',
        cpu: String(c.cpu),
        ...(c.memory !== undefined ? { memory: String(c.memory) } : {}),
        ...(c.memoryReservation !== undefined ? { memoryReservation: String(c.memoryReservation) } : {}),
        ...(t.enableExecuteCommand ? { managedAgents: [{ name: 'ExecuteCommandAgent', lastStatus: c.lastStatus === 'RUNNING' ? 'RUNNING' : c.lastStatus === 'STOPPED' ? 'STOPPED' : 'PENDING', ...(t.startedAt ? { lastStartedAt: seconds(t.startedAt) } : {}) }] } : {}),
      })),
      ...(t.cpu !== undefined ? { cpu: t.cpu } : {}),
      ...(t.memory !== undefined ? { memory: t.memory } : {}),
      connectivity: t.containerInstanceId && t.lastStatus !== 'STOPPED' ? 'CONNECTED' : 'DISCONNECTED',
      ...ts('connectivityAt'),
      createdAt: seconds(t.createdAt),
      desiredStatus: t.desiredStatus,
      enableExecuteCommand: t.enableExecuteCommand,
      group: t.group,
      healthStatus: t.healthStatus ?? 'UNKNOWN',
      lastStatus: t.lastStatus,
      launchType: 'MANAGED_INSTANCES',
      overrides: { containerOverrides: [], inferenceAcceleratorOverrides: [], ...t.overrides },
      platformFamily: 'Linux',
      ...ts('pullStartedAt'), ...ts('pullStoppedAt'), ...ts('startedAt'), ...ts('stoppingAt'), ...ts('executionStoppedAt'), ...ts('stoppedAt'),
      ...(t.startedBy ? { startedBy: t.startedBy } : {}),
      ...(t.stopCode ? { stopCode: t.stopCode } : {}),
      ...(t.stoppedReason ? { stoppedReason: t.stoppedReason } : {}),
      taskArn: t.taskArn,
      taskDefinitionArn: t.taskDefinitionArn,
      version: t.version,
    };
    if (includeTags) out.tags = t.tags;
    return out;
  }

  private newTask(ctx: { scope: Scope; clock: { now(): number } }, input: Json, clusterName: string, td: TaskDefinitionRecord, provider: string): TaskRecord {
    const id = newTaskId();
    const overrides: Json = input.overrides ?? {};
    const ov = new Map<string, Json>((overrides.containerOverrides ?? []).map((o: Json) => [o.name, o] as const));
    const tags: Tag[] = [...(input.propagateTags === 'TASK_DEFINITION' ? td.tags : []), ...(input.tags ?? [])].map((t: Tag) => ({ key: t.key, value: t.value ?? '' }));
    return {
      id,
      taskArn: ecsArn(ctx.scope, `task/${clusterName}/${id}`),
      cluster: clusterName,
      clusterArn: ecsArn(ctx.scope, `cluster/${clusterName}`),
      taskDefinitionArn: td.taskDefinitionArn,
      family: td.family,
      revision: td.revision,
      capacityProviderName: provider,
      lastStatus: 'PROVISIONING',
      desiredStatus: 'RUNNING',
      createdAt: ctx.clock.now(),
      ...(input.startedBy ? { startedBy: input.startedBy } : {}),
      group: input.group ?? `family:${td.family}`,
      tags,
      overrides,
      enableExecuteCommand: input.enableExecuteCommand ?? false,
      ...(overrides.cpu ?? td.body.cpu ? { cpu: String(parseTaskCpu(String(overrides.cpu ?? td.body.cpu))) } : {}),
      ...(overrides.memory ?? td.body.memory ? { memory: String(parseTaskMemory(String(overrides.memory ?? td.body.memory))) } : {}),
      containers: td.body.containerDefinitions.map((c: Json) => {
        const o = ov.get(c.name) ?? {};
        return {
          containerArn: ecsArn(ctx.scope, `container/${clusterName}/${id}/${randomUUID()}`),
          name: c.name, image: c.image, lastStatus: 'PENDING', networkBindings: [],
          cpu: o.cpu ?? c.cpu ?? 0,
          ...(o.memory ?? c.memory ? { memory: o.memory ?? c.memory } : {}),
          ...(o.memoryReservation ?? c.memoryReservation ? { memoryReservation: o.memoryReservation ?? c.memoryReservation } : {}),
        };
      }),
      reservation: taskReservation(td, overrides),
      networkMode: td.body.networkMode,
      ...(input.networkConfiguration?.awsvpcConfiguration?.subnets ? { subnets: input.networkConfiguration.awsvpcConfiguration.subnets } : {}),
      ...(input.placementConstraints?.length ? { placementConstraints: input.placementConstraints } : {}),
      ...(input.placementStrategy?.length ? { placementStrategy: input.placementStrategy } : {}),
      version: 0,
    };
  }

  /** Tasks a service deployment starts (the service controller's launches). */
  createForService(scope: string, now: number, s: { serviceName: string; cluster: string; placementConstraints: Json[]; placementStrategy: Json[]; propagateTags: string; tags: Tag[] },
    d: { id: string; taskDefinition: string; enableExecuteCommand: boolean; networkConfiguration?: Json }, provider: string, count: number,
    zone?: { name: string; subnets: string[] }): TaskRecord[] {
    const td = this.taskDefinitions.byArn(scope, d.taskDefinition);
    if (!td) return [];
    const out: TaskRecord[] = [];
    for (let i = 0; i < count; i++) {
      const t = this.newTask({ scope: scopeFromKey(scope), clock: { now: () => now } }, {
        group: `service:${s.serviceName}`, startedBy: d.id, enableExecuteCommand: d.enableExecuteCommand,
        propagateTags: s.propagateTags === 'TASK_DEFINITION' ? 'TASK_DEFINITION' : 'NONE',
        tags: s.propagateTags === 'SERVICE' ? s.tags : [],
        placementConstraints: s.placementConstraints, placementStrategy: s.placementStrategy,
        ...(d.networkConfiguration ? { networkConfiguration: d.networkConfiguration } : {}),
      }, s.cluster, td, provider);
      t.serviceName = s.serviceName;
      t.deploymentId = d.id;
      if (zone) { t.rebalanceZone = zone.name; t.subnets = zone.subnets; }
      this.save(scope, t);
      out.push(t);
    }
    return out;
  }

  private checkCommon(ctx: RequestContext, input: Json): TaskDefinitionRecord {
    const placementProblem = placementConstraintsProblem(input.placementConstraints ?? []) ?? strategyProblem(input.placementStrategy ?? []);
    if (placementProblem) throw invalidParameter(placementProblem);
    if (input.launchType !== undefined && input.launchType !== 'MANAGED_INSTANCES') {
      throw invalidParameter(`launchType ${input.launchType} is not supported: Berth runs tasks on managed instances. Omit launchType and use a capacityProviderStrategy.`);
    }
    if (input.launchType !== undefined && input.capacityProviderStrategy?.length) {
      throw invalidParameter('Specifying both a launchType and capacityProviderStrategy is not supported.');
    }
    if (input.startedBy !== undefined && !/^[a-zA-Z0-9_-]{1,128}$/.test(input.startedBy)) {
      throw invalidParameter('startedBy can have up to 128 letters (uppercase and lowercase), numbers, hyphens and underscores.');
    }
    if (input.group !== undefined && (input.group.length === 0 || input.group.length > 255)) throw invalidParameter('group must have between 1 and 255 characters.');
    validateTags(input.tags ?? []);
    const td = this.taskDefinitions.resolve(ctx, input.taskDefinition);
    if (!td || td.status !== 'ACTIVE') {
      throw clientException(td ? `TaskDefinition is inactive: ${td.taskDefinitionArn}` : 'Unable to find task definition.');
    }
    const problems = managedInstancesProblems(td.body);
    if (problems.length > 0) {
      throw clientException(`Task definition does not support launch_type MANAGED_INSTANCES: ${problems[0]}`);
    }
    const names = new Set(td.body.containerDefinitions.map((c: Json) => c.name));
    for (const o of input.overrides?.containerOverrides ?? []) {
      if (!names.has(o.name)) throw invalidParameter(`Container override names container '${o.name}', which is not in task definition ${td.family}:${td.revision}.`);
    }
    for (const k of ['cpu', 'memory'] as const) {
      const v = input.overrides?.[k];
      if (v !== undefined && (k === 'cpu' ? parseTaskCpu(v) : parseTaskMemory(v)) === undefined) throw invalidParameter(`Invalid task ${k} override '${v}'.`);
    }
    const awsvpc = input.networkConfiguration?.awsvpcConfiguration;
    if (awsvpc && td.body.networkMode !== 'awsvpc') throw invalidParameter(`networkConfiguration is only valid for tasks in awsvpc network mode; ${td.family} uses ${td.body.networkMode}.`);
    if (awsvpc && (!awsvpc.subnets?.length || awsvpc.subnets.length > 16)) throw invalidParameter('awsvpcConfiguration.subnets must list between 1 and 16 subnets.');
    return td;
  }

  run(ctx: RequestContext, input: Json) {
    const count = input.count ?? 1;
    if (count < 1 || count > 10) throw invalidParameter(`count must be between 1 and 10; got ${count}.`);
    const scope = sk(ctx.scope);
    const result = this.store.tx(() => {
      if (input.clientToken !== undefined) {
        const prior = this.store.get<{ taskIds: string[]; at: number }>(CLIENT_TOKEN, scope, input.clientToken);
        if (prior) return { tasks: prior.taskIds.map((id) => this.view(scope, this.get(scope, id)!)), failures: [] };
      }
      const td = this.checkCommon(ctx, input);
      const cluster = this.clusters.require(ctx, input.cluster);
      // ECS splits the tasks over the strategy: `base` first, then by `weight`.
      const strategy = effectiveStrategy(cluster, this.providers.providersOf(scope, cluster.clusterName), input.capacityProviderStrategy);
      const providers = assignProviders(strategy, count);
      for (const provider of new Set(providers)) {
        if (!input.networkConfiguration?.awsvpcConfiguration?.subnets) break;
        const p = this.providers.get(scope, provider)!;
        const allowed = new Set(p.managedInstancesProvider.instanceLaunchTemplate.networkConfiguration.subnets ?? []);
        for (const s of input.networkConfiguration.awsvpcConfiguration.subnets) {
          if (!allowed.has(s)) throw invalidParameter(`Subnet '${s}' is not one of capacity provider '${provider}''s subnets (${[...allowed].join(', ')}).`);
        }
      }
      const tasks: TaskRecord[] = [];
      const failures: Json[] = [];
      for (const provider of providers) {
        const t = this.newTask(ctx, input, cluster.clusterName, td, provider);
        const p = this.providers.get(scope, provider)!;
        const never = this.precheck(t, td, p);
        if (never) { failures.push({ arn: p.capacityProviderArn, ...never }); continue; }
        this.save(scope, t);
        tasks.push(t);
      }
      if (input.clientToken !== undefined) this.store.put(CLIENT_TOKEN, scope, input.clientToken, { taskIds: tasks.map((t) => t.id), at: ctx.clock.now() });
      return { tasks: tasks.map((t) => this.view(scope, t)), failures, cluster: cluster.clusterName };
    });
    if ('cluster' in result) this.onChange(scope, result.cluster as string);
    return { tasks: result.tasks, failures: result.failures };
  }

  start(ctx: RequestContext, input: Json) {
    const scope = sk(ctx.scope);
    if (input.containerInstances.length === 0 || input.containerInstances.length > 10) {
      throw invalidParameter(`containerInstances must list between 1 and 10 container instances; got ${input.containerInstances.length}.`);
    }
    const out = this.store.tx(() => {
      const td = this.checkCommon(ctx, input);
      const cluster = this.clusters.require(ctx, input.cluster);
      const tasks: Json[] = [];
      const failures: Json[] = [];
      for (const ref of input.containerInstances) {
        const ci = this.instances.resolve(ctx, cluster.clusterName, ref);
        if (!ci || !this.instances.isLive(ci)) { failures.push({ arn: ref, reason: 'MISSING' }); continue; }
        const t = this.newTask(ctx, input, cluster.clusterName, td, ci.capacityProviderName);
        t.pinnedInstanceId = ci.id;
        this.save(scope, t);
        tasks.push(this.view(scope, t));
      }
      return { tasks, failures, cluster: cluster.clusterName };
    });
    this.onChange(scope, out.cluster);
    return { tasks: out.tasks, failures: out.failures };
  }

  /** Marks a task to stop; one that never reached an agent stops at once. */
  requestStop(scope: string, t: TaskRecord, reason: string, stopCode: string, now: number): void {
    if (t.desiredStatus === 'STOPPED' && t.lastStatus === 'STOPPED') return;
    t.desiredStatus = 'STOPPED';
    t.stoppedReason ??= reason;
    t.stopCode ??= stopCode;
    const sentToAgent = t.containerInstanceId !== undefined && (t.networkMode !== 'awsvpc' || t.network !== undefined);
    if (!sentToAgent) {
      markStopped(t, { reason, stopCode, now });
    } else {
      t.stoppingAt ??= now;
    }
    this.save(scope, t);
  }

  stop(ctx: RequestContext, input: { cluster?: string; task: string; reason?: string }) {
    const scope = sk(ctx.scope);
    if (input.reason !== undefined && input.reason.length > 255) throw invalidParameter('reason can have at most 255 characters.');
    const out = this.store.tx(() => {
      const cluster = this.clusters.require(ctx, input.cluster);
      const t = this.resolve(ctx, cluster.clusterName, input.task);
      if (!t) throw invalidParameter('The referenced task was not found.');
      this.requestStop(scope, t, input.reason ?? 'Task stopped by user', 'UserInitiated', ctx.clock.now());
      return { task: this.view(scope, t), cluster: cluster.clusterName };
    });
    this.onChange(scope, out.cluster);
    return { task: out.task };
  }

  resolve(ctx: RequestContext, cluster: string, ref: string): TaskRecord | undefined {
    const text = resolveRef(ctx, ref, 'task', 'task');
    const id = text.slice(text.lastIndexOf('/') + 1);
    if (!/^[0-9a-f]{32}$/.test(id)) return undefined;
    const t = this.get(sk(ctx.scope), id);
    return t && t.cluster === cluster ? t : undefined;
  }

  describe(ctx: RequestContext, input: { cluster?: string; tasks: string[]; include?: string[] }) {
    if (input.tasks.length === 0 || input.tasks.length > 100) throw invalidParameter(`tasks must list between 1 and 100 tasks; got ${input.tasks.length}.`);
    const cluster = this.clusters.require(ctx, input.cluster);
    const scope = sk(ctx.scope);
    const includeTags = (input.include ?? []).includes('TAGS');
    const tasks: Json[] = [];
    const failures: Json[] = [];
    for (const ref of input.tasks) {
      const t = this.resolve(ctx, cluster.clusterName, ref);
      if (t) tasks.push(this.view(scope, t, includeTags));
      else failures.push({ arn: ref.startsWith('arn:') ? ref : ecsArn(ctx.scope, `task/${cluster.clusterName}/${ref}`), reason: 'MISSING' });
    }
    return { tasks, failures };
  }

  list(ctx: RequestContext, input: Json) {
    const cluster = this.clusters.require(ctx, input.cluster);
    const max = pageSize(input.maxResults, 100);
    if (input.launchType !== undefined && input.launchType !== 'MANAGED_INSTANCES') return { taskArns: [] };
    const desired = input.desiredStatus === 'STOPPED' ? 'STOPPED' : 'RUNNING';
    let instanceId: string | undefined;
    if (input.containerInstance !== undefined) {
      const ci = this.instances.resolve(ctx, cluster.clusterName, input.containerInstance);
      if (!ci) throw invalidParameter('The specified container instance was not found.');
      instanceId = ci.id;
    }
    if (input.serviceName !== undefined && input.startedBy !== undefined) throw invalidParameter('serviceName and startedBy cannot be used together.');
    const after = decodeToken(input.nextToken);
    const candidates = desired === 'STOPPED'
      ? [...this.ofCluster(sk(ctx.scope), cluster.clusterName), ...this.stoppedOfCluster(sk(ctx.scope), cluster.clusterName)].sort((a, b) => (a.id < b.id ? -1 : 1))
      : this.ofCluster(sk(ctx.scope), cluster.clusterName);
    const matching = candidates.filter((t) =>
      t.desiredStatus === desired
      && (instanceId === undefined || t.containerInstanceId === instanceId)
      && (input.family === undefined || t.family === input.family)
      && (input.startedBy === undefined || t.startedBy === input.startedBy)
      && (input.serviceName === undefined || t.group === `service:${input.serviceName}`)
      && (after === undefined || t.id > after));
    const page = matching.slice(0, max);
    const more = matching.length > max;
    return { taskArns: page.map((t) => t.taskArn), ...(more ? { nextToken: encodeToken(page[page.length - 1]!.id) } : {}) };
  }

  /** Applies what an agent observed; ignores reports for tasks not on that instance. */
  applyReport(scope: string, instanceId: string, r: TaskReport, now: number): TaskRecord | undefined {
    const id = r.taskArn.slice(r.taskArn.lastIndexOf('/') + 1);
    const t = this.get(scope, id);
    if (!t || t.containerInstanceId !== instanceId) return undefined;
    const before = JSON.stringify([t.lastStatus, t.containers, t.stoppedReason, t.healthStatus]);
    t.lastStatus = laterStatus(t.lastStatus, r.lastStatus);
    if (r.healthStatus) t.healthStatus = r.healthStatus;
    for (const c of r.containers) {
      const rec = t.containers.find((x) => x.name === c.name);
      if (!rec) continue;
      const rank = { PENDING: 0, RUNNING: 1, STOPPED: 2 } as const;
      if (rank[c.lastStatus] >= rank[rec.lastStatus]) rec.lastStatus = c.lastStatus;
      if (c.runtimeId) rec.runtimeId = c.runtimeId;
      if (c.imageDigest) rec.imageDigest = c.imageDigest;
      if (c.exitCode !== undefined) rec.exitCode = c.exitCode;
      if (c.reason) rec.reason = c.reason;
      if (c.healthStatus) rec.healthStatus = c.healthStatus;
      if (c.networkBindings) rec.networkBindings = c.networkBindings;
    }
    for (const k of ['pullStartedAt', 'pullStoppedAt', 'startedAt', 'stoppingAt', 'executionStoppedAt', 'stoppedAt'] as const) {
      if (r[k] !== undefined && t[k] === undefined) t[k] = r[k];
    }
    if (statusRank(t.lastStatus) >= statusRank('STOPPING') && !t.stoppedReason && r.stoppedReason) {
      t.stoppedReason = r.stoppedReason;
      if (r.stopCode) t.stopCode = r.stopCode;
    }
    if (t.lastStatus === 'STOPPED') markStopped(t, { now });
    t.connectivityAt ??= now;
    if (JSON.stringify([t.lastStatus, t.containers, t.stoppedReason, t.healthStatus]) !== before) this.save(scope, t);
    return t;
  }

  private protection(t: TaskRecord, now: number): Json {
    const on = (t.protectedUntil ?? 0) > now;
    return { taskArn: t.taskArn, protectionEnabled: on, ...(on ? { expirationDate: seconds(t.protectedUntil!) } : {}) };
  }

  /** Task scale-in protection: the scheduler does not stop protected tasks (until the hard deadline). */
  updateProtection(ctx: RequestContext, input: { cluster?: string; tasks: string[]; protectionEnabled: boolean; expiresInMinutes?: number }) {
    if (input.tasks.length === 0 || input.tasks.length > 10) throw invalidParameter(`tasks must list between 1 and 10 tasks; got ${input.tasks.length}.`);
    const minutes = input.expiresInMinutes ?? 120;
    if (input.protectionEnabled && (minutes < 1 || minutes > 2880)) throw invalidParameter(`expiresInMinutes must be between 1 and 2880 (48 hours); got ${minutes}.`);
    const scope = sk(ctx.scope);
    const now = ctx.clock.now();
    return this.store.tx(() => {
      const cluster = this.clusters.require(ctx, input.cluster);
      const protectedTasks: Json[] = [];
      const failures: Json[] = [];
      for (const ref of input.tasks) {
        const t = this.resolve(ctx, cluster.clusterName, ref);
        if (!t || t.lastStatus === 'STOPPED') { failures.push({ arn: ref, reason: 'TASK_NOT_VALID', detail: 'The task is not running.' }); continue; }
        if (input.protectionEnabled) t.protectedUntil = now + minutes * 60_000; else delete t.protectedUntil;
        this.save(scope, t);
        protectedTasks.push(this.protection(t, now));
      }
      return { protectedTasks, failures };
    });
  }

  getProtection(ctx: RequestContext, input: { cluster?: string; tasks?: string[] }) {
    const cluster = this.clusters.require(ctx, input.cluster);
    const scope = sk(ctx.scope);
    const now = ctx.clock.now();
    const protectedTasks: Json[] = [];
    const failures: Json[] = [];
    const refs = input.tasks ?? this.ofCluster(scope, cluster.clusterName).map((t) => t.id);
    for (const ref of refs) {
      const t = this.resolve(ctx, cluster.clusterName, ref);
      if (!t) { failures.push({ arn: ref, reason: 'MISSING' }); continue; }
      protectedTasks.push(this.protection(t, now));
    }
    return { protectedTasks, failures };
  }

  /**
   * Forgets stopped tasks after ECS's retention (at least an hour), and RunTask client tokens
   * once they are that old and none of their tasks is left (a retry can no longer find them).
   */
  reapStopped(now: number, retentionMs = 60 * 60 * 1000): number {
    let n = 0;
    for (const { scope, body: task } of this.store.listAll<TaskRecord>(KIND, STOPPED)) {
      if (task.lastStatus === 'STOPPED' && (task.stoppedAt ?? 0) < now - retentionMs) { this.store.delete(KIND, scope, task.id); n++; }
    }
    for (const { scope, id, body } of this.store.listAll<{ taskIds: string[]; at: number }>(CLIENT_TOKEN)) {
      if (body.at < now - retentionMs && !body.taskIds.some((t) => this.get(scope, t))) this.store.delete(CLIENT_TOKEN, scope, id);
    }
    return n;
  }
}
