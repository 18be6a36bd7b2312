// Amazon ECS: every operation Berth answers → its IAM action, resources and condition keys,
// after "Actions, resources, and condition keys for Amazon Elastic Container Service"
// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html).
// Resource ARNs: cluster/<name>, capacity-provider/<name>, container-instance/<cluster>/<id>,
// service/<cluster>/<name>, task/<cluster>/<id>, task-definition/<family>:<revision>,
// service-deployment/<cluster>/<service>/<id>. aws:ResourceTag/<key> comes from the records.
//
// Where AWS defines no resource type (`*`), Berth follows it, with two deliberate additions:
//  - ecs:cluster is set whenever the request is about one cluster (AWS sets it on fewer
//    actions), so "Resource: *, Condition ArnEquals ecs:cluster" confines every action to a cluster;
//  - account-wide listings (ListClusters, ListTaskDefinitions, ListTaskDefinitionFamilies, and
//    DescribeCapacityProviders without names) are authorised item by item: the caller sees only
//    what it is allowed on, so a user confined to one cluster never learns the others' names.
// DescribeTaskDefinition and DeregisterTaskDefinition check the task definition's ARN (AWS: `*`),
// which a policy with Resource `*` still matches.
import type { RequestContext } from '../api/context.js';
import { sk } from '../ecs/common.js';
import type { ContextInput } from '../iam/policy-evaluator.js';
import { lastPart, regionalArn, requestTags, tagMap, type Args, type Check, type Rule, type ServiceAuthz } from './types.js';

const arn = (ctx: RequestContext, resource: string) => regionalArn(ctx, 'ecs', resource);

function clusterNameOf(ref: string | undefined): string {
  if (ref === undefined || ref === '') return 'default';
  if (ref.startsWith('arn:')) { const i = ref.indexOf(':cluster/'); return i >= 0 ? ref.slice(i + ':cluster/'.length) : ref; }
  return ref;
}

function clusterArnOf(a: Args, ref: string | undefined): string {
  if (ref?.startsWith('arn:')) return ref;
  return arn(a.ctx, `cluster/${clusterNameOf(ref)}`);
}

function cluster(a: Args, ref: string | undefined): Check {
  const name = clusterNameOf(ref);
  const rec = a.env.ecs?.clusters.get(sk(a.ctx.scope), name);
  const resource = ref?.startsWith('arn:') ? ref : rec?.clusterArn ?? arn(a.ctx, `cluster/${name}`);
  return { resource, tags: tagMap(rec?.tags), keys: { 'ecs:cluster': resource } };
}

function capacityProvider(a: Args, ref: string): Check {
  const name = lastPart(ref);
  const rec = a.env.ecs?.capacityProviders.get(sk(a.ctx.scope), name);
  const resource = ref.startsWith('arn:') ? ref : rec?.capacityProviderArn ?? arn(a.ctx, `capacity-provider/${name}`);
  return { resource, tags: tagMap(rec?.tags), ...(rec ? { keys: { 'ecs:cluster': arn(a.ctx, `cluster/${rec.cluster}`) } } : {}) };
}

function task(a: Args, clusterRef: string | undefined, ref: string): Check {
  const id = lastPart(ref);
  const rec = a.env.ecs?.tasks.get(sk(a.ctx.scope), id);
  const resource = ref.startsWith('arn:') ? ref : rec?.taskArn ?? arn(a.ctx, `task/${clusterNameOf(clusterRef)}/${id}`);
  return { resource, tags: tagMap(rec?.tags), keys: { 'ecs:task': resource } };
}

function containerInstance(a: Args, clusterRef: string | undefined, ref: string): Check {
  const id = lastPart(ref);
  const rec = a.env.ecs?.containerInstances.get(sk(a.ctx.scope), id);
  const resource = ref.startsWith('arn:') ? ref : rec?.containerInstanceArn ?? arn(a.ctx, `container-instance/${clusterNameOf(clusterRef)}/${id}`);
  return { resource, tags: tagMap(rec?.tags) };
}

