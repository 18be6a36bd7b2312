// Request validation the API layer turns into InvalidParameterException.
import { queryProblem } from './query.js';
import type { PlacementConstraint } from './types.js';

export const MAX_CONSTRAINTS = 10;

/** What is wrong with a placementConstraints list, or undefined. */
export function placementConstraintsProblem(list: readonly PlacementConstraint[]): string | undefined {
  if (list.length > MAX_CONSTRAINTS) return `placementConstraints can have at most ${MAX_CONSTRAINTS} entries; it has ${list.length}.`;
  for (const c of list) {
    if (c.type === 'distinctInstance') {
      if (c.expression) return 'A distinctInstance placement constraint takes no expression.';
      continue;
    }
    if (c.type !== 'memberOf') return `Unknown placement constraint type '${c.type}'; use distinctInstance or memberOf.`;
    if (!c.expression) return 'A memberOf placement constraint needs an expression, e.g. attribute:ecs.availability-zone in [us-east-1a, us-east-1b].';
    const p = queryProblem(c.expression);
    if (p) return p;
  }
  return undefined;
}
