// Shared rules of the ECS API: resource names, ARNs and references, tags, pagination.
import { formatArn, parseArn, scopeKey, type Scope } from '../domain/arn.js';
import { accessDenied, clusterNotFound, invalidParameter } from '../api/errors.js';
import type { RequestContext } from '../api/context.js';

export interface Tag { key: string; value?: string }

export const NAME_PATTERN = /^[a-zA-Z0-9_-]{1,255}$/;

export function ecsArn(scope: Scope, resource: string): string {
  return formatArn({ partition: scope.partition, service: 'ecs', region: scope.region, account: scope.account, resource });
}

export const sk = scopeKey;

/** The IAM-style message AWS returns when a caller may not touch a resource. */
export function notAuthorized(ctx: RequestContext, resource: string): Error {
  const principalArn = `arn:${ctx.scope.partition}:${ctx.principal.principal}`;
  return accessDenied(`User: ${principalArn} is not authorized to perform: ${ctx.service}:${ctx.action} on resource: ${resource} because no resource-based policy allows the ${ctx.service}:${ctx.action} action`);
}

/**
 * Resolves a name-or-ARN reference of `resourceType` (e.g. `cluster`) to the part after
 * the type. ARNs of another account are refused; of another region or partition, invalid.
 */
export function resolveRef(ctx: RequestContext, ref: string, resourceType: string, paramName: string): string {
  if (!ref.startsWith('arn:')) return ref;
  const arn = parseArn(ref);
  if (!arn || arn.service !== 'ecs' || !arn.resource.startsWith(`${resourceType}/`)) {
    throw invalidParameter(`${paramName} '${ref}' is not a valid ${resourceType} ARN. Use a name or an ARN of the form arn:${ctx.scope.partition}:ecs:${ctx.scope.region}:${ctx.scope.account}:${resourceType}/NAME.`);
  }
  if (arn.account !== ctx.scope.account) throw notAuthorized(ctx, ref);
  if (arn.partition !== ctx.scope.partition || arn.region !== ctx.scope.region) {
    throw invalidParameter(`${paramName} '${ref}' is in region ${arn.region} (partition ${arn.partition}), but the request was signed for ${ctx.scope.region}; resources of another region are not visible here.`);
  }
  return arn.resource.slice(resourceType.length + 1);
}

/** Resolves a cluster reference; the default cluster when omitted. */
export function clusterName(ctx: RequestContext, ref: string | undefined): string {
  if (ref === undefined || ref === '') return 'default';
  const name = resolveRef(ctx, ref, 'cluster', 'cluster');
  if (!NAME_PATTERN.test(name)) throw clusterNotFound('Cluster not found.');
  return name;
}

// Pagination -----------------------------------------------------------------------

export function pageSize(maxResults: number | undefined, max: number, dflt = max): number {
  if (maxResults === undefined) return dflt;
  if (maxResults < 1 || maxResults > max) throw invalidParameter(`maxResults must be between 1 and ${max}; got ${maxResults}.`);
  return maxResults;
}

export function encodeToken(position: string): string {
  return Buffer.from(JSON.stringify({ p: position })).toString('base64url');
}

export function decodeToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { p?: unknown };
    if (typeof parsed.p === 'string') return parsed.p;
  } catch { /* fall through */ }
  throw invalidParameter('The nextToken is invalid. Pass the nextToken exactly as a previous response returned it.');
}

/** Pages over items that are already sorted by `key`. */
export function paginate<T>(items: T[], key: (t: T) => string, maxResults: number, nextToken: string | undefined): { page: T[]; nextToken?: string } {
  const after = decodeToken(nextToken);
  const start = after === undefined ? 0 : items.findIndex((t) => key(t) > after);
  const from = start < 0 ? items.length : start;
  const page = items.slice(from, from + maxResults);
  const more = from + maxResults < items.length;
  return more ? { page, nextToken: encodeToken(key(page[page.length - 1]!)) } : { page };
}

// Tags ------------------------------------------------------------------------------

export const MAX_TAGS = 50;

/** Checks user tags: no reserved `aws:` prefix, unique keys, at most 50. */
export function validateTags(tags: Tag[], param = 'tags'): void {
  const seen = new Set<string>();
  for (const t of tags) {
    if (t.key === undefined) throw invalidParameter(`Each entry of ${param} needs a key.`);
    if (/^aws:/i.test(t.key)) throw invalidParameter(`Tag key '${t.key}' uses the reserved prefix 'aws:'; choose another key.`);
    if (t.value !== undefined && /^aws:/i.test(t.value)) throw invalidParameter(`Tag value '${t.value}' uses the reserved prefix 'aws:'; choose another value.`);
    if (seen.has(t.key)) throw invalidParameter(`Tag key '${t.key}' appears more than once in ${param}; each key may have one value.`);
    seen.add(t.key);
  }
  if (tags.length > MAX_TAGS) throw invalidParameter(`A resource can have at most ${MAX_TAGS} tags; ${param} has ${tags.length}.`);
}

/** Applies `incoming` over `existing` (same key replaces value). */
export function mergeTags(existing: Tag[], incoming: Tag[]): Tag[] {
  const out = new Map(existing.map((t) => [t.key, t] as const));
  for (const t of incoming) out.set(t.key, { key: t.key, value: t.value ?? '' });
  return [...out.values()];
}

export function withoutKeys(existing: Tag[], keys: string[]): Tag[] {
  const drop = new Set(keys);
  return existing.filter((t) => !drop.has(t.key));
}

export const seconds = (ms: number): number => ms / 1000;
