// Task placement over a snapshot: feasibility checks that name why an instance cannot take
// a task (in ECS's words), then bin-packing by least remaining CPU, then memory.

export interface InstanceSnapshot {
  id: string;
  providerName: string;
  active: boolean;
  cpuFree: number;
  memoryFree: number;
  tcpPortsUsed: Set<string>;
  udpPortsUsed: Set<string>;
  enisFree: number;
  tasks: number;
  singleTask: boolean;
  subnetId: string;
  availabilityZone: string;
  architecture: 'X86_64' | 'ARM64';
  privilegedCapabilities: string[];
}

export interface TaskDemand {
  cpu: number;
  memory: number;
  tcpPorts: string[];
  udpPorts: string[];
  eni: boolean;
  providerName: string;
  pinnedInstanceId?: string;
  subnets?: string[];
  architecture?: 'X86_64' | 'ARM64';
  privilegedCapabilities: string[];
}

/** The reason an instance cannot take the demand, or undefined when it can. */
export function rejection(d: TaskDemand, i: InstanceSnapshot): string | undefined {
  if (d.pinnedInstanceId !== undefined && d.pinnedInstanceId !== i.id) return 'NOT_REQUESTED';
  if (i.providerName !== d.providerName) return 'CAPACITY_PROVIDER';
  if (!i.active) return 'INSTANCE_NOT_ACTIVE';
  if (d.architecture && d.architecture !== i.architecture) return 'MISSING ATTRIBUTE';
  if (d.subnets && !d.subnets.includes(i.subnetId)) return 'MISSING ATTRIBUTE';
  if (i.singleTask && i.tasks > 0) return 'SINGLE_TASK';
  if (d.privilegedCapabilities.some((c) => !i.privilegedCapabilities.includes(c))) return 'PRIVILEGED_CAPABILITY';
  if (d.cpu > i.cpuFree) return 'RESOURCE:CPU';
  if (d.memory > i.memoryFree) return 'RESOURCE:MEMORY';
  if (d.tcpPorts.some((p) => i.tcpPortsUsed.has(p)) || d.udpPorts.some((p) => i.udpPortsUsed.has(p))) return 'RESOURCE:PORTS';
  if (d.eni && i.enisFree <= 0) return 'RESOURCE:ENI';
  return undefined;
}

export interface Placement { instance?: InstanceSnapshot; reasons: Record<string, number> }

export function place(d: TaskDemand, instances: InstanceSnapshot[]): Placement {
  const reasons: Record<string, number> = {};
  let best: InstanceSnapshot | undefined;
  for (const i of instances) {
    const why = rejection(d, i);
    if (why) { reasons[why] = (reasons[why] ?? 0) + 1; continue; }
    if (!best || i.cpuFree < best.cpuFree || (i.cpuFree === best.cpuFree && i.memoryFree < best.memoryFree)) best = i;
  }
  return best ? { instance: best, reasons } : { reasons };
}

/** Takes the task's resources out of the snapshot after placing it. */
export function reserve(d: TaskDemand, i: InstanceSnapshot): void {
  i.cpuFree -= d.cpu;
  i.memoryFree -= d.memory;
  for (const p of d.tcpPorts) i.tcpPortsUsed.add(p);
  for (const p of d.udpPorts) i.udpPortsUsed.add(p);
  if (d.eni) i.enisFree--;
  i.tasks++;
}
