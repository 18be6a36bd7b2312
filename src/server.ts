// Composes the control plane: store, credentials, services and the API server.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiServer, type CallRecord } from './api/http-server.js';
import { jsonService } from './api/json-protocol.js';
import { queryService } from './api/query-protocol.js';
import { adminHandlers } from './admin/index.js';
import { Ec2 } from './ec2/index.js';
import { PlatformVersions } from './lifecycle/platform-versions.js';
import { ApiMetrics, TaskMetrics } from './api/metrics.js';
import type { BerthConfig } from './config.js';
import { systemClock, type Clock } from './domain/clock.js';
import { Ecs } from './ecs/index.js';
import { Credentials } from './identity/credentials.js';
import { MasterKey } from './identity/master-key.js';
import { Kms } from './kms/kms.js';
import { Audit } from './audit/index.js';
import { fipsStatus, tlsConfigFromEnv } from './api/tls.js';
import { scopeFromKey } from './domain/arn.js';
import { ExecBroker, type ExecSessionEvent } from './exec/index.js';
import { logSealing } from './kms/log-sealing.js';
import { taskPrecheck } from './controllers/precheck.js';
import { hostArchitecture } from './domain/instance-types.js';
import { taskSecrets } from './kms/secrets.js';
import { AGENT_VERSION } from './controllers/fleet.js';
import { Logs } from './logs/index.js';
import { IamApi, IamDirectory, StsApi } from './iam/index.js';
import { AUTHZ_TABLES, Authorizer } from './authz/index.js';
import { SqliteStore } from './store/store.js';
import { ControlPlane, type AgentAuditEvent } from './control-plane.js';
import type { InstanceProvider } from './providers/provider.js';
import { ownStartTime, recordedServer } from './server-process.js';
import { DiskReserve, reserveBytesFromEnv } from './store/disk-reserve.js';
import { DiskGuard } from './audit/disk-guard.js';
import { metricsAccess } from './api/metrics.js';

export interface RunningBerth {
  endpoint: string;
  port: number;
  /** The TLS listener (BERTH_TLS_PORT), when there is one. */
  tlsEndpoint?: string;
  accountId: string;
  kms: Kms;
  audit: Audit | undefined;
  store: SqliteStore;
  ecs: Ecs;
  logs: Logs;
  controlPlane: ControlPlane;
  exec: ExecBroker;
  close(): Promise<void>;
}

export interface ServerInfo {
  pid: number;
  /** The process's start time (/proc/<pid>/stat), so that a reused pid is not taken for Berth. */
  startTime?: number;
  endpoint: string; port: number; host: string; tlsEndpoint?: string;
}

const INFO_FILE = 'server.json';

export function readServerInfo(dataDir: string): ServerInfo | undefined {
  const file = join(dataDir, INFO_FILE);
  if (!existsSync(file)) return undefined;
  try { return JSON.parse(readFileSync(file, 'utf8')) as ServerInfo; } catch { return undefined; }
}

