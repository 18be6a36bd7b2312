// CloudWatch Logs at rest under customer managed keys: what the log store needs from KMS.
import { ApiError } from '../api/errors.js';
import type { LogSealing } from '../logs/store.js';
import { isSealed, type Kms } from './kms.js';

export function logSealing(kms: Kms): LogSealing {
  return {
    seal: (scope, kmsKeyId, message) => kms.seal(scope, kmsKeyId, message),
    isSealed,
    open: (scope, message) => (isSealed(message) ? kms.open(scope, message, '', 'these log events') : message),
    checkKey: (scope, kmsKeyId) => {
      try { return kms.check(scope, kmsKeyId).arn; } catch (e) {
        throw new ApiError('InvalidParameterException', `The KMS key '${kmsKeyId}' cannot be used with this log group: ${(e as Error).message}`);
      }
    },
  };
}
