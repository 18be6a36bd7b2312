// The ceiling for bench/api: a bare node:http server that answers every AWS JSON 1.1 call
// with the response bytes Berth returned for the same action during set-up, selected by
// X-Amz-Target. It reads the request body like Berth does and sends the same headers, but
// does no signature check, validation or storage work.
// Usage: node ceiling-server.js RESPONSES.json   (a {"<X-Amz-Target>": "<body>"} object)
// Prints "listening PORT" on stdout once it accepts connections on 127.0.0.1.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: ceiling-server.js RESPONSES.json\n');
  process.exit(2);
}
const responses = new Map<string, Buffer>(
  Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'utf8')]),
);
const unknown = Buffer.from('{"__type":"UnknownOperationException","message":"not captured"}');

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    const target = req.headers['x-amz-target'];
    const body = typeof target === 'string' ? responses.get(target) : undefined;
    res.writeHead(body ? 200 : 400, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': (body ?? unknown).length,
      'x-amzn-requestid': randomUUID(),
    });
    res.end(body ?? unknown);
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
