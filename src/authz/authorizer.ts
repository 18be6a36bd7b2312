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

export class Authorizer {
  private readonly tables: Map<string, ServiceAuthz>;
  private readonly principals = new WeakMap<RequestContext, ResolvedPrincipal>();
  private readonly filters = new WeakMap<RequestContext, PendingFilter>();

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
      const key = this.o.iam.credentials.lookup(ctx.principal.accessKeyId)?.record
        ?? { accountId: ctx.principal.accountId, principal: ctx.principal.principal, accessKeyId: ctx.principal.accessKeyId };
      who = this.o.iam.resolve(key, ctx.scope.partition);
      this.principals.set(ctx, who);
    }
    return who;
  }

  /** Global condition keys of a request. */
  private globalKeys(ctx: RequestContext, who: ResolvedPrincipal): ContextInput {
    const now = ctx.clock.now();
    return {
      ...who.keys,
      'aws:CurrentTime': new Date(now).toISOString(),
      'aws:EpochTime': String(Math.floor(now / 1000)),
      'aws:SourceIp': stripMapped(ctx.sourceIp),
      'aws:SecureTransport': ctx.secureTransport === true ? 'true' : 'false',
      'aws:RequestedRegion': ctx.scope.region,
      'aws:ResourceAccount': ctx.scope.account,
    };
  }

  private resourceContext(base: RequestContextKeys, prefix: string, c: Check): RequestContextKeys {
    if (!c.tags && !c.keys) return base;
    const extra: ContextInput = { ...(c.keys ?? {}) };
    for (const [k, v] of Object.entries(c.tags ?? {})) {
      extra[`aws:ResourceTag/${k}`] = v;
      extra[`${prefix}:ResourceTag/${k}`] = v;
    }
    return base.with(extra);
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
    const base = new RequestContextKeys({ ...this.globalKeys(ctx, who), ...(rule.keys?.(args) ?? {}) });
    const checks = rule.resources ? rule.resources(args) : [{ resource: '*' }];
    if (checks.length === 0 && rule.list) {
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

  /** Whether the caller may perform `action` on one resource (for code that authorizes items itself). */
  allows(ctx: RequestContext, action: string, check: Check, prefix = action.split(':')[0]!): boolean {
    const who = this.principalOf(ctx);
    if (who.root) return true;
    const base = new RequestContextKeys(this.globalKeys(ctx, who));
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
