// Clusters: create, describe (with include), list, update, delete, and the capacity
// providers associated with them.
import type { RequestContext } from '../api/context.js';
import {
  clientException, clusterContainsCapacityProvider, clusterContainsContainerInstances, clusterContainsServices,
  clusterContainsTasks, clusterNotFound, invalidParameter,
} from '../api/errors.js';
import { ApiError } from '../api/errors.js';
import type { Store } from '../store/store.js';
import type { AccountSettings } from './account-settings.js';
import { clusterName, ecsArn, NAME_PATTERN, pageSize, paginate, sk, validateTags, type Tag } from './common.js';
import { normalizeStrategy, validateStrategy, type StrategyItem } from './strategy.js';

export interface ClusterSetting { name: string; value: string }
export interface ExecuteCommandConfiguration {
  kmsKeyId?: string;
  logging?: 'NONE' | 'DEFAULT' | 'OVERRIDE';
  logConfiguration?: {
    cloudWatchLogGroupName?: string; cloudWatchEncryptionEnabled?: boolean;
    s3BucketName?: string; s3EncryptionEnabled?: boolean; s3KeyPrefix?: string;
  };
}
export interface ClusterConfiguration {
  executeCommandConfiguration?: ExecuteCommandConfiguration;
  managedStorageConfiguration?: { kmsKeyId?: string; fargateEphemeralStorageKmsKeyId?: string };
}

export interface ClusterRecord {
  clusterArn: string;
  clusterName: string;
  status: 'ACTIVE' | 'INACTIVE';
  tags: Tag[];
  settings: ClusterSetting[];
  configuration?: ClusterConfiguration;
  capacityProviders: string[];
  defaultCapacityProviderStrategy: Required<StrategyItem>[];
  createdAt: number;
}

/** Live counts other parts of Berth own (instances, tasks, services). */
export interface ClusterStats {
  registeredContainerInstancesCount: number;
  runningTasksCount: number;
  pendingTasksCount: number;
  activeServicesCount: number;
}
export type ClusterStatsSource = (scope: string, cluster: string) => ClusterStats;
const noStats: ClusterStatsSource = () => ({ registeredContainerInstancesCount: 0, runningTasksCount: 0, pendingTasksCount: 0, activeServicesCount: 0 });

/** Capacity providers a cluster may associate: answers which names are valid for it. */
export interface ProviderDirectory {
  /** Names of live managed-instances providers that belong to `cluster`. */
  providersOf(scope: string, cluster: string): string[];
  /** The cluster a live provider belongs to, or undefined when no such provider. */
  clusterOf(scope: string, provider: string): string | undefined;
}

const KIND = 'cluster';
const INCLUDE = new Set(['ATTACHMENTS', 'CONFIGURATIONS', 'SETTINGS', 'STATISTICS', 'TAGS']);

function checkExecuteCommandConfiguration(c: ExecuteCommandConfiguration | undefined): void {
  if (!c) return;
  const logging = c.logging ?? 'DEFAULT';
  if (logging === 'OVERRIDE') {
    const lc = c.logConfiguration;
    if (!lc || (!lc.cloudWatchLogGroupName && !lc.s3BucketName)) {
      throw invalidParameter('When executeCommandConfiguration.logging is OVERRIDE, logConfiguration must name a cloudWatchLogGroupName or an s3BucketName.');
    }
  } else if (c.logConfiguration) {
    throw invalidParameter(`executeCommandConfiguration.logConfiguration can only be specified when logging is OVERRIDE (it is ${logging}).`);
  }
}

function checkSettings(settings: ClusterSetting[]): void {
  for (const s of settings) {
    if (s.name !== 'containerInsights') throw invalidParameter(`Unknown cluster setting '${s.name}'; the only cluster setting is containerInsights.`);
    if (!['enhanced', 'enabled', 'disabled'].includes(s.value)) {
      throw invalidParameter(`Invalid value '${s.value}' for cluster setting containerInsights. Valid values: enhanced, enabled, disabled.`);
    }
  }
}

export class Clusters {
  stats: ClusterStatsSource = noStats;
  providers: ProviderDirectory = { providersOf: () => [], clusterOf: () => undefined };

  constructor(private readonly store: Store, private readonly settings: AccountSettings) {}

  get(scope: string, name: string): ClusterRecord | undefined {
    return this.store.get<ClusterRecord>(KIND, scope, name);
  }

  /** The ACTIVE cluster a request names, or ClusterNotFoundException. */
  require(ctx: RequestContext, ref: string | undefined): ClusterRecord {
    const c = this.get(sk(ctx.scope), clusterName(ctx, ref));
    if (!c || c.status !== 'ACTIVE') throw clusterNotFound('Cluster not found.');
    return c;
  }

  save(scope: string, c: ClusterRecord): void {
    this.store.put(KIND, scope, c.clusterName, c);
  }

