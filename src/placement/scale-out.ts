// The scale-out planner (pure): given the tasks that fit on no instance (existing or on its
// way), which instances to launch — type and subnet — so that all of them fit, as cheaply
// and in as few instances as possible, spread over availability zones.
//
//   1. Per task: request problems (FIPS + ARM64, bad constraints) and "can never fit"
//      (no launchable (type, subnet) passes the static filters, or no type is big enough)
//      are reported at once, with the reason and a message that says why.
//   2. Tasks that can use exactly the same (type, subnet) options form a class; classes are
//      packed separately (tasks of different classes never share a planned instance).
//   3. Spread: tasks whose strategy spreads over zones (the default) are dealt to zones per
//      task group, each to the zone where the group has the fewest tasks (existing counts when
//      given, then planned), ties rotating, so a group of three or more lands in three zones
//      when the provider has them. Other tasks go to the first zone. A single zone is pure
//      bin-packing.
//   4. Each (class, zone) is packed by packing.ts (cost-ranked types, dot-product bins,
//      right-sizing, local search); single-task mode gives one instance per task, the
//      cheapest type that holds it.
//   5. Every planned instance gets the zone's subnet with the fewest instances (existing,
//      then planned) among those the class may use.
import type { InstanceType } from '../domain/instance-types.js';
import { ecsArchitecture } from '../domain/instance-types.js';
import { HOST_ACCESS_TAG, PRIVILEGED_TAG } from '../domain/provider-settings.js';
import { FILTERS, firstRejection, prepareTask, type PreparedTask } from './filters.js';
import { registeredCpu, registeredMemory, taskEnis } from './instance-selection.js';
import { packItems, type BinType, type PackItem } from './packing.js';
import { toState, type StateRecord } from './state.js';
import { AZ_ATTRIBUTE } from './strategies.js';
import type { AttributeLike, InstanceSnapshot, TaskRequest } from './types.js';

export interface SubnetOption { subnetId: string; availabilityZone: string }

export interface ScaleOutProvider {
  name: string;
  /** Launchable types, cheapest first (instance-selection.ts selectableTypes). */
  types: readonly InstanceType[];
  /** The provider's subnets, in the order fleet.launch() indexes them. */
  subnets: readonly SubnetOption[];
  singleTaskMode: boolean;
  privilegedCapabilities: readonly string[];
  /** Host access the provider allows (berth:host-access); none when unset. */
  hostAccess?: readonly string[];
  fips: boolean;
  /** Attributes every new instance's agent reports (ecs.capability.*, …), for requiresAttributes. */
  attributes?: readonly AttributeLike[];
}

export interface ScaleOutInput {
  provider: ScaleOutProvider;
  /** Tasks of this provider that fit nowhere, oldest first. */
  pending: readonly TaskRequest[];
  /** Live instances per subnet id: new ones go to the emptier subnets. */
  instancesPerSubnet?: Readonly<Record<string, number>>;
  /** Existing tasks per group and zone, so spread fills the thin zones first. */
  groupZoneCounts?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Launch at most this many instances now; the rest of the tasks are `deferred`. */
  maxLaunches?: number;
}

export interface PlannedLaunch {
  instanceType: InstanceType;
  subnetId: string;
  /** Index into provider.subnets (what fleet.launch takes). */
  subnetIndex: number;
  availabilityZone: string;
  taskIds: string[];
  /** CPU units and MiB the planned tasks take. */
  cpu: number;
  memory: number;
}

export interface Unplaceable {
  taskId: string;
  /** ECS-style reason: RESOURCE:CPU, RESOURCE:MEMORY, MISSING ATTRIBUTE, FIPS, PRIVILEGED_CAPABILITY, MEMBER_OF, NO_INSTANCE_TYPE, … */
  reason: string;
  message: string;
}

export interface ScaleOutPlan {
  launches: PlannedLaunch[];
  unplaceable: Unplaceable[];
  /** Placeable tasks left for a later pass because of maxLaunches. */
  deferred: string[];
  /** Sum of the launches' hourly prices. */
  hourlyCost: number;
}

