// From an API call (or a data-channel / gateway event) to a CloudTrail record: who, from
// where, what, on which resources, with which (redacted) parameters, and how it ended.
//
// Redaction rules (the value becomes "HIDDEN_DUE_TO_SECURITY_REASONS", CloudTrail's own
// marker; the member's name stays, so the shape of the call is still visible):
//   - members named like credentials: SecretAccessKey, SessionToken, Password, PrivateKey,
//     Token / TokenValue (ECS Exec and SSM session tokens), and any member whose name
//     contains "secret" (except the `secrets` list below);
//   - key material and payloads: Plaintext, CiphertextBlob (KMS);
//   - task definitions and overrides: every `environment[].value` (only names are kept:
//     environment values often carry credentials, and customer data stays out of the
//     trail the operator can read) and every `secrets[].valueFrom`;
//   - log event messages (`logEvents[].message`) and FilterLogEvents' `filterPattern` (the
//     terms searched for reveal what the logs hold): customer data;
//   - policy documents are kept (they are what an auditor needs to see), as are
//     `nextToken` and `clientToken` (not secrets).
// requestParameters and responseElements larger than 16 KiB after redaction are replaced
// by a note with their size. responseElements are recorded for mutating calls only (as
// CloudTrail does); read-only calls record null.
import { randomUUID } from 'node:crypto';
import type { CallRecord } from '../api/http-server.js';
import { parseArn } from '../domain/arn.js';
import type { CloudTrailRecord } from './trail.js';

export const HIDDEN = 'HIDDEN_DUE_TO_SECURITY_REASONS';
const MAX_PARAMS_BYTES = 16 * 1024;
const MAX_RESOURCES = 25;

const SECRET_NAME = /^(secretaccesskey|sessiontoken|password|oldpassword|newpassword|privatekey|token|tokenvalue|plaintext|ciphertextblob|filterpattern)$|secret(?!s$)/i;

/** SECRET_NAME's verdict per member name (names repeat from call to call). */
const secretNames = new Map<string, boolean>();
function isSecretName(k: string): boolean {
  let hit = secretNames.get(k);
  if (hit === undefined) {
    hit = SECRET_NAME.test(k);
    if (secretNames.size >= 10_000) secretNames.clear();
    secretNames.set(k, hit);
  }
  return hit;
}

/** `o` with its own keys in sorted order (one level). */
export function sortKeys<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) if ((o as Record<string, unknown>)[k] !== undefined) out[k] = (o as Record<string, unknown>)[k];
  return out as T;
}

/** Entries of `list` with `member` hidden (when present), redacted otherwise. */
function hideIn(list: unknown[], member: string, depth: number): unknown[] {
  return list.map((e) => {
    if (!e || typeof e !== 'object' || Array.isArray(e)) return redact(e, depth);
    const r = redact(e, depth) as Record<string, unknown>;
    if (member in r) r[member] = HIDDEN;
    return r;
  });
}

/**
 * A redacted copy of `value`, with every object's keys sorted: the audit trail serializes
 * records with plain JSON.stringify, which is then canonical (trail.ts canonicalJson).
 */
export function redact(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > 16) return HIDDEN;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (isSecretName(k)) out[k] = HIDDEN;
    else if (k === 'environment' && Array.isArray(v)) out[k] = hideIn(v, 'value', depth + 2);
    else if (k === 'secrets' && Array.isArray(v)) out[k] = hideIn(v, 'valueFrom', depth + 2);
    else if (k === 'logEvents' && Array.isArray(v)) out[k] = hideIn(v, 'message', depth + 2);
    else out[k] = redact(v, depth + 1);
  }
  return out;
}

function bounded(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  const r = redact(value);
  // Most values are far below the bound: an upper bound of their JSON's length says so
  // without serializing them (the record's own serialization does that once).
  if (jsonLengthAtMost(r, MAX_PARAMS_BYTES, 0) >= 0) return r;
  const text = JSON.stringify(r);
  // Characters, not bytes: close enough for a bound, and cheaper.
  return text.length > MAX_PARAMS_BYTES ? { berthOmitted: `parameters of about ${text.length} bytes are too large for the trail` } : r;
}

