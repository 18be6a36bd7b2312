// The parts of the control plane that manage instances and tasks: the instance provider,
// the agent gateway, the fleet and the scheduler, wired together.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TaskMetrics } from './api/metrics.js';
import { systemClock, type Clock } from './domain/clock.js';
import type { Ecs } from './ecs/index.js';
import { Fleet } from './controllers/fleet.js';
import { TaskReleases } from './controllers/task-releases.js';
import { Scheduler } from './controllers/scheduler.js';
import { ServiceController } from './controllers/services.js';
import { Gateway, SILENT_AFTER_MS, type Hello } from './gateway/gateway.js';
import { gatewayCredentials, type GatewayCredentials } from './gateway/ca.js';
import { AgentRefused } from './controllers/fleet.js';
import { logBatchAllowed } from './controllers/agent-authz.js';
import type { Logs } from './logs/index.js';
import type { InstanceProvider } from './providers/provider.js';
import type { Store } from './store/store.js';
import type { ExecAgentMessage } from './agent/protocol.js';
import { MasterKey } from './identity/master-key.js';
import { LocalInstanceProvider } from './providers/local/index.js';
import type { Ec2 } from './ec2/index.js';
import { LifecycleController, type RepairGrace } from './lifecycle/controller.js';
import type { PlatformVersions } from './lifecycle/platform-versions.js';

const agentMain = resolve(dirname(fileURLToPath(import.meta.url)), 'agent', 'main.js');

export interface ControlPlaneOptions {
  dataDir: string;
  store: Store;
  ecs: Ecs;
  logs: Logs;
  taskMetrics: TaskMetrics;
  clock: Clock;
  log: (line: string) => void;
  /** For tests: another provider, or none. */
  provider?: InstanceProvider | null;
  /** How long an agent may be disconnected before its instance's tasks count as lost. */
  heartbeatTimeoutMs: number;
  /** Size of each task's writable storage on an instance. */
  taskStorageGiB: number;
  ec2: Ec2;
  platforms: PlatformVersions;
  /** Lifecycle durations (AWS: 14 days, then 7 days of draining); shorter in tests. */
  lifecycle?: { maxLifetimeMs?: number; drainGraceMs?: number };
  /** How long auto repair waits for an impaired instance whose host still runs it. */
  repairGrace: RepairGrace;
  /** An agent's hello, accepted or refused, or a message refused (the audit trail records them). */
  onAgentEvent?: (e: AgentAuditEvent) => void;
  /** The ECS Exec session broker: agents' exec messages, disconnections and task stops. */
  exec?: {
    onAgentMessage(instanceId: string, msg: ExecAgentMessage): void;
    onAgentDisconnected(instanceId: string): void;
    onTaskStopped(scope: string, taskArn: string): void;
  };
}

/** What the audit trail records of an agent connection or a refused agent message. */
export interface AgentAuditEvent {
  kind: 'connected' | 'refused' | 'message-refused';
  claimedInstanceId: string;
  sourceIp: string;
  /** Known when the claimed instance exists. */
  scope?: string;
  containerInstanceArn?: string;
  cluster?: string;
  reason?: string;
  /** A valid credential used from elsewhere or while the instance was connected. */
  misuse?: boolean;
  /** What the hello presented. */
  presented?: 'bootstrap-token' | 'instance-credential' | 'nothing';
}

const presented = (h: Hello): AgentAuditEvent['presented'] => (h.bootstrapToken !== undefined ? 'bootstrap-token' : h.credential !== undefined ? 'instance-credential' : 'nothing');

/** Whether this host's kernel runs in FIPS mode. */
export function hostFipsEnabled(): boolean {
  try { return readFileSync('/proc/sys/crypto/fips_enabled', 'utf8').trim() === '1'; } catch { return false; }
}

export class ControlPlane {
  gateway!: Gateway;
  /** Connected agents' source addresses (for the audit trail). */
  private readonly peers = new Map<string, string>();
  fleet!: Fleet;
  scheduler!: Scheduler;
  lifecycle!: LifecycleController;
  provider: InstanceProvider | undefined;
  providerProblems: string[] = [];
  private controlPlaneUrl = '';
  private gatewayTls: GatewayCredentials | undefined;

  constructor(private readonly o: ControlPlaneOptions) {}

