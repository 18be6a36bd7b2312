// IAM policy documents: AWS's JSON grammar parsed into a normalised form, with IAM's
// validation (MalformedPolicyDocument messages as IAM words them, plus where exactly) and
// the size IAM counts against its quotas. Pure: no store, no clock.
//
// Grammar (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html):
//   { "Version"?: "2012-10-17" | "2008-10-17", "Id"?: string,
//     "Statement": statement | [statement, ...] }
//   statement: { "Sid"?, "Effect": "Allow" | "Deny",
//                "Principal" | "NotPrincipal" (resource and trust policies only),
//                "Action" | "NotAction": string | [string],
//                "Resource" | "NotResource": string | [string] (identity policies; absent in trust policies),
//                "Condition"?: { "<Operator>": { "<key>": value | [values] } } }

export type PolicyKind = 'identity' | 'trust';

export type ConditionValue = string;

export interface ConditionClause {
  /** Operator as written, e.g. `ForAnyValue:StringLikeIfExists`. */
  raw: string;
  /** Base operator without set prefix and IfExists, e.g. `StringLike`. */
  operator: string;
  ifExists: boolean;
  set: 'ForAnyValue' | 'ForAllValues' | undefined;
  /** Condition key (lower-cased: IAM condition key names are case-insensitive). */
  key: string;
  values: ConditionValue[];
}

export interface PrincipalSpec {
  /** `*` = anyone. */
  any: boolean;
  aws: string[];
  service: string[];
  federated: string[];
}

export interface Statement {
  sid?: string;
  effect: 'Allow' | 'Deny';
  /** Patterns of `Action` or, when `notAction`, of `NotAction`. */
  actions: string[];
  notAction: boolean;
  resources: string[];
  notResource: boolean;
  /** Statements of trust policies have no Resource: they apply to the role itself. */
  hasResource: boolean;
  principal?: PrincipalSpec;
  notPrincipal?: PrincipalSpec;
  conditions: ConditionClause[];
}

export interface Policy {
  version: '2012-10-17' | '2008-10-17';
  statements: Statement[];
  /** Where the policy comes from (for messages): e.g. `user alice, inline policy p`. */
  source?: string;
}

export class MalformedPolicy extends Error {
  constructor(message: string) { super(message); this.name = 'MalformedPolicy'; }
}

/** Condition operators IAM knows (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html). */
export const CONDITION_OPERATORS = new Set([
  'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike',
  'NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals',
  'DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals',
  'Bool', 'BinaryEquals', 'IpAddress', 'NotIpAddress', 'ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike', 'Null',
]);

const TOP_LEVEL = new Set(['Version', 'Id', 'Statement']);
const STATEMENT_FIELDS = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
const SID = /^[0-9A-Za-z]*$/;
/** `service:Action` with wildcards, or `*`. */
const ACTION = /^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$/;
const ACCOUNT_ID = /^\d{12}$/;

const malformed = (message: string) => new MalformedPolicy(message);
const syntax = (detail: string) => malformed(`Syntax errors in policy. ${detail}`);

function asList(v: unknown, where: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw syntax(`${where} must not be an empty list.`);
  return list.map((x) => {
    if (typeof x !== 'string') throw syntax(`${where} must be a string or a list of strings.`);
    return x;
  });
}

function parsePrincipal(v: unknown, field: string): PrincipalSpec {
  const spec: PrincipalSpec = { any: false, aws: [], service: [], federated: [] };
  if (v === '*') { spec.any = true; return spec; }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed(`Invalid principal in policy: ${field} must be "*" or an object such as {"AWS": "arn:aws:iam::123456789012:root"}.`);
  for (const [type, value] of Object.entries(v as Record<string, unknown>)) {
    const values = asList(value, `${field}.${type}`);
    switch (type) {
      case 'AWS':
        for (const p of values) {
          if (p === '*') { spec.any = true; continue; }
          if (!ACCOUNT_ID.test(p) && !/^arn:aws(-[a-z-]+)?:(iam::\d{12}:(root|user\/.+|role\/.+)|sts::\d{12}:assumed-role\/.+)$/.test(p)) {
            throw malformed(`Invalid principal in policy: "AWS":"${p}"`);
          }
          spec.aws.push(p);
        }
        break;
      case 'Service': spec.service.push(...values); break;
      case 'Federated': spec.federated.push(...values); break;
      case 'CanonicalUser': throw malformed(`Invalid principal in policy: "CanonicalUser" principals are not supported.`);
      default: throw malformed(`Invalid principal in policy: unknown principal type "${type}".`);
    }
  }
  return spec;
}

