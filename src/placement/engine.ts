// The placement engine: the reference pipeline's semantics, served from an index.
//
// Wiring (one place, like Nomad's stack constructor):
//   prepareTask(request)                       normalise once: queries compiled, strategies classified
//   → request problems                         FIPS + ARM64, malformed constraints: fail at once
//   → candidates                               pinned instance | the provider's pools
//   → fast path (strategy = [spread(AZ)]? binpack(x) [binpack(y)]):
//        zones ordered by the group's task count (spread); in the lowest level, each zone's
//        BinIndex yields its first instance that fits cpu AND memory in bin-packing order,
//        the full filters run on those candidates only; the best across zones wins
//   → any other strategy list (random, spread on other attributes): the reference pipeline
//   → no instance: the reference pipeline again, for the rejection counts and closest
//     instance (failures are rare and explain themselves completely)
//
// A pool is (provider, availability zone). Only instances that can take tasks at all
// (ACTIVE, agent connected, not a busy single-task instance) are indexed.
import { BinIndex } from './bin-index.js';
import { feasible, prepareTask, type PreparedTask } from './filters.js';
import { referenceChoose, type Choice } from './reference.js';
import { ClusterState, type StateRecord } from './state.js';
import type { InstanceSnapshot, PlacementDecision, TaskRequest } from './types.js';

class Pool {
  readonly members = new Set<StateRecord>();
  /** [cpu, cpu+mem tie, memory, memory+cpu tie], built on first use. */
  private readonly indexes: (BinIndex<StateRecord> | undefined)[] = [undefined, undefined, undefined, undefined];
  maxCpu = 0;
  maxMem = 0;

  constructor(readonly provider: string, readonly az: string) {}

  index(primary: 0 | 1, tieOther: boolean): BinIndex<StateRecord> {
    const k = primary * 2 + (tieOther ? 1 : 0);
    let ix = this.indexes[k];
    if (!ix) {
      ix = new BinIndex<StateRecord>(primary, tieOther, primary === 0 ? this.maxCpu : this.maxMem);
      for (const r of this.members) ix.insert(r);
      this.indexes[k] = ix;
    }
    return ix;
  }

  insert(r: StateRecord): void {
    this.members.add(r);
    r.pool = this;
    if (r.registeredCpu > this.maxCpu) this.maxCpu = r.registeredCpu;
    if (r.registeredMemory > this.maxMem) this.maxMem = r.registeredMemory;
    for (const ix of this.indexes) ix?.insert(r);
  }

  remove(r: StateRecord): void {
    this.members.delete(r);
    r.pool = undefined;
    for (const ix of this.indexes) ix?.remove(r);
  }
}

function indexable(r: StateRecord): boolean {
  return r.status === 'ACTIVE' && r.agentConnected && !(r.singleTask && r.runningTasksCount > 0);
}

export interface EngineOptions {
  /** false: always run the reference pipeline (for comparison). Default true. */
  indexed?: boolean;
}

export class PlacementEngine {
  private readonly state: ClusterState;
  private readonly pools = new Map<string, Pool[]>();
  private readonly allPools: Pool[] = [];
  private readonly indexed: boolean;
  /** Placements served by the index and by the reference scan (observability). */
  readonly stats = { indexed: 0, scanned: 0, failed: 0 };

  constructor(instances: readonly InstanceSnapshot[] = [], options: EngineOptions = {}) {
    this.indexed = options.indexed ?? true;
    this.state = new ClusterState([]);
    for (const s of instances) this.addInstance(s);
  }

  /** Adds an instance (e.g. one just launched) to the snapshot. */
  addInstance(s: InstanceSnapshot): void {
    const r = this.state.add(s);
    if (indexable(r)) this.poolFor(r).insert(r);
  }

  private poolFor(r: StateRecord): Pool {
    let list = this.pools.get(r.provider);
    if (!list) { list = []; this.pools.set(r.provider, list); }
    let p = list.find((x) => x.az === r.az);
    if (!p) {
      p = new Pool(r.provider, r.az);
      list.push(p);
      list.sort((a, b) => (a.az < b.az ? -1 : a.az > b.az ? 1 : 0));
      this.allPools.push(p);
    }
    return p;
  }

  /** Decides where the task goes without changing anything. */
  place(request: TaskRequest): PlacementDecision {
    return this.decision(this.choose(prepareTask(request)));
  }

  /** Takes the task's resources out of the instance (after a successful place()). */
  reserve(request: TaskRequest, instanceId: string): void {
    const r = this.state.byId.get(instanceId);
    if (!r) throw new Error(`reserve: unknown instance ${instanceId}`);
    this.apply(prepareTask(request), r);
  }

  /** place() then reserve() on success. */
  placeAndReserve(request: TaskRequest): PlacementDecision {
    const t = prepareTask(request);
    const c = this.choose(t);
    if ('rec' in c) this.apply(t, c.rec);
    return this.decision(c);
  }

  /** The instance's current numbers (after reservations). */
  view(instanceId: string): Readonly<StateRecord> | undefined {
    return this.state.byId.get(instanceId);
  }

  instances(): readonly Readonly<StateRecord>[] {
    return this.state.recs;
  }

  private decision(c: Choice): PlacementDecision {
    if ('failure' in c) { this.stats.failed++; return { placed: false, failure: c.failure }; }
    const s = c.rec.snap;
    return { placed: true, instanceId: s.id, instance: s, availabilityZone: s.availabilityZone, subnetId: s.subnetId };
  }

  private apply(t: PreparedTask, r: StateRecord): void {
    const pool = r.pool as Pool | undefined;
    pool?.remove(r);
    this.state.apply(t, r);
    if (indexable(r)) this.poolFor(r).insert(r);
  }

  private choose(t: PreparedTask): Choice {
    if (t.problem) return { failure: t.problem };
    if (this.indexed && t.fast && t.pinned === undefined) {
      const rec = this.fastChoose(t);
      if (rec) { this.stats.indexed++; return { rec }; }
    } else {
      this.stats.scanned++;
    }
    return referenceChoose(this.state, t);
  }

  private fastChoose(t: PreparedTask): StateRecord | undefined {
    const plan = t.fast!;
    const pools = t.provider === undefined ? this.allPools : this.pools.get(t.provider);
    if (!pools || pools.length === 0) return undefined;
    const accept = (r: StateRecord) => feasible(t, r);
    const best = (set: readonly Pool[]): StateRecord | undefined => {
      let win: StateRecord | undefined;
      for (const p of set) {
        const ix = p.index(plan.primary, plan.tieOther);
        if (ix.size === 0) continue;
        const r = ix.first(t.cpu, t.memory, accept);
        if (r && (!win || ix.compare(r, win) < 0)) win = r;
      }
      return win;
    };
    if (!plan.spreadAz || t.group === '' || pools.length === 1) return best(pools);
    // Spread: zones in order of the group's task count; the first level with a fit wins.
    const levels = pools.map((p) => ({ p, n: this.state.zoneCount(t.group, p.az) }));
    levels.sort((a, b) => a.n - b.n);
    for (let i = 0; i < levels.length;) {
      let j = i;
      while (j < levels.length && levels[j]!.n === levels[i]!.n) j++;
      const r = best(levels.slice(i, j).map((x) => x.p));
      if (r) return r;
      i = j;
    }
    return undefined;
  }
}
