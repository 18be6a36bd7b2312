// Vector bin packing for scale-out: put items (cpu, memory, network interfaces, host ports,
// distinctInstance groups) into as few and as cheap bins (instance types) as possible.
//
//   1. Rank types by a lower-bound cost: price × max(⌈Σcpu/C⌉, ⌈Σmem/M⌉, ⌈Σeni/E⌉, largest
//      distinctInstance group), plus the cheapest type for each item too big for it.
//   2. For the three best-ranked types pack with dot product, for the best two also with FFD
//      and (when bins hold at most ~32 items) relax-and-repair, and keep the best:
//      a. dot product (Panigrahy et al., Heuristics for Vector Bin Packing): bin by bin, the
//         item whose normalised (cpu, memory, eni) vector best matches what the bin has left;
//         identical items are grouped, so a step costs O(distinct shapes), not O(items);
//      b. first-fit-decreasing by the larger normalised dimension;
//      c. relax and repair: first fit by the BINDING resource (the one with the larger
//         lower bound) while the other may overflow a bin by up to 30% / 100%, then repair
//         every overflow by swapping items between bins (a smaller item of the other resource
//         for a larger one, both bins staying within capacity), evicting what cannot be
//         swapped and first-fitting the evicted items. Memory-only packing of realistic task
//         mixes is nearly perfect; this keeps that and fixes the CPU it ignored.
//   3. Right-size: every bin becomes the cheapest type that holds what it got.
//   4. Local search: empty the least-loaded bins into the others' free space (best fit), and
//      merge two small bins when one type holding both costs no more.
// The cheapest result wins (fewer instances on a tie). Single-task mode skips all that: one
// bin per item, the cheapest type that holds it.

export interface PackItem {
  id: string;
  cpu: number;
  mem: number;
  /** 1 for an awsvpc task (it takes a network interface). */
  eni: number;
  tcp: readonly string[];
  udp: readonly string[];
  /** distinctInstance group ('' when the item has no such constraint). */
  distinct: string;
  /** The item's task group ('' or unset for none): a distinctInstance item never shares a bin with its group. */
  group?: string;
}

export interface BinType<T = unknown> {
  name: string;
  cpu: number;
  mem: number;
  eni: number;
  price: number;
  ref: T;
}

export interface Bin<T = unknown> {
  type: BinType<T>;
  items: PackItem[];
  cpu: number;
  mem: number;
  eni: number;
  tcp: Set<string>;
  udp: Set<string>;
  /** Groups of the distinctInstance items in the bin. */
  groups: Set<string>;
  /** Every item's group → how many. */
  members: Map<string, number>;
}

export function newBin<T>(type: BinType<T>): Bin<T> {
  return { type, items: [], cpu: 0, mem: 0, eni: 0, tcp: new Set(), udp: new Set(), groups: new Set(), members: new Map() };
}

export function typeHolds(t: BinType, cpu: number, mem: number, eni: number): boolean {
  return cpu <= t.cpu && mem <= t.mem && eni <= t.eni;
}

function conflicts(b: Bin, it: PackItem): boolean {
  if (it.distinct !== '' && (b.members.get(it.distinct) ?? 0) > 0) return true;
  if (it.group && b.groups.has(it.group)) return true;
  for (const p of it.tcp) if (b.tcp.has(p)) return true;
  for (const p of it.udp) if (b.udp.has(p)) return true;
  return false;
}

export function fitsBin(b: Bin, it: PackItem): boolean {
  return typeHolds(b.type, b.cpu + it.cpu, b.mem + it.mem, b.eni + it.eni) && !conflicts(b, it);
}

export function addToBin(b: Bin, it: PackItem): void {
  b.items.push(it);
  b.cpu += it.cpu;
  b.mem += it.mem;
  b.eni += it.eni;
  for (const p of it.tcp) b.tcp.add(p);
  for (const p of it.udp) b.udp.add(p);
  if (it.distinct !== '') b.groups.add(it.distinct);
  if (it.group) b.members.set(it.group, (b.members.get(it.group) ?? 0) + 1);
}