export async function startBerth(config: BerthConfig, opts: { clock?: Clock; log?: (line: string) => void; provider?: InstanceProvider | null } = {}): Promise<RunningBerth> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const previous = readServerInfo(config.dataDir);
  if (previous && previous.pid !== process.pid) {
    const liveness = recordedServer(previous);
    if (liveness.running) throw new Error(`another Berth (pid ${previous.pid}) is already using ${config.dataDir} at ${previous.endpoint}`);
    log(`server.json names pid ${previous.pid}, which is not running Berth any more (${liveness.why}); starting`);
  }
  const store = new SqliteStore(config.dataDir);
  // Free pages kept inside the database, so audit records and StopTask commit on a full disk.
  const disk = new DiskReserve({ db: store.db, dataDir: config.dataDir, targetBytes: reserveBytesFromEnv(process.env), log });
  disk.start();
  const diskGuard = new DiskGuard(disk);
  const masterKey = MasterKey.load();
  const credentials = new Credentials(store, masterKey);
  const boot = credentials.bootstrap(clock.now());
  // Customer managed keys; task definition secrets, log groups with a kmsKeyId and
  // transcripts are sealed under them.
  const kms = new Kms(store, masterKey, clock, log);
  const ecs = new Ecs(store, { secrets: taskSecrets(kms), precheck: taskPrecheck(hostArchitecture()) });
  const ec2 = new Ec2(store, ecs);
  const platforms = new PlatformVersions(store);
  platforms.bootstrap(clock.now());
  const logs = new Logs(store, clock, logSealing(kms));
  // The audit trail (BERTH_AUDIT=off exists only for bench/authz, which measures its cost).
  const audit = process.env.BERTH_AUDIT === 'off' ? undefined : new Audit({
    store, sealKey: masterKey.derive('audit-seal'), log,
    accountOfKey: (id) => store.get<{ accountId: string }>('access-key', 'global', id)?.accountId,
    onCommitFailed: (e) => { disk.noteFailure(e); },
  });
  // On a short disk, agents' log lines wait (the agent keeps and resends them): the reserve is for records.
  const putEvents = logs.putEvents.bind(logs);
  logs.putEvents = (...args) => {
    const d = disk.status();
    if (d.state !== 'ok') throw new Error(d.problem);
    return putEvents(...args);
  };
  const tls = tlsConfigFromEnv(process.env, config.dataDir, config.host);
  const fips = fipsStatus(tls?.fips ?? false);
  const metrics = new ApiMetrics();
  // Identities (IAM users, roles, STS sessions) and the authorization of every call (src/authz).
  const iam = new IamDirectory(store, credentials);
  const authz = new Authorizer({
    iam, tables: AUTHZ_TABLES, log,
    env: {
      store, iam, ecs, logs,
      kmsKeyArn: (ctx, i) => {
        const scope = `${ctx.scope.account}/${ctx.scope.region}`;
        try {
          if (typeof i.CiphertextBlob === 'string') return kms.blobKey(scope, i.CiphertextBlob)?.arn;
          return typeof i.KeyId === 'string' ? kms.resolve(scope, i.KeyId).arn : undefined;
        } catch { return undefined; }
      },
      kmsKeyTags: (ctx, arn) => {
        try {
          const r = kms.resolve(`${ctx.scope.account}/${ctx.scope.region}`, arn);
          return Object.fromEntries(r.tags.map((t) => [t.TagKey, t.TagValue]));
        } catch { return undefined; }
      },
    },
  });
  let listening = `${config.host}:${config.port}`;
  const exec: ExecBroker = new ExecBroker({
    store, ecs, logs, keys: kms, clock, log, agentVersion: `${AGENT_VERSION}.0`,
    ...(audit ? { onSessionEvent: (e: ExecSessionEvent) => auditExecSession(audit, e, clock.now()) } : {}),
    agents: { send: (id, msg): boolean => controlPlane.gateway.send(id, msg), isConnected: (id): boolean => controlPlane.gateway.isConnected(id) },
    defaultHost: () => listening,
    // "Allowed ecs:ExecuteCommand on that task": the same decision ExecuteCommand itself gets.
    mayExecute: (ctx, t) => {
      try {
        authz.authorize({ ...ctx, service: 'ecs', action: 'ExecuteCommand' }, { cluster: t.clusterArn, task: t.taskArn, container: t.container, interactive: true, command: '' });
        return true;
      } catch { return false; }
    },
    limits: {
      tokenTtlMs: config.exec.tokenTtlSeconds * 1000, idleTimeoutMs: config.exec.idleTimeoutSeconds * 1000,
      maxSessionMs: config.exec.maxSessionSeconds * 1000, maxSessionsPerTask: config.exec.maxSessionsPerTask,
      resumeWindowMs: config.exec.resumeWindowSeconds * 1000,
    },
  });
  const api = new ApiServer({
    jsonServices: [
      jsonService('ecs', 'ecs', 'ecs', authz.wrap('ecs', { ...ecs.handlers(), ExecuteCommand: (ctx, i) => exec.executeCommand(ctx, i) })),
      jsonService('logs', 'logs', 'logs', authz.wrap('logs', logs.handlers())),
      // Session Manager's ResumeSession/TerminateSession, which the plugin calls on the ECS endpoint.
      jsonService('ssm', 'ssm', 'ssm', exec.ssmHandlers()),
      jsonService('kms', 'kms', 'kms', kms.handlers()),
      jsonService('cloudtrail', 'cloudtrail', 'cloudtrail', audit ? audit.handlers() : { LookupEvents: () => ({ Events: [] }) }),
      jsonService('berth', 'berth', 'berth', adminHandlers({ clock, platforms, lifecycle: () => controlPlane.lifecycle, changed: () => controlPlane.scheduler.wake() })),
    ],
    queryServices: [
      queryService('ec2', 'ec2', 'ec2', ec2.handlers()),
      queryService('iam', 'iam', 'iam', new IamApi(iam).handlers()),
      queryService('sts', 'sts', 'sts', new StsApi(iam).handlers()),
    ],
    credentials, clock, metrics, log,
    // BERTH_AUTHZ=off exists only for bench/authz, which measures authorization's cost.
    ...(process.env.BERTH_AUTHZ === 'off' ? {} : { authorize: authz.authorize }),
    onUpgrade: (req, socket, head) => exec.handleUpgrade(req, socket, head),
    ...(audit ? { audit: (call: CallRecord) => audit.onCall(call) } : {}),
    admit: diskGuard.admit,
    explain: diskGuard.explain,
    metricsAccess: metricsAccess({
      token: process.env.BERTH_METRICS_TOKEN,
      administrators: () => [boot.account.accountId, iam.operatorAccount()].filter((a): a is string => a !== undefined),
      authorize: (ctx) => authz.authorize(ctx, {}),
    }),
    health: () => ({
      ...diskHealth(disk.status()),
      ...(tls ? { tls: { endpoint: tlsEndpoint, fipsMode: tls.fips, certificate: tls.certificate } } : {}),
      fips: { mode: fips.mode, opensslFipsProviderActive: fips.providerActive, detail: fips.detail },
    }),
  });
  for (const service of api.services()) {
    const missing = authz.uncovered(service.name, service.operations);
    if (missing.length) log(`authz: no authorization rule for ${service.name} ${missing.join(', ')}: denied to all but account roots`);
  }
  let tlsEndpoint: string | undefined;
  const controlPlane: ControlPlane = new ControlPlane({
    dataDir: config.dataDir, store, ecs, logs, taskMetrics: new TaskMetrics(metrics.registry), clock, log,
    heartbeatTimeoutMs: config.heartbeatTimeoutSeconds * 1000, taskStorageGiB: config.taskStorageGiB,
    ec2, platforms, lifecycle: { maxLifetimeMs: config.maxInstanceLifetimeSeconds * 1000, drainGraceMs: config.drainGraceSeconds * 1000 },
    repairGrace: { agentMs: config.agentRepairGraceSeconds * 1000, runtimeMs: config.runtimeRepairGraceSeconds * 1000 },
    exec,
    ...(audit ? { onAgentEvent: (e: AgentAuditEvent) => auditAgent(audit, e, clock.now(), config.region) } : {}),
    ...(opts.provider !== undefined ? { provider: opts.provider } : {}),
  });
  await controlPlane.start();
  const address = await api.listen(config.port, config.host);
  const endpoint = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}`;
  listening = endpoint.slice('http://'.length);
  if (tls) {
    const a = await api.listenTls(tls.options, tls.port, config.host);
    tlsEndpoint = `https://${config.host.includes(':') ? `[${config.host}]` : config.host}:${a.port}`;
    log(`TLS listener on ${tlsEndpoint} (${tls.certificate} certificate ${tls.certFile})` +
      (tls.fips ? '; FIPS mode: TLS 1.2 (ECDHE, AES-GCM) and TLS 1.3 (AES-GCM) only' : ''));
  }
  if (tls?.fips || fips.providerActive) log(`FIPS: ${fips.detail}`);
  const startTime = ownStartTime();
  const info: ServerInfo = { pid: process.pid, ...(startTime !== undefined ? { startTime } : {}), endpoint, port: address.port, host: config.host, ...(tlsEndpoint ? { tlsEndpoint } : {}) };
  writeFileSync(join(config.dataDir, INFO_FILE), JSON.stringify(info) + '\n');

  const reaper = setInterval(() => {
    try { ecs.taskDefinitions.reapDeleted(); } catch (e) { log(`reaper: ${(e as Error).message}`); }
    try { logs.pruneExpired(clock.now()); } catch (e) { log(`log retention: ${(e as Error).message}`); }
    try { ecs.tasks.reapStopped(clock.now()); } catch (e) { log(`task reaper: ${(e as Error).message}`); }
    try { kms.sweep(); } catch (e) { log(`kms deletion sweep: ${(e as Error).message}`); }
  }, 60_000);
  reaper.unref();

  return {
    endpoint, port: address.port, ...(tlsEndpoint ? { tlsEndpoint } : {}), accountId: boot.account.accountId, store, ecs, logs, controlPlane, exec, kms, audit,
    async close() {
      clearInterval(reaper);
      disk.close();
      exec.close();
      kms.close();
      await api.close();
      audit?.flush();
      await controlPlane.close();
      store.close();
      rmSync(join(config.dataDir, INFO_FILE), { force: true });
    },
  };
}

