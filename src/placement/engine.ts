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
import type { CompiledQuery } from './query.js';
import { referenceChoose, type Choice } from './reference.js';
import { ClusterState, type StateRecord } from './state.js';
import type { InstanceSnapshot, PlacementDecision, TaskRequest } from './types.js';

type Indexes = (BinIndex<StateRecord> | undefined)[];

class Pool {
  readonly members = new Set<StateRecord>();
  /** [cpu, cpu+mem tie, memory, memory+cpu tie], built on first use. */
  private readonly indexes: Indexes = [undefined, undefined, undefined, undefined];
  /** The same, over only the members a static memberOf query matches (queries[i] → sets[i]). */
  private readonly queries: CompiledQuery[] = [];
  private readonly sets: Indexes[] = [];
  maxCpu = 0;
  maxMem = 0;

  constructor(readonly provider: string, readonly az: string) {}

  index(primary: 0 | 1, tieOther: boolean, q: CompiledQuery | undefined): BinIndex<StateRecord> {
    const k = primary * 2 + (tieOther ? 1 : 0);
    let set = this.indexes;
    if (q) {
      let i = this.queries.indexOf(q);
      if (i < 0) { i = this.queries.length; this.queries.push(q); this.sets.push([undefined, undefined, undefined, undefined]); }
      set = this.sets[i]!;
    }
    let ix = set[k];
    if (!ix) {
      ix = new BinIndex<StateRecord>(primary, tieOther, primary === 0 ? this.maxCpu : this.maxMem);
      for (const r of this.members) if (!q || matches(r, q)) ix.insert(r);
      set[k] = ix;
    }
    return ix;
  }

  insert(r: StateRecord): void {
    this.members.add(r);
    r.pool = this;
    if (r.registeredCpu > this.maxCpu) this.maxCpu = r.registeredCpu;
    if (r.registeredMemory > this.maxMem) this.maxMem = r.registeredMemory;
    this.attach(r);
  }

  remove(r: StateRecord): void {
    this.members.delete(r);
    r.pool = undefined;
    this.detach(r);
  }

  /** Puts a member back into the indexes after its numbers changed. */
  attach(r: StateRecord): void {
    for (let k = 0; k < 4; k++) this.indexes[k]?.insert(r);
    for (let i = 0; i < this.queries.length; i++) {
      if (!matches(r, this.queries[i]!)) continue;
      const set = this.sets[i]!;
      for (let k = 0; k < 4; k++) set[k]?.insert(r);
    }
  }

  /** Takes a member out of the indexes before its numbers change. */
  detach(r: StateRecord): void {
    for (let k = 0; k < 4; k++) this.indexes[k]?.remove(r);
    for (let i = 0; i < this.queries.length; i++) {
      if (!matches(r, this.queries[i]!)) continue;
      const set = this.sets[i]!;
      for (let k = 0; k < 4; k++) set[k]?.remove(r);
    }
  }
}

/** A static query's answer for an instance, computed once (it cannot change). */
function matches(r: StateRecord, q: CompiledQuery): boolean {
  let m = r.answers;
  if (!m) { m = new Map(); r.answers = m; }
  let v = m.get(q);
  if (v === undefined) { v = q(r); m.set(q, v); }
  return v;
}

function accept(this: void, t: PreparedTask, r: StateRecord): boolean {
  return feasible(t, r);
}