function rebuild<T>(type: BinType<T>, items: readonly PackItem[]): Bin<T> {
  const b = newBin(type);
  for (const it of items) addToBin(b, it);
  return b;
}

/** The cheapest of `types` (sorted cheapest first) that holds the amounts, if any. */
export function cheapestHolding<T>(types: readonly BinType<T>[], cpu: number, mem: number, eni: number): BinType<T> | undefined {
  for (const t of types) if (typeHolds(t, cpu, mem, eni)) return t;
  return undefined;
}

export function binsCost(bins: readonly Bin[]): number {
  let c = 0;
  for (const b of bins) c += b.type.price;
  return c;
}

function load(b: Bin): number {
  const t = b.type;
  return Math.max(b.cpu / t.cpu, b.mem / t.mem, t.eni > 0 ? b.eni / t.eni : 0);
}

// ---------------------------------------------------------------------------------------
// Greedy packing with one main type.

interface Shape { cpu: number; mem: number; eni: number; items: PackItem[]; sample: PackItem; oversize: boolean }

/** Groups that matter for conflicts: those with a distinctInstance item. */
function distinctGroups(items: readonly PackItem[]): Set<string> {
  const g = new Set<string>();
  for (const it of items) if (it.distinct !== '') g.add(it.distinct);
  return g;
}

function shapesOf(items: readonly PackItem[]): Shape[] {
  const m = new Map<string, Shape>();
  const dg = distinctGroups(items);
  for (const it of items) {
    const g = it.group && dg.has(it.group) ? it.group : '';
    const key = `${it.cpu}|${it.mem}|${it.eni}|${it.tcp.join(',')}|${it.udp.join(',')}|${it.distinct}|${g}`;
    let s = m.get(key);
    if (!s) { s = { cpu: it.cpu, mem: it.mem, eni: it.eni, items: [], sample: it, oversize: false }; m.set(key, s); }
    s.items.push(it);
  }
  // Pop from the end: reverse so the input order is kept within a shape.
  for (const s of m.values()) s.items.reverse();
  return [...m.values()];
}

/** Bin-centric dot-product packing; `main` for ordinary bins, the cheapest fitting type for items too big for it. */
export function packWithType<T>(items: readonly PackItem[], main: BinType<T>, types: readonly BinType<T>[]): Bin<T>[] {
  const shapes = shapesOf(items);
  for (const s of shapes) s.oversize = !typeHolds(main, s.cpu, s.mem, s.eni);
  shapes.sort((a, b) => (b.cpu / main.cpu + b.mem / main.mem) - (a.cpu / main.cpu + a.mem / main.mem));
  const active = shapes.slice();
  const bins: Bin<T>[] = [];
  let left = items.length;
  while (left > 0) {
    const big = active.find((s) => s.oversize);
    const type = big ? cheapestHolding(types, big.cpu, big.mem, big.eni) : main;
    if (!type) throw new Error(`packWithType: no type holds item ${big!.sample.id}`);
    const bin = newBin(type);
    const C = type.cpu;
    const M = type.mem;
    const E = type.eni > 0 ? type.eni : 1;
    for (;;) {
      const rc = C - bin.cpu;
      const rm = M - bin.mem;
      const re = type.eni - bin.eni;
      let best = -1;
      let bestScore = -Infinity;
      for (let i = 0; i < active.length; i++) {
        const s = active[i]!;
        if (s.cpu > rc || s.mem > rm || s.eni > re) continue;
        if (bin.items.length > 0 && conflicts(bin, s.items[s.items.length - 1]!)) continue;
        const score = (s.cpu / C) * (rc / C) + (s.mem / M) * (rm / M) + (s.eni / E) * (re / E);
        if (score > bestScore) { bestScore = score; best = i; }
      }
      if (best < 0) break;
      const s = active[best]!;
      addToBin(bin, s.items.pop()!);
      left--;
      if (s.items.length === 0) active.splice(best, 1);
    }
    if (bin.items.length === 0) throw new Error('packWithType: an item fits no bin');
    bins.push(bin);
  }
  return bins;
}