/**
 * `budget` minus an upper bound of the length of JSON.stringify(v) (a string escapes to at
 * most 6 characters per character, a number is at most 25 characters); negative as soon as
 * the bound exceeds the budget, or for anything whose JSON is not plain data (functions, which
 * may be toJSON; bigints, which do not serialize).
 */
function jsonLengthAtMost(v: unknown, budget: number, depth: number): number {
  if (budget < 0) return budget;
  switch (typeof v) {
    case 'string': return budget - 2 - 6 * v.length;
    case 'number': return budget - 25;
    case 'boolean': return budget - 5;
    case 'undefined': return budget - 4;
    case 'object': {
      if (v === null) return budget - 4;
      if (depth > 32) return -1;
      budget -= 2;
      if (Array.isArray(v)) {
        for (const x of v) { budget = jsonLengthAtMost(x, budget - 1, depth + 1); if (budget < 0) return budget; }
        return budget;
      }
      for (const k of Object.keys(v)) {
        budget = jsonLengthAtMost((v as Record<string, unknown>)[k], budget - 4 - 6 * k.length, depth + 1);
        if (budget < 0) return budget;
      }
      return budget;
    }
    default: return -1;
  }
}

const READ_ONLY = /^(Describe|List|Get|Lookup|Filter|Decrypt|Encrypt|GenerateDataKey)/;
export const isReadOnly = (eventName: string): boolean => READ_ONLY.test(eventName);

const RESOURCE_TYPES: Record<string, Record<string, string>> = {
  ecs: {
    cluster: 'AWS::ECS::Cluster', task: 'AWS::ECS::Task', 'task-definition': 'AWS::ECS::TaskDefinition', 'container-instance': 'AWS::ECS::ContainerInstance',
    'capacity-provider': 'AWS::ECS::CapacityProvider', service: 'AWS::ECS::Service', container: 'AWS::ECS::Container', 'task-set': 'AWS::ECS::TaskSet',
  },
  logs: { 'log-group': 'AWS::Logs::LogGroup' },
  kms: { key: 'AWS::KMS::Key', alias: 'AWS::KMS::Alias' },
  iam: { user: 'AWS::IAM::User', role: 'AWS::IAM::Role', policy: 'AWS::IAM::Policy', root: 'AWS::IAM::Root' },
  sts: { 'assumed-role': 'AWS::STS::AssumedRole' },
  ec2: { instance: 'AWS::EC2::Instance', 'instance-event-window': 'AWS::EC2::InstanceEventWindow' },
  ssm: { session: 'AWS::SSM::Session' },
};

/** The CloudTrail resource type of an ARN Berth issues. */
export function resourceType(arn: string): string | undefined {
  const a = parseArn(arn);
  if (!a) return undefined;
  const kind = a.resource.split(/[/:]/)[0]!;
  return RESOURCE_TYPES[a.service]?.[kind];
}

function collectArns(v: unknown, out: Set<string>, depth: number): void {
  if (out.size >= MAX_RESOURCES || depth > 6 || v === null || v === undefined) return;
  if (typeof v === 'string') {
    if (v.startsWith('arn:') && v.length < 2048) out.add(v.replace(/:\*$/, ''));
    return;
  }
  if (typeof v !== 'object') return;
  for (const x of Array.isArray(v) ? v : Object.values(v as object)) collectArns(x, out, depth + 1);
}

export interface ResourceContext { partition: string; region: string; account: string }

