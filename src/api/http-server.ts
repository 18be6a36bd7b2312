// The API's HTTP front: reads the body (bounded), authenticates with SigV4, routes to a
// protocol front door, and writes AWS-shaped responses and errors. Also /healthz and /metrics.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer, type ServerOptions as TlsServerOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { ApiError, invalidSignature, requestTooLarge, serviceUnavailable, toApiError, unknownOperation } from './errors.js';
import { verifySigV4 } from './sigv4.js';
import { invokeJson, type JsonService } from './json-protocol.js';
import { invokeQuery, serializeQueryError, serializeQueryOutput, type QueryService } from './query-protocol.js';
import type { ApiMetrics } from './metrics.js';
import type { RequestContext } from './context.js';
import { systemClock, type Clock } from '../domain/clock.js';
import { partitionOf } from '../domain/arn.js';
import type { Credentials } from '../identity/credentials.js';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface ApiServerOptions {
  jsonServices: JsonService[];
  /** AWS Query services (EC2, IAM, STS), told apart by the signature's service name. */
  queryServices?: QueryService[];
  credentials: Credentials;
  clock: Clock;
  metrics: ApiMetrics;
  log?: (line: string) => void;
  /** Extra GET routes (e.g. the agent gateway's upgrade path lives elsewhere). */
  onGet?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** WebSocket upgrades (the ECS Exec data channel); true when taken. Others get a 404. */
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** Decides whether the authenticated caller may do this; throws AccessDeniedException if not. */
  authorize?: (ctx: RequestContext, input: Record<string, unknown>) => void | Promise<void>;
  /** Extra members of `GET /healthz` (e.g. the TLS listener and whether FIPS is active). */
  health?: () => Record<string, unknown>;
  /**
   * Sees every API call once it is answered, before the response is written (the audit
   * trail); when it returns a promise, the response waits for it (the trail's group commit).
   */
  audit?: (call: CallRecord) => void | Promise<void>;
  /**
   * Who may read `GET /metrics` (it names every account's clusters, tasks and families):
   * a SigV4-signed GET (signing name `berth`, action GetMetrics) or a bearer token. Throws
   * when the caller may not; without it /metrics is refused to everyone.
   */
  metricsAccess?: (caller: { ctx: RequestContext } | { bearer: string }) => void | Promise<void>;
  /** Refuses a call before it runs (e.g. Berth's data disk is short): the error to answer, or undefined. */
  admit?: (service: string, action: string) => ApiError | undefined;
  /** What to answer for a failure Berth can name (e.g. its disk is full) instead of a bare 500. */
  explain?: (e: unknown) => ApiError | undefined;
}

/** One API call as the audit trail records it (allowed, denied or failed). */
export interface CallRecord {
  requestId: string;
  /** Epoch ms on the server's clock. */
  time: number;
  service: string;
  action: string;
  sourceIp: string;
  userAgent?: string;
  /** Known once the signature names a key (even if it was then refused). */
  accessKeyId?: string;
  /** Set when the caller was authenticated. */
  ctx?: RequestContext;
  /** The validated input, when the request got that far. */
  input?: Record<string, unknown>;
  /** What the action answered (successful calls). */
  output?: unknown;
  /** Set when the call came over the TLS listener. */
  tls?: { tlsVersion: string; cipherSuite: string; clientProvidedHostHeader?: string };
  status: number;
  errorCode?: string;
  errorMessage?: string;
}

class BodyTooLarge extends Error {}