function service(a: Args, clusterRef: string | undefined, ref: string): Check {
  const name = lastPart(ref);
  const c = clusterNameOf(clusterRef);
  const rec = a.env.ecs?.services.get(sk(a.ctx.scope), c, name);
  const resource = ref.startsWith('arn:') ? ref : rec?.serviceArn ?? arn(a.ctx, `service/${c}/${name}`);
  return { resource, tags: tagMap(rec?.tags), keys: { 'ecs:service': resource } };
}

/** A task definition reference as the handler will resolve it (a bare family: its latest ACTIVE revision, as AWS does since 2024). */
function taskDefinition(a: Args, ref: string): Check {
  let rec;
  try { rec = a.env.ecs?.taskDefinitions.resolve(a.ctx, ref); } catch { rec = undefined; }
  const resource = rec?.taskDefinitionArn ?? (ref.startsWith('arn:') ? ref : arn(a.ctx, `task-definition/${ref}`));
  return { resource, tags: tagMap(rec?.tags) };
}

const providerArns = (a: Args, names: (string | undefined)[]): string[] =>
  names.filter((n): n is string => typeof n === 'string').map((n) => (n.startsWith('arn:') ? n : arn(a.ctx, `capacity-provider/${n}`)));

const strategyProviders = (a: Args, strategy: { capacityProvider?: string }[] | undefined) => providerArns(a, (strategy ?? []).map((s) => s.capacityProvider));

const ecsRequestTags = (tags: { key: string; value?: string }[] | undefined): ContextInput => requestTags(tagMap(tags));

const execFlag = (v: unknown): ContextInput => (typeof v === 'boolean' ? { 'ecs:enable-execute-command': String(v) } : {});

const inCluster = (a: Args): ContextInput => ({ 'ecs:cluster': clusterArnOf(a, a.input.cluster) });

/** The resource-level rule most ECS actions follow: one resource, ecs:cluster where there is one. */
const on = (resources: (a: Args) => Check[], keys?: (a: Args) => ContextInput): Rule => (keys ? { resources, keys } : { resources });

