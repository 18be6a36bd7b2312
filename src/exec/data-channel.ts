// One session's end of the Session Manager data channel (ssm-data-channel.md §2–§7), kept
// across connections so a client that lost its WebSocket can resume where it was:
//  - output messages are numbered from 0 (0 = the handshake request) and kept until
//    acknowledged; every (re)connection resends the unacknowledged ones in order, and
//    ones unacknowledged for a second are resent periodically;
//  - an acknowledgement of n also settles everything before n: output is always (re)sent
//    in order on one connection, so a client that saw n saw what came before (its own
//    acknowledgement of those may have been lost with a dropped connection, and the client
//    drops repeats below its expected number without acknowledging them again);
//  - client messages are acknowledged one by one (repeats too), processed in sequence
//    order, early ones buffered.
import type { WebSocket } from 'ws';
import {
  channelClosedMessage, CodecError, decodeMessage, encodeAck, encodeMessage, Flags, handshakeCompletePayload, handshakeRequestPayload,
  MessageType, parseJson, PayloadType, type AcknowledgeContent, type ChannelMessage, type HandshakeResponse,
} from './codec.js';

/** Output payloads are cut to this size, like the SSM agent's stream messages. */
export const OUTPUT_CHUNK = 1024;
/** Unacknowledged output above which the command's terminal is paused, and below which it resumes. */
export const PAUSE_ABOVE = 512 * 1024;
export const RESUME_BELOW = 128 * 1024;
const RESEND_AFTER_MS = 1_000;
const RESEND_TICK_MS = 500;
const RESEND_BATCH = 64;
const MAX_EARLY = 10_000;
/** The Flag payload a client sends to end its session (SSM's TerminateShellSession). */
const FLAG_TERMINATE = 2;

export interface DataChannelHandlers {
  /** The client answered the handshake (once per session). */
  handshake(response: HandshakeResponse | undefined): void;
  size(cols: number, rows: number): void;
  input(data: Buffer): void;
  terminate(): void;
  /** Pause (true) or resume the producer of output. */
  backpressure(pause: boolean): void;
  protocolError(message: string): void;
}

interface Pending { frame: Buffer; bytes: number; sentAt: number }

