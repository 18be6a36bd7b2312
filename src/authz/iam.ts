// IAM and STS, after "Actions, resources, and condition keys for AWS Identity and Access
// Management" and "… AWS Security Token Service": users are arn:…:iam::<account>:user/<name>,
// roles arn:…:iam::<account>:role/<name> (IAM ARNs have no region). Key operations without a
// UserName are about the caller. sts:GetCallerIdentity needs no permission (AWS: even an explicit
// deny does not stop it); sts:AssumeRole is checked on the role here, and against the role's
// trust policy by the STS handler.
import type { Args, Check, Rule, ServiceAuthz } from './types.js';

const iamArn = (a: Args, resource: string, account = a.ctx.principal.accountId) => `arn:${a.ctx.scope.partition}:iam::${account}:${resource}`;

function user(a: Args, name: string | undefined): Check {
  if (name === undefined) {
    // The caller itself.
    const p = a.ctx.principal.principal;
    return { resource: `arn:${a.ctx.scope.partition}:${p}` };
  }
  const rec = a.env.iam?.user(a.ctx.principal.accountId, name);
  return { resource: iamArn(a, `user${rec?.path ?? '/'}${rec?.userName ?? name}`) };
}

function role(a: Args, name: string): Check {
  const rec = a.env.iam?.role(a.ctx.principal.accountId, name, a.ctx.scope.partition);
  return { resource: iamArn(a, `role${rec?.path ?? '/'}${rec?.roleName ?? name}`) };
}

const onUser: Rule = { resources: (a) => [user(a, a.input.UserName)] };
const onRole: Rule = { resources: (a) => [role(a, a.input.RoleName)] };

export const iamAuthz: ServiceAuthz = {
  prefix: 'iam',
  style: 'query',
  rules: {
    CreateUser: { resources: (a) => [{ resource: iamArn(a, `user${a.input.Path ?? '/'}${a.input.UserName}`) }], keys: (a) => {
      const out: Record<string, string | string[]> = {};
      const tags = (a.input.Tags ?? []) as { Key: string; Value?: string }[];
      for (const t of tags) out[`aws:RequestTag/${t.Key}`] = t.Value ?? '';
      if (tags.length) out['aws:TagKeys'] = tags.map((t) => t.Key);
      return out;
    } },
    GetUser: onUser,
    ListUsers: {},
    DeleteUser: onUser,
    CreateAccessKey: onUser,
    ListAccessKeys: onUser,
    UpdateAccessKey: onUser,
    DeleteAccessKey: onUser,
    PutUserPolicy: onUser,
    GetUserPolicy: onUser,
    ListUserPolicies: onUser,
    DeleteUserPolicy: onUser,
    CreateRole: { resources: (a) => [{ resource: iamArn(a, `role${a.input.Path ?? '/'}${a.input.RoleName}`) }] },
    GetRole: onRole,
    ListRoles: {},
    DeleteRole: onRole,
    PutRolePolicy: onRole,
    GetRolePolicy: onRole,
    ListRolePolicies: onRole,
    DeleteRolePolicy: onRole,
  },
};

export const stsAuthz: ServiceAuthz = {
  prefix: 'sts',
  style: 'query',
  rules: {
    GetCallerIdentity: { open: true },
    AssumeRole: { resources: (a) => [{ resource: String(a.input.RoleArn) }], keys: (a) => ({ 'sts:RoleSessionName': a.input.RoleSessionName }) },
  },
};
