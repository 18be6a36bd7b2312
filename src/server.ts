// Composes the control plane: store, credentials, services and the API server.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiServer } from './api/http-server.js';
import { jsonService } from './api/json-protocol.js';
import { ApiMetrics, TaskMetrics } from './api/metrics.js';
import type { BerthConfig } from './config.js';
import { systemClock, type Clock } from './domain/clock.js';
import { Ecs } from './ecs/index.js';
import { Credentials } from './identity/credentials.js';
import { MasterKey } from './identity/master-key.js';
import { Logs } from './logs/index.js';
import { SqliteStore } from './store/store.js';
import { ControlPlane } from './control-plane.js';
import type { InstanceProvider } from './providers/provider.js';

export interface RunningBerth {
  endpoint: string;
  port: number;
  accountId: string;
  store: SqliteStore;
  ecs: Ecs;
  logs: Logs;
  controlPlane: ControlPlane;
  close(): Promise<void>;
}

export interface ServerInfo { pid: number; endpoint: string; port: number; host: string }

const INFO_FILE = 'server.json';

export function readServerInfo(dataDir: string): ServerInfo | undefined {
  const file = join(dataDir, INFO_FILE);
  if (!existsSync(file)) return undefined;
  try { return JSON.parse(readFileSync(file, 'utf8')) as ServerInfo; } catch { return undefined; }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

export async function startBerth(config: BerthConfig, opts: { clock?: Clock; log?: (line: string) => void; provider?: InstanceProvider | null } = {}): Promise<RunningBerth> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const previous = readServerInfo(config.dataDir);
  if (previous && previous.pid !== process.pid && alive(previous.pid)) {
    throw new Error(`another Berth (pid ${previous.pid}) is already using ${config.dataDir} at ${previous.endpoint}`);
  }
  const store = new SqliteStore(config.dataDir);
  const masterKey = MasterKey.load();
  const credentials = new Credentials(store, masterKey);
  const boot = credentials.bootstrap(clock.now());
  const ecs = new Ecs(store);
  const logs = new Logs(store, clock);
  const metrics = new ApiMetrics();
  const api = new ApiServer({
    jsonServices: [jsonService('ecs', 'ecs', 'ecs', ecs.handlers()), jsonService('logs', 'logs', 'logs', logs.handlers())],
    credentials, clock, metrics, log,
  });
  const controlPlane = new ControlPlane({
    dataDir: config.dataDir, store, ecs, logs, taskMetrics: new TaskMetrics(metrics.registry), clock, log,
    heartbeatTimeoutMs: config.heartbeatTimeoutSeconds * 1000,
    ...(opts.provider !== undefined ? { provider: opts.provider } : {}),
  });
  await controlPlane.start();
  const address = await api.listen(config.port, config.host);
  const endpoint = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}`;
  const info: ServerInfo = { pid: process.pid, endpoint, port: address.port, host: config.host };
  writeFileSync(join(config.dataDir, INFO_FILE), JSON.stringify(info) + '\n');

  const reaper = setInterval(() => {
    try { ecs.taskDefinitions.reapDeleted(); } catch (e) { log(`reaper: ${(e as Error).message}`); }
    try { logs.pruneExpired(clock.now()); } catch (e) { log(`log retention: ${(e as Error).message}`); }
    try { ecs.tasks.reapStopped(clock.now()); } catch (e) { log(`task reaper: ${(e as Error).message}`); }
  }, 60_000);
  reaper.unref();

  return {
    endpoint, port: address.port, accountId: boot.account.accountId, store, ecs, logs, controlPlane,
    async close() {
      clearInterval(reaper);
      await api.close();
      await controlPlane.close();
      store.close();
      rmSync(join(config.dataDir, INFO_FILE), { force: true });
    },
  };
}
