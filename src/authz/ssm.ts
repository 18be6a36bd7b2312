// Session Manager calls the session-manager-plugin makes on Berth's endpoint for ECS Exec
// (resource: arn:…:ssm:<region>:<account>:session/<session-id>).
import { regionalArn, type ServiceAuthz } from './types.js';

export const ssmAuthz: ServiceAuthz = {
  prefix: 'ssm',
  style: 'json',
  rules: {
    ResumeSession: { resources: (a) => [{ resource: regionalArn(a.ctx, 'ssm', `session/${a.input.SessionId}`) }] },
    TerminateSession: { resources: (a) => [{ resource: regionalArn(a.ctx, 'ssm', `session/${a.input.SessionId}`) }] },
  },
};
