// The placement core's working copy of a cluster: one InstanceState per snapshot entry, and
// the bookkeeping a reservation changes (resources, ports, ENIs, task groups, per-zone group
// counts). Shared by the reference pipeline and the indexed engine.
import { attributeMap } from './query.js';
import { privilegedOnly, type InstanceState, type PreparedTask } from './filters.js';
import type { InstanceSnapshot } from './types.js';

export interface StateRecord extends InstanceState {
  readonly snap: InstanceSnapshot;
  /** Engine bookkeeping: the index pool the instance is in, if any. */
  pool: unknown;
  /** Engine bookkeeping: answers of static memberOf queries (they cannot change). */
  answers: Map<unknown, boolean> | undefined;
}

export function toState(s: InstanceSnapshot, idx: number): StateRecord {
  const groups = new Map<string, number>();
  for (const [g, n] of Object.entries(s.taskGroups ?? {})) if (n > 0) groups.set(g, n);
  return {
    idx, snap: s, id: s.id, provider: s.providerName, az: s.availabilityZone, subnet: s.subnetId,
    instanceType: s.instanceType, status: s.status, agentConnected: s.agentConnected, arch: s.architecture,
    caps: new Set(privilegedOnly(s.privilegedCapabilities)), hostAccess: new Set(s.hostAccess ?? []), fips: s.fips, singleTask: s.singleTask,
    registeredCpu: s.registeredCpu, registeredMemory: s.registeredMemory, eniMax: s.eniMax,
    attrs: attributeMap({ ...(s.attributes ? { attributes: s.attributes } : {}), availabilityZone: s.availabilityZone, subnetId: s.subnetId, instanceType: s.instanceType, architecture: s.architecture }),
    groups, tcp: new Set(s.tcpPortsUsed ?? []), udp: new Set(s.udpPortsUsed ?? []),
    cpuFree: s.registeredCpu - s.usedCpu, memFree: s.registeredMemory - s.usedMemory,
    eniUsed: s.eniUsed, runningTasksCount: s.runningTasksCount,
    agentVersion: s.agentVersion, ec2InstanceId: s.ec2InstanceId, registeredAt: s.registeredAt,
    pool: undefined, answers: undefined,
  };
}

export class ClusterState {
  readonly recs: StateRecord[] = [];
  readonly byId = new Map<string, StateRecord>();
  readonly byProvider = new Map<string, StateRecord[]>();
  /** group → availability zone → tasks of that group on ACTIVE instances there. */
  readonly groupZones = new Map<string, Map<string, number>>();

  constructor(instances: readonly InstanceSnapshot[]) {
    for (const s of instances) this.add(s);
  }

  add(s: InstanceSnapshot): StateRecord {
    if (this.byId.has(s.id)) throw new Error(`instance ${s.id} is in the snapshot twice`);
    const r = toState(s, this.recs.length);
    this.recs.push(r);
    this.byId.set(r.id, r);
    let list = this.byProvider.get(r.provider);
    if (!list) { list = []; this.byProvider.set(r.provider, list); }
    list.push(r);
    if (r.status === 'ACTIVE') for (const [g, n] of r.groups) this.bumpZone(g, r.az, n);
    return r;
  }

  private bumpZone(group: string, az: string, n: number): void {
    let m = this.groupZones.get(group);
    if (!m) { m = new Map(); this.groupZones.set(group, m); }
    m.set(az, (m.get(az) ?? 0) + n);
  }

  zoneCount(group: string, az: string): number {
    return this.groupZones.get(group)?.get(az) ?? 0;
  }

  /** Takes the task's resources out of the instance. */
  apply(t: PreparedTask, r: StateRecord): void {
    r.cpuFree -= t.cpu;
    r.memFree -= t.memory;
    for (const p of t.tcp) r.tcp.add(p);
    for (const p of t.udp) r.udp.add(p);
    if (t.awsvpc) r.eniUsed++;
    r.runningTasksCount++;
    if (t.group !== '') {
      r.groups.set(t.group, (r.groups.get(t.group) ?? 0) + 1);
      if (r.status === 'ACTIVE') this.bumpZone(t.group, r.az, 1);
    }
  }

  /** Gives back what apply() took (the task stopped, or a trial placement is undone). */
  release(t: PreparedTask, r: StateRecord): void {
    r.cpuFree += t.cpu;
    r.memFree += t.memory;
    for (const p of t.tcp) r.tcp.delete(p);
    for (const p of t.udp) r.udp.delete(p);
    if (t.awsvpc) r.eniUsed--;
    r.runningTasksCount--;
    if (t.group !== '') {
      const n = (r.groups.get(t.group) ?? 0) - 1;
      if (n > 0) r.groups.set(t.group, n); else r.groups.delete(t.group);
      if (r.status === 'ACTIVE') this.bumpZone(t.group, r.az, -1);
    }
  }

  /** Sets the status the filters see (cordon an instance for a what-if, and back). */
  setStatus(r: StateRecord, status: string): void {
    const wasActive = r.status === 'ACTIVE';
    (r as { status: string }).status = status;
    const isActive = status === 'ACTIVE';
    if (wasActive !== isActive) for (const [g, n] of r.groups) this.bumpZone(g, r.az, isActive ? n : -n);
  }

  /** Candidates for a task, in snapshot order. */
  candidates(t: PreparedTask): readonly StateRecord[] {
    if (t.pinned !== undefined) {
      const r = this.byId.get(t.pinned);
      return r ? [r] : [];
    }
    if (t.provider === undefined) return this.recs;
    return this.byProvider.get(t.provider) ?? [];
  }
}
