// The policy language, table-driven: parsing and IAM's validation errors, and evaluation as
// IAM does it (default deny, explicit deny wins, wildcards, NotAction/NotResource, every
// condition operator, IfExists, set operators, policy variables, boundaries, session policies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  compilePattern, evaluate, IamDirectory, judgeTrust, mayAllow, MalformedPolicy, parsePolicy, policySize, RequestContextKeys,
  type ContextInput, type Policy, type PolicySet,
} from '../../src/iam/index.js';
import { Credentials } from '../../src/identity/credentials.js';
import { MasterKey } from '../../src/identity/master-key.js';
import { SqliteStore } from '../../src/store/store.js';

const ACCOUNT = '123456789012';
const CLUSTER_A = `arn:aws:ecs:us-east-1:${ACCOUNT}:cluster/a`;
const CLUSTER_B = `arn:aws:ecs:us-east-1:${ACCOUNT}:cluster/b`;
const TASK_A = `arn:aws:ecs:us-east-1:${ACCOUNT}:task/a/0123456789abcdef0123456789abcdef`;

const policy = (...statements: unknown[]): Policy => parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: statements }));
const allow = (Action: unknown, Resource: unknown = '*', Condition?: unknown) => ({ Effect: 'Allow', Action, Resource, ...(Condition ? { Condition } : {}) });
const deny = (Action: unknown, Resource: unknown = '*', Condition?: unknown) => ({ Effect: 'Deny', Action, Resource, ...(Condition ? { Condition } : {}) });

interface Case {
  name: string;
  policies: unknown[][];
  action: string;
  resource?: string;
  context?: ContextInput;
  boundary?: unknown[];
  session?: unknown[];
  expect: 'allow' | 'implicit' | 'explicit';
  by?: string;
}

