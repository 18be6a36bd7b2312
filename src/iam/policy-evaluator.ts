// IAM policy evaluation, as AWS documents it for requests within one account
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
//   1. an explicit Deny in any applicable policy wins;
//   2. otherwise an identity-based policy must Allow;
//   3. and, when present, the permissions boundary and the session policy must Allow too;
//   4. anything else is an implicit deny (default deny).
// Pure: the caller supplies the policies and the request (action, resource, context keys).
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { ConditionClause, Policy, PrincipalSpec, Statement } from './policy-document.js';

/** Values of request context keys, as IAM sees them (booleans and numbers as strings). */
export type ContextInput = Record<string, string | number | boolean | readonly string[] | undefined>;

/**
 * Condition keys of one request: lower-cased key → values (a multivalued key has several).
 * Layered: `with` (and the `parent` argument) put new keys over an existing set without
 * copying it, so a principal's keys are built once and a resource's tags cost only
 * themselves. A key set in a layer hides the parent's value of that key.
 */
export class RequestContextKeys {
  private readonly map = new Map<string, string[]>();

  constructor(input: ContextInput = {}, private readonly parent?: RequestContextKeys) {
    for (const k of Object.keys(input)) this.set(k, input[k]);
  }

  set(key: string, v: ContextInput[string]): void {
    if (v === undefined) return;
    this.map.set(key.toLowerCase(), Array.isArray(v) ? [...(v as readonly string[])] : [String(v)]);
  }

  /**
   * Like `set`, but an undefined value hides the parent's value of the key (as a later
   * `undefined` member of an object spread does).
   */
  setOrHide(key: string, v: ContextInput[string]): void {
    if (v === undefined) this.map.set(key.toLowerCase(), HIDDEN_KEY);
    else this.set(key, v);
  }

  get(key: string): string[] | undefined {
    const v = this.find(key.toLowerCase());
    return v === HIDDEN_KEY ? undefined : v;
  }

  /** The values of a lower-cased key, HIDDEN_KEY included (layers consult their parent). */
  protected find(lowerKey: string): string[] | undefined {
    return this.map.get(lowerKey) ?? this.parent?.find(lowerKey);
  }

  /** A set with more keys (e.g. one resource's tags) over this one, which stays unchanged. */
  with(input: ContextInput): RequestContextKeys {
    return new RequestContextKeys(input, this);
  }
}

/** A key a layer removed (see `setOrHide`). */
const HIDDEN_KEY: string[] = [];

export interface AuthzQuery {
  /** `service:Action`, e.g. `ecs:RunTask`. */
  action: string;
  /** The resource ARN, or `*` for actions without a resource type. */
  resource: string;
  context: RequestContextKeys;
}

// Wildcards ------------------------------------------------------------------------------

type GlobMode = 'action' | 'arn' | 'string';
const globCaches: Record<GlobMode, Map<string, RegExp>> = { action: new Map(), arn: new Map(), string: new Map() };
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * Compiles an IAM pattern to a regular expression. `*` and `?` are wildcards; `${key}` is a
 * policy variable (2012-10-17), replaced by the key's value as literal text (`${*}`, `${?}`,
 * `${$}` are the literal characters). In ARNs a wildcard stays within its colon-separated
 * component except in the resource part (IAM: ArnLike "checks each of the six
 * colon-delimited components separately"). Returns undefined when a variable has no value
 * (the pattern then matches nothing, as in IAM).
 */
export function compilePattern(pattern: string, mode: GlobMode, ctx?: RequestContextKeys): RegExp | undefined {
  const hasVars = ctx !== undefined && pattern.includes('${');
  const globCache = globCaches[mode];
  if (!hasVars) { const hit = globCache.get(pattern); if (hit) return hit; }
  // Component count (colons outside ${...}) so that the last component may span colons.
  let colons = 0;
  for (let i = 0; i < pattern.length; i++) {
    if (hasVars && pattern[i] === '$' && pattern[i + 1] === '{') { const end = pattern.indexOf('}', i); if (end > 0) { i = end; continue; } }
    if (pattern[i] === ':') colons++;
  }
  let re = '';
  let component = 0;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (hasVars && ch === '$' && pattern[i + 1] === '{') {
      const end = pattern.indexOf('}', i);
      if (end > 0) {
        const name = pattern.slice(i + 2, end).trim();
        i = end;
        if (name === '*' || name === '?' || name === '$') { re += escapeRe(name); continue; }
        const value = ctx.get(name);
        if (!value || value.length !== 1) return undefined;
        re += escapeRe(value[0]!);
        continue;
      }
    }
    if (ch === '*') {
      re += mode === 'arn' && component < 5 && component !== colons ? '[^:]*' : '.*';
    } else if (ch === '?') {
      re += mode === 'arn' && component < 5 && component !== colons ? '[^:]' : '.';
    } else {
      if (ch === ':') component++;
      re += escapeRe(ch);
    }
  }
  const compiled = new RegExp(`^${re}$`, mode === 'action' ? 'is' : 's');
  if (!hasVars) {
    if (globCache.size > 50_000) globCache.clear();
    globCache.set(pattern, compiled);
  }
  return compiled;
}

