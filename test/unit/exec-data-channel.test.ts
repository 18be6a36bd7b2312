// The broker's data channel state machine, over an in-memory socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WebSocket } from 'ws';
import { DataChannel, OUTPUT_CHUNK, PAUSE_ABOVE } from '../../src/exec/data-channel.js';
import { decode, encode, type Message } from '../helpers/ssm-client.js';

class Socket {
  sent: Message[] = [];
  terminated = false;
  send(b: Buffer): void { this.sent.push(decode(b)); }
  terminate(): void { this.terminated = true; }
  take(): Message[] { const s = this.sent; this.sent = []; return s; }
}

function channel() {
  const events: string[] = [];
  const input: string[] = [];
  const ch = new DataChannel('sess-1', '0.1.0.0', () => Date.now(), {
    handshake: () => events.push('handshake'),
    size: (c, r) => events.push(`size ${c}x${r}`),
    input: (d) => input.push(d.toString()),
    terminate: () => events.push('terminate'),
    backpressure: (p) => events.push(p ? 'pause' : 'resume'),
    protocolError: (m) => events.push(`error ${m}`),
  });
  return { ch, events, input };
}

const input = (seq: number, payloadType: number, payload: string | Buffer) =>
  encode({ messageType: 'input_stream_data', sequenceNumber: seq, payloadType, payload: Buffer.from(payload) });
const ack = (seq: number) => encode({ messageType: 'acknowledge', sequenceNumber: 0, payloadType: 0, payload: Buffer.from(JSON.stringify({ AcknowledgedMessageType: 'output_stream_data', AcknowledgedMessageId: '00000000-0000-0000-0000-000000000000', AcknowledgedMessageSequenceNumber: seq, IsSequentialMessage: true })) });

test('handshake, in-order input with acknowledgements, repeats and early messages', () => {
  const { ch, events, input: typed } = channel();
  const ws = new Socket();
  ch.attach(ws as unknown as WebSocket);
  const [hello] = ws.take();
  assert.equal(hello!.sequenceNumber, 0);
  assert.equal(hello!.payloadType, 5);
  ch.onFrame(input(0, 6, JSON.stringify({ ClientVersion: '1.2.0.0', ProcessedClientActions: [{ ActionType: 'SessionType', ActionStatus: 1 }], Errors: null })));
  const [a0, complete] = ws.take();
  assert.equal(a0!.messageType, 'acknowledge');
  assert.equal(JSON.parse(a0!.payload.toString()).AcknowledgedMessageSequenceNumber, 0);
  assert.equal(complete!.sequenceNumber, 1);
  assert.equal(complete!.payloadType, 7);
  assert.ok(Number.isInteger(JSON.parse(complete!.payload.toString()).HandshakeTimeToComplete));
  ch.onFrame(input(1, 3, '{"cols":120,"rows":40}'));
  ch.onFrame(input(1, 3, '{"cols":120,"rows":40}')); // a resend: acknowledged again, not applied again
  ch.onFrame(input(3, 1, 'b')); // early: acknowledged, held
  ch.onFrame(input(2, 1, 'a'));
  const acks = ws.take().map((m) => JSON.parse(m.payload.toString()).AcknowledgedMessageSequenceNumber);
  assert.deepEqual(acks, [1, 1, 3, 2]);
  assert.deepEqual(events, ['handshake', 'size 120x40']);
  assert.deepEqual(typed, ['a', 'b']);
  ch.onFrame(input(4, 10, Buffer.from([0, 0, 0, 2])));
  assert.deepEqual(events.slice(-1), ['terminate']);
  ch.onFrame(Buffer.from('garbage that is not a message at all, longer than nothing really, but still not 120 bytes'));
  assert.match(events.at(-1)!, /^error/);
  ch.dispose();
});

test('output is cut into chunks, kept until acknowledged and resent in order on a new connection', () => {
  const { ch } = channel();
  const first = new Socket();
  ch.attach(first as unknown as WebSocket);
  ch.output(Buffer.alloc(OUTPUT_CHUNK * 2 + 10, 0x61));
  const out = first.take();
  assert.deepEqual(out.map((m) => [m.sequenceNumber, m.payload.length]), [[0, out[0]!.payload.length], [1, 1024], [2, 1024], [3, 10]]);
  ch.onFrame(ack(1)); // settles 0 and 1
  ch.detach(first as unknown as WebSocket);
  ch.output(Buffer.from('while away'));
  assert.equal(first.sent.length, 0);
  const second = new Socket();
  ch.attach(second as unknown as WebSocket);
  assert.deepEqual(second.take().map((m) => m.sequenceNumber), [2, 3, 4]);
  ch.onFrame(ack(4));
  assert.equal(ch.pendingOutputBytes, 0);
  const third = new Socket();
  ch.attach(third as unknown as WebSocket);
  assert.equal(second.terminated, true);
  assert.deepEqual(third.take(), []);
  ch.close();
  const [closed] = third.take();
  assert.equal(closed!.messageType, 'channel_closed');
  assert.equal(JSON.parse(closed!.payload.toString()).SessionId, 'sess-1');
});

test('a client far behind on acknowledgements pauses the producer until it catches up', () => {
  const { ch, events } = channel();
  const ws = new Socket();
  ch.attach(ws as unknown as WebSocket);
  ch.output(Buffer.alloc(PAUSE_ABOVE + OUTPUT_CHUNK));
  assert.deepEqual(events, ['pause']);
  const last = ws.take().at(-1)!.sequenceNumber;
  ch.onFrame(ack(last));
  assert.deepEqual(events, ['pause', 'resume']);
  ch.dispose();
});
