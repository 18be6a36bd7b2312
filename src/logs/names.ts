// CloudWatch Logs rules shared by the store and the API: names, ARNs, retention values,
// and the event position tokens.
import { ApiError, invalidParameter } from '../api/errors.js';
import { formatArn, parseArn, type Scope } from '../domain/arn.js';

export const GROUP_NAME_PATTERN = '[\\.\\-_/#A-Za-z0-9]+';
const GROUP_NAME = /^[.\-_/#A-Za-z0-9]{1,512}$/;
/** Stream names may hold anything but ':' and '*'. */
const STREAM_NAME = /^[^:*]{1,512}$/;

/** The retention values CloudWatch Logs accepts, in days. */
export const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;
const RETENTION = new Set<number>(RETENTION_DAYS);

export const DAY_MS = 86_400_000;

/** CloudWatch truncates (the awslogs driver splits) messages above 256 KiB. */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** What a response of events may hold, counted as CloudWatch does (message bytes + 26). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;
export const EVENT_OVERHEAD_BYTES = 26;

export const resourceNotFound = (message: string) => new ApiError('ResourceNotFoundException', message);
export const resourceAlreadyExists = (message: string) => new ApiError('ResourceAlreadyExistsException', message);
export const validationException = (message: string) => new ApiError('ValidationException', message);
export const GROUP_NOT_FOUND = 'The specified log group does not exist.';
export const STREAM_NOT_FOUND = 'The specified log stream does not exist.';

const patternError = (value: string, param: string, pattern: string) =>
  invalidParameter(`1 validation error detected: Value '${value.slice(0, 100)}' at '${param}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${pattern}`);

export function checkGroupName(name: string, param = 'logGroupName'): string {
  if (!GROUP_NAME.test(name)) {
    if (name.length > 512 || name.length === 0) throw invalidParameter(`1 validation error detected: Value at '${param}' failed to satisfy constraint: Member must have length between 1 and 512`);
    throw patternError(name, param, GROUP_NAME_PATTERN);
  }
  return name;
}

export function checkStreamName(name: string, param = 'logStreamName'): string {
  if (!STREAM_NAME.test(name)) {
    if (name.length > 512 || name.length === 0) throw invalidParameter(`1 validation error detected: Value at '${param}' failed to satisfy constraint: Member must have length between 1 and 512`);
    throw patternError(name, param, '[^:*]*');
  }
  return name;
}

export function checkRetention(days: number): number {
  if (!RETENTION.has(days)) {
    throw invalidParameter(`1 validation error detected: Value '${days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [${RETENTION_DAYS.join(', ')}]`);
  }
  return days;
}

/** `arn:<partition>:logs:<region>:<account>:log-group:<name>` (without the `:*` DescribeLogGroups' `arn` has). */
export function groupArn(scope: Scope, name: string): string {
  return formatArn({ partition: scope.partition, service: 'logs', region: scope.region, account: scope.account, resource: `log-group:${name}` });
}

export function streamArn(scope: Scope, group: string, stream: string): string {
  return `${groupArn(scope, group)}:log-stream:${stream}`;
}

/**
 * The log group a request names: `logGroupName` or `logGroupIdentifier` (a name or an ARN,
 * with or without the trailing `:*`), exactly one of them. An ARN of another account or
 * region names a group this caller cannot see.
 */
export function groupNameOf(scope: Scope, input: { logGroupName?: string; logGroupIdentifier?: string }, required = true): string | undefined {
  const { logGroupName, logGroupIdentifier } = input;
  if (logGroupName !== undefined && logGroupIdentifier !== undefined) {
    throw invalidParameter('LogGroup name and LogGroup ARN are mutually exclusive parameters.');
  }
  if (logGroupName !== undefined) return checkGroupName(logGroupName);
  if (logGroupIdentifier === undefined) {
    if (!required) return undefined;
    throw invalidParameter('Either logGroupName or logGroupIdentifier must be specified.');
  }
  return identifierToName(scope, logGroupIdentifier, 'logGroupIdentifier');
}

export function identifierToName(scope: Scope, identifier: string, param: string): string {
  if (!identifier.startsWith('arn:')) return checkGroupName(identifier, param);
  const arn = parseArn(identifier);
  if (!arn || arn.service !== 'logs' || !arn.resource.startsWith('log-group:')) {
    throw invalidParameter(`${param} '${identifier}' is not a log group ARN; use a name or arn:${scope.partition}:logs:${scope.region}:${scope.account}:log-group:NAME.`);
  }
  let name = arn.resource.slice('log-group:'.length);
  if (name.endsWith(':*')) name = name.slice(0, -2);
  checkGroupName(name, param);
  if (arn.account !== scope.account || arn.region !== scope.region || arn.partition !== scope.partition) throw resourceNotFound(GROUP_NOT_FOUND);
  return name;
}

// Event positions ---------------------------------------------------------------------

/** A point between events: events sort by (timestamp, id); id is the insertion order. */
export interface Position { ts: number; id: number }

const digits = (p: Position) => String(p.ts).padStart(20, '0') + String(p.id).padStart(36, '0');

/** A 56-digit number, like CloudWatch's event ids and tokens. */
export const eventId = digits;

/** `f/<56 digits>` or `b/<56 digits>`: the GetLogEvents tokens. */
export function formatStreamToken(direction: 'f' | 'b', p: Position): string {
  return `${direction}/${digits(p)}`;
}

export function parseStreamToken(token: string): { direction: 'f' | 'b'; position: Position } {
  const m = /^([fb])\/(\d{20})(\d{36})$/.exec(token);
  const ts = m ? Number(m[2]) : NaN;
  const id = m ? Number(m[3]) : NaN;
  if (!m || !Number.isSafeInteger(ts) || !Number.isSafeInteger(id)) {
    throw invalidParameter('The specified nextToken is invalid. Pass nextForwardToken or nextBackwardToken exactly as a previous GetLogEvents response returned it.');
  }
  return { direction: m[1] as 'f' | 'b', position: { ts, id } };
}

/** Opaque tokens for the list operations (FilterLogEvents, Describe*). */
export function encodeToken(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeToken<T>(token: string | undefined, check: (v: any) => boolean): T | undefined {
  if (token === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (check(v)) return v as T;
  } catch { /* fall through */ }
  throw invalidParameter('The specified nextToken is invalid. Pass the nextToken exactly as a previous response returned it.');
}

/** Cuts a message to at most `max` UTF-8 bytes without splitting a character. */
export function truncateMessage(message: string, max = MAX_MESSAGE_BYTES): string {
  if (message.length * 3 <= max) return message;
  const buf = Buffer.from(message, 'utf8');
  if (buf.length <= max) return message;
  let end = max;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}
