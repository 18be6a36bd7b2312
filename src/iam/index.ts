// Identities and policies: IAM users, roles and inline policies, STS temporary credentials,
// the operator model, and the policy language (parser and evaluator).
export { IamDirectory, type ResolvedPrincipal, type IamUserRecord, type IamRoleRecord } from './directory.js';
export { IamApi } from './iam-api.js';
export { StsApi } from './sts-api.js';
export * from './policy-document.js';
export * from './policy-evaluator.js';
export * from './operator.js';