interface Option { type: InstanceType; subnetIndex: number; subnet: SubnetOption; state: StateRecord }

/** The last filter that is not about resources or co-located tasks: static feasibility. */
const STATIC_FILTERS = FILTERS.findIndex((f) => f.reason === 'DISTINCT_INSTANCE');

function hypothetical(p: ScaleOutProvider, type: InstanceType, subnet: SubnetOption, n: number): InstanceSnapshot {
  return {
    id: `planned-${n}`, providerName: p.name, status: 'ACTIVE', agentConnected: true,
    registeredCpu: registeredCpu(type), registeredMemory: registeredMemory(type), usedCpu: 0, usedMemory: 0,
    eniMax: taskEnis(type), eniUsed: 0, runningTasksCount: 0, singleTask: p.singleTaskMode,
    availabilityZone: subnet.availabilityZone, subnetId: subnet.subnetId, instanceType: type.name,
    architecture: ecsArchitecture(type.architecture), ...(p.attributes ? { attributes: p.attributes } : {}),
    privilegedCapabilities: p.privilegedCapabilities, hostAccess: p.hostAccess ?? [], fips: p.fips,
  };
}

function staticKey(t: PreparedTask): string {
  return JSON.stringify([t.arch ?? '', t.caps, t.hostAccess, t.requires, (t.req.constraints ?? []).filter((c) => c.type === 'memberOf').map((c) => c.expression),
    t.subnets ? [...t.subnets].sort() : null, t.fipsRequired]);
}

function list(xs: readonly string[], max = 6): string {
  return xs.length <= max ? xs.join(', ') : `${xs.slice(0, max).join(', ')} and ${xs.length - max} more`;
}

function cannotRun(p: ScaleOutProvider, t: PreparedTask, options: readonly Option[]): Unplaceable {
  // The option that got furthest through the filters explains best.
  let best: { o: Option; f: number } | undefined;
  for (const o of options) {
    const f = firstRejection(t, o.state);
    if (f >= 0 && (!best || f > best.f)) best = { o, f };
  }
  const f = FILTERS[best?.f ?? 0]!;
  const typeNames = [...new Set(p.types.map((x) => x.name))];
  const archs = [...new Set(p.types.map((x) => ecsArchitecture(x.architecture)))];
  let message: string;
  switch (f.reason) {
    case 'PRIVILEGED_CAPABILITY': {
      const missing = t.caps.filter((c) => !p.privilegedCapabilities.includes(c));
      message = `The task adds the Linux capabilit${missing.length === 1 ? 'y' : 'ies'} ${missing.join(', ')}, which capacity provider ${p.name} does not allow. Allow ${missing.length === 1 ? 'it' : 'them'} with the tag ${PRIVILEGED_TAG} on the capacity provider (e.g. ${missing.join('+')}).`;
      break;
    }
    case 'HOST_ACCESS': {
      const missing = t.hostAccess.filter((k) => !(p.hostAccess ?? []).includes(k));
      message = `The task needs host access ${missing.join(', ')}, which capacity provider ${p.name} does not allow: it reaches beyond the task (the instance's processes, IPC or devices). Allow it with the tag ${HOST_ACCESS_TAG} on the capacity provider (e.g. ${HOST_ACCESS_TAG}=${missing.join('+')}).`;
      break;
    }
    case 'MISSING ATTRIBUTE':
      if (t.arch !== undefined && !archs.includes(t.arch)) {
        message = `The task requires runtimePlatform.cpuArchitecture ${t.arch}, but capacity provider ${p.name} can only launch ${list(archs)} instances here (types ${list(typeNames)}).`;
      } else if (t.subnets && !p.subnets.some((s) => t.subnets!.has(s.subnetId))) {
        message = `None of the task's subnets (${list([...t.subnets])}) belongs to capacity provider ${p.name} (its subnets: ${list(p.subnets.map((s) => s.subnetId))}).`;
      } else {
        message = `No instance capacity provider ${p.name} can launch has what the task requires: an instance ${f.detail(t, best!.o.state)}.`;
      }
      break;
    case 'MEMBER_OF': {
      const exprs = (t.req.constraints ?? []).filter((c) => c.type === 'memberOf').map((c) => `'${c.expression}'`);
      message = `No instance capacity provider ${p.name} can launch (types ${list(typeNames)} in ${list([...new Set(p.subnets.map((s) => s.availabilityZone))])}) satisfies the task's memberOf constraint ${exprs.join(' and ')}.`;
      break;
    }
    case 'FIPS':
      message = `Capacity provider ${p.name} ${p.fips ? 'is FIPS-enabled, and FIPS instances run only X86_64 tasks' : 'is not FIPS-enabled, and the task requires FIPS'}.`;
      break;
    default:
      message = best ? `No instance capacity provider ${p.name} can launch can take the task: a new instance ${f.detail(t, best.o.state)}.` : `Capacity provider ${p.name} has no subnets to launch instances in.`;
  }
  return { taskId: t.req.id, reason: f.reason, message };
}