export const ecsAuthz: ServiceAuthz = {
  prefix: 'ecs',
  style: 'json',
  rules: {
    // Clusters
    CreateCluster: on((a) => [cluster(a, a.input.clusterName)], (a) => ({
      ...ecsRequestTags(a.input.tags),
      ...(a.input.capacityProviders?.length ? { 'ecs:capacity-provider': providerArns(a, a.input.capacityProviders) } : {}),
    })),
    DescribeClusters: on((a) => (a.input.clusters?.length ? a.input.clusters : ['default']).map((c: string) => cluster(a, c))),
    ListClusters: { resources: () => [], list: { field: 'clusterArns', check: (item: string, a) => cluster(a, item) } },
    UpdateCluster: on((a) => [cluster(a, a.input.cluster)]),
    UpdateClusterSettings: on((a) => [cluster(a, a.input.cluster)]),
    DeleteCluster: on((a) => [cluster(a, a.input.cluster)]),
    PutClusterCapacityProviders: on((a) => [cluster(a, a.input.cluster)], (a) => ({ 'ecs:capacity-provider': providerArns(a, a.input.capacityProviders ?? []) })),

    // Capacity providers
    CreateCapacityProvider: on((a) => [capacityProvider(a, a.input.name)], (a) => ({
      ...ecsRequestTags(a.input.tags), ...(a.input.cluster ? inCluster(a) : {}),
    })),
    DescribeCapacityProviders: {
      resources: (a) => (a.input.capacityProviders?.length ? a.input.capacityProviders.map((p: string) => capacityProvider(a, p)) : []),
      keys: (a) => (a.input.cluster ? inCluster(a) : {}),
      list: { field: 'capacityProviders', check: (item: { capacityProviderArn: string }, a) => capacityProvider(a, item.capacityProviderArn) },
    },
    UpdateCapacityProvider: on((a) => [capacityProvider(a, a.input.name)]),
    DeleteCapacityProvider: on((a) => [capacityProvider(a, a.input.capacityProvider)]),

    // Task definitions
    RegisterTaskDefinition: on((a) => {
      const family = String(a.input.family);
      const latest = a.env.store?.get<{ latestRevision: number }>('task-definition-family', sk(a.ctx.scope), family)?.latestRevision ?? 0;
      return [{ resource: arn(a.ctx, `task-definition/${family}:${latest + 1}`) }];
    }, (a) => ecsRequestTags(a.input.tags)),
    DescribeTaskDefinition: on((a) => [taskDefinition(a, a.input.taskDefinition)]),
    ListTaskDefinitions: { resources: () => [], list: { field: 'taskDefinitionArns', check: (item: string) => ({ resource: item }) } },
    ListTaskDefinitionFamilies: { resources: () => [], list: { field: 'families', check: (item: string, a) => ({ resource: arn(a.ctx, `task-definition/${item}:*`) }) } },
    DeregisterTaskDefinition: on((a) => [taskDefinition(a, a.input.taskDefinition)]),
    DeleteTaskDefinitions: on((a) => (a.input.taskDefinitions ?? []).map((t: string) => taskDefinition(a, t))),

    // Tasks
    RunTask: on((a) => [taskDefinition(a, a.input.taskDefinition)], (a) => ({
      ...inCluster(a), ...ecsRequestTags(a.input.tags), ...execFlag(a.input.enableExecuteCommand),
      ...(a.input.capacityProviderStrategy?.length ? { 'ecs:capacity-provider': strategyProviders(a, a.input.capacityProviderStrategy) } : {}),
    })),
    StartTask: on((a) => [taskDefinition(a, a.input.taskDefinition)], (a) => ({
      ...inCluster(a), ...ecsRequestTags(a.input.tags), ...execFlag(a.input.enableExecuteCommand),
      'ecs:container-instances': (a.input.containerInstances ?? []).map((c: string) => containerInstance(a, a.input.cluster, c).resource),
    })),
    StopTask: on((a) => [task(a, a.input.cluster, a.input.task)], inCluster),
    DescribeTasks: on((a) => (a.input.tasks ?? []).map((t: string) => task(a, a.input.cluster, t)), inCluster),
    // AWS: container-instance* with ecs:cluster. Without a containerInstance filter the request
    // is about every instance of the cluster: container-instance/<cluster>/*.
    ListTasks: on((a) => [a.input.containerInstance
      ? containerInstance(a, a.input.cluster, a.input.containerInstance)
      : { resource: arn(a.ctx, `container-instance/${clusterNameOf(a.input.cluster)}/*`) }], inCluster),
    UpdateTaskProtection: on((a) => (a.input.tasks ?? []).map((t: string) => task(a, a.input.cluster, t)), inCluster),
    GetTaskProtection: on((a) => (a.input.tasks?.length ? a.input.tasks : ['*']).map((t: string) => task(a, a.input.cluster, t)), inCluster),
    // ECS Exec: the cluster and the task, with ecs:container-name (the one named, or the task's only container).
    ExecuteCommand: on((a) => {
      const c = cluster(a, a.input.cluster);
      const t = task(a, a.input.cluster, a.input.task);
      return [c, t];
    }, (a) => {
      let container = a.input.container as string | undefined;
      if (container === undefined || container === '') {
        const rec = a.env.ecs?.tasks.get(sk(a.ctx.scope), lastPart(a.input.task));
        if (rec?.containers.length === 1) container = rec.containers[0]!.name;
      }
      const t = task(a, a.input.cluster, a.input.task);
      return { ...inCluster(a), 'ecs:task': t.resource, ...(container ? { 'ecs:container-name': container } : {}) };
    }),

    // Services
    CreateService: on((a) => [service(a, a.input.cluster, a.input.serviceName)], (a) => ({
      ...inCluster(a), ...ecsRequestTags(a.input.tags), ...execFlag(a.input.enableExecuteCommand),
      ...(a.input.taskDefinition ? { 'ecs:task-definition': taskDefinition(a, a.input.taskDefinition).resource } : {}),
      ...(a.input.capacityProviderStrategy?.length ? { 'ecs:capacity-provider': strategyProviders(a, a.input.capacityProviderStrategy) } : {}),
    })),
    UpdateService: on((a) => [service(a, a.input.cluster, a.input.service)], (a) => ({
      ...inCluster(a), ...execFlag(a.input.enableExecuteCommand),
      ...(a.input.taskDefinition ? { 'ecs:task-definition': taskDefinition(a, a.input.taskDefinition).resource } : {}),
      ...(a.input.capacityProviderStrategy?.length ? { 'ecs:capacity-provider': strategyProviders(a, a.input.capacityProviderStrategy) } : {}),
    })),
    DeleteService: on((a) => [service(a, a.input.cluster, a.input.service)], inCluster),
    DescribeServices: on((a) => (a.input.services ?? []).map((s: string) => service(a, a.input.cluster, s)), inCluster),
    // AWS: no resource type, ecs:cluster condition key.
    ListServices: on(() => [{ resource: '*' }], inCluster),
    ListServiceDeployments: on((a) => [service(a, a.input.cluster, a.input.service)], inCluster),
    DescribeServiceDeployments: on((a) => (a.input.serviceDeploymentArns ?? []).map((d: string) => {
      const m = /:service-deployment\/([^/]+)\/([^/]+)\//.exec(d);
      return { resource: d, keys: m ? { 'ecs:cluster': arn(a.ctx, `cluster/${m[1]}`), 'ecs:service': arn(a.ctx, `service/${m[1]}/${m[2]}`) } : {} };
    })),

    // Container instances
    ListContainerInstances: on((a) => [cluster(a, a.input.cluster)]),
    DescribeContainerInstances: on((a) => (a.input.containerInstances ?? []).map((c: string) => containerInstance(a, a.input.cluster, c)), inCluster),
    UpdateContainerInstancesState: on((a) => (a.input.containerInstances ?? []).map((c: string) => containerInstance(a, a.input.cluster, c)), inCluster),
    DeregisterContainerInstance: on((a) => [cluster(a, a.input.cluster)], (a) => ({
      ...inCluster(a), 'ecs:container-instances': [containerInstance(a, a.input.cluster, a.input.containerInstance).resource],
    })),

    // Tags: the resource itself, with the tags it has and the ones the request sets.
    TagResource: on((a) => [resourceByArn(a, a.input.resourceArn)], (a) => ecsRequestTags(a.input.tags)),
    UntagResource: on((a) => [resourceByArn(a, a.input.resourceArn)], (a) => (a.input.tagKeys?.length ? { 'aws:TagKeys': a.input.tagKeys } : {})),
    ListTagsForResource: on((a) => [resourceByArn(a, a.input.resourceArn)]),

    // Account settings: no resource type; ecs:account-setting names the setting.
    PutAccountSetting: on(() => [{ resource: '*' }], (a) => ({ 'ecs:account-setting': a.input.name })),
    PutAccountSettingDefault: on(() => [{ resource: '*' }], (a) => ({ 'ecs:account-setting': a.input.name })),
    DeleteAccountSetting: on(() => [{ resource: '*' }], (a) => ({ 'ecs:account-setting': a.input.name })),
    ListAccountSettings: on(() => [{ resource: '*' }], (a) => (a.input.name ? { 'ecs:account-setting': a.input.name } : {})),
  },
};

