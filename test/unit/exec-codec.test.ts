// The data channel codec against the reference layout (and against the test suite's own
// client codec, written separately from the reference).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  channelClosedMessage, decodeMessage, encodeAck, encodeMessage, handshakeCompletePayload, handshakeRequestPayload, HEADER_LENGTH, MessageType, PayloadType,
} from '../../src/exec/codec.js';
import { decode as clientDecode, encode as clientEncode } from '../helpers/ssm-client.js';

const uuid = '00112233-4455-6677-8899-aabbccddeeff';

test('the binary layout is the reference\'s, byte for byte', () => {
  const payload = Buffer.from('hello');
  const b = encodeMessage({ messageType: MessageType.Output, messageId: uuid, sequenceNumber: 7, createdDate: 1_700_000_000_123, flags: 1n, payloadType: PayloadType.Output, payload });
  assert.equal(b.length, 120 + payload.length);
  assert.equal(b.readUInt32BE(0), 116);
  assert.equal(HEADER_LENGTH, 116);
  assert.equal(b.toString('ascii', 4, 36), 'output_stream_data'.padEnd(32, ' '));
  assert.equal(b.readUInt32BE(36), 1);
  assert.equal(b.readBigUInt64BE(40), 1_700_000_000_123n);
  assert.equal(b.readBigInt64BE(48), 7n);
  assert.equal(b.readBigUInt64BE(56), 1n);
  // UUID bytes 8–15 first, then 0–7.
  assert.equal(b.subarray(64, 80).toString('hex'), '8899aabbccddeeff0011223344556677');
  assert.deepEqual(b.subarray(80, 112), createHash('sha256').update(payload).digest());
  assert.equal(b.readUInt32BE(112), 1);
  assert.equal(b.readUInt32BE(116), 5);
  assert.equal(b.subarray(120).toString(), 'hello');
});

test('messages round-trip between Berth\'s codec and the test client\'s', () => {
  const fromBerth = encodeMessage({ messageType: MessageType.Output, messageId: uuid, sequenceNumber: 3, createdDate: 42, payloadType: PayloadType.ExitCode, payload: Buffer.from('3') });
  const seen = clientDecode(fromBerth);
  assert.equal(seen.messageType, 'output_stream_data');
  assert.equal(seen.messageId, uuid);
  assert.equal(seen.sequenceNumber, 3);
  assert.equal(seen.payloadType, 12);
  assert.equal(seen.payload.toString(), '3');
  const fromClient = clientEncode({ messageType: 'input_stream_data', sequenceNumber: 9, payloadType: 3, payload: Buffer.from('{"cols":80,"rows":24}'), messageId: uuid });
  const m = decodeMessage(fromClient);
  assert.equal(m.messageType, 'input_stream_data');
  assert.equal(m.sequenceNumber, 9);
  assert.equal(m.payloadType, PayloadType.Size);
  assert.equal(m.messageId, uuid);
  assert.deepEqual(JSON.parse(m.payload.toString()), { cols: 80, rows: 24 });
});

test('decoding refuses what the protocol says is invalid', () => {
  const good = encodeMessage({ messageType: MessageType.Input, sequenceNumber: 0, createdDate: 1, payloadType: 1, payload: Buffer.from('x') });
  const tampered = Buffer.from(good); tampered[120] = 0x79;
  assert.throws(() => decodeMessage(tampered), /digest/);
  const zeroHeader = Buffer.from(good); zeroHeader.writeUInt32BE(0, 0);
  assert.throws(() => decodeMessage(zeroHeader), /header length/);
  const noDate = Buffer.from(good); noDate.writeBigUInt64BE(0n, 40);
  assert.throws(() => decodeMessage(noDate), /created date/);
  const noType = Buffer.from(good); noType.fill(0x20, 4, 36);
  assert.throws(() => decodeMessage(noType), /empty message type/);
  assert.throws(() => decodeMessage(good.subarray(0, 100)), /too short/);
  // An empty payload carries no digest to check.
  const empty = encodeMessage({ messageType: MessageType.Input, sequenceNumber: 0, createdDate: 1, payloadType: 1, payload: Buffer.alloc(0) });
  empty.fill(0, 80, 112);
  assert.equal(decodeMessage(empty).payload.length, 0);
});

test('acknowledgements, handshake and channel_closed payloads', () => {
  const ack = clientDecode(encodeAck({ messageType: 'input_stream_data', messageId: uuid, sequenceNumber: 5 }, 1000));
  assert.equal(ack.messageType, 'acknowledge');
  assert.equal(ack.sequenceNumber, 0);
  assert.deepEqual(JSON.parse(ack.payload.toString()), {
    AcknowledgedMessageType: 'input_stream_data', AcknowledgedMessageId: uuid, AcknowledgedMessageSequenceNumber: 5, IsSequentialMessage: true,
  });
  const req = JSON.parse(handshakeRequestPayload('0.1.0.0').toString());
  assert.deepEqual(req.RequestedClientActions, [{ ActionType: 'SessionType', ActionParameters: { SessionType: 'Standard_Stream', Properties: null } }]);
  assert.ok(!JSON.stringify(req).includes('KMSEncryption'));
  const done = handshakeCompletePayload(123456789012345n).toString();
  assert.equal(done, '{"HandshakeTimeToComplete":123456789012345,"CustomerMessage":""}');
  assert.ok(Number.isInteger(JSON.parse(done).HandshakeTimeToComplete));
  const closed = clientDecode(channelClosedMessage({ sessionId: 's-1', now: Date.UTC(2026, 0, 1), sequenceNumber: 4 }));
  assert.equal(closed.messageType, 'channel_closed');
  const body = JSON.parse(closed.payload.toString());
  assert.equal(body.SessionId, 's-1');
  assert.equal(body.DestinationId, 's-1');
  assert.equal(body.MessageType, 'channel_closed');
  assert.equal(body.SchemaVersion, 1);
  assert.equal(body.Output, '');
  assert.equal(typeof body.CreatedDate, 'string');
  assert.equal(body.MessageId, closed.messageId);
});
