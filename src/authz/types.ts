// The shape of Berth's authorization tables: for every operation of every service, which IAM
// action it checks, on which resources (ARNs, with their tags) and with which condition keys
// — as AWS's "Actions, resources, and condition keys" pages define them
// (https://docs.aws.amazon.com/service-authorization/latest/reference/).
import type { RequestContext } from '../api/context.js';
import type { Ecs } from '../ecs/index.js';
import type { Logs } from '../logs/index.js';
import type { Store } from '../store/store.js';
import type { ContextInput } from '../iam/policy-evaluator.js';
import type { IamDirectory } from '../iam/directory.js';

/** One resource the action needs permission on. */
export interface Check {
  /** ARN (wildcard-free except where the request itself names a set, e.g. `…:container-instance/c/*`), or `*`. */
  resource: string;
  /** The resource's tags, for aws:ResourceTag/<key> (and <service>:ResourceTag/<key>). */
  tags?: Record<string, string>;
  /** Condition keys that apply with this resource only. */
  keys?: ContextInput;
}

/** What a table entry may look things up in. */
export interface AuthzEnv {
  store?: Store;
  iam?: IamDirectory;
  ecs?: Ecs;
  logs?: Logs;
  /** KMS: the key ARN a request is about (KeyId as id, ARN, alias, alias ARN; or the ciphertext's key). */
  kmsKeyArn?: (ctx: RequestContext, input: Record<string, any>) => string | undefined;
  /** KMS: a key's tags. */
  kmsKeyTags?: (ctx: RequestContext, keyArn: string) => Record<string, string> | undefined;
}

export interface Args {
  ctx: RequestContext;
  input: Record<string, any>;
  env: AuthzEnv;
}

export interface Rule {
  /** The IAM action; defaults to `<prefix>:<Operation>`. */
  action?: string;
  /**
   * Resources the request needs (every one must be allowed). Default: `*` (actions without a
   * resource type). An empty array means "authorized item by item" (see `list`).
   */
  resources?: (a: Args) => Check[];
  /** Request-level condition keys (ecs:cluster, aws:RequestTag/…, …). */
  keys?: (a: Args) => ContextInput;
  /**
   * For listings: when `resources` returns [], the caller needs some Allow for the action,
   * and the output keeps only the items it is allowed on.
   */
  list?: { field: string; check: (item: any, a: Args) => Check };
  /** Allowed to every authenticated caller whatever the policies say (sts:GetCallerIdentity). */
  open?: boolean;
}

/** How a service words its denials. */
export type DenialStyle = 'json' | 'query' | 'ec2';

export interface ServiceAuthz {
  /** IAM service prefix, e.g. `ecs`. */
  prefix: string;
  style: DenialStyle;
  rules: Record<string, Rule>;
}

// Helpers shared by the tables --------------------------------------------------------------

export function tagMap(tags: readonly { key: string; value?: string }[] | undefined): Record<string, string> {
  // No prototype: a tag key such as __proto__ is a key like any other, seen by policies.
  const out = Object.create(null) as Record<string, string>;
  for (const t of tags ?? []) out[t.key] = t.value ?? '';
  return out;
}

/** aws:RequestTag/<key> and aws:TagKeys of the tags a request sets. */
export function requestTags(tags: Record<string, string>): ContextInput {
  const out: ContextInput = {};
  const keys = Object.keys(tags);
  if (keys.length === 0) return out;
  for (const [k, v] of Object.entries(tags)) out[`aws:RequestTag/${k}`] = v;
  out['aws:TagKeys'] = keys;
  return out;
}

export function regionalArn(ctx: RequestContext, service: string, resource: string): string {
  return `arn:${ctx.scope.partition}:${service}:${ctx.scope.region}:${ctx.scope.account}:${resource}`;
}

/** The last `/`-separated part of a name-or-ARN reference. */
export const lastPart = (ref: string): string => ref.slice(ref.lastIndexOf('/') + 1);