/** /healthz's view of the data disk: `degraded` with the problem when it is short. */
function diskHealth(d: ReturnType<DiskReserve['status']>): Record<string, unknown> {
  return { ...(d.state !== 'ok' ? { status: 'degraded', problems: [d.problem] } : {}), disk: d };
}

/**
 * Agent connections, accepted or refused, and refused agent messages, in the audit trail of
 * the account that owns the instance (an unknown instance's refusals have no account).
 */
function auditAgent(audit: Audit, e: AgentAuditEvent, now: number, region: string): void {
  const scope = e.scope ? scopeFromKey(e.scope) : undefined;
  // Not awaited: the agent channel does not wait on the trail (Audit.event logs a failure).
  void audit.event({
    time: now, account: scope?.account ?? '', region: scope?.region ?? region, eventSource: 'ecs.amazonaws.com',
    eventName: e.kind === 'connected' ? 'AgentConnected' : e.kind === 'refused' ? 'AgentAuthenticationFailed' : 'AgentMessageRefused',
    sourceIp: e.sourceIp,
    ...(e.kind !== 'connected' ? { errorCode: 'AccessDenied', errorMessage: e.reason ?? '' } : {}),
    resources: e.containerInstanceArn ? [e.containerInstanceArn] : [],
    details: {
      claimedInstanceId: e.claimedInstanceId, ...(e.cluster ? { cluster: e.cluster } : {}), ...(e.presented ? { presented: e.presented } : {}),
      ...(e.misuse ? { credentialMisuse: true } : {}),
    },
  });
}

