// bench/fleet-rollover: roll a fleet of real local instances carrying service tasks onto a
// new platform version (a critical fix, so the disruption budget is the only bound).
//
// The bound is measured in the same run: first one wave of `budget` instances is drained by
// hand (UpdateContainerInstancesState) and each instance is timed until its tasks run
// elsewhere (start-before-stop), it is empty and it is terminated (a draining instance holds
// its place in the budget until then). With `budget` instances draining at a time,
// the rollover can do no better than ceil(instances / budget) such drains one after another;
// the benchmark prints its elapsed time beside that minimum, and the lowest healthy
// percentage any service showed (sampled throughout).
//   npm run bench:fleet-rollover -- [--services 4] [--tasks 50] [--budget 5] [--factor 60]
import { writeFileSync } from 'node:fs';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, CreateServiceCommand, DescribeContainerInstancesCommand,
  DescribeServicesCommand, ListContainerInstancesCommand, RegisterTaskDefinitionCommand, UpdateContainerInstancesStateCommand,
  type ContainerInstance, type ECSClient,
} from '@aws-sdk/client-ecs';
import type { TestBerth } from '../../test/helpers/berth.js';
import { waitFor } from '../../test/helpers/ecs.js';
import { flag, withBerth } from '../harness.js';

const SERVICES = flag('services', 4);
const TASKS = flag('tasks', 50); // per service
const BUDGET = flag('budget', 5);
const FACTOR = flag('factor', 60); // virtual seconds per real second
const cluster = 'rollover';
const VERSION_TAG = 'berth.platform-version';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);


async function instances(ecs: ECSClient): Promise<ContainerInstance[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ecs.send(new ListContainerInstancesCommand({ cluster, maxResults: 100, ...(nextToken ? { nextToken } : {}) }));
    arns.push(...page.containerInstanceArns!);
    nextToken = page.nextToken;
  } while (nextToken);
  const out: ContainerInstance[] = [];
  for (let i = 0; i < arns.length; i += 100) {
    out.push(...(await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns.slice(i, i + 100) }))).containerInstances!);
  }
  return out;
}

const versionOf = (ci: ContainerInstance) => ci.attributes?.find((a) => a.name === VERSION_TAG)?.value;
const names = Array.from({ length: SERVICES }, (_, i) => `svc-${i + 1}`);

async function services(ecs: ECSClient) {
  return (await ecs.send(new DescribeServicesCommand({ cluster, services: names }))).services!;
}

async function steady(ecs: ECSClient): Promise<boolean> {
  return (await services(ecs)).every((s) => s.deployments!.length === 1 && s.runningCount === s.desiredCount && s.pendingCount === 0);
}

/** Samples every service's running share of its desired count until stopped; keeps the lowest. */
function healthSampler(ecs: ECSClient) {
  let lowest = Infinity;
  let samples = 0;
  let on = true;
  const done = (async () => {
    while (on) {
      try {
        for (const s of await services(ecs)) lowest = Math.min(lowest, (100 * s.runningCount!) / s.desiredCount!);
        samples++;
      } catch { /* a busy moment; sample again */ }
      await sleep(200);
    }
  })();
  return { stop: async () => { on = false; await done; return { lowest, samples }; } };
}

function virtualNow(berth: TestBerth): number {
  const r = berth.cli(['clock']);
  if (r.status !== 0) throw new Error(r.stderr);
  return Date.parse(r.stdout.split(' ')[0]!);
}

