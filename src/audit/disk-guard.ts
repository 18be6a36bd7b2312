// What the API does while Berth's data disk is short (store/disk-reserve.ts): calls whose
// record could not be committed, and calls that would only add data, are refused with a
// 503 that names the cause; reads and the calls an owner needs to stop what fills the disk
// go on, recorded in the reserve.
import { ApiError, serviceUnavailable } from '../api/errors.js';
import { isNoSpace, type DiskReserve, type DiskStatus } from '../store/disk-reserve.js';
import { isReadOnly } from './record.js';
import { AuditCommitError } from './trail.js';

/** Calls that free space or stop what uses it: accepted on a short disk. */
const RELIEF = new Set([
  'ecs:StopTask', 'ecs:DeleteService', 'ecs:UpdateService', 'ecs:DeleteCluster', 'ecs:DeregisterTaskDefinition', 'ecs:DeleteTaskDefinitions',
  'ecs:DeregisterContainerInstance', 'ecs:UpdateContainerInstancesState', 'ecs:DeleteCapacityProvider', 'ecs:DeleteTaskSet',
  'logs:DeleteLogGroup', 'logs:DeleteLogStream', 'logs:PutRetentionPolicy',
  'ssm:TerminateSession', 'ec2:TerminateInstances',
]);

/** Whether a call may run while the disk is in `state` (a pure decision). */
export function admittedOnDisk(state: DiskStatus['state'], service: string, action: string): boolean {
  if (state === 'ok') return true;
  if (state === 'exhausted') return false;
  return isReadOnly(action) || RELIEF.has(`${service}:${action}`);
}

export class DiskGuard {
  constructor(private readonly reserve: DiskReserve) {}

  /** The API server's `admit` hook. */
  readonly admit = (service: string, action: string): ApiError | undefined => {
    const s = this.reserve.status();
    return admittedOnDisk(s.state, service, action) ? undefined : serviceUnavailable(s.problem ?? 'Berth\'s data disk is full.');
  };

  /** The API server's `explain` hook: a full disk (or a record it kept from committing) is a 503 that says so. */
  readonly explain = (e: unknown): ApiError | undefined => {
    const cause = e instanceof AuditCommitError ? e.cause : e;
    if (!isNoSpace(cause)) {
      return e instanceof AuditCommitError
        ? serviceUnavailable(`The request was not completed because its audit record could not be committed (${(cause as Error).message}). Try again later.`)
        : undefined;
    }
    const s = this.reserve.noteFailure(cause) ?? this.reserve.status(true);
    const what = e instanceof AuditCommitError ? 'its audit record could not be committed' : 'Berth could not write its database';
    return serviceUnavailable(`${s.problem ?? `Berth's data disk is full (${s.freeBytes} bytes free on ${s.filesystem}).`} This request was not completed: ${what}.`);
  };
}
