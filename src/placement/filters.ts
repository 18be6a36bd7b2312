// Feasibility filters: each a small predicate over (prepared task, instance state) with the
// reason it reports. They run in REASONS order; an instance is counted once, under the
// first filter that rejects it. Both the reference pipeline and the indexed engine use
// exactly these functions, so they cannot disagree about what is feasible.
import { isDefaultCapability, normalizeCapability } from '../domain/capabilities.js';
import { HOST_ACCESS_TAG } from '../domain/provider-settings.js';
import { compileQuery, isStaticQuery, QueryError, type CompiledQuery, type QueryTarget } from './query.js';
import { fastPlan, normalizeStrategies, type FastPlan, type NormStrategy } from './strategies.js';
import type { AttributeLike, CpuArchitecture, PlacementFailure, Reason, TaskRequest } from './types.js';

/** The engine's mutable view of one instance (never the caller's snapshot object). */
export interface InstanceState extends QueryTarget {
  /** Position in the snapshot: the final tie-break. */
  readonly idx: number;
  readonly id: string;
  readonly provider: string;
  readonly az: string;
  readonly subnet: string;
  readonly instanceType: string;
  readonly status: string;
  readonly agentConnected: boolean;
  readonly arch: CpuArchitecture;
  readonly caps: ReadonlySet<string>;
  readonly hostAccess: ReadonlySet<string>;
  readonly fips: boolean;
  readonly singleTask: boolean;
  readonly registeredCpu: number;
  readonly registeredMemory: number;
  readonly eniMax: number;
  readonly attrs: Map<string, string>;
  readonly groups: Map<string, number>;
  readonly tcp: Set<string>;
  readonly udp: Set<string>;
  cpuFree: number;
  memFree: number;
  eniUsed: number;
  runningTasksCount: number;
}

export interface PreparedTask {
  readonly req: TaskRequest;
  readonly seed: string;
  readonly provider: string | undefined;
  readonly cpu: number;
  readonly memory: number;
  readonly tcp: readonly string[];
  readonly udp: readonly string[];
  readonly awsvpc: boolean;
  readonly arch: CpuArchitecture | undefined;
  readonly caps: readonly string[];
  readonly hostAccess: readonly string[];
  readonly requires: readonly AttributeLike[];
  readonly memberOf: readonly CompiledQuery[];
  /** A memberOf query that reservations cannot change: the engine searches an index of its matches. */
  readonly indexQuery: CompiledQuery | undefined;
  readonly distinct: boolean;
  readonly group: string;
  readonly fipsRequired: boolean;
  readonly pinned: string | undefined;
  readonly subnets: ReadonlySet<string> | undefined;
  readonly strategies: readonly NormStrategy[];
  readonly fast: FastPlan | undefined;
  /** A problem with the request itself: it can run on no instance at all. */
  readonly problem: PlacementFailure | undefined;
}

export interface Filter {
  readonly reason: Reason;
  rejects(t: PreparedTask, i: InstanceState): boolean;
  /** Why, for the closest instance: "has 512 MiB of memory free; the task needs 1024 MiB". */
  detail(t: PreparedTask, i: InstanceState): string;
}

const instanceStatus: Filter = {
  reason: 'INSTANCE_STATUS',
  rejects: (_t, i) => i.status !== 'ACTIVE' || !i.agentConnected,
  detail: (_t, i) => (i.status !== 'ACTIVE' ? `is ${i.status}, and only ACTIVE instances take tasks` : 'has no connected agent'),
};

const singleTask: Filter = {
  reason: 'SINGLE_TASK',
  rejects: (_t, i) => i.singleTask && i.runningTasksCount > 0,
  detail: () => 'is a single-task instance and already runs a task',
};

const fips: Filter = {
  reason: 'FIPS',
  rejects: (t, i) => (t.fipsRequired && !i.fips) || (i.fips && t.arch === 'ARM64'),
  detail: (t, i) => (t.fipsRequired && !i.fips
    ? 'is not a FIPS instance, and the capacity provider requires FIPS'
    : 'is a FIPS instance, and FIPS instances run only X86_64 tasks; the task asks for ARM64'),
};