export function matchesAction(pattern: string, action: string): boolean {
  return compilePattern(pattern, 'action')!.test(action);
}

export function matchesResource(pattern: string, resource: string, ctx?: RequestContextKeys): boolean {
  if (pattern === '*') return true;
  return compilePattern(pattern, 'arn', ctx)?.test(resource) ?? false;
}

// Conditions -----------------------------------------------------------------------------

const NEGATED: Record<string, string> = {
  StringNotEquals: 'StringEquals', StringNotEqualsIgnoreCase: 'StringEqualsIgnoreCase', StringNotLike: 'StringLike',
  NumericNotEquals: 'NumericEquals', DateNotEquals: 'DateEquals', ArnNotEquals: 'ArnEquals', ArnNotLike: 'ArnLike',
  NotIpAddress: 'IpAddress',
};

function substitute(value: string, ctx: RequestContextKeys): string | undefined {
  if (!value.includes('${')) return value;
  let missing = false;
  const out = value.replace(/\$\{([^}]*)\}/g, (_, name: string) => {
    const n = name.trim();
    if (n === '*' || n === '?' || n === '$') return n;
    const v = ctx.get(n);
    if (!v || v.length !== 1) { missing = true; return ''; }
    return v[0]!;
  });
  return missing ? undefined : out;
}

function toTime(v: string): number {
  return /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v);
}

const cidrCache = new Map<string, BlockList>();
function inCidr(ip: string, cidr: string): boolean {
  let list = cidrCache.get(cidr);
  if (!list) {
    list = new BlockList();
    const [addr, bits] = cidr.split('/') as [string, string | undefined];
    const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
    if (cidrCache.size > 10_000) cidrCache.clear();
    cidrCache.set(cidr, list);
  }
  const plain = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (isIPv4(plain)) return list.check(plain, 'ipv4');
  if (isIPv6(plain)) return list.check(plain, 'ipv6');
  return false;
}

/** Whether one context value satisfies a positive operator against the policy's values. */
function positiveMatch(op: string, v: string, policyValues: string[], ctx: RequestContextKeys, version: string): boolean {
  const vars = version === '2012-10-17';
  for (const raw of policyValues) {
    switch (op) {
      case 'StringEquals': { const p = vars ? substitute(raw, ctx) : raw; if (p !== undefined && p === v) return true; break; }
      case 'StringEqualsIgnoreCase': { const p = vars ? substitute(raw, ctx) : raw; if (p !== undefined && p.toLowerCase() === v.toLowerCase()) return true; break; }
      case 'StringLike': if (compilePattern(raw, 'string', vars ? ctx : undefined)?.test(v)) return true; break;
      case 'ArnEquals': case 'ArnLike': if (matchesResource(raw, v, vars ? ctx : undefined)) return true; break;
      case 'NumericEquals': if (Number(v) === Number(raw)) return true; break;
      case 'NumericLessThan': if (Number(v) < Number(raw)) return true; break;
      case 'NumericLessThanEquals': if (Number(v) <= Number(raw)) return true; break;
      case 'NumericGreaterThan': if (Number(v) > Number(raw)) return true; break;
      case 'NumericGreaterThanEquals': if (Number(v) >= Number(raw)) return true; break;
      case 'DateEquals': if (toTime(v) === toTime(raw)) return true; break;
      case 'DateLessThan': if (toTime(v) < toTime(raw)) return true; break;
      case 'DateLessThanEquals': if (toTime(v) <= toTime(raw)) return true; break;
      case 'DateGreaterThan': if (toTime(v) > toTime(raw)) return true; break;
      case 'DateGreaterThanEquals': if (toTime(v) >= toTime(raw)) return true; break;
      case 'Bool': if (v.toLowerCase() === raw.toLowerCase()) return true; break;
      case 'BinaryEquals': if (v === raw) return true; break;
      case 'IpAddress': if (inCidr(v, raw)) return true; break;
      default: return false;
    }
  }
  return false;
}

/**
 * One condition clause. IAM: a key missing from the request context makes a condition false,
 * except for negated operators (true), …IfExists (true), ForAllValues (true) and Null.
 */
