// The instance agent: dials out to the control plane (it never listens), keeps one worker
// per task that drives the runtime towards the desired state, and reports what it sees.
// Its state lives in the instance data dir, so a restarted agent re-adopts its containers.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { ContainerDriver } from './driver.js';
import type { AgentMessage, Attribute, ControlMessage, TaskReport, TaskSpec, TaskStatus } from './protocol.js';
import { currentStatus, initialState, nextSteps, report, type Step, type TaskState } from './task-engine.js';
import { HealthChecker } from './health.js';
import { AgentExec } from './exec.js';

export interface AgentOptions {
  instanceId: string;
  controlPlaneUrl: string;
  /** PEM of the CA the gateway's certificate must come from: the only one trusted. */
  gatewayCa: string;
  dataDir: string;
  driver: ContainerDriver;
  attributes: () => Attribute[];
  resources: { cpu: number; memory: number };
  version: string;
  log: (line: string) => void;
  now?: () => number;
}

/** A task's state and, per container, the log cursor the control plane has acknowledged. */
interface StoredTask { state: TaskState; logCursors: Record<string, string> }

const LOG_POLL_MS = 200;
/**
 * Log batches are split so their JSON stays under this (a single event, at most 256 KiB,
 * may go over it alone): well below the gateway's message limit.
 */
export const AGENT_LOG_BATCH_BYTES = 256 * 1024;

/** Splits events into runs whose JSON is at most `limit` bytes (at least one event each). */
export function splitLogEvents<E extends { message: string }>(events: E[], limit = AGENT_LOG_BATCH_BYTES): E[][] {
  const parts: E[][] = [];
  let cur: E[] = [];
  let size = 0;
  for (const e of events) {
    const n = Buffer.byteLength(JSON.stringify(e)) + 1;
    if (cur.length && size + n > limit) { parts.push(cur); cur = []; size = 0; }
    cur.push(e);
    size += n;
  }
  if (cur.length) parts.push(cur);
  return parts;
}
const RUNTIME_CHECK_MS = 30_000;
const METRICS_MS = 10_000;

function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

export class Agent {
  private ws: WebSocket | undefined;
  private lastConnectError: string | undefined;
  private connected = false;
  private closing = false;
  private backoff = 50;
  private readonly tasks = new Map<string, StoredTask>();
  private readonly busy = new Set<string>();
  private readonly again = new Set<string>();
  private readonly byRuntimeId = new Map<string, string>();
  private forwards: Record<string, string> = {};
  private readonly stateDir: string;
  private seq = 0;
  /** Log batches sent but not yet acknowledged: seq → where the container's log advances to. */
  private readonly pendingLogs = new Map<number, { taskId: string; container: string; cursor?: string }>();
  private readonly sentCursors = new Map<string, string>();
  private readonly shipping = new Map<string, Promise<number>>();
  private timers: NodeJS.Timeout[] = [];
  private readonly checkers = new Map<string, HealthChecker>();
  /** The last report sent per task, so unchanged states are not sent again. */
  private readonly lastReports = new Map<string, string>();
  private readonly now: () => number;
  private readonly exec: AgentExec;
  /** Settles when the tasks on disk have been re-adopted. */
  private adoption: Promise<void> = Promise.resolve();

  constructor(private readonly o: AgentOptions) {
    // The channel carries the credential and secrets: TLS to the pinned gateway only.
    if (!o.controlPlaneUrl.startsWith('wss://')) throw new Error(`the control plane URL must be wss:// (got ${o.controlPlaneUrl})`);
    if (!o.gatewayCa.includes('BEGIN CERTIFICATE')) throw new Error('the gateway CA certificate (PEM) is missing');
    this.stateDir = join(o.dataDir, 'agent', 'tasks');
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    this.now = o.now ?? Date.now;
    this.exec = new AgentExec({ driver: o.driver, send: (m) => this.send(m), refuse: (arn, id) => this.refuseExec(arn, id), log: o.log });
  }

