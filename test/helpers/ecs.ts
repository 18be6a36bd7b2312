// Small helpers for end-to-end tests that run real tasks.
import { CreateCapacityProviderCommand, DescribeTasksCommand, RegisterTaskDefinitionCommand, type ECSClient, type Tag, type Task } from '@aws-sdk/client-ecs';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import type { BerthProcess } from './berth.js';

/** A managed-instances capacity provider of `cluster` with one subnet (so all its instances share a zone). */
export async function createProvider(ecs: ECSClient, cluster: string, name: string, tags: Tag[] = []): Promise<void> {
  await ecs.send(new CreateCapacityProviderCommand({
    name, cluster, ...(tags.length ? { tags } : {}),
    managedInstancesProvider: {
      infrastructureRoleArn: 'arn:aws:iam::123456789012:role/infra',
      instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-1'] } },
    },
  } as never));
}

/**
 * Registers a host-mode managed-instances task definition with one container, `app`, that
 * logs to `group` with the family as stream prefix; `container` and `extra` add to it. Its ARN.
 */
export async function registerAppTask(ecs: ECSClient, o: { family: string; image: string; memory: number; group: string },
  container: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await ecs.send(new RegisterTaskDefinitionCommand({
    family: o.family, requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{
      name: 'app', image: o.image, memory: o.memory,
      logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': o.group, 'awslogs-stream-prefix': o.family } }, ...container,
    }],
    ...extra,
  } as never));
  return r.taskDefinition!.taskDefinitionArn!;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function describeTask(ecs: ECSClient, cluster: string, task: string): Promise<Task> {
  const r = await ecs.send(new DescribeTasksCommand({ cluster, tasks: [task] }));
  if (!r.tasks?.[0]) throw new Error(`task ${task} not found`);
  return r.tasks[0];
}

export function waitForStatus(ecs: ECSClient, cluster: string, task: string, status: string, timeoutMs = 30_000): Promise<Task> {
  return waitFor(`task ${task} ${status}`, async () => {
    const t = await describeTask(ecs, cluster, task);
    if (t.lastStatus === 'STOPPED' && status !== 'STOPPED') throw new Error(`task stopped: ${t.stoppedReason} ${JSON.stringify(t.containers?.map((c) => [c.name, c.exitCode, c.reason]))}`);
    return t.lastStatus === status ? t : undefined;
  }, timeoutMs);
}

export function logsClient(berth: BerthProcess): CloudWatchLogsClient {
  return new CloudWatchLogsClient({
    endpoint: berth.creds.endpoint, region: berth.creds.region, maxAttempts: 1,
    credentials: { accessKeyId: berth.creds.accessKeyId, secretAccessKey: berth.creds.secretAccessKey },
  });
}

/** The messages of a log stream, once `until` is satisfied. */
export async function waitForLogs(berth: BerthProcess, group: string, stream: string, until: (messages: string[]) => boolean, timeoutMs = 15_000): Promise<string[]> {
  const logs = logsClient(berth);
  return waitFor(`logs of ${stream}`, async () => {
    const r = await logs.send(new GetLogEventsCommand({ logGroupName: group, logStreamName: stream, startFromHead: true }));
    const messages = (r.events ?? []).map((e) => e.message ?? '');
    return until(messages) ? messages : undefined;
  }, timeoutMs, 200);
}

export const taskId = (arn: string) => arn.slice(arn.lastIndexOf('/') + 1);

/**
 * Registers revisions of `family` back to back while Berth is killed with SIGKILL 400 ms in;
 * returns how many registrations were acknowledged before the process died.
 */
export async function registerThroughKill(berth: { kill(signal: NodeJS.Signals): Promise<unknown> }, ecs: ECSClient, family: string): Promise<number> {
  let acknowledged = 0;
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      try {
        await ecs.send(new RegisterTaskDefinitionCommand({ family, containerDefinitions: [{ name: 'a', image: 'i', memory: 32 }] }));
        acknowledged++;
      } catch { break; }
    }
  })();
  await new Promise((r) => setTimeout(r, 400));
  await berth.kill('SIGKILL');
  stop = true;
  await writer;
  return acknowledged;
}