/** Every bin becomes the cheapest type that holds its contents. */
export function rightSize<T>(bins: Bin<T>[], types: readonly BinType<T>[]): void {
  for (let i = 0; i < bins.length; i++) {
    const b = bins[i]!;
    const t = cheapestHolding(types, b.cpu, b.mem, b.eni);
    if (t && t.price < b.type.price) bins[i] = { ...b, type: t };
  }
}

/**
 * Local search: try to empty the least-loaded bins into the free space of the others, then
 * merge pairs of small bins into one type when that costs no more. `tries` bounds the work.
 */
export function improve<T>(bins: Bin<T>[], types: readonly BinType<T>[], tries = 40): Bin<T>[] {
  let out = bins.slice();
  // 1. Empty a bin.
  const order = out.slice().sort((a, b) => load(a) - load(b));
  const gone = new Set<Bin<T>>();
  for (const victim of order.slice(0, tries)) {
    if (gone.has(victim)) continue;
    const moves: { to: Bin<T>; it: PackItem }[] = [];
    const items = victim.items.slice().sort((a, b) => (b.cpu + b.mem) - (a.cpu + a.mem));
    let ok = true;
    for (const it of items) {
      let best: Bin<T> | undefined;
      let bestSlack = Infinity;
      for (const b of out) {
        if (b === victim || gone.has(b) || !fitsBin(b, it)) continue;
        const slack = (b.type.cpu - b.cpu - it.cpu) / b.type.cpu + (b.type.mem - b.mem - it.mem) / b.type.mem;
        if (slack < bestSlack) { bestSlack = slack; best = b; }
      }
      if (!best) { ok = false; break; }
      addToBin(best, it);
      moves.push({ to: best, it });
    }
    if (ok) {
      gone.add(victim);
    } else {
      // Roll back: rebuild the receiving bins without the moved items.
      const touched = new Map<Bin<T>, PackItem[]>();
      for (const m of moves) { const l = touched.get(m.to) ?? []; l.push(m.it); touched.set(m.to, l); }
      for (const [b, its] of touched) {
        const drop = new Set(its);
        const fresh = rebuild(b.type, b.items.filter((x) => !drop.has(x)));
        Object.assign(b, fresh);
      }
    }
  }
  out = out.filter((b) => !gone.has(b));
  // 2. Merge two small bins into one type that costs no more than both.
  for (let round = 0; round < tries; round++) {
    const small = out.slice().sort((a, b) => load(a) - load(b)).slice(0, 8);
    let merged = false;
    for (let i = 0; i < small.length && !merged; i++) {
      for (let j = i + 1; j < small.length && !merged; j++) {
        const a = small[i]!;
        const b = small[j]!;
        const t = cheapestHolding(types, a.cpu + b.cpu, a.mem + b.mem, a.eni + b.eni);
        if (!t || t.price > a.type.price + b.type.price) continue;
        const c = rebuild(t, a.items);
        if (!b.items.every((it) => { if (!fitsBin(c, it)) return false; addToBin(c, it); return true; })) continue;
        out = out.filter((x) => x !== a && x !== b);
        out.push(c);
        merged = true;
      }
    }
    if (!merged) break;
  }
  rightSize(out, types);
  return out;
}

function lowerBoundCost<T>(items: readonly PackItem[], t: BinType<T>, types: readonly BinType<T>[]): number {
  let cpu = 0, mem = 0, eni = 0, extra = 0;
  const groups = new Map<string, number>();
  for (const it of items) {
    if (!typeHolds(t, it.cpu, it.mem, it.eni)) {
      extra += cheapestHolding(types, it.cpu, it.mem, it.eni)?.price ?? Infinity;
      continue;
    }
    cpu += it.cpu; mem += it.mem; eni += it.eni;
    if (it.distinct !== '') groups.set(it.distinct, (groups.get(it.distinct) ?? 0) + 1);
  }
  let n = Math.max(Math.ceil(cpu / t.cpu), Math.ceil(mem / t.mem), t.eni > 0 ? Math.ceil(eni / t.eni) : eni > 0 ? Infinity : 0);
  for (const g of groups.values()) n = Math.max(n, g);
  return n * t.price + extra;
}