  async start(): Promise<void> {
    // Dial while adopting, so the TLS handshake and the hello overlap with adoption; what the
    // control plane says waits until adoption is done (onControl sees the adopted tasks).
    this.adoption = this.adopt();
    this.connect();
    await this.adoption;
    this.o.driver.onExit((runtimeId) => void this.onExit(runtimeId));
    this.timers.push(setInterval(() => void this.shipLogs(), LOG_POLL_MS));
    this.timers.push(setInterval(() => void this.sendMetrics(), METRICS_MS));
    this.timers.push(setInterval(() => void this.checkRuntime(false), RUNTIME_CHECK_MS));
    for (const [id, t] of this.tasks) {
      for (const c of Object.values(t.state.containers)) if (c.phase === 'running') this.watchHealth(id, c.name);
      this.kick(id);
    }
  }

  async stop(): Promise<void> {
    for (const c of this.checkers.values()) c.stop();
    this.closing = true;
    this.exec.closeAll();
    for (const t of this.timers) clearInterval(t);
    this.ws?.close();
  }

  // State on disk ------------------------------------------------------------------------

  private persist(taskId: string): void {
    const t = this.tasks.get(taskId);
    if (t) writeAtomic(join(this.stateDir, `${taskId}.json`), JSON.stringify(t));
  }

  private forget(taskId: string): void {
    const t = this.tasks.get(taskId);
    if (t) for (const c of Object.values(t.state.containers)) if (c.runtimeId) this.byRuntimeId.delete(c.runtimeId);
    this.tasks.delete(taskId);
    this.lastReports.delete(taskId);
    rmSync(join(this.stateDir, `${taskId}.json`), { force: true });
  }

  /** Reloads tasks after a restart and reconciles them with the containers on disk. */
  private async adopt(): Promise<void> {
    for (const f of readdirSync(this.stateDir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const t = JSON.parse(readFileSync(join(this.stateDir, f), 'utf8')) as StoredTask;
        this.tasks.set(t.state.spec.taskId, t);
      } catch { rmSync(join(this.stateDir, f), { force: true }); }
    }
    const observed = new Map((await this.o.driver.list()).map((o) => [o.runtimeId, o] as const));
    for (const [taskId, t] of this.tasks) {
      for (const c of Object.values(t.state.containers)) {
        if (c.phase === 'pulling') c.phase = 'none';
        if (!c.runtimeId) continue;
        this.byRuntimeId.set(c.runtimeId, taskId);
        const obs = observed.get(c.runtimeId);
        observed.delete(c.runtimeId);
        if (!obs) {
          if (c.phase === 'created' || c.phase === 'running') {
            c.phase = 'stopped';
            c.reason = 'The container was lost while the agent was down';
          }
          continue;
        }
        if (obs.state === 'running') c.phase = 'running';
        else if (obs.state === 'stopped') this.applyExit(c, obs.exitCode, obs.oomKilled);
        else if (obs.state === 'created' && c.phase !== 'running') c.phase = 'created';
      }
      this.persist(taskId);
    }
    // Containers no task claims (e.g. created just before a crash of an unknown task).
    for (const orphan of observed.values()) {
      this.o.log(`agent: removing orphaned container ${orphan.runtimeId}`);
      await this.o.driver.stop(orphan.runtimeId, 0).catch(() => {});
      await this.o.driver.remove(orphan.runtimeId).catch(() => {});
    }
  }

  private applyExit(c: TaskState['containers'][string], exitCode: number | undefined, oom: boolean | undefined): void {
    c.phase = 'stopped';
    if (exitCode !== undefined) c.exitCode = exitCode;
    if (oom) c.reason = 'OutOfMemoryError: Container killed due to memory usage';
  }

  // Connection -------------------------------------------------------------------------

  private credentialFile(): string { return join(this.o.dataDir, 'agent', 'credential'); }
  private tokenFile(): string { return join(this.o.dataDir, 'bootstrap-token'); }

