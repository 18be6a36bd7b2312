// Where Berth listens and keeps its data: defaults, overridden by the environment.
import { resolve } from 'node:path';

export interface BerthConfig {
  host: string;
  port: number;
  dataDir: string;
  /** The region `berth env` points clients at. */
  region: string;
  /** How long an instance agent may be disconnected before its tasks are replaced elsewhere. */
  heartbeatTimeoutSeconds: number;
  /** Instance lifecycle (AWS: draining at day 14, forced stop 7 days later); shorter for tests. */
  maxInstanceLifetimeSeconds: number;
  drainGraceSeconds: number;
  /** Auto repair waits this long (real seconds) before replacing an instance whose host still runs it. */
  agentRepairGraceSeconds: number;
  runtimeRepairGraceSeconds: number;
  /** Size of each task's writable storage on an instance (its own filesystem; Fargate's default is 20). */
  taskStorageGiB: number;
  /** ECS Exec limits (seconds, and sessions per task). */
  exec: { tokenTtlSeconds: number; idleTimeoutSeconds: number; maxSessionSeconds: number; maxSessionsPerTask: number; resumeWindowSeconds: number };
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): BerthConfig {
  const port = env.BERTH_PORT !== undefined ? Number(env.BERTH_PORT) : 4480;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`BERTH_PORT must be a port number (0-65535); got '${env.BERTH_PORT}'`);
  return {
    host: env.BERTH_HOST ?? '127.0.0.1',
    port,
    dataDir: resolve(env.BERTH_DATA_DIR ?? '.berth'),
    region: env.BERTH_REGION ?? 'us-east-1',
    heartbeatTimeoutSeconds: positive(env.BERTH_HEARTBEAT_TIMEOUT, 20, 'BERTH_HEARTBEAT_TIMEOUT'),
    maxInstanceLifetimeSeconds: positive(env.BERTH_MAX_INSTANCE_LIFETIME, 14 * 86_400, 'BERTH_MAX_INSTANCE_LIFETIME'),
    drainGraceSeconds: positive(env.BERTH_DRAIN_GRACE, 7 * 86_400, 'BERTH_DRAIN_GRACE'),
    agentRepairGraceSeconds: positive(env.BERTH_AGENT_REPAIR_GRACE, 600, 'BERTH_AGENT_REPAIR_GRACE'),
    runtimeRepairGraceSeconds: positive(env.BERTH_RUNTIME_REPAIR_GRACE, 60, 'BERTH_RUNTIME_REPAIR_GRACE'),
    taskStorageGiB: gibibytes(env.BERTH_TASK_STORAGE_GIB, 20, 'BERTH_TASK_STORAGE_GIB'),
    exec: {
      tokenTtlSeconds: positive(env.BERTH_EXEC_TOKEN_TTL, 60, 'BERTH_EXEC_TOKEN_TTL'),
      idleTimeoutSeconds: positive(env.BERTH_EXEC_IDLE_TIMEOUT, 20 * 60, 'BERTH_EXEC_IDLE_TIMEOUT'),
      maxSessionSeconds: positive(env.BERTH_EXEC_MAX_SESSION, 4 * 3600, 'BERTH_EXEC_MAX_SESSION'),
      maxSessionsPerTask: positiveInteger(env.BERTH_EXEC_MAX_SESSIONS_PER_TASK, 5, 'BERTH_EXEC_MAX_SESSIONS_PER_TASK'),
      resumeWindowSeconds: positive(env.BERTH_EXEC_RESUME_WINDOW, 120, 'BERTH_EXEC_RESUME_WINDOW'),
    },
  };
}

function positiveInteger(text: string | undefined, dflt: number, name: string): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number; got '${text}'`);
  return n;
}

function gibibytes(text: string | undefined, dflt: number, name: string): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  // Fractions for tests (a disk filler fills a quarter GiB in a second); 0.02 GiB is ext4's floor here.
  if (!Number.isFinite(n) || n < 0.02) throw new Error(`${name} must be a number of GiB (at least 0.02); got '${text}'`);
  return n;
}

function positive(text: string | undefined, dflt: number, name: string): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of seconds; got '${text}'`);
  return n;
}