const privileged: Filter = {
  reason: 'PRIVILEGED_CAPABILITY',
  rejects: (t, i) => {
    for (const c of t.caps) if (!i.caps.has(c)) return true;
    return false;
  },
  detail: (t, i) => {
    const missing = t.caps.filter((c) => !i.caps.has(c));
    return `does not allow the Linux capabilit${missing.length === 1 ? 'y' : 'ies'} ${missing.join(', ')} (its capacity provider did not opt in)`;
  },
};

const hostAccess: Filter = {
  reason: 'HOST_ACCESS',
  rejects: (t, i) => {
    for (const k of t.hostAccess) if (!i.hostAccess.has(k)) return true;
    return false;
  },
  detail: (t, i) => `does not allow host access ${t.hostAccess.filter((k) => !i.hostAccess.has(k)).join(', ')} (its capacity provider did not opt in with the tag ${HOST_ACCESS_TAG})`,
};

function missingAttribute(t: PreparedTask, i: InstanceState): string | undefined {
  if (t.arch !== undefined && t.arch !== i.arch) return `runs ${i.arch}; the task needs runtimePlatform.cpuArchitecture ${t.arch}`;
  if (t.subnets !== undefined && !t.subnets.has(i.subnet)) return `is in subnet ${i.subnet}, not one of the task's subnets (${[...t.subnets].join(', ')})`;
  for (const a of t.requires) {
    const v = i.attrs.get(a.name);
    if (v === undefined) return `lacks the attribute ${a.name}`;
    if (a.value !== undefined && v !== a.value) return `has ${a.name}=${v}; the task requires ${a.value}`;
  }
  return undefined;
}

const attribute: Filter = {
  reason: 'MISSING ATTRIBUTE',
  rejects: (t, i) => missingAttribute(t, i) !== undefined,
  detail: (t, i) => missingAttribute(t, i) ?? '',
};

const memberOf: Filter = {
  reason: 'MEMBER_OF',
  rejects: (t, i) => {
    for (const q of t.memberOf) if (!q(i)) return true;
    return false;
  },
  detail: (t, i) => {
    const exprs = (t.req.constraints ?? []).filter((c) => c.type === 'memberOf');
    const failed = exprs.find((c, n) => !t.memberOf[n]!(i));
    return `does not match the memberOf expression '${failed?.expression ?? ''}'`;
  },
};

const distinctInstance: Filter = {
  reason: 'DISTINCT_INSTANCE',
  rejects: (t, i) => t.distinct && (i.groups.get(t.group) ?? 0) > 0,
  detail: (t) => `already runs a task of group ${t.group} (distinctInstance)`,
};

const cpu: Filter = {
  reason: 'RESOURCE:CPU',
  rejects: (t, i) => t.cpu > i.cpuFree,
  detail: (t, i) => `has ${i.cpuFree} CPU units free; the task needs ${t.cpu}`,
};

const memory: Filter = {
  reason: 'RESOURCE:MEMORY',
  rejects: (t, i) => t.memory > i.memFree,
  detail: (t, i) => `has ${i.memFree} MiB of memory free; the task needs ${t.memory} MiB`,
};

function portClash(t: PreparedTask, i: InstanceState): string | undefined {
  for (const p of t.tcp) if (i.tcp.has(p)) return `tcp/${p}`;
  for (const p of t.udp) if (i.udp.has(p)) return `udp/${p}`;
  return undefined;
}

const ports: Filter = {
  reason: 'RESOURCE:PORTS',
  rejects: (t, i) => (t.tcp.length > 0 || t.udp.length > 0) && portClash(t, i) !== undefined,
  detail: (t, i) => `already uses host port ${portClash(t, i)}, which the task needs`,
};

const eni: Filter = {
  reason: 'RESOURCE:ENI',
  rejects: (t, i) => t.awsvpc && i.eniUsed >= i.eniMax,
  detail: (_t, i) => `has all its ${i.eniMax} task network interfaces in use (awsvpc)`,
};

/** Every filter, in the order they run. */
export const FILTERS: readonly Filter[] = [
  instanceStatus, singleTask, fips, privileged, hostAccess, attribute, memberOf, distinctInstance, cpu, memory, ports, eni,
];