  private connect(): void {
    if (this.closing) return;
    // `ca` replaces the default trust store: only a certificate from Berth's CA, for the
    // gateway address, is accepted (no other CA, no plain ws://).
    const ws = new WebSocket(this.o.controlPlaneUrl, { handshakeTimeout: 5_000, perMessageDeflate: false, ca: this.o.gatewayCa, minVersion: 'TLSv1.3', rejectUnauthorized: true });
    this.ws = ws;
    ws.on('open', () => {
      const credential = existsSync(this.credentialFile()) ? readFileSync(this.credentialFile(), 'utf8').trim() : undefined;
      const token = !credential && existsSync(this.tokenFile()) ? readFileSync(this.tokenFile(), 'utf8').trim() : undefined;
      this.send({ type: 'hello', instanceId: this.o.instanceId, agentVersion: this.o.version, ...(credential ? { credential } : {}), ...(token ? { bootstrapToken: token } : {}) }, true);
    });
    ws.on('message', (data) => {
      let msg: ControlMessage;
      try { msg = JSON.parse(data.toString()) as ControlMessage; } catch { return; }
      // In order: callbacks on one promise run in the order they were added.
      void this.adoption.then(() => this.onControl(msg), () => {});
    });
    ws.on('close', () => {
      this.connected = false;
      // Exec output has nowhere to go: end the commands (the broker ends their sessions).
      this.exec.closeAll();
      this.pendingLogs.clear();
      this.sentCursors.clear();
      if (this.closing) return;
      const delay = this.backoff;
      this.backoff = Math.min(1_000, this.backoff * 2);
      setTimeout(() => this.connect(), delay).unref?.();
    });
    // Close follows; say why once per kind of failure (a CA that no longer matches would
    // otherwise retry every second with nothing in the log).
    ws.on('error', (e) => {
      if (e.message !== this.lastConnectError) this.o.log(`agent: connection to the control plane failed: ${e.message}`);
      this.lastConnectError = e.message;
    });
  }