/** Drops types another one beats on every dimension for no more money (keeps order). */
export function undominated<T>(types: readonly BinType<T>[]): BinType<T>[] {
  const dom = (a: BinType<T>, b: BinType<T>) => a.cpu >= b.cpu && a.mem >= b.mem && a.eni >= b.eni && a.price <= b.price;
  return types.filter((b, j) => !types.some((a, i) => i !== j && dom(a, b) && (!dom(b, a) || i < j)));
}

// ---------------------------------------------------------------------------------------
// Relax and repair (one type; every item fits it alone).

/** Bins a repair may look at to fix one overflow before it evicts an item instead. */
const SWAP_BUDGET = 20_000;

/** Packs by the binding resource with the other relaxed by `over`, then repairs overflows. */
export function relaxAndRepair<T>(items: readonly PackItem[], type: BinType<T>, over: number): Bin<T>[] {
  let sc = 0, sm = 0;
  for (const it of items) { sc += it.cpu; sm += it.mem; }
  const memBinds = sm / type.mem >= sc / type.cpu;
  const relaxed: BinType<T> = memBinds ? { ...type, cpu: type.cpu * (1 + over) } : { ...type, mem: type.mem * (1 + over) };
  const bind = (x: { cpu: number; mem: number }) => (memBinds ? x.mem : x.cpu);
  const other = (x: { cpu: number; mem: number }) => (memBinds ? x.cpu : x.mem);
  const capB = memBinds ? type.mem : type.cpu;
  const capO = memBinds ? type.cpu : type.mem;
  const sorted = items.slice().sort((a, b) => bind(b) - bind(a) || other(b) - other(a));
  const bins = firstFit(sorted, relaxed);
  for (const b of bins) b.type = type;

  // Plain items (no ports, no distinctInstance group) can be swapped between bins that keep
  // within their network interfaces.
  const dg = distinctGroups(items);
  const plain = (it: PackItem) => it.tcp.length === 0 && it.udp.length === 0 && it.distinct === '' && !(it.group && dg.has(it.group));
  const key = (it: PackItem) => `${it.cpu}|${it.mem}|${it.eni}`;
  // Per shape: the bins holding a plain item of it, scanned circularly from where the last
  // swap partner was found (bins just passed over are unlikely to fit soon after).
  const holders = new Map<string, { list: Bin<T>[]; cursor: number }>();
  const countIn = new Map<Bin<T>, Map<string, number>>();
  const count = (b: Bin<T>, k: string) => countIn.get(b)?.get(k) ?? 0;
  const track = (b: Bin<T>, it: PackItem, d: number) => {
    if (!plain(it)) return;
    const k = key(it);
    let m = countIn.get(b);
    if (!m) { m = new Map(); countIn.set(b, m); }
    const n = (m.get(k) ?? 0) + d;
    m.set(k, n);
    if (n === 1 && d > 0) {
      let h = holders.get(k);
      if (!h) { h = { list: [], cursor: 0 }; holders.set(k, h); }
      h.list.push(b);
    }
  };
  for (const b of bins) for (const it of b.items) track(b, it, 1);
  const shapes = [...new Map(items.filter(plain).map((it) => [key(it), it] as const)).values()].sort((a, b) => other(a) - other(b));
  const leftovers: PackItem[] = [];
  const remove = (b: Bin<T>, it: PackItem) => {
    b.items.splice(b.items.indexOf(it), 1);
    b.cpu -= it.cpu; b.mem -= it.mem; b.eni -= it.eni;
    track(b, it, -1);
  };
  const put = (b: Bin<T>, it: PackItem) => { b.items.push(it); b.cpu += it.cpu; b.mem += it.mem; b.eni += it.eni; track(b, it, 1); };
  for (const X of bins) {
    while (other(X) > capO) {
      let swapped = false;
      // Bounded: a swap partner is usually found among the first bins looked at.
      let budget = SWAP_BUDGET;
      const cands = X.items.filter(plain).sort((a, b) => other(b) - other(a));
      // Pass 0: swap for an item of the same binding size (the partner bin only needs room in
      // the other resource, which most have). Pass 1: any smaller one, within the budget.
      search: for (let pass = 0; pass < 2; pass++) {
        for (const a of cands) {
          for (const s of shapes) {
            if (other(s) >= other(a)) break;
            if ((pass === 0) !== (bind(s) === bind(a))) continue;
            if (X.eni - a.eni + s.eni > type.eni || bind(X) - bind(a) + bind(s) > capB) continue;
            const ks = key(s);
            const h = holders.get(ks);
            if (!h) continue;
            const n = h.list.length;
            for (let step = 0; step < n; step++) {
              if (--budget < 0) break search;
              const at = (h.cursor + step) % n;
              const Y = h.list[at]!;
              if (Y === X || count(Y, ks) === 0 || other(Y) - other(s) + other(a) > capO || bind(Y) - bind(s) + bind(a) > capB
                || Y.eni - s.eni + a.eni > type.eni) continue;
              h.cursor = at;
              const b = Y.items.find((i) => plain(i) && key(i) === ks)!;
              remove(Y, b); remove(X, a); put(Y, a); put(X, b);
              swapped = true;
              break search;
            }
          }
        }
      }
      if (!swapped) {
        const a = X.items.slice().sort((p, q) => other(q) - other(p))[0]!;
        remove(X, a);
        // Rebuild the conflict sets without it.
        const fresh = rebuild(type, X.items);
        X.tcp = fresh.tcp; X.udp = fresh.udp; X.groups = fresh.groups; X.members = fresh.members;
        leftovers.push(a);
      }
    }
  }
  const out = bins.filter((b) => b.items.length > 0);
  if (leftovers.length === 0) return out;
  const size = (it: PackItem) => Math.max(it.cpu / type.cpu, it.mem / type.mem);
  for (const it of leftovers.sort((a, b) => size(b) - size(a))) {
    let home = out.find((b) => fitsBin(b, it));
    if (!home) { home = newBin(type); out.push(home); }
    addToBin(home, it);
  }
  return out;
}

