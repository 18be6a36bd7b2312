// The parts of the control plane that manage instances and tasks: the instance provider,
// the agent gateway, the fleet and the scheduler, wired together.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TaskMetrics } from './api/metrics.js';
import { systemClock, type Clock } from './domain/clock.js';
import type { Ecs } from './ecs/index.js';
import { Fleet } from './controllers/fleet.js';
import { Scheduler } from './controllers/scheduler.js';
import { ServiceController } from './controllers/services.js';
import { Gateway, SILENT_AFTER_MS } from './gateway/gateway.js';
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
  /** An agent's hello was refused (the audit trail records it). */
  onAgentRefused?: (claimedInstanceId: string, reason: string) => void;
  /** The ECS Exec session broker: agents' exec messages, disconnections and task stops. */
  exec?: {
    onAgentMessage(instanceId: string, msg: ExecAgentMessage): void;
    onAgentDisconnected(instanceId: string): void;
    onTaskStopped(scope: string, taskArn: string): void;
  };
}

/** Whether this host's kernel runs in FIPS mode. */
export function hostFipsEnabled(): boolean {
  try { return readFileSync('/proc/sys/crypto/fips_enabled', 'utf8').trim() === '1'; } catch { return false; }
}

export class ControlPlane {
  gateway!: Gateway;
  fleet!: Fleet;
  scheduler!: Scheduler;
  lifecycle!: LifecycleController;
  provider: InstanceProvider | undefined;
  providerProblems: string[] = [];
  private controlPlaneUrl = '';

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
      agentCommand: [process.execPath, '--max-old-space-size=40', '--max-semi-space-size=1', '--v8-pool-size=1', agentMain],
      controlPlaneUrl: () => this.controlPlaneUrl, taskStorageGiB: this.o.taskStorageGiB,
      platformVersion: () => this.o.platforms.latest()?.version ?? 'unknown',
      events: {
        changed: () => this.scheduler.wake(),
        taskReport: (scope, t) => {
          if (t.lastStatus === 'STOPPED') {
            this.o.exec?.onTaskStopped(scope, t.taskArn);
            this.o.taskMetrics.remove(t.cluster, t.id, t.family);
            if (t.network && this.provider) void this.provider.detachTaskNetwork(t.id).catch((e) => log(`detaching the network of ${t.id}: ${(e as Error).message}`));
          }
        },
        logs: (scope, instanceId, msg) => {
          try {
            logs.putEvents(scope, msg.batch.group, msg.batch.stream, msg.batch.events, { source: msg.batch.source, offset: msg.batch.offset });
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
        instanceGone: (scope, ci) => {
          this.gateway.disconnect(ci.ec2InstanceId);
          for (const t of ecs.tasks.onInstance(scope, ci.cluster, ci.id)) {
            this.o.taskMetrics.remove(t.cluster, t.id, t.family);
            if (t.network && this.provider) void this.provider.detachTaskNetwork(t.id).catch(() => {});
          }
        },
      },
    });
    this.gateway = new Gateway({
      authenticate: async (hello) => {
        try { return await this.fleet.authenticate(hello); } catch (e) { this.o.onAgentRefused?.(hello.instanceId, (e as Error).message); throw e; }
      },
      onConnect: (id) => { this.fleet.onConnect(id); this.scheduler.resend(id); },
      onDisconnect: (id, silentForMs) => {
        this.fleet.onDisconnect(id, silentForMs);
        this.o.exec?.onAgentDisconnected(id);
        // Look again right when the agent's absence turns into a lost instance.
        systemClock.after(Math.max(0, this.o.heartbeatTimeoutMs - silentForMs) + 20, () => this.scheduler.wake());
      },
      onMessage: (id, msg) => this.fleet.onMessage(id, msg),
    // A silent agent is dropped after half the heartbeat timeout, between 5 s (over two ping
    // intervals: no drop for one late pong) and 10 s, so that the timeout, counted from when
    // it was last heard, still decides when its instance is lost.
    }, log, Math.min(SILENT_AFTER_MS, Math.max(5_000, this.o.heartbeatTimeoutMs / 2)));
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
    this.controlPlaneUrl = `ws://${gatewayHost}:${address.port}/agent`;

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
    this.scheduler = new Scheduler({
      store, ecs, fleet: this.fleet, gateway: this.gateway, provider: this.provider,
      providerProblems: () => this.providerProblems, hostFips: hostFipsEnabled(), clock, liveness: systemClock, log,
      beforePass: () => { this.lifecycle.reconcile(); services.reconcile(); },
      heartbeatTimeoutMs: this.o.heartbeatTimeoutMs,
    });
    ecs.services.onChange = () => this.scheduler.wake();
    ecs.tasks.onChange = () => this.scheduler.wake();
    ecs.tasks.precheck = (scope, t) => this.scheduler.precheck(scope, t);
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
