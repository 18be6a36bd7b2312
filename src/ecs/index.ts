// The ECS service: its modules wired together and the action table the JSON front door
// dispatches to.
import type { Handler } from '../api/context.js';
import type { Store } from '../store/store.js';
import { AccountSettings } from './account-settings.js';
import { CapacityProviders, type CapacityProviderRecord } from './capacity-providers.js';
import { Clusters, type ClusterRecord } from './clusters.js';
import { ContainerInstances } from './container-instances.js';
import { Tags } from './tags.js';
import { TaskDefinitions, type TaskSecrets } from './task-definitions.js';
import { Tasks, type TaskPrecheck } from './tasks.js';
import { Services, type DeploymentRecord, type ServiceRecord } from './services.js';

export class Ecs {
  readonly settings: AccountSettings;
  readonly clusters: Clusters;
  readonly capacityProviders: CapacityProviders;
  readonly taskDefinitions: TaskDefinitions;
  readonly containerInstances: ContainerInstances;
  readonly tasks: Tasks;
  readonly services: Services;
  readonly tags = new Tags();

  constructor(readonly store: Store, deps: { secrets: TaskSecrets; precheck: TaskPrecheck }) {
    this.settings = new AccountSettings(store);
    this.clusters = new Clusters(store, this.settings);
    this.capacityProviders = new CapacityProviders(store, this.clusters);
    this.taskDefinitions = new TaskDefinitions(store, deps.secrets);
    this.containerInstances = new ContainerInstances(store, this.clusters);
    this.tasks = new Tasks(store, this.clusters, this.taskDefinitions, this.capacityProviders, this.containerInstances, deps.precheck);
    this.services = new Services(store, this.clusters, this.taskDefinitions, this.capacityProviders);
    this.capacityProviders.instanceCount = (scope, provider) => this.containerInstances.all()
      .filter(({ scope: s, ci }) => s === scope && ci.capacityProviderName === provider && ci.ec2State !== 'terminated').length;
    this.clusters.stats = (scope, cluster) => {
      const instances = this.containerInstances.ofCluster(scope, cluster);
      const tasks = this.tasks.ofCluster(scope, cluster).filter((t) => t.lastStatus !== 'STOPPED');
      return {
        registeredContainerInstancesCount: instances.filter((ci) => ci.status === 'ACTIVE' || ci.status === 'DRAINING').length,
        runningTasksCount: tasks.filter((t) => t.lastStatus === 'RUNNING').length,
        pendingTasksCount: tasks.filter((t) => t.lastStatus !== 'RUNNING').length,
        activeServicesCount: this.services.ofCluster(scope, cluster).filter((sv) => sv.status === 'ACTIVE').length,
      };
    };

    this.tags.register('cluster', {
      getTags: (scope, id) => { const c = this.clusters.get(scope, id); return c?.status === 'ACTIVE' ? c.tags : undefined; },
      setTags: (scope, id, tags) => { const c = this.clusters.get(scope, id)!; c.tags = tags; this.clusters.save(scope, c); },
    });
    this.tags.register('capacity-provider', {
      getTags: (scope, id) => { const p = this.capacityProviders.get(scope, id); return p && p.status !== 'INACTIVE' ? p.tags : undefined; },
      setTags: (scope, id, tags) => { const p = this.capacityProviders.get(scope, id)!; p.tags = tags; this.capacityProviders.save(scope, p); },
      checkTags: (tags) => this.capacityProviders.checkTags(tags),
    });
    this.tags.register('task', {
      getTags: (scope, id) => this.tasks.get(scope, id.slice(id.lastIndexOf('/') + 1))?.tags,
      setTags: (scope, id, tags) => { const t = this.tasks.get(scope, id.slice(id.lastIndexOf('/') + 1))!; t.tags = tags; this.tasks.save(scope, t); },
    });
    this.tags.register('service', {
      getTags: (scope, id) => { const [c, n] = id.split('/'); const sv = c && n ? this.services.get(scope, c, n) : undefined; return sv && sv.status !== 'INACTIVE' ? sv.tags : undefined; },
      setTags: (scope, id, tags) => { const [c, n] = id.split('/'); const sv = this.services.get(scope, c!, n!)!; sv.tags = tags; this.services.save(scope, sv); },
    });
    this.tags.register('container-instance', {
      getTags: (scope, id) => { const ci = this.containerInstances.get(scope, id.slice(id.lastIndexOf('/') + 1)); return ci && this.containerInstances.isLive(ci) ? ci.tags : undefined; },
      setTags: (scope, id, tags) => { const ci = this.containerInstances.get(scope, id.slice(id.lastIndexOf('/') + 1))!; ci.tags = tags; this.containerInstances.save(scope, ci); },
    });
    this.tags.register('task-definition', {
      getTags: (scope, id) => {
        const m = /^([a-zA-Z0-9_-]+):(\d+)$/.exec(id);
        return m ? this.taskDefinitions.get(scope, m[1]!, Number(m[2]))?.tags : undefined;
      },
      setTags: (scope, id, tags) => {
        const [family, rev] = id.split(':');
        const r = this.taskDefinitions.get(scope, family!, Number(rev))!;
        r.tags = tags;
        this.taskDefinitions.save(scope, r);
      },
    });
  }

