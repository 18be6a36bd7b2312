import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand, CreateCapacityProviderCommand, RegisterTaskDefinitionCommand, DescribeCapacityProvidersCommand,
  ListTaskDefinitionsCommand, ListClustersCommand, TagResourceCommand, ListTagsForResourceCommand,
} from '@aws-sdk/client-ecs';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestBerth } from '../helpers/berth.js';
import { registerThroughKill } from '../helpers/ecs.js';

test('kill -9 mid-workload and restart: every acknowledged write is there, state is consistent', async () => {
  const berth = await startTestBerth();
  try {
    const ecs = berth.ecs();
    await ecs.send(new CreateClusterCommand({ clusterName: 'durable' }));
    await ecs.send(new CreateCapacityProviderCommand({ name: 'dcp', cluster: 'durable', managedInstancesProvider: {
      infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['s'] } } } }));
    // Keep writing while the process is killed; count what was acknowledged.
    const acknowledged = await registerThroughKill(berth, ecs, 'd');
    assert.ok(acknowledged > 0);

    await berth.start();
    const ecs2 = berth.ecs();
    const clusters = await ecs2.send(new ListClustersCommand({}));
    assert.equal(clusters.clusterArns!.length, 1);
    const cps = await ecs2.send(new DescribeCapacityProvidersCommand({ cluster: 'durable' }));
    assert.equal(cps.capacityProviders![0]!.name, 'dcp');
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const r = await ecs2.send(new ListTaskDefinitionsCommand({ familyPrefix: 'd', nextToken }));
      arns.push(...r.taskDefinitionArns!);
      nextToken = r.nextToken;
    } while (nextToken);
    // Every acknowledged revision survived; at most one more (in flight at the kill) may exist; no gaps.
    assert.ok(arns.length >= acknowledged && arns.length <= acknowledged + 1, `${arns.length} revisions vs ${acknowledged} acknowledged`);
    assert.deepEqual(arns.map((a) => Number(a.split(':').pop())), Array.from({ length: arns.length }, (_, i) => i + 1));
    // The next revision continues the sequence.
    const next = await ecs2.send(new RegisterTaskDefinitionCommand({ family: 'd', containerDefinitions: [{ name: 'a', image: 'i', memory: 32 }] }));
    assert.equal(next.taskDefinition!.revision, arns.length + 1);
    // Credentials are the same after restart, and writes still work.
    const arn = clusters.clusterArns![0]!;
    await ecs2.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: 'after', value: 'restart' }] }));
    assert.deepEqual((await ecs2.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags, [{ key: 'after', value: 'restart' }]);
  } finally {
    await berth.cleanup();
  }
});

test('secrets are sealed at rest: the data directory does not contain the secret key', async () => {
  const berth = await startTestBerth();
  try {
    const secret = berth.creds.secretAccessKey;
    assert.ok(secret.length >= 40);
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
    const files = walk(berth.dataDir);
    assert.ok(files.some((f) => f.endsWith('berth.db')));
    for (const f of files) {
      assert.ok(!readFileSync(f).includes(Buffer.from(secret)), `${f} contains the secret access key in clear`);
    }
  } finally {
    await berth.cleanup();
  }
});
