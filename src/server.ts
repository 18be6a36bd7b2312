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
import { KeyStore } from './identity/keys.js';
import { ExecBroker } from './exec/index.js';
import { AGENT_VERSION } from './controllers/fleet.js';
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
  exec: ExecBroker;
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
  const keys = new KeyStore(store, masterKey, () => clock.now());
  logs.decode = (scope, message) => keys.openIfSealed(scope, message);
  const metrics = new ApiMetrics();
  let listening = `${config.host}:${config.port}`;
  const exec: ExecBroker = new ExecBroker({
    store, ecs, logs, keys, clock, log, agentVersion: `${AGENT_VERSION}.0`,
    agents: { send: (id, msg): boolean => controlPlane.gateway.send(id, msg), isConnected: (id): boolean => controlPlane.gateway.isConnected(id) },
    defaultHost: () => listening,
    limits: {
      tokenTtlMs: config.exec.tokenTtlSeconds * 1000, idleTimeoutMs: config.exec.idleTimeoutSeconds * 1000,
      maxSessionMs: config.exec.maxSessionSeconds * 1000, maxSessionsPerTask: config.exec.maxSessionsPerTask,
      resumeWindowMs: config.exec.resumeWindowSeconds * 1000,
    },
  });
  const api = new ApiServer({
    jsonServices: [
      jsonService('ecs', 'ecs', 'ecs', { ...ecs.handlers(), ExecuteCommand: (ctx, i) => exec.executeCommand(ctx, i) }),
      jsonService('logs', 'logs', 'logs', logs.handlers()),
      // Session Manager's ResumeSession/TerminateSession, which the plugin calls on the ECS endpoint.
      jsonService('ssm', 'ssm', 'ssm', exec.ssmHandlers()),
    ],
    credentials, clock, metrics, log,
    onUpgrade: (req, socket, head) => exec.handleUpgrade(req, socket, head),
  });
  const controlPlane: ControlPlane = new ControlPlane({
    dataDir: config.dataDir, store, ecs, logs, taskMetrics: new TaskMetrics(metrics.registry), clock, log,
    heartbeatTimeoutMs: config.heartbeatTimeoutSeconds * 1000,
    exec,
    ...(opts.provider !== undefined ? { provider: opts.provider } : {}),
  });
  await controlPlane.start();
  const address = await api.listen(config.port, config.host);
  const endpoint = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}`;
  listening = endpoint.slice('http://'.length);
  const info: ServerInfo = { pid: process.pid, endpoint, port: address.port, host: config.host };
  writeFileSync(join(config.dataDir, INFO_FILE), JSON.stringify(info) + '\n');

  const reaper = setInterval(() => {
    try { ecs.taskDefinitions.reapDeleted(); } catch (e) { log(`reaper: ${(e as Error).message}`); }
    try { logs.pruneExpired(clock.now()); } catch (e) { log(`log retention: ${(e as Error).message}`); }
    try { ecs.tasks.reapStopped(clock.now()); } catch (e) { log(`task reaper: ${(e as Error).message}`); }
  }, 60_000);
  reaper.unref();

  return {
    endpoint, port: address.port, accountId: boot.account.accountId, store, ecs, logs, controlPlane, exec,
    async close() {
      clearInterval(reaper);
      exec.close();
      await api.close();
      await controlPlane.close();
      store.close();
      rmSync(join(config.dataDir, INFO_FILE), { force: true });
    },
  };
}
