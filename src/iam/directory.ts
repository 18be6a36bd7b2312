// Accounts, IAM users and roles, and what a request's principal is allowed: the policies that
// apply to it and its global condition keys. `principal` caches that per access key and drops
// it whenever any account, user, role, access key (sessions included) or bootstrap document
// may have changed (the store's write generation of those kinds), so a policy change, a
// deleted user or key or a changed role applies on the very next request, as if resolved
// fresh.
//
// Principals (the `principal` of an access key, without `arn:<partition>:`):
//   iam::<account>:root                        the account's administrator: everything in its account
//   iam::<account>:user/<path><name>           an IAM user: its inline policies
//   sts::<account>:assumed-role/<role>/<name>  a role session: the role's inline policies, its session
//                                              policy, and for BerthOperator the built-in policy and
//                                              the immutable boundary (iam/operator.ts)
import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { AccessKeyRecord, Account, Credentials } from '../identity/credentials.js';
import { newAccountId } from '../identity/credentials.js';
import { MalformedPolicy, parsePolicy, type Policy, type PolicyKind } from './policy-document.js';
import type { ContextInput, PolicySet } from './policy-evaluator.js';
import {
  BERTH_OPERATOR_POLICY, OPERATOR_BOUNDARY, OPERATOR_ROLE, OPERATOR_USER_POLICY, OPERATOR_USER_POLICY_DOCUMENT, operatorTrustPolicy,
} from './operator.js';

const GLOBAL = 'global';
const USER = 'iam-user';
const ROLE = 'iam-role';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export interface IamTag { Key: string; Value: string }

export interface IamUserRecord {
  userName: string;
  userId: string;
  path: string;
  accountId: string;
  createdAt: number;
  /** Inline policies: name → document (as given). */
  policies: Record<string, string>;
  tags: IamTag[];
}

export interface IamRoleRecord {
  roleName: string;
  roleId: string;
  path: string;
  accountId: string;
  createdAt: number;
  description?: string;
  maxSessionDuration: number;
  trustPolicy: string;
  policies: Record<string, string>;
  tags: IamTag[];
  /** Berth's own role (BerthOperator): cannot be deleted; its trust policy is Berth's. */
  builtin?: boolean;
}

export function uniqueId(prefix: 'AIDA' | 'AROA'): string {
  let s: string = prefix;
  for (const b of randomBytes(17)) s += ALNUM[b % 32];
  return s;
}

/** A stable id for the built-in role of an account (AROA + 17 characters). */
function builtinRoleId(accountId: string): string {
  let s = 'AROA';
  for (const b of createHash('sha256').update(`berth-operator-role:${accountId}`).digest().subarray(0, 17)) s += ALNUM[b % 32];
  return s;
}

export const userArn = (partition: string, u: { accountId: string; path: string; userName: string }) =>
  `arn:${partition}:iam::${u.accountId}:user${u.path}${u.userName}`;
export const roleArn = (partition: string, r: { accountId: string; path: string; roleName: string }) =>
  `arn:${partition}:iam::${r.accountId}:role${r.path}${r.roleName}`;

/** Everything authorization needs to know about who is calling. */
export interface ResolvedPrincipal {
  /** e.g. arn:aws:iam::123456789012:user/alice (as in AccessDenied messages). */
  arn: string;
  account: string;
  type: 'Account' | 'User' | 'AssumedRole';
  /** The account's administrator: allowed everything in its account. */
  root: boolean;
  /** Policies that apply (not for root). */
  policies: PolicySet;
  /** Global condition keys of the principal (aws:PrincipalArn, aws:username, …). */
  keys: ContextInput;
  /** For role sessions. */
  roleArn?: string;
}

/** Every document kind a resolved principal depends on (see `IamDirectory.principal`). */
const PRINCIPAL_KINDS: readonly string[] = ['account', 'bootstrap', USER, ROLE, 'access-key'];

export class IamDirectory {
  /** Parsed policies by their text: documents are immutable, so parsing once is enough. */
  private readonly parsed = new Map<string, Policy>();
  /** `principal`'s cache: per access key record (as Credentials.lookup keeps it). */
  private readonly principals = new WeakMap<object, { generation: number; partition: string; who: ResolvedPrincipal }>();

  constructor(readonly store: Store, readonly credentials: Credentials) {}

  // Accounts ---------------------------------------------------------------------------------

