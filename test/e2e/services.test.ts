// Services end to end: steady state, replacement of failed tasks and lost instances,
// rolling deployments within the configured bounds, health checks and the circuit breaker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, CreateServiceCommand, DescribeServicesCommand, ListTasksCommand,
  RegisterTaskDefinitionCommand, UpdateServiceCommand, DescribeTasksCommand, DeleteServiceCommand, ListContainerInstancesCommand,
  DescribeContainerInstancesCommand, ListServiceDeploymentsCommand, type ECSClient, type Service,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { taskId, waitFor } from '../helpers/ecs.js';
import { instanceInit } from '../helpers/instances.js';

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;
const cluster = 'svc';
const HEARTBEAT_TIMEOUT_S = 3;

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest');
  image = `${registry.address}/busybox:latest`;
  berth = await startTestBerth({ BERTH_HEARTBEAT_TIMEOUT: String(HEARTBEAT_TIMEOUT_S) });
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await ecs.send(new CreateCapacityProviderCommand({
    name: 'svc-cp', cluster,
    managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-1'] } } },
  }));
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

async function revision(family: string, command: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await ecs.send(new RegisterTaskDefinitionCommand({
    family, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{ name: 'app', image, memory: 16, stopTimeout: 2, command: ['sh', '-c', command], ...extra }],
  } as never));
  return r.taskDefinition!.taskDefinitionArn!;
}

const SERVE = "trap 'exit 0' TERM; while true; do sleep 0.2; done";

async function describe(name: string): Promise<Service> {
  return (await ecs.send(new DescribeServicesCommand({ cluster, services: [name] }))).services![0]!;
}

async function serviceTasks(name: string) {
  const arns = (await ecs.send(new ListTasksCommand({ cluster, serviceName: name }))).taskArns!;
  if (!arns.length) return [];
  return (await ecs.send(new DescribeTasksCommand({ cluster, tasks: arns }))).tasks!;
}

function stable(name: string, timeoutMs = 60_000): Promise<Service> {
  return waitFor(`service ${name} stable`, async () => {
    const s = await describe(name);
    return s.deployments!.length === 1 && s.runningCount === s.desiredCount && s.pendingCount === 0 && s.deployments![0]!.rolloutState === 'COMPLETED' ? s : undefined;
  }, timeoutMs, 200);
}

/** Host pids of a task's container processes (found by their cgroup). */
function taskPids(id: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try { return readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`/${id}/`); } catch { return false; }
  });
}

test('a service of 6 tasks reaches a steady state (aws ecs wait services-stable)', async () => {
  const td = await revision('web', SERVE);
  const r = berth.aws(['ecs', 'create-service', '--cluster', cluster, '--service-name', 'web', '--task-definition', td, '--desired-count', '6']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.service.status, 'ACTIVE');
  assert.equal(r.json.service.deploymentConfiguration.minimumHealthyPercent, 100);
  assert.equal(r.json.service.deploymentConfiguration.maximumPercent, 200);
  assert.match(r.json.service.deployments[0].id, /^ecs-svc\/\d{19}$/);
  const w = berth.aws(['ecs', 'wait', 'services-stable', '--cluster', cluster, '--services', 'web']);
  assert.equal(w.status, 0, w.stderr);
  const s = await describe('web');
  assert.equal(s.runningCount, 6);
  assert.ok(s.events!.some((e) => /\(service web\) has reached a steady state\./.test(e.message!)));
  assert.ok(s.events!.some((e) => /\(service web\) has started 6 tasks/.test(e.message!)));
  const tasks = await serviceTasks('web');
  assert.equal(tasks.length, 6);
  assert.ok(tasks.every((t) => t.group === 'service:web' && t.startedBy === s.deployments![0]!.id));
  const list = berth.aws(['ecs', 'list-services', '--cluster', cluster]);
  assert.deepEqual(list.json.serviceArns, [s.serviceArn]);
});

test('killing a container\'s process makes the service replace the task', async () => {
  const [victim] = await serviceTasks('web');
  const id = taskId(victim!.taskArn!);
  const pids = taskPids(id);
  assert.ok(pids.length > 0, 'container process not found');
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ } }
  const replaced = await waitFor('a replacement', async () => {
    const tasks = await serviceTasks('web');
    return tasks.length === 6 && !tasks.some((t) => taskId(t.taskArn!) === id) && tasks.every((t) => t.lastStatus === 'RUNNING') ? tasks : undefined;
  }, 30_000, 200);
  assert.equal(replaced.length, 6);
  const gone = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [id] }))).tasks![0]!;
  assert.equal(gone.lastStatus, 'STOPPED');
  assert.equal(gone.containers![0]!.exitCode, 137);
  const s = await describe('web');
  assert.ok(s.events!.some((e) => e.message!.includes(`(task ${id}) stopped`)));
});