export interface PackOptions {
  /** One item per bin (single-task mode). */
  singleTask?: boolean;
  /** How many best-ranked main types to pack fully (default 3). */
  candidates?: number;
  /** Local-search effort (default 40). */
  tries?: number;
}

/**
 * Packs every item; each must fit at least one type alone. `types` are sorted cheapest
 * first. Returns the bins (their type, items and totals).
 */
export function packItems<T>(items: readonly PackItem[], typesIn: readonly BinType<T>[], o: PackOptions = {}): Bin<T>[] {
  if (items.length === 0) return [];
  const types = undominated(typesIn).sort((a, b) => a.price - b.price);
  if (o.singleTask) {
    return items.map((it) => {
      const t = cheapestHolding(types, it.cpu, it.mem, it.eni);
      if (!t) throw new Error(`packItems: no type holds item ${it.id}`);
      return rebuild(t, [it]);
    });
  }
  const ranked = types
    .map((t) => ({ t, lb: lowerBoundCost(items, t, types) }))
    .filter((x) => Number.isFinite(x.lb))
    .sort((a, b) => a.lb - b.lb || b.t.cpu - a.t.cpu);
  let best: Bin<T>[] | undefined;
  let bestCost = Infinity;
  const consider = (bins: Bin<T>[]) => {
    rightSize(bins, types);
    const cost = binsCost(bins);
    if (cost < bestCost - 1e-9 || (Math.abs(cost - bestCost) <= 1e-9 && bins.length < best!.length)) { best = bins; bestCost = cost; }
  };
  ranked.slice(0, o.candidates ?? 3).forEach(({ t }, rank) => {
    consider(packWithType(items, t, types));
    if (rank >= 2 || !items.every((it) => typeHolds(t, it.cpu, it.mem, it.eni))) return;
    consider(firstFitDecreasing(items, t));
    // Relax and repair pays with few items per bin; with many, dot product is already close
    // to the bound and the repair's swap search grows with the bin size.
    if (items.length / Math.max(1, lowerBoundCost(items, t, types) / t.price) > 32) return;
    consider(relaxAndRepair(items, t, 0.3));
    consider(relaxAndRepair(items, t, 1));
  });
  if (!best) throw new Error('packItems: no instance type holds the items');
  return improve(best, types, o.tries ?? 40);
}

