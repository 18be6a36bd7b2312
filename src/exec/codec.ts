// The Session Manager data channel's binary messages (what `session-manager-plugin` speaks
// on the WebSocket behind an ECS ExecuteCommand `streamUrl`), encoded and decoded exactly as
// /work/shared/reference/ssm-data-channel.md §3 lays them out. Pure: no I/O, no clock.
//
//   offset size field                offset size field
//   0      4    HeaderLength = 116   64     16   MessageId (UUID bytes 8–15, then 0–7)
//   4      32   MessageType (ASCII,  80     32   SHA-256 of the payload
//               space-padded)        112    4    PayloadType
//   36     4    SchemaVersion = 1    116    4    PayloadLength
//   40     8    CreatedDate (ms)     120    …    Payload
//   48     8    SequenceNumber       (all big-endian)
//   56     8    Flags (bit0 SYN, bit1 FIN)
import { createHash, randomUUID } from 'node:crypto';

export const HEADER_LENGTH = 116;
const TYPE_LENGTH = 32;

export const MessageType = {
  Input: 'input_stream_data',
  Output: 'output_stream_data',
  Acknowledge: 'acknowledge',
  ChannelClosed: 'channel_closed',
  StartPublication: 'start_publication',
  PausePublication: 'pause_publication',
} as const;

export const PayloadType = {
  Output: 1,
  Error: 2,
  Size: 3,
  Parameter: 4,
  HandshakeRequest: 5,
  HandshakeResponse: 6,
  HandshakeComplete: 7,
  EncChallengeRequest: 8,
  EncChallengeResponse: 9,
  Flag: 10,
  StdErr: 11,
  ExitCode: 12,
} as const;

export const Flags = { SYN: 1n, FIN: 2n } as const;

export interface ChannelMessage {
  messageType: string;
  schemaVersion: number;
  /** Epoch milliseconds. */
  createdDate: number;
  sequenceNumber: number;
  flags: bigint;
  /** Canonical UUID text. */
  messageId: string;
  payloadType: number;
  payload: Buffer;
}