function parseConditions(v: unknown, version: string): ConditionClause[] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw syntax('Condition must be an object of operators.');
  const out: ConditionClause[] = [];
  for (const [raw, block] of Object.entries(v as Record<string, unknown>)) {
    let op = raw;
    let set: ConditionClause['set'];
    const colon = op.indexOf(':');
    if (colon >= 0) {
      const prefix = op.slice(0, colon);
      if (prefix !== 'ForAnyValue' && prefix !== 'ForAllValues') throw malformed(`Invalid Condition type : ${raw}.`);
      set = prefix;
      op = op.slice(colon + 1);
    }
    let ifExists = false;
    if (op.endsWith('IfExists')) { ifExists = true; op = op.slice(0, -'IfExists'.length); }
    if (!CONDITION_OPERATORS.has(op) || (op === 'Null' && (ifExists || set))) throw malformed(`Invalid Condition type : ${raw}.`);
    if (typeof block !== 'object' || block === null || Array.isArray(block)) throw syntax(`Condition ${raw} must map condition keys to values.`);
    for (const [key, value] of Object.entries(block as Record<string, unknown>)) {
      if (!/^[a-zA-Z0-9-]+:.+/.test(key)) throw malformed(`Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. (condition key '${key}')`);
      const list = Array.isArray(value) ? value : [value];
      if (list.length === 0) throw syntax(`Condition ${raw} on ${key} has an empty list of values.`);
      const values = list.map((x) => {
        if (typeof x === 'string') return x;
        if (typeof x === 'boolean' || typeof x === 'number') return String(x);
        throw syntax(`Condition ${raw} on ${key}: values must be strings, numbers or booleans.`);
      });
      if (op === 'Null' || op === 'Bool') {
        for (const x of values) if (!/^(true|false)$/i.test(x)) throw malformed(`Condition ${raw} on ${key} takes "true" or "false"; got "${x}".`);
      }
      if (op.startsWith('Numeric')) for (const x of values) if (x.trim() === '' || Number.isNaN(Number(x))) throw malformed(`Condition ${raw} on ${key} takes numbers; got "${x}".`);
      if (op.startsWith('Date')) for (const x of values) if (!/^\d+$/.test(x) && Number.isNaN(Date.parse(x))) throw malformed(`Condition ${raw} on ${key} takes ISO 8601 dates or epoch seconds; got "${x}".`);
      if (op.endsWith('IpAddress')) for (const x of values) if (!isCidr(x)) throw malformed(`Condition ${raw} on ${key} takes IP addresses or CIDR blocks; got "${x}".`);
      if (version === '2008-10-17') { /* no policy variables in 2008-10-17: values are literal */ }
      out.push({ raw, operator: op, ifExists, set, key: key.toLowerCase(), values });
    }
  }
  return out;
}

export function isCidr(text: string): boolean {
  const [addr, bits, extra] = text.split('/');
  if (extra !== undefined || !addr) return false;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  if (v4) return v4.slice(1).every((p) => Number(p) <= 255) && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= 32));
  if (/^[0-9a-fA-F:]+$/.test(addr) && addr.includes(':')) return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= 128);
  return false;
}

function checkResource(r: string): void {
  if (r === '*') return;
  const parts = r.split(':');
  // arn:partition:service[:region[:account[:resource]]]; fewer components than six are
  // accepted, the last one then matching the rest of the ARN.
  if (parts[0] !== 'arn' || parts.length < 3 || !parts[1] || !parts[2]) throw malformed(`Resource ${r} must be in ARN format or "*".`);
}

/**
 * Parses and validates a policy document as IAM does; throws MalformedPolicy with IAM's
 * message (and where the problem is) when it is not a valid policy of `kind`.
 */
