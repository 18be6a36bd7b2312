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

/**
 * The strategy a RunTask or a service uses: the one given, else the cluster's default, else
 * the cluster's only capacity provider. Every provider named must be the cluster's.
 */
export function effectiveStrategy(
  cluster: { clusterName: string; capacityProviders: readonly string[]; defaultCapacityProviderStrategy: readonly Required<StrategyItem>[] },
  ownProviders: readonly string[],
  given: StrategyItem[] | undefined,
): Required<StrategyItem>[] {
  if (given?.length) validateStrategy(given, 'capacityProviderStrategy');
  const items = given?.length ? normalizeStrategy(given) : [...cluster.defaultCapacityProviderStrategy];
  if (items.length === 0) {
    if (ownProviders.length === 1) return [{ capacityProvider: ownProviders[0]!, weight: 1, base: 0 }];
    throw invalidParameter(ownProviders.length === 0
      ? `Cluster '${cluster.clusterName}' has no capacity provider. Create one with CreateCapacityProvider --cluster ${cluster.clusterName} and a managedInstancesProvider.`
      : `Cluster '${cluster.clusterName}' has several capacity providers and no default strategy; pass capacityProviderStrategy, or set one with PutClusterCapacityProviders.`);
  }
  for (const i of items) {
    if (!cluster.capacityProviders.includes(i.capacityProvider)) {
      throw invalidParameter(`The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster: '${i.capacityProvider}'. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.`);
    }
  }
  return items;
}
