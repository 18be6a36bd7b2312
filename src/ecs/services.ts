// Services: CreateService, UpdateService, DeleteService, DescribeServices, ListServices and
// the service deployments. The service controller (controllers/services.ts) keeps them true.
import { randomInt } from 'node:crypto';
import type { RequestContext } from '../api/context.js';
import { clientException, invalidParameter, serviceNotActive, serviceNotFound, unsupportedFeature } from '../api/errors.js';
import type { Store } from '../store/store.js';
import type { CapacityProviders } from './capacity-providers.js';
import type { Clusters } from './clusters.js';
import { ecsArn, NAME_PATTERN, pageSize, paginate, resolveRef, seconds, sk, validateTags, type Tag } from './common.js';
import { effectiveStrategy, validateStrategy, type StrategyItem } from './strategy.js';
import { managedInstancesProblems, type Json } from './task-definition-rules.js';
import type { TaskDefinitions } from './task-definitions.js';
import { placementConstraintsProblem, strategyProblem } from '../placement/index.js';

/** A deployment's rollout (ECS's rolloutState). */
export type RolloutState = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';

export interface DeploymentRecord {
  id: string;
  status: 'PRIMARY' | 'ACTIVE';
  taskDefinition: string;
  desiredCount: number;
  createdAt: number;
  updatedAt: number;
  rolloutState: RolloutState;
  rolloutStateReason: string;
  failedTasks: number;
  capacityProviderStrategy: Required<StrategyItem>[];
  networkConfiguration?: Json;
  enableExecuteCommand: boolean;
  /** Set when the deployment finished (completed, failed or replaced). */
  finishedAt?: number;
  rolledBackFrom?: string;
}

export interface ServiceEvent { id: string; createdAt: number; message: string }

export interface ServiceRecord {
  serviceName: string;
  serviceArn: string;
  cluster: string;
  clusterArn: string;
  status: 'ACTIVE' | 'DRAINING' | 'INACTIVE';
  desiredCount: number;
  taskDefinition: string;
  capacityProviderStrategy: Required<StrategyItem>[];
  deploymentConfiguration: {
    minimumHealthyPercent: number;
    maximumPercent: number;
    deploymentCircuitBreaker: { enable: boolean; rollback: boolean };
  };
  placementConstraints: Json[];
  placementStrategy: Json[];
  /** ECS: ENABLED by default for new services whose placement allows it; absent = DISABLED. */
  availabilityZoneRebalancing?: 'ENABLED' | 'DISABLED';
  networkConfiguration?: Json;
  healthCheckGracePeriodSeconds?: number;
  enableExecuteCommand: boolean;
  enableECSManagedTags: boolean;
  propagateTags: 'TASK_DEFINITION' | 'SERVICE' | 'NONE';
  tags: Tag[];
  createdAt: number;
  createdBy: string;
  deployments: DeploymentRecord[];
  /** Finished deployments, kept for ListServiceDeployments. */
  history: DeploymentRecord[];
  events: ServiceEvent[];
  consecutiveFailures: number;
  nextLaunchAt: number;
  lastCompletedTaskDefinition?: string;
  /** A recent placement problem, so it is reported once and not every pass. */
  lastPlacementMessage?: string;
  steady?: boolean;
}

const KIND = 'service';
const MAX_EVENTS = 100;
const UNSUPPORTED: [string, string][] = [
  ['loadBalancers', 'load balancers'], ['serviceRegistries', 'service registries (Cloud Map)'],
  ['serviceConnectConfiguration', 'Service Connect'], ['volumeConfigurations', 'volumes configured at launch (EBS)'],
  ['vpcLatticeConfigurations', 'VPC Lattice'],
];

const newDeploymentId = () => `ecs-svc/${String(randomInt(1, 9)) + Array.from({ length: 18 }, () => randomInt(0, 10)).join('')}`;