export function parsePolicy(text: string, kind: PolicyKind = 'identity'): Policy {
  let doc: unknown;
  try { doc = JSON.parse(text); } catch { throw malformed('This policy contains invalid Json'); }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw malformed('This policy contains invalid Json');
  const top = doc as Record<string, unknown>;
  for (const k of Object.keys(top)) if (!TOP_LEVEL.has(k)) throw syntax(`Unknown element '${k}' at the top level (allowed: Version, Id, Statement).`);
  const version = top.Version ?? '2008-10-17';
  if (version !== '2012-10-17' && version !== '2008-10-17') throw malformed(`The policy must contain a valid version string (2012-10-17 or 2008-10-17); got ${JSON.stringify(version)}.`);
  if (top.Id !== undefined && typeof top.Id !== 'string') throw syntax('Id must be a string.');
  if (top.Statement === undefined) throw syntax('Missing required field Statement.');
  const raw = Array.isArray(top.Statement) ? top.Statement : [top.Statement];
  if (raw.length === 0) throw syntax('Statement must not be empty.');
  const sids = new Set<string>();
  const statements = raw.map((s, i): Statement => {
    const where = `statement ${i + 1}`;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw syntax(`Each statement must be an object (${where}).`);
    const st = s as Record<string, unknown>;
    for (const k of Object.keys(st)) if (!STATEMENT_FIELDS.has(k)) throw syntax(`Unknown element '${k}' in ${where}.`);
    if (st.Sid !== undefined) {
      if (typeof st.Sid !== 'string') throw syntax(`Sid must be a string (${where}).`);
      if (!SID.test(st.Sid)) throw malformed('Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*');
      if (st.Sid !== '' && sids.has(st.Sid)) throw malformed('Statement IDs (SID) in a single policy must be unique.');
      sids.add(st.Sid);
    }
    if (st.Effect === undefined) throw malformed(`Missing required field Effect (${where}).`);
    if (st.Effect !== 'Allow' && st.Effect !== 'Deny') throw malformed(`Invalid effect: ${String(st.Effect)} (${where}; use Allow or Deny).`);
    const hasPrincipal = st.Principal !== undefined || st.NotPrincipal !== undefined;
    if (kind === 'identity' && hasPrincipal) throw malformed('Policy document should not specify a principal.');
    if (kind === 'trust' && !hasPrincipal) throw malformed(`Missing required field Principal (${where}).`);
    if (st.Principal !== undefined && st.NotPrincipal !== undefined) throw syntax(`Principal and NotPrincipal cannot be used together (${where}).`);
    if (st.Action !== undefined && st.NotAction !== undefined) throw syntax(`Action and NotAction cannot be used together (${where}).`);
    if (st.Action === undefined && st.NotAction === undefined) throw malformed('Policy statement must contain actions.');
    const notAction = st.NotAction !== undefined;
    const actions = asList(notAction ? st.NotAction : st.Action, notAction ? 'NotAction' : 'Action');
    for (const a of actions) {
      if (!a.includes(':') && a !== '*') throw malformed(`Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. (action '${a}')`);
      if (!ACTION.test(a)) throw malformed(`Action ${a} is not valid: use service:Action, with * and ? as wildcards.`);
    }
    if (st.Resource !== undefined && st.NotResource !== undefined) throw syntax(`Resource and NotResource cannot be used together (${where}).`);
    const hasResource = st.Resource !== undefined || st.NotResource !== undefined;
    if (kind === 'identity' && !hasResource) throw malformed('Policy statement must contain resources.');
    if (kind === 'trust' && hasResource) throw malformed('Has prohibited field Resource');
    const notResource = st.NotResource !== undefined;
    const resources = hasResource ? asList(notResource ? st.NotResource : st.Resource, notResource ? 'NotResource' : 'Resource') : [];
    for (const r of resources) checkResource(r);
    const statement: Statement = {
      effect: st.Effect, actions, notAction, resources, notResource, hasResource,
      conditions: st.Condition === undefined ? [] : parseConditions(st.Condition, version as string),
    };
    if (typeof st.Sid === 'string') statement.sid = st.Sid;
    if (st.Principal !== undefined) statement.principal = parsePrincipal(st.Principal, 'Principal');
    if (st.NotPrincipal !== undefined) statement.notPrincipal = parsePrincipal(st.NotPrincipal, 'NotPrincipal');
    return statement;
  });
  return { version, statements };
}

/**
 * The size IAM counts against its policy quotas: characters without white space
 * ("IAM doesn't count white space when calculating the size of a policy against these
 * quotas", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
 */
export function policySize(text: string): number {
  let n = 0;
  for (const ch of text) if (!/\s/.test(ch)) n++;
  return n;
}

// Quotas from "IAM and AWS STS quotas"
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html#reference_iam-quotas-entity-length):
/** "User policy size: you can't exceed 2,048 characters" (aggregate of the user's inline policies). */
export const USER_POLICY_QUOTA = 2048;
/** "Role policy size: you can't exceed 10,240 characters" (aggregate of the role's inline policies). */
export const ROLE_POLICY_QUOTA = 10240;
/** "Role trust policy length: 2,048 characters" (AssumeRolePolicySizeQuota). */
export const TRUST_POLICY_QUOTA = 2048;
/** "Access keys assigned to an IAM user: 2". */
export const ACCESS_KEYS_PER_USER = 2;
/** STS: session policies passed to AssumeRole ("Policy") may have at most 2,048 characters. */
export const SESSION_POLICY_QUOTA = 2048;
