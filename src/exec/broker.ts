// The ECS Exec session broker: ExecuteCommand on the ECS API issues a session whose
// `streamUrl` is a WebSocket path on Berth's own API endpoint; the unmodified
// `session-manager-plugin` (or any client of the Session Manager data channel) connects
// there, and the broker relays between that channel (data-channel.ts) and the instance's
// agent over the agent's existing outbound connection. SSM ResumeSession/TerminateSession
// are answered on the same endpoint.
//
// A session's token is its only credential: 32 random bytes, kept as a SHA-256 hash, valid
// for one connection within BERTH_EXEC_TOKEN_TTL seconds, for that session only;
// ResumeSession replaces it. A session belongs to the principal that started it:
// ResumeSession and TerminateSession are answered only for that principal, or for one
// allowed ecs:ExecuteCommand on the session's task, who then becomes its owner (recorded in
// the session's record); anyone else gets AccessDeniedException. Limits: idle timeout, maximum length, sessions per task; a
// client that vanishes gets the resume window to come back, then its command is killed.
// Every session is recorded (audit.ts) and, as the cluster's executeCommandConfiguration
// says, its transcript goes to the log store (transcript.ts), sealed under its KMS kmsKeyId.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Handler, RequestContext } from '../api/context.js';
import { ApiError, accessDenied, clientException, invalidParameter, targetNotConnected } from '../api/errors.js';
import type { ControlMessage, ExecAgentMessage } from '../agent/protocol.js';
import { scopeKey } from '../domain/arn.js';
import type { Clock, Timer } from '../domain/clock.js';
import type { Ecs } from '../ecs/index.js';
import type { Json } from '../ecs/task-definition-rules.js';
import type { TaskRecord } from '../ecs/tasks.js';
import type { Logs } from '../logs/index.js';
import type { Store } from '../store/store.js';
import { logDestination } from '../controllers/task-spec.js';
import { resolveRef } from '../ecs/common.js';
import { end as endRecord, ExecAudit, type EndReason, type ExecSessionRecord } from './audit.js';
import { CommandLineError, splitCommandLine } from './command-line.js';
import { PayloadType } from './codec.js';
import { DataChannel } from './data-channel.js';
import { Transcript, type Sealer } from './transcript.js';

export const DATA_CHANNEL_PATH = '/v1/data-channel/';
/** AWS's exact words when the task was not started with enableExecuteCommand. */
export const NOT_ENABLED_MESSAGE = 'The execute command failed because execute command was not enabled when the task was run or the execute command agent isn\'t running. Wait and try again or run a new task with execute command enabled and try again.';
const FIRST_FRAME_MS = 10_000;
const PING_MS = 20_000;
const TASK_STOP_GRACE_MS = 2_000;

export interface ExecLimits {
  /** How long a token may wait for its connection. */
  tokenTtlMs: number;
  /** A session without input or output for this long ends. */
  idleTimeoutMs: number;
  /** No session lasts longer. */
  maxSessionMs: number;
  /** Sessions (issued, connected or waiting for a resume) per task. */
  maxSessionsPerTask: number;
  /** How long a session whose client vanished waits for ResumeSession before its command is killed. */
  resumeWindowMs: number;
}

export const DEFAULT_EXEC_LIMITS: ExecLimits = {
  tokenTtlMs: 60_000, idleTimeoutMs: 20 * 60_000, maxSessionMs: 4 * 3_600_000, maxSessionsPerTask: 5, resumeWindowMs: 120_000,
};

/** How the broker reaches instance agents (the gateway). */
export interface AgentLink {
  send(instanceId: string, msg: ControlMessage): boolean;
  isConnected(instanceId: string): boolean;
}

export interface ExecBrokerOptions {
  store: Store;
  ecs: Ecs;
  logs: Logs;
  /** Seals transcripts under the cluster's kmsKeyId (KMS envelope sealing). */
  keys: Sealer;
  agents: AgentLink;
  /** A data-channel connection was accepted or refused, or a session ended (the audit trail). */
  onSessionEvent?: (e: ExecSessionEvent) => void;
  clock: Clock;
  log: (line: string) => void;
  limits?: Partial<ExecLimits>;
  /** Host:port for stream URLs when a request carries no Host header. */
  defaultHost: () => string;
  agentVersion: string;
  /** Whether the caller is allowed ecs:ExecuteCommand on this task's container (IAM): may take a session over. */
  mayExecute: (ctx: RequestContext, target: { clusterArn: string; taskArn: string; container: string }) => boolean;
}

