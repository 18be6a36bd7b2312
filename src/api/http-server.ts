// The API's HTTP front: reads the body (bounded), authenticates with SigV4, routes to a
// protocol front door, and writes AWS-shaped responses and errors. Also /healthz and /metrics.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { ApiError, invalidSignature, requestTooLarge, toApiError, unknownOperation } from './errors.js';
import { verifySigV4 } from './sigv4.js';
import { invokeJson, type JsonService } from './json-protocol.js';
import type { ApiMetrics } from './metrics.js';
import type { RequestContext } from './context.js';
import type { Clock } from '../domain/clock.js';
import { partitionOf } from '../domain/arn.js';
import type { Credentials } from '../identity/credentials.js';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface ApiServerOptions {
  jsonServices: JsonService[];
  credentials: Credentials;
  clock: Clock;
  metrics: ApiMetrics;
  log?: (line: string) => void;
  /** Extra GET routes (e.g. the agent gateway's upgrade path lives elsewhere). */
  onGet?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** WebSocket upgrades (the ECS Exec data channel); true when taken. Others get a 404. */
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) { reject(new BodyTooLarge()); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(new BodyTooLarge()); req.removeAllListeners('data'); req.resume(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export class ApiServer {
  readonly server: Server;
  private readonly byPrefix = new Map<string, JsonService>();

  constructor(private readonly opts: ApiServerOptions) {
    for (const s of opts.jsonServices) this.byPrefix.set(s.targetPrefix, s);
    this.server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => { void this.handle(req, res); });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      if (this.opts.onUpgrade?.(req, socket, head)) return;
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    let serviceName = 'http';
    let action = 'unknown';
    let code = '200';
    try {
      if (req.method === 'GET') {
        action = 'GET';
        if (req.url === '/healthz') { this.send(res, 200, 'application/json', '{"status":"ok"}', requestId); return; }
        if (req.url === '/metrics') {
          this.send(res, 200, this.opts.metrics.registry.contentType, await this.opts.metrics.registry.metrics(), requestId);
          return;
        }
        if (this.opts.onGet?.(req, res)) return;
        code = '404';
        this.send(res, 404, 'application/json', '{"message":"Not Found"}', requestId);
        return;
      }
      const target = req.headers['x-amz-target'];
      const body = await readBody(req, MAX_BODY_BYTES);
      if (req.method !== 'POST' || typeof target !== 'string') {
        throw unknownOperation('Berth accepts POST / with an X-Amz-Target header (AWS JSON 1.1).');
      }
      const dot = target.lastIndexOf('.');
      const service = dot > 0 ? this.byPrefix.get(target.slice(0, dot)) : undefined;
      if (!service) throw unknownOperation(`Unknown target '${target}'.`);
      serviceName = service.name;
      const requested = target.slice(dot + 1);
      action = service.known.has(requested) ? requested : 'unknown';
      const ctx = await this.authenticate(req, body, requestId, service.signingName, service.name, requested);
      const output = await invokeJson(service, requested, ctx, body);
      this.send(res, 200, 'application/x-amz-json-1.1', JSON.stringify(output ?? {}), requestId);
    } catch (e) {
      const err = e instanceof BodyTooLarge
        ? requestTooLarge(`The request body exceeds the limit of ${MAX_BODY_BYTES} bytes.`)
        : toApiError(e);
      if (!(e instanceof ApiError) && !(e instanceof BodyTooLarge)) {
        this.opts.log?.(`request ${requestId} ${serviceName}.${action} failed: ${(e as Error)?.stack ?? e}`);
      }
      code = err.code;
      const payload = JSON.stringify({ __type: err.code, message: err.message, ...err.extra });
      if (!res.headersSent) {
        res.setHeader('x-amzn-ErrorType', err.code);
        this.send(res, err.status, 'application/x-amz-json-1.1', payload, requestId, e instanceof BodyTooLarge);
      }
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.opts.metrics.observe(serviceName, action, code, seconds);
    }
  }

  private async authenticate(req: IncomingMessage, body: Buffer, requestId: string, signingName: string, service: string, action: string): Promise<RequestContext> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const now = this.opts.clock.now();
    const verified = await verifySigV4(
      { method: req.method ?? 'POST', path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), headers: req.headers, body },
      (id) => this.opts.credentials.lookup(id)?.secret,
      now,
    );
    if (verified.service !== signingName) {
      throw invalidSignature(`Credential should be scoped to correct service: '${signingName}'.`);
    }
    const record = this.opts.credentials.lookup(verified.accessKeyId)!.record;
    return {
      requestId,
      scope: { account: record.accountId, region: verified.region, partition: partitionOf(verified.region) },
      principal: { accountId: record.accountId, accessKeyId: record.accessKeyId, principal: record.principal, userName: record.userName },
      clock: this.opts.clock,
      sourceIp: req.socket.remoteAddress ?? '',
      ...(typeof req.headers.host === 'string' && req.headers.host ? { host: req.headers.host } : {}),
      service,
      action,
    };
  }

  private send(res: ServerResponse, status: number, type: string, body: string, requestId: string, close = false): void {
    res.writeHead(status, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'x-amzn-requestid': requestId,
      ...(close ? { connection: 'close' } : {}),
    });
    res.end(body);
  }
}
