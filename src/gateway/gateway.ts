// Where instance agents dial in. Instances never listen: each agent opens one WebSocket over
// TLS (the gateway's certificate is issued by Berth's own CA, which agents pin: see ca.ts) to
// this gateway on the Berth bridge's address, proves who it is with a single-use bootstrap
// token (first time) or its instance credential, then streams reports. Until a hello is
// accepted a connection may send only a few small frames, within a short deadline, and
// only a few such connections per source address are held (limits.ts).
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AgentMessage, ControlMessage } from '../agent/protocol.js';
import { FIPS_TLS13_CIPHERS } from '../api/tls.js';
import type { GatewayCredentials } from './ca.js';
import { DEFAULT_LIMITS, PreAuthCounter, peerAddress, type GatewayLimits } from './limits.js';

export interface AgentIdentity { instanceId: string }

/** Where a connection comes from, as the kernel saw it (Berth's network forbids spoofing). */
export interface Peer { address: string }

export type Hello = Extract<AgentMessage, { type: 'hello' }>;
export type Welcome = Extract<ControlMessage, { type: 'welcome' }>;

export interface GatewayHandlers {
  /**
   * Checks a hello; returns the welcome (with a new credential after a bootstrap) or throws.
   * `liveSession` tells whether the instance already has a connection that is alive (it is
   * pinged and given a moment to answer) or one being authenticated.
   */
  authenticate(hello: Hello, peer: Peer, liveSession: () => Promise<boolean>): Promise<Welcome> | Welcome;
  onMessage(instanceId: string, msg: Exclude<AgentMessage, { type: 'hello' }>): void | Promise<void>;
  onConnect(instanceId: string, peer: Peer): void;
  /** `silentForMs`: how long before the disconnection the agent was last heard from (0 unless dropped for silence). */
  onDisconnect(instanceId: string, silentForMs: number): void;
}

export const PING_INTERVAL_MS = 2_000;
/**
 * By default, an agent not heard from (message or pong) for this long is dropped. Measured
 * in elapsed time, not missed ticks: a control plane busy for a few seconds (its pongs
 * queued behind a ping timer) must not drop every agent at once.
 */
export const SILENT_AFTER_MS = 10_000;
/** How long a connected agent has to answer a ping when another connection claims its instance. */
export const LIVE_PROBE_MS = 1_500;

/** Per TCP connection, until its agent is authenticated. */
interface PreAuth { source: string; deadline: NodeJS.Timeout; authenticated: boolean; bytes: number; since: number; socket: Socket; released: boolean }

/**
 * A source at its limit of unauthenticated connections loses its oldest one when that is
 * older than this, rather than being refused: a host-mode task shares its instance's address
 * and must not lock the agent out by holding every slot (an agent's hello takes well under it).
 */
const EVICT_AFTER_MS = 1_000;

export class Gateway {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, WebSocket>();
  /** Instances with a hello being checked right now. */
  private readonly authenticating = new Map<string, WebSocket>();
  private readonly preAuth = new Map<string, PreAuth>();
  private readonly counter: PreAuthCounter;
  private readonly limits: GatewayLimits;
  /** Connections refused at accept for the pre-authentication limits (for tests and logs). */
  refusedConnections = 0;