/** ARNs named by a call: every ARN in its input and output, plus well-known name parameters. */
export function resourcesOf(service: string, input: Record<string, unknown> | undefined, output: unknown, where: ResourceContext | undefined): CloudTrailRecord['resources'] {
  const arns = new Set<string>();
  if (where && input) {
    const base = `arn:${where.partition}`;
    if (service === 'ecs' && typeof input.cluster === 'string' && !input.cluster.startsWith('arn:')) arns.add(`${base}:ecs:${where.region}:${where.account}:cluster/${input.cluster}`);
    if (service === 'ecs' && typeof input.clusterName === 'string') arns.add(`${base}:ecs:${where.region}:${where.account}:cluster/${input.clusterName}`);
    if (service === 'logs' && typeof input.logGroupName === 'string') arns.add(`${base}:logs:${where.region}:${where.account}:log-group:${input.logGroupName}`);
    if (service === 'kms' && typeof input.KeyId === 'string' && /^[0-9a-f-]{36}$/.test(input.KeyId)) arns.add(`${base}:kms:${where.region}:${where.account}:key/${input.KeyId}`);
    if (service === 'kms' && typeof input.AliasName === 'string') arns.add(`${base}:kms:${where.region}:${where.account}:${input.AliasName}`);
    if (service === 'iam' && typeof input.UserName === 'string') arns.add(`${base}:iam::${where.account}:user/${input.UserName}`);
    if (service === 'iam' && typeof input.RoleName === 'string') arns.add(`${base}:iam::${where.account}:role/${input.RoleName}`);
  }
  collectArns(input, arns, 0);
  if (output && typeof output === 'object') collectArns(output, arns, 0);
  const out: NonNullable<CloudTrailRecord['resources']> = [];
  for (const arn of arns) {
    const entry = resourceEntry(arn);
    if (entry) out.push(entry);
  }
  return out;
}

type ResourceEntry = NonNullable<CloudTrailRecord['resources']>[number];
/** resources[] entries by ARN (the same ARNs come back call after call); shared, frozen. */
const resourceEntries = new Map<string, ResourceEntry | null>();

function resourceEntry(arn: string): ResourceEntry | undefined {
  let entry = resourceEntries.get(arn);
  if (entry === undefined) {
    const type = resourceType(arn);
    const a = type ? parseArn(arn)! : undefined;
    entry = type && a ? ({ ARN: arn, ...(a.account ? { accountId: a.account } : {}), type }) : null;
    if (resourceEntries.size >= 10_000) resourceEntries.clear();
    resourceEntries.set(arn, entry);
  }
  return entry ?? undefined;
}

/** CloudTrail's userIdentity for a principal ARN (root, IAM user, assumed role). */
export function userIdentity(arn: string | undefined, accountId: string | undefined, accessKeyId: string | undefined, userName?: string): Record<string, unknown> {
  if (!arn) return sortKeys({ type: 'Unknown', ...(accessKeyId ? { accessKeyId } : {}), ...(accountId ? { accountId } : {}) });
  // The last one made, per access key (a caller's calls all have the same identity); shared
  // by the records, which only serialize it.
  const cacheKey = accessKeyId ?? '';
  const hit = identities.get(cacheKey);
  if (hit && hit.arn === arn && hit.accountId === accountId && hit.userName === userName) return hit.identity;
  let colons = 0, at = -1;
  while (colons < 5 && (at = arn.indexOf(':', at + 1)) >= 0) colons++;
  const resource = at >= 0 ? arn.slice(at + 1) : '';
  const type = resource === 'root' ? 'Root' : resource.startsWith('user/') ? 'IAMUser' : resource.startsWith('assumed-role/') ? 'AssumedRole'
    : resource.startsWith('role/') ? 'Role' : 'Unknown';
  const name = type === 'IAMUser' ? resource.slice(resource.lastIndexOf('/') + 1) : type === 'Root' ? undefined : userName;
  const identity = (sortKeys({
    type, principalId: type === 'Root' ? accountId : accessKeyId, arn, accountId,
    ...(accessKeyId ? { accessKeyId } : {}), ...(name ? { userName: name } : {}),
  }));
  if (identities.size >= 10_000) identities.clear();
  identities.set(cacheKey, { arn, accountId, userName, identity });
  return identity;
}

