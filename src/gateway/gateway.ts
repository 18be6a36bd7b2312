// Where instance agents dial in. Instances never listen: each agent opens one WebSocket to
// this gateway (on the Berth bridge's address), proves who it is with a single-use
// bootstrap token (first time) or its instance credential, then streams reports.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AgentMessage, ControlMessage } from '../agent/protocol.js';

export interface AgentIdentity { instanceId: string }

export interface GatewayHandlers {
  /** Checks a hello; returns the welcome (with a new credential after a bootstrap) or throws. */
  authenticate(hello: Extract<AgentMessage, { type: 'hello' }>): Promise<Extract<ControlMessage, { type: 'welcome' }>> | Extract<ControlMessage, { type: 'welcome' }>;
  onMessage(instanceId: string, msg: Exclude<AgentMessage, { type: 'hello' }>): void | Promise<void>;
  onConnect(instanceId: string): void;
  /** `silentForMs`: how long before the disconnection the agent was last heard from (0 unless dropped for silence). */
  onDisconnect(instanceId: string, silentForMs: number): void;
}

export const HELLO_TIMEOUT_MS = 5_000;
export const PING_INTERVAL_MS = 2_000;
/**
 * By default, an agent not heard from (message or pong) for this long is dropped. Measured
 * in elapsed time, not missed ticks: a control plane busy for a few seconds (its pongs
 * queued behind a ping timer) must not drop every agent at once.
 */
export const SILENT_AFTER_MS = 10_000;

export class Gateway {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, WebSocket>();

  constructor(private readonly handlers: GatewayHandlers, private readonly log: (line: string) => void,
    private readonly silentAfterMs = SILENT_AFTER_MS) {
    this.server = createServer((_req, res) => { res.writeHead(404).end(); });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });
    this.server.on('upgrade', (req, socket, head) => {
      if (req.url !== '/agent') { socket.destroy(); return; }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
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

  private accept(ws: WebSocket): void {
    let instanceId: string | undefined;
    let heardAt = performance.now(); // monotonic: only elapsed time matters here
    let why = '';
    const helloTimer = setTimeout(() => { why = 'no hello in time'; ws.terminate(); }, HELLO_TIMEOUT_MS);
    const ping = setInterval(() => {
      // An agent that stops answering pings is gone even if TCP has not noticed yet.
      const silent = performance.now() - heardAt;
      if (silent > this.silentAfterMs) { why = `silent for ${(silent / 1000).toFixed(1)} s`; ws.terminate(); return; }
      ws.ping();
    }, PING_INTERVAL_MS);
    ws.on('pong', () => { heardAt = performance.now(); });
    ws.on('message', async (data) => {
      heardAt = performance.now();
      let msg: AgentMessage;
      try { msg = JSON.parse(data.toString()) as AgentMessage; } catch { ws.close(1003, 'invalid JSON'); return; }
      try {
        if (!instanceId) {
          if (msg.type !== 'hello') { ws.close(1008, 'hello first'); return; }
          const welcome = await this.handlers.authenticate(msg);
          clearTimeout(helloTimer);
          instanceId = msg.instanceId;
          this.sessions.get(instanceId)?.terminate();
          this.sessions.set(instanceId, ws);
          ws.send(JSON.stringify(welcome));
          this.handlers.onConnect(instanceId);
          return;
        }
        if (msg.type === 'hello') return;
        await this.handlers.onMessage(instanceId, msg);
      } catch (e) {
        this.log(`gateway: ${instanceId ?? 'unauthenticated agent'}: ${(e as Error).message}`);
        if (!instanceId) {
          ws.send(JSON.stringify({ type: 'error', message: (e as Error).message } satisfies ControlMessage));
          ws.close(1008, 'authentication failed');
        }
      }
    });
    ws.on('close', (code: number) => {
      clearTimeout(helloTimer);
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
}
