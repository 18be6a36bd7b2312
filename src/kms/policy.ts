// Key policies: stored as given and validated against the IAM policy grammar KMS accepts
// (JSON object, Version, Statement with Effect, Principal, Action/NotAction, optional
// Resource and Condition). Evaluation is deliberately simple, and documented as such:
//   - keys belong to one account and only that account's principals reach them (no grants,
//     no cross-account access), as with KMS's default key policy;
//   - a `Deny` statement whose Principal matches the caller (`*`, the caller's ARN, its
//     account id or the account's root ARN) and whose Action matches (`kms:*`, wildcards,
//     case-insensitive; or NotAction that does not) refuses the call with AccessDeniedException;
//     statements with a Condition are not evaluated (they never deny);
//   - Allow statements are not required (IAM policies, when present, decide what callers
//     of the account may do).
// The lockout safety check of PutKeyPolicy/CreateKey refuses a policy that would deny the
// caller kms:PutKeyPolicy, unless BypassPolicyLockoutSafetyCheck is set.
import { ApiError } from '../api/errors.js';

const MAX_POLICY_BYTES = 32 * 1024;

const malformed = (m: string) => new ApiError('MalformedPolicyDocumentException', m);

export function defaultKeyPolicy(keyArn: string, account: string): string {
  const partition = keyArn.split(':')[1];
  return JSON.stringify({
    Version: '2012-10-17', Id: 'key-default-1',
    Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:${partition}:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }],
  }, null, 2);
}

interface Statement { Sid?: string; Effect: string; Principal?: unknown; NotPrincipal?: unknown; Action?: unknown; NotAction?: unknown; Resource?: unknown; NotResource?: unknown; Condition?: unknown }

const strings = (v: unknown): string[] | undefined =>
  typeof v === 'string' ? [v] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;

const parsed = new Map<string, Statement[]>();

function parse(text: string): Statement[] {
  const cached = parsed.get(text);
  if (cached) return cached;
  const list = parseUncached(text);
  if (parsed.size > 1000) parsed.clear();
  parsed.set(text, list);
  return list;
}

function parseUncached(text: string): Statement[] {
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES) throw new ApiError('LimitExceededException', `The key policy is ${Buffer.byteLength(text)} bytes; the maximum is ${MAX_POLICY_BYTES}.`);
  let doc: any;
  try { doc = JSON.parse(text); } catch (e) { throw malformed(`The key policy is not valid JSON: ${(e as Error).message}`); }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw malformed('The key policy must be a JSON object.');
  for (const k of Object.keys(doc)) if (!['Version', 'Id', 'Statement'].includes(k)) throw malformed(`Unknown policy element '${k}' (expected Version, Id, Statement).`);
  if (doc.Version !== undefined && doc.Version !== '2012-10-17' && doc.Version !== '2008-10-17') throw malformed(`Unsupported policy Version '${doc.Version}'; use 2012-10-17.`);
  const list = Array.isArray(doc.Statement) ? doc.Statement : doc.Statement && typeof doc.Statement === 'object' ? [doc.Statement] : undefined;
  if (!list || list.length === 0) throw malformed('The key policy needs a Statement (an object or a non-empty list).');
  list.forEach((s: any, i: number) => {
    const where = `Statement ${s?.Sid ? `'${s.Sid}'` : i + 1}`;
    if (!s || typeof s !== 'object' || Array.isArray(s)) throw malformed(`${where} must be an object.`);
    for (const k of Object.keys(s)) {
      if (!['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition'].includes(k)) throw malformed(`${where}: unknown element '${k}'.`);
    }
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw malformed(`${where}: Effect must be Allow or Deny.`);
    if ((s.Principal === undefined) === (s.NotPrincipal === undefined)) throw malformed(`${where}: a key policy statement needs exactly one of Principal or NotPrincipal.`);
    const p = s.Principal ?? s.NotPrincipal;
    if (p !== '*' && !(p && typeof p === 'object' && !Array.isArray(p) && Object.values(p).every((v) => strings(v)))) {
      throw malformed(`${where}: Principal must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}.`);
    }
    if ((s.Action === undefined) === (s.NotAction === undefined)) throw malformed(`${where}: needs exactly one of Action or NotAction.`);
    const actions = strings(s.Action ?? s.NotAction);
    if (!actions || actions.some((a) => a !== '*' && !/^kms:[A-Za-z*?]+$/.test(a))) throw malformed(`${where}: actions must be "*" or kms:<Action> (wildcards * and ? allowed).`);
    if (s.Resource !== undefined && !strings(s.Resource)) throw malformed(`${where}: Resource must be a string or a list of strings.`);
    if (s.NotResource !== undefined && !strings(s.NotResource)) throw malformed(`${where}: NotResource must be a string or a list of strings.`);
    if (s.Condition !== undefined && (typeof s.Condition !== 'object' || Array.isArray(s.Condition) || s.Condition === null)) throw malformed(`${where}: Condition must be an object.`);
  });
  return list as Statement[];
}

const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');

function principalMatches(p: unknown, caller: string, account: string): boolean {
  if (p === '*') return true;
  const aws = strings((p as { AWS?: unknown }).AWS) ?? [];
  const root = `${caller.split(':').slice(0, 2).join(':')}:iam::${account}:root`;
  return aws.some((a) => a === '*' || a === caller || a === account || a === root || glob(a).test(caller));
}

function actionMatches(s: Statement, action: string): boolean {
  if (s.Action !== undefined) return strings(s.Action)!.some((a) => glob(a).test(action));
  return !strings(s.NotAction)!.some((a) => glob(a).test(action));
}

/** Validates a key policy; throws MalformedPolicyDocumentException (or LimitExceeded) with what to fix. */
export function checkKeyPolicy(text: string, caller: string, account: string, bypassLockoutCheck = false): void {
  parse(text);
  if (!bypassLockoutCheck && policyDenies(text, caller, account, 'kms:PutKeyPolicy')) {
    throw malformed('The new key policy will not allow you to update the key policy in the future (it denies you kms:PutKeyPolicy). Set BypassPolicyLockoutSafetyCheck to apply it anyway.');
  }
}

/** Whether an explicit Deny of the policy applies to this caller and action. */
export function policyDenies(text: string, caller: string, account: string, action: string): boolean {
  let statements: Statement[];
  try { statements = parse(text); } catch { return false; }
  for (const s of statements) {
    if (s.Effect !== 'Deny' || s.Condition !== undefined) continue;
    const who = s.Principal !== undefined ? principalMatches(s.Principal, caller, account) : !principalMatches(s.NotPrincipal, caller, account);
    if (who && actionMatches(s, action)) return true;
  }
  return false;
}