export function conditionHolds(c: ConditionClause, ctx: RequestContextKeys, version = '2012-10-17'): boolean {
  const values = ctx.get(c.key);
  const present = values !== undefined && values.length > 0;
  if (c.operator === 'Null') return c.values.some((v) => (v.toLowerCase() === 'true') === !present);
  const negatedOf = NEGATED[c.operator];
  if (!present) {
    if (c.ifExists || c.set === 'ForAllValues') return true;
    if (c.set === 'ForAnyValue') return false;
    return negatedOf !== undefined;
  }
  const one = (v: string) => negatedOf !== undefined
    ? !positiveMatch(negatedOf, v, c.values, ctx, version)
    : positiveMatch(c.operator, v, c.values, ctx, version);
  if (c.set === 'ForAllValues') return values.every(one);
  if (c.set === 'ForAnyValue') return values.some(one);
  // Without a set operator: positive operators hold when any value matches; negated ones
  // when no value matches the positive counterpart.
  if (negatedOf !== undefined) return !values.some((v) => positiveMatch(negatedOf, v, c.values, ctx, version));
  return values.some((v) => positiveMatch(c.operator, v, c.values, ctx, version));
}

// Statements and policies ------------------------------------------------------------------

/**
 * A statement's Action/NotAction and Resource/NotResource patterns, compiled once per parsed
 * statement (parsed policies are cached and immutable): `*` needs no test, a pattern with a
 * policy variable is compiled per request (its value comes from the request).
 */
interface CompiledStatement {
  anyAction: boolean;
  actions: ActionMatcher[];
  anyResource: boolean;
  resources: (RegExp | string)[];
}

/**
 * One action pattern. Actions compare case-insensitively; for an ASCII action, a pattern of
 * plain ASCII letters, digits, `-` and `:` (what IAM's grammar allows) with at most a
 * trailing `*` needs no regular expression: the lower-cased action equals, or starts with,
 * the lower-cased pattern. `re` is the pattern's expression (what any other action is tested with).
 */
interface ActionMatcher { exact?: string; prefix?: string; re: RegExp }

function actionMatcher(pattern: string): ActionMatcher {
  const re = compilePattern(pattern, 'action')!;
  if (/^[A-Za-z0-9:-]+$/.test(pattern)) return { exact: pattern.toLowerCase(), re };
  if (/^[A-Za-z0-9:-]+\*$/.test(pattern)) return { prefix: pattern.slice(0, -1).toLowerCase(), re };
  return { re };
}

const compiledStatements = new WeakMap<Statement, CompiledStatement>();

function compiled(s: Statement): CompiledStatement {
  let c = compiledStatements.get(s);
  if (!c) {
    c = {
      anyAction: s.actions.includes('*'),
      actions: s.actions.filter((p) => p !== '*').map(actionMatcher),
      anyResource: s.resources.includes('*'),
      resources: s.resources.filter((p) => p !== '*').map((p) => (p.includes('${') ? p : compilePattern(p, 'arn')!)),
    };
    compiledStatements.set(s, c);
  }
  return c;
}

/** The last query's action, lower-cased when ASCII (queries come in runs with the same action). */
let lastAction = '';
let lastActionLower: string | undefined = '';

function actionHit(c: CompiledStatement, action: string): boolean {
  if (c.anyAction) return true;
  if (action !== lastAction) { lastAction = action; lastActionLower = /^[\x00-\x7f]*$/.test(action) ? action.toLowerCase() : undefined; }
  const lower = lastActionLower;
  for (const m of c.actions) {
    if (lower === undefined || (m.exact === undefined && m.prefix === undefined)) { if (m.re.test(action)) return true; }
    else if (m.exact !== undefined ? lower === m.exact : lower.startsWith(m.prefix!)) return true;
  }
  return false;
}

function resourceHit(c: CompiledStatement, resource: string, ctx: RequestContextKeys | undefined): boolean {
  if (c.anyResource) return true;
  for (const p of c.resources) {
    if (typeof p === 'string' ? matchesResource(p, resource, ctx) : p.test(resource)) return true;
  }
  return false;
}

export function statementApplies(s: Statement, q: AuthzQuery, version: string): boolean {
  const c = compiled(s);
  const hit = actionHit(c, q.action);
  if (s.notAction ? hit : !hit) return false;
  if (s.hasResource) {
    const vars = version === '2012-10-17' ? q.context : undefined;
    const rHit = resourceHit(c, q.resource, vars);
    if (s.notResource ? rHit : !rHit) return false;
  }
  for (const cond of s.conditions) if (!conditionHolds(cond, q.context, version)) return false;
  return true;
}

export interface PolicyVerdict { allowed: boolean; denied: boolean }

