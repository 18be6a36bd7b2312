// An IAM-compatible subset on the AWS Query protocol (signing name `iam`), so the unmodified
// `aws iam …` CLI works: users, access keys, user and role inline policies, roles.
// IAM is global: its ARNs have no region (arn:aws:iam::<account>:user/<name>); a request
// signed for any region reaches the same identities. Errors are IAM's codes and wording.
import type { Handler, RequestContext } from '../api/context.js';
import { ApiError, type ErrorCode } from '../api/errors.js';
import type { AccessKeyRecord } from '../identity/credentials.js';
import {
  ACCESS_KEYS_PER_USER, MalformedPolicy, parsePolicy, policySize, ROLE_POLICY_QUOTA, TRUST_POLICY_QUOTA, USER_POLICY_QUOTA,
} from './policy-document.js';
import { roleArn, uniqueId, userArn, type IamDirectory, type IamRoleRecord, type IamTag, type IamUserRecord } from './directory.js';
import { OPERATOR_ROLE } from './operator.js';

const iamError = (code: ErrorCode, status: number) => (message: string) => new ApiError(code, message, status);
export const noSuchEntity = iamError('NoSuchEntity', 404);
export const entityAlreadyExists = iamError('EntityAlreadyExists', 409);
export const deleteConflict = iamError('DeleteConflict', 409);
export const iamLimitExceeded = iamError('LimitExceeded', 409);
export const malformedPolicyDocument = iamError('MalformedPolicyDocument', 400);
export const unmodifiableEntity = iamError('UnmodifiableEntity', 400);
export const validationError = iamError('ValidationError', 400);

/** IAM returns policy documents URL-encoded (RFC 3986); the CLI decodes them. */
const encodeDocument = (text: string) => encodeURIComponent(text);

/** IAM names (users, roles, policies): the models' patterns, matched whole. */
const NAME = /^[\w+=,.@-]+$/;
const PATH = /^(\/|\/[\u0021-\u007E]+\/)$/;
/** "Policy documents can contain only … tab, linefeed, carriage return and U+0020 to U+00FF" (IAM quotas page). */
const DOCUMENT = /^[\u0009\u000A\u000D\u0020-\u00FF]+$/;

function checkInput(i: Record<string, unknown>): void {
  for (const member of ['UserName', 'RoleName', 'PolicyName']) {
    const v = i[member];
    if (typeof v === 'string' && !NAME.test(v)) {
      throw validationError(`1 validation error detected: Value '${v}' at '${member[0]!.toLowerCase()}${member.slice(1)}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`);
    }
  }
  for (const member of ['Path', 'PathPrefix']) {
    const v = i[member];
    if (typeof v === 'string' && !(member === 'PathPrefix' ? /^\/[\u0021-\u007F]*$/ : PATH).test(v)) {
      throw validationError(`1 validation error detected: Value '${v}' at '${member[0]!.toLowerCase()}${member.slice(1)}' failed to satisfy constraint: Member must begin and end with a forward slash (/) and contain only printable ASCII characters.`);
    }
  }
  for (const member of ['PolicyDocument', 'AssumeRolePolicyDocument']) {
    const v = i[member];
    if (typeof v === 'string' && !DOCUMENT.test(v)) {
      throw validationError(`1 validation error detected: Value at '${member[0]!.toLowerCase()}${member.slice(1)}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+`);
    }
  }
}

function parseOrThrow(text: string, kind: 'identity' | 'trust') {
  try {
    return parsePolicy(text, kind);
  } catch (e) {
    if (e instanceof MalformedPolicy) throw malformedPolicyDocument(e.message);
    throw e;
  }
}

