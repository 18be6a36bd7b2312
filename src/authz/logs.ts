// CloudWatch Logs (the subset Berth answers), after "Actions, resources, and condition keys for
// Amazon CloudWatch Logs". Log groups are checked as `arn:…:logs:<region>:<account>:log-group:<name>:*`
// (the form CloudWatch Logs evaluates group-level actions against, hence the `:*` its policies
// carry), log streams as `…:log-group:<name>:log-stream:<stream>`. DescribeLogGroups is
// authorised group by group: the caller sees only the groups it may describe.
import { sk } from '../ecs/common.js';
import { regionalArn, requestTags, type Args, type Check, type Rule, type ServiceAuthz } from './types.js';

function groupName(a: Args): string {
  const id = (a.input.logGroupIdentifier ?? a.input.logGroupName ?? '') as string;
  if (!id.startsWith('arn:')) return id;
  let name = id.slice(id.indexOf(':log-group:') + ':log-group:'.length);
  if (name.endsWith(':*')) name = name.slice(0, -2);
  return name;
}

function groupTags(a: Args, name: string): Record<string, string> {
  const row = a.env.logs?.store.group(sk(a.ctx.scope), name);
  if (!row?.tags) return {};
  try { return JSON.parse(row.tags) as Record<string, string>; } catch { return {}; }
}

const group = (a: Args, name = groupName(a)): Check =>
  ({ resource: regionalArn(a.ctx, 'logs', `log-group:${name}:*`), tags: groupTags(a, name) });

const stream = (a: Args, streamName: string): Check =>
  ({ resource: regionalArn(a.ctx, 'logs', `log-group:${groupName(a)}:log-stream:${streamName}`), tags: groupTags(a, groupName(a)) });

const onGroup: Rule = { resources: (a) => [group(a)] };

export const logsAuthz: ServiceAuthz = {
  prefix: 'logs',
  style: 'json',
  rules: {
    CreateLogGroup: { resources: (a) => [group(a)], keys: (a) => requestTags(a.input.tags ?? {}) },
    DeleteLogGroup: onGroup,
    DescribeLogGroups: {
      resources: () => [],
      list: { field: 'logGroups', check: (item: { logGroupName: string }, a) => group(a, item.logGroupName) },
    },
    PutRetentionPolicy: onGroup,
    DeleteRetentionPolicy: onGroup,
    PutLogGroupDeletionProtection: onGroup,
    AssociateKmsKey: onGroup,
    DisassociateKmsKey: onGroup,
    CreateLogStream: { resources: (a) => [stream(a, a.input.logStreamName)] },
    DeleteLogStream: { resources: (a) => [stream(a, a.input.logStreamName)] },
    DescribeLogStreams: onGroup,
    PutLogEvents: { resources: (a) => [stream(a, a.input.logStreamName)] },
    GetLogEvents: { resources: (a) => [stream(a, a.input.logStreamName)] },
    FilterLogEvents: onGroup,
  },
};
