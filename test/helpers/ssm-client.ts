// A Session Manager data-channel client for tests, written from the protocol reference
// (/work/shared/reference/ssm-data-channel.md), independently of Berth's own codec, so that
// it checks Berth against the reference rather than against itself. It behaves like
// `session-manager-plugin`: token frame first, then binary messages; acknowledges output by
// sequence number and consumes it in order; answers the handshake; sends its terminal size
// first and keystrokes after; resends its oldest unacknowledged input (after 200 ms, then
// every 100 ms); resumes on a new token keeping its sequence numbers.
import { createHash, randomUUID } from 'node:crypto';
import WebSocket from 'ws';

export interface SessionInfo { sessionId: string; streamUrl: string; tokenValue: string }

export interface Message {
  messageType: string;
  schemaVersion: number;
  createdDate: number;
  sequenceNumber: number;
  flags: bigint;
  messageId: string;
  payloadType: number;
  payload: Buffer;
}

export const PT = { Output: 1, Size: 3, HandshakeRequest: 5, HandshakeResponse: 6, HandshakeComplete: 7, Flag: 10, ExitCode: 12 } as const;

export function encode(m: { messageType: string; sequenceNumber: number; payloadType: number; payload: Buffer; flags?: bigint; messageId?: string; createdDate?: number }): Buffer {
  const header = 116;
  const b = Buffer.alloc(header + 4 + m.payload.length);
  b.writeUInt32BE(header, 0);
  Buffer.from(m.messageType.padEnd(32, ' '), 'ascii').copy(b, 4);
  b.writeUInt32BE(1, 36);
  b.writeBigUInt64BE(BigInt(m.createdDate ?? Date.now()), 40);
  b.writeBigInt64BE(BigInt(m.sequenceNumber), 48);
  b.writeBigUInt64BE(m.flags ?? 0n, 56);
  const uuid = Buffer.from((m.messageId ?? randomUUID()).replace(/-/g, ''), 'hex');
  uuid.subarray(8, 16).copy(b, 64);
  uuid.subarray(0, 8).copy(b, 72);
  createHash('sha256').update(m.payload).digest().copy(b, 80);
  b.writeUInt32BE(m.payloadType, 112);
  b.writeUInt32BE(m.payload.length, 116);
  m.payload.copy(b, 120);
  return b;
}

/** Decodes with the checks the plugin makes; throws on a message it would reject. */
export function decode(b: Buffer): Message {
  const headerLength = b.readUInt32BE(0);
  if (headerLength === 0) throw new Error('HeaderLength is 0');
  const messageType = b.toString('ascii', 4, 36).trim();
  if (!messageType) throw new Error('MessageType is empty');
  const createdDate = Number(b.readBigUInt64BE(40));
  if (createdDate === 0) throw new Error('CreatedDate is 0');
  const payloadLength = b.readUInt32BE(headerLength);
  const payload = b.subarray(headerLength + 4, headerLength + 4 + payloadLength);
  if (payload.length !== payloadLength) throw new Error('truncated payload');
  if (payloadLength !== 0 && !createHash('sha256').update(payload).digest().equals(b.subarray(80, 112))) throw new Error('payload digest mismatch');
  const idHex = Buffer.concat([b.subarray(72, 80), b.subarray(64, 72)]).toString('hex');
  return {
    messageType, schemaVersion: b.readUInt32BE(36), createdDate,
    sequenceNumber: Number(b.readBigInt64BE(48)), flags: b.readBigUInt64BE(56),
    messageId: `${idHex.slice(0, 8)}-${idHex.slice(8, 12)}-${idHex.slice(12, 16)}-${idHex.slice(16, 20)}-${idHex.slice(20)}`,
    payloadType: b.readUInt32BE(112), payload: Buffer.from(payload),
  };
}

