// Builds what an agent needs to run a task (TaskSpec) from the task record, its task
// definition and the overrides: a pure function.
import type { ContainerSpec, TaskSpec } from '../agent/protocol.js';
import { normalizeCapability } from '../domain/capabilities.js';
import type { ContainerInstanceRecord } from '../ecs/container-instances.js';
import type { TaskRecord } from '../ecs/tasks.js';
import { DEFAULT_STOP_TIMEOUT_SECONDS, type Json } from '../ecs/task-definition-rules.js';
import type { TaskDefinitionRecord } from '../ecs/task-definitions.js';

/** CloudWatch Logs names for a container's output: the awslogs options, else a Berth default. */
export function logDestination(td: TaskDefinitionRecord, container: Json, clusterName: string, taskId: string): { group: string; stream: string } {
  const opts = container.logConfiguration?.logDriver === 'awslogs' ? container.logConfiguration.options ?? {} : undefined;
  if (opts?.['awslogs-group']) {
    const prefix = opts['awslogs-stream-prefix'];
    return { group: opts['awslogs-group'], stream: prefix ? `${prefix}/${container.name}/${taskId}` : `${container.name}/${taskId}` };
  }
  return { group: `/ecs/${clusterName}/${td.family}`, stream: `ecs/${container.name}/${taskId}` };
}

function caps(list: string[] | undefined): string[] {
  return (list ?? []).map((c) => (c.toUpperCase() === 'ALL' ? 'ALL' : normalizeCapability(c) ?? c));
}

/**
 * Opens a value sealed at rest (task definition secrets, see kms/secrets.ts) for the spec;
 * values that are not sealed come back as they are.
 */
export type RevealSecret = (value: string, kind: 'environment' | 'secret', what: string) => string;

/** What the instance's provider allowed when the instance was launched (the agent checks against it). */
export interface AllowedPrivileges { privilegedCapabilities: string[]; hostAccess: string[] }

export function allowedOf(ci: ContainerInstanceRecord): AllowedPrivileges {
  return { privilegedCapabilities: ci.launchConfig?.privilegedCapabilities ?? [], hostAccess: ci.launchConfig?.hostAccess ?? [] };
}

export function buildTaskSpec(task: TaskRecord, td: TaskDefinitionRecord, allowed: AllowedPrivileges, reveal?: RevealSecret): TaskSpec {
  const body = td.body;
  const overrides = new Map<string, Json>((task.overrides.containerOverrides ?? []).map((o: Json) => [o.name, o] as const));
  const containers: ContainerSpec[] = body.containerDefinitions.map((c: Json): ContainerSpec => {
    const o = overrides.get(c.name) ?? {};
    const env = new Map<string, string>();
    const open = (v: string, kind: 'environment' | 'secret', name: string) => (reveal ? reveal(v, kind, `${kind === 'secret' ? 'secret' : 'environment variable'} '${name}' of container '${c.name}'`) : v);
    for (const e of c.environment ?? []) env.set(e.name, open(e.value ?? '', 'environment', e.name));
    for (const s of c.secrets ?? []) env.set(s.name, open(s.valueFrom ?? '', 'secret', s.name));
    for (const e of o.environment ?? []) env.set(e.name, e.value ?? '');
    const rec = task.containers.find((x) => x.name === c.name)!;
    return {
      name: c.name,
      image: c.image,
      ...(c.entryPoint?.length ? { entryPoint: c.entryPoint } : {}),
      ...((o.command ?? c.command)?.length ? { command: o.command ?? c.command } : {}),
      environment: [...env].map(([name, value]) => ({ name, value })),
      ...(c.workingDirectory ? { workingDirectory: c.workingDirectory } : {}),
      ...(c.user ? { user: c.user } : {}),
      essential: c.essential !== false,
      cpu: rec.cpu,
      ...(rec.memory !== undefined ? { memory: rec.memory } : {}),
      ...(rec.memoryReservation !== undefined ? { memoryReservation: rec.memoryReservation } : {}),
      readonlyRootFilesystem: c.readonlyRootFilesystem === true,
      privileged: c.privileged === true,
      capabilitiesAdd: caps(c.linuxParameters?.capabilities?.add),
      capabilitiesDrop: caps(c.linuxParameters?.capabilities?.drop),
      initProcessEnabled: c.linuxParameters?.initProcessEnabled === true,
      stopTimeoutSeconds: c.stopTimeout ?? DEFAULT_STOP_TIMEOUT_SECONDS,
      portMappings: (c.portMappings ?? []).filter((p: Json) => p.containerPort !== undefined)
        .map((p: Json) => ({ containerPort: p.containerPort, hostPort: p.hostPort ?? p.containerPort, protocol: p.protocol ?? 'tcp' })),
      ulimits: c.ulimits ?? [],
      dependsOn: c.dependsOn ?? [],
      ...(c.healthCheck ? { healthCheck: { startPeriod: 0, ...c.healthCheck } } : {}),
      mountPoints: (c.mountPoints ?? []).map((m: Json) => ({ sourceVolume: m.sourceVolume, containerPath: m.containerPath, readOnly: m.readOnly === true })),
      log: logDestination(td, c, task.cluster, task.id),
      pseudoTerminal: c.pseudoTerminal === true,
      interactive: c.interactive === true,
      devices: (c.linuxParameters?.devices ?? []).map((d: Json) => ({
        hostPath: d.hostPath, containerPath: d.containerPath ?? d.hostPath,
        permissions: d.permissions?.length ? d.permissions : ['read', 'write', 'mknod'],
      })),
      systemControls: (c.systemControls ?? []).map((s: Json) => ({ namespace: s.namespace, value: s.value })),
    };
  });
  return {
    taskArn: task.taskArn,
    taskId: task.id,
    family: task.family,
    revision: task.revision,
    desiredStatus: task.desiredStatus,
    networkMode: task.networkMode,
    ...(task.network ? { network: { netnsPath: task.network.netnsPath, ipv4Address: task.network.ipv4Address, gateway: task.network.gateway, prefixLength: task.network.prefixLength } } : {}),
    ...(task.cpu !== undefined ? { cpu: Number(task.cpu) } : {}),
    ...(task.memory !== undefined ? { memory: Number(task.memory) } : {}),
    ...(body.pidMode ? { pidMode: body.pidMode } : {}),
    ...(body.ipcMode ? { ipcMode: body.ipcMode } : {}),
    containers,
    volumes: (body.volumes ?? []).map((v: Json) => ({ name: v.name, ...(v.host?.sourcePath ? { hostSourcePath: v.host.sourcePath } : {}) })),
    allowedPrivilegedCapabilities: allowed.privilegedCapabilities,
    allowedHostAccess: allowed.hostAccess,
    enableExecuteCommand: task.enableExecuteCommand,
    ...(task.desiredStatus === 'STOPPED' && task.stoppedReason ? { stopReason: task.stoppedReason } : {}),
    ...(task.stopCode ? { stopCode: task.stopCode } : {}),
  };
}