  account(accountId: string): Account | undefined {
    return this.store.get<Account>('account', GLOBAL, accountId);
  }

  accounts(): Account[] {
    return this.store.list<Account>('account', GLOBAL);
  }

  /** The operator account's id, once `berth operator-key` created it. */
  operatorAccount(): string | undefined {
    return this.store.get<{ accountId: string }>('bootstrap', GLOBAL, 'operator')?.accountId;
  }

  /** Creates the operator account once; returns its id. */
  ensureOperatorAccount(now: number): string {
    return this.store.tx(() => {
      const existing = this.operatorAccount();
      if (existing) return existing;
      const account: Account = { accountId: newAccountId(), name: 'operator', createdAt: now };
      this.store.put('account', GLOBAL, account.accountId, account);
      this.store.put('bootstrap', GLOBAL, 'operator', { accountId: account.accountId });
      return account.accountId;
    });
  }

  /**
   * An operator user in the operator account with the operator policy and a fresh access key
   * (`berth operator-key`). Users keep at most two keys: the oldest goes when a third is minted.
   */
  mintOperatorKey(userName: string, now: number): { accountId: string; userName: string; accessKeyId: string; secret: string } {
    const accountId = this.ensureOperatorAccount(now);
    return this.store.tx(() => {
      let user = this.user(accountId, userName);
      if (!user) {
        user = { userName, userId: uniqueId('AIDA'), path: '/', accountId, createdAt: now, policies: {}, tags: [] };
      }
      user.policies[OPERATOR_USER_POLICY] = OPERATOR_USER_POLICY_DOCUMENT;
      this.saveUser(user);
      const keys = this.credentials.keysOf(accountId).filter((k) => !k.session && k.userName === userName).sort((a, b) => a.createdAt - b.createdAt);
      while (keys.length >= 2) this.credentials.deleteAccessKey(keys.shift()!.accessKeyId);
      const { record, secret } = this.credentials.createAccessKey(accountId, userName, `iam::${accountId}:user/${userName}`, now);
      return { accountId, userName, accessKeyId: record.accessKeyId, secret };
    });
  }

  // Users and roles ------------------------------------------------------------------------------

  user(accountId: string, name: string): IamUserRecord | undefined {
    return this.store.get<IamUserRecord>(USER, accountId, name.toLowerCase());
  }

  users(accountId: string): IamUserRecord[] {
    return this.store.list<IamUserRecord>(USER, accountId);
  }

  saveUser(u: IamUserRecord): void {
    this.store.put(USER, u.accountId, u.userName.toLowerCase(), u);
  }

  deleteUser(accountId: string, name: string): void {
    this.store.delete(USER, accountId, name.toLowerCase());
  }

  isBuiltinRole(accountId: string, name: string): boolean {
    return name.toLowerCase() === OPERATOR_ROLE.toLowerCase() && accountId !== this.operatorAccount();
  }

  /** A role of the account; BerthOperator exists in every customer account. */
  role(accountId: string, name: string, partition = 'aws'): IamRoleRecord | undefined {
    const stored = this.store.get<IamRoleRecord>(ROLE, accountId, name.toLowerCase());
    if (!this.isBuiltinRole(accountId, name)) return stored;
    return {
      roleName: OPERATOR_ROLE, roleId: stored?.roleId ?? builtinRoleId(accountId), path: '/', accountId,
      createdAt: stored?.createdAt ?? this.account(accountId)?.createdAt ?? 0,
      description: 'Berth fleet operators: instance lifecycle and platform versions; never customer data (immutable permissions boundary).',
      maxSessionDuration: 3600, trustPolicy: operatorTrustPolicy(this.operatorAccount(), partition),
      policies: stored?.policies ?? {}, tags: stored?.tags ?? [], builtin: true,
    };
  }

  roles(accountId: string, partition = 'aws'): IamRoleRecord[] {
    const stored = this.store.list<IamRoleRecord>(ROLE, accountId).filter((r) => !this.isBuiltinRole(accountId, r.roleName));
    const builtin = accountId !== this.operatorAccount() ? [this.role(accountId, OPERATOR_ROLE, partition)!] : [];
    return [...builtin, ...stored].sort((a, b) => (a.roleName.toLowerCase() < b.roleName.toLowerCase() ? -1 : 1));
  }

  saveRole(r: IamRoleRecord): void {
    this.store.put(ROLE, r.accountId, r.roleName.toLowerCase(), r);
  }

