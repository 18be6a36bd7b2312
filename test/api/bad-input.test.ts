import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateClusterCommand, ListClustersCommand, ListTaskDefinitionFamiliesCommand, type ECSClient } from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { raw } from '../helpers/raw.js';

let berth: TestBerth;
let ecs: ECSClient;
before(async () => {
  berth = await startTestBerth();
  ecs = berth.ecs();
  await ecs.send(new CreateClusterCommand({ clusterName: 'keep' }));
});
after(async () => { await berth.cleanup(); });

/** Everything a bad request could have touched. */
async function snapshot(): Promise<string> {
  const clusters = await ecs.send(new ListClustersCommand({}));
  const families = await ecs.send(new ListTaskDefinitionFamiliesCommand({ status: 'ALL' }));
  return JSON.stringify([clusters.clusterArns, families.families]);
}

async function expectError(action: string, body: string | Buffer, status: number, type: string, message: RegExp, opts = {}): Promise<void> {
  const before = await snapshot();
  const r = await raw(berth.creds, action, body, opts);
  assert.equal(r.status, status, r.body);
  assert.equal(r.json?.__type, type, r.body);
  assert.match(r.json.message, message);
  assert.ok(r.headers['x-amzn-requestid']);
  assert.equal(await snapshot(), before, 'a rejected request changed state');
}

test('malformed JSON', async () => {
  await expectError('CreateCluster', '{"clusterName": "x"', 400, 'SerializationException', /not valid JSON/);
  await expectError('CreateCluster', '[1,2]', 400, 'SerializationException', /must be a JSON object/);
  await expectError('CreateCluster', '"text"', 400, 'SerializationException', /must be a JSON object/);
});

test('wrong types and unknown members', async () => {
  await expectError('CreateCluster', '{"clusterName": 42}', 400, 'InvalidParameterException', /expected a string, got number 42/);
  await expectError('CreateCluster', '{"clusterName": "x", "tags": {"k": "v"}}', 400, 'InvalidParameterException', /'tags': expected a list/);
  await expectError('RegisterTaskDefinition', JSON.stringify({ family: 'f', containerDefinitions: [{ name: 'a', image: 'i', memory: '64' }] }), 400,
    'InvalidParameterException', /containerDefinitions\[0\]\.memory.*expected an integer/);
  await expectError('CreateCluster', '{"clusterName": "x", "flavour": "mint"}', 400, 'InvalidParameterException', /Unknown parameter 'flavour'/);
  await expectError('RegisterTaskDefinition', '{"family": "f"}', 400, 'InvalidParameterException', /'containerDefinitions' failed to satisfy constraint: Member must not be null/);
  await expectError('ListClusters', '{"maxResults": 1e400}', 400, 'InvalidParameterException', /expected an integer/);
});

test('unknown and unsupported actions', async () => {
  await expectError('LaunchRockets', '{}', 400, 'UnknownOperationException', /Unknown operation 'LaunchRockets'/);
  await expectError('x', '{}', 400, 'UnknownOperationException', /Unknown target/, { target: 'SomeOtherService_20200101.DoThing' });
  await expectError('CreateTaskSet', '{}', 400, 'UnsupportedFeatureException', /CreateTaskSet is not supported by Berth yet/);
});

test('oversized bodies are refused before parsing', async () => {
  const big = Buffer.alloc(2 * 1024 * 1024, 0x20);
  await expectError('CreateCluster', big, 413, 'RequestEntityTooLargeException', /exceeds the limit/);
});

test('bad, missing and expired signatures', async () => {
  await expectError('CreateCluster', '{"clusterName": "sig"}', 400, 'InvalidSignatureException', /does not match/, { secret: 'wrong-secret' });
  await expectError('CreateCluster', '{"clusterName": "sig"}', 400, 'UnrecognizedClientException', /security token included in the request is invalid/,
    { accessKeyId: 'AKIAUNKNOWNUNKNOWN00' });
  await expectError('CreateCluster', '{"clusterName": "sig"}', 403, 'MissingAuthenticationTokenException', /Missing Authentication Token/, { sign: false });
  await expectError('CreateCluster', '{"clusterName": "sig"}', 400, 'InvalidSignatureException', /Signature expired/,
    { signingDate: new Date(Date.now() - 20 * 60_000) });
  await expectError('CreateCluster', '{"clusterName": "sig"}', 400, 'InvalidSignatureException', /Signature not yet current/,
    { signingDate: new Date(Date.now() + 20 * 60_000) });
  await expectError('CreateCluster', '{"clusterName": "sig"}', 400, 'InvalidSignatureException', /Credential should be scoped to correct service: 'ecs'/,
    { service: 'ec2' });
  // A signed request whose body is swapped afterwards.
  const before = await snapshot();
  const r = await raw(berth.creds, 'CreateCluster', '{"clusterName": "sig2"}', { headers: {} });
  assert.equal(r.status, 200);
  const replay = await raw(berth.creds, 'DeleteCluster', '{"cluster": "keep"}', {
    tamper: (h) => { h['x-amz-target'] = 'AmazonEC2ContainerServiceV20141113.CreateCluster'; },
  });
  assert.equal(replay.json.__type, 'InvalidSignatureException');
  assert.notEqual(await snapshot(), before); // only sig2 was created
  assert.ok((await snapshot()).includes('cluster/keep'));
});

test('the aws CLI shows AWS-shaped errors', () => {
  const r = berth.aws(['ecs', 'delete-cluster', '--cluster', 'no-such-cluster']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /An error occurred \(ClusterNotFoundException\) when calling the DeleteCluster operation: Cluster not found\./);
});

test('the server survives a burst of garbage and keeps serving', async () => {
  const bodies = ['', '{', '{"a":', 'null', '{"clusterName": null}', '{"include": [1,2,3]}', '\u0000\u0001', '{"clusters": [{"a": 1}]}'];
  for (const action of ['CreateCluster', 'DescribeClusters', 'RegisterTaskDefinition', 'PutClusterCapacityProviders', 'TagResource']) {
    for (const body of bodies) {
      const r = await raw(berth.creds, action, body);
      assert.ok(r.status === 200 || (r.status >= 400 && r.status < 500), `${action} ${JSON.stringify(body)} → ${r.status} ${r.body}`);
    }
  }
  const ok = await ecs.send(new ListClustersCommand({}));
  assert.ok(ok.clusterArns!.length >= 1);
});