/** A taggable ECS resource named by its ARN, with its tags (and cluster) when Berth has it. */
function resourceByArn(a: Args, resourceArn: string): Check {
  const m = /^arn:[^:]+:ecs:[^:]*:[^:]*:([a-z-]+)\/(.+)$/.exec(resourceArn);
  if (!m) return { resource: resourceArn };
  const [, type, rest] = m as unknown as [string, string, string];
  const parts = rest.split('/');
  const inClusterOf = (c: Check): Check => (parts.length > 1 ? { ...c, resource: resourceArn, keys: { ...c.keys, 'ecs:cluster': arn(a.ctx, `cluster/${parts[0]}`) } } : { ...c, resource: resourceArn });
  switch (type) {
    case 'cluster': return { ...cluster(a, resourceArn), resource: resourceArn };
    case 'capacity-provider': return { ...capacityProvider(a, resourceArn), resource: resourceArn };
    case 'task': return inClusterOf(task(a, parts.length > 1 ? parts[0] : undefined, resourceArn));
    case 'service': return inClusterOf(service(a, parts.length > 1 ? parts[0] : undefined, resourceArn));
    case 'container-instance': return inClusterOf(containerInstance(a, parts.length > 1 ? parts[0] : undefined, resourceArn));
    case 'task-definition': return { ...taskDefinition(a, resourceArn), resource: resourceArn };
    default: return { resource: resourceArn };
  }
}
