// The reference placement pipeline: the straightforward definition of what placement means.
//
//   candidates (the task's provider, or the pinned instance)
//     → filters (every instance, each rejection counted under its reason)
//     → strategies (lexicographic: each keeps the best-keyed instances, the next breaks ties)
//     → selection (the earliest remaining instance in the snapshot)
//
// It scans every instance, so it is O(instances) per task. The indexed engine (engine.ts)
// must choose exactly what this chooses; a property test holds it to that.
import { buildFailure } from './failure.js';
import { firstRejection, FILTERS, type PreparedTask } from './filters.js';
import { seededRank } from './hash.js';
import type { ClusterState, StateRecord } from './state.js';
import type { NormStrategy } from './strategies.js';
import type { PlacementFailure, Reason } from './types.js';

export type Choice = { rec: StateRecord } | { failure: PlacementFailure };

/** Better "closest" instance: failed at a later filter; for resources, has more of the missing one. */
function closer(a: { rec: StateRecord; filter: number }, b: StateRecord, fb: number): boolean {
  if (fb !== a.filter) return fb > a.filter;
  const reason = FILTERS[fb]!.reason;
  if (reason === 'RESOURCE:CPU') return b.cpuFree > a.rec.cpuFree;
  if (reason === 'RESOURCE:MEMORY') return b.memFree > a.rec.memFree;
  return false;
}

function strategyKeys(state: ClusterState, t: PreparedTask, s: NormStrategy, set: readonly StateRecord[]): number[] {
  switch (s.kind) {
    case 'binpack':
      return set.map((r) => (s.resource === 'cpu' ? r.cpuFree : r.memFree));
    case 'random':
      return set.map((r) => seededRank(t.seed, r.id));
    case 'spread': {
      if (s.attribute === null) return set.map((r) => r.groups.get(t.group) ?? 0);
      const attr = s.attribute;
      const counts = new Map<string | undefined, number>();
      if (t.group !== '') {
        for (const r of state.recs) {
          if (r.status !== 'ACTIVE') continue;
          const n = r.groups.get(t.group) ?? 0;
          if (n === 0) continue;
          const v = r.attrs.get(attr);
          counts.set(v, (counts.get(v) ?? 0) + n);
        }
      }
      return set.map((r) => counts.get(r.attrs.get(attr)) ?? 0);
    }
  }
}

/** Applies the strategies to feasible instances (in snapshot order) and returns the winner. */
export function selectByStrategies(state: ClusterState, t: PreparedTask, feasible: readonly StateRecord[]): StateRecord {
  let set = feasible;
  for (const s of t.strategies) {
    if (set.length <= 1) break;
    const keys = strategyKeys(state, t, s, set);
    let min = Infinity;
    for (const k of keys) if (k < min) min = k;
    set = set.filter((_, n) => keys[n] === min);
  }
  return set[0]!;
}

/** Runs the filters over the candidates; returns the feasible ones or the failure. */
export function filterAll(t: PreparedTask, cands: readonly StateRecord[]): { feasible: StateRecord[] } | { failure: PlacementFailure } {
  const feasible: StateRecord[] = [];
  const counts: Partial<Record<Reason, number>> = {};
  let closest: { rec: StateRecord; filter: number } | undefined;
  for (const r of cands) {
    const f = firstRejection(t, r);
    if (f < 0) { feasible.push(r); continue; }
    const reason = FILTERS[f]!.reason;
    counts[reason] = (counts[reason] ?? 0) + 1;
    if (!closest || closer(closest, r, f)) closest = { rec: r, filter: f };
  }
  if (feasible.length) return { feasible };
  return { failure: buildFailure(t, counts, cands.length, closest) };
}

export function referenceChoose(state: ClusterState, t: PreparedTask): Choice {
  if (t.problem) return { failure: t.problem };
  const r = filterAll(t, state.candidates(t));
  if ('failure' in r) return r;
  return { rec: selectByStrategies(state, t, r.feasible) };
}