export interface ClientOptions {
  cols?: number;
  rows?: number;
  /** Called with every decoded server message before it is handled; return false to drop it (a "lost" frame). */
  filter?: (m: Message) => boolean;
  /** Return false to consume an output message without acknowledging it (an acknowledgement "lost"). */
  ackFilter?: (m: Message) => boolean;
}

export class SsmClient {
  ws: WebSocket | undefined;
  /** Everything printed (Output payloads), and every payload printed raw whatever its type. */
  output = Buffer.alloc(0);
  exitCode: number | undefined;
  handshakeTimeToComplete: unknown;
  closedPayload: Record<string, unknown> | undefined;
  firstOutputAt: number | undefined;
  /** Output messages seen below the expected sequence number (resends the client already had). */
  repeats = 0;
  received: Message[] = [];
  private expected = 0;
  private readonly early = new Map<number, Message>();
  private nextIn = 0;
  private readonly unacked = new Map<number, { frame: Buffer; firstSent: number; lastSent: number }>();
  private resend: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private closedFlag = false;
  private sizeSent = false;
  private wsClosed: Promise<{ code: number; reason: string }> = Promise.resolve({ code: 0, reason: '' });

  constructor(private session: SessionInfo, private readonly opts: ClientOptions = {}) {}

  /** Opens the WebSocket and sends the token frame. */
  async connect(token = this.session.tokenValue, streamUrl = this.session.streamUrl): Promise<void> {
    const ws = new WebSocket(streamUrl, { perMessageDeflate: false });
    this.ws = ws;
    this.wsClosed = new Promise((r) => ws.once('close', (code, reason) => { this.notify(); r({ code, reason: reason.toString() }); }));
    ws.on('error', () => {});
    // A refused upgrade fails with "Unexpected server response: <status>".
    await new Promise<void>((ok, fail) => { ws.once('open', () => ok()); ws.once('error', fail); });
    ws.ping();
    ws.send(JSON.stringify({ MessageSchemaVersion: '1.0', RequestId: randomUUID(), TokenValue: token, ClientId: randomUUID(), ClientVersion: '1.2.0.0' }));
    ws.on('message', (data, isBinary) => { if (isBinary && this.ws === ws) this.onFrame(data as Buffer); });
    this.resend ??= setInterval(() => this.resendOldest(), 50);
    this.resend.unref();
  }

  /** Resolves with the close code and reason of the current WebSocket. */
  closedSocket(): Promise<{ code: number; reason: string }> { return this.wsClosed; }

  /** Drops the connection without a goodbye, as a network failure would. */
  drop(): void {
    const ws = this.ws;
    this.ws = undefined;
    ws?.terminate();
  }

  /** Reconnects with a token from ResumeSession, keeping every sequence number. */
  async resume(token: string, streamUrl = this.session.streamUrl): Promise<void> {
    await this.connect(token, streamUrl);
  }

  text(): string { return this.output.toString('utf8'); }
  get closed(): boolean { return this.closedFlag; }

  /** Sends keystrokes (input_stream_data, PayloadType 1), in chunks of at most 1024 bytes. */
  type(data: string | Buffer): void {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    for (let i = 0; i < b.length; i += 1024) this.sendInput(PT.Output, b.subarray(i, i + 1024));
  }

  resize(cols: number, rows: number): void {
    this.sendInput(PT.Size, Buffer.from(JSON.stringify({ cols, rows })));
  }