const CORDONED = 'CORDONED';

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
  private readonly cordoned = new Map<StateRecord, string>();
  /** Placements served by the index and by the reference scan (observability). */
  readonly stats = { indexed: 0, scanned: 0, failed: 0, poolQueries: 0 };

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

  private lastRequest: TaskRequest | undefined;
  private lastPrepared: PreparedTask | undefined;

  /** prepareTask, remembering the last request (place() then reserve() prepares once). */
  private prepare(request: TaskRequest): PreparedTask {
    if (request !== this.lastRequest) {
      this.lastPrepared = prepareTask(request);
      this.lastRequest = request;
    }
    return this.lastPrepared!;
  }

  /** Decides where the task goes without changing anything. */
  place(request: TaskRequest): PlacementDecision {
    return this.decision(this.choose(this.prepare(request)));
  }

  /** Takes the task's resources out of the instance (after a successful place()). */
  reserve(request: TaskRequest, instanceId: string): void {
    const r = this.state.byId.get(instanceId);
    if (!r) throw new Error(`reserve: unknown instance ${instanceId}`);
    this.apply(this.prepare(request), r);
  }

  /** place() then reserve() on success. */
  placeAndReserve(request: TaskRequest): PlacementDecision {
    const t = this.prepare(request);
    const c = this.choose(t);
    if ('rec' in c) this.apply(t, c.rec);
    return this.decision(c);
  }

  /** Gives the task's resources back (it stopped, or a what-if placement is undone). */
  release(request: TaskRequest, instanceId: string): void {
    const r = this.state.byId.get(instanceId);
    if (!r) throw new Error(`release: unknown instance ${instanceId}`);
    const pool = r.pool as Pool | undefined;
    pool?.detach(r);
    this.state.release(this.prepare(request), r);
    if (!pool) { if (indexable(r)) this.poolFor(r).insert(r); return; }
    if (indexable(r)) pool.attach(r); else { pool.members.delete(r); r.pool = undefined; }
  }

  /** Takes an instance out of consideration (as if it were not ACTIVE) until uncordon(). */
  cordon(instanceId: string): void {
    const r = this.state.byId.get(instanceId);
    if (!r || r.status === CORDONED) return;
    const pool = r.pool as Pool | undefined;
    pool?.remove(r);
    this.cordoned.set(r, r.status);
    this.state.setStatus(r, CORDONED);
  }

  uncordon(instanceId: string): void {
    const r = this.state.byId.get(instanceId);
    const was = r && this.cordoned.get(r);
    if (!r || was === undefined) return;
    this.cordoned.delete(r);
    this.state.setStatus(r, was);
    if (indexable(r)) this.poolFor(r).insert(r);
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
    pool?.detach(r);
    this.state.apply(t, r);
    if (!pool) { if (indexable(r)) this.poolFor(r).insert(r); return; }
    if (indexable(r)) pool.attach(r); else { pool.members.delete(r); r.pool = undefined; }
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

  /** Reused by fastChoose (no allocation per placement). */
  private order = new Int32Array(8);
  private counts = new Float64Array(8);

  /** The best instance over pools[order[from..to)], in bin-packing order. */
  private bestOf(t: PreparedTask, pools: readonly Pool[], from: number, to: number, ordered: boolean): StateRecord | undefined {
    const plan = t.fast!;
    let win: StateRecord | undefined;
    let winIx: BinIndex<StateRecord> | undefined;
    for (let k = from; k < to; k++) {
      const p = pools[ordered ? this.order[k]! : k]!;
      const ix = p.index(plan.primary, plan.tieOther, t.indexQuery);
      if (ix.size === 0) continue;
      this.stats.poolQueries++;
      const r = ix.first(t.cpu, t.memory, t, accept);
      if (r && (!win || ix.compare(r, win) < 0)) { win = r; winIx = ix; }
    }
    return winIx ? win : undefined;
  }

  private fastChoose(t: PreparedTask): StateRecord | undefined {
    const plan = t.fast!;
    const pools = t.provider === undefined ? this.allPools : this.pools.get(t.provider);
    if (!pools || pools.length === 0) return undefined;
    const zones = plan.spreadAz && t.group !== '' && pools.length > 1 ? this.state.groupZones.get(t.group) : undefined;
    if (!zones) return this.bestOf(t, pools, 0, pools.length, false);
    // Spread: zones by the group's task count, lowest first; the first level with a fit wins.
    const n = pools.length;
    if (this.order.length < n) { this.order = new Int32Array(2 * n); this.counts = new Float64Array(2 * n); }
    const order = this.order;
    const counts = this.counts;
    for (let i = 0; i < n; i++) {
      const c = zones.get(pools[i]!.az) ?? 0;
      counts[i] = c;
      let j = i;
      while (j > 0 && counts[order[j - 1]!]! > c) { order[j] = order[j - 1]!; j--; }
      order[j] = i;
    }
    for (let i = 0; i < n;) {
      let j = i;
      const level = counts[order[i]!]!;
      while (j < n && counts[order[j]!] === level) j++;
      const r = this.bestOf(t, pools, i, j, true);
      if (r) return r;
      i = j;
    }
    return undefined;
  }
}
