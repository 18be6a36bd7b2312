// Maps store records to what the placement core works on: instance snapshots (with their
// live usage and task groups) and task requests. Pure, apart from reading the records given.
import { isDefaultCapability, normalizeCapability, PRIVILEGED_CAPABILITIES } from '../domain/capabilities.js';
import { requestedHostAccess } from '../domain/host-access.js';
import { instanceType } from '../domain/instance-types.js';
import type { ContainerInstanceRecord } from '../ecs/container-instances.js';
import type { TaskRecord } from '../ecs/tasks.js';
import type { Json } from '../ecs/task-definition-rules.js';
import type { InstanceSnapshot, TaskRequest } from '../placement/index.js';

/** Capabilities outside Docker's default set that a task definition asks for. */
export function requestedPrivilegedCapabilities(td: Json): string[] {
  const out = new Set<string>();
  for (const c of td.containerDefinitions ?? []) {
    if (c.privileged) PRIVILEGED_CAPABILITIES.forEach((p) => out.add(p));
    for (const a of c.linuxParameters?.capabilities?.add ?? []) {
      if (String(a).toUpperCase() === 'ALL') { PRIVILEGED_CAPABILITIES.forEach((p) => out.add(p)); continue; }
      const cap = normalizeCapability(String(a));
      if (cap && !isDefaultCapability(cap)) out.add(cap);
    }
  }
  return [...out].sort();
}

/** Snapshots of a cluster's live instances, with usage from the tasks placed on them. */
export function instanceSnapshots(instances: ContainerInstanceRecord[], tasks: TaskRecord[]): InstanceSnapshot[] {
  const byInstance = new Map<string, TaskRecord[]>();
  for (const t of tasks) {
    if (!t.containerInstanceId || t.lastStatus === 'STOPPED') continue;
    const list = byInstance.get(t.containerInstanceId);
    if (list) list.push(t); else byInstance.set(t.containerInstanceId, [t]);
  }
  return instances.map((ci) => {
    const on = byInstance.get(ci.id) ?? [];
    const groups: Record<string, number> = {};
    let cpu = 0, memory = 0, enis = 0;
    const tcp: string[] = [], udp: string[] = [];
    for (const t of on) {
      cpu += t.reservation.cpu;
      memory += t.reservation.memory;
      tcp.push(...t.reservation.tcpPorts);
      udp.push(...t.reservation.udpPorts);
      if (t.reservation.eni) enis++;
      groups[t.group] = (groups[t.group] ?? 0) + 1;
    }
    const type = instanceType(ci.instanceType);
    const arch = ci.attributes.find((a) => a.name === 'ecs.cpu-architecture')?.value ?? type?.architecture ?? 'x86_64';
    return {
      id: ci.id,
      ec2InstanceId: ci.ec2InstanceId,
      providerName: ci.capacityProviderName,
      status: ci.status,
      agentConnected: ci.agentConnected,
      ...(ci.agentVersion ? { agentVersion: ci.agentVersion } : {}),
      ...(ci.registeredAt ? { registeredAt: ci.registeredAt } : {}),
      registeredCpu: ci.registeredCpu,
      registeredMemory: ci.registeredMemory,
      usedCpu: cpu,
      usedMemory: memory,
      tcpPortsUsed: tcp,
      udpPortsUsed: udp,
      eniMax: (type?.maxNetworkInterfaces ?? 2) - 1,
      eniUsed: enis,
      runningTasksCount: on.length,
      taskGroups: groups,
      singleTask: ci.launchConfig?.singleTaskMode ?? false,
      availabilityZone: ci.availabilityZone,
      subnetId: ci.subnetId,
      instanceType: ci.instanceType,
      architecture: arch === 'arm64' ? 'ARM64' : 'X86_64',
      attributes: ci.attributes,
      privilegedCapabilities: ci.launchConfig?.privilegedCapabilities ?? [],
      hostAccess: ci.launchConfig?.hostAccess ?? [],
      fips: ci.launchConfig?.fips ?? false,
    };
  });
}

/** What placement needs to know about one task. */
export function taskRequest(t: TaskRecord, td: Json, fipsRequired: boolean): TaskRequest {
  return {
    id: t.id,
    providerName: t.capacityProviderName,
    cpu: t.reservation.cpu,
    memory: t.reservation.memory,
    tcpPorts: t.reservation.tcpPorts,
    udpPorts: t.reservation.udpPorts,
    awsvpc: t.reservation.eni,
    ...(td.runtimePlatform?.cpuArchitecture ? { cpuArchitecture: td.runtimePlatform.cpuArchitecture } : {}),
    constraints: [...(td.placementConstraints ?? []), ...(t.placementConstraints ?? [])],
    ...(t.placementStrategy?.length ? { strategy: t.placementStrategy as unknown as TaskRequest['strategy'] } : {}),
    privilegedCapabilities: requestedPrivilegedCapabilities(td),
    hostAccess: requestedHostAccess(td),
    requiresAttributes: td.requiresAttributes ?? [],
    group: t.group,
    fipsRequired,
    ...(t.pinnedInstanceId ? { pinnedInstanceId: t.pinnedInstanceId } : {}),
    ...(t.subnets ? { subnets: t.subnets } : {}),
  };
}