function tooBig(p: ScaleOutProvider, t: PreparedTask, types: readonly InstanceType[]): Unplaceable {
  const cpu = Math.max(...types.map(registeredCpu));
  const mem = Math.max(...types.map(registeredMemory));
  const reason = t.cpu > cpu ? 'RESOURCE:CPU' : t.memory > mem ? 'RESOURCE:MEMORY' : 'RESOURCE:ENI';
  const message = reason === 'RESOURCE:ENI'
    ? `The awsvpc task needs a network interface, and no instance type capacity provider ${p.name} allows (of those big enough for it) has one to spare.`
    : `the task needs ${t.cpu} CPU units and ${t.memory} MiB, more than the largest instance type the capacity provider ${p.name} allows (${cpu} CPU units, ${mem} MiB).`;
  return { taskId: t.req.id, reason, message };
}

function binType(t: InstanceType): BinType<InstanceType> {
  return { name: t.name, cpu: registeredCpu(t), mem: registeredMemory(t), eni: taskEnis(t), price: t.pricePerHour, ref: t };
}

function packItemOf(t: PreparedTask): PackItem {
  return { id: t.req.id, cpu: t.cpu, mem: t.memory, eni: t.awsvpc ? 1 : 0, tcp: t.tcp, udp: t.udp, distinct: t.distinct ? t.group : '', group: t.group };
}

