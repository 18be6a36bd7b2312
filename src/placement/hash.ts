// Seeded, replayable pseudo-randomness. Placement never calls Math.random: every random
// choice derives from the request (a task id), so a decision can be replayed exactly.

/** FNV-1a over UTF-16 code units, finished with murmur3's fmix32. */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A stable pseudo-random rank of `item` under `seed`: the same pair always gives the same number. */
export function seededRank(seed: string, item: string): number {
  return hash32(item, hash32(seed));
}

/** mulberry32: a small seeded generator (benchmarks and tests use it for reproducible inputs). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