  private send(msg: AgentMessage, force = false): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || (!this.connected && !force)) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  private onControl(msg: ControlMessage): void {
    switch (msg.type) {
      case 'welcome': {
        this.lastConnectError = undefined;
        if (msg.credential) {
          mkdirSync(join(this.o.dataDir, 'agent'), { recursive: true });
          writeAtomic(this.credentialFile(), msg.credential);
          rmSync(this.tokenFile(), { force: true });
        }
        this.connected = true;
        this.backoff = 50;
        const tasks: TaskReport[] = [...this.tasks.values()].map((t) => report(t.state, t.state.reported));
        this.send({ type: 'register', attributes: this.o.attributes(), resources: this.o.resources, tasks, agentPid: process.pid });
        // Work that waited for the control plane (log flushes before clean-up) can go on.
        for (const id of this.tasks.keys()) this.kick(id);
        void this.checkRuntime(true);
        break;
      }
      case 'desired': this.onDesired(msg.tasks, msg.registryForwards); break;
      case 'ack': {
        const p = this.pendingLogs.get(msg.seq);
        this.pendingLogs.delete(msg.seq);
        const t = p && this.tasks.get(p.taskId);
        if (p?.cursor !== undefined && t) { t.logCursors[p.container] = p.cursor; this.persist(p.taskId); }
        break;
      }
      case 'error': this.o.log(`agent: control plane refused: ${msg.message}`); break;
      case 'exec-open': case 'exec-input': case 'exec-resize': case 'exec-flow': case 'exec-close':
        this.exec.handle(msg);
        break;
    }
  }

  /** Checked again here (defence in depth): why a container may not be exec'd into now. */
  private refuseExec(taskArn: string, runtimeId: string): string | undefined {
    const taskId = this.byRuntimeId.get(runtimeId);
    const t = taskId ? this.tasks.get(taskId) : undefined;
    if (!t || t.state.spec.taskArn !== taskArn) return 'no such container on this instance';
    if (!t.state.spec.enableExecuteCommand) return 'the task was not started with enableExecuteCommand';
    if (t.state.spec.desiredStatus !== 'RUNNING') return 'the task is stopping';
    const c = Object.values(t.state.containers).find((x) => x.runtimeId === runtimeId);
    if (!c || c.phase !== 'running') return 'the container is not running';
    return undefined;
  }

  private onDesired(specs: TaskSpec[], forwards: Record<string, string>): void {
    this.forwards = forwards;
    const wanted = new Set<string>();
    for (const spec of specs) {
      wanted.add(spec.taskId);
      const t = this.tasks.get(spec.taskId);
      if (!t) {
        if (spec.desiredStatus === 'STOPPED') {
          // Never started here: report it stopped so the control plane can let go.
          const s = initialState(spec);
          s.cleanedUp = true;
          this.send({ type: 'task', report: report(s, 'STOPPED') });
          continue;
        }
        this.tasks.set(spec.taskId, { state: initialState(spec), logCursors: {} });
        this.reportIfChanged(spec.taskId, true);
        this.persist(spec.taskId);
      } else {
        const cur = t.state.spec;
        // Only a change of what the control plane wants is news; most messages repeat it.
        if (cur.desiredStatus === spec.desiredStatus && cur.stopReason === (spec.stopReason ?? cur.stopReason) && cur.stopCode === (spec.stopCode ?? cur.stopCode)) continue;
        t.state.spec = { ...cur, desiredStatus: spec.desiredStatus, ...(spec.stopReason ? { stopReason: spec.stopReason } : {}), ...(spec.stopCode ? { stopCode: spec.stopCode } : {}) };
        this.persist(spec.taskId);
      }
      this.kick(spec.taskId);
    }
    for (const [id, t] of this.tasks) {
      if (wanted.has(id)) continue;
      if (t.state.cleanedUp) { this.forget(id); continue; }
      if (t.state.spec.desiredStatus !== 'STOPPED') {
        t.state.spec = { ...t.state.spec, desiredStatus: 'STOPPED', stopReason: t.state.spec.stopReason ?? 'The control plane no longer wants this task' };
        this.persist(id);
        this.kick(id);
      }
    }
  }

  // Task workers -------------------------------------------------------------------------

  /** Runs a task's steps; one worker per task, re-run when something changed meanwhile. */
  private kick(taskId: string): void {
    if (this.busy.has(taskId)) { this.again.add(taskId); return; }
    this.busy.add(taskId);
    void this.work(taskId).finally(() => {
      this.busy.delete(taskId);
      if (this.again.delete(taskId)) this.kick(taskId);
    });
  }

  private async work(taskId: string): Promise<void> {
    for (let guard = 0; guard < 100; guard++) {
      const t = this.tasks.get(taskId);
      if (!t) return;
      const steps = nextSteps(t.state);
      // Cleaning up deletes the containers' logs: only once the control plane has them all.
      const waiting = steps.length > 0 && steps.every((s) => s.kind === 'cleanup') && !this.connected;
      if (steps.length === 0 || waiting) { if (this.reportIfChanged(taskId)) this.persist(taskId); return; }
      await Promise.all(steps.map((s) => this.run(taskId, t.state, s)));
      this.reportIfChanged(taskId);
      this.persist(taskId);
    }
  }

  private async run(taskId: string, s: TaskState, step: Step): Promise<void> {
    const spec = s.spec;
    try {
      switch (step.kind) {
        case 'pull': {
          const c = s.containers[step.container]!;
          const cs = spec.containers.find((x) => x.name === step.container)!;
          c.phase = 'pulling';
          s.times.pullStartedAt ??= this.now();
          const pulled = await this.o.driver.pull(cs.image, this.forwards);
          c.imageDigest = pulled.digest;
          c.phase = 'pulled';
          if (spec.containers.every((x) => s.containers[x.name]!.imageDigest)) s.times.pullStoppedAt ??= this.now();
          break;
        }
        case 'create': {
          const c = s.containers[step.container]!;
          const cs = spec.containers.find((x) => x.name === step.container)!;
          const runtimeId = await this.o.driver.create(spec, cs, { image: cs.image, digest: c.imageDigest ?? '' });
          c.runtimeId = runtimeId;
          this.byRuntimeId.set(runtimeId, taskId);
          c.phase = 'created';
          break;
        }
        case 'start': {
          const c = s.containers[step.container]!;
          await this.o.driver.start(c.runtimeId!);
          if (c.phase === 'created') c.phase = 'running';
          this.watchHealth(taskId, step.container);
          if (spec.containers.filter((x) => x.essential).every((x) => s.containers[x.name]!.phase === 'running')) s.times.startedAt ??= this.now();
          break;
        }
        case 'stop': {
          const c = s.containers[step.container]!;
          c.stopSent = true;
          s.times.stoppingAt ??= this.now();
          await this.o.driver.stop(c.runtimeId!, step.timeoutSeconds);
          break;
        }
        case 'fail':
          s.stopping ??= { reason: step.reason, code: step.code };
          s.times.stoppingAt ??= this.now();
          break;
        case 'cleanup': {
          s.times.executionStoppedAt ??= this.now();
          for (const c of Object.values(s.containers)) {
            if (!c.runtimeId || c.phase === 'removed') continue;
            if (!(await this.flushLogs(taskId, c.name))) return;
            await this.o.driver.remove(c.runtimeId);
            c.phase = 'removed';
          }
          await this.o.driver.cleanupTask(taskId);
          s.cleanedUp = true;
          s.times.stoppedAt ??= this.now();
          break;
        }
      }
    } catch (e) {
      const message = (e as Error).message;
      this.o.log(`agent: task ${taskId}: ${step.kind} failed: ${message}`);
      if (step.kind === 'pull' || step.kind === 'create' || step.kind === 'start') {
        const c = s.containers[(step as { container: string }).container]!;
        if (c.phase === 'pulling') c.phase = 'none';
        c.reason = message;
        if (c.phase !== 'running') c.phase = c.runtimeId ? 'stopped' : 'removed';
        s.stopping ??= { reason: message.startsWith('CannotPullContainerError') ? message : `CannotStartContainerError: ${message}`, code: 'TaskFailedToStart' };
        s.times.stoppingAt ??= this.now();
      } else if (step.kind === 'cleanup') {
        // Try again on the next kick; report nothing false meanwhile.
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Starts a running container's health checks, if its definition has any. */
  private watchHealth(taskId: string, name: string): void {
    const t = this.tasks.get(taskId);
    const spec = t?.state.spec.containers.find((c) => c.name === name);
    const c = t?.state.containers[name];
    if (!t || !spec?.healthCheck || !c?.runtimeId || this.checkers.has(c.runtimeId)) return;
    const runtimeId = c.runtimeId;
    const checker = new HealthChecker(spec.healthCheck, (argv, ms) => this.o.driver.exec(runtimeId, argv, ms), this.now(), (h) => {
      const cur = this.tasks.get(taskId)?.state.containers[name];
      if (!cur || cur.phase !== 'running') return;
      cur.health = h;
      this.persist(taskId);
      this.kick(taskId);
    }, this.now);
    this.checkers.set(runtimeId, checker);
    checker.start();
  }

  private async onExit(runtimeId: string): Promise<void> {
    this.checkers.get(runtimeId)?.stop();
    this.checkers.delete(runtimeId);
    const taskId = this.byRuntimeId.get(runtimeId);
    const t = taskId ? this.tasks.get(taskId) : undefined;
    if (!t || !taskId) return;
    const c = Object.values(t.state.containers).find((x) => x.runtimeId === runtimeId);
    if (!c || c.phase === 'stopped' || c.phase === 'removed') return;
    const obs = await this.o.driver.inspect(runtimeId).catch(() => undefined);
    if (obs && obs.state !== 'stopped') return;
    this.applyExit(c, obs?.exitCode, obs?.oomKilled);
    this.persist(taskId);
    this.kick(taskId);
  }

  /** Sends the task's report when it changed; true when its state changed (the caller persists). */
  private reportIfChanged(taskId: string, force = false): boolean {
    const t = this.tasks.get(taskId);
    if (!t) return false;
    const status: TaskStatus = currentStatus(t.state);
    const r = report(t.state, status);
    const key = JSON.stringify(r);
    if (!force && this.lastReports.get(taskId) === key) return false;
    const changed = t.state.reported !== status;
    t.state.reported = status;
    if (this.send({ type: 'task', report: r })) this.lastReports.set(taskId, key);
    return changed;
  }

  // Logs and metrics ---------------------------------------------------------------------

  private async shipLogs(): Promise<void> {
    if (!this.connected) return;
    for (const [taskId, t] of this.tasks) {
      for (const c of t.state.spec.containers) await this.shipContainerLogs(taskId, t, c.name);
    }
  }

  /** One read-and-send at a time per container: two from one cursor would send the same lines twice. */
  private shipContainerLogs(taskId: string, t: StoredTask, name: string, final = false): Promise<number> {
    const key = `${taskId}/${name}`;
    const next = (this.shipping.get(key) ?? Promise.resolve(0)).then(() => this.shipContainerLogsNow(taskId, t, name, final));
    const settled = next.catch(() => 0);
    this.shipping.set(key, settled);
    void settled.then(() => { if (this.shipping.get(key) === settled) this.shipping.delete(key); });
    return next;
  }

  private async shipContainerLogsNow(taskId: string, t: StoredTask, name: string, final: boolean): Promise<number> {
    const c = t.state.containers[name]!;
    if (!c.runtimeId || c.phase === 'removed') return 0;
    const key = `${taskId}/${name}`;
    const from = this.sentCursors.get(key) ?? t.logCursors[name];
    const chunk = await this.o.driver.readLogs(c.runtimeId, from, final).catch(() => undefined);
    if (!chunk || chunk.events.length === 0) return 0;
    const spec = t.state.spec.containers.find((x) => x.name === name)!;
    // Each event carries its position in the source file, so the control plane stores a resent
    // one once however the chunk is cut; only the last part moves the acknowledged cursor.
    const parts = splitLogEvents(chunk.events);
    for (let i = 0; i < parts.length; i++) {
      const seq = ++this.seq;
      if (!this.send({ type: 'logs', seq, batch: { group: spec.log.group, stream: spec.log.stream, source: chunk.source, events: parts[i]! } })) return 0;
      this.pendingLogs.set(seq, { taskId, container: name, ...(i === parts.length - 1 ? { cursor: chunk.cursor } : {}) });
    }
    this.sentCursors.set(key, chunk.cursor);
    return chunk.events.length;
  }

  /** Before removing a container, sends the rest of its output; true once all of it is acknowledged. */
  private async flushLogs(taskId: string, name: string): Promise<boolean> {
    const t = this.tasks.get(taskId);
    if (!t) return true;
    if (!this.connected) return false;
    while ((await this.shipContainerLogs(taskId, t, name, true)) > 0) { /* drain */ }
    const unacked = () => [...this.pendingLogs.values()].some((p) => p.taskId === taskId && p.container === name);
    const deadline = Date.now() + 5_000;
    while (unacked() && Date.now() < deadline && this.connected) await new Promise((r) => setTimeout(r, 20));
    return !unacked() && this.connected;
  }

  private runtimeOk: boolean | undefined;

  /** Tells the control plane when the container runtime stops (or starts again) working. */
  private async checkRuntime(always: boolean): Promise<void> {
    const r = await this.o.driver.checkRuntime().catch((e) => ({ ok: false, reason: (e as Error).message }));
    if (!always && r.ok === this.runtimeOk) return;
    this.runtimeOk = r.ok;
    this.send({ type: 'health', runtime: r.ok ? 'OK' : 'IMPAIRED', ...(r.reason ? { reason: r.reason } : {}) });
  }

  private async sendMetrics(): Promise<void> {
    if (!this.connected) return;
    const tasks: { taskArn: string; cpuSeconds: number; memoryBytes: number }[] = [];
    for (const [taskId, t] of this.tasks) {
      if (t.state.cleanedUp) continue;
      const s = await this.o.driver.taskStats(taskId).catch(() => undefined);
      if (s) tasks.push({ taskArn: t.state.spec.taskArn, ...s });
    }
    if (tasks.length) this.send({ type: 'metrics', tasks });
  }
}