/** Whether `policies` explicitly deny and whether they allow the request. */
export function judge(policies: readonly Policy[], q: AuthzQuery): PolicyVerdict {
  let allowed = false;
  for (const p of policies) {
    for (const s of p.statements) {
      if (s.effect === 'Allow' && allowed) continue;
      if (!statementApplies(s, q, p.version)) continue;
      if (s.effect === 'Deny') return { allowed: false, denied: true };
      allowed = true;
    }
  }
  return { allowed, denied: false };
}

/** What applies to a principal's request. */
export interface PolicySet {
  /** Identity-based policies (user or role inline policies, built-in policies). */
  identity: readonly Policy[];
  /** Permissions boundary: caps what identity policies can allow. */
  boundary?: readonly Policy[];
  /** Session policy passed to AssumeRole: caps the session further. */
  session?: readonly Policy[];
}

export type PolicyType = 'identity-based policy' | 'permissions boundary' | 'session policy';

export type Decision =
  | { allowed: true }
  | { allowed: false; explicit: boolean; by: PolicyType };

export function evaluate(set: PolicySet, q: AuthzQuery): Decision {
  const identity = judge(set.identity, q);
  const boundary = set.boundary ? judge(set.boundary, q) : undefined;
  const session = set.session ? judge(set.session, q) : undefined;
  // 1. Explicit deny anywhere wins.
  if (identity.denied) return { allowed: false, explicit: true, by: 'identity-based policy' };
  if (boundary?.denied) return { allowed: false, explicit: true, by: 'permissions boundary' };
  if (session?.denied) return { allowed: false, explicit: true, by: 'session policy' };
  // 2-3. Every applicable policy type must allow.
  if (!identity.allowed) return { allowed: false, explicit: false, by: 'identity-based policy' };
  if (boundary && !boundary.allowed) return { allowed: false, explicit: false, by: 'permissions boundary' };
  if (session && !session.allowed) return { allowed: false, explicit: false, by: 'session policy' };
  return { allowed: true };
}

/**
 * Whether any statement could allow `action` for some resource (resources and conditions
 * ignored). List actions use it before filtering their results item by item.
 */
export function mayAllow(set: PolicySet, action: string): boolean {
  return whyNot(set, action) === undefined;
}

/** Which policy type has no Allow for `action` at all (undefined when each has one). */
export function whyNot(set: PolicySet, action: string): PolicyType | undefined {
  const some = (policies: readonly Policy[]) => policies.some((p) => p.statements.some((s) => {
    if (s.effect !== 'Allow') return false;
    const hit = actionHit(compiled(s), action);
    return s.notAction ? !hit : hit;
  }));
  if (!some(set.identity)) return 'identity-based policy';
  if (set.boundary && !some(set.boundary)) return 'permissions boundary';
  if (set.session && !some(set.session)) return 'session policy';
  return undefined;
}

// Trust policies -----------------------------------------------------------------------------

export interface Caller {
  /** e.g. arn:aws:iam::123456789012:user/alice or arn:aws:sts::123456789012:assumed-role/R/s */
  arn: string;
  account: string;
  /** For assumed-role sessions: the role's ARN (a trust policy may name the role). */
  roleArn?: string;
}

function principalMatches(spec: PrincipalSpec, caller: Caller): boolean {
  if (spec.any) return true;
  return spec.aws.some((p) => {
    if (p === caller.account) return true;
    const m = /^arn:[^:]+:iam::(\d{12}):root$/.exec(p);
    if (m) return m[1] === caller.account;
    return p === caller.arn || (caller.roleArn !== undefined && p === caller.roleArn);
  });
}

/** Whether the principal is named individually (not only through its account). */
export function namesPrincipal(spec: PrincipalSpec | undefined, caller: Caller): boolean {
  if (!spec) return false;
  return spec.aws.some((p) => p === caller.arn || (caller.roleArn !== undefined && p === caller.roleArn));
}

export interface TrustVerdict { allowed: boolean; denied: boolean; namedIndividually: boolean }

/** Evaluates a role's trust policy for `action` (e.g. sts:AssumeRole) by `caller`. */
export function judgeTrust(policy: Policy, action: string, caller: Caller, context: RequestContextKeys): TrustVerdict {
  let allowed = false;
  let named = false;
  for (const s of policy.statements) {
    const actionHit = s.actions.some((a) => matchesAction(a, action));
    if (s.notAction ? actionHit : !actionHit) continue;
    const who = s.principal ? principalMatches(s.principal, caller) : s.notPrincipal ? !principalMatches(s.notPrincipal, caller) : false;
    if (!who) continue;
    if (!s.conditions.every((c) => conditionHolds(c, context, policy.version))) continue;
    if (s.effect === 'Deny') return { allowed: false, denied: true, namedIndividually: false };
    allowed = true;
    if (namesPrincipal(s.principal, caller)) named = true;
  }
  return { allowed, denied: false, namedIndividually: named };
}
