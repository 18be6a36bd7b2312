// Authorization of every API call (the API server's `authorize` hook): the caller's principal
// and policies (iam/directory.ts), the operation's table entry (src/authz/<service>.ts: IAM
// action, resource ARNs with their tags, condition keys), and IAM's evaluation
// (iam/policy-evaluator.ts). Denials are AWS's AccessDenied in the service's own shape:
//   "User: <principal arn> is not authorized to perform: <action> on resource: <arn>
//    because no identity-based policy allows the <action> action"
//   (or "… with an explicit deny in an identity-based policy", "… permissions boundary", …).
// An operation without a table entry is denied to everyone but an account's root (fail closed);
// `uncovered` lists such operations so start-up and tests can name them.
import type { Handler, RequestContext } from '../api/context.js';
import { ApiError } from '../api/errors.js';
import type { IamDirectory, ResolvedPrincipal } from '../iam/directory.js';
import { evaluate, RequestContextKeys, whyNot, type ContextInput, type Decision } from '../iam/policy-evaluator.js';
import type { Args, AuthzEnv, Check, DenialStyle, Rule, ServiceAuthz } from './types.js';

export interface AuthorizerOptions {
  iam: IamDirectory;
  /** Tables by service name (the API server's service name: ecs, logs, ssm, ec2, iam, …). */
  tables: Record<string, ServiceAuthz>;
  env: AuthzEnv;
  log?: (line: string) => void;
}

interface PendingFilter { table: ServiceAuthz; rule: Rule; action: string; base: RequestContextKeys; who: ResolvedPrincipal }

export function denialMessage(principalArn: string, action: string, resource: string, d: Extract<Decision, { allowed: false }>): string {
  const why = d.explicit ? `with an explicit deny in a${d.by.startsWith('i') ? 'n' : ''} ${d.by}` : `because no ${d.by} allows the ${action} action`;
  return `User: ${principalArn} is not authorized to perform: ${action} on resource: ${resource} ${why}`;
}

export function denialError(style: DenialStyle, message: string): ApiError {
  switch (style) {
    case 'query': return new ApiError('AccessDenied', message, 403);
    case 'ec2': return new ApiError('UnauthorizedOperation', `You are not authorized to perform this operation. ${message}`, 403);
    default: return new ApiError('AccessDeniedException', message, 400);
  }
}

const stripMapped = (ip: string) => (ip.startsWith('::ffff:') ? ip.slice(7) : ip);

/**
 * A request's global condition keys (aws:CurrentTime, aws:SourceIp, …) over its principal's
 * keys; each value is made only when a policy asks for it.
 */
class GlobalKeys extends RequestContextKeys {
  private currentTime: string[] | undefined;

  constructor(private readonly ctx: RequestContext, private readonly now: number, principal: RequestContextKeys) {
    super({}, principal);
  }

  protected override find(lowerKey: string): string[] | undefined {
    switch (lowerKey) {
      case 'aws:currenttime': return (this.currentTime ??= [new Date(this.now).toISOString()]);
      case 'aws:epochtime': return [String(Math.floor(this.now / 1000))];
      case 'aws:sourceip': return [stripMapped(this.ctx.sourceIp)];
      case 'aws:securetransport': return [this.ctx.secureTransport === true ? 'true' : 'false'];
      case 'aws:requestedregion': return [this.ctx.scope.region];
      case 'aws:resourceaccount': return [this.ctx.scope.account];
      default: return super.find(lowerKey);
    }
  }
}

/**
 * One resource's condition keys over the request's: the check's own keys, and its tags as
 * aws:ResourceTag/<key> and <prefix>:ResourceTag/<key> (over those keys), made only when a
 * policy asks for a ResourceTag key.
 */
class ResourceKeys extends RequestContextKeys {
  private tagKeys: RequestContextKeys | undefined;
  private readonly tagPrefix: string;

  constructor(private readonly tags: Record<string, string> | undefined, prefix: string, keys: ContextInput | undefined, base: RequestContextKeys) {
    super(keys ?? {}, base);
    this.tagPrefix = `${prefix}:resourcetag/`.toLowerCase();
  }

  protected override find(lowerKey: string): string[] | undefined {
    if (this.tags && (lowerKey.startsWith('aws:resourcetag/') || lowerKey.startsWith(this.tagPrefix))) {
      if (!this.tagKeys) {
        this.tagKeys = new RequestContextKeys();
        for (const k of Object.keys(this.tags)) {
          this.tagKeys.set(`aws:ResourceTag/${k}`, this.tags[k]);
          this.tagKeys.set(`${this.tagPrefix}${k}`, this.tags[k]);
        }
      }
      const v = this.tagKeys.get(lowerKey);
      if (v !== undefined) return v;
    }
    return super.find(lowerKey);
  }
}

export class Authorizer {
  private readonly tables: Map<string, ServiceAuthz>;
  private readonly principals = new WeakMap<RequestContext, ResolvedPrincipal>();
  private readonly filters = new WeakMap<RequestContext, PendingFilter>();
  /** Each (cached, immutable) principal's condition keys, built once. */
  private readonly principalKeys = new WeakMap<ResolvedPrincipal, RequestContextKeys>();

  constructor(private readonly o: AuthorizerOptions) {
    this.tables = new Map(Object.entries(o.tables));
  }

  /** The table entries every service has, for coverage checks. */
  rulesOf(service: string): Record<string, Rule> | undefined {
    return this.tables.get(service)?.rules;
  }

