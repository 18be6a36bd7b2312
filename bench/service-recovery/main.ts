// bench/service-recovery: how long after an instance is lost do its service tasks run
// elsewhere? Printed beside the configured heartbeat timeout, the floor: Berth waits that
// long before it treats a silent instance as lost.
//   npm run bench:service-recovery -- [--rounds 3] [--heartbeat 5] [--tasks 6]
import {
  CreateCapacityProviderCommand, CreateClusterCommand, CreateServiceCommand, DescribeServicesCommand, DescribeTasksCommand,
  ListTasksCommand, RegisterTaskDefinitionCommand, UpdateServiceCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { waitFor } from '../../test/helpers/ecs.js';
import { instanceInit } from '../../test/helpers/instances.js';
import { flag, withBerth } from '../harness.js';

const ROUNDS = flag('rounds', 3);
const HEARTBEAT_S = flag('heartbeat', 5);
const TASKS = flag('tasks', 6);
const cluster = 'recovery';

async function running(ecs: ECSClient): Promise<{ arn: string; instance: string }[]> {
  const arns = (await ecs.send(new ListTasksCommand({ cluster, serviceName: 'web' }))).taskArns!;
  if (!arns.length) return [];
  const tasks = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: arns }))).tasks!;
  return tasks.filter((t) => t.lastStatus === 'RUNNING').map((t) => ({ arn: t.taskArn!, instance: t.containerInstanceArn! }));
}

async function main(): Promise<void> {
  await withBerth({ BERTH_HEARTBEAT_TIMEOUT: String(HEARTBEAT_S) }, async (berth, registry) => {
    const ecs = berth.ecs();
    await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
    await ecs.send(new CreateCapacityProviderCommand({
      name: 'recovery-cp', cluster,
      managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-a', 'subnet-b', 'subnet-c'] } } },
    }));
    const td = (await ecs.send(new RegisterTaskDefinitionCommand({
      family: 'web', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
      containerDefinitions: [{ name: 'app', image: `${registry.address}/busybox:latest`, memory: 16, stopTimeout: 1, command: ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"] }],
    }))).taskDefinition!.taskDefinitionArn!;
    await ecs.send(new CreateServiceCommand({ cluster, serviceName: 'web', taskDefinition: td, desiredCount: TASKS }));
    const results: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await waitFor('steady state', async () => {
        const s = (await ecs.send(new DescribeServicesCommand({ cluster, services: ['web'] }))).services![0]!;
        return s.deployments!.length === 1 && s.runningCount === TASKS && s.pendingCount === 0 ? s : undefined;
      }, 120_000, 100);
      const tasks = await running(ecs);
      const byInstance = new Map<string, string[]>();
      for (const t of tasks) byInstance.set(t.instance, [...(byInstance.get(t.instance) ?? []), t.arn]);
      const [victimArn, victimTasks] = [...byInstance.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
      const ec2 = (await berth.aws(['ecs', 'describe-container-instances', '--cluster', cluster, '--container-instances', victimArn]).json).containerInstances[0].ec2InstanceId as string;
      const init = instanceInit(ec2);
      if (!init) throw new Error(`init of ${ec2} not found`);
      const lostAt = Date.now();
      process.kill(init, 'SIGKILL');
      await waitFor('replacements running elsewhere', async () => {
        const now = await running(ecs);
        const elsewhere = now.filter((t) => t.instance !== victimArn);
        return elsewhere.length >= TASKS ? now : undefined;
      }, 120_000);
      const recovery = Date.now() - lostAt;
      results.push(recovery);
      process.stdout.write(`round ${round}: ${victimTasks.length} tasks on ${ec2} lost; all ${TASKS} running elsewhere after ${(recovery / 1000).toFixed(2)} s\n`);
      // Let the dead instance be cleaned up before the next round.
      await ecs.send(new UpdateServiceCommand({ cluster, service: 'web', desiredCount: TASKS }));
    }
    const sorted = [...results].sort((a, b) => a - b);
    const p50 = sorted[Math.floor((sorted.length - 1) / 2)]!;
    const worst = sorted[sorted.length - 1]!;
    const floor = HEARTBEAT_S * 1000;
    process.stdout.write(`\nheartbeat timeout (floor): ${(floor / 1000).toFixed(2)} s\n`);
    process.stdout.write(`recovery: p50 ${(p50 / 1000).toFixed(2)} s, worst ${(worst / 1000).toFixed(2)} s over ${results.length} rounds (${TASKS} tasks, machine: ${process.arch}, 2 vCPU)\n`);
    process.stdout.write(`recovery above the floor: p50 ${((p50 - floor) / 1000).toFixed(2)} s, worst ${((worst - floor) / 1000).toFixed(2)} s\n`);
    process.stdout.write(`goal: recovery <= heartbeat timeout + 2 s: ${worst <= floor + 2000 ? 'PASS' : 'MISS'}\n`);
  });
}

await main();