test('a new revision rolls out without going below minimumHealthyPercent or above maximumPercent', async () => {
  await ecs.send(new UpdateServiceCommand({ cluster, service: 'web', deploymentConfiguration: { minimumHealthyPercent: 50, maximumPercent: 150 } }));
  const td2 = await revision('web', `echo v2; ${SERVE}`);
  const samples: { running: number; live: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const tasks = await serviceTasks('web');
      samples.push({ running: tasks.filter((t) => t.lastStatus === 'RUNNING' && t.desiredStatus === 'RUNNING').length, live: tasks.length });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await ecs.send(new UpdateServiceCommand({ cluster, service: 'web', taskDefinition: td2 }));
  const s = await stable('web');
  sampling = false;
  await sampler;
  assert.equal(s.taskDefinition, td2);
  assert.ok(samples.length > 5);
  const minRunning = Math.min(...samples.map((x) => x.running));
  const maxLive = Math.max(...samples.map((x) => x.live));
  assert.ok(minRunning >= 3, `running tasks dropped to ${minRunning} (minimumHealthyPercent 50% of 6 = 3)`);
  assert.ok(maxLive <= 9, `live tasks reached ${maxLive} (maximumPercent 150% of 6 = 9)`);
  const tasks = await serviceTasks('web');
  assert.ok(tasks.every((t) => t.taskDefinitionArn === td2));
  const deployments = await ecs.send(new ListServiceDeploymentsCommand({ cluster, service: 'web' }));
  assert.ok(deployments.serviceDeployments!.length >= 2);
  assert.equal(deployments.serviceDeployments![0]!.status, 'SUCCESSFUL');
});

test('an instance that is lost gets its tasks replaced on another instance', async () => {
  const ciArns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  const cis = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: ciArns }))).containerInstances!;
  const target = cis.find((c) => (c.runningTasksCount ?? 0) > 0)!;
  // Kill the instance's init: the whole instance (agent and containers) dies for good.
  const init = instanceInit(target.ec2InstanceId!);
  assert.ok(init, 'instance init not found');
  const lostAt = Date.now();
  process.kill(init!, 'SIGKILL');
  await waitFor('tasks running elsewhere', async () => {
    const tasks = await serviceTasks('web');
    const elsewhere = tasks.filter((t) => t.containerInstanceArn !== target.containerInstanceArn && t.lastStatus === 'RUNNING');
    return elsewhere.length === 6 ? tasks : undefined;
  }, 60_000, 200);
  const recovery = Date.now() - lostAt;
  assert.ok(recovery >= HEARTBEAT_TIMEOUT_S * 1000, `replaced after ${recovery} ms, before the heartbeat timeout`);
  await stable('web');
});

test('an unhealthy container gets its task replaced', async () => {
  const td = await revision('sick', SERVE, { healthCheck: { command: ['CMD-SHELL', 'test -f /tmp/ok'], interval: 5, timeout: 2, retries: 1, startPeriod: 0 } });
  await ecs.send(new CreateServiceCommand({ cluster, serviceName: 'sick', taskDefinition: td, desiredCount: 1 }));
  // The scheduler stops a task whose essential container fails its checks, and starts another.
  const stopped = await waitFor('a task stopped for failing its health checks', async () => {
    const arns = (await ecs.send(new ListTasksCommand({ cluster, serviceName: 'sick', desiredStatus: 'STOPPED' }))).taskArns!;
    if (!arns.length) return undefined;
    const tasks = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: arns }))).tasks!;
    return tasks.find((t) => /failed container health checks/.test(t.stoppedReason ?? ''));
  }, 30_000, 200);
  assert.equal(stopped.healthStatus, 'UNHEALTHY');
  await waitFor('its replacement', async () => {
    const tasks = await serviceTasks('sick');
    return tasks.some((t) => t.taskArn !== stopped.taskArn) ? tasks : undefined;
  }, 30_000, 200);
  const healthy = await revision('well', `touch /tmp/ok; ${SERVE}`, { healthCheck: { command: ['CMD-SHELL', 'test -f /tmp/ok'], interval: 5, timeout: 2, retries: 2, startPeriod: 0 } });
  await ecs.send(new UpdateServiceCommand({ cluster, service: 'sick', taskDefinition: healthy }));
  await stable('sick');
  const [t] = await serviceTasks('sick');
  assert.equal(t!.healthStatus, 'HEALTHY');
  await ecs.send(new DeleteServiceCommand({ cluster, service: 'sick', force: true }));
});

test('a broken revision trips the circuit breaker and rolls back', async () => {
  await ecs.send(new UpdateServiceCommand({
    cluster, service: 'web',
    deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200, deploymentCircuitBreaker: { enable: true, rollback: true } },
  }));
  const good = (await describe('web')).taskDefinition!;
  const broken = await revision('web', 'echo broken; exit 1');
  await ecs.send(new UpdateServiceCommand({ cluster, service: 'web', taskDefinition: broken }));
  const failed = await waitFor('the deployment to fail', async () => {
    const s = await describe('web');
    return s.events!.some((e) => /deployment failed: tasks failed to start/.test(e.message!)) ? s : undefined;
  }, 60_000, 200);
  assert.ok(failed.events!.some((e) => /rolling back/.test(e.message!)));
  const s = await stable('web', 60_000);
  assert.equal(s.taskDefinition, good);
  const tasks = await serviceTasks('web');
  assert.equal(tasks.length, 6);
  assert.ok(tasks.every((t) => t.taskDefinitionArn === good));
  const deployments = (await ecs.send(new ListServiceDeploymentsCommand({ cluster, service: 'web' }))).serviceDeployments!;
  assert.equal(deployments[0]!.status, 'ROLLBACK_SUCCESSFUL');
});