export interface ExecSessionEvent {
  kind: 'connected' | 'refused' | 'ended';
  scope: string;
  sessionId: string;
  sourceIp: string;
  record: ExecSessionRecord | undefined;
  reason?: string;
}

type State = 'pending' | 'connected' | 'disconnected' | 'ended';

interface Session {
  id: string;
  scope: string;
  instanceId: string;
  taskArn: string;
  runtimeId: string;
  argv: string[];
  state: State;
  tokenHash: Buffer | undefined;
  tokenExpiresAt: number;
  streamUrl: string;
  channel: DataChannel;
  ws: WebSocket | undefined;
  started: boolean;
  pendingInput: Buffer[];
  exited: boolean;
  lastActivity: number;
  endsWithNewline: boolean;
  timers: Timer[];
  resumeTimer: Timer | undefined;
  /** Set once the session ended while its client was away: delivered on reconnection. */
  draining: boolean;
  finalReason: EndReason | undefined;
  exitCode: number | undefined;
  transcript: Transcript | undefined;
  bytesIn: number;
  bytesOut: number;
  /** Where the client last connected from. */
  sourceIp?: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();
const newToken = () => randomBytes(32).toString('base64url');

export class ExecBroker {
  readonly audit: ExecAudit;
  readonly limits: ExecLimits;
  private readonly sessions = new Map<string, Session>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false });
  private readonly pinger: NodeJS.Timeout;
  private readonly alive = new WeakSet<WebSocket>();

  constructor(private readonly o: ExecBrokerOptions) {
    this.limits = { ...DEFAULT_EXEC_LIMITS, ...o.limits };
    this.audit = new ExecAudit(o.store);
    const abandoned = this.audit.closeAbandoned(o.clock.now());
    if (abandoned) o.log(`exec: ${abandoned} session(s) of a previous run recorded as ended`);
    this.pinger = setInterval(() => {
      for (const s of this.sessions.values()) {
        const ws = s.ws;
        if (!ws) continue;
        if (!this.alive.has(ws)) { ws.terminate(); continue; }
        this.alive.delete(ws);
        ws.ping();
      }
    }, PING_MS);
    this.pinger.unref?.();
  }

  // ECS ExecuteCommand -----------------------------------------------------------------

  executeCommand(ctx: RequestContext, input: { cluster?: string; container?: string; command: string; interactive: boolean; task: string }) {
    if (input.interactive !== true) throw invalidParameter('Interactive is the only mode supported currently.');
    const { ecs } = this.o;
    const scope = scopeKey(ctx.scope);
    // Another account's task is refused before anything about it is looked up (as IAM would).
    if (input.task.startsWith('arn:')) resolveRef(ctx, input.task, 'task', 'task');
    const cluster = ecs.clusters.require(ctx, input.cluster);
    const task = ecs.tasks.resolve(ctx, cluster.clusterName, input.task);
    if (!task) throw invalidParameter('The task provided in the request was not found.');
    if (!task.enableExecuteCommand) throw invalidParameter(NOT_ENABLED_MESSAGE);
    if (task.lastStatus !== 'RUNNING' || task.desiredStatus !== 'RUNNING') {
      throw invalidParameter(`The execute command failed because the task is not running (its last status is ${task.lastStatus}, desired ${task.desiredStatus}).`);
    }
    const container = this.pickContainer(task, input.container);
    if (container.lastStatus !== 'RUNNING' || !container.runtimeId) {
      throw invalidParameter(`The execute command failed because container '${container.name}' is not running (its last status is ${container.lastStatus}).`);
    }
    const ci = task.containerInstanceId ? ecs.containerInstances.get(scope, task.containerInstanceId) : undefined;
    if (!ci || !this.o.agents.isConnected(ci.ec2InstanceId)) {
      throw targetNotConnected(`The execute command failed because the execute command agent of the instance running task ${task.id} is not connected. Wait and try again.`);
    }
    let argv: string[];
    try {
      argv = splitCommandLine(input.command);
    } catch (e) {
      if (e instanceof CommandLineError) throw invalidParameter(`command: ${e.message}.`);
      throw e;
    }
    if (argv.length === 0) throw invalidParameter('command must name a program to run, e.g. "/bin/sh".');
    const open = [...this.sessions.values()].filter((s) => s.scope === scope && s.taskArn === task.taskArn && s.state !== 'ended').length;
    if (open >= this.limits.maxSessionsPerTask) {
      throw clientException(`Task ${task.id} already has ${open} ECS Exec sessions, the most one task may have (BERTH_EXEC_MAX_SESSIONS_PER_TASK). End one and try again.`);
    }

    const now = ctx.clock.now();
    const id = `ecs-execute-command-${randomBytes(12).toString('hex')}`;
    const token = newToken();
    const host = ctx.host || this.o.defaultHost();
    const streamUrl = `ws://${host}${DATA_CHANNEL_PATH}${id}?role=publish_subscribe`;
    const transcript = this.openTranscript(ctx, task, container.name, id);
    const record: ExecSessionRecord = {
      sessionId: id, status: 'ACTIVE',
      principalArn: `arn:${ctx.scope.partition}:${ctx.principal.principal}`, accessKeyId: ctx.principal.accessKeyId,
      userName: ctx.principal.userName, sourceIp: ctx.sourceIp, region: ctx.scope.region,
      cluster: cluster.clusterName, clusterArn: cluster.clusterArn, taskArn: task.taskArn,
      container: container.name, containerArn: container.containerArn, runtimeId: container.runtimeId, instanceId: ci.ec2InstanceId,
      command: input.command, argv, requestedAt: now, resumes: 0, bytesIn: 0, bytesOut: 0,
      ...(transcript ? { transcript: transcript.where } : {}),
    };
    this.audit.put(scope, record);
    const s: Session = {
      id, scope, instanceId: ci.ec2InstanceId, taskArn: task.taskArn, runtimeId: container.runtimeId, argv,
      state: 'pending', tokenHash: sha256(token), tokenExpiresAt: now + this.limits.tokenTtlMs, streamUrl,
      channel: undefined as unknown as DataChannel, ws: undefined, started: false, pendingInput: [], exited: false,
      lastActivity: now, endsWithNewline: true, timers: [], resumeTimer: undefined, draining: false, finalReason: undefined,
      exitCode: undefined, transcript: transcript?.writer, bytesIn: 0, bytesOut: 0,
    };
    s.channel = new DataChannel(id, this.o.agentVersion, () => this.o.clock.now(), {
      handshake: () => {},
      size: (cols, rows) => this.onSize(s, cols, rows),
      input: (data) => this.onInput(s, data),
      terminate: () => this.finish(s, 'terminated'),
      backpressure: (pause) => { if (s.started && !s.exited) this.o.agents.send(s.instanceId, { type: 'exec-flow', sessionId: s.id, pause }); },
      protocolError: (m) => this.o.log(`exec: ${s.id}: dropped a malformed client message: ${m}`),
    });
    this.sessions.set(id, s);
    this.armNeverConnected(s);
    s.timers.push(this.o.clock.after(this.limits.maxSessionMs, () => this.finish(s, 'max-duration', `\r\nThe session reached its maximum length (${Math.round(this.limits.maxSessionMs / 1000)} s) and was ended.\r\n`)));
    this.armIdle(s);
    return {
      clusterArn: cluster.clusterArn, containerArn: container.containerArn, containerName: container.name, interactive: true,
      session: { sessionId: id, streamUrl, tokenValue: token }, taskArn: task.taskArn,
    };
  }

  private pickContainer(task: TaskRecord, name: string | undefined): TaskRecord['containers'][number] {
    if (name === undefined || name === '') {
      if (task.containers.length === 1) return task.containers[0]!;
      throw invalidParameter(`Task ${task.id} has ${task.containers.length} containers; name one with container (${task.containers.map((c) => c.name).join(', ')}).`);
    }
    const c = task.containers.find((x) => x.name === name);
    if (!c) throw invalidParameter(`The container '${name}' was not found in task ${task.id} (its containers: ${task.containers.map((x) => x.name).join(', ')}).`);
    return c;
  }

  /** Where the cluster's executeCommandConfiguration sends transcripts (none for NONE or S3 only). */
  private openTranscript(ctx: RequestContext, task: TaskRecord, container: string, sessionId: string):
    { writer: Transcript; where: NonNullable<ExecSessionRecord['transcript']> } | undefined {
    const scope = scopeKey(ctx.scope);
    const cfg = this.o.ecs.clusters.get(scope, task.cluster)?.configuration?.executeCommandConfiguration;
    const logging = cfg?.logging ?? 'DEFAULT';
    let group: string | undefined;
    if (logging === 'OVERRIDE') group = cfg?.logConfiguration?.cloudWatchLogGroupName;
    else if (logging === 'DEFAULT') {
      const td = this.o.ecs.taskDefinitions.byArn(scope, task.taskDefinitionArn);
      const def = td?.body.containerDefinitions.find((c: Json) => c.name === container);
      if (td && def) group = logDestination(td, def, task.cluster, task.id).group;
    }
    if (!group) return undefined;
    const kmsKeyId = cfg?.kmsKeyId;
    // A transcript that must be encrypted is never written in clear: no usable key, no session.
    if (kmsKeyId) {
      try { this.o.keys.check(scope, kmsKeyId); } catch (e) {
        throw invalidParameter(`The execute command failed because the cluster's executeCommandConfiguration.kmsKeyId cannot encrypt the session transcript: ${(e as Error).message}`);
      }
    }
    try {
      const writer = new Transcript({ logs: this.o.logs, keys: this.o.keys, scope, group, stream: sessionId, ...(kmsKeyId ? { kmsKeyId } : {}), clock: this.o.clock, log: this.o.log });
      return { writer, where: { logGroupName: group, logStreamName: sessionId, encrypted: kmsKeyId !== undefined } };
    } catch (e) {
      this.o.log(`exec: ${sessionId}: no transcript in ${group}: ${(e as Error).message}`);
      return undefined;
    }
  }

  // SSM ResumeSession / TerminateSession ---------------------------------------------------

  ssmHandlers(): Record<string, Handler> {
    return {
      ResumeSession: (ctx, i: { SessionId: string }) => this.resume(ctx, i.SessionId),
      TerminateSession: (ctx, i: { SessionId: string }) => {
        const scope = scopeKey(ctx.scope);
        const s = this.sessions.get(i.SessionId);
        const record = this.audit.get(scope, i.SessionId);
        if (record) this.claim(ctx, scope, record, 'TerminateSession');
        if (s && s.scope === scope) this.finish(s, 'terminated');
        return { SessionId: i.SessionId };
      },
    };
  }

  /**
   * The caller may act on the session when it started it (or owns it now), or when it is
   * allowed ecs:ExecuteCommand on the session's task: it then becomes the owner, recorded.
   * Anyone else is refused with AWS's AccessDeniedException (the API server audits the call).
   */
  private claim(ctx: RequestContext, scope: string, r: ExecSessionRecord, action: 'ResumeSession' | 'TerminateSession'): void {
    const caller = `arn:${ctx.scope.partition}:${ctx.principal.principal}`;
    if (r.principalArn === caller) return;
    if (!this.o.mayExecute(ctx, { clusterArn: r.clusterArn, taskArn: r.taskArn, container: r.container })) {
      const resource = `arn:${ctx.scope.partition}:ssm:${ctx.scope.region}:${ctx.scope.account}:session/${r.sessionId}`;
      throw accessDenied(`User: ${caller} is not authorized to perform: ssm:${action} on resource: ${resource} because the session was started by another principal and no identity-based policy allows ecs:ExecuteCommand on its task`);
    }
    // An ended session has nothing left to take over.
    if (r.status === 'ENDED') return;
    const now = ctx.clock.now();
    this.audit.update(scope, r.sessionId, (rec) => {
      rec.previousOwners = [...(rec.previousOwners ?? []), { principalArn: rec.principalArn, accessKeyId: rec.accessKeyId, userName: rec.userName, until: now }];
      rec.principalArn = caller;
      rec.accessKeyId = ctx.principal.accessKeyId;
      rec.userName = ctx.principal.userName;
      rec.ownerSince = { at: now, by: action, sourceIp: ctx.sourceIp };
    });
    this.o.log(`exec: ${r.sessionId}: ${caller} took the session over from ${r.principalArn} (${action}; allowed ecs:ExecuteCommand on ${r.taskArn})`);
  }

  private resume(ctx: RequestContext, sessionId: string) {
    const scope = scopeKey(ctx.scope);
    const s = this.sessions.get(sessionId);
    const record = this.audit.get(scope, sessionId);
    if (record) this.claim(ctx, scope, record, 'ResumeSession');
    if (!s || s.scope !== scope) {
      // A session that ended answers without a token: the client stops ("timed out").
      if (record) return { SessionId: sessionId };
      throw new ApiError('DoesNotExistException', `Session ${sessionId} does not exist.`);
    }
    if (s.state === 'ended' && !s.draining) return { SessionId: sessionId };
    const token = newToken();
    s.tokenHash = sha256(token);
    s.tokenExpiresAt = ctx.clock.now() + this.limits.tokenTtlMs;
    this.audit.update(scope, sessionId, (r) => { r.resumes++; });
    return { SessionId: sessionId, TokenValue: token, StreamUrl: s.streamUrl };
  }

  // The data channel's WebSocket ----------------------------------------------------------

  /** Takes a WebSocket upgrade of the API server when it is for the data channel. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://berth');
    if (!url.pathname.startsWith(DATA_CHANNEL_PATH)) return false;
    const s = this.sessions.get(decodeURIComponent(url.pathname.slice(DATA_CHANNEL_PATH.length)));
    if (!s || (s.state === 'ended' && !s.draining)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    const sourceIp = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(s, ws, sourceIp));
    return true;
  }

  private sessionEvent(s: Session, kind: ExecSessionEvent['kind'], sourceIp: string, reason?: string): void {
    if (!this.o.onSessionEvent) return;
    try {
      this.o.onSessionEvent({ kind, scope: s.scope, sessionId: s.id, sourceIp, record: this.audit.get(s.scope, s.id), ...(reason ? { reason } : {}) });
    } catch (e) { this.o.log(`exec: ${s.id}: audit: ${(e as Error).message}`); }
  }

  private accept(s: Session, ws: WebSocket, sourceIp = ''): void {
    let authenticated = false;
    const firstFrame = setTimeout(() => ws.close(1008, 'no token'), FIRST_FRAME_MS);
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    ws.on('error', () => ws.terminate());
    ws.on('message', (data, isBinary) => {
      this.alive.add(ws);
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (authenticated) {
        if (isBinary && s.ws === ws) s.channel.onFrame(buf);
        return;
      }
      clearTimeout(firstFrame);
      const refusal = isBinary ? 'the first frame must be the token' : this.checkToken(s, buf);
      if (refusal) {
        this.o.log(`exec: ${s.id}: connection refused: ${refusal}`);
        this.sessionEvent(s, 'refused', sourceIp, refusal);
        ws.close(1008, refusal);
        return;
      }
      authenticated = true;
      s.sourceIp = sourceIp;
      this.sessionEvent(s, 'connected', sourceIp);
      this.attach(s, ws);
    });
    ws.on('close', () => {
      clearTimeout(firstFrame);
      if (s.ws !== ws) return;
      s.ws = undefined;
      s.channel.detach(ws);
      if (s.state === 'connected') {
        s.state = 'disconnected';
        s.resumeTimer = this.o.clock.after(this.limits.resumeWindowMs, () => { if (s.state === 'disconnected' || s.draining) this.drop(s); });
      }
    });
  }

  /** Why the first frame does not open `s`, or undefined when it does (the token is then spent). */
  private checkToken(s: Session, frame: Buffer): string | undefined {
    let open: { TokenValue?: unknown };
    try { open = JSON.parse(frame.toString('utf8')) as { TokenValue?: unknown }; } catch { return 'the first frame is not JSON'; }
    if (typeof open.TokenValue !== 'string') return 'no TokenValue';
    if (s.state === 'ended' && !s.draining) return 'the session ended';
    if (!s.tokenHash) return 'the token was already used (call ResumeSession for a new one)';
    if (this.o.clock.now() > s.tokenExpiresAt) { s.tokenHash = undefined; return 'the token expired'; }
    if (!timingSafeEqual(sha256(open.TokenValue), s.tokenHash)) return 'wrong token';
    s.tokenHash = undefined;
    return undefined;
  }

  private attach(s: Session, ws: WebSocket): void {
    const previous = s.ws;
    s.ws = ws;
    if (previous && previous !== ws) previous.terminate();
    s.resumeTimer?.cancel();
    s.resumeTimer = undefined;
    const now = this.o.clock.now();
    if (s.state === 'pending') this.audit.update(s.scope, s.id, (r) => { r.connectedAt = now; });
    s.channel.attach(ws);
    if (s.draining) { this.deliverEnd(s); return; }
    s.state = 'connected';
  }

  // Relaying ------------------------------------------------------------------------------

  private onSize(s: Session, cols: number, rows: number): void {
    if (s.state === 'ended') return;
    if (s.started) { this.o.agents.send(s.instanceId, { type: 'exec-resize', sessionId: s.id, cols, rows }); return; }
    // The command starts once the client has said how big its terminal is: output it
    // would send earlier may be neither acknowledged nor shown (reference §4).
    s.started = true;
    const sent = this.o.agents.send(s.instanceId, { type: 'exec-open', sessionId: s.id, taskArn: s.taskArn, runtimeId: s.runtimeId, argv: s.argv, cols, rows });
    if (!sent) { this.finish(s, 'agent-disconnected', '\r\nThe instance\'s agent is not connected; the command was not started.\r\n'); return; }
    for (const data of s.pendingInput.splice(0)) this.o.agents.send(s.instanceId, { type: 'exec-input', sessionId: s.id, data: data.toString('base64') });
  }

  private onInput(s: Session, data: Buffer): void {
    if (s.state === 'ended') return;
    s.lastActivity = this.o.clock.now();
    s.bytesIn += data.length;
    if (!s.started) { s.pendingInput.push(data); return; }
    if (!s.exited) this.o.agents.send(s.instanceId, { type: 'exec-input', sessionId: s.id, data: data.toString('base64') });
  }

  /** Output and exits from an agent (routed by the fleet); only for sessions on that agent's instance. */
  onAgentMessage(instanceId: string, msg: ExecAgentMessage): void {
    const s = this.sessions.get(msg.sessionId);
    if (!s || s.instanceId !== instanceId || s.exited) return;
    if (msg.type === 'exec-output') {
      const data = Buffer.from(msg.data, 'base64');
      if (data.length === 0 || s.state === 'ended') return;
      s.lastActivity = this.o.clock.now();
      s.bytesOut += data.length;
      s.endsWithNewline = data[data.length - 1] === 0x0a;
      s.transcript?.write(data);
      s.channel.output(data);
      return;
    }
    s.exited = true;
    if (msg.error) {
      this.finish(s, 'start-failed', `${s.endsWithNewline ? '' : '\r\n'}The command could not be run: ${msg.error}\r\n`, msg.exitCode);
      return;
    }
    this.finish(s, 'exited', undefined, msg.exitCode);
  }

  /** The instance's agent went away: its commands ended with it. */
  onAgentDisconnected(instanceId: string): void {
    for (const s of this.sessions.values()) {
      if (s.instanceId !== instanceId || s.state === 'ended') continue;
      s.exited = true;
      this.finish(s, 'agent-disconnected', '\r\nThe connection to the instance\'s agent was lost; the session ended.\r\n');
    }
  }

  /** The task stopped: its sessions end (after a moment, so exit codes still arrive). */
  onTaskStopped(scope: string, taskArn: string): void {
    for (const s of this.sessions.values()) {
      if (s.scope !== scope || s.taskArn !== taskArn || s.state === 'ended') continue;
      this.o.clock.after(TASK_STOP_GRACE_MS, () => this.finish(s, 'task-stopped', '\r\nThe task stopped; the session ended.\r\n'));
    }
  }

  // Limits and the end -----------------------------------------------------------------------

  /** A session nobody connected to while its token was valid ends. */
  private armNeverConnected(s: Session): void {
    s.timers.push(this.o.clock.after(Math.max(0, s.tokenExpiresAt - this.o.clock.now()) + 50, () => {
      if (s.state !== 'pending') return;
      if (this.o.clock.now() > s.tokenExpiresAt) this.finish(s, 'never-connected');
      else this.armNeverConnected(s);
    }));
  }

  private armIdle(s: Session): void {
    const due = s.lastActivity + this.limits.idleTimeoutMs - this.o.clock.now();
    s.timers.push(this.o.clock.after(Math.max(0, due), () => {
      if (s.state === 'ended') return;
      if (this.o.clock.now() - s.lastActivity >= this.limits.idleTimeoutMs) {
        this.finish(s, 'idle-timeout', `\r\nThe session was idle for ${Math.round(this.limits.idleTimeoutMs / 1000)} s and was ended.\r\n`);
      } else this.armIdle(s);
    }));
  }

  /**
   * Ends a session: kills its command if it still runs, tells the client why (and the exit
   * code), closes the channel and completes the record. A client that is away gets the end
   * when it resumes, within the resume window.
   */
  private finish(s: Session, reason: EndReason, message?: string, exitCode?: number): void {
    if (s.state === 'ended') return;
    if (s.started && !s.exited) this.o.agents.send(s.instanceId, { type: 'exec-close', sessionId: s.id });
    s.exited = true;
    s.state = 'ended';
    s.finalReason = reason;
    s.exitCode = exitCode;
    for (const t of s.timers) t.cancel();
    if (message) s.channel.output(Buffer.from(message));
    if (reason === 'exited' && exitCode !== undefined) {
      // The plugin exits 0 whatever the command did and prints any output raw: say it as
      // text, and as an ExitCode payload for clients that read it.
      s.channel.output(Buffer.from(`${s.endsWithNewline ? '' : '\r\n'}[exit code ${exitCode}]\r\n`));
      s.channel.output(Buffer.from(String(exitCode)), PayloadType.ExitCode);
    }
    s.transcript?.close();
    // finish runs from timers too: a store that cannot write (a full disk) must not throw out
    // of one and end the process. The record stays open and is closed at the next start.
    try {
      this.audit.update(s.scope, s.id, (r) => {
        endRecord(r, this.o.clock.now(), reason, exitCode);
        r.bytesIn = s.bytesIn;
        r.bytesOut = s.bytesOut;
      });
    } catch (e) {
      this.o.log(`exec: session ${s.id}: its end could not be recorded now (${(e as Error).message}); it is closed at the next start`);
    }
    this.sessionEvent(s, 'ended', s.sourceIp ?? '', reason);
    if (s.ws) { this.deliverEnd(s); return; }
    if (reason === 'never-connected' || reason === 'terminated' || reason === 'client-gone') { this.drop(s); return; }
    // The client is away: keep what it has not seen until it resumes or the window closes.
    s.draining = true;
    s.resumeTimer?.cancel();
    s.resumeTimer = this.o.clock.after(this.limits.resumeWindowMs, () => this.drop(s));
  }

  /** Sends channel_closed on the live connection, closes it and forgets the session. */
  private deliverEnd(s: Session): void {
    s.draining = false;
    const ws = s.ws;
    s.channel.close();
    if (ws) { s.ws = undefined; ws.close(1000); }
    this.drop(s);
  }

  /** Forgets a session; its command is killed if it still runs (the client never came back). */
  private drop(s: Session): void {
    if (s.state !== 'ended') { this.finish(s, 'client-gone'); return; }
    s.draining = false;
    s.resumeTimer?.cancel();
    s.channel.dispose();
    s.ws?.terminate();
    this.sessions.delete(s.id);
  }

  /** Ends every session (the control plane is stopping). */
  close(): void {
    clearInterval(this.pinger);
    for (const s of [...this.sessions.values()]) {
      this.finish(s, 'control-plane-stopped', '\r\nBerth is shutting down; the session ended.\r\n');
      this.drop(s);
    }
    this.wss.close();
  }
}