export class DataChannel {
  private ws: WebSocket | undefined;
  private nextOut = 0;
  private readonly unacked = new Map<number, Pending>();
  private unackedBytes = 0;
  private expectedIn = 0;
  private readonly early = new Map<number, ChannelMessage>();
  private handshakeStarted: bigint | undefined;
  private handshakeDone = false;
  private paused = false;
  private resendTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly sessionId: string, agentVersion: string, private readonly now: () => number, private readonly h: DataChannelHandlers) {
    // The handshake request is output message 0: sent on the first connection and resent
    // like any other unacknowledged output.
    this.enqueue(PayloadType.HandshakeRequest, handshakeRequestPayload(agentVersion));
  }

  get connected(): boolean { return this.ws !== undefined; }
  get pendingOutputBytes(): number { return this.unackedBytes; }

  /** Uses `ws` from now on (a first connection or a resumed one) and resends what is unacknowledged. */
  attach(ws: WebSocket): void {
    if (this.ws && this.ws !== ws) this.ws.terminate();
    this.ws = ws;
    this.handshakeStarted ??= process.hrtime.bigint();
    const now = this.now();
    for (const p of this.unacked.values()) { ws.send(p.frame); p.sentAt = now; }
    this.resendTimer ??= setInterval(() => this.resendStale(), RESEND_TICK_MS);
    this.resendTimer.unref?.();
  }

  detach(ws: WebSocket): void {
    if (this.ws === ws) this.ws = undefined;
  }

  /** Queues output (cut into chunks) for the client; sent now when connected. */
  output(data: Buffer, payloadType: number = PayloadType.Output): void {
    for (let i = 0; i < data.length; i += OUTPUT_CHUNK) this.enqueue(payloadType, data.subarray(i, i + OUTPUT_CHUNK));
  }

  /** Sends `channel_closed` (when connected) and stops; the caller closes the socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.resendTimer) clearInterval(this.resendTimer);
    this.ws?.send(channelClosedMessage({ sessionId: this.sessionId, now: this.now(), sequenceNumber: this.nextOut }));
  }

  /** One binary frame from the client. */
  onFrame(data: Buffer): void {
    let m: ChannelMessage;
    try {
      m = decodeMessage(data);
    } catch (e) {
      this.h.protocolError(e instanceof CodecError ? e.message : String(e));
      return;
    }
    if (m.messageType === MessageType.Acknowledge) {
      const a = parseJson<AcknowledgeContent>(m.payload);
      if (a && Number.isSafeInteger(a.AcknowledgedMessageSequenceNumber)) this.settle(a.AcknowledgedMessageSequenceNumber);
      return;
    }
    if (m.messageType !== MessageType.Input) return;
    this.ws?.send(encodeAck(m, this.now()));
    if (m.sequenceNumber < this.expectedIn) return;
    if (m.sequenceNumber > this.expectedIn) {
      if (this.early.size < MAX_EARLY) this.early.set(m.sequenceNumber, m);
      return;
    }
    this.process(m);
    this.expectedIn++;
    for (let next = this.early.get(this.expectedIn); next; next = this.early.get(this.expectedIn)) {
      this.early.delete(this.expectedIn);
      this.process(next);
      this.expectedIn++;
    }
  }

  private process(m: ChannelMessage): void {
    if (this.closed) return;
    switch (m.payloadType) {
      case PayloadType.HandshakeResponse: {
        if (this.handshakeDone) return;
        this.handshakeDone = true;
        const elapsed = process.hrtime.bigint() - (this.handshakeStarted ?? process.hrtime.bigint());
        this.enqueue(PayloadType.HandshakeComplete, handshakeCompletePayload(elapsed));
        this.h.handshake(parseJson<HandshakeResponse>(m.payload));
        return;
      }
      case PayloadType.Size: {
        const s = parseJson<{ cols?: unknown; rows?: unknown }>(m.payload);
        const cols = Number(s?.cols), rows = Number(s?.rows);
        if (Number.isInteger(cols) && Number.isInteger(rows) && cols > 0 && rows > 0) this.h.size(cols, rows);
        return;
      }
      case PayloadType.Output:
        if (m.payload.length) this.h.input(m.payload);
        return;
      case PayloadType.Flag:
        if (m.payload.length >= 4 && m.payload.readUInt32BE(0) === FLAG_TERMINATE) this.h.terminate();
        return;
      default:
        return;
    }
  }

  private enqueue(payloadType: number, payload: Buffer): void {
    if (this.closed) return;
    const seq = this.nextOut++;
    const now = this.now();
    const frame = encodeMessage({ messageType: MessageType.Output, sequenceNumber: seq, createdDate: now, flags: seq === 0 ? Flags.SYN : 0n, payloadType, payload });
    this.unacked.set(seq, { frame, bytes: payload.length, sentAt: now });
    this.unackedBytes += payload.length;
    this.ws?.send(frame);
    if (!this.paused && this.unackedBytes > PAUSE_ABOVE) { this.paused = true; this.h.backpressure(true); }
  }

  /** An acknowledgement of `seq`: it and everything before it is delivered. */
  private settle(seq: number): void {
    for (const [k, p] of this.unacked) {
      if (k > seq) break;
      this.unacked.delete(k);
      this.unackedBytes -= p.bytes;
    }
    if (this.paused && this.unackedBytes < RESUME_BELOW) { this.paused = false; this.h.backpressure(false); }
  }

  private resendStale(): void {
    const ws = this.ws;
    if (!ws) return;
    const now = this.now();
    let n = 0;
    for (const p of this.unacked.values()) {
      if (now - p.sentAt < RESEND_AFTER_MS || n++ >= RESEND_BATCH) break;
      ws.send(p.frame);
      p.sentAt = now;
    }
  }

  /** Stops the periodic resend (the session is gone). */
  dispose(): void {
    this.closed = true;
    if (this.resendTimer) clearInterval(this.resendTimer);
  }
}