function page<T>(items: T[], key: (t: T) => string, input: { Marker?: string; MaxItems?: number }): { items: T[]; IsTruncated: boolean; Marker?: string } {
  const max = input.MaxItems ?? 100;
  let start = 0;
  if (input.Marker) {
    let after: string;
    try { after = Buffer.from(input.Marker, 'base64url').toString('utf8'); } catch { throw validationError('Invalid Marker.'); }
    start = items.findIndex((t) => key(t) > after);
    if (start < 0) start = items.length;
  }
  const slice = items.slice(start, start + max);
  const more = start + max < items.length;
  return more
    ? { items: slice, IsTruncated: true, Marker: Buffer.from(key(slice[slice.length - 1]!)).toString('base64url') }
    : { items: slice, IsTruncated: false };
}

export class IamApi {
  constructor(private readonly dir: IamDirectory) {}

  private partition(ctx: RequestContext): string {
    return ctx.scope.partition;
  }

  private account(ctx: RequestContext): string {
    return ctx.principal.accountId;
  }

  private requireUser(ctx: RequestContext, name: string): IamUserRecord {
    const u = this.dir.user(this.account(ctx), name);
    if (!u) throw noSuchEntity(`The user with name ${name} cannot be found.`);
    return u;
  }

  private requireRole(ctx: RequestContext, name: string): IamRoleRecord {
    const r = this.dir.role(this.account(ctx), name, this.partition(ctx));
    if (!r) throw noSuchEntity(`The role with name ${name} cannot be found.`);
    return r;
  }

  private userView(ctx: RequestContext, u: IamUserRecord) {
    return {
      Path: u.path, UserName: u.userName, UserId: u.userId, Arn: userArn(this.partition(ctx), u), CreateDate: u.createdAt,
      ...(u.tags.length ? { Tags: u.tags } : {}),
    };
  }

  private roleView(ctx: RequestContext, r: IamRoleRecord) {
    return {
      Path: r.path, RoleName: r.roleName, RoleId: r.roleId, Arn: roleArn(this.partition(ctx), r), CreateDate: r.createdAt,
      AssumeRolePolicyDocument: encodeDocument(r.trustPolicy), MaxSessionDuration: r.maxSessionDuration,
      ...(r.description !== undefined ? { Description: r.description } : {}), ...(r.tags.length ? { Tags: r.tags } : {}),
    };
  }

  /** The user a key-management call is about: UserName, or the caller when omitted. */
  private keyOwner(ctx: RequestContext, userName: string | undefined): { userName: string; principal: string } {
    const account = this.account(ctx);
    if (userName !== undefined) {
      const u = this.requireUser(ctx, userName);
      return { userName: u.userName, principal: `iam::${account}:user${u.path}${u.userName}` };
    }
    const p = ctx.principal.principal;
    if (p === `iam::${account}:root`) return { userName: 'root', principal: p };
    const m = /^iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(p);
    if (m) return { userName: m[1]!, principal: p };
    throw validationError('Must specify userName when calling with non-User credentials');
  }

  private ownKeys(ctx: RequestContext, owner: { principal: string }): AccessKeyRecord[] {
    return this.dir.credentials.keysOf(this.account(ctx)).filter((k) => !k.session && k.principal === owner.principal)
      .sort((a, b) => a.createdAt - b.createdAt || (a.accessKeyId < b.accessKeyId ? -1 : 1));
  }

  private checkTags(tags: IamTag[] | undefined): IamTag[] {
    const list = tags ?? [];
    if (list.length > 50) throw iamLimitExceeded('Cannot exceed quota for TagsPerUser: 50');
    const seen = new Set<string>();
    for (const t of list) {
      if (/^aws:/i.test(t.Key)) throw validationError(`Tag key ${t.Key} uses the reserved prefix aws:.`);
      if (seen.has(t.Key.toLowerCase())) throw validationError(`Duplicate tag keys found: ${t.Key}. Tag keys are case insensitive.`);
      seen.add(t.Key.toLowerCase());
    }
    return list.map((t) => ({ Key: t.Key, Value: t.Value ?? '' }));
  }

  /** The aggregate size of an entity's inline policies with `name` set to `text`. */
  private checkQuota(policies: Record<string, string>, name: string, text: string, quota: number, entity: string): void {
    const all = { ...policies, [name]: text };
    const size = Object.values(all).reduce((n, t) => n + policySize(t), 0);
    if (size > quota) throw iamLimitExceeded(`Maximum policy size of ${quota} bytes exceeded for ${entity}`);
  }

