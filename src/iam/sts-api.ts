// An STS subset on the AWS Query protocol (signing name `sts`): GetCallerIdentity and
// AssumeRole. AssumeRole mints temporary credentials — an `ASIA…` key, its secret and a
// session token — that expire on the server clock; requests signed with them must carry the
// token (X-Amz-Security-Token), checked with the signature (identity/credentials.ts).
//
// Who may assume a role: the caller's identity policies must allow sts:AssumeRole on the
// role (checked by the authorization table before this handler runs, as AWS does for
// cross-account access; Berth applies that rule within an account too), and the role's
// trust policy must allow the caller. The account root may not assume roles.
import type { Handler, RequestContext } from '../api/context.js';
import { ApiError } from '../api/errors.js';
import { MalformedPolicy, parsePolicy, policySize, SESSION_POLICY_QUOTA } from './policy-document.js';
import { judgeTrust, RequestContextKeys } from './policy-evaluator.js';
import { roleArn, type IamDirectory } from './directory.js';

const accessDenied = (message: string) => new ApiError('AccessDenied', message, 403);
const validationError = (message: string) => new ApiError('ValidationError', message, 400);

/** Temporary credentials may be used for at least 15 minutes (DurationSeconds ≥ 900). */
export const MIN_SESSION_SECONDS = 900;
/** Role chaining (an assumed-role session assuming a role) is limited to one hour, as in AWS. */
export const CHAINED_SESSION_SECONDS = 3600;

export class StsApi {
  constructor(private readonly dir: IamDirectory) {}

  handlers(): Record<string, Handler> {
    return {
      GetCallerIdentity: (ctx) => {
        const who = this.dir.resolve(this.dir.credentials.record(ctx.principal.accessKeyId) ?? { ...ctx.principal, accountId: ctx.principal.accountId }, ctx.scope.partition);
        const userId = who.type === 'Account' ? who.account : String(who.keys['aws:userid'] ?? '');
        return { UserId: userId, Account: who.account, Arn: who.arn };
      },
      AssumeRole: (ctx, i: { RoleArn: string; RoleSessionName: string; DurationSeconds?: number; Policy?: string; ExternalId?: string; PolicyArns?: unknown[]; Tags?: unknown[]; TransitiveTagKeys?: unknown[]; SerialNumber?: string; TokenCode?: string; SourceIdentity?: string; ProvidedContexts?: unknown[] }) =>
        this.assumeRole(ctx, i),
    };
  }

  private assumeRole(ctx: RequestContext, i: { RoleArn: string; RoleSessionName: string; DurationSeconds?: number; Policy?: string; PolicyArns?: unknown[]; Tags?: unknown[]; SerialNumber?: string }) {
    const partition = ctx.scope.partition;
    const callerKey = this.dir.credentials.record(ctx.principal.accessKeyId);
    if (!callerKey) throw accessDenied('The security token included in the request is invalid.');
    const caller = this.dir.resolve(callerKey, partition);
    const denied = () => accessDenied(`User: ${caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${i.RoleArn}`);
    if (caller.root) throw accessDenied('Roles may not be assumed by root accounts.');
    if (i.PolicyArns?.length) throw validationError('PolicyArns are not supported by Berth: pass an inline session policy in Policy.');
    if (i.Tags?.length) throw validationError('Session tags are not supported by Berth.');
    if (i.SerialNumber !== undefined) throw validationError('MFA is not supported by Berth.');
    const m = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]+)$/.exec(i.RoleArn);
    if (!m) throw validationError(`${i.RoleArn} is invalid: RoleArn must be the ARN of a role, e.g. arn:${partition}:iam::123456789012:role/NAME.`);
    const [, , account, name] = m as unknown as [string, string, string, string];
    const role = this.dir.account(account) ? this.dir.role(account, name, partition) : undefined;
    if (!role || roleArn(partition, role) !== i.RoleArn) throw denied();
    const trust = this.dir.policy(role.trustPolicy, `trust policy of role ${role.roleName}`, 'trust');
    const context = new RequestContextKeys({ ...caller.keys, 'aws:CurrentTime': new Date(ctx.clock.now()).toISOString(), 'aws:SourceIp': ctx.sourceIp, 'sts:RoleSessionName': i.RoleSessionName });
    const verdict = trust ? judgeTrust(trust, 'sts:AssumeRole', { arn: caller.arn, account: caller.account, ...(caller.roleArn ? { roleArn: caller.roleArn } : {}) }, context) : undefined;
    if (!verdict?.allowed || verdict.denied) throw denied();

    const chained = caller.type === 'AssumedRole';
    const limit = chained ? Math.min(CHAINED_SESSION_SECONDS, role.maxSessionDuration) : role.maxSessionDuration;
    const duration = i.DurationSeconds ?? Math.min(3600, limit);
    if (duration < MIN_SESSION_SECONDS) throw validationError(`1 validation error detected: Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to ${MIN_SESSION_SECONDS}`);
    if (duration > limit) {
      throw validationError(chained
        ? `The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.`
        : `The requested DurationSeconds exceeds the MaxSessionDuration set for this role.`);
    }
    let packed: number | undefined;
    if (i.Policy !== undefined) {
      try { parsePolicy(i.Policy, 'identity'); } catch (e) {
        if (e instanceof MalformedPolicy) throw new ApiError('MalformedPolicyDocument', e.message, 400);
        throw e;
      }
      const size = policySize(i.Policy);
      packed = Math.ceil((size / SESSION_POLICY_QUOTA) * 100);
      if (size > SESSION_POLICY_QUOTA) throw new ApiError('PackedPolicyTooLarge', `Packed policy consumes ${packed}% of allotted space, please use smaller policy.`, 400);
    }
    const now = ctx.clock.now();
    const expiresAt = now + duration * 1000;
    // Expired sessions of the account are removed as new ones are made.
    this.dir.credentials.reapSessions(account, now - 24 * 3600 * 1000);
    const arn = `arn:${partition}:sts::${account}:assumed-role/${role.roleName}/${i.RoleSessionName}`;
    const { record, secret, sessionToken } = this.dir.credentials.createSessionKey(
      account, `sts::${account}:assumed-role/${role.roleName}/${i.RoleSessionName}`, `${role.roleName}/${i.RoleSessionName}`,
      { issuedAt: now, expiresAt, roleArn: roleArn(partition, role), roleName: role.roleName, sessionName: i.RoleSessionName, sourceArn: caller.arn, ...(i.Policy !== undefined ? { policy: i.Policy } : {}) },
    );
    return {
      Credentials: { AccessKeyId: record.accessKeyId, SecretAccessKey: secret, SessionToken: sessionToken, Expiration: expiresAt },
      AssumedRoleUser: { AssumedRoleId: `${role.roleId}:${i.RoleSessionName}`, Arn: arn },
      ...(packed !== undefined ? { PackedPolicySize: packed } : {}),
    };
  }
}
