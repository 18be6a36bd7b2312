// Capacity provider strategies: shape rules shared by clusters, RunTask and services.
import { invalidParameter } from '../api/errors.js';

export interface StrategyItem { capacityProvider: string; weight?: number; base?: number }

export const MAX_STRATEGY_ITEMS = 20;

export function validateStrategy(items: StrategyItem[], param: string): void {
  if (items.length > MAX_STRATEGY_ITEMS) {
    throw invalidParameter(`${param} can contain at most ${MAX_STRATEGY_ITEMS} capacity providers; it has ${items.length}.`);
  }
  const seen = new Set<string>();
  let withBase = 0;
  for (const item of items) {
    if (seen.has(item.capacityProvider)) throw invalidParameter(`${param} lists capacity provider '${item.capacityProvider}' more than once.`);
    seen.add(item.capacityProvider);
    if ((item.base ?? 0) > 0) withBase++;
  }
  if (withBase > 1) throw invalidParameter(`Only one capacity provider in ${param} can have a base defined; ${withBase} do.`);
  if (items.length > 1 && !items.some((i) => (i.weight ?? 0) > 0)) {
    throw invalidParameter(`When ${param} lists more than one capacity provider, at least one must have a weight greater than zero.`);
  }
}

/** The stored form: AWS echoes base and weight as numbers. */
export function normalizeStrategy(items: StrategyItem[]): Required<StrategyItem>[] {
  return items.map((i) => ({ capacityProvider: i.capacityProvider, weight: i.weight ?? 0, base: i.base ?? 0 }));
}
