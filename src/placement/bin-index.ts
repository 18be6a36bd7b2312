// An index of instances ordered for bin-packing: "the instance with the least remaining CPU
// (or memory) that still has at least c CPU units AND m MiB free", in O(log n) plus the
// candidates the full filters turn down.
//
// Layout: the primary free resource is bucketed (q units per leaf) over a segment tree whose
// nodes hold the largest free amount of the OTHER resource in their range, so a query skips
// every range where nothing has enough of it. Inside a leaf, instances are kept sorted by the
// exact order placement defines: primary free, then (tieOther) the other free, then snapshot
// position. Updates take the instance out before its numbers change and put it back after.

export interface Binnable {
  readonly idx: number;
  cpuFree: number;
  memFree: number;
}

const MAX_LEAVES = 2048;

export class BinIndex<R extends Binnable> {
  private readonly leaves: number;
  private readonly q: number;
  private readonly buckets: R[][];
  private readonly tree: Float64Array;
  /** Per leaf: how many of its instances have the leaf's largest other-resource amount. */
  private readonly maxCount: Int32Array;
  size = 0;

  /**
   * @param primary 0: order by free CPU; 1: by free memory
   * @param tieOther break ties on the primary resource by the other one (else by position)
   * @param maxKey the largest free amount expected (registered capacity); larger ones still work
   */
  constructor(readonly primary: 0 | 1, readonly tieOther: boolean, maxKey: number) {
    this.q = Math.max(1, Math.ceil((Math.max(0, maxKey) + 1) / MAX_LEAVES));
    let l = 1;
    while (l * this.q <= maxKey) l <<= 1;
    this.leaves = l;
    this.buckets = Array.from({ length: l }, () => []);
    this.tree = new Float64Array(2 * l).fill(-Infinity);
    this.maxCount = new Int32Array(l);
  }

  private p(r: R): number { return this.primary === 0 ? r.cpuFree : r.memFree; }
  private s(r: R): number { return this.primary === 0 ? r.memFree : r.cpuFree; }

  private leafOf(v: number): number {
    if (v <= 0) return 0;
    const l = Math.floor(v / this.q);
    return l >= this.leaves ? this.leaves - 1 : l;
  }

  /** Placement order: negative when a comes first. */
  compare(a: R, b: R): number {
    return this.p(a) - this.p(b) || (this.tieOther ? this.s(a) - this.s(b) : 0) || a.idx - b.idx;
  }

  private fix(leaf: number): void {
    const t = this.tree;
    let i = (leaf + this.leaves) >> 1;
    while (i >= 1) {
      const v = t[2 * i]! > t[2 * i + 1]! ? t[2 * i]! : t[2 * i + 1]!;
      if (t[i] === v) break;
      t[i] = v;
      i >>= 1;
    }
  }

  insert(r: R): void {
    const leaf = this.leafOf(this.p(r));
    const b = this.buckets[leaf]!;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compare(b[mid]!, r) < 0) lo = mid + 1; else hi = mid;
    }
    b.splice(lo, 0, r);
    this.size++;
    const node = leaf + this.leaves;
    const s = this.s(r);
    if (s > this.tree[node]!) { this.tree[node] = s; this.maxCount[leaf] = 1; this.fix(leaf); }
    else if (s === this.tree[node]) this.maxCount[leaf]!++;
  }

  /** Removes r; its free amounts must be the ones it was inserted with. */
  remove(r: R): void {
    const leaf = this.leafOf(this.p(r));
    const b = this.buckets[leaf]!;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compare(b[mid]!, r) < 0) lo = mid + 1; else hi = mid;
    }
    if (b[lo] !== r) throw new Error(`BinIndex: instance ${r.idx} is not where its numbers say`);
    b.splice(lo, 1);
    this.size--;
    const node = leaf + this.leaves;
    if (this.s(r) === this.tree[node] && --this.maxCount[leaf]! === 0) {
      let m = -Infinity;
      let n = 0;
      for (const x of b) { const v = this.s(x); if (v > m) { m = v; n = 1; } else if (v === m) n++; }
      this.tree[node] = m;
      this.maxCount[leaf] = n;
      this.fix(leaf);
    }
  }

  /** The first leaf ≥ from whose instances include one with at least m of the other resource. */
  private nextLeaf(from: number, m: number): number {
    const t = this.tree;
    const L = this.leaves;
    if (from >= L) return -1;
    let i = from + L;
    if (t[i]! < m) {
      for (;;) {
        while (i & 1) { i >>= 1; if (i === 0) return -1; }
        i++;
        if (t[i]! >= m) break;
      }
      while (i < L) { i <<= 1; if (t[i]! < m) i++; }
    }
    return i - L;
  }

  /**
   * The first instance in placement order with primary ≥ c, other ≥ m and accept(ctx, r) true.
   * `cpu`/`mem` are the task's needs; accept runs the full filters on each candidate.
   */
  first<C>(cpu: number, mem: number, ctx: C, accept: (ctx: C, r: R) => boolean): R | undefined {
    const c = this.primary === 0 ? cpu : mem;
    const m = this.primary === 0 ? mem : cpu;
    let leaf = this.leafOf(c);
    for (;;) {
      leaf = this.nextLeaf(leaf, m);
      if (leaf < 0) return undefined;
      const b = this.buckets[leaf]!;
      let lo = 0;
      let hi = b.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.p(b[mid]!) < c) lo = mid + 1; else hi = mid;
      }
      for (let i = lo; i < b.length; i++) {
        const r = b[i]!;
        if (this.s(r) < m) continue;
        if (accept(ctx, r)) return r;
      }
      leaf++;
    }
  }
}