export class Services {
  /** Wakes the controller when a service changed. */
  onChange: () => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly clusters: Clusters,
    private readonly taskDefinitions: TaskDefinitions,
    private readonly providers: CapacityProviders,
  ) {}

  get(scope: string, cluster: string, name: string): ServiceRecord | undefined {
    return this.store.get<ServiceRecord>(KIND, scope, `${cluster}/${name}`);
  }

  save(scope: string, s: ServiceRecord): void {
    this.store.put(KIND, scope, `${s.cluster}/${s.serviceName}`, s, s.cluster);
  }

  ofCluster(scope: string, cluster: string): ServiceRecord[] {
    return this.store.list<ServiceRecord>(KIND, scope, { parent: cluster });
  }

  all(): { scope: string; service: ServiceRecord }[] {
    return this.store.listAll<ServiceRecord>(KIND).map(({ scope, body }) => ({ scope, service: body }));
  }

  event(s: ServiceRecord, message: string, now: number): void {
    s.events.unshift({ id: crypto.randomUUID(), createdAt: now, message: `(service ${s.serviceName}) ${message}` });
    if (s.events.length > MAX_EVENTS) s.events.length = MAX_EVENTS;
  }

  private resolveName(ctx: RequestContext, ref: string): string {
    const text = resolveRef(ctx, ref, 'service', 'service');
    return text.includes('/') ? text.slice(text.lastIndexOf('/') + 1) : text;
  }

  view(scope: string, s: ServiceRecord, counts: (d: DeploymentRecord) => { running: number; pending: number }, includeTags = false): Json {
    const ds = s.deployments.map((d) => {
      const c = counts(d);
      return {
        id: d.id, status: d.status, taskDefinition: d.taskDefinition, desiredCount: d.desiredCount,
        pendingCount: c.pending, runningCount: c.running, failedTasks: d.failedTasks,
        createdAt: seconds(d.createdAt), updatedAt: seconds(d.updatedAt),
        capacityProviderStrategy: d.capacityProviderStrategy, launchType: 'MANAGED_INSTANCES', platformFamily: 'Linux',
        ...(d.networkConfiguration ? { networkConfiguration: d.networkConfiguration } : {}),
        rolloutState: d.rolloutState, rolloutStateReason: d.rolloutStateReason,
      };
    });
    const out: Json = {
      serviceArn: s.serviceArn, serviceName: s.serviceName, clusterArn: s.clusterArn,
      loadBalancers: [], serviceRegistries: [], status: s.status, desiredCount: s.desiredCount,
      runningCount: ds.reduce((n, d) => n + d.runningCount, 0), pendingCount: ds.reduce((n, d) => n + d.pendingCount, 0),
      capacityProviderStrategy: s.capacityProviderStrategy, platformFamily: 'Linux', taskDefinition: s.taskDefinition,
      deploymentConfiguration: s.deploymentConfiguration, deployments: ds,
      events: s.events.map((e) => ({ id: e.id, createdAt: seconds(e.createdAt), message: e.message })),
      createdAt: seconds(s.createdAt),
      placementConstraints: s.placementConstraints, placementStrategy: s.placementStrategy,
      ...(s.networkConfiguration ? { networkConfiguration: s.networkConfiguration } : {}),
      ...(s.healthCheckGracePeriodSeconds !== undefined ? { healthCheckGracePeriodSeconds: s.healthCheckGracePeriodSeconds } : {}),
      schedulingStrategy: 'REPLICA', deploymentController: { type: 'ECS' }, createdBy: s.createdBy,
      enableECSManagedTags: s.enableECSManagedTags, propagateTags: s.propagateTags, enableExecuteCommand: s.enableExecuteCommand,
      availabilityZoneRebalancing: s.availabilityZoneRebalancing ?? 'DISABLED',
      ...(s.deployments[0] ? { currentServiceDeployment: this.deploymentArn(scope, s, s.deployments[0].id) } : {}),
    };
    if (includeTags) out.tags = s.tags;
    return out;
  }

  deploymentArn(scope: string, s: ServiceRecord, id: string): string {
    const [account, region] = scope.split('/') as [string, string];
    return s.serviceArn.replace(`:service/`, ':service-deployment/').replace(/^(arn:[^:]+:ecs:)[^:]*:[^:]*:/, `$1${region}:${account}:`) + `/${id.replace('ecs-svc/', '')}`;
  }

  private checkCommon(ctx: RequestContext, input: Json): void {
    for (const [key, label] of UNSUPPORTED) {
      const v = input[key];
      if (v !== undefined && !(Array.isArray(v) && v.length === 0)) throw unsupportedFeature(`${label} are not supported by Berth; remove ${key}.`);
    }
    if (input.launchType !== undefined && input.launchType !== 'MANAGED_INSTANCES') {
      throw invalidParameter(`launchType ${input.launchType} is not supported: Berth runs services on managed instances. Omit launchType and use a capacityProviderStrategy.`);
    }
    if (input.platformVersion !== undefined) throw invalidParameter('platformVersion only applies to Fargate; remove it.');
    if (input.deploymentController !== undefined && input.deploymentController.type !== 'ECS') {
      throw invalidParameter(`Deployment controller ${input.deploymentController.type} is not supported; Berth uses the ECS rolling update controller.`);
    }
    const dc = input.deploymentConfiguration;
    if (dc) {
      if (dc.strategy !== undefined && dc.strategy !== 'ROLLING') throw invalidParameter(`Deployment strategy ${dc.strategy} is not supported; use ROLLING.`);
      if (dc.minimumHealthyPercent !== undefined && (dc.minimumHealthyPercent < 0 || dc.minimumHealthyPercent > 100)) {
        throw invalidParameter(`minimumHealthyPercent must be between 0 and 100; got ${dc.minimumHealthyPercent}.`);
      }
      if (dc.maximumPercent !== undefined && (dc.maximumPercent < 100 || dc.maximumPercent > 200)) {
        throw invalidParameter(`maximumPercent must be between 100 and 200; got ${dc.maximumPercent}.`);
      }
      if (dc.alarms?.enable) throw invalidParameter('CloudWatch alarms for deployments are not supported by Berth.');
    }
    if (input.desiredCount !== undefined && input.desiredCount < 0) throw invalidParameter('desiredCount must be 0 or greater.');
    const placementProblem = placementConstraintsProblem(input.placementConstraints ?? []) ?? strategyProblem(input.placementStrategy ?? []);
    if (placementProblem) throw invalidParameter(placementProblem);
    if (input.healthCheckGracePeriodSeconds !== undefined && input.healthCheckGracePeriodSeconds < 0) throw invalidParameter('healthCheckGracePeriodSeconds must be 0 or greater.');
    if (input.capacityProviderStrategy?.length) validateStrategy(input.capacityProviderStrategy, 'capacityProviderStrategy');
    validateTags(input.tags ?? []);
  }

  private requireTaskDefinition(ctx: RequestContext, ref: string) {
    const td = this.taskDefinitions.resolve(ctx, ref);
    if (!td || td.status !== 'ACTIVE') throw clientException(td ? `TaskDefinition is inactive: ${td.taskDefinitionArn}` : 'Unable to find task definition.');
    const problems = managedInstancesProblems(td.body);
    if (problems.length) throw clientException(`Task definition does not support launch_type MANAGED_INSTANCES: ${problems[0]}`);
    return td;
  }

  private strategyFor(ctx: RequestContext, cluster: string, given: StrategyItem[] | undefined): Required<StrategyItem>[] {
    const c = this.clusters.require(ctx, cluster);
    return effectiveStrategy(c, this.providers.providersOf(sk(ctx.scope), c.clusterName), given);
  }

  create(ctx: RequestContext, input: Json) {
    if (!NAME_PATTERN.test(input.serviceName)) throw invalidParameter('Service name can have up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens.');
    if (input.schedulingStrategy === 'DAEMON') throw invalidParameter('The DAEMON scheduling strategy is not supported on managed instances; use REPLICA.');
    if (input.taskDefinition === undefined) throw invalidParameter('taskDefinition is required.');
    if (input.desiredCount === undefined) throw invalidParameter('desiredCount is required for the REPLICA scheduling strategy.');
    this.checkCommon(ctx, input);
    const scope = sk(ctx.scope);
    const now = ctx.clock.now();
    const result = this.store.tx(() => {
      const cluster = this.clusters.require(ctx, input.cluster);
      const existing = this.get(scope, cluster.clusterName, input.serviceName);
      if (existing && existing.status !== 'INACTIVE') {
        throw invalidParameter(`Creation of service was not idempotent: service ${input.serviceName} already exists in cluster ${cluster.clusterName}.`);
      }
      const td = this.requireTaskDefinition(ctx, input.taskDefinition);
      const strategy = this.strategyFor(ctx, cluster.clusterName, input.capacityProviderStrategy);
      const dc = input.deploymentConfiguration ?? {};
      const deployment: DeploymentRecord = {
        id: newDeploymentId(), status: 'PRIMARY', taskDefinition: td.taskDefinitionArn, desiredCount: input.desiredCount,
        createdAt: now, updatedAt: now, rolloutState: 'IN_PROGRESS', rolloutStateReason: 'ECS deployment ecs-svc in progress.',
        failedTasks: 0, capacityProviderStrategy: strategy, enableExecuteCommand: input.enableExecuteCommand ?? false,
        ...(input.networkConfiguration ? { networkConfiguration: input.networkConfiguration } : {}),
      };
      deployment.rolloutStateReason = `ECS deployment ${deployment.id} in progress.`;
      const s: ServiceRecord = {
        serviceName: input.serviceName,
        serviceArn: ecsArn(ctx.scope, `service/${cluster.clusterName}/${input.serviceName}`),
        cluster: cluster.clusterName,
        clusterArn: cluster.clusterArn,
        status: 'ACTIVE',
        desiredCount: input.desiredCount,
        taskDefinition: td.taskDefinitionArn,
        capacityProviderStrategy: strategy,
        deploymentConfiguration: {
          minimumHealthyPercent: dc.minimumHealthyPercent ?? 100,
          maximumPercent: dc.maximumPercent ?? 200,
          deploymentCircuitBreaker: dc.deploymentCircuitBreaker ?? { enable: false, rollback: false },
        },
        placementConstraints: input.placementConstraints ?? [],
        placementStrategy: input.placementStrategy ?? [],
        availabilityZoneRebalancing: rebalancingFor(input.availabilityZoneRebalancing, input.placementStrategy ?? [], input.placementConstraints ?? [], 'ENABLED'),
        ...(input.networkConfiguration ? { networkConfiguration: input.networkConfiguration } : {}),
        ...(input.healthCheckGracePeriodSeconds !== undefined ? { healthCheckGracePeriodSeconds: input.healthCheckGracePeriodSeconds } : {}),
        enableExecuteCommand: input.enableExecuteCommand ?? false,
        enableECSManagedTags: input.enableECSManagedTags ?? false,
        propagateTags: input.propagateTags ?? 'NONE',
        tags: (input.tags ?? []).map((t: Tag) => ({ key: t.key, value: t.value ?? '' })),
        createdAt: now,
        createdBy: `arn:${ctx.scope.partition}:${ctx.principal.principal}`,
        deployments: [deployment],
        history: [],
        events: [],
        consecutiveFailures: 0,
        nextLaunchAt: 0,
      };
      this.save(scope, s);
      return s;
    });
    this.onChange();
    return { service: this.view(scope, result, () => ({ running: 0, pending: 0 }), true) };
  }

  find(ctx: RequestContext, clusterRef: string | undefined, ref: string): ServiceRecord {
    const cluster = this.clusters.require(ctx, clusterRef);
    const s = this.get(sk(ctx.scope), cluster.clusterName, this.resolveName(ctx, ref));
    if (!s) throw serviceNotFound('Service not found.');
    return s;
  }

  update(ctx: RequestContext, input: Json, counts: (scope: string, s: ServiceRecord) => (d: DeploymentRecord) => { running: number; pending: number }) {
    this.checkCommon(ctx, input);
    const scope = sk(ctx.scope);
    const now = ctx.clock.now();
    const s = this.store.tx(() => {
      const s = this.find(ctx, input.cluster, input.service);
      if (s.status !== 'ACTIVE') throw serviceNotActive('Service was not ACTIVE.');
      if (input.desiredCount !== undefined) {
        s.desiredCount = input.desiredCount;
        for (const d of s.deployments) if (d.status === 'PRIMARY') { d.desiredCount = input.desiredCount; d.updatedAt = now; }
        s.steady = false;
      }
      const dc = input.deploymentConfiguration;
      if (dc) {
        s.deploymentConfiguration = {
          minimumHealthyPercent: dc.minimumHealthyPercent ?? s.deploymentConfiguration.minimumHealthyPercent,
          maximumPercent: dc.maximumPercent ?? s.deploymentConfiguration.maximumPercent,
          deploymentCircuitBreaker: dc.deploymentCircuitBreaker ?? s.deploymentConfiguration.deploymentCircuitBreaker,
        };
      }
      if (input.placementConstraints !== undefined) s.placementConstraints = input.placementConstraints;
      if (input.placementStrategy !== undefined) s.placementStrategy = input.placementStrategy;
      if (input.availabilityZoneRebalancing !== undefined || input.placementStrategy !== undefined || input.placementConstraints !== undefined) {
        s.availabilityZoneRebalancing = rebalancingFor(input.availabilityZoneRebalancing, s.placementStrategy, s.placementConstraints, s.availabilityZoneRebalancing ?? 'DISABLED');
      }
      if (input.healthCheckGracePeriodSeconds !== undefined) s.healthCheckGracePeriodSeconds = input.healthCheckGracePeriodSeconds;
      if (input.propagateTags !== undefined) s.propagateTags = input.propagateTags;
      if (input.enableECSManagedTags !== undefined) s.enableECSManagedTags = input.enableECSManagedTags;
      let redeploy = input.forceNewDeployment === true;
      if (input.taskDefinition !== undefined) {
        const td = this.requireTaskDefinition(ctx, input.taskDefinition);
        if (td.taskDefinitionArn !== s.taskDefinition) { s.taskDefinition = td.taskDefinitionArn; redeploy = true; }
      }
      if (input.capacityProviderStrategy !== undefined) {
        s.capacityProviderStrategy = this.strategyFor(ctx, s.cluster, input.capacityProviderStrategy);
        redeploy = true;
      }
      if (input.networkConfiguration !== undefined) { s.networkConfiguration = input.networkConfiguration; redeploy = true; }
      if (input.enableExecuteCommand !== undefined && input.enableExecuteCommand !== s.enableExecuteCommand) {
        s.enableExecuteCommand = input.enableExecuteCommand;
        redeploy = true;
      }
      if (redeploy) this.startDeployment(s, s.taskDefinition, now);
      this.save(scope, s);
      return s;
    });
    this.onChange();
    return { service: this.view(scope, s, counts(scope, s)) };
  }

  /** Makes a new PRIMARY deployment; the previous ones drain as it rolls out. */
  startDeployment(s: ServiceRecord, taskDefinition: string, now: number, rolledBackFrom?: string): DeploymentRecord {
    for (const d of s.deployments) {
      if (d.status === 'PRIMARY') { d.status = 'ACTIVE'; d.updatedAt = now; }
    }
    const d: DeploymentRecord = {
      id: newDeploymentId(), status: 'PRIMARY', taskDefinition, desiredCount: s.desiredCount, createdAt: now, updatedAt: now,
      rolloutState: 'IN_PROGRESS', rolloutStateReason: '', failedTasks: 0, capacityProviderStrategy: s.capacityProviderStrategy,
      enableExecuteCommand: s.enableExecuteCommand, ...(s.networkConfiguration ? { networkConfiguration: s.networkConfiguration } : {}),
      ...(rolledBackFrom ? { rolledBackFrom } : {}),
    };
    d.rolloutStateReason = `ECS deployment ${d.id} in progress.`;
    s.taskDefinition = taskDefinition;
    s.deployments.unshift(d);
    s.consecutiveFailures = 0;
    s.nextLaunchAt = 0;
    s.steady = false;
    return d;
  }

  delete(ctx: RequestContext, input: { cluster?: string; service: string; force?: boolean }, counts: (scope: string, s: ServiceRecord) => (d: DeploymentRecord) => { running: number; pending: number }) {
    const scope = sk(ctx.scope);
    const now = ctx.clock.now();
    const s = this.store.tx(() => {
      const s = this.find(ctx, input.cluster, input.service);
      if (s.status === 'INACTIVE') throw serviceNotActive('Service was not ACTIVE.');
      if (s.desiredCount > 0 && !input.force) {
        throw invalidParameter('The service cannot be stopped while it is scaled above 0.');
      }
      s.desiredCount = 0;
      for (const d of s.deployments) d.desiredCount = 0;
      s.status = 'DRAINING';
      this.event(s, 'is draining: the service was deleted.', now);
      this.save(scope, s);
      return s;
    });
    this.onChange();
    return { service: this.view(scope, s, counts(scope, s)) };
  }

  describe(ctx: RequestContext, input: { cluster?: string; services: string[]; include?: string[] }, counts: (scope: string, s: ServiceRecord) => (d: DeploymentRecord) => { running: number; pending: number }) {
    if (input.services.length === 0 || input.services.length > 10) throw invalidParameter(`services must list between 1 and 10 services; got ${input.services.length}.`);
    const cluster = this.clusters.require(ctx, input.cluster);
    const scope = sk(ctx.scope);
    const services: Json[] = [];
    const failures: Json[] = [];
    for (const ref of input.services) {
      const name = this.resolveName(ctx, ref);
      const s = this.get(scope, cluster.clusterName, name);
      if (s) services.push(this.view(scope, s, counts(scope, s), (input.include ?? []).includes('TAGS')));
      else failures.push({ arn: ecsArn(ctx.scope, `service/${cluster.clusterName}/${name}`), reason: 'MISSING' });
    }
    return { services, failures };
  }

  list(ctx: RequestContext, input: Json) {
    const cluster = this.clusters.require(ctx, input.cluster);
    const max = pageSize(input.maxResults, 100, 10);
    if ((input.launchType && input.launchType !== 'MANAGED_INSTANCES') || input.schedulingStrategy === 'DAEMON') return { serviceArns: [] };
    const live = this.ofCluster(sk(ctx.scope), cluster.clusterName).filter((s) => s.status !== 'INACTIVE');
    const { page, nextToken } = paginate(live, (s) => s.serviceName, max, input.nextToken);
    return { serviceArns: page.map((s) => s.serviceArn), ...(nextToken ? { nextToken } : {}) };
  }

  listDeployments(ctx: RequestContext, input: Json) {
    const s = this.find(ctx, input.cluster, input.service);
    const scope = sk(ctx.scope);
    const max = pageSize(input.maxResults, 100, 20);
    const statusOf = (d: DeploymentRecord) => serviceDeploymentStatus(s, d);
    const all = [...s.deployments, ...s.history]
      .filter((d) => !input.status?.length || input.status.includes(statusOf(d)))
      .sort((a, b) => b.createdAt - a.createdAt);
    const { page, nextToken } = paginate(all.map((d, i) => ({ d, key: String(i).padStart(6, '0') })), (x) => x.key, max, input.nextToken);
    return {
      serviceDeployments: page.map(({ d }) => ({
        serviceDeploymentArn: this.deploymentArn(scope, s, d.id), serviceArn: s.serviceArn, clusterArn: s.clusterArn,
        startedAt: seconds(d.createdAt), createdAt: seconds(d.createdAt), ...(d.finishedAt ? { finishedAt: seconds(d.finishedAt) } : {}),
        targetServiceRevisionArn: `${s.serviceArn.replace(':service/', ':service-revision/')}/${d.id.replace('ecs-svc/', '')}`,
        status: statusOf(d), statusReason: d.rolloutStateReason,
      })),
      ...(nextToken ? { nextToken } : {}),
    };
  }

  describeDeployments(ctx: RequestContext, input: { serviceDeploymentArns: string[] }) {
    const scope = sk(ctx.scope);
    const serviceDeployments: Json[] = [];
    const failures: Json[] = [];
    for (const arn of input.serviceDeploymentArns) {
      const m = /^arn:[^:]+:ecs:[^:]+:[^:]+:service-deployment\/([^/]+)\/([^/]+)\/(\d+)$/.exec(arn);
      const s = m ? this.get(scope, m[1]!, m[2]!) : undefined;
      const d = s && [...s.deployments, ...s.history].find((x) => x.id === `ecs-svc/${m![3]}`);
      if (!s || !d) { failures.push({ arn, reason: 'MISSING' }); continue; }
      const idx = [...s.deployments, ...s.history].indexOf(d);
      const source = [...s.deployments, ...s.history].slice(idx + 1, idx + 2);
      serviceDeployments.push({
        serviceDeploymentArn: arn, serviceArn: s.serviceArn, clusterArn: s.clusterArn,
        createdAt: seconds(d.createdAt), startedAt: seconds(d.createdAt), updatedAt: seconds(d.updatedAt),
        ...(d.finishedAt ? { finishedAt: seconds(d.finishedAt) } : {}),
        sourceServiceRevisions: source.map((x) => ({ arn: `${s.serviceArn.replace(':service/', ':service-revision/')}/${x.id.replace('ecs-svc/', '')}`, requestedTaskCount: 0, runningTaskCount: 0, pendingTaskCount: 0 })),
        targetServiceRevision: { arn: `${s.serviceArn.replace(':service/', ':service-revision/')}/${d.id.replace('ecs-svc/', '')}`, requestedTaskCount: d.desiredCount, runningTaskCount: 0, pendingTaskCount: 0 },
        status: serviceDeploymentStatus(s, d), statusReason: d.rolloutStateReason,
        deploymentConfiguration: s.deploymentConfiguration,
        deploymentCircuitBreaker: { status: s.deploymentConfiguration.deploymentCircuitBreaker.enable ? (d.rolloutState === 'FAILED' ? 'TRIGGERED' : 'MONITORING') : 'DISABLED', failureCount: d.failedTasks, threshold: 0 },
        ...(d.rolledBackFrom ? { rollback: { reason: 'Circuit breaker triggered', startedAt: seconds(d.createdAt), serviceRevisionArn: d.rolledBackFrom } } : {}),
      });
    }
    return { serviceDeployments, failures };
  }
}