/** Index of the first filter that rejects, or -1 when the instance can take the task. */
export function firstRejection(t: PreparedTask, i: InstanceState): number {
  for (let f = 0; f < FILTERS.length; f++) if (FILTERS[f]!.rejects(t, i)) return f;
  return -1;
}

export function feasible(t: PreparedTask, i: InstanceState): boolean {
  return firstRejection(t, i) < 0;
}

/** Privileged capabilities named the way the provider settings store them (CAP_*, non-default only). */
const NONE: readonly string[] = Object.freeze([]);

export function privilegedOnly(caps: readonly string[] | undefined): readonly string[] {
  if (!caps || caps.length === 0) return NONE;
  const out = new Set<string>();
  for (const c of caps ?? []) {
    const n = normalizeCapability(c);
    if (n && !isDefaultCapability(n)) out.add(n);
    else if (!n) out.add(c.toUpperCase());
  }
  return [...out].sort();
}

const NONE_ATTRS: readonly AttributeLike[] = Object.freeze([]);

function requestFailure(reason: PlacementFailure['reason'], message: string): PlacementFailure {
  return { reason, counts: {}, message };
}

const DEFAULT_STRATEGIES = normalizeStrategies(undefined);
const DEFAULT_FAST = fastPlan(DEFAULT_STRATEGIES);
const strategyCache = new WeakMap<readonly object[], { s: NormStrategy[]; f: FastPlan | undefined }>();

function strategiesOf(list: TaskRequest['strategy']): { s: readonly NormStrategy[]; f: FastPlan | undefined } {
  if (!list || list.length === 0) return { s: DEFAULT_STRATEGIES, f: DEFAULT_FAST };
  let hit = strategyCache.get(list);
  if (!hit) {
    const s = normalizeStrategies(list);
    hit = { s, f: fastPlan(s) };
    strategyCache.set(list, hit);
  }
  return hit;
}

/** Normalises a request (queries compiled and cached by text, strategies classified). */
export function prepareTask(req: TaskRequest): PreparedTask {
  const memberOfQ: CompiledQuery[] = [];
  let distinct = false;
  let problem: PlacementFailure | undefined;
  for (const c of req.constraints ?? []) {
    if (c.type === 'distinctInstance') { distinct = true; continue; }
    if (c.type === 'memberOf') {
      try {
        memberOfQ.push(compileQuery(c.expression ?? ''));
      } catch (e) {
        if (!(e instanceof QueryError)) throw e;
        problem ??= requestFailure('MEMBER_OF', `The task's memberOf placement constraint cannot be used: ${e.message}`);
        memberOfQ.push(() => false);
      }
      continue;
    }
    problem ??= requestFailure('MEMBER_OF', `Unknown placement constraint type '${c.type}'; ECS supports distinctInstance and memberOf.`);
  }
  const arch = req.cpuArchitecture;
  if (req.fipsRequired && arch === 'ARM64') {
    problem ??= requestFailure('FIPS', `The capacity provider${req.providerName ? ` ${req.providerName}` : ''} is FIPS-enabled, and FIPS instances run only X86_64 tasks, but the task definition sets runtimePlatform.cpuArchitecture to ARM64. Use X86_64 (or leave cpuArchitecture unset), or run the task on a capacity provider with "fipsEnabled": false.`);
  }
  const strat = strategiesOf(req.strategy);
  const t: PreparedTask = {
    req,
    seed: req.id,
    provider: req.providerName,
    cpu: req.cpu,
    memory: req.memory,
    tcp: req.tcpPorts ?? NONE,
    udp: req.udpPorts ?? NONE,
    awsvpc: req.awsvpc ?? false,
    arch,
    caps: privilegedOnly(req.privilegedCapabilities),
    hostAccess: req.hostAccess?.length ? [...req.hostAccess].sort() : NONE,
    requires: req.requiresAttributes ?? NONE_ATTRS,
    memberOf: memberOfQ,
    indexQuery: memberOfQ.find(isStaticQuery),
    distinct,
    group: req.group ?? '',
    fipsRequired: req.fipsRequired ?? false,
    pinned: req.pinnedInstanceId,
    subnets: req.subnets && req.subnets.length ? new Set(req.subnets) : undefined,
    strategies: strat.s,
    fast: strat.f,
    problem,
  };
  return t;
}
