// Capacity provider strategy splitting: which provider each new task goes to.
// (The shape rules — at most 20 entries, one base, ranges — live in src/ecs/strategy.ts.)
//
// ECS's algorithm: `base` tasks go to the provider that has a base first; after that, tasks
// follow the weights. Berth assigns one task at a time (so a service's existing tasks count):
//   1. a provider below its base gets the task;
//   2. otherwise the provider with weight w > 0 and the largest w / (n + 1) wins, where n
//      counts its tasks beyond its base (D'Hondt: the running split stays as close to the
//      weight ratio as whole tasks allow); ties go to the larger weight, then strategy order;
//   3. when no provider has a weight (a single entry with weight 0), the base provider, or
//      else the first entry, takes everything.
// Example: A{base 1, weight 1}, B{weight 4}, 6 tasks → A, B, B, B, A, B (A 2, B 4).

export interface SplitItem { capacityProvider: string; weight?: number; base?: number }

/** The provider of each of `count` new tasks, in launch order. `current`: tasks each provider already runs. */
export function assignProviders(items: readonly SplitItem[], count: number, current: Readonly<Record<string, number>> = {}): string[] {
  if (items.length === 0 || count <= 0) return [];
  const n = items.map((i) => current[i.capacityProvider] ?? 0);
  const out: string[] = [];
  const anyWeight = items.some((i) => (i.weight ?? 0) > 0);
  for (let k = 0; k < count; k++) {
    let pick = items.findIndex((it, i) => (it.base ?? 0) > n[i]!);
    if (pick < 0) {
      if (!anyWeight) {
        pick = Math.max(0, items.findIndex((it) => (it.base ?? 0) > 0));
      } else {
        let best = -1;
        let bestScore = -1;
        for (let i = 0; i < items.length; i++) {
          const w = items[i]!.weight ?? 0;
          if (w <= 0) continue;
          const beyond = Math.max(0, n[i]! - (items[i]!.base ?? 0));
          const score = w / (beyond + 1);
          if (score > bestScore || (score === bestScore && w > (items[best]!.weight ?? 0))) { best = i; bestScore = score; }
        }
        pick = best;
      }
    }
    n[pick]!++;
    out.push(items[pick]!.capacityProvider);
  }
  return out;
}

/** How many of `count` new tasks each provider gets (providers with none are omitted). */
export function splitByStrategy(items: readonly SplitItem[], count: number, current: Readonly<Record<string, number>> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of assignProviders(items, count, current)) out[p] = (out[p] ?? 0) + 1;
  return out;
}