/** CloudTrail's tlsDetails for a call that came over TLS. */
function tlsDetails(req: IncomingMessage): { tls?: NonNullable<CallRecord['tls']> } {
  const socket = req.socket as Partial<TLSSocket>;
  if (!socket.encrypted || !socket.getProtocol) return {};
  return { tls: {
    tlsVersion: socket.getProtocol() ?? 'unknown', cipherSuite: socket.getCipher?.()?.standardName ?? socket.getCipher?.()?.name ?? 'unknown',
    ...(typeof req.headers.host === 'string' ? { clientProvidedHostHeader: req.headers.host } : {}),
  } };
}

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
  /** The optional TLS listener serving the same API (see api/tls.ts). */
  tlsServer: TlsServer | undefined;
  private readonly byPrefix = new Map<string, JsonService>();
  private readonly bySigningName = new Map<string, QueryService>();

  constructor(private readonly opts: ApiServerOptions) {
    for (const s of opts.jsonServices) this.byPrefix.set(s.targetPrefix, s);
    for (const s of opts.queryServices ?? []) this.bySigningName.set(s.signingName, s);
    this.server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => { void this.handle(req, res); });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.opts.onUpgrade?.(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  }

  /** Serves the same API over TLS as well (certificate, protocol versions and ciphers in `options`). */
  listenTls(options: TlsServerOptions, port: number, host: string): Promise<AddressInfo> {
    const server = createTlsServer({ ...options, keepAliveTimeout: 65_000 } as TlsServerOptions, (req, res) => { void this.handle(req, res); });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    server.on('tlsClientError', (e, socket) => { this.opts.log?.(`tls: handshake from ${socket.remoteAddress ?? '?'} refused: ${e.message}`); });
    this.tlsServer = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server.address() as AddressInfo));
    });
  }

  /** Every service and the operations its handler table answers (for authorization coverage). */
  services(): { name: string; operations: string[] }[] {
    return [...this.byPrefix.values(), ...this.bySigningName.values()].map((s) => ({ name: s.name, operations: Object.keys(s.handlers) }));
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  close(): Promise<void> {
    const closing = (s: Server | TlsServer) => new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
    return Promise.all([closing(this.server), ...(this.tlsServer ? [closing(this.tlsServer)] : [])]).then(() => {});
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    let serviceName = 'http';
    let action = 'unknown';
    let code = '200';
    let status = 200;
    let ctx: RequestContext | undefined;
    let input: Record<string, unknown> | undefined;
    let failure: ApiError | undefined;
    let audited = false;
    let auditAction = 'unknown';
    try {
      if (req.method === 'GET') {
        action = 'GET';
        if (req.url === '/healthz') { this.send(res, 200, 'application/json', JSON.stringify({ status: 'ok', ...this.opts.health?.() }), requestId); return; }
        if (req.url === '/metrics' || req.url?.startsWith('/metrics?')) {
          serviceName = 'berth';
          action = 'GetMetrics';
          await this.serveMetrics(req, res, requestId, (c) => { code = c; });
          return;
        }
        if (this.opts.onGet?.(req, res)) return;
        code = '404';
        this.send(res, 404, 'application/json', '{"message":"Not Found"}', requestId);
        return;
      }
      const target = req.headers['x-amz-target'];
      const body = await readBody(req, MAX_BODY_BYTES);
      if (req.method === 'POST' && typeof target !== 'string' && this.isQuery(req, body)) {
        audited = true;
        await this.handleQuery(req, res, body, requestId, (s, a) => { serviceName = s; action = a; }, (c) => { code = c; });
        return;
      }
      if (req.method !== 'POST' || typeof target !== 'string') {
        throw unknownOperation('Berth accepts POST / with an X-Amz-Target header (AWS JSON 1.1).');
      }
      const dot = target.lastIndexOf('.');
      const service = dot > 0 ? this.byPrefix.get(target.slice(0, dot)) : undefined;
      if (!service) throw unknownOperation(`Unknown target '${target}'.`);
      serviceName = service.name;
      const requested = target.slice(dot + 1);
      action = service.known.has(requested) ? requested : 'unknown';
      auditAction = requested;
      ctx = await this.authenticate(req, body, requestId, service.signingName, service.name, requested);
      const refusal = this.opts.admit?.(service.name, requested);
      if (refusal) throw refusal;
      const output = await invokeJson(service, requested, ctx, body, async (c, i) => { input = i; await this.opts.authorize?.(c, i); });
      const payload = JSON.stringify(output ?? {});
      // Committed before the response is written: a client never sees an unrecorded answer
      // (a record that cannot be committed makes the call a 503 instead).
      audited = true;
      await this.commitRecord(req, requestId, serviceName, auditAction, ctx, input, 200, undefined, output);
      this.send(res, 200, 'application/x-amz-json-1.1', payload, requestId);
    } catch (e) {
      let err = e instanceof BodyTooLarge
        ? requestTooLarge(`The request body exceeds the limit of ${MAX_BODY_BYTES} bytes.`)
        : this.opts.explain?.(e) ?? toApiError(e);
      if (!(e instanceof ApiError) && !(e instanceof BodyTooLarge)) {
        this.opts.log?.(`request ${requestId} ${serviceName}.${action} failed: ${(e as Error)?.stack ?? e}`);
      }
      if (!audited && req.method === 'POST') {
        audited = true;
        try {
          await this.commitRecord(req, requestId, serviceName, auditAction, ctx, input, err.status, err);
        } catch (unrecorded) { err = toApiError(unrecorded); }
      }
      code = err.code;
      status = err.status;
      failure = err;
      const payload = JSON.stringify({ __type: err.code, message: err.message, ...err.extra });
      if (!res.headersSent) {
        res.setHeader('x-amzn-ErrorType', err.code);
        this.send(res, err.status, 'application/x-amz-json-1.1', payload, requestId, e instanceof BodyTooLarge);
      }
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.opts.metrics.observe(serviceName, action, code, seconds);
      if (!audited && req.method === 'POST') {
        void this.auditCall(req, requestId, serviceName, auditAction, ctx, input, status, failure);
      }
    }
  }

  /**
   * Commits the call's audit record; throws the 503 to answer instead when it cannot be
   * committed (the call must not be answered as if it were recorded).
   */
  private async commitRecord(req: IncomingMessage, requestId: string, service: string, action: string, ctx: RequestContext | undefined,
    input: Record<string, unknown> | undefined, status: number, failure: ApiError | undefined, output?: unknown): Promise<void> {
    if (!this.opts.audit) return;
    try {
      await this.callRecord(req, requestId, service, action, ctx, input, status, failure, output);
    } catch (e) {
      this.opts.log?.(`audit: the record of request ${requestId} (${service}.${action}) was not committed, so the call is answered 503: ${(e as Error)?.message ?? e}`);
      throw this.opts.explain?.(e) ?? serviceUnavailable(`The request was not completed because its audit record could not be committed (${(e as Error)?.message ?? e}). Try again later.`);
    }
  }

  /** Audits a call whose answer is already decided (logs when the record is lost). */
  private auditCall(req: IncomingMessage, requestId: string, service: string, action: string, ctx: RequestContext | undefined,
    input: Record<string, unknown> | undefined, status: number, failure: ApiError | undefined, output?: unknown): Promise<void> | undefined {
    if (!this.opts.audit) return undefined;
    try {
      const pending = this.callRecord(req, requestId, service, action, ctx, input, status, failure, output);
      return pending ? pending.catch((e: unknown) => { this.opts.log?.(`audit: ${(e as Error).message}`); }) : undefined;
    } catch (e) {
      this.opts.log?.(`audit: ${(e as Error).message}`);
      return undefined;
    }
  }

  private callRecord(req: IncomingMessage, requestId: string, service: string, action: string, ctx: RequestContext | undefined,
    input: Record<string, unknown> | undefined, status: number, failure: ApiError | undefined, output?: unknown): void | Promise<void> {
    const accessKeyId = ctx?.principal.accessKeyId ?? /Credential=([^/,\s]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
    // Member by member: an object literal with this many conditional spreads is slow in V8.
    const call: CallRecord = { requestId, time: this.opts.clock.now(), service, action, sourceIp: req.socket.remoteAddress ?? '', status };
    const userAgent = req.headers['user-agent'];
    if (typeof userAgent === 'string') call.userAgent = userAgent;
    if (accessKeyId) call.accessKeyId = accessKeyId;
    if (ctx) call.ctx = ctx;
    if (input) call.input = input;
    if (failure) { call.errorCode = failure.code; call.errorMessage = failure.message; }
    if (output !== undefined) call.output = output;
    const tls = tlsDetails(req).tls;
    if (tls) call.tls = tls;
    return this.opts.audit!(call);
  }

  /** GET /metrics, for the administrator only (metricsAccess); the read is audited like a call. */
  private async serveMetrics(req: IncomingMessage, res: ServerResponse, requestId: string, coded: (code: string) => void): Promise<void> {
    let ctx: RequestContext | undefined;
    try {
      const access = this.opts.metricsAccess;
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(String(req.headers.authorization ?? ''))?.[1];
      if (bearer !== undefined) {
        if (!access) throw new ApiError('AccessDeniedException', 'No metrics scrape credential is configured (BERTH_METRICS_TOKEN).', 403);
        await access({ bearer });
      } else {
        ctx = await this.authenticate(req, Buffer.alloc(0), requestId, 'berth', 'berth', 'GetMetrics');
        if (!access) throw new ApiError('AccessDeniedException', '/metrics is not served by this Berth.', 403);
        await access({ ctx });
      }
      const text = await this.opts.metrics.registry.metrics();
      await this.commitRecord(req, requestId, 'berth', 'GetMetrics', ctx, undefined, 200, undefined, {});
      this.send(res, 200, this.opts.metrics.registry.contentType, text, requestId);
    } catch (e) {
      let err = toApiError(e);
      try { await this.commitRecord(req, requestId, 'berth', 'GetMetrics', ctx, undefined, err.status, err); } catch (unrecorded) { err = toApiError(unrecorded); }
      coded(err.code);
      res.setHeader('x-amzn-ErrorType', err.code);
      this.send(res, err.status, 'application/json', JSON.stringify({ __type: err.code, message: err.message }), requestId);
    }
  }

  private isQuery(req: IncomingMessage, body: Buffer): boolean {
    const type = String(req.headers['content-type'] ?? '');
    return type.startsWith('application/x-www-form-urlencoded') || body.subarray(0, 7).toString() === 'Action=';
  }

  /** AWS Query: the service is the one the request was signed for (ec2, iam, sts). */
  private async handleQuery(req: IncomingMessage, res: ServerResponse, body: Buffer, requestId: string,
    named: (service: string, action: string) => void, coded: (code: string) => void): Promise<void> {
    const scopeService = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
    const service = scopeService ? this.bySigningName.get(scopeService) : undefined;
    const params = new URLSearchParams(body.toString('utf8'));
    const requested = params.get('Action') ?? '';
    let ctx: RequestContext | undefined;
    let input: Record<string, unknown> | undefined;
    let recorded = false;
    try {
      if (!service) {
        // Unsigned or for a service Berth has none of: authenticate for the right errors.
        await this.authenticate(req, body, requestId, scopeService ?? 'unknown', 'query', requested);
        throw unknownOperation(`Berth has no Query API for service '${scopeService}'.`);
      }
      named(service.name, service.known.has(requested) ? requested : 'unknown');
      ctx = await this.authenticate(req, body, requestId, service.signingName, service.name, requested);
      if (!requested) throw new ApiError('MissingAction', 'The request must contain the parameter Action.');
      const refusal = this.opts.admit?.(service.name, requested);
      if (refusal) throw refusal;
      const output = await invokeQuery(service, requested, ctx, params, async (c, i) => { input = i; await this.opts.authorize?.(c, i); });
      const xml = serializeQueryOutput(service, requested, output, requestId);
      recorded = true;
      await this.commitRecord(req, requestId, service.name, requested, ctx, input, 200, undefined, output);
      this.send(res, 200, 'text/xml', xml, requestId);
    } catch (e) {
      let err = this.opts.explain?.(e) ?? toApiError(e);
      if (!(e instanceof ApiError)) this.opts.log?.(`request ${requestId} ${service?.name ?? 'query'}.${requested} failed: ${(e as Error)?.stack ?? e}`);
      if (!recorded) {
        try {
          await this.commitRecord(req, requestId, service?.name ?? scopeService ?? 'query', requested || 'unknown', ctx, input, err.status, err);
        } catch (unrecorded) { err = toApiError(unrecorded); }
      }
      coded(err.code);
      this.send(res, err.status, 'text/xml', serializeQueryError(service, err, requestId), requestId);
    }
  }

  private async authenticate(req: IncomingMessage, body: Buffer, requestId: string, signingName: string, service: string, action: string): Promise<RequestContext> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // Signatures are about wall-clock time, even when the control plane runs on virtual time.
    const now = systemClock.now();
    const verified = await verifySigV4(
      { method: req.method ?? 'POST', path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), headers: req.headers, body },
      (id) => this.opts.credentials.lookup(id)?.secret,
      now,
    );
    if (verified.service !== signingName) {
      throw invalidSignature(`Credential should be scoped to correct service: '${signingName}'.`);
    }
    const record = this.opts.credentials.lookup(verified.accessKeyId)!.record;
    // Temporary credentials (STS): their own session token, and not expired on the server clock.
    const token = req.headers['x-amz-security-token'];
    this.opts.credentials.checkSessionToken(record, Array.isArray(token) ? token.join(',') : token, this.opts.clock.now(), service === 'iam' || service === 'sts');
    return {
      requestId,
      scope: { account: record.accountId, region: verified.region, partition: partitionOf(verified.region) },
      principal: { accountId: record.accountId, accessKeyId: record.accessKeyId, principal: record.principal, userName: record.userName },
      clock: this.opts.clock,
      sourceIp: req.socket.remoteAddress ?? '',
      ...(typeof req.headers.host === 'string' && req.headers.host ? { host: req.headers.host } : {}),
      ...((req.socket as { encrypted?: boolean }).encrypted ? { secureTransport: true } : {}),
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