test('deleting a service drains it', async () => {
  const refused = berth.aws(['ecs', 'delete-service', '--cluster', cluster, '--service', 'web']);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /cannot be stopped while it is scaled above 0/);
  const d = berth.aws(['ecs', 'delete-service', '--cluster', cluster, '--service', 'web', '--force']);
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.json.service.status, 'DRAINING');
  await waitFor('service inactive', async () => (await describe('web')).status === 'INACTIVE', 30_000, 200).catch(async (e) => {
    console.log(JSON.stringify(await describe('web'), null, 1).slice(0, 3000), JSON.stringify((await serviceTasks('web')).map((t) => [t.lastStatus, t.desiredStatus, t.startedBy])));
    console.log(berth.output.slice(-3000));
    throw e;
  });
  assert.deepEqual(await serviceTasks('web'), []);
  const w = berth.aws(['ecs', 'wait', 'services-inactive', '--cluster', cluster, '--services', 'web']);
  assert.equal(w.status, 0, w.stderr);
});

test('Availability Zone rebalancing: after a drain empties a zone, the service spreads over all three again', async () => {
  await ecs.send(new CreateCapacityProviderCommand({
    name: 'svc-az', cluster,
    managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-x', 'subnet-y', 'subnet-z'] } } },
  }));
  const td = await revision('az', SERVE);
  // Placement that forbids it: DISABLED by default, and refused when asked for.
  await assert.rejects(ecs.send(new CreateServiceCommand({
    cluster, serviceName: 'packed', taskDefinition: td, desiredCount: 0, availabilityZoneRebalancing: 'ENABLED',
    placementStrategy: [{ type: 'binpack', field: 'memory' }], capacityProviderStrategy: [{ capacityProvider: 'svc-az', weight: 1 }],
  })), (e: Error) => e.name === 'InvalidParameterException' && /binpack/.test(e.message));
  const packed = (await ecs.send(new CreateServiceCommand({
    cluster, serviceName: 'packed', taskDefinition: td, desiredCount: 0,
    placementStrategy: [{ type: 'binpack', field: 'memory' }], capacityProviderStrategy: [{ capacityProvider: 'svc-az', weight: 1 }],
  }))).service!;
  assert.equal(packed.availabilityZoneRebalancing, 'DISABLED');

  const created = (await ecs.send(new CreateServiceCommand({
    cluster, serviceName: 'az', taskDefinition: td, desiredCount: 3, capacityProviderStrategy: [{ capacityProvider: 'svc-az', weight: 1 }],
  }))).service!;
  assert.equal(created.availabilityZoneRebalancing, 'ENABLED');
  await stable('az', 90_000);
  const zonesOf = async () => {
    const tasks = (await serviceTasks('az')).filter((t) => t.lastStatus === 'RUNNING' && t.desiredStatus === 'RUNNING');
    return tasks.map((t) => t.availabilityZone).sort();
  };
  assert.deepEqual(await zonesOf(), ['us-east-1a', 'us-east-1b', 'us-east-1c']);

  // Drain the instance in zone a: its task moves to b or c first (a has no other instance)…
  const ciArns = (await ecs.send(new ListContainerInstancesCommand({ cluster }))).containerInstanceArns!;
  const cis = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: ciArns }))).containerInstances!;
  const inA = cis.find((c) => c.capacityProviderName === 'svc-az' && c.status === 'ACTIVE'
    && c.attributes?.some((a) => a.name === 'ecs.availability-zone' && a.value === 'us-east-1a'))!;
  await berth.aws(['ecs', 'update-container-instances-state', '--cluster', cluster, '--container-instances', inA.containerInstanceArn!, '--status', 'DRAINING']);
  // …then rebalancing starts one in zone a again (on a new instance) and stops the extra one.
  await waitFor('an AZ rebalancing event', async () => {
    const d = await describe('az');
    return d.events!.some((e) => /is not AZ balanced with 0 tasks in us-east-1a/.test(e.message!)) ? d : undefined;
  }, 90_000, 250);
  await waitFor('one task per zone again', async () => {
    const z = await zonesOf();
    const d = await describe('az');
    return JSON.stringify(z) === JSON.stringify(['us-east-1a', 'us-east-1b', 'us-east-1c']) && d.runningCount === 3 && d.pendingCount === 0 ? z : undefined;
  }, 90_000, 250);
  await ecs.send(new DeleteServiceCommand({ cluster, service: 'az', force: true }));
  await ecs.send(new DeleteServiceCommand({ cluster, service: 'packed', force: true }));
});
