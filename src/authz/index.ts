// Authorization of every API call: one declarative table per service and the authorizer that
// evaluates them (see authorizer.ts).
import { berthAuthz } from './berth.js';
import { cloudtrailAuthz } from './cloudtrail.js';
import { ec2Authz } from './ec2.js';
import { ecsAuthz } from './ecs.js';
import { iamAuthz, stsAuthz } from './iam.js';
import { kmsAuthz } from './kms.js';
import { logsAuthz } from './logs.js';
import { ssmAuthz } from './ssm.js';
import type { ServiceAuthz } from './types.js';

export { Authorizer, denialError, denialMessage } from './authorizer.js';
export type { AuthzEnv, Check, Rule, ServiceAuthz } from './types.js';

/** Every service's table, by the API server's service name. */
export const AUTHZ_TABLES: Record<string, ServiceAuthz> = {
  ecs: ecsAuthz,
  logs: logsAuthz,
  ssm: ssmAuthz,
  ec2: ec2Authz,
  kms: kmsAuthz,
  cloudtrail: cloudtrailAuthz,
  iam: iamAuthz,
  sts: stsAuthz,
  berth: berthAuthz,
};