  async waitFor(what: string, done: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output so far: ${JSON.stringify(this.text())}`);
      await new Promise<void>((r) => { const t = setTimeout(r, 50); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  waitForText(text: string | RegExp, timeoutMs?: number): Promise<void> {
    return this.waitFor(`output ${text}`, () => (typeof text === 'string' ? this.text().includes(text) : text.test(this.text())), timeoutMs);
  }

  waitClosed(timeoutMs?: number): Promise<void> {
    return this.waitFor('channel_closed', () => this.closedFlag, timeoutMs);
  }

  get unackedInput(): number { return this.unacked.size; }

  close(): void {
    if (this.resend) clearInterval(this.resend);
    this.resend = undefined;
    this.ws?.close();
    this.ws = undefined;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private sendInput(payloadType: number, payload: Buffer): void {
    const seq = this.nextIn++;
    const frame = encode({ messageType: 'input_stream_data', sequenceNumber: seq, payloadType, payload, flags: seq === 0 ? 1n : 0n });
    const now = Date.now();
    this.unacked.set(seq, { frame, firstSent: now, lastSent: now });
    this.ws?.send(frame);
  }

  /** Like the plugin: the oldest unacknowledged input again after 200 ms, then every 100 ms. */
  private resendOldest(): void {
    const first = this.unacked.values().next();
    if (first.done || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const p = first.value;
    const now = Date.now();
    const wait = p.lastSent === p.firstSent ? 200 : 100;
    if (now - p.lastSent < wait) return;
    p.lastSent = now;
    this.ws.send(p.frame);
  }

  private ack(m: Message): void {
    const payload = Buffer.from(JSON.stringify({
      AcknowledgedMessageType: m.messageType, AcknowledgedMessageId: m.messageId,
      AcknowledgedMessageSequenceNumber: m.sequenceNumber, IsSequentialMessage: true,
    }));
    this.ws?.send(encode({ messageType: 'acknowledge', sequenceNumber: 0, payloadType: 0, payload, flags: 3n }));
  }

  private onFrame(data: Buffer): void {
    const m = decode(data);
    if (this.opts.filter && !this.opts.filter(m)) return;
    this.received.push(m);
    switch (m.messageType) {
      case 'acknowledge': {
        const a = JSON.parse(m.payload.toString('utf8')) as { AcknowledgedMessageSequenceNumber: number };
        this.unacked.delete(a.AcknowledgedMessageSequenceNumber);
        break;
      }
      case 'channel_closed':
        this.closedPayload = JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>;
        this.closedFlag = true;
        break;
      case 'output_stream_data':
        if (m.sequenceNumber < this.expected) { this.repeats++; break; }
        if (!this.opts.ackFilter || this.opts.ackFilter(m)) this.ack(m);
        if (m.sequenceNumber > this.expected) { this.early.set(m.sequenceNumber, m); break; }
        this.consume(m);
        for (let n = this.early.get(this.expected); n; n = this.early.get(this.expected)) {
          this.early.delete(this.expected);
          this.consume(n);
        }
        break;
      default:
        break;
    }
    this.notify();
  }

  private consume(m: Message): void {
    this.expected++;
    switch (m.payloadType) {
      case PT.HandshakeRequest: {
        const req = JSON.parse(m.payload.toString('utf8')) as { RequestedClientActions: { ActionType: string }[] };
        this.sendInput(PT.HandshakeResponse, Buffer.from(JSON.stringify({
          ClientVersion: '1.2.0.0',
          ProcessedClientActions: req.RequestedClientActions.map((a) => ({ ActionType: a.ActionType, ActionStatus: a.ActionType === 'SessionType' ? 1 : 3 })),
          Errors: null,
        })));
        return;
      }
      case PT.HandshakeComplete: {
        this.handshakeTimeToComplete = (JSON.parse(m.payload.toString('utf8')) as { HandshakeTimeToComplete: unknown }).HandshakeTimeToComplete;
        if (!this.sizeSent) { this.sizeSent = true; this.resize(this.opts.cols ?? 300, this.opts.rows ?? 100); }
        return;
      }
      case PT.ExitCode:
        this.exitCode = Number(m.payload.toString('utf8'));
        this.print(m.payload);
        return;
      default:
        this.print(m.payload);
    }
  }

  private print(payload: Buffer): void {
    if (this.firstOutputAt === undefined && payload.length) this.firstOutputAt = performance.now();
    this.output = Buffer.concat([this.output, payload]);
  }
}