// ---------------------------------------------------------------------------------------
// Baselines (the benchmark compares against them): first-fit and first-fit-decreasing with
// a single type. First fit finds the first open bin with room through a segment tree of the
// bins' largest free cpu and memory, so it is exactly first fit, in O(log bins) per item.

export function firstFit<T>(items: readonly PackItem[], type: BinType<T>): Bin<T>[] {
  const bins: Bin<T>[] = [];
  let cap = 1024;
  let fc = new Float64Array(2 * cap).fill(-1);
  let fm = new Float64Array(2 * cap).fill(-1);
  let fe = new Float64Array(2 * cap).fill(-1);
  const pull = (n: number) => {
    fc[n] = Math.max(fc[2 * n]!, fc[2 * n + 1]!);
    fm[n] = Math.max(fm[2 * n]!, fm[2 * n + 1]!);
    fe[n] = Math.max(fe[2 * n]!, fe[2 * n + 1]!);
  };
  const set = (i: number) => {
    let n = i + cap;
    fc[n] = type.cpu - bins[i]!.cpu;
    fm[n] = type.mem - bins[i]!.mem;
    fe[n] = type.eni - bins[i]!.eni;
    for (n >>= 1; n >= 1; n >>= 1) pull(n);
  };
  const find = (n: number, it: PackItem): number => {
    if (fc[n]! < it.cpu || fm[n]! < it.mem || fe[n]! < it.eni) return -1;
    if (n >= cap) {
      const i = n - cap;
      return i < bins.length && fitsBin(bins[i]!, it) ? i : -1;
    }
    const l = find(2 * n, it);
    return l >= 0 ? l : find(2 * n + 1, it);
  };
  for (const it of items) {
    let i = find(1, it);
    if (i < 0) {
      if (bins.length === cap) {
        const oc = fc, om = fm, oe = fe, old = cap;
        cap *= 2;
        fc = new Float64Array(2 * cap).fill(-1);
        fm = new Float64Array(2 * cap).fill(-1);
        fe = new Float64Array(2 * cap).fill(-1);
        for (let k = 0; k < old; k++) { fc[cap + k] = oc[old + k]!; fm[cap + k] = om[old + k]!; fe[cap + k] = oe[old + k]!; }
        for (let n = cap - 1; n >= 1; n--) pull(n);
      }
      bins.push(newBin(type));
      i = bins.length - 1;
    }
    addToBin(bins[i]!, it);
    set(i);
  }
  return bins;
}

/** First fit after sorting by the larger of the item's normalised cpu and memory, largest first. */
export function firstFitDecreasing<T>(items: readonly PackItem[], type: BinType<T>): Bin<T>[] {
  const size = (it: PackItem) => Math.max(it.cpu / type.cpu, it.mem / type.mem);
  return firstFit(items.slice().sort((a, b) => size(b) - size(a)), type);
}

/** max(⌈Σcpu/C⌉, ⌈Σmem/M⌉): no packing into bins of `type` can use fewer. */
export function packingLowerBound(items: readonly PackItem[], type: BinType): number {
  let cpu = 0, mem = 0;
  for (const it of items) { cpu += it.cpu; mem += it.mem; }
  return Math.max(Math.ceil(cpu / type.cpu), Math.ceil(mem / type.mem));
}