  deleteRole(accountId: string, name: string): void {
    this.store.delete(ROLE, accountId, name.toLowerCase());
  }

  // Policies ----------------------------------------------------------------------------------

  /** Parses (once) a stored policy document. */
  policy(text: string, source: string, kind: PolicyKind = 'identity'): Policy | undefined {
    const key = `${kind}\0${text}`;
    let p = this.parsed.get(key);
    if (!p) {
      try { p = parsePolicy(text, kind); } catch (e) { if (e instanceof MalformedPolicy) return undefined; throw e; }
      if (this.parsed.size > 10_000) this.parsed.clear();
      this.parsed.set(key, p);
    }
    return { ...p, source };
  }

  private inline(policies: Record<string, string>, owner: string): Policy[] {
    const out: Policy[] = [];
    for (const [name, text] of Object.entries(policies)) {
      const p = this.policy(text, `${owner}, inline policy ${name}`);
      if (p) out.push(p);
    }
    return out;
  }

  /**
   * `resolve` of a stored access key record, cached: valid while no document it may depend on
   * changed (the store's generation of PRINCIPAL_KINDS, which every put, delete, rolled-back
   * transaction and other process's commit moves). The result is frozen: callers share it.
   */
  principal(key: AccessKeyRecord, partition: string): ResolvedPrincipal {
    const generation = this.store.generation(PRINCIPAL_KINDS);
    const hit = this.principals.get(key);
    if (hit && hit.generation === generation && hit.partition === partition) return hit.who;
    const who = this.resolve(key, partition);
    Object.freeze(who.keys);
    Object.freeze(who.policies);
    Object.freeze(who);
    this.principals.set(key, { generation, partition, who });
    return who;
  }

  /** Who an access key's request comes from, and what applies to it (read fresh from the store). */
  resolve(key: Pick<AccessKeyRecord, 'accountId' | 'principal' | 'accessKeyId' | 'session'>, partition: string): ResolvedPrincipal {
    const account = key.accountId;
    const base = { 'aws:PrincipalAccount': account };
    if (key.principal === `iam::${account}:root`) {
      const arn = `arn:${partition}:iam::${account}:root`;
      return { arn, account, type: 'Account', root: true, policies: { identity: [] },
        keys: { ...base, 'aws:PrincipalArn': arn, 'aws:PrincipalType': 'Account', 'aws:userid': account } };
    }
    const user = /^iam::(\d{12}):user\/(?:.*\/)?([^/]+)$/.exec(key.principal);
    if (user) {
      const record = this.user(account, user[2]!);
      const arn = record ? userArn(partition, record) : `arn:${partition}:${key.principal}`;
      return {
        arn, account, type: 'User', root: false,
        // A deleted user's keys are gone too; should one linger, it gets nothing.
        policies: { identity: record ? this.inline(record.policies, `user ${record.userName}`) : [] },
        keys: { ...base, 'aws:PrincipalArn': arn, 'aws:PrincipalType': 'User', 'aws:username': user[2]!, 'aws:userid': record?.userId ?? '' },
      };
    }
    const session = /^sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(key.principal);
    if (session && key.session) {
      const role = this.role(account, session[2]!, partition);
      const arn = `arn:${partition}:${key.principal}`;
      const theRoleArn = role ? roleArn(partition, role) : key.session.roleArn;
      const identity = role ? this.inline(role.policies, `role ${role.roleName}`) : [];
      const set: PolicySet = { identity };
      if (role?.builtin) {
        set.identity = [BERTH_OPERATOR_POLICY, ...identity];
        set.boundary = [OPERATOR_BOUNDARY];
      }
      if (key.session.policy) {
        const p = this.policy(key.session.policy, 'session policy');
        set.session = p ? [p] : [];
      }
      return {
        arn, account, type: 'AssumedRole', root: false, policies: role ? set : { identity: [] }, roleArn: theRoleArn,
        keys: {
          ...base, 'aws:PrincipalArn': theRoleArn, 'aws:PrincipalType': 'AssumedRole',
          'aws:userid': `${role?.roleId ?? ''}:${key.session.sessionName}`, 'aws:TokenIssueTime': new Date(key.session.issuedAt).toISOString(),
        },
      };
    }
    // Unknown principal shape: nothing is allowed.
    return { arn: `arn:${partition}:${key.principal}`, account, type: 'User', root: false, policies: { identity: [] }, keys: base };
  }
}