function serviceDeploymentStatus(s: ServiceRecord, d: DeploymentRecord): string {
  if (d.rolloutState === 'COMPLETED') return d.rolledBackFrom ? 'ROLLBACK_SUCCESSFUL' : 'SUCCESSFUL';
  if (d.rolloutState === 'FAILED') return 'STOPPED';
  if (d.status === 'ACTIVE') return 'STOPPED';
  return d.rolledBackFrom ? 'ROLLBACK_IN_PROGRESS' : s.deployments[0] === d ? 'IN_PROGRESS' : 'PENDING';
}

/**
 * Whether a service may rebalance across zones: not with binpack or random placement, nor
 * with a spread that is not by zone first, nor with memberOf constraints (a rebalancing task
 * confined to a zone could then never be placed). Asked for explicitly on such a service,
 * it is refused; by default it is then DISABLED, as ECS does.
 */
export function rebalancingFor(asked: 'ENABLED' | 'DISABLED' | undefined, strategy: Json[], constraints: Json[], dflt: 'ENABLED' | 'DISABLED'): 'ENABLED' | 'DISABLED' {
  const first = strategy[0];
  const why = strategy.some((x) => x.type === 'binpack' || x.type === 'random') ? `the ${strategy.find((x) => x.type === 'binpack' || x.type === 'random')!.type} placement strategy`
    : first && !(first.type === 'spread' && first.field === 'attribute:ecs.availability-zone') ? 'a placement strategy that does not spread by attribute:ecs.availability-zone first'
      : constraints.some((c) => c.type === 'memberOf') ? 'memberOf placement constraints' : undefined;
  if (asked === 'ENABLED' && why) throw invalidParameter(`availabilityZoneRebalancing ENABLED is not supported with ${why}; set it to DISABLED or change the placement.`);
  if (asked) return asked;
  return why ? 'DISABLED' : dflt;
}