  handlers(): Record<string, Handler> {
    const tx = <R>(fn: () => R) => this.store.tx(fn);
    const c = this.clusters, p = this.capacityProviders, t = this.taskDefinitions, s = this.settings;
    const ci = this.containerInstances, tk = this.tasks, sv = this.services;
    const counts = (scope: string, service: ServiceRecord) => {
      const tasks = tk.ofCluster(scope, service.cluster).filter((x) => x.serviceName === service.serviceName && x.lastStatus !== 'STOPPED' && x.desiredStatus === 'RUNNING');
      return (d: DeploymentRecord) => ({
        running: tasks.filter((x) => x.deploymentId === d.id && x.lastStatus === 'RUNNING').length,
        pending: tasks.filter((x) => x.deploymentId === d.id && x.lastStatus !== 'RUNNING').length,
      });
    };
    return {
      CreateCluster: (ctx, i) => c.create(ctx, i),
      DescribeClusters: (ctx, i) => c.describe(ctx, i),
      ListClusters: (ctx, i) => c.list(ctx, i),
      UpdateCluster: (ctx, i) => c.update(ctx, i),
      UpdateClusterSettings: (ctx, i) => c.updateSettings(ctx, i),
      DeleteCluster: (ctx, i) => c.delete(ctx, i),
      PutClusterCapacityProviders: (ctx, i) => c.putCapacityProviders(ctx, i),
      CreateCapacityProvider: (ctx, i) => p.create(ctx, i),
      DescribeCapacityProviders: (ctx, i) => p.describe(ctx, i),
      UpdateCapacityProvider: (ctx, i) => p.update(ctx, i),
      DeleteCapacityProvider: (ctx, i) => p.delete(ctx, i),
      RegisterTaskDefinition: (ctx, i) => t.register(ctx, i),
      DescribeTaskDefinition: (ctx, i) => t.describe(ctx, i),
      ListTaskDefinitions: (ctx, i) => t.list(ctx, i),
      ListTaskDefinitionFamilies: (ctx, i) => t.listFamilies(ctx, i),
      DeregisterTaskDefinition: (ctx, i) => t.deregister(ctx, i),
      DeleteTaskDefinitions: (ctx, i) => t.deleteMany(ctx, i),
      ListContainerInstances: (ctx, i) => ci.list(ctx, i),
      DescribeContainerInstances: (ctx, i) => ci.describe(ctx, i),
      UpdateContainerInstancesState: (ctx, i) => ci.updateState(ctx, i),
      DeregisterContainerInstance: (ctx, i) => ci.deregister(ctx, i),
      RunTask: (ctx, i) => tk.run(ctx, i),
      StartTask: (ctx, i) => tk.start(ctx, i),
      StopTask: (ctx, i) => tk.stop(ctx, i),
      DescribeTasks: (ctx, i) => tk.describe(ctx, i),
      ListTasks: (ctx, i) => tk.list(ctx, i),
      UpdateTaskProtection: (ctx, i) => tk.updateProtection(ctx, i),
      GetTaskProtection: (ctx, i) => tk.getProtection(ctx, i),
      CreateService: (ctx, i) => sv.create(ctx, i),
      UpdateService: (ctx, i) => sv.update(ctx, i, counts),
      DeleteService: (ctx, i) => sv.delete(ctx, i, counts),
      DescribeServices: (ctx, i) => sv.describe(ctx, i, counts),
      ListServices: (ctx, i) => sv.list(ctx, i),
      ListServiceDeployments: (ctx, i) => sv.listDeployments(ctx, i),
      DescribeServiceDeployments: (ctx, i) => sv.describeDeployments(ctx, i),
      TagResource: (ctx, i) => this.tags.tag(ctx, i, tx),
      UntagResource: (ctx, i) => this.tags.untag(ctx, i, tx),
      ListTagsForResource: (ctx, i) => this.tags.list(ctx, i),
      PutAccountSetting: (ctx, i) => s.put(ctx, i),
      PutAccountSettingDefault: (ctx, i) => s.putDefault(ctx, i),
      ListAccountSettings: (ctx, i) => s.list(ctx, i),
      DeleteAccountSetting: (ctx, i) => s.delete(ctx, i),
    };
  }
}

export type { ClusterRecord, CapacityProviderRecord };