  /** Operations a handler table answers that have no authorization rule (they are denied). */
  uncovered(service: string, operations: Iterable<string>): string[] {
    const rules = this.tables.get(service)?.rules ?? {};
    return [...operations].filter((op) => !rules[op]);
  }

  principalOf(ctx: RequestContext): ResolvedPrincipal {
    let who = this.principals.get(ctx);
    if (!who) {
      const record = this.o.iam.credentials.lookup(ctx.principal.accessKeyId)?.record;
      who = record
        ? this.o.iam.principal(record, ctx.scope.partition)
        : this.o.iam.resolve({ accountId: ctx.principal.accountId, principal: ctx.principal.principal, accessKeyId: ctx.principal.accessKeyId }, ctx.scope.partition);
      this.principals.set(ctx, who);
    }
    return who;
  }

  /** Global condition keys of a request (over the principal's). */
  private globalKeys(ctx: RequestContext, who: ResolvedPrincipal): RequestContextKeys {
    let keys = this.principalKeys.get(who);
    if (!keys) {
      keys = new RequestContextKeys(who.keys);
      if (Object.isFrozen(who)) this.principalKeys.set(who, keys);
    }
    return new GlobalKeys(ctx, ctx.clock.now(), keys);
  }

  private resourceContext(base: RequestContextKeys, prefix: string, c: Check): RequestContextKeys {
    if (!c.tags && !c.keys) return base;
    return new ResourceKeys(c.tags, prefix, c.keys, base);
  }

  /** The `authorize` hook: throws the service's AccessDenied when the caller may not do this. */
  readonly authorize = (ctx: RequestContext, input: Record<string, unknown>): void => {
    const table = this.tables.get(ctx.service);
    const rule = table?.rules[ctx.action];
    const who = this.principalOf(ctx);
    const action = rule?.action ?? `${table?.prefix ?? ctx.service}:${ctx.action}`;
    if (!table || !rule) {
      if (who.root) return;
      this.o.log?.(`authz: no rule for ${ctx.service}:${ctx.action}; denied to ${who.arn}`);
      throw denialError(table?.style ?? 'json', denialMessage(who.arn, action, '*', { allowed: false, explicit: false, by: 'identity-based policy' }));
    }
    if (rule.open || who.root) return;
    const args: Args = { ctx, input: input as Record<string, any>, env: this.o.env };
    const base = this.requestKeys(ctx, who, rule.keys?.(args));
    const checks = rule.resources ? rule.resources(args) : [{ resource: '*' }];
    if (checks.length === 0 && rule.list) {
      // A Deny that covers every resource refuses the listing itself, as in AWS; narrower
      // denies only filter the items.
      const everything = evaluate(who.policies, { action, resource: '*', context: base });
      if (!everything.allowed && everything.explicit) throw denialError(table.style, denialMessage(who.arn, action, '*', everything));
      const by = whyNot(who.policies, action);
      if (by) throw denialError(table.style, denialMessage(who.arn, action, '*', { allowed: false, explicit: false, by }));
      this.filters.set(ctx, { table, rule, action, base, who });
      return;
    }
    for (const c of checks) {
      const d = evaluate(who.policies, { action, resource: c.resource, context: this.resourceContext(base, table.prefix, c) });
      if (!d.allowed) throw denialError(table.style, denialMessage(who.arn, action, c.resource, d));
    }
  };

  /** The global keys with the rule's request keys over them (an undefined one hides a global key). */
  private requestKeys(ctx: RequestContext, who: ResolvedPrincipal, ruleKeys: ContextInput | undefined): RequestContextKeys {
    const global = this.globalKeys(ctx, who);
    if (!ruleKeys) return global;
    const keys = global.with({});
    for (const k of Object.keys(ruleKeys)) keys.setOrHide(k, ruleKeys[k]);
    return keys;
  }

  /** Whether the caller may perform `action` on one resource (for code that authorizes items itself). */
  allows(ctx: RequestContext, action: string, check: Check, prefix = action.split(':')[0]!): boolean {
    const who = this.principalOf(ctx);
    if (who.root) return true;
    const base = this.globalKeys(ctx, who);
    return evaluate(who.policies, { action, resource: check.resource, context: this.resourceContext(base, prefix, check) }).allowed;
  }

  /**
   * Wraps a service's handlers so that listings authorised item by item (rules with `list`)
   * return only the items the caller is allowed on.
   */
  wrap(service: string, handlers: Record<string, Handler>): Record<string, Handler> {
    const rules = this.tables.get(service)?.rules ?? {};
    const out: Record<string, Handler> = { ...handlers };
    for (const [op, handler] of Object.entries(handlers)) {
      const list = rules[op]?.list;
      if (!list) continue;
      out[op] = async (ctx, input) => {
        const result = await handler(ctx, input);
        const pending = this.filters.get(ctx);
        if (!pending || !result || typeof result !== 'object') return result;
        const items = (result as Record<string, unknown>)[list.field];
        if (!Array.isArray(items)) return result;
        const args: Args = { ctx, input, env: this.o.env };
        const kept = items.filter((item) => {
          const c = list.check(item, args);
          return evaluate(pending.who.policies, { action: pending.action, resource: c.resource, context: this.resourceContext(pending.base, pending.table.prefix, c) }).allowed;
        });
        return { ...(result as Record<string, unknown>), [list.field]: kept };
      };
    }
    return out;
  }
}
