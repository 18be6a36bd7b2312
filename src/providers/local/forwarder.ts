// Registry relays on the bridge gateway to registries on the host's loopback (a registry on
// 127.0.0.1:5000 becomes <gateway>:<port> for the agents' pulls), like ECR being reachable
// over the VPC. They run in the Berth process, in the host network namespace: nothing
// listens inside an instance. A relay is an HTTP proxy for pulls only: GET and HEAD of the
// registry API (`/v2/...`); anything else (a push, another path) is answered here and never
// reaches the registry. The firewall lets only the instances' pull namespaces reach it, and
// a relay never forwards to a port of Berth itself (its API, its gateway).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface LoopbackTarget { host: string; port: number }

/** Parses "127.0.0.1:5000", "localhost:5000", "[::1]:5000"; only loopback addresses are accepted. */
export function parseLoopback(hostPort: string): LoopbackTarget {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(hostPort.trim());
  const host = m ? (m[1] ?? m[2]!) : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new Error(`registry address must be HOST:PORT, got '${hostPort}'`);
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loopback) throw new Error(`only a loopback registry needs a forward (127.0.0.0/8, ::1, localhost), got '${hostPort}'`);
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}

export type RelayDecision = { relay: true } | { relay: false; status: 404 | 405; message: string };

// A repository name, then manifests/<ref>, blobs/<digest>, tags/list or referrers/<digest>; or the API root or catalog.
const PULL_PATH = /^\/v2\/(?:|_catalog|(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*\/(?:manifests\/[\w][\w.:-]{0,127}|blobs\/[a-z0-9]+:[a-f0-9]{32,128}|tags\/list|referrers\/[a-z0-9]+:[a-f0-9]{32,128}))$/;

/** What a relay does with a request: pulls go on to the registry; the rest is refused here. Pure. */
export function relayDecision(method: string | undefined, url: string | undefined): RelayDecision {
  if (method !== 'GET' && method !== 'HEAD') {
    return { relay: false, status: 405, message: `the registry relay is for pulls only: ${method ?? '?'} is not allowed (only GET and HEAD)` };
  }
  const path = (url ?? '').split('?')[0]!;
  if (path !== '/v2' && !PULL_PATH.test(path)) return { relay: false, status: 404, message: `the registry relay serves only the registry pull API (/v2/...), not ${path.slice(0, 200)}` };
  return { relay: true };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

function withoutHopByHop(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const named = new Set(String(headers.connection ?? '').split(',').map((h) => h.trim().toLowerCase()));
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}

/** Decodes a /proc/net/tcp{,6} address: an IPv4 address, '::', '::1', or the hex as is. */
function procAddress(hex: string): string {
  const v4 = (h: string) => [6, 4, 2, 0].map((i) => parseInt(h.slice(i, i + 2), 16)).join('.');
  if (hex.length === 8) return v4(hex);
  if (/^0{32}$/.test(hex)) return '::';
  if (hex === '00000000000000000000000001000000') return '::1';
  if (/^0{16}FFFF0000/i.test(hex)) return v4(hex.slice(24));
  return hex;
}

/** The TCP sockets this process listens on (/proc/net/tcp{,6} entries whose inode is one of our fds). */
export function ownListeners(): { address: string; port: number }[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try { const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`)); if (m) inodes.add(m[1]!); } catch { /* closed meanwhile */ }
  }
  const out: { address: string; port: number }[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A' || !inodes.has(f[9] ?? '')) continue;
      const [addr, port] = f[1]!.split(':');
      out.push({ address: procAddress(addr!), port: parseInt(port!, 16) });
    }
  }
  return out;
}

/** Whether a connection to the target would reach a socket of this very process (Berth's API, its gateway…). Pure. */
export function reachesOwnSocket(target: LoopbackTarget, listeners: { address: string; port: number }[]): boolean {
  return listeners.some((l) => l.port === target.port && (l.address === '0.0.0.0' || l.address === '::' || l.address === target.host));
}

function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ code: status === 405 ? 'UNSUPPORTED' : 'DENIED', message }] });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

interface Relay { server: Server; address: string; port: number; agent: Agent }

export class Forwarders {
  private readonly servers = new Map<string, Relay>();
  /** Relays being opened (concurrent calls for one target share one). */
  private readonly opening = new Map<string, Promise<Relay>>();

  private ownSockets?: { at: number; listeners: { address: string; port: number }[] };

  /** Berth's own listening sockets, read from /proc at most once a second (a pull makes a request per layer). */
  private listeners(): { address: string; port: number }[] {
    const now = performance.now();
    if (!this.ownSockets || now - this.ownSockets.at > 1_000) this.ownSockets = { at: now, listeners: ownListeners() };
    return this.ownSockets.listeners;
  }

  /** `log` gets every refused request (only agents reach a relay: a refusal means a broken or hostile one). */
  constructor(private readonly log: (line: string) => void) {}

  /**
   * A relay on listenHost to the target: on the target's port when that is free there (stable
   * across restarts), else on a port the kernel picks. Returns "listenHost:port".
   */
  async ensure(listenHost: string, target: LoopbackTarget): Promise<{ address: string; port: number }> {
    const key = `${listenHost}|${target.host}|${target.port}`;
    const existing = this.servers.get(key);
    if (existing) return existing;
    let opening = this.opening.get(key);
    if (!opening) {
      opening = this.open(listenHost, target).finally(() => this.opening.delete(key));
      this.opening.set(key, opening);
    }
    const relay = await opening;
    this.servers.set(key, relay);
    return relay;
  }

  private async open(listenHost: string, target: LoopbackTarget): Promise<Relay> {
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const server = createServer((req, res) => this.relay(target, agent, req, res));
    server.on('connect', (_req, socket: Socket) => { socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n'); });
    server.on('upgrade', (_req, socket: Socket) => { socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n'); });
    server.headersTimeout = 30_000;
    server.requestTimeout = 10 * 60_000;
    const listen = (port: number) => new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listenHost, port, exclusive: true }, () => { server.off('error', reject); resolve(); });
    });
    try {
      await listen(target.port).catch((e: NodeJS.ErrnoException) => { if (e.code === 'EADDRINUSE') return listen(0); throw e; });
    } catch (e) {
      agent.destroy();
      throw new Error(`cannot open a registry relay on ${listenHost} to ${target.host}:${target.port}: ${(e as Error).message}`);
    }
    const port = (server.address() as { port: number }).port;
    return { server, address: `${listenHost}:${port}`, port, agent };
  }

  private relay(target: LoopbackTarget, agent: Agent, req: IncomingMessage, res: ServerResponse): void {
    req.resume(); // a pull sends no body; never pass one on
    const decision = relayDecision(req.method, req.url);
    const refused = (status: number, message: string, headers: Record<string, string> = {}) => {
      this.log(`registry relay to ${target.host}:${target.port}: refused ${String(req.method).slice(0, 16)} ${String(req.url).slice(0, 200)} from ${req.socket.remoteAddress}: ${status}`);
      refuse(res, status, message, headers);
    };
    if (!decision.relay) {
      refused(decision.status, decision.message, decision.status === 405 ? { Allow: 'GET, HEAD' } : {});
      return;
    }
    // Checked per request: Berth's API may start listening after the relay opened (a pull
    // then fails with this message rather than the whole desired state with an exception).
    if (reachesOwnSocket(target, this.listeners())) {
      refused(403, `${target.host}:${target.port} is a port of Berth itself, not a registry`);
      return;
    }
    const origin = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
    const upstream = request({
      host: target.host, port: target.port, method: req.method, path: req.url, agent,
      headers: { ...withoutHopByHop(req.headers), host: origin },
    }, (up) => {
      const headers = withoutHopByHop(up.headers);
      // A redirect to the registry itself must stay relative: the puller cannot reach the host's loopback.
      const location = up.headers.location;
      if (location?.startsWith(`http://${origin}/`)) headers['location'] = location.slice(`http://${origin}`.length);
      if (up.headers['content-length'] !== undefined) headers['content-length'] = up.headers['content-length'];
      res.writeHead(up.statusCode ?? 502, headers);
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.setTimeout(5 * 60_000, () => upstream.destroy(new Error('registry timed out')));
    upstream.on('error', (e) => {
      if (!res.headersSent) refuse(res, 502, `registry ${origin} unreachable: ${e.message}`);
      else res.destroy();
    });
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    upstream.end();
  }

  /** The relays' ports (on their listen address). */
  ports(): number[] { return [...this.servers.values()].map((s) => s.port); }

  async close(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(all.map(({ server, agent }) => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
      agent.destroy();
    })));
  }
}