async function main(): Promise<void> {
  await withBerth({ BERTH_CLOCK: `accelerated:${FACTOR}` }, async (berth, registry) => {
    const ecs = berth.ecs();
    await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
    // m5a.large (2 vCPU) and tasks of 512 CPU units: four tasks fill an instance.
    await ecs.send(new CreateCapacityProviderCommand({
      name: 'rollover-cp', cluster, tags: [{ key: 'berth:disruption-budget', value: String(BUDGET) }],
      managedInstancesProvider: {
        infrastructureRoleArn: 'r',
        instanceLaunchTemplate: {
          ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-a', 'subnet-b', 'subnet-c'] },
          instanceRequirements: { vCpuCount: { min: 2, max: 2 }, memoryMiB: { min: 8192, max: 8192 }, allowedInstanceTypes: ['m5a.large'] },
        },
      },
    }));
    const td = (await ecs.send(new RegisterTaskDefinitionCommand({
      family: 'web', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host', cpu: '512', memory: '256',
      containerDefinitions: [{ name: 'app', image: `${registry.address}/busybox:latest`, memory: 16, stopTimeout: 2, command: ['sh', '-c', "trap 'exit 0' TERM; sleep 86400 & wait"] }],
    }))).taskDefinition!.taskDefinitionArn!;
    const t0 = Date.now();
    for (const serviceName of names) {
      await ecs.send(new CreateServiceCommand({
        cluster, serviceName, taskDefinition: td, desiredCount: TASKS,
        deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200 },
      }));
    }
    await waitFor('the fleet to run every task', async () => ((await steady(ecs)) ? true : undefined), 15 * 60_000, 1000);
    const fleet = await instances(ecs);
    say(`fleet: ${fleet.length} instances (m5a.large) running ${SERVICES * TASKS} tasks of ${SERVICES} services; up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // One wave by hand: the budget's worth of instances drained at once.
    // Instances that carry tasks: a spare empty one would make one drain look free.
    const wave = fleet.filter((ci) => (ci.runningTasksCount ?? 0) > 0).slice(0, BUDGET).map((ci) => ci.containerInstanceArn!);
    const w0 = Date.now();
    const v0 = virtualNow(berth);
    const waveSampler = healthSampler(ecs);
    await ecs.send(new UpdateContainerInstancesStateCommand({ cluster, containerInstances: wave, status: 'DRAINING' }));
    const emptiedAt = new Map<string, number>();
    await waitFor('the hand-drained wave to be replaced', async () => {
      const now = await instances(ecs);
      for (const arn of wave) {
        const ci = now.find((c) => c.containerInstanceArn === arn);
        // Gone: a draining instance holds its place in the budget until it is terminated, so
        // that is where one drain ends (emptying it is most, not all, of the work).
        if (!emptiedAt.has(arn) && (!ci || ci.status === 'INACTIVE')) emptiedAt.set(arn, Date.now() - w0);
      }
      return emptiedAt.size === wave.length && (await steady(ecs)) ? true : undefined;
    }, 10 * 60_000, 100);
    const waveReal = Date.now() - w0;
    const waveVirtual = virtualNow(berth) - v0;
    const waveHealth = await waveSampler.stop();
    const perInstance = [...emptiedAt.values()].sort((a, b) => a - b);
    const drainMs = perInstance.reduce((a, b) => a + b, 0) / perInstance.length;
    say(`one wave (${BUDGET} instances drained by hand): each gone after ${perInstance.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s (mean ${(drainMs / 1000).toFixed(2)} s); services steady after ${(waveReal / 1000).toFixed(2)} s (virtual ${(waveVirtual / 60_000).toFixed(1)} min); lowest healthy ${waveHealth.lowest.toFixed(0)}%`);

    // The rollover: a critical platform version makes every instance due at once.
    const old = (await instances(ecs)).filter((ci) => ci.status === 'ACTIVE');
    const oldIds = new Set(old.map((ci) => ci.ec2InstanceId!));
    const waves = Math.ceil(old.length / BUDGET);
    const r0 = Date.now();
    const rv0 = virtualNow(berth);
    const sampler = healthSampler(ecs);
    const pub = berth.cli(['platform', 'publish', '2026.12.9', '--security', 'critical', '--description', 'fleet-rollover benchmark']);
    if (pub.status !== 0) throw new Error(pub.stderr);
    let lastPrint = r0;
    await waitFor('every instance on the new version', async () => {
      const now = await instances(ecs);
      const stale = now.filter((ci) => oldIds.has(ci.ec2InstanceId!));
      const line = `  ${((Date.now() - r0) / 1000).toFixed(0)} s: ${stale.length} old instances left (${stale.filter((ci) => ci.status === 'DRAINING').length} draining), ${now.length - stale.length} new`;
      if (Date.now() - lastPrint >= 10_000) { process.stderr.write(`${line}\n`); lastPrint = Date.now(); }
      return stale.length === 0 && now.every((ci) => versionOf(ci) === '2026.12.9') && (await steady(ecs)) ? true : undefined;
    }, 60 * 60_000);
    const real = Date.now() - r0;
    const virtual = virtualNow(berth) - rv0;
    const health = await sampler.stop();
    const minimum = waves * drainMs;
    const ratio = real / minimum;
    say(`rollover: ${old.length} instances onto 2026.12.9 (critical) with a budget of ${BUDGET}: ${(real / 1000).toFixed(2)} s (virtual ${(virtual / 3_600_000).toFixed(2)} h at ${FACTOR}x)`);
    say(`minimum the budget allows: ${waves} waves x ${(drainMs / 1000).toFixed(2)} s (the mean drain of an instance in the hand-drained wave) = ${(minimum / 1000).toFixed(2)} s (virtual ${((minimum * FACTOR) / 3_600_000).toFixed(2)} h)`);
    say(`elapsed / minimum: ${ratio.toFixed(2)}x`);
    say(`lowest healthy percentage: ${health.lowest.toFixed(0)}% over ${health.samples} samples (minimumHealthyPercent 100)`);
    say(`goal: within 1.2x of the minimum: ${ratio <= 1.2 ? 'PASS' : 'MISS'}; no service below minimumHealthyPercent: ${health.lowest >= 100 && waveHealth.lowest >= 100 ? 'PASS' : 'MISS'}`);
    // Why instances went away (the control plane's log), so a surprise explains itself.
    const reasons = new Map<string, number>();
    for (const m of berth.output.matchAll(/fleet: terminating \S+ \((.*)\)$/gm)) {
      const why = m[1]!.replace(/i-[0-9a-f]+/g, 'i-…').replace(/\d+(\.\d+)? s\b/g, 'N s').slice(0, 140);
      reasons.set(why, (reasons.get(why) ?? 0) + 1);
    }
    say('instances terminated, by reason:');
    for (const [why, n] of [...reasons].sort((a, b) => b[1] - a[1])) say(`  ${String(n).padStart(4)}  ${why}`);
    if (process.env.BENCH_LOG) writeFileSync(process.env.BENCH_LOG, berth.output);
  });
}

await main();
