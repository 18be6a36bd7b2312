// The ECS Exec event history: one record per session (kind `exec-session`, in the
// account/region of the caller, parent = cluster), written when ExecuteCommand answers and
// completed when the session ends. `berth sessions` prints it.
import type { Store } from '../store/store.js';

export const EXEC_SESSION_KIND = 'exec-session';

export type EndReason =
  | 'exited' | 'idle-timeout' | 'max-duration' | 'client-gone' | 'never-connected' | 'terminated'
  | 'task-stopped' | 'agent-disconnected' | 'start-failed' | 'control-plane-restarted' | 'control-plane-stopped';

export interface ExecSessionRecord {
  sessionId: string;
  status: 'ACTIVE' | 'ENDED';
  /** Who owns it: the principal ARN, access key and IAM user name of the caller that started it (or took it over), and the starter's address. */
  principalArn: string;
  accessKeyId: string;
  userName: string;
  sourceIp: string;
  region: string;
  cluster: string;
  clusterArn: string;
  taskArn: string;
  container: string;
  containerArn: string;
  runtimeId: string;
  /** The EC2-style id of the instance the task runs on. */
  instanceId: string;
  /** As the caller sent it, and as it was split. */
  command: string;
  argv: string[];
  /** Epoch ms. */
  requestedAt: number;
  connectedAt?: number;
  endedAt?: number;
  /** From the first connection (or the request, if none) to the end. */
  durationMs?: number;
  exitCode?: number;
  endReason?: EndReason;
  resumes: number;
  bytesIn: number;
  bytesOut: number;
  transcript?: { logGroupName: string; logStreamName: string; encrypted: boolean };
  /** Earlier owners, oldest first, when a principal allowed ecs:ExecuteCommand on the task took the session over. */
  previousOwners?: { principalArn: string; accessKeyId: string; userName: string; until: number }[];
  /** When and how the current owner took the session over. */
  ownerSince?: { at: number; by: 'ResumeSession' | 'TerminateSession'; sourceIp: string };
}

export class ExecAudit {
  constructor(private readonly store: Store) {}

  put(scope: string, r: ExecSessionRecord): void {
    this.store.put(EXEC_SESSION_KIND, scope, r.sessionId, r, r.cluster);
  }

  get(scope: string, sessionId: string): ExecSessionRecord | undefined {
    return this.store.get<ExecSessionRecord>(EXEC_SESSION_KIND, scope, sessionId);
  }

  update(scope: string, sessionId: string, change: (r: ExecSessionRecord) => void): void {
    this.store.tx(() => {
      const r = this.get(scope, sessionId);
      if (!r) return;
      change(r);
      this.put(scope, r);
    });
  }

  /** Every record, oldest request first. */
  all(): { scope: string; record: ExecSessionRecord }[] {
    return this.store.listAll<ExecSessionRecord>(EXEC_SESSION_KIND)
      .map(({ scope, body }) => ({ scope, record: body }))
      .sort((a, b) => a.record.requestedAt - b.record.requestedAt || a.record.sessionId.localeCompare(b.record.sessionId));
  }

  /** After a restart: sessions of the previous process ended with it (their agents' commands did too). */
  closeAbandoned(now: number): number {
    let n = 0;
    this.store.tx(() => {
      for (const { scope, record } of this.all()) {
        if (record.status !== 'ACTIVE') continue;
        end(record, now, 'control-plane-restarted');
        this.put(scope, record);
        n++;
      }
    });
    return n;
  }
}

export function end(r: ExecSessionRecord, now: number, reason: EndReason, exitCode?: number): void {
  r.status = 'ENDED';
  r.endedAt = now;
  r.durationMs = Math.max(0, now - (r.connectedAt ?? r.requestedAt));
  r.endReason = reason;
  if (exitCode !== undefined) r.exitCode = exitCode;
}
