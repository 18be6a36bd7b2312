// Managed-instances capacity providers: cluster-scoped, created ACTIVE, deleted through
// DEPROVISIONING once their instances are gone.
import type { RequestContext } from '../api/context.js';
import { clientException, invalidParameter, resourceInUse, unsupportedFeature } from '../api/errors.js';
import { isGovCloud } from '../domain/arn.js';
import { parseProviderSettings, ProviderSettingError, type ProviderSettings } from '../domain/provider-settings.js';
import type { Store } from '../store/store.js';
import type { Clusters, ProviderDirectory } from './clusters.js';
import { ecsArn, pageSize, paginate, resolveRef, sk, validateTags, type Tag } from './common.js';
import { validateInstanceRequirements, type InstanceRequirements } from './instance-requirements.js';

export interface InstanceLaunchTemplate {
  ec2InstanceProfileArn: string;
  networkConfiguration: { subnets?: string[]; securityGroups?: string[] };
  storageConfiguration?: { storageSizeGiB?: number };
  localStorageConfiguration?: { useLocalStorage?: boolean };
  monitoring?: 'BASIC' | 'DETAILED';
  capacityOptionType?: 'ON_DEMAND' | 'SPOT' | 'RESERVED';
  instanceMetadataTagsPropagation?: boolean;
  instanceRequirements?: InstanceRequirements;
  fipsEnabled?: boolean;
  capacityReservations?: { reservationGroupArn?: string; reservationPreference?: string };
}

export interface ManagedInstancesProvider {
  infrastructureRoleArn: string;
  instanceLaunchTemplate: InstanceLaunchTemplate;
  propagateTags?: 'CAPACITY_PROVIDER' | 'NONE';
  infrastructureOptimization?: { scaleInAfter?: number };
  autoRepairConfiguration?: { actionsStatus?: 'ENABLED' | 'DISABLED' };
}

export type ProviderStatus = 'PROVISIONING' | 'ACTIVE' | 'DEPROVISIONING' | 'INACTIVE';

export interface CapacityProviderRecord {
  capacityProviderArn: string;
  name: string;
  cluster: string;
  status: ProviderStatus;
  updateStatus: string;
  updateStatusReason?: string;
  type: 'MANAGED_INSTANCES';
  managedInstancesProvider: ManagedInstancesProvider;
  tags: Tag[];
  createdAt: number;
}

const KIND = 'capacity-provider';
const NAME = /^[a-zA-Z0-9_-]{1,255}$/;
const MIN_STORAGE_GIB = 30;
const MAX_STORAGE_GIB = 16384;
export const DEFAULT_SCALE_IN_AFTER_SECONDS = 300;

/** Instances a provider still has; the instance work fills this in. */
export type InstanceCounter = (scope: string, provider: string) => number;

function checkLaunchTemplate(t: Partial<InstanceLaunchTemplate>, creating: boolean): void {
  if (creating || t.ec2InstanceProfileArn !== undefined) {
    if (!t.ec2InstanceProfileArn?.trim()) throw invalidParameter('instanceLaunchTemplate.ec2InstanceProfileArn must not be empty.');
  }
  const net = t.networkConfiguration;
  if (creating || net) {
    if (!net?.subnets?.length) throw invalidParameter('instanceLaunchTemplate.networkConfiguration.subnets must list at least one subnet.');
    if (net.subnets.length > 16) throw invalidParameter(`instanceLaunchTemplate.networkConfiguration.subnets can list at most 16 subnets; got ${net.subnets.length}.`);
    if (new Set(net.subnets).size !== net.subnets.length) throw invalidParameter('instanceLaunchTemplate.networkConfiguration.subnets lists a subnet more than once.');
    if (net.subnets.some((s) => !s.trim())) throw invalidParameter('instanceLaunchTemplate.networkConfiguration.subnets must not contain empty subnet ids.');
    if ((net.securityGroups?.length ?? 0) > 5) throw invalidParameter(`instanceLaunchTemplate.networkConfiguration.securityGroups can list at most 5 security groups; got ${net.securityGroups!.length}.`);
  }
  const size = t.storageConfiguration?.storageSizeGiB;
  if (size !== undefined && (size < MIN_STORAGE_GIB || size > MAX_STORAGE_GIB)) {
    throw invalidParameter(`instanceLaunchTemplate.storageConfiguration.storageSizeGiB must be between ${MIN_STORAGE_GIB} and ${MAX_STORAGE_GIB}; got ${size}.`);
  }
  if (t.capacityOptionType === 'RESERVED' && !t.capacityReservations) {
    throw invalidParameter('instanceLaunchTemplate.capacityReservations is required when capacityOptionType is RESERVED.');
  }
  if (t.capacityReservations && t.capacityOptionType !== undefined && t.capacityOptionType !== 'RESERVED') {
    throw invalidParameter(`instanceLaunchTemplate.capacityReservations can only be set when capacityOptionType is RESERVED (it is ${t.capacityOptionType}).`);
  }
  if (t.instanceRequirements) validateInstanceRequirements(t.instanceRequirements);
}