  constructor(private readonly handlers: GatewayHandlers, private readonly log: (line: string) => void,
    tls: GatewayCredentials, private readonly silentAfterMs = SILENT_AFTER_MS, limits: Partial<GatewayLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.counter = new PreAuthCounter(this.limits);
    // TLS 1.3 only, with FIPS-approved suites and curves whatever BERTH_FIPS says: both ends are Berth's.
    this.server = createServer({
      cert: tls.cert, key: tls.key, minVersion: 'TLSv1.3', ciphers: FIPS_TLS13_CIPHERS.join(':'), ecdhCurve: 'P-256:P-384',
      handshakeTimeout: this.limits.helloDeadlineMs, maxHeaderSize: 8 * 1024,
    }, (_req, res) => { res.writeHead(404).end(); });
    this.server.on('connection', (socket: Socket) => this.onTcp(socket));
    this.server.on('tlsClientError', (_e, socket) => socket.destroy());
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.limits.maxPayload });
    this.server.on('upgrade', (req, socket: Socket, head: Buffer) => {
      const pre = this.preAuth.get(connKey(socket));
      if (req.url !== '/agent' || !pre) { socket.destroy(); return; }
      pre.bytes += head.length;
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        // Counts what the connection sends until it is authenticated; past the allowance it is cut.
        const count = (d: Buffer) => {
          if (pre.authenticated) { socket.off('data', count); return; }
          pre.bytes += d.length;
          if (pre.bytes > this.limits.preAuthBytes) socket.destroy();
        };
        socket.on('data', count);
        this.accept(ws, socket, pre);
      });
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  isConnected(instanceId: string): boolean {
    return this.sessions.has(instanceId);
  }

  connectedInstances(): string[] {
    return [...this.sessions.keys()];
  }

  /** Unauthenticated connections held now. */
  get unauthenticatedConnections(): number { return this.counter.unauthenticated; }

  send(instanceId: string, msg: ControlMessage): boolean {
    const ws = this.sessions.get(instanceId);
    if (!ws || ws.readyState !== ws.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Drops an agent's connection (e.g. when its instance is terminated). */
  disconnect(instanceId: string): void {
    this.sessions.get(instanceId)?.terminate();
  }

  async close(): Promise<void> {
    for (const ws of this.sessions.values()) ws.terminate();
    this.wss.close();
    await new Promise<void>((r) => { this.server.close(() => r()); this.server.closeAllConnections(); });
  }

  /** Every TCP connection starts unauthenticated: counted against its source, with a deadline. */
  private onTcp(socket: Socket): void {
    const source = peerAddress(socket.remoteAddress);
    if (!this.counter.admit(source) && !(this.evictOldest(source) && this.counter.admit(source))) {
      this.refusedConnections++;
      socket.destroy();
      return;
    }
    const key = connKey(socket);
    const pre: PreAuth = {
      source, authenticated: false, bytes: 0, since: performance.now(), socket, released: false,
      deadline: setTimeout(() => socket.destroy(), this.limits.helloDeadlineMs),
    };
    this.preAuth.set(key, pre);
    socket.once('close', () => {
      clearTimeout(pre.deadline);
      if (this.preAuth.get(key) === pre) this.preAuth.delete(key);
      this.releaseSlot(pre);
    });
  }

  /** Gives a connection's unauthenticated slot back, once. */
  private releaseSlot(pre: PreAuth): void {
    if (pre.released) return;
    pre.released = true;
    this.counter.release(pre.source);
  }

  /** Drops the source's oldest unauthenticated connection if it is older than EVICT_AFTER_MS; true when one went. */
  private evictOldest(source: string): boolean {
    let oldest: PreAuth | undefined;
    for (const p of this.preAuth.values()) if (p.source === source && !p.authenticated && !p.released && (!oldest || p.since < oldest.since)) oldest = p;
    if (!oldest || performance.now() - oldest.since < EVICT_AFTER_MS) return false;
    this.releaseSlot(oldest);
    oldest.socket.destroy();
    return true;
  }

  private authenticated(pre: PreAuth, socket: Socket): void {
    if (pre.authenticated) return;
    pre.authenticated = true;
    clearTimeout(pre.deadline);
    this.preAuth.delete(connKey(socket));
    this.releaseSlot(pre);
  }

  /** Whether the instance's current connection answers a ping in time (or a hello for it is being checked). */
  private liveSession(instanceId: string, self: WebSocket): Promise<boolean> {
    const other = this.authenticating.get(instanceId);
    if (other && other !== self) return Promise.resolve(true);
    const ws = this.sessions.get(instanceId);
    if (!ws || ws === self || ws.readyState !== ws.OPEN) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (alive: boolean) => { clearTimeout(timer); ws.off('pong', onPong); ws.off('message', onPong); resolve(alive); };
      const onPong = () => done(true);
      const timer = setTimeout(() => done(false), LIVE_PROBE_MS);
      ws.on('pong', onPong);
      ws.on('message', onPong);
      ws.ping();
    });
  }

  private accept(ws: WebSocket, socket: Socket, pre: PreAuth): void {
    const peer: Peer = { address: pre.source };
    let instanceId: string | undefined;
    let helloSeen = false;
    let heardAt = performance.now(); // monotonic: only elapsed time matters here
    let why = '';
    const ping = setInterval(() => {
      if (!instanceId) return;
      // An agent that stops answering pings is gone even if TCP has not noticed yet.
      const silent = performance.now() - heardAt;
      if (silent > this.silentAfterMs) { why = `silent for ${(silent / 1000).toFixed(1)} s`; ws.terminate(); return; }
      ws.ping();
    }, PING_INTERVAL_MS);
    ws.on('pong', () => { heardAt = performance.now(); });
    ws.on('message', async (data) => {
      heardAt = performance.now();
      // Nothing a peer sends may escape as an exception: it would end the control plane.
      try {
        if (!instanceId) {
          // One hello, then nothing until it is answered.
          if (helloSeen) { ws.terminate(); return; }
          helloSeen = true;
        }
        let msg: AgentMessage;
        try { msg = JSON.parse(data.toString()) as AgentMessage; } catch { ws.terminate(); return; }
        if (msg === null || typeof msg !== 'object' || typeof (msg as { type?: unknown }).type !== 'string') { ws.terminate(); return; }
        if (!instanceId) { instanceId = await this.hello(ws, socket, pre, peer, msg); return; }
        if (msg.type === 'hello') return;
        await this.handlers.onMessage(instanceId, msg);
      } catch (e) {
        this.log(`gateway: ${instanceId ?? `unauthenticated ${peer.address}`}: ${(e as Error)?.message ?? e}`);
        if (!instanceId) ws.terminate();
      }
    });
    ws.on('close', (code: number) => {
      clearInterval(ping);
      if (instanceId && this.sessions.get(instanceId) === ws) {
        this.log(`gateway: agent ${instanceId} disconnected (${why || `connection closed, code ${code}`})`);
        this.sessions.delete(instanceId);
        // A connection that closed was alive until then; one dropped for silence was not.
        this.handlers.onDisconnect(instanceId, why.startsWith('silent') ? performance.now() - heardAt : 0);
      }
    });
    ws.on('error', () => ws.terminate());
  }

  /** Answers a connection's first message; the instance id once its hello is accepted. */
  private async hello(ws: WebSocket, socket: Socket, pre: PreAuth, peer: Peer, msg: AgentMessage): Promise<string | undefined> {
    if (msg.type !== 'hello' || typeof msg.instanceId !== 'string') { ws.terminate(); return undefined; }
    const id = msg.instanceId;
    let welcome: Welcome;
    if (!this.authenticating.has(id)) this.authenticating.set(id, ws);
    try {
      welcome = await this.handlers.authenticate(msg, peer, () => this.liveSession(id, ws));
    } catch (e) {
      this.log(`gateway: hello for ${id.slice(0, 64)} from ${peer.address} refused: ${(e as Error).message}`);
      if (ws.readyState === ws.OPEN) {
        ws.send(JSON.stringify({ type: 'error', message: (e as Error).message } satisfies ControlMessage));
        ws.close(1008, 'authentication failed');
        // A refused peer does not get to hold its slot through a slow close handshake.
        setTimeout(() => ws.terminate(), 1_000).unref();
      }
      return undefined;
    } finally {
      if (this.authenticating.get(id) === ws) this.authenticating.delete(id);
    }
    if (ws.readyState !== ws.OPEN) return undefined;
    this.authenticated(pre, socket);
    // The instance's previous connection did not answer (liveSession): it is dead.
    const old = this.sessions.get(id);
    if (old && old !== ws) old.terminate();
    this.sessions.set(id, ws);
    ws.send(JSON.stringify(welcome));
    this.handlers.onConnect(id, peer);
    return id;
  }
}

function connKey(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}