  view(scope: string, c: ClusterRecord, include: Set<string> = new Set()): Record<string, unknown> {
    const stats = c.status === 'ACTIVE' ? this.stats(scope, c.clusterName) : noStats(scope, c.clusterName);
    const out: Record<string, unknown> = {
      clusterArn: c.clusterArn,
      clusterName: c.clusterName,
      status: c.status,
      ...stats,
      statistics: [],
      tags: include.has('TAGS') ? c.tags : [],
      capacityProviders: c.capacityProviders,
      defaultCapacityProviderStrategy: c.defaultCapacityProviderStrategy,
    };
    if (include.has('SETTINGS')) out.settings = c.settings;
    if (include.has('CONFIGURATIONS') && c.configuration) out.configuration = c.configuration;
    if (include.has('ATTACHMENTS')) out.attachments = [];
    if (include.has('STATISTICS')) {
      out.statistics = [
        { name: 'runningManagedInstancesTasksCount', value: String(stats.runningTasksCount) },
        { name: 'pendingManagedInstancesTasksCount', value: String(stats.pendingTasksCount) },
        { name: 'activeManagedInstancesServiceCount', value: String(stats.activeServicesCount) },
      ];
    }
    return out;
  }

  create(ctx: RequestContext, input: {
    clusterName?: string; tags?: Tag[]; settings?: ClusterSetting[]; configuration?: ClusterConfiguration;
    capacityProviders?: string[]; defaultCapacityProviderStrategy?: StrategyItem[]; serviceConnectDefaults?: { namespace: string };
  }) {
    const name = input.clusterName ?? 'default';
    if (!NAME_PATTERN.test(name)) {
      throw invalidParameter('Cluster name can have up to 255 characters: letters (uppercase and lowercase), numbers, underscores and hyphens.');
    }
    validateTags(input.tags ?? []);
    checkSettings(input.settings ?? []);
    checkExecuteCommandConfiguration(input.configuration?.executeCommandConfiguration);
    if (input.serviceConnectDefaults) {
      throw new ApiError('NamespaceNotFoundException', `Namespace '${input.serviceConnectDefaults.namespace}' was not found: Berth has no Cloud Map namespaces, so serviceConnectDefaults cannot be set.`);
    }
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const existing = this.get(scope, name);
      if (existing && existing.status === 'ACTIVE') return { cluster: this.view(scope, existing, new Set(['TAGS', 'SETTINGS', 'CONFIGURATIONS'])) };
      const cps = input.capacityProviders ?? [];
      this.checkAssociation(scope, name, cps, input.defaultCapacityProviderStrategy ?? []);
      const insights = this.settings.effective(ctx, 'containerInsights');
      const record: ClusterRecord = {
        clusterArn: ecsArn(ctx.scope, `cluster/${name}`),
        clusterName: name,
        status: 'ACTIVE',
        tags: (input.tags ?? []).map((t) => ({ key: t.key, value: t.value ?? '' })),
        settings: input.settings?.length ? input.settings : [{ name: 'containerInsights', value: insights }],
        ...(input.configuration ? { configuration: input.configuration } : {}),
        capacityProviders: cps,
        defaultCapacityProviderStrategy: normalizeStrategy(input.defaultCapacityProviderStrategy ?? []),
        createdAt: ctx.clock.now(),
      };
      this.save(scope, record);
      return { cluster: this.view(scope, record, new Set(['TAGS', 'SETTINGS', 'CONFIGURATIONS'])) };
    });
  }

  describe(ctx: RequestContext, input: { clusters?: string[]; include?: string[] }) {
    const include = new Set(input.include ?? []);
    for (const i of include) if (!INCLUDE.has(i)) throw invalidParameter(`Invalid include value '${i}'.`);
    const refs = input.clusters?.length ? input.clusters : ['default'];
    if (refs.length > 100) throw invalidParameter(`DescribeClusters accepts at most 100 clusters; got ${refs.length}.`);
    const scope = sk(ctx.scope);
    const clusters: unknown[] = [];
    const failures: { arn: string; reason: string }[] = [];
    for (const ref of refs) {
      let name: string;
      try { name = clusterName(ctx, ref); } catch (e) {
        if (e instanceof ApiError && e.code === 'ClusterNotFoundException') { failures.push({ arn: ref, reason: 'MISSING' }); continue; }
        throw e;
      }
      const c = this.get(scope, name);
      if (c) clusters.push(this.view(scope, c, include));
      else failures.push({ arn: ecsArn(ctx.scope, `cluster/${name}`), reason: 'MISSING' });
    }
    return { clusters, failures };
  }

  list(ctx: RequestContext, input: { maxResults?: number; nextToken?: string }) {
    const max = pageSize(input.maxResults, 100);
    const active = this.store.list<ClusterRecord>(KIND, sk(ctx.scope)).filter((c) => c.status === 'ACTIVE');
    const { page, nextToken } = paginate(active, (c) => c.clusterName, max, input.nextToken);
    return { clusterArns: page.map((c) => c.clusterArn), ...(nextToken ? { nextToken } : {}) };
  }

  update(ctx: RequestContext, input: { cluster: string; settings?: ClusterSetting[]; configuration?: ClusterConfiguration; serviceConnectDefaults?: { namespace: string } }) {
    checkSettings(input.settings ?? []);
    checkExecuteCommandConfiguration(input.configuration?.executeCommandConfiguration);
    if (input.serviceConnectDefaults) {
      throw new ApiError('NamespaceNotFoundException', `Namespace '${input.serviceConnectDefaults.namespace}' was not found: Berth has no Cloud Map namespaces.`);
    }
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const c = this.require(ctx, input.cluster);
      if (input.settings?.length) {
        const byName = new Map(c.settings.map((s) => [s.name, s] as const));
        for (const s of input.settings) byName.set(s.name, s);
        c.settings = [...byName.values()];
      }
      if (input.configuration) c.configuration = { ...c.configuration, ...input.configuration };
      this.save(scope, c);
      return { cluster: this.view(scope, c, new Set(['SETTINGS', 'CONFIGURATIONS', 'TAGS'])) };
    });
  }

  updateSettings(ctx: RequestContext, input: { cluster: string; settings: ClusterSetting[] }) {
    if (input.settings.length === 0) throw invalidParameter('settings must contain at least one setting.');
    return this.update(ctx, { cluster: input.cluster, settings: input.settings });
  }

  delete(ctx: RequestContext, input: { cluster: string }) {
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const c = this.require(ctx, input.cluster);
      const stats = this.stats(scope, c.clusterName);
      if (stats.registeredContainerInstancesCount > 0) throw clusterContainsContainerInstances('The Cluster cannot be deleted while Container Instances are active or draining.');
      if (stats.activeServicesCount > 0) throw clusterContainsServices('The Cluster cannot be deleted while Services are active.');
      if (stats.runningTasksCount + stats.pendingTasksCount > 0) throw clusterContainsTasks('The Cluster cannot be deleted while Tasks are active.');
      const owned = this.providers.providersOf(scope, c.clusterName);
      if (owned.length > 0) {
        throw clusterContainsCapacityProvider(`The Cluster cannot be deleted while capacity providers are associated with it (${owned.join(', ')}). Delete them with DeleteCapacityProvider first.`);
      }
      c.status = 'INACTIVE';
      c.capacityProviders = [];
      c.defaultCapacityProviderStrategy = [];
      this.save(scope, c);
      return { cluster: this.view(scope, c, new Set(['SETTINGS', 'CONFIGURATIONS', 'TAGS'])) };
    });
  }

  putCapacityProviders(ctx: RequestContext, input: { cluster: string; capacityProviders: string[]; defaultCapacityProviderStrategy: StrategyItem[] }) {
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const c = this.require(ctx, input.cluster);
      this.checkAssociation(scope, c.clusterName, input.capacityProviders, input.defaultCapacityProviderStrategy);
      c.capacityProviders = [...input.capacityProviders];
      c.defaultCapacityProviderStrategy = normalizeStrategy(input.defaultCapacityProviderStrategy);
      this.save(scope, c);
      return { cluster: this.view(scope, c, new Set(['SETTINGS', 'CONFIGURATIONS', 'TAGS'])) };
    });
  }

  /**
   * Managed-instances providers belong to one cluster and stay associated with it while
   * they exist; a cluster may list only its own providers.
   */
  private checkAssociation(scope: string, cluster: string, names: string[], strategy: StrategyItem[]): void {
    if (new Set(names).size !== names.length) throw invalidParameter('capacityProviders lists a capacity provider more than once.');
    for (const n of names) {
      if (n === 'FARGATE' || n === 'FARGATE_SPOT') {
        throw invalidParameter(`Capacity provider ${n} is not available: Berth runs tasks on managed instances only. Create a capacity provider with managedInstancesProvider for this cluster.`);
      }
      const owner = this.providers.clusterOf(scope, n);
      if (owner === undefined) throw invalidParameter(`The specified capacity provider '${n}' does not exist or is not ACTIVE.`);
      if (owner !== cluster) throw invalidParameter(`Capacity provider '${n}' belongs to cluster '${owner}'; managed instances capacity providers can only be used in their own cluster.`);
    }
    for (const own of this.providers.providersOf(scope, cluster)) {
      if (!names.includes(own)) {
        throw clientException(`Capacity provider '${own}' is a managed instances capacity provider of this cluster and stays associated with it; include it in capacityProviders, or delete it with DeleteCapacityProvider.`);
      }
    }
    validateStrategy(strategy, 'defaultCapacityProviderStrategy');
    for (const item of strategy) {
      if (!names.includes(item.capacityProvider)) {
        throw invalidParameter(`The default capacity provider strategy names '${item.capacityProvider}', which is not among the cluster's capacityProviders.`);
      }
    }
  }
}