function checkProvider(p: Partial<ManagedInstancesProvider>): void {
  if (!p.infrastructureRoleArn?.trim()) throw invalidParameter('managedInstancesProvider.infrastructureRoleArn must not be empty.');
  const s = p.infrastructureOptimization?.scaleInAfter;
  if (s !== undefined && s !== null && s !== -1 && (s < 0 || s > 3600)) {
    throw invalidParameter(`infrastructureOptimization.scaleInAfter must be -1 (off) or between 0 and 3600 seconds; got ${s}.`);
  }
}

function settingsOf(tags: Tag[]): ProviderSettings {
  try {
    return parseProviderSettings(tags);
  } catch (e) {
    if (e instanceof ProviderSettingError) throw invalidParameter(e.message);
    throw e;
  }
}

export class CapacityProviders implements ProviderDirectory {
  instanceCount: InstanceCounter = () => 0;

  constructor(private readonly store: Store, private readonly clusters: Clusters) {
    clusters.providers = this;
  }

  get(scope: string, name: string): CapacityProviderRecord | undefined {
    return this.store.get<CapacityProviderRecord>(KIND, scope, name);
  }

  save(scope: string, p: CapacityProviderRecord): void {
    this.store.put(KIND, scope, p.name, p, p.cluster);
  }

  /** Berth's own settings of a provider (single-task mode, privileged capabilities). */
  settings(p: CapacityProviderRecord): ProviderSettings {
    return parseProviderSettings(p.tags);
  }

  providersOf(scope: string, cluster: string): string[] {
    return this.store.list<CapacityProviderRecord>(KIND, scope, { parent: cluster })
      .filter((p) => p.status !== 'INACTIVE').map((p) => p.name);
  }

  clusterOf(scope: string, provider: string): string | undefined {
    const p = this.get(scope, provider);
    return p && p.status === 'ACTIVE' ? p.cluster : undefined;
  }

  view(p: CapacityProviderRecord, includeTags: boolean): Record<string, unknown> {
    const { createdAt: _createdAt, tags, ...rest } = p;
    return includeTags ? { ...rest, tags } : rest;
  }

