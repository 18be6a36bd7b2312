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
  };
}

function positive(text: string | undefined, dflt: number, name: string): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of seconds; got '${text}'`);
  return n;
}