  private checkPrincipals(ctx: RequestContext, text: string): void {
    const policy = parseOrThrow(text, 'trust');
    for (const s of policy.statements) {
      for (const p of [...(s.principal?.aws ?? []), ...(s.notPrincipal?.aws ?? [])]) {
        const m = /^arn:[^:]+:iam::(\d{12}):(user|role)\/(?:.*\/)?([^/]+)$/.exec(p);
        if (!m || !this.dir.account(m[1]!)) continue;
        const exists = m[2] === 'user' ? this.dir.user(m[1]!, m[3]!) : this.dir.role(m[1]!, m[3]!, this.partition(ctx));
        if (!exists) throw malformedPolicyDocument(`Invalid principal in policy: "AWS":"${p}"`);
      }
    }
  }

  handlers(): Record<string, Handler> {
    const handlers = this.table();
    // Names, paths and documents are checked whole before anything else.
    return Object.fromEntries(Object.entries(handlers).map(([op, h]) => [op, (ctx: RequestContext, i: Record<string, unknown>) => { checkInput(i); return h(ctx, i); }]));
  }

  private table(): Record<string, Handler> {
    const d = this.dir;
    return {
      // Users ------------------------------------------------------------------------------
      CreateUser: (ctx, i: { UserName: string; Path?: string; PermissionsBoundary?: string; Tags?: IamTag[] }) => {
        if (i.PermissionsBoundary !== undefined) throw noSuchEntity(`Scope ARN: ${i.PermissionsBoundary} does not exist or is not attachable.`);
        const account = this.account(ctx);
        const tags = this.checkTags(i.Tags);
        return d.store.tx(() => {
          if (d.user(account, i.UserName)) throw entityAlreadyExists(`User with name ${i.UserName} already exists.`);
          const u: IamUserRecord = {
            userName: i.UserName, userId: uniqueId('AIDA'), path: i.Path ?? '/', accountId: account, createdAt: ctx.clock.now(), policies: {}, tags,
          };
          d.saveUser(u);
          return { User: this.userView(ctx, u) };
        });
      },
      GetUser: (ctx, i: { UserName?: string }) => {
        if (i.UserName !== undefined) return { User: this.userView(ctx, this.requireUser(ctx, i.UserName)) };
        const owner = this.keyOwner(ctx, undefined);
        if (owner.userName === 'root') {
          const account = this.account(ctx);
          return { User: { Path: '/', UserName: account, UserId: account, Arn: `arn:${this.partition(ctx)}:iam::${account}:root`, CreateDate: d.account(account)?.createdAt ?? 0 } };
        }
        return { User: this.userView(ctx, this.requireUser(ctx, owner.userName)) };
      },
      ListUsers: (ctx, i: { PathPrefix?: string; Marker?: string; MaxItems?: number }) => {
        const users = d.users(this.account(ctx)).filter((u) => i.PathPrefix === undefined || u.path.startsWith(i.PathPrefix));
        const p = page(users, (u) => u.userName.toLowerCase(), i);
        return { Users: p.items.map((u) => this.userView(ctx, u)), IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
      },
      DeleteUser: (ctx, i: { UserName: string }) => d.store.tx(() => {
        const u = this.requireUser(ctx, i.UserName);
        if (this.ownKeys(ctx, { principal: `iam::${u.accountId}:user${u.path}${u.userName}` }).length) {
          throw deleteConflict('Cannot delete entity, must delete access keys first.');
        }
        if (Object.keys(u.policies).length) throw deleteConflict('Cannot delete entity, must delete policies first.');
        d.deleteUser(u.accountId, u.userName);
        return {};
      }),

      // Access keys --------------------------------------------------------------------------
      CreateAccessKey: (ctx, i: { UserName?: string }) => d.store.tx(() => {
        const owner = this.keyOwner(ctx, i.UserName);
        if (this.ownKeys(ctx, owner).length >= ACCESS_KEYS_PER_USER) {
          throw iamLimitExceeded(`Cannot exceed quota for AccessKeysPerUser: ${ACCESS_KEYS_PER_USER}`);
        }
        const { record, secret } = d.credentials.createAccessKey(this.account(ctx), owner.userName, owner.principal, ctx.clock.now());
        return { AccessKey: { UserName: owner.userName, AccessKeyId: record.accessKeyId, Status: record.status, SecretAccessKey: secret, CreateDate: record.createdAt } };
      }),
      ListAccessKeys: (ctx, i: { UserName?: string; Marker?: string; MaxItems?: number }) => {
        const owner = this.keyOwner(ctx, i.UserName);
        const p = page(this.ownKeys(ctx, owner), (k) => k.accessKeyId, i);
        return {
          AccessKeyMetadata: p.items.map((k) => ({ UserName: owner.userName, AccessKeyId: k.accessKeyId, Status: k.status, CreateDate: k.createdAt })),
          IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}),
        };
      },
      UpdateAccessKey: (ctx, i: { UserName?: string; AccessKeyId: string; Status: 'Active' | 'Inactive' }) => {
        const owner = this.keyOwner(ctx, i.UserName);
        const key = this.ownKeys(ctx, owner).find((k) => k.accessKeyId === i.AccessKeyId);
        if (!key) throw noSuchEntity(`The Access Key with id ${i.AccessKeyId} cannot be found.`);
        d.credentials.setStatus(key.accessKeyId, i.Status);
        return {};
      },
      DeleteAccessKey: (ctx, i: { UserName?: string; AccessKeyId: string }) => {
        const owner = this.keyOwner(ctx, i.UserName);
        const key = this.ownKeys(ctx, owner).find((k) => k.accessKeyId === i.AccessKeyId);
        if (!key) throw noSuchEntity(`The Access Key with id ${i.AccessKeyId} cannot be found.`);
        d.credentials.deleteAccessKey(key.accessKeyId);
        return {};
      },

      // User inline policies -------------------------------------------------------------------
      PutUserPolicy: (ctx, i: { UserName: string; PolicyName: string; PolicyDocument: string }) => d.store.tx(() => {
        const u = this.requireUser(ctx, i.UserName);
        parseOrThrow(i.PolicyDocument, 'identity');
        this.checkQuota(u.policies, i.PolicyName, i.PolicyDocument, USER_POLICY_QUOTA, `user ${u.userName}`);
        u.policies[i.PolicyName] = i.PolicyDocument;
        d.saveUser(u);
        return {};
      }),
      GetUserPolicy: (ctx, i: { UserName: string; PolicyName: string }) => {
        const u = this.requireUser(ctx, i.UserName);
        const text = u.policies[i.PolicyName];
        if (text === undefined) throw noSuchEntity(`The user policy with name ${i.PolicyName} cannot be found.`);
        return { UserName: u.userName, PolicyName: i.PolicyName, PolicyDocument: encodeDocument(text) };
      },
      ListUserPolicies: (ctx, i: { UserName: string; Marker?: string; MaxItems?: number }) => {
        const u = this.requireUser(ctx, i.UserName);
        const p = page(Object.keys(u.policies).sort(), (n) => n, i);
        return { PolicyNames: p.items, IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
      },
      DeleteUserPolicy: (ctx, i: { UserName: string; PolicyName: string }) => d.store.tx(() => {
        const u = this.requireUser(ctx, i.UserName);
        if (u.policies[i.PolicyName] === undefined) throw noSuchEntity(`The user policy with name ${i.PolicyName} cannot be found.`);
        delete u.policies[i.PolicyName];
        d.saveUser(u);
        return {};
      }),

      // Roles ------------------------------------------------------------------------------------
      CreateRole: (ctx, i: { RoleName: string; AssumeRolePolicyDocument: string; Path?: string; Description?: string; MaxSessionDuration?: number; PermissionsBoundary?: string; Tags?: IamTag[] }) => {
        if (i.PermissionsBoundary !== undefined) throw noSuchEntity(`Scope ARN: ${i.PermissionsBoundary} does not exist or is not attachable.`);
        const account = this.account(ctx);
        const tags = this.checkTags(i.Tags);
        if (policySize(i.AssumeRolePolicyDocument) > TRUST_POLICY_QUOTA) throw iamLimitExceeded(`Cannot exceed quota for ACLSizePerRole: ${TRUST_POLICY_QUOTA}`);
        this.checkPrincipals(ctx, i.AssumeRolePolicyDocument);
        return d.store.tx(() => {
          if (d.role(account, i.RoleName)) throw entityAlreadyExists(`Role with name ${i.RoleName} already exists.`);
          const r: IamRoleRecord = {
            roleName: i.RoleName, roleId: uniqueId('AROA'), path: i.Path ?? '/', accountId: account, createdAt: ctx.clock.now(),
            maxSessionDuration: i.MaxSessionDuration ?? 3600, trustPolicy: i.AssumeRolePolicyDocument, policies: {}, tags,
            ...(i.Description !== undefined ? { description: i.Description } : {}),
          };
          d.saveRole(r);
          return { Role: this.roleView(ctx, r) };
        });
      },
      GetRole: (ctx, i: { RoleName: string }) => ({ Role: this.roleView(ctx, this.requireRole(ctx, i.RoleName)) }),
      ListRoles: (ctx, i: { PathPrefix?: string; Marker?: string; MaxItems?: number }) => {
        const roles = d.roles(this.account(ctx), this.partition(ctx)).filter((r) => i.PathPrefix === undefined || r.path.startsWith(i.PathPrefix));
        const p = page(roles, (r) => r.roleName.toLowerCase(), i);
        return { Roles: p.items.map((r) => this.roleView(ctx, r)), IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
      },
      DeleteRole: (ctx, i: { RoleName: string }) => d.store.tx(() => {
        const r = this.requireRole(ctx, i.RoleName);
        if (r.builtin) throw unmodifiableEntity(`Cannot perform the operation on the protected role '${OPERATOR_ROLE}' - this role is only modifiable by Berth`);
        if (Object.keys(r.policies).length) throw deleteConflict('Cannot delete entity, must delete policies first.');
        d.deleteRole(r.accountId, r.roleName);
        return {};
      }),
      PutRolePolicy: (ctx, i: { RoleName: string; PolicyName: string; PolicyDocument: string }) => d.store.tx(() => {
        const r = this.requireRole(ctx, i.RoleName);
        parseOrThrow(i.PolicyDocument, 'identity');
        this.checkQuota(r.policies, i.PolicyName, i.PolicyDocument, ROLE_POLICY_QUOTA, `role ${r.roleName}`);
        r.policies[i.PolicyName] = i.PolicyDocument;
        d.saveRole(r);
        return {};
      }),
      GetRolePolicy: (ctx, i: { RoleName: string; PolicyName: string }) => {
        const r = this.requireRole(ctx, i.RoleName);
        const text = r.policies[i.PolicyName];
        if (text === undefined) throw noSuchEntity(`The role policy with name ${i.PolicyName} cannot be found.`);
        return { RoleName: r.roleName, PolicyName: i.PolicyName, PolicyDocument: encodeDocument(text) };
      },
      ListRolePolicies: (ctx, i: { RoleName: string; Marker?: string; MaxItems?: number }) => {
        const r = this.requireRole(ctx, i.RoleName);
        const p = page(Object.keys(r.policies).sort(), (n) => n, i);
        return { PolicyNames: p.items, IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
      },
      DeleteRolePolicy: (ctx, i: { RoleName: string; PolicyName: string }) => d.store.tx(() => {
        const r = this.requireRole(ctx, i.RoleName);
        if (r.policies[i.PolicyName] === undefined) throw noSuchEntity(`The role policy with name ${i.PolicyName} cannot be found.`);
        delete r.policies[i.PolicyName];
        d.saveRole(r);
        return {};
      }),
    };
  }
}
