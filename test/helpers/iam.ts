// Identities for tests: IAM users with policies, operator keys, assumed-role sessions, and
// raw signed AWS Query requests (IAM, STS) for what the CLI cannot send.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ECSClient } from '@aws-sdk/client-ecs';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { repoRoot, type BerthProcess } from './berth.js';
import { raw } from './raw.js';

export interface Keys { accessKeyId: string; secretAccessKey: string; sessionToken?: string }

/** Environment for the aws CLI acting as `keys`. */
export function cliEnv(keys: Keys): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    ...(keys.sessionToken ? { AWS_SESSION_TOKEN: keys.sessionToken } : { AWS_SESSION_TOKEN: '' }),
  };
}

/** Runs the aws CLI as `keys`; throws with stderr on failure unless `allowFailure`. */
export function awsAs(berth: BerthProcess, keys: Keys, args: string[]) {
  return berth.aws(args, { env: cliEnv(keys) });
}

export function mustAws(berth: BerthProcess, args: string[], keys?: Keys): any {
  const r = keys ? awsAs(berth, keys, args) : berth.aws(args);
  if (r.status !== 0) throw new Error(`aws ${args.join(' ')} failed: ${r.stderr}`);
  return r.json;
}

export function rootKeys(berth: BerthProcess): Keys {
  return { accessKeyId: berth.creds.accessKeyId, secretAccessKey: berth.creds.secretAccessKey };
}

/** An IAM user with one inline policy and an access key (through the aws CLI, as root). */
export function userWithPolicy(berth: BerthProcess, name: string, policy: unknown | undefined): Keys {
  mustAws(berth, ['iam', 'create-user', '--user-name', name]);
  if (policy !== undefined) {
    mustAws(berth, ['iam', 'put-user-policy', '--user-name', name, '--policy-name', 'access', '--policy-document', JSON.stringify(policy)]);
  }
  const key = mustAws(berth, ['iam', 'create-access-key', '--user-name', name]).AccessKey;
  return { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
}

/** `berth operator-key`: an operator user's keys and the operator account. */
export function operatorKey(berth: BerthProcess, name = 'operator'): Keys & { account: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'operator-key', '--name', name], { env: berth.env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`berth operator-key failed: ${r.stderr}`);
  const get = (n: string) => new RegExp(`^export ${n}='([^']*)'$`, 'm').exec(r.stdout)?.[1] ?? '';
  return { accessKeyId: get('AWS_ACCESS_KEY_ID'), secretAccessKey: get('AWS_SECRET_ACCESS_KEY'), account: /operator account (\d{12})/.exec(r.stdout)![1]! };
}

/** sts assume-role through the aws CLI. */
export function assumeRole(berth: BerthProcess, keys: Keys, roleArn: string, session = 'test', extra: string[] = []): Keys & { expiration: string; arn: string } {
  const out = mustAws(berth, ['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', session, ...extra], keys);
  return {
    accessKeyId: out.Credentials.AccessKeyId, secretAccessKey: out.Credentials.SecretAccessKey, sessionToken: out.Credentials.SessionToken,
    expiration: out.Credentials.Expiration, arn: out.AssumedRoleUser.Arn,
  };
}

const sdkCredentials = (k: Keys) => ({ accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey, ...(k.sessionToken ? { sessionToken: k.sessionToken } : {}) });

export function ecsAs(berth: BerthProcess, keys: Keys): ECSClient {
  return new ECSClient({ endpoint: berth.creds.endpoint, region: berth.creds.region, credentials: sdkCredentials(keys), maxAttempts: 1 });
}

export function logsAs(berth: BerthProcess, keys: Keys): CloudWatchLogsClient {
  return new CloudWatchLogsClient({ endpoint: berth.creds.endpoint, region: berth.creds.region, credentials: sdkCredentials(keys), maxAttempts: 1 });
}

export interface SignedResponse { status: number; body: string; json: any; code?: string; message?: string }

/** A signed request: AWS Query (form body) when `target` is absent, AWS JSON 1.1 otherwise. */
export async function signedCall(berth: BerthProcess, keys: Keys, service: string, body: string,
  opts: { target?: string; signingDate?: Date; region?: string; tamper?: (h: Record<string, string>) => void } = {}): Promise<SignedResponse> {
  const r = await raw({ ...berth.creds, accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey }, '', body, {
    service, target: opts.target ?? '',
    headers: {
      'content-type': opts.target ? 'application/x-amz-json-1.1' : 'application/x-www-form-urlencoded; charset=utf-8',
      ...(keys.sessionToken ? { 'x-amz-security-token': keys.sessionToken } : {}),
    },
    ...(opts.signingDate ? { signingDate: opts.signingDate } : {}), ...(opts.region ? { region: opts.region } : {}), ...(opts.tamper ? { tamper: opts.tamper } : {}),
  });
  const code = r.json?.__type ?? /<Code>([^<]*)<\/Code>/.exec(r.body)?.[1];
  const message = r.json?.message ?? /<Message>([^<]*)<\/Message>/.exec(r.body)?.[1];
  return { status: r.status, body: r.body, json: r.json, ...(code ? { code } : {}), ...(message ? { message } : {}) };
}

/** An AWS Query call: `Action=…&Version=…&<params>`. */
export function queryCall(berth: BerthProcess, keys: Keys, service: 'iam' | 'sts' | 'ec2', action: string, params: Record<string, string> = {},
  opts: { signingDate?: Date; tamper?: (h: Record<string, string>) => void } = {}): Promise<SignedResponse> {
  const version = service === 'iam' ? '2010-05-08' : service === 'sts' ? '2011-06-15' : '2016-11-15';
  const body = new URLSearchParams({ Action: action, Version: version, ...params }).toString();
  return signedCall(berth, keys, service, body, opts);
}

/** An AWS JSON 1.1 call. */
export function jsonCall(berth: BerthProcess, keys: Keys, service: string, target: string, input: unknown, opts: { signingDate?: Date } = {}): Promise<SignedResponse> {
  return signedCall(berth, keys, service, JSON.stringify(input), { ...opts, target });
}
