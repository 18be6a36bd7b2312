// Placement failures in ECS's words (RunTask failures[], service events) and in Berth's own,
// clearer ones.
import { FILTERS, type InstanceState, type PreparedTask } from './filters.js';
import { REASONS, type FailureReason, type PlacementFailure, type Reason } from './types.js';

const SHORT: Record<Reason, string> = {
  INSTANCE_STATUS: 'not ACTIVE or agent disconnected',
  SINGLE_TASK: 'single-task instance already busy',
  FIPS: 'FIPS mismatch',
  PRIVILEGED_CAPABILITY: 'capability not allowed',
  HOST_ACCESS: 'host access not allowed',
  'MISSING ATTRIBUTE': 'missing attribute',
  MEMBER_OF: 'memberOf constraint unsatisfied',
  DISTINCT_INSTANCE: 'distinctInstance constraint unsatisfied',
  'RESOURCE:CPU': 'too little CPU free',
  'RESOURCE:MEMORY': 'too little memory free',
  'RESOURCE:PORTS': 'host port in use',
  'RESOURCE:ENI': 'no network interface free',
};

function describeTask(t: PreparedTask): string {
  const parts = [`${t.cpu} CPU units`, `${t.memory} MiB`];
  if (t.arch) parts.push(t.arch);
  if (t.awsvpc) parts.push('awsvpc');
  const ports = [...t.tcp.map((p) => `tcp/${p}`), ...t.udp.map((p) => `udp/${p}`)];
  if (ports.length) parts.push(`host ports ${ports.join(' ')}`);
  return `task ${t.req.id} (${parts.join(', ')})`;
}

/** Builds the failure from the pipeline's rejection counts and closest instance. */
export function buildFailure(t: PreparedTask, counts: Partial<Record<Reason, number>>, total: number,
  closest: { rec: InstanceState; filter: number } | undefined): PlacementFailure {
  const where = t.pinned !== undefined ? `instance ${t.pinned}` : t.provider !== undefined ? `capacity provider ${t.provider}` : 'the cluster';
  if (total === 0 || !closest) {
    const reason: FailureReason = t.pinned !== undefined ? 'NOT_FOUND' : 'NO_INSTANCES';
    const message = t.pinned !== undefined
      ? `Container instance ${t.pinned} is not registered in this cluster, so ${describeTask(t)} cannot be started on it.`
      : `No container instances are registered for ${where}, so ${describeTask(t)} has nowhere to run yet.`;
    return { reason, counts, message };
  }
  const filter = FILTERS[closest.filter]!;
  const detail = filter.detail(t, closest.rec);
  const tally = REASONS.filter((r) => counts[r]).map((r) => `${counts[r]} ${r} (${SHORT[r]})`).join(', ');
  const message = `No container instance of ${where} can take ${describeTask(t)}. `
    + `Of ${total} instance${total === 1 ? '' : 's'}: ${tally}. `
    + `The closest, ${closest.rec.id}, ${detail}.`;
  return {
    reason: filter.reason,
    counts,
    closest: { instanceId: closest.rec.id, ...(closest.rec.ec2InstanceId ? { ec2InstanceId: closest.rec.ec2InstanceId } : {}), reason: filter.reason, detail },
    message,
  };
}

/** ECS's phrase for the closest matching instance's problem. */
export function ecsClosestPhrase(reason: FailureReason): string {
  switch (reason) {
    case 'RESOURCE:CPU': return 'has insufficient CPU units available.';
    case 'RESOURCE:MEMORY': return 'has insufficient memory available.';
    case 'RESOURCE:PORTS': return 'is already using a port required by your task.';
    case 'MISSING ATTRIBUTE': return 'is missing an attribute required by your task.';
    case 'MEMBER_OF': return 'encountered error "MemberOf placement constraint unsatisfied."';
    case 'DISTINCT_INSTANCE': return 'encountered error "DistinctInstance placement constraint unsatisfied."';
    case 'INSTANCE_STATUS': return 'encountered error "AGENT".';
    default: return `encountered error "${reason}".`;
  }
}

/**
 * ECS's sentence, e.g. "service web was unable to place a task because no container instance
 * met all of its requirements. The closest matching container-instance 1a2b… has
 * insufficient memory available."
 */
export function ecsUnableToPlace(subject: string, f: PlacementFailure): string {
  const head = `${subject} was unable to place a task because no container instance met all of its requirements.`;
  if (!f.closest) return f.reason === 'NO_INSTANCES' ? `${subject} was unable to place a task because no container instances were found in the capacity provider.` : head;
  return `${head} The closest matching container-instance ${f.closest.instanceId} ${ecsClosestPhrase(f.reason)}`;
}

/** A service event: ECS's sentence, then Berth's explanation. */
export function serviceEventMessage(serviceName: string, f: PlacementFailure): string {
  return `${ecsUnableToPlace(`service ${serviceName}`, f)} ${f.message}`;
}

/** One RunTask `failures[]` entry: `reason` in ECS's words, `detail` Berth's. */
export function runTaskFailure(f: PlacementFailure, instanceArn?: (instanceId: string) => string): { arn?: string; reason: string; detail: string } {
  return {
    ...(f.closest && instanceArn ? { arn: instanceArn(f.closest.instanceId) } : {}),
    reason: f.reason,
    detail: f.message,
  };
}

/** Stopped reason for a task that can never be placed: "RESOURCE:MEMORY: <Berth's message>". */
export function stoppedReason(f: { reason: string; message: string }): string {
  return `${f.reason}: ${f.message}`;
}