export class CodecError extends Error {}

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new CodecError(`not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

function uuidText(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function encodeMessage(m: Partial<ChannelMessage> & { messageType: string; payload: Buffer; sequenceNumber: number; createdDate: number }): Buffer {
  if (m.messageType.length === 0 || m.messageType.length > TYPE_LENGTH) throw new CodecError(`bad message type '${m.messageType}'`);
  const payload = m.payload;
  const out = Buffer.alloc(HEADER_LENGTH + 4 + payload.length);
  out.writeUInt32BE(HEADER_LENGTH, 0);
  out.write(m.messageType.padEnd(TYPE_LENGTH, ' '), 4, TYPE_LENGTH, 'ascii');
  out.writeUInt32BE(m.schemaVersion ?? 1, 36);
  out.writeBigUInt64BE(BigInt(Math.trunc(m.createdDate)), 40);
  out.writeBigInt64BE(BigInt(m.sequenceNumber), 48);
  out.writeBigUInt64BE(m.flags ?? 0n, 56);
  const id = uuidBytes(m.messageId ?? randomUUID());
  id.copy(out, 64, 8, 16);
  id.copy(out, 72, 0, 8);
  createHash('sha256').update(payload).digest().copy(out, 80);
  out.writeUInt32BE(m.payloadType ?? 0, 112);
  out.writeUInt32BE(payload.length, HEADER_LENGTH);
  payload.copy(out, HEADER_LENGTH + 4);
  return out;
}

/** Decodes and validates one message (header sanity and, when there is a payload, its digest). */
export function decodeMessage(buf: Buffer): ChannelMessage {
  if (buf.length < HEADER_LENGTH + 4) throw new CodecError(`message too short (${buf.length} bytes)`);
  const headerLength = buf.readUInt32BE(0);
  if (headerLength === 0 || headerLength < HEADER_LENGTH || headerLength + 4 > buf.length) throw new CodecError(`bad header length ${headerLength}`);
  const messageType = buf.toString('ascii', 4, 4 + TYPE_LENGTH).replace(/[ \0]+$/, '');
  if (messageType === '') throw new CodecError('empty message type');
  const createdDate = Number(buf.readBigUInt64BE(40));
  if (createdDate === 0) throw new CodecError('created date is 0');
  const payloadLength = buf.readUInt32BE(headerLength);
  const start = headerLength + 4;
  if (start + payloadLength > buf.length) throw new CodecError(`payload length ${payloadLength} exceeds the message`);
  const payload = buf.subarray(start, start + payloadLength);
  if (payloadLength !== 0 && !createHash('sha256').update(payload).digest().equals(buf.subarray(80, 112))) {
    throw new CodecError('payload digest mismatch');
  }
  const id = Buffer.concat([buf.subarray(72, 80), buf.subarray(64, 72)]);
  return {
    messageType,
    schemaVersion: buf.readUInt32BE(36),
    createdDate,
    sequenceNumber: Number(buf.readBigInt64BE(48)),
    flags: buf.readBigUInt64BE(56),
    messageId: uuidText(id),
    payloadType: buf.readUInt32BE(112),
    payload: Buffer.from(payload),
  };
}

// Payloads ------------------------------------------------------------------------------

export interface AcknowledgeContent {
  AcknowledgedMessageType: string;
  AcknowledgedMessageId: string;
  AcknowledgedMessageSequenceNumber: number;
  IsSequentialMessage: boolean;
}

/** An `acknowledge` message for `m` (sequence 0, as the protocol has it). */
export function encodeAck(m: Pick<ChannelMessage, 'messageType' | 'messageId' | 'sequenceNumber'>, now: number): Buffer {
  const content: AcknowledgeContent = {
    AcknowledgedMessageType: m.messageType,
    AcknowledgedMessageId: m.messageId,
    AcknowledgedMessageSequenceNumber: m.sequenceNumber,
    IsSequentialMessage: true,
  };
  return encodeMessage({ messageType: MessageType.Acknowledge, sequenceNumber: 0, createdDate: now, flags: Flags.SYN | Flags.FIN, payloadType: 0, payload: Buffer.from(JSON.stringify(content)) });
}

export function parseJson<T>(payload: Buffer): T | undefined {
  try { return JSON.parse(payload.toString('utf8')) as T; } catch { return undefined; }
}

export function handshakeRequestPayload(agentVersion: string): Buffer {
  return Buffer.from(JSON.stringify({
    AgentVersion: agentVersion,
    RequestedClientActions: [{ ActionType: 'SessionType', ActionParameters: { SessionType: 'Standard_Stream', Properties: null } }],
  }));
}

export interface HandshakeResponse {
  ClientVersion?: string;
  ProcessedClientActions?: { ActionType?: string; ActionStatus?: number; ActionResult?: unknown; Error?: string }[];
  Errors?: string[] | null;
}

/** HandshakeTimeToComplete must be an integer number of nanoseconds (a fraction hangs the client). */
export function handshakeCompletePayload(elapsedNs: bigint, customerMessage = ''): Buffer {
  return Buffer.from(`{"HandshakeTimeToComplete":${elapsedNs.toString()},"CustomerMessage":${JSON.stringify(customerMessage)}}`);
}

export function channelClosedMessage(o: { sessionId: string; now: number; sequenceNumber: number; output?: string }): Buffer {
  const messageId = randomUUID();
  const content = {
    MessageId: messageId,
    CreatedDate: new Date(o.now).toISOString(),
    DestinationId: o.sessionId,
    SessionId: o.sessionId,
    MessageType: MessageType.ChannelClosed,
    SchemaVersion: 1,
    Output: o.output ?? '',
  };
  return encodeMessage({ messageType: MessageType.ChannelClosed, messageId, sequenceNumber: o.sequenceNumber, createdDate: o.now, flags: Flags.FIN, payloadType: 0, payload: Buffer.from(JSON.stringify(content)) });
}
