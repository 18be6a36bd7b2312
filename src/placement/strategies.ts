// Placement strategies (ECS's placementStrategy): validation, normalisation, and which
// strategy lists the indexed fast path serves.
//
// Semantics (shared by the reference pipeline and the indexed engine): strategies are
// applied in order, each keeping only the feasible instances with the best (lowest) key,
// the next one breaking the remaining ties; a final tie goes to the earliest instance in
// the snapshot. Keys:
//   binpack(cpu|memory)  remaining CPU units / MiB of memory (least remaining wins)
//   spread(instanceId)   tasks of the request's group on the instance
//   spread(attribute:X)  tasks of the group on ACTIVE instances whose X has the candidate's
//                        value (counted over the whole snapshot, not only feasible ones)
//   random               seededRank(task id, instance id): a replayable permutation
// With no strategy, Managed Instances' default: spread over availability zones, then
// binpack by CPU, then by memory. A single availability zone makes it pure bin-packing.
import type { PlacementStrategy } from './types.js';

export type NormStrategy =
  | { kind: 'binpack'; resource: 'cpu' | 'memory' }
  | { kind: 'spread'; attribute: string | null }
  | { kind: 'random' };

export const MAX_STRATEGIES = 5;
export const AZ_ATTRIBUTE = 'ecs.availability-zone';

export const DEFAULT_STRATEGY: readonly PlacementStrategy[] = [
  { type: 'spread', field: `attribute:${AZ_ATTRIBUTE}` },
  { type: 'binpack', field: 'cpu' },
  { type: 'binpack', field: 'memory' },
];

function normalizeOne(s: PlacementStrategy): NormStrategy | string {
  const type = String(s.type ?? '').toLowerCase();
  const field = s.field;
  if (type === 'random') return { kind: 'random' };
  if (type === 'binpack') {
    const f = String(field ?? '').toLowerCase();
    if (f === 'cpu' || f === 'memory') return { kind: 'binpack', resource: f };
    return `The binpack placement strategy takes the field cpu or memory; got '${field ?? ''}'.`;
  }
  if (type === 'spread') {
    if (!field) return "The spread placement strategy needs a field: instanceId, host or attribute:<name> (e.g. attribute:ecs.availability-zone).";
    if (field === 'instanceId' || field === 'host') return { kind: 'spread', attribute: null };
    if (field.startsWith('attribute:') && field.length > 'attribute:'.length) return { kind: 'spread', attribute: field.slice('attribute:'.length) };
    return `The spread placement strategy takes instanceId, host or attribute:<name>; got '${field}'.`;
  }
  return `Unknown placement strategy type '${s.type}'; use binpack, spread or random.`;
}

/** What is wrong with a placementStrategy list (for InvalidParameterException), or undefined. */
export function strategyProblem(list: readonly PlacementStrategy[]): string | undefined {
  if (list.length > MAX_STRATEGIES) return `placementStrategy can have at most ${MAX_STRATEGIES} entries; it has ${list.length}.`;
  for (const s of list) {
    const n = normalizeOne(s);
    if (typeof n === 'string') return n;
  }
  return undefined;
}

function same(a: NormStrategy, b: NormStrategy): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'binpack') return a.resource === (b as typeof a).resource;
  if (a.kind === 'spread') return a.attribute === (b as typeof a).attribute;
  return true;
}

/**
 * The strategies to apply: the default when none are given; invalid entries (the API
 * refuses them) are skipped, and a repeat of an earlier entry is dropped (it cannot break a
 * tie the first one left).
 */
export function normalizeStrategies(list: readonly PlacementStrategy[] | undefined): NormStrategy[] {
  const src = list && list.length ? list : DEFAULT_STRATEGY;
  const out: NormStrategy[] = [];
  for (const s of src.slice(0, MAX_STRATEGIES)) {
    const n = normalizeOne(s);
    if (typeof n === 'string') continue;
    if (out.some((o) => same(o, n))) continue;
    out.push(n);
  }
  return out;
}

/** How the indexed engine serves a strategy list: optional AZ spread, then one or two binpacks. */
export interface FastPlan {
  spreadAz: boolean;
  /** 0 = cpu, 1 = memory. */
  primary: 0 | 1;
  /** Ties on the primary resource go to the least remaining of the other one. */
  tieOther: boolean;
}

export function fastPlan(s: readonly NormStrategy[]): FastPlan | undefined {
  let i = 0;
  const first = s[0];
  const spreadAz = first?.kind === 'spread' && first.attribute === AZ_ATTRIBUTE;
  if (spreadAz) i = 1;
  const rest = s.slice(i);
  const a = rest[0];
  if (!a || a.kind !== 'binpack') return undefined;
  const primary = a.resource === 'cpu' ? 0 : 1;
  if (rest.length === 1) return { spreadAz, primary, tieOther: false };
  const b = rest[1]!;
  if (rest.length === 2 && b.kind === 'binpack' && b.resource !== a.resource) return { spreadAz, primary, tieOther: true };
  return undefined;
}

/** True when the strategy list spreads over availability zones (the scale-out planner then spreads launches). */
export function spreadsOverZones(list: readonly PlacementStrategy[] | undefined): boolean {
  return normalizeStrategies(list).some((s) => s.kind === 'spread' && s.attribute === AZ_ATTRIBUTE);
}
