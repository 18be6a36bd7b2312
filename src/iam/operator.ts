// The operator model: who runs the fleet, and the one thing it can never do — read customer data.
//
//   operator account (its own account id, no customer resources)
//     └─ operator users (`berth operator-key`): may sts:AssumeRole into BerthOperator and call berth:*
//   every customer account
//     └─ role BerthOperator (built in, cannot be deleted; trusts only the operator account)
//          identity policy: BERTH_OPERATOR_POLICY (fleet actions) + whatever inline policies the customer adds
//          permissions boundary: OPERATOR_BOUNDARY, hard-coded, not stored, not editable through any API:
//            Allow  only the fleet actions (so no customer policy can widen the role);
//            Deny   every customer-data path (DATA_PATH_ACTIONS), an explicit deny nothing overrides.
//
// So an operator drains, deregisters and inspects instances and runs platform lifecycle, but a
// BerthOperator session gets AccessDenied on exec, log contents, task definition and task
// details (environment values, secret references, overrides), decryption, the audit trail, and
// on anything that would mint a wider identity (iam:*, sts:AssumeRole*), even after the
// customer attaches an allow-all policy to the role.
import { parsePolicy, type Policy } from './policy-document.js';

export const OPERATOR_ROLE = 'BerthOperator';
export const OPERATOR_USER_POLICY = 'BerthOperatorAccess';

/** What operators do: fleet and instance lifecycle, read-only views of placement metadata. */
export const OPERATOR_ACTIONS = [
  'ecs:ListClusters', 'ecs:DescribeClusters', 'ecs:DescribeCapacityProviders',
  'ecs:ListContainerInstances', 'ecs:DescribeContainerInstances', 'ecs:UpdateContainerInstancesState', 'ecs:DeregisterContainerInstance',
  'ecs:ListServices', 'ecs:DescribeServices', 'ecs:ListServiceDeployments', 'ecs:DescribeServiceDeployments', 'ecs:ListTasks',
  'ecs:ListTagsForResource',
  'ec2:DescribeInstances', 'ec2:DescribeInstanceEventWindows',
  'berth:*',
  'sts:GetCallerIdentity',
] as const;

/**
 * Every path to customer data (and every way to mint an identity that would reach it).
 * Explicitly denied to BerthOperator sessions by the boundary; tests walk this list.
 */
export const DATA_PATH_ACTIONS = [
  // ECS Exec: a shell in customer containers, and the Session Manager calls that carry it.
  'ecs:ExecuteCommand', 'ssm:StartSession', 'ssm:ResumeSession', 'ssm:TerminateSession',
  // Log contents, exec transcripts included.
  'logs:GetLogEvents', 'logs:FilterLogEvents', 'logs:GetLogRecord', 'logs:StartQuery', 'logs:GetQueryResults',
  'logs:StartLiveTail', 'logs:Unmask', 'logs:CreateExportTask', 'logs:PutLogEvents',
  // Environment values and secret references (DescribeTaskDefinition), and task overrides
  // (DescribeTasks: containerOverrides carry environment and commands). Decision: deny, not redact.
  'ecs:DescribeTaskDefinition', 'ecs:DescribeTasks',
  // Anything that would run customer images or change where data goes (exec logging, task definitions).
  'ecs:RegisterTaskDefinition', 'ecs:RunTask', 'ecs:StartTask', 'ecs:CreateService', 'ecs:UpdateService', 'ecs:UpdateCluster',
  // Customer managed keys: no decryption, no key policy changes.
  'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Encrypt', 'kms:PutKeyPolicy', 'kms:CreateGrant',
  // The audit trail holds customers' request parameters.
  'cloudtrail:LookupEvents',
  // No new identities, keys, policies or roles.
  'iam:*', 'sts:AssumeRole*',
] as const;

const doc = (statements: unknown[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

/** The BerthOperator role's built-in identity policy (always attached). */
export const BERTH_OPERATOR_POLICY: Policy = {
  ...parsePolicy(doc([{ Sid: 'BerthFleetOperations', Effect: 'Allow', Action: [...OPERATOR_ACTIONS], Resource: '*' }])),
  source: 'built-in policy BerthOperatorPolicy',
};

/** The immutable permissions boundary of BerthOperator sessions. */
export const OPERATOR_BOUNDARY: Policy = {
  ...parsePolicy(doc([
    { Sid: 'FleetOnly', Effect: 'Allow', Action: [...OPERATOR_ACTIONS], Resource: '*' },
    { Sid: 'NoCustomerData', Effect: 'Deny', Action: [...DATA_PATH_ACTIONS], Resource: '*' },
  ])),
  source: 'built-in permissions boundary BerthOperatorBoundary',
};

/** The trust policy of BerthOperator: principals of the operator account only. */
export function operatorTrustPolicy(operatorAccount: string | undefined, partition = 'aws'): string {
  // Before any operator account exists the role trusts an account id Berth never issues
  // (they start with 1-9), i.e. nobody.
  const account = operatorAccount ?? '000000000000';
  return doc([{ Effect: 'Allow', Principal: { AWS: `arn:${partition}:iam::${account}:root` }, Action: 'sts:AssumeRole' }]);
}

/** The inline policy of operator users (in the operator account). */
export const OPERATOR_USER_POLICY_DOCUMENT = doc([
  { Sid: 'AssumeBerthOperatorInAnyAccount', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: `arn:*:iam::*:role/${OPERATOR_ROLE}` },
  { Sid: 'PlatformLifecycle', Effect: 'Allow', Action: 'berth:*', Resource: '*' },
]);
