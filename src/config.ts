// Where Berth listens and keeps its data: defaults, overridden by the environment.
import { resolve } from 'node:path';

export interface BerthConfig {
  host: string;
  port: number;
  dataDir: string;
  /** The region `berth env` points clients at. */
  region: string;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): BerthConfig {
  const port = env.BERTH_PORT !== undefined ? Number(env.BERTH_PORT) : 4480;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`BERTH_PORT must be a port number (0-65535); got '${env.BERTH_PORT}'`);
  return {
    host: env.BERTH_HOST ?? '127.0.0.1',
    port,
    dataDir: resolve(env.BERTH_DATA_DIR ?? '.berth'),
    region: env.BERTH_REGION ?? 'us-east-1',
  };
}