export function planScaleOut(input: ScaleOutInput): ScaleOutPlan {
  const p = input.provider;
  const unplaceable: Unplaceable[] = [];
  const plan: ScaleOutPlan = { launches: [], unplaceable, deferred: [], hourlyCost: 0 };
  if (input.pending.length === 0) return plan;
  if (p.types.length === 0) {
    for (const r of input.pending) {
      unplaceable.push({ taskId: r.id, reason: 'NO_INSTANCE_TYPE', message: `No instance type in the catalog satisfies capacity provider ${p.name}'s instanceRequirements on this host.` });
    }
    return plan;
  }
  const options: Option[] = [];
  p.types.forEach((type) => p.subnets.forEach((subnet, subnetIndex) => {
    options.push({ type, subnetIndex, subnet, state: toState(hypothetical(p, type, subnet, options.length), options.length) });
  }));

  // 1–2. Classes by static option set.
  const maskByKey = new Map<string, { mask: Option[]; key: string }>();
  const classes = new Map<string, { options: Option[]; tasks: PreparedTask[] }>();
  for (const r of input.pending) {
    const t = prepareTask(r);
    if (t.problem) { unplaceable.push({ taskId: r.id, reason: t.problem.reason, message: t.problem.message }); continue; }
    const sk = staticKey(t);
    let m = maskByKey.get(sk);
    if (!m) {
      const mask = options.filter((o) => { const f = firstRejection(t, o.state); return f < 0 || f > STATIC_FILTERS; });
      m = { mask, key: mask.map((o) => options.indexOf(o)).join(',') };
      maskByKey.set(sk, m);
    }
    if (m.mask.length === 0) { unplaceable.push(cannotRun(p, t, options)); continue; }
    const fitting = m.mask.some((o) => registeredCpu(o.type) >= t.cpu && registeredMemory(o.type) >= t.memory && (!t.awsvpc || taskEnis(o.type) >= 1));
    if (!fitting) { unplaceable.push(tooBig(p, t, [...new Set(m.mask.map((o) => o.type))])); continue; }
    let c = classes.get(m.key);
    if (!c) { c = { options: m.mask, tasks: [] }; classes.set(m.key, c); }
    c.tasks.push(t);
  }

  const perSubnet = new Map<string, number>();
  for (const [s, n] of Object.entries(input.instancesPerSubnet ?? {})) perSubnet.set(s, n);
  const zoneLoad = (z: string) => p.subnets.filter((s) => s.availabilityZone === z).reduce((a, s) => a + (perSubnet.get(s.subnetId) ?? 0), 0);

  let rotate = 0;
  const launches: PlannedLaunch[] = [];
  for (const c of classes.values()) {
    // 3. Deal tasks to zones.
    const zones = [...new Set(c.options.map((o) => o.subnet.availabilityZone))]
      .sort((a, b) => zoneLoad(a) - zoneLoad(b) || (a < b ? -1 : a > b ? 1 : 0));
    const byZone = new Map<string, PreparedTask[]>(zones.map((z) => [z, []]));
    const planned = new Map<string, Map<string, number>>();
    for (const t of c.tasks) {
      if (zones.length === 1 || !t.strategies.some((x) => x.kind === 'spread' && x.attribute === AZ_ATTRIBUTE) || t.group === '') { byZone.get(zones[0]!)!.push(t); continue; }
      let g = planned.get(t.group);
      if (!g) { g = new Map(); planned.set(t.group, g); }
      const existing = input.groupZoneCounts?.[t.group] ?? {};
      let pick = -1;
      let low = Infinity;
      for (let k = 0; k < zones.length; k++) {
        const z = zones[(k + rotate) % zones.length]!;
        const n = (existing[z] ?? 0) + (g.get(z) ?? 0);
        if (n < low) { low = n; pick = (k + rotate) % zones.length; }
      }
      const z = zones[pick]!;
      g.set(z, (g.get(z) ?? 0) + 1);
      byZone.get(z)!.push(t);
      rotate++;
    }
    // 4–5. Pack each zone, then choose subnets.
    for (const z of zones) {
      const tasks = byZone.get(z)!;
      if (tasks.length === 0) continue;
      const zoneOptions = c.options.filter((o) => o.subnet.availabilityZone === z);
      const types = [...new Set(zoneOptions.map((o) => o.type))];
      const bins = packItems(tasks.map(packItemOf), types.map(binType), { singleTask: p.singleTaskMode });
      for (const b of bins) {
        const subnets = zoneOptions.filter((o) => o.type === b.type.ref)
          .sort((x, y) => (perSubnet.get(x.subnet.subnetId) ?? 0) - (perSubnet.get(y.subnet.subnetId) ?? 0) || x.subnetIndex - y.subnetIndex);
        const o = subnets[0]!;
        perSubnet.set(o.subnet.subnetId, (perSubnet.get(o.subnet.subnetId) ?? 0) + 1);
        launches.push({
          instanceType: b.type.ref, subnetId: o.subnet.subnetId, subnetIndex: o.subnetIndex, availabilityZone: z,
          taskIds: b.items.map((i) => i.id), cpu: b.cpu, memory: b.mem,
        });
      }
    }
  }
  const max = input.maxLaunches ?? Infinity;
  plan.launches = launches.slice(0, max);
  for (const l of launches.slice(max)) plan.deferred.push(...l.taskIds);
  plan.hourlyCost = Math.round(plan.launches.reduce((s, l) => s + l.instanceType.pricePerHour, 0) * 1e5) / 1e5;
  return plan;
}