/** ECS Exec data-channel connections and ends, in the audit trail (as SSM session events). */
function auditExecSession(audit: Audit, e: ExecSessionEvent, now: number): void {
  const r = e.record;
  const scope = scopeFromKey(e.scope);
  // Not awaited: the data channel does not wait on the trail (Audit.event logs a failure).
  void audit.event({
    time: now, account: scope.account, region: scope.region, eventSource: 'ssm.amazonaws.com',
    eventName: e.kind === 'ended' ? 'ExecSessionEnded' : 'ExecSessionConnected',
    sourceIp: e.sourceIp, ...(r ? { principalArn: r.principalArn, accessKeyId: r.accessKeyId } : {}),
    ...(e.kind === 'refused' ? { errorCode: 'AccessDenied', errorMessage: `data channel connection refused: ${e.reason}` } : {}),
    resources: r ? [r.clusterArn, r.taskArn] : [],
    details: {
      sessionId: e.sessionId, ...(r ? { cluster: r.cluster, taskArn: r.taskArn, container: r.container, command: r.command, resumes: r.resumes } : {}),
      ...(e.kind === 'ended' && r ? { endReason: r.endReason, exitCode: r.exitCode, durationMs: r.durationMs, bytesIn: r.bytesIn, bytesOut: r.bytesOut } : {}),
    },
  });
}