  async start(): Promise<void> {
    const { store, ecs, logs, clock, log } = this.o;
    const provider = this.o.provider === null ? undefined
      : this.o.provider ?? new LocalInstanceProvider({ dataDir: this.o.dataDir, clock, log, hiddenPaths: [dirname(MasterKey.defaultFile())] });
    this.providerProblems = provider ? await provider.check() : ['no instance provider is configured'];
    let gatewayHost = '127.0.0.1';
    if (provider && this.providerProblems.length === 0) {
      try {
        gatewayHost = (await provider.prepare()).gatewayAddress;
        this.provider = provider;
      } catch (e) {
        this.providerProblems = [`the local instance provider could not prepare the host: ${(e as Error).message}`];
      }
    }
    if (this.providerProblems.length) log(`berth: instances cannot be launched on this host: ${this.providerProblems.join('; ')}`);

    this.fleet = new Fleet({
      store, ecs, provider: this.provider, clock, log, liveness: systemClock,
      // A small heap and one V8 worker thread keep the agent's memory per instance low.
      // --use-openssl-ca: Node would otherwise parse its ~140 bundled root certificates
      // (about 45 ms inside an instance) at the agent's first TLS context, though the agent
      // trusts only the gateway CA it is given (`ca` replaces any root store).
      agentCommand: [process.execPath, '--max-old-space-size=40', '--max-semi-space-size=1', '--v8-pool-size=1', '--use-openssl-ca', agentMain],
      controlPlaneUrl: () => this.controlPlaneUrl, taskStorageGiB: this.o.taskStorageGiB,
      gatewayCa: () => this.gatewayTls!.ca,
      platformVersion: () => this.o.platforms.latest()?.version ?? 'unknown',
      events: {
        changed: () => this.scheduler.wake(),
        logs: (scope, instanceId, msg) => {
          // An agent writes only the log streams of its own instance's tasks' containers.
          const ci = this.fleet.instance(instanceId);
          if (!ci || !logBatchAllowed(ecs, scope, ci.ci, msg.batch)) {
            log(`logs from ${instanceId}: refused a batch for ${String(msg.batch?.group).slice(0, 256)} / ${String(msg.batch?.stream).slice(0, 256)}: not a log stream of a task on this instance`);
            this.o.onAgentEvent?.({
              kind: 'message-refused', claimedInstanceId: instanceId, sourceIp: this.peers.get(instanceId) ?? '', scope,
              ...(ci ? { containerInstanceArn: ci.ci.containerInstanceArn, cluster: ci.ci.cluster } : {}),
              reason: `log batch for log group ${String(msg.batch?.group).slice(0, 512)}, stream ${String(msg.batch?.stream).slice(0, 512)}: not a log stream of a task on this instance`,
            });
            return;
          }
          try {
            const events = Array.isArray(msg.batch.events) ? msg.batch.events : [];
            logs.putEvents(scope, msg.batch.group, msg.batch.stream, events, { source: msg.batch.source, positions: events.map((e) => e?.pos) });
            this.gateway.send(instanceId, { type: 'ack', seq: msg.seq });
          } catch (e) { log(`logs from ${instanceId}: ${(e as Error).message}`); }
        },
        metrics: (scope, ci, tasks) => {
          for (const m of tasks) {
            const t = ecs.tasks.get(scope, m.taskArn.slice(m.taskArn.lastIndexOf('/') + 1));
            if (t && t.containerInstanceId === ci.id) this.o.taskMetrics.set(t.cluster, t.id, t.family, m.cpuSeconds, m.memoryBytes);
          }
        },
        exec: (instanceId, msg) => this.o.exec?.onAgentMessage(instanceId, msg),
        credentialMisused: (scope, ci, reason) => this.lifecycle?.record(scope, ci, 'flag', 'credential-misuse', `Refused: ${reason}. The instance keeps running; its agent's connection is unaffected.`),
        instanceGone: (scope, ci) => {
          this.gateway.disconnect(ci.ec2InstanceId);
        },
      },
    });
    // The agent channel's TLS: Berth's own CA, the gateway's certificate for its address.
    this.gatewayTls = gatewayCredentials(join(this.o.dataDir, 'gateway-tls'), gatewayHost);
    this.gateway = new Gateway({
      authenticate: async (hello, peer, liveSession) => {
        try {
          return await this.fleet.authenticate(hello, peer, liveSession);
        } catch (e) {
          const about = e instanceof AgentRefused ? e.about : {};
          this.o.onAgentEvent?.({
            kind: 'refused', claimedInstanceId: String(hello.instanceId).slice(0, 128), sourceIp: peer.address, reason: (e as Error).message, presented: presented(hello),
            ...(about.scope ? { scope: about.scope } : {}), ...(about.ci ? { containerInstanceArn: about.ci.containerInstanceArn, cluster: about.ci.cluster } : {}),
            ...(about.misuse ? { misuse: true } : {}),
          });
          throw e;
        }
      },
      onConnect: (id, peer) => {
        this.peers.set(id, peer.address);
        const found = this.fleet.instance(id);
        this.o.onAgentEvent?.({
          kind: 'connected', claimedInstanceId: id, sourceIp: peer.address,
          ...(found ? { scope: found.scope, containerInstanceArn: found.ci.containerInstanceArn, cluster: found.ci.cluster } : {}),
        });
        this.fleet.onConnect(id);
        this.scheduler.resend(id);
      },
      onDisconnect: (id, silentForMs) => {
        this.peers.delete(id);
        this.fleet.onDisconnect(id, silentForMs);
        this.o.exec?.onAgentDisconnected(id);
        // Look again right when the agent's absence turns into a lost instance.
        systemClock.after(Math.max(0, this.o.heartbeatTimeoutMs - silentForMs) + 20, () => this.scheduler.wake());
      },
      onMessage: (id, msg) => this.fleet.onMessage(id, msg),
    // A silent agent is dropped after half the heartbeat timeout, between 5 s (over two ping
    // intervals: no drop for one late pong) and 10 s, so that the timeout, counted from when
    // it was last heard, still decides when its instance is lost.
    }, log, this.gatewayTls, Math.min(SILENT_AFTER_MS, Math.max(5_000, this.o.heartbeatTimeoutMs / 2)));
    // Agents must find the gateway again after a restart: keep its port.
    const portFile = join(this.o.dataDir, 'gateway.json');
    const saved = existsSync(portFile) ? (JSON.parse(readFileSync(portFile, 'utf8')) as { host: string; port: number }) : undefined;
    let address;
    try {
      address = await this.gateway.listen(gatewayHost, saved?.host === gatewayHost ? saved.port : 0);
    } catch {
      address = await this.gateway.listen(gatewayHost, 0);
    }
    writeFileSync(portFile, JSON.stringify({ host: gatewayHost, port: address.port }) + '\n');
    await this.provider?.gatewayListening(address.port).catch((e: Error) => log(`berth: instances cannot reach the gateway: ${e.message}`));
    this.controlPlaneUrl = `wss://${gatewayHost}:${address.port}/agent`;

    const services = new ServiceController({ store, ecs, clock, liveness: systemClock, log, heartbeatTimeoutMs: this.o.heartbeatTimeoutMs });
    this.lifecycle = new LifecycleController({
      store, ecs, ec2: this.o.ec2, platforms: this.o.platforms, clock, liveness: systemClock, log,
      heartbeatTimeoutMs: this.o.heartbeatTimeoutMs, ...(this.o.lifecycle ? { policy: this.o.lifecycle } : {}),
      terminate: (scope, id, reason) => { void this.fleet.terminate(scope, id, reason); },
      // No provider: nothing runs the instance any more.
      hostAlive: (ec2InstanceId) => this.provider ? this.provider.isAlive(ec2InstanceId) : Promise.resolve(false),
      repairGrace: this.o.repairGrace,
      wakeAt: (at) => this.scheduler.wakeAt(at),
    });
    const releases = new TaskReleases({
      store, tasks: ecs.tasks, log, network: this.provider ?? null, metrics: this.o.taskMetrics, exec: this.o.exec ?? null,
    });
    this.scheduler = new Scheduler({
      store, ecs, fleet: this.fleet, gateway: this.gateway, provider: this.provider,
      providerProblems: () => this.providerProblems, hostFips: hostFipsEnabled(), clock, liveness: systemClock, log,
      beforePass: () => { this.lifecycle.reconcile(); services.reconcile(); void releases.run(); },
      heartbeatTimeoutMs: this.o.heartbeatTimeoutMs,
    });
    ecs.services.onChange = () => this.scheduler.wake();
    ecs.tasks.onChange = () => this.scheduler.wake();
    ecs.containerInstances.onChange = () => this.scheduler.wake();
    ecs.containerInstances.onDeregistered = () => this.scheduler.wake();
    await this.fleet.recover();
    this.scheduler.start();
  }

  async close(): Promise<void> {
    this.scheduler?.stop();
    await this.gateway?.close();
    await this.provider?.close();
  }
}