const cases: Case[] = [
  // Basics
  { name: 'no policy: default deny', policies: [], action: 'ecs:ListClusters', expect: 'implicit' },
  { name: 'allow on *', policies: [[allow('ecs:ListClusters')]], action: 'ecs:ListClusters', expect: 'allow' },
  { name: 'allow of another action does not allow', policies: [[allow('ecs:ListClusters')]], action: 'ecs:DeleteCluster', resource: CLUSTER_A, expect: 'implicit' },
  { name: 'deny alone', policies: [[deny('ecs:*')]], action: 'ecs:ListClusters', expect: 'explicit' },
  { name: 'explicit deny wins in the same policy', policies: [[allow('ecs:*'), deny('ecs:DeleteCluster', CLUSTER_A)]], action: 'ecs:DeleteCluster', resource: CLUSTER_A, expect: 'explicit' },
  { name: 'explicit deny wins across policies', policies: [[allow('*')], [deny('ecs:DeleteCluster')]], action: 'ecs:DeleteCluster', resource: CLUSTER_A, expect: 'explicit' },
  { name: 'deny on another resource leaves the allow', policies: [[allow('ecs:*'), deny('ecs:DeleteCluster', CLUSTER_B)]], action: 'ecs:DeleteCluster', resource: CLUSTER_A, expect: 'allow' },
  // Action wildcards
  { name: 'action * ', policies: [[allow('*')]], action: 'logs:GetLogEvents', resource: 'arn:aws:logs:us-east-1:1:log-group:g:log-stream:s', expect: 'allow' },
  { name: 'action prefix wildcard', policies: [[allow('ecs:Describe*')]], action: 'ecs:DescribeTasks', resource: TASK_A, expect: 'allow' },
  { name: 'action prefix wildcard misses', policies: [[allow('ecs:Describe*')]], action: 'ecs:ListTasks', resource: TASK_A, expect: 'implicit' },
  { name: 'action ? wildcard', policies: [[allow('ecs:?istClusters')]], action: 'ecs:ListClusters', expect: 'allow' },
  { name: 'action names are case-insensitive', policies: [[allow('ECS:listclusters')]], action: 'ecs:ListClusters', expect: 'allow' },
  { name: 'service wildcard does not cross services', policies: [[allow('ecs:*')]], action: 'logs:GetLogEvents', resource: '*', expect: 'implicit' },
  { name: 'list of actions', policies: [[allow(['ecs:ListClusters', 'ecs:DescribeClusters'], CLUSTER_A)]], action: 'ecs:DescribeClusters', resource: CLUSTER_A, expect: 'allow' },
  // Resource wildcards
  { name: 'resource exact', policies: [[allow('ecs:DescribeClusters', CLUSTER_A)]], action: 'ecs:DescribeClusters', resource: CLUSTER_A, expect: 'allow' },
  { name: 'resource exact misses', policies: [[allow('ecs:DescribeClusters', CLUSTER_A)]], action: 'ecs:DescribeClusters', resource: CLUSTER_B, expect: 'implicit' },
  { name: 'resource wildcard in resource part', policies: [[allow('ecs:DescribeTasks', `arn:aws:ecs:*:${ACCOUNT}:task/a/*`)]], action: 'ecs:DescribeTasks', resource: TASK_A, expect: 'allow' },
  { name: 'resource wildcard keeps to its component', policies: [[allow('ecs:DescribeClusters', 'arn:aws:ecs:us-*:cluster/a')]], action: 'ecs:DescribeClusters', resource: CLUSTER_A, expect: 'implicit' },
  { name: 'a short ARN pattern: its last part matches the rest', policies: [[allow('ecs:DescribeClusters', 'arn:aws:ecs:*')]], action: 'ecs:DescribeClusters', resource: CLUSTER_A, expect: 'allow' },
  { name: 'resource wildcard in the last part spans colons', policies: [[allow('logs:GetLogEvents', 'arn:aws:logs:*:*:log-group:/app:*')]], action: 'logs:GetLogEvents', resource: 'arn:aws:logs:us-east-1:1:log-group:/app:log-stream:web/1', expect: 'allow' },
  { name: 'ARN resource does not match an action without resource type', policies: [[allow('ecs:ListServices', CLUSTER_A)]], action: 'ecs:ListServices', resource: '*', expect: 'implicit' },
  // NotAction / NotResource
  { name: 'NotAction allows the rest', policies: [[{ Effect: 'Allow', NotAction: 'iam:*', Resource: '*' }]], action: 'ecs:ListClusters', expect: 'allow' },
  { name: 'NotAction excludes its actions', policies: [[{ Effect: 'Allow', NotAction: 'iam:*', Resource: '*' }]], action: 'iam:CreateUser', resource: `arn:aws:iam::${ACCOUNT}:user/x`, expect: 'implicit' },
  { name: 'Deny with NotAction denies everything else', policies: [[allow('*'), { Effect: 'Deny', NotAction: ['ecs:Describe*', 'ecs:List*'], Resource: '*' }]], action: 'ecs:DeleteCluster', resource: CLUSTER_A, expect: 'explicit' },
  { name: 'NotResource allows other resources', policies: [[{ Effect: 'Allow', Action: 'ecs:*', NotResource: CLUSTER_B }]], action: 'ecs:DeleteCluster', resource: CLUSTER_A, expect: 'allow' },
  { name: 'NotResource excludes its resources', policies: [[{ Effect: 'Allow', Action: 'ecs:*', NotResource: CLUSTER_B }]], action: 'ecs:DeleteCluster', resource: CLUSTER_B, expect: 'implicit' },
  // String operators
  { name: 'StringEquals holds', policies: [[allow('ecs:RunTask', '*', { StringEquals: { 'aws:ResourceTag/team': 'red' } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/team': 'red' }, expect: 'allow' },
  { name: 'StringEquals fails on another value', policies: [[allow('ecs:RunTask', '*', { StringEquals: { 'aws:ResourceTag/team': 'red' } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/team': 'blue' }, expect: 'implicit' },
  { name: 'StringEquals fails when the key is missing', policies: [[allow('ecs:RunTask', '*', { StringEquals: { 'aws:ResourceTag/team': 'red' } })]], action: 'ecs:RunTask', expect: 'implicit' },
  { name: 'StringEquals: values are ORed', policies: [[allow('ecs:RunTask', '*', { StringEquals: { 'aws:ResourceTag/team': ['red', 'blue'] } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/team': 'blue' }, expect: 'allow' },
  { name: 'StringEquals is case-sensitive', policies: [[allow('ecs:RunTask', '*', { StringEquals: { 'aws:ResourceTag/team': 'red' } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/team': 'RED' }, expect: 'implicit' },
  { name: 'condition key names are case-insensitive', policies: [[allow('ecs:RunTask', '*', { StringEquals: { 'AWS:resourcetag/team': 'red' } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/team': 'red' }, expect: 'allow' },
  { name: 'keys are ANDed', policies: [[allow('ecs:ExecuteCommand', '*', { StringEquals: { 'ecs:container-name': 'web', 'aws:ResourceTag/env': 'dev' } })]], action: 'ecs:ExecuteCommand', context: { 'ecs:container-name': 'web', 'aws:ResourceTag/env': 'prod' }, expect: 'implicit' },
  { name: 'operators are ANDed', policies: [[allow('ecs:ExecuteCommand', '*', { StringEquals: { 'ecs:container-name': 'web' }, ArnEquals: { 'ecs:cluster': CLUSTER_A } })]], action: 'ecs:ExecuteCommand', context: { 'ecs:container-name': 'web', 'ecs:cluster': CLUSTER_B }, expect: 'implicit' },
  { name: 'StringNotEquals holds for another value', policies: [[allow('ecs:ExecuteCommand', '*', { StringNotEquals: { 'ecs:container-name': 'db' } })]], action: 'ecs:ExecuteCommand', context: { 'ecs:container-name': 'web' }, expect: 'allow' },
  { name: 'StringNotEquals fails on the value', policies: [[allow('ecs:ExecuteCommand', '*', { StringNotEquals: { 'ecs:container-name': 'db' } })]], action: 'ecs:ExecuteCommand', context: { 'ecs:container-name': 'db' }, expect: 'implicit' },
  { name: 'StringNotEquals holds when the key is missing', policies: [[allow('ecs:ExecuteCommand', '*', { StringNotEquals: { 'ecs:container-name': 'db' } })]], action: 'ecs:ExecuteCommand', expect: 'allow' },
  { name: 'StringEqualsIgnoreCase', policies: [[allow('ecs:RunTask', '*', { StringEqualsIgnoreCase: { 'aws:ResourceTag/team': 'red' } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/team': 'RED' }, expect: 'allow' },
  { name: 'StringNotEqualsIgnoreCase', policies: [[allow('ecs:RunTask', '*', { StringNotEqualsIgnoreCase: { 'aws:ResourceTag/team': 'red' } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/team': 'RED' }, expect: 'implicit' },
  { name: 'StringLike with *', policies: [[allow('ecs:ExecuteCommand', '*', { StringLike: { 'ecs:container-name': 'web-*' } })]], action: 'ecs:ExecuteCommand', context: { 'ecs:container-name': 'web-1' }, expect: 'allow' },
  { name: 'StringLike with ?', policies: [[allow('ecs:ExecuteCommand', '*', { StringLike: { 'ecs:container-name': 'web-?' } })]], action: 'ecs:ExecuteCommand', context: { 'ecs:container-name': 'web-12' }, expect: 'implicit' },
  { name: 'StringNotLike', policies: [[allow('ecs:ExecuteCommand', '*', { StringNotLike: { 'ecs:container-name': 'db*' } })]], action: 'ecs:ExecuteCommand', context: { 'ecs:container-name': 'db-main' }, expect: 'implicit' },
  { name: 'StringNotLike holds for other values', policies: [[allow('ecs:ExecuteCommand', '*', { StringNotLike: { 'ecs:container-name': 'db*' } })]], action: 'ecs:ExecuteCommand', context: { 'ecs:container-name': 'web' }, expect: 'allow' },
  // ARN operators
  { name: 'ArnEquals', policies: [[allow('ecs:ListServices', '*', { ArnEquals: { 'ecs:cluster': CLUSTER_A } })]], action: 'ecs:ListServices', context: { 'ecs:cluster': CLUSTER_A }, expect: 'allow' },
  { name: 'ArnEquals misses another cluster', policies: [[allow('ecs:ListServices', '*', { ArnEquals: { 'ecs:cluster': CLUSTER_A } })]], action: 'ecs:ListServices', context: { 'ecs:cluster': CLUSTER_B }, expect: 'implicit' },
  { name: 'ArnLike with wildcards per component', policies: [[allow('ecs:ListServices', '*', { ArnLike: { 'ecs:cluster': 'arn:aws:ecs:*:*:cluster/a*' } })]], action: 'ecs:ListServices', context: { 'ecs:cluster': CLUSTER_A }, expect: 'allow' },
  { name: 'ArnNotEquals', policies: [[allow('ecs:ListServices', '*', { ArnNotEquals: { 'ecs:cluster': CLUSTER_B } })]], action: 'ecs:ListServices', context: { 'ecs:cluster': CLUSTER_A }, expect: 'allow' },
  { name: 'ArnNotLike', policies: [[allow('ecs:ListServices', '*', { ArnNotLike: { 'ecs:cluster': 'arn:aws:ecs:*:*:cluster/*' } })]], action: 'ecs:ListServices', context: { 'ecs:cluster': CLUSTER_A }, expect: 'implicit' },
  { name: 'aws:PrincipalArn with ArnLike', policies: [[allow('ecs:ListClusters', '*', { ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:user/ops-*` } })]], action: 'ecs:ListClusters', context: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:user/ops-alice` }, expect: 'allow' },
  // Bool, Null, Numeric, Date, IP
  { name: 'Bool aws:SecureTransport false denies', policies: [[allow('*'), deny('*', '*', { Bool: { 'aws:SecureTransport': 'false' } })]], action: 'ecs:ListClusters', context: { 'aws:SecureTransport': false }, expect: 'explicit' },
  { name: 'Bool aws:SecureTransport true passes', policies: [[allow('*'), deny('*', '*', { Bool: { 'aws:SecureTransport': false } })]], action: 'ecs:ListClusters', context: { 'aws:SecureTransport': true }, expect: 'allow' },
  { name: 'Null true: key absent', policies: [[allow('ecs:CreateCluster', '*', { Null: { 'aws:RequestTag/team': 'true' } })]], action: 'ecs:CreateCluster', expect: 'allow' },
  { name: 'Null false: key present required', policies: [[allow('ecs:CreateCluster', '*', { Null: { 'aws:RequestTag/team': 'false' } })]], action: 'ecs:CreateCluster', expect: 'implicit' },
  { name: 'NumericLessThan', policies: [[allow('ecs:RunTask', '*', { NumericLessThan: { 'ecs:task-cpu': 1024 } })]], action: 'ecs:RunTask', context: { 'ecs:task-cpu': 512 }, expect: 'allow' },
  { name: 'NumericGreaterThanEquals', policies: [[allow('ecs:RunTask', '*', { NumericGreaterThanEquals: { 'ecs:task-cpu': '1024' } })]], action: 'ecs:RunTask', context: { 'ecs:task-cpu': 512 }, expect: 'implicit' },
  { name: 'DateLessThan on aws:CurrentTime', policies: [[allow('ecs:ListClusters', '*', { DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } })]], action: 'ecs:ListClusters', context: { 'aws:CurrentTime': '2026-06-01T00:00:00Z' }, expect: 'allow' },
  { name: 'DateGreaterThan on aws:CurrentTime', policies: [[allow('ecs:ListClusters', '*', { DateGreaterThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } })]], action: 'ecs:ListClusters', context: { 'aws:CurrentTime': '2026-06-01T00:00:00Z' }, expect: 'implicit' },
  { name: 'IpAddress in CIDR', policies: [[allow('ecs:ListClusters', '*', { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } })]], action: 'ecs:ListClusters', context: { 'aws:SourceIp': '10.1.2.3' }, expect: 'allow' },
  { name: 'NotIpAddress', policies: [[allow('*'), deny('*', '*', { NotIpAddress: { 'aws:SourceIp': ['127.0.0.1/32', '::1'] } })]], action: 'ecs:ListClusters', context: { 'aws:SourceIp': '192.0.2.1' }, expect: 'explicit' },
  // IfExists and set operators
  { name: 'StringEqualsIfExists holds when the key is missing', policies: [[allow('ecs:RunTask', '*', { StringEqualsIfExists: { 'aws:ResourceTag/team': 'red' } })]], action: 'ecs:RunTask', expect: 'allow' },
  { name: 'StringEqualsIfExists checks a present key', policies: [[allow('ecs:RunTask', '*', { StringEqualsIfExists: { 'aws:ResourceTag/team': 'red' } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/team': 'blue' }, expect: 'implicit' },
  { name: 'ArnEqualsIfExists', policies: [[allow('ecs:RunTask', '*', { ArnEqualsIfExists: { 'ecs:cluster': CLUSTER_A } })]], action: 'ecs:RunTask', context: { 'ecs:cluster': CLUSTER_B }, expect: 'implicit' },
  { name: 'ForAllValues: every request tag key allowed', policies: [[allow('ecs:TagResource', '*', { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['team', 'env'] } })]], action: 'ecs:TagResource', context: { 'aws:TagKeys': ['team'] }, expect: 'allow' },
  { name: 'ForAllValues: one key not allowed', policies: [[allow('ecs:TagResource', '*', { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['team', 'env'] } })]], action: 'ecs:TagResource', context: { 'aws:TagKeys': ['team', 'owner'] }, expect: 'implicit' },
  { name: 'ForAnyValue: one provider matches', policies: [[allow('ecs:RunTask', '*', { 'ForAnyValue:ArnLike': { 'ecs:capacity-provider': 'arn:aws:ecs:*:*:capacity-provider/spot*' } })]], action: 'ecs:RunTask', context: { 'ecs:capacity-provider': [`arn:aws:ecs:us-east-1:${ACCOUNT}:capacity-provider/od`, `arn:aws:ecs:us-east-1:${ACCOUNT}:capacity-provider/spot1`] }, expect: 'allow' },
  { name: 'ForAnyValue: missing key fails', policies: [[allow('ecs:RunTask', '*', { 'ForAnyValue:StringEquals': { 'aws:TagKeys': 'team' } })]], action: 'ecs:RunTask', expect: 'implicit' },
  // Policy variables
  { name: '${aws:username} in a resource', policies: [[allow('iam:CreateAccessKey', `arn:aws:iam::${ACCOUNT}:user/\${aws:username}`)]], action: 'iam:CreateAccessKey', resource: `arn:aws:iam::${ACCOUNT}:user/alice`, context: { 'aws:username': 'alice' }, expect: 'allow' },
  { name: '${aws:username} for another user', policies: [[allow('iam:CreateAccessKey', `arn:aws:iam::${ACCOUNT}:user/\${aws:username}`)]], action: 'iam:CreateAccessKey', resource: `arn:aws:iam::${ACCOUNT}:user/bob`, context: { 'aws:username': 'alice' }, expect: 'implicit' },
  { name: 'a variable without a value matches nothing', policies: [[allow('iam:CreateAccessKey', `arn:aws:iam::${ACCOUNT}:user/\${aws:username}`)]], action: 'iam:CreateAccessKey', resource: `arn:aws:iam::${ACCOUNT}:user/alice`, expect: 'implicit' },
  { name: 'variables in condition values', policies: [[allow('ecs:RunTask', '*', { StringEquals: { 'aws:ResourceTag/owner': '${aws:username}' } })]], action: 'ecs:RunTask', context: { 'aws:ResourceTag/owner': 'alice', 'aws:username': 'alice' }, expect: 'allow' },
  // Boundaries and session policies
  { name: 'boundary caps an allow-all identity policy', policies: [[allow('*')]], boundary: [allow('ecs:List*')], action: 'ecs:ExecuteCommand', resource: TASK_A, expect: 'implicit', by: 'permissions boundary' },
  { name: 'boundary and identity both allow', policies: [[allow('*')]], boundary: [allow('ecs:List*')], action: 'ecs:ListClusters', expect: 'allow' },
  { name: 'boundary alone does not allow', policies: [[allow('ecs:ListTasks')]], boundary: [allow('ecs:List*')], action: 'ecs:ListClusters', expect: 'implicit', by: 'identity-based policy' },
  { name: 'explicit deny in the boundary', policies: [[allow('*')]], boundary: [allow('*'), deny('logs:GetLogEvents')], action: 'logs:GetLogEvents', expect: 'explicit', by: 'permissions boundary' },
  { name: 'session policy caps the role', policies: [[allow('ecs:*')]], session: [allow('ecs:Describe*')], action: 'ecs:DeleteCluster', resource: CLUSTER_A, expect: 'implicit', by: 'session policy' },
];

for (const c of cases) {
  test(`evaluation: ${c.name}`, () => {
    const set: PolicySet = { identity: c.policies.map((statements) => policy(...statements)) };
    if (c.boundary) set.boundary = [policy(...c.boundary)];
    if (c.session) set.session = [policy(...c.session)];
    const d = evaluate(set, { action: c.action, resource: c.resource ?? '*', context: new RequestContextKeys(c.context ?? {}) });
    const got = d.allowed ? 'allow' : d.explicit ? 'explicit' : 'implicit';
    assert.equal(got, c.expect);
    if (c.by && !d.allowed) assert.equal(d.by, c.by);
  });
}

test('mayAllow looks at actions only (list pre-checks)', () => {
  assert.equal(mayAllow({ identity: [policy(allow('ecs:ListClusters', '*', { ArnEquals: { 'ecs:cluster': CLUSTER_A } }))] }, 'ecs:ListClusters'), true);
  assert.equal(mayAllow({ identity: [policy(allow('ecs:Describe*'))] }, 'ecs:ListClusters'), false);
  assert.equal(mayAllow({ identity: [policy(allow('*'))], boundary: [policy(allow('ecs:Describe*'))] }, 'ecs:ListClusters'), false);
});

// Validation ---------------------------------------------------------------------------------

const malformed: [string, string, RegExp, ('identity' | 'trust')?][] = [
  ['not JSON', '{"Version": "2012-10-17", ', /^This policy contains invalid Json$/],
  ['not an object', '[1, 2]', /^This policy contains invalid Json$/],
  ['bad version', JSON.stringify({ Version: '2020-01-01', Statement: [allow('*')] }), /valid version string/],
  ['no statement', JSON.stringify({ Version: '2012-10-17' }), /^Syntax errors in policy\. Missing required field Statement/],
  ['empty statement list', JSON.stringify({ Version: '2012-10-17', Statement: [] }), /^Syntax errors in policy/],
  ['unknown top-level element', JSON.stringify({ Version: '2012-10-17', Statement: [allow('*')], Extra: 1 }), /^Syntax errors in policy\. Unknown element 'Extra'/],
  ['unknown statement element', JSON.stringify({ Statement: [{ ...allow('*'), Effects: 'Allow' }] }), /Unknown element 'Effects' in statement 1/],
  ['missing Effect', JSON.stringify({ Statement: [{ Action: '*', Resource: '*' }] }), /^Missing required field Effect/],
  ['invalid Effect', JSON.stringify({ Statement: [{ Effect: 'Allowed', Action: '*', Resource: '*' }] }), /^Invalid effect: Allowed/],
  ['missing Action', JSON.stringify({ Statement: [{ Effect: 'Allow', Resource: '*' }] }), /^Policy statement must contain actions\.$/],
  ['missing Resource', JSON.stringify({ Statement: [{ Effect: 'Allow', Action: '*' }] }), /^Policy statement must contain resources\.$/],
  ['Action and NotAction', JSON.stringify({ Statement: [{ Effect: 'Allow', Action: '*', NotAction: 'iam:*', Resource: '*' }] }), /^Syntax errors in policy/],
  ['action without vendor', JSON.stringify({ Statement: [allow('ListClusters')] }), /^Actions\/Conditions must be prefaced by a vendor/],
  ['resource not an ARN', JSON.stringify({ Statement: [allow('ecs:*', 'cluster/a')] }), /^Resource cluster\/a must be in ARN format or "\*"\.$/],
  ['principal in an identity policy', JSON.stringify({ Statement: [{ ...allow('*'), Principal: '*' }] }), /^Policy document should not specify a principal\.$/],
  ['duplicate Sid', JSON.stringify({ Statement: [{ Sid: 'a', ...allow('*') }, { Sid: 'a', ...allow('*') }] }), /^Statement IDs \(SID\) in a single policy must be unique\.$/],
  ['non-alphanumeric Sid', JSON.stringify({ Statement: [{ Sid: 'a-b', ...allow('*') }] }), /^Statement IDs \(SID\) must be alpha-numeric/],
  ['unknown condition operator', JSON.stringify({ Statement: [allow('*', '*', { StringEqualz: { 'aws:username': 'a' } })] }), /^Invalid Condition type : StringEqualz\.$/],
  ['condition key without vendor', JSON.stringify({ Statement: [allow('*', '*', { StringEquals: { username: 'a' } })] }), /^Actions\/Conditions must be prefaced by a vendor/],
  ['Null with IfExists', JSON.stringify({ Statement: [allow('*', '*', { NullIfExists: { 'aws:username': 'true' } })] }), /^Invalid Condition type : NullIfExists\.$/],
  ['Bool with a non-boolean', JSON.stringify({ Statement: [allow('*', '*', { Bool: { 'aws:SecureTransport': 'yes' } })] }), /takes "true" or "false"/],
  ['bad CIDR', JSON.stringify({ Statement: [allow('*', '*', { IpAddress: { 'aws:SourceIp': '10.0.0.0/99' } })] }), /IP addresses or CIDR/],
  ['trust policy without principal', JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole' }] }), /^Missing required field Principal/, 'trust'],
  ['trust policy with a resource', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole', Resource: '*' }] }), /^Has prohibited field Resource$/, 'trust'],
  ['trust policy with a bad principal', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: 'alice' }, Action: 'sts:AssumeRole' }] }), /^Invalid principal in policy: "AWS":"alice"$/, 'trust'],
];

for (const [name, text, message, kind] of malformed) {
  test(`malformed: ${name}`, () => {
    assert.throws(() => parsePolicy(text, kind ?? 'identity'), (e: unknown) => e instanceof MalformedPolicy && message.test(e.message));
  });
}

test('a single statement object and 2008-10-17 are accepted; variables are literal in 2008-10-17', () => {
  const p = parsePolicy(JSON.stringify({ Statement: allow('iam:GetUser', `arn:aws:iam::${ACCOUNT}:user/\${aws:username}`) }));
  assert.equal(p.version, '2008-10-17');
  const d = evaluate({ identity: [p] }, { action: 'iam:GetUser', resource: `arn:aws:iam::${ACCOUNT}:user/alice`, context: new RequestContextKeys({ 'aws:username': 'alice' }) });
  assert.equal(d.allowed, false);
});

test('policy size counts characters without white space (IAM quotas)', () => {
  assert.equal(policySize('{ "a" : 1 }\n\t'), 7);
  const padded = JSON.stringify({ Version: '2012-10-17', Statement: [allow('*')] }, null, 8);
  assert.equal(policySize(padded), policySize(JSON.stringify({ Version: '2012-10-17', Statement: [allow('*')] })));
});

test('trust policies: account root, named principals, conditions and denies', () => {
  const trust = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' },
    { Effect: 'Deny', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/mallory` }, Action: 'sts:AssumeRole' },
  ] }), 'trust');
  const ctx = new RequestContextKeys();
  assert.equal(judgeTrust(trust, 'sts:AssumeRole', { arn: `arn:aws:iam::${ACCOUNT}:user/alice`, account: ACCOUNT }, ctx).allowed, true);
  assert.equal(judgeTrust(trust, 'sts:AssumeRole', { arn: `arn:aws:iam::${ACCOUNT}:user/mallory`, account: ACCOUNT }, ctx).denied, true);
  assert.equal(judgeTrust(trust, 'sts:AssumeRole', { arn: 'arn:aws:iam::210987654321:user/alice', account: '210987654321' }, ctx).allowed, false);
  const named = parsePolicy(JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/ci` }, Action: 'sts:AssumeRole',
    Condition: { StringLike: { 'sts:RoleSessionName': 'build-*' } } }] }), 'trust');
  const caller = { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/ci/x`, account: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/ci` };
  assert.equal(judgeTrust(named, 'sts:AssumeRole', caller, new RequestContextKeys({ 'sts:RoleSessionName': 'build-7' })).allowed, true);
  assert.equal(judgeTrust(named, 'sts:AssumeRole', caller, new RequestContextKeys({ 'sts:RoleSessionName': 'adhoc' })).allowed, false);
});

test('context keys in layers: a layer adds and overrides without touching what it is over; setOrHide removes', () => {
  const base = new RequestContextKeys({ 'aws:username': 'alice', 'aws:SourceIp': '10.0.0.1' });
  const layer = base.with({ 'AWS:USERNAME': 'bob', 'ecs:cluster': 'c', 'aws:PrincipalTag/x': undefined });
  assert.deepEqual(layer.get('aws:username'), ['bob']);
  assert.deepEqual(layer.get('Aws:SourceIP'), ['10.0.0.1']);
  assert.deepEqual(layer.get('ecs:Cluster'), ['c']);
  assert.deepEqual(base.get('aws:username'), ['alice']);
  assert.equal(base.get('ecs:cluster'), undefined);
  // `with` ignores undefined values (the key below keeps its value); setOrHide removes the key.
  assert.deepEqual(base.with({ 'aws:username': undefined }).get('aws:username'), ['alice']);
  const hiding = base.with({});
  hiding.setOrHide('aws:SourceIp', undefined);
  assert.equal(hiding.get('aws:sourceip'), undefined);
  assert.deepEqual(hiding.with({ 'aws:sourceip': '10.0.0.2' }).get('aws:SourceIp'), ['10.0.0.2']);
});

test('action patterns: the fast paths (exact, trailing *) decide as the regular expressions do', () => {
  const patterns = ['ecs:ListClusters', 'ecs:list*', 'ECS:Describe*', 'ecs:*', 'ecs:?escribeClusters', 'ecs:Describe*s', 'logs:Get*', 'ecs:DescribeClusters'];
  const actions = ['ecs:ListClusters', 'ecs:listclusters', 'ECS:LISTCLUSTERS', 'ecs:DescribeClusters', 'ecs:Describe', 'ecs:Describ', 'logs:GetLogEvents',
    'ecs:ListClusters2', 'ecs:\u212AillTask', 'ecs:\u0130', 'ecs:Describ\u0130', 'ecs:', 'ec2:ListClusters'];
  for (const p of patterns) {
    const pol = policy(allow(p));
    for (const a of actions) {
      const expected = compilePattern(p, 'action')!.test(a);
      assert.equal(evaluate({ identity: [pol] }, { action: a, resource: '*', context: new RequestContextKeys() }).allowed, expected, `${p} vs ${a}`);
      assert.equal(mayAllow({ identity: [pol] }, a), expected, `mayAllow ${p} vs ${a}`);
    }
  }
});

/** An IAM directory over a fresh store, with one user (policy `p`) and its access key. */
async function withDirectory(fn: (t: { store: SqliteStore; dir: IamDirectory; creds: Credentials; key: ReturnType<Credentials['createAccessKey']>['record']; dataDir: string }) => void | Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-iam-'));
  const store = new SqliteStore(dataDir);
  try {
    const creds = new Credentials(store, MasterKey.fromBytes(randomBytes(32)));
    const dir = new IamDirectory(store, creds);
    dir.saveUser({ userName: 'alice', userId: 'AIDAEXAMPLE', path: '/', accountId: ACCOUNT, createdAt: 0, tags: [],
      policies: { p: JSON.stringify({ Version: '2012-10-17', Statement: [allow('ecs:ListClusters')] }) } });
    const { record } = creds.createAccessKey(ACCOUNT, 'alice', `iam::${ACCOUNT}:user/alice`, 0);
    await fn({ store, dir, creds, key: creds.lookup(record.accessKeyId)!.record, dataDir });
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const may = (dir: IamDirectory, key: Parameters<IamDirectory['principal']>[0], action: string) =>
  evaluate(dir.principal(key, 'aws').policies, { action, resource: '*', context: new RequestContextKeys() }).allowed;

test('cached principals: every write to users, roles, keys and bootstrap documents applies at once', async () => {
  await withDirectory(({ store, dir, key }) => {
    const first = dir.principal(key, 'aws');
    assert.equal(dir.principal(key, 'aws'), first, 'cached while nothing changed');
    assert.equal(may(dir, key, 'ecs:ListClusters'), true);
    // A changed policy, a deleted policy, a deleted user: each on the very next resolution.
    const user = dir.user(ACCOUNT, 'alice')!;
    user.policies.p = JSON.stringify({ Version: '2012-10-17', Statement: [allow('ecs:CreateCluster')] });
    dir.saveUser(user);
    assert.equal(may(dir, key, 'ecs:ListClusters'), false);
    assert.equal(may(dir, key, 'ecs:CreateCluster'), true);
    dir.deleteUser(ACCOUNT, 'alice');
    assert.equal(may(dir, key, 'ecs:CreateCluster'), false);
    // Writes to other kinds that a principal depends on invalidate too (the key, roles, bootstrap).
    for (const write of [() => store.put('iam-role', ACCOUNT, 'r', {}), () => store.put('bootstrap', 'global', 'x', {}), () => store.delete('access-key', 'global', 'AKIANONE')]) {
      const before = dir.principal(key, 'aws');
      write();
      assert.notEqual(dir.principal(key, 'aws'), before);
    }
    // Unrelated writes keep the cache.
    const kept = dir.principal(key, 'aws');
    store.put('cluster', `${ACCOUNT}/us-east-1`, 'c', {});
    assert.equal(dir.principal(key, 'aws'), kept);
    assert.ok(Object.isFrozen(kept) && Object.isFrozen(kept.keys));
  });
});

test('cached principals: a rolled-back transaction does not leave its writes in the cache', async () => {
  await withDirectory(({ store, dir, key }) => {
    assert.equal(may(dir, key, 'ecs:ListClusters'), true);
    assert.throws(() => store.tx(() => {
      const user = dir.user(ACCOUNT, 'alice')!;
      user.policies = {};
      dir.saveUser(user);
      // Resolved (and cached) inside the transaction, from its uncommitted write.
      assert.equal(may(dir, key, 'ecs:ListClusters'), false);
      throw new Error('abort');
    }), /abort/);
    assert.equal(may(dir, key, 'ecs:ListClusters'), true);
  });
});

test('cached principals: writes by another process (another connection) are seen too', async () => {
  await withDirectory(async ({ dir, key, dataDir }) => {
    const other = new SqliteStore(dataDir);
    try {
      assert.equal(may(dir, key, 'ecs:ListClusters'), true);
      const user = other.get<any>('iam-user', ACCOUNT, 'alice');
      user.policies = {};
      other.put('iam-user', ACCOUNT, 'alice', user);
      // Another connection's commit is noticed within 100 ms (SQLite's data_version).
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(may(dir, key, 'ecs:ListClusters'), false);
    } finally {
      other.close();
    }
  });
});