const identities = new Map<string, { arn: string; accountId: string | undefined; userName: string | undefined; identity: Record<string, unknown> }>();

let lastSecond = -1;
let lastIso = '';
/** CloudTrail's eventTime (seconds precision), cached per second. */
function isoSeconds(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) { lastSecond = second; lastIso = new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'); }
  return lastIso;
}

/**
 * The CloudTrail record of an API call the server answered. Built member by member in sorted
 * key order (so plain JSON.stringify is its canonical form): V8 makes an object literal with
 * several conditional spreads an order of magnitude more slowly.
 */
export function apiCallRecord(call: CallRecord, accountOfKey: (accessKeyId: string) => string | undefined, region: string | undefined): CloudTrailRecord {
  const ctx = call.ctx;
  const account = ctx?.scope.account ?? (call.accessKeyId ? accountOfKey(call.accessKeyId) : undefined) ?? '';
  const partition = ctx?.scope.partition ?? 'aws';
  const principalArn = ctx ? `arn:${partition}:${ctx.principal.principal}` : undefined;
  const readOnly = isReadOnly(call.action);
  const where = ctx ? { partition, region: ctx.scope.region, account } : undefined;
  const ok = call.status < 400;
  const r: Partial<CloudTrailRecord> = {};
  r.awsRegion = ctx?.scope.region ?? region ?? '';
  if (call.errorCode) {
    r.errorCode = call.errorCode;
    r.errorMessage = (call.errorMessage ?? '').slice(0, 1024);
  }
  r.eventCategory = 'Management';
  r.eventID = randomUUID();
  r.eventName = call.action;
  r.eventSource = `${call.service}.amazonaws.com`;
  r.eventTime = isoSeconds(call.time);
  r.eventType = 'AwsApiCall';
  r.eventVersion = '1.08';
  r.managementEvent = true;
  r.readOnly = readOnly;
  r.recipientAccountId = account;
  r.requestID = call.requestId;
  r.requestParameters = bounded(call.input);
  r.resources = resourcesOf(call.service, call.input, ok ? call.output : undefined, where);
  r.responseElements = ok && !readOnly ? bounded(call.output) : null;
  r.sourceIPAddress = call.sourceIp.replace(/^::ffff:/, '');
  if (call.tls) r.tlsDetails = sortKeys(call.tls);
  if (call.userAgent) r.userAgent = call.userAgent.slice(0, 1024);
  r.userIdentity = userIdentity(principalArn, ctx?.principal.accountId ?? (account || undefined), call.accessKeyId, ctx?.principal.userName);
  return r as CloudTrailRecord;
}

/** A record of something Berth observed outside an API call (data channel, agent gateway). */
export function serviceEventRecord(e: {
  time: number; account: string; region: string; eventSource: string; eventName: string; sourceIp?: string;
  principalArn?: string; accessKeyId?: string; details: Record<string, unknown>; resources?: string[]; errorCode?: string; errorMessage?: string;
}): CloudTrailRecord {
  return sortKeys<CloudTrailRecord>({
    eventVersion: '1.08',
    userIdentity: userIdentity(e.principalArn, e.account || undefined, e.accessKeyId),
    eventTime: isoSeconds(e.time),
    eventSource: e.eventSource,
    eventName: e.eventName,
    awsRegion: e.region,
    sourceIPAddress: (e.sourceIp ?? '').replace(/^::ffff:/, ''),
    requestParameters: null,
    responseElements: null,
    ...(e.errorCode ? { errorCode: e.errorCode, errorMessage: (e.errorMessage ?? '').slice(0, 1024) } : {}),
    requestID: randomUUID(),
    eventID: randomUUID(),
    readOnly: false,
    resources: (e.resources ?? []).flatMap((arn) => { const type = resourceType(arn); return type ? [{ ARN: arn, accountId: e.account, type }] : []; }),
    eventType: 'AwsServiceEvent',
    managementEvent: true,
    recipientAccountId: e.account,
    eventCategory: 'Management',
    serviceEventDetails: redact(e.details),
  });
}