  create(ctx: RequestContext, input: {
    name: string; cluster?: string; autoScalingGroupProvider?: unknown; managedInstancesProvider?: ManagedInstancesProvider; tags?: Tag[];
  }) {
    if (input.autoScalingGroupProvider !== undefined) {
      throw unsupportedFeature('Berth runs managed instances only: autoScalingGroupProvider is not supported. Create the capacity provider with managedInstancesProvider and a cluster.');
    }
    if (!NAME.test(input.name)) {
      throw invalidParameter('The capacity provider name can have up to 255 characters: letters (uppercase and lowercase), numbers, underscores and hyphens.');
    }
    if (/^(aws|ecs|fargate)/i.test(input.name)) {
      throw invalidParameter(`The capacity provider name '${input.name}' can't be prefixed with "aws", "ecs", or "fargate".`);
    }
    const mip = input.managedInstancesProvider;
    if (!mip) throw invalidParameter('managedInstancesProvider is required: it configures the instances Berth launches for this capacity provider.');
    if (input.cluster === undefined) {
      throw invalidParameter('cluster is required when creating a capacity provider with managedInstancesProvider: managed instances capacity providers belong to one cluster.');
    }
    checkProvider(mip);
    checkLaunchTemplate(mip.instanceLaunchTemplate, true);
    const tags = (input.tags ?? []).map((t) => ({ key: t.key, value: t.value ?? '' }));
    validateTags(tags);
    settingsOf(tags);
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const cluster = this.clusters.require(ctx, input.cluster);
      const existing = this.get(scope, input.name);
      if (existing && existing.status !== 'INACTIVE') {
        throw clientException('The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.');
      }
      const template = mip.instanceLaunchTemplate;
      const record: CapacityProviderRecord = {
        capacityProviderArn: ecsArn(ctx.scope, `capacity-provider/${input.name}`),
        name: input.name,
        cluster: cluster.clusterName,
        status: 'ACTIVE',
        updateStatus: 'CREATE_COMPLETE',
        type: 'MANAGED_INSTANCES',
        managedInstancesProvider: {
          ...mip,
          instanceLaunchTemplate: { ...template, fipsEnabled: template.fipsEnabled ?? isGovCloud(ctx.scope.region) },
        },
        tags,
        createdAt: ctx.clock.now(),
      };
      this.save(scope, record);
      cluster.capacityProviders = [...cluster.capacityProviders.filter((n) => n !== record.name), record.name];
      this.clusters.save(scope, cluster);
      return { capacityProvider: this.view(record, true) };
    });
  }

  /** The provider a request names, scoped to `cluster` when given. */
  private find(ctx: RequestContext, ref: string, clusterRef: string | undefined): CapacityProviderRecord {
    const name = resolveRef(ctx, ref, 'capacity-provider', 'capacityProvider');
    const p = this.get(sk(ctx.scope), name);
    if (!p || p.status === 'INACTIVE') {
      throw invalidParameter(`The specified capacity provider '${name}' does not exist.`);
    }
    if (clusterRef !== undefined) {
      const c = this.clusters.require(ctx, clusterRef);
      if (c.clusterName !== p.cluster) throw invalidParameter(`Capacity provider '${name}' belongs to cluster '${p.cluster}', not '${c.clusterName}'.`);
    }
    return p;
  }

  describe(ctx: RequestContext, input: { capacityProviders?: string[]; cluster?: string; include?: string[]; maxResults?: number; nextToken?: string }) {
    const includeTags = (input.include ?? []).includes('TAGS');
    const scope = sk(ctx.scope);
    const cluster = input.cluster !== undefined ? this.clusters.require(ctx, input.cluster).clusterName : undefined;
    if (input.capacityProviders?.length) {
      if (input.maxResults !== undefined || input.nextToken !== undefined) {
        throw invalidParameter('maxResults and nextToken can only be used when capacityProviders is not specified.');
      }
      if (input.capacityProviders.length > 100) throw invalidParameter('capacityProviders can list at most 100 capacity providers.');
      const found: unknown[] = [];
      const failures: { arn: string; reason: string }[] = [];
      for (const ref of input.capacityProviders) {
        const name = resolveRef(ctx, ref, 'capacity-provider', 'capacityProviders');
        const p = this.get(scope, name);
        if (p && (cluster === undefined || p.cluster === cluster)) found.push(this.view(p, includeTags));
        else failures.push({ arn: ecsArn(ctx.scope, `capacity-provider/${name}`), reason: 'MISSING' });
      }
      return { capacityProviders: found, failures };
    }
    const max = pageSize(input.maxResults, 10);
    const all = (cluster === undefined
      ? this.store.list<CapacityProviderRecord>(KIND, scope)
      : this.store.list<CapacityProviderRecord>(KIND, scope, { parent: cluster })).filter((p) => p.status !== 'INACTIVE');
    const { page, nextToken } = paginate(all, (p) => p.name, max, input.nextToken);
    return { capacityProviders: page.map((p) => this.view(p, includeTags)), failures: [], ...(nextToken ? { nextToken } : {}) };
  }

  update(ctx: RequestContext, input: { name: string; cluster?: string; autoScalingGroupProvider?: unknown; managedInstancesProvider?: ManagedInstancesProvider }) {
    if (input.autoScalingGroupProvider !== undefined) {
      throw unsupportedFeature('Berth runs managed instances only: autoScalingGroupProvider is not supported.');
    }
    const mip = input.managedInstancesProvider;
    if (!mip) throw invalidParameter('managedInstancesProvider is required to update a managed instances capacity provider.');
    checkProvider(mip);
    checkLaunchTemplate(mip.instanceLaunchTemplate, false);
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const p = this.find(ctx, input.name, input.cluster);
      if (p.status !== 'ACTIVE') throw clientException(`Capacity provider '${p.name}' is ${p.status} and cannot be updated.`);
      const current = p.managedInstancesProvider;
      const merged: InstanceLaunchTemplate = { ...current.instanceLaunchTemplate };
      for (const [k, v] of Object.entries(mip.instanceLaunchTemplate)) if (v !== undefined && v !== null) (merged as unknown as Record<string, unknown>)[k] = v;
      checkLaunchTemplate(merged, true);
      p.managedInstancesProvider = {
        ...current,
        infrastructureRoleArn: mip.infrastructureRoleArn,
        instanceLaunchTemplate: merged,
        ...(mip.propagateTags !== undefined ? { propagateTags: mip.propagateTags } : {}),
        ...(mip.infrastructureOptimization !== undefined ? { infrastructureOptimization: mip.infrastructureOptimization } : {}),
        ...(mip.autoRepairConfiguration !== undefined ? { autoRepairConfiguration: mip.autoRepairConfiguration } : {}),
      };
      p.updateStatus = 'UPDATE_COMPLETE';
      delete p.updateStatusReason;
      this.save(scope, p);
      return { capacityProvider: this.view(p, false) };
    });
  }

  delete(ctx: RequestContext, input: { capacityProvider: string; cluster?: string }) {
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const p = this.find(ctx, input.capacityProvider, input.cluster);
      if (p.status === 'DEPROVISIONING') return { capacityProvider: this.view(p, false) };
      const cluster = this.clusters.get(scope, p.cluster);
      if (cluster?.defaultCapacityProviderStrategy.some((i) => i.capacityProvider === p.name)) {
        throw resourceInUse(`Capacity provider '${p.name}' is in the default capacity provider strategy of cluster '${p.cluster}'. Remove it from the strategy with PutClusterCapacityProviders first.`);
      }
      p.status = 'DEPROVISIONING';
      p.updateStatus = 'DELETE_IN_PROGRESS';
      this.finishDeletionIfEmpty(scope, p);
      this.save(scope, p);
      if (cluster) {
        cluster.capacityProviders = cluster.capacityProviders.filter((n) => n !== p.name);
        this.clusters.save(scope, cluster);
      }
      return { capacityProvider: this.view(p, false) };
    });
  }

  /** A deprovisioning provider becomes INACTIVE once it has no instances left. */
  finishDeletionIfEmpty(scope: string, p: CapacityProviderRecord): boolean {
    if (p.status !== 'DEPROVISIONING' || this.instanceCount(scope, p.name) > 0) return false;
    p.status = 'INACTIVE';
    p.updateStatus = 'DELETE_COMPLETE';
    return true;
  }

  /** Tag changes on a provider must keep Berth's reserved settings valid. */
  checkTags(tags: Tag[]): void {
    settingsOf(tags);
  }
}

