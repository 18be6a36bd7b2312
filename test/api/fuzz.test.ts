// Bad input on every service: random parameters for every operation of every model Berth
// serves (JSON and Query protocols), sent signed by the account root. Whatever arrives, the
// answer is a 2xx or an AWS-shaped 4xx in the protocol's own format, never a 5xx, and the
// server keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ListClustersCommand } from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { raw } from '../helpers/raw.js';

const models = fileURLToPath(new URL('../../../models/', import.meta.url));
const load = (name: string) => JSON.parse(readFileSync(`${models}${name}.json`, 'utf8')) as {
  metadata: { protocol: string; targetPrefix?: string; signingName?: string; endpointPrefix: string; apiVersion: string };
  operations: Record<string, { input?: { shape: string } }>;
  shapes: Record<string, { type: string; members?: Record<string, { shape: string; locationName?: string }> }>;
};

// Operations that would disturb the rest of the run (time; real containers and instances)
// are left out.
const SKIP = new Set(['berth.AdvanceClock', 'ecs.RunTask', 'ecs.StartTask', 'ecs.CreateService', 'ecs.UpdateService']);

let berth: TestBerth;
before(async () => { berth = await startTestBerth(); });
after(async () => { await berth.cleanup(); });

/** A random value of roughly the right kind, or of the wrong kind on purpose. */
const anyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 12 }), fc.constantFrom('', 'arn:aws:ecs:us-east-1:123456789012:cluster/x', '*', '../..', '\u0000', 'ENABLED', '2026-13-45T99:00:00Z'),
    fc.integer(), fc.constantFrom(-1, 0, 2 ** 53, 1e300, Number.NaN), fc.boolean(), fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 3 }),
  ),
})).value;

function memberNames(model: ReturnType<typeof load>, op: string): string[] {
  const shape = model.operations[op]!.input?.shape;
  return shape ? Object.keys(model.shapes[shape]?.members ?? {}) : [];
}

test('every operation of every service: random input never gets a 5xx, and the server keeps serving', async () => {
  const services = ['ecs', 'kms', 'logs', 'cloudtrail', 'berth', 'ssm', 'ec2', 'iam', 'sts'];
  let requests = 0;
  for (const name of services) {
    const model = load(name);
    const signing = model.metadata.signingName ?? model.metadata.endpointPrefix;
    const ops = Object.keys(model.operations).filter((op) => !SKIP.has(`${name}.${op}`));
    const query = model.metadata.protocol === 'query' || model.metadata.protocol === 'ec2';
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...ops),
      fc.array(fc.tuple(fc.nat(40), anyValue), { maxLength: 5 }),
      fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })), { maxLength: 3 }),
      async (op, picks, junk) => {
        const members = memberNames(model, op);
        let body: string;
        let headers: Record<string, string>;
        if (query) {
          const form = new URLSearchParams({ Action: op, Version: model.metadata.apiVersion });
          for (const [i, v] of picks) {
            const m = members.length ? members[i % members.length]! : `Param${i}`;
            // Query members are flattened: Name, Name.1, Name.1.Key, Name.member.1 …
            const key = [m, `${m}.1`, `${m}.1.Key`, `${m}.member.1`, `${m}.99999999999`][i % 5]!;
            form.append(key, typeof v === 'string' ? v : JSON.stringify(v) ?? '');
          }
          for (const [k, v] of junk) form.append(k, v);
          body = form.toString();
          headers = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
        } else {
          const input: Record<string, unknown> = {};
          for (const [i, v] of picks) input[members.length ? members[i % members.length]! : `m${i}`] = v;
          for (const [k, v] of junk) input[k] = v;
          body = JSON.stringify(input);
          headers = { 'content-type': 'application/x-amz-json-1.1' };
        }
        const r = await raw(berth.creds, op, body, {
          service: signing, target: query ? '' : `${model.metadata.targetPrefix}.${op}`, headers,
          ...(name === 'iam' ? { region: 'us-east-1' } : {}),
        });
        requests++;
        assert.ok(r.status < 500, `${name}.${op} ${body} → ${r.status} ${r.body}`);
        if (r.status >= 400) {
          if (query) assert.match(r.body, /<Code>[A-Za-z.]+<\/Code>/, `${name}.${op}: ${r.body}`);
          else assert.ok(typeof r.json?.__type === 'string' && typeof r.json?.message === 'string', `${name}.${op}: ${r.body}`);
        }
      },
    ), { numRuns: 60, verbose: 1 });
  }
  assert.ok(requests >= services.length * 60);
  // Still serving, and still itself.
  const ok = await berth.ecs().send(new ListClustersCommand({}));
  assert.ok(Array.isArray(ok.clusterArns));
});
