import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand, DeleteClusterCommand, DescribeClustersCommand, ListClustersCommand, UpdateClusterCommand,
  UpdateClusterSettingsCommand, PutClusterCapacityProvidersCommand, CreateCapacityProviderCommand, DeleteCapacityProviderCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';

let berth: TestBerth;
let ecs: ECSClient;
before(async () => { berth = await startTestBerth(); ecs = berth.ecs(); });
after(async () => { await berth.cleanup(); });

const mip = (subnets = ['subnet-a']) => ({
  infrastructureRoleArn: 'arn:aws:iam::123456789012:role/infra',
  instanceLaunchTemplate: { ec2InstanceProfileArn: 'arn:aws:iam::123456789012:instance-profile/p', networkConfiguration: { subnets } },
});

test('create, describe, list and delete a cluster', async () => {
  const created = await ecs.send(new CreateClusterCommand({ clusterName: 'alpha', tags: [{ key: 'team', value: 'a' }] }));
  const account = berth.creds.accessKeyId && created.cluster!.clusterArn!.split(':')[4];
  assert.equal(created.cluster!.clusterArn, `arn:aws:ecs:us-east-1:${account}:cluster/alpha`);
  assert.equal(created.cluster!.status, 'ACTIVE');
  assert.deepEqual(created.cluster!.settings, [{ name: 'containerInsights', value: 'disabled' }]);
  assert.equal(created.cluster!.registeredContainerInstancesCount, 0);

  // Creating again returns the same cluster.
  const again = await ecs.send(new CreateClusterCommand({ clusterName: 'alpha' }));
  assert.equal(again.cluster!.clusterArn, created.cluster!.clusterArn);

  const plain = await ecs.send(new DescribeClustersCommand({ clusters: ['alpha'] }));
  assert.deepEqual(plain.clusters![0]!.tags, []);
  assert.equal(plain.clusters![0]!.settings, undefined);
  const full = await ecs.send(new DescribeClustersCommand({ clusters: [created.cluster!.clusterArn!, 'nope'], include: ['TAGS', 'SETTINGS', 'STATISTICS'] }));
  assert.deepEqual(full.clusters![0]!.tags, [{ key: 'team', value: 'a' }]);
  assert.ok(full.clusters![0]!.settings!.length === 1);
  assert.ok(full.clusters![0]!.statistics!.length > 0);
  assert.deepEqual(full.failures, [{ arn: `arn:aws:ecs:us-east-1:${account}:cluster/nope`, reason: 'MISSING' }]);

  const listed = await ecs.send(new ListClustersCommand({}));
  assert.ok(listed.clusterArns!.includes(created.cluster!.clusterArn!));

  const deleted = await ecs.send(new DeleteClusterCommand({ cluster: 'alpha' }));
  assert.equal(deleted.cluster!.status, 'INACTIVE');
  const listedAfter = await ecs.send(new ListClustersCommand({}));
  assert.ok(!listedAfter.clusterArns!.includes(created.cluster!.clusterArn!));
  const described = await ecs.send(new DescribeClustersCommand({ clusters: ['alpha'] }));
  assert.equal(described.clusters![0]!.status, 'INACTIVE');
  await assert.rejects(ecs.send(new DeleteClusterCommand({ cluster: 'alpha' })), { name: 'ClusterNotFoundException' });

  // The name can be used again.
  const reborn = await ecs.send(new CreateClusterCommand({ clusterName: 'alpha' }));
  assert.equal(reborn.cluster!.status, 'ACTIVE');
  assert.deepEqual(reborn.cluster!.tags, []);
});

test('describing the default cluster when none exists reports it missing', async () => {
  const r = await ecs.send(new DescribeClustersCommand({}));
  assert.equal(r.clusters!.length, 0);
  assert.match(r.failures![0]!.arn!, /cluster\/default$/);
});

test('update cluster: settings and execute command configuration', async () => {
  await ecs.send(new CreateClusterCommand({ clusterName: 'upd' }));
  const r = await ecs.send(new UpdateClusterCommand({
    cluster: 'upd',
    settings: [{ name: 'containerInsights', value: 'enhanced' }],
    configuration: { executeCommandConfiguration: { logging: 'OVERRIDE', kmsKeyId: 'k', logConfiguration: { cloudWatchLogGroupName: '/exec' } } },
  }));
  assert.deepEqual(r.cluster!.settings, [{ name: 'containerInsights', value: 'enhanced' }]);
  assert.equal(r.cluster!.configuration!.executeCommandConfiguration!.logConfiguration!.cloudWatchLogGroupName, '/exec');
  const d = await ecs.send(new DescribeClustersCommand({ clusters: ['upd'], include: ['CONFIGURATIONS'] }));
  assert.equal(d.clusters![0]!.configuration!.executeCommandConfiguration!.logging, 'OVERRIDE');
  await assert.rejects(ecs.send(new UpdateClusterCommand({ cluster: 'upd', configuration: { executeCommandConfiguration: { logging: 'OVERRIDE' } } })),
    { name: 'InvalidParameterException', message: /logConfiguration must name a cloudWatchLogGroupName or an s3BucketName/ });
  await assert.rejects(ecs.send(new UpdateClusterCommand({ cluster: 'upd', configuration: { executeCommandConfiguration: { logging: 'NONE', logConfiguration: { s3BucketName: 'b' } } } })),
    { name: 'InvalidParameterException' });
  await assert.rejects(ecs.send(new UpdateClusterSettingsCommand({ cluster: 'upd', settings: [{ name: 'containerInsights', value: 'maybe' }] })),
    { name: 'InvalidParameterException', message: /Valid values: enhanced, enabled, disabled/ });
  await assert.rejects(ecs.send(new UpdateClusterCommand({ cluster: 'ghost' })), { name: 'ClusterNotFoundException' });
});

test('list pagination', async () => {
  for (let i = 0; i < 7; i++) await ecs.send(new CreateClusterCommand({ clusterName: `page-${i}` }));
  const seen: string[] = [];
  let nextToken: string | undefined;
  do {
    const r = await ecs.send(new ListClustersCommand({ maxResults: 3, nextToken }));
    assert.ok(r.clusterArns!.length <= 3);
    seen.push(...r.clusterArns!);
    nextToken = r.nextToken;
  } while (nextToken);
  assert.equal(seen.filter((a) => a.includes('/page-')).length, 7);
  assert.equal(new Set(seen).size, seen.length);
  await assert.rejects(ecs.send(new ListClustersCommand({ maxResults: 101 })), { name: 'InvalidParameterException' });
  await assert.rejects(ecs.send(new ListClustersCommand({ nextToken: 'garbage!' })), { name: 'InvalidParameterException', message: /nextToken is invalid/ });
});

test('capacity providers are associated with their cluster and block its deletion', async () => {
  await ecs.send(new CreateClusterCommand({ clusterName: 'owner' }));
  await ecs.send(new CreateClusterCommand({ clusterName: 'other' }));
  await ecs.send(new CreateCapacityProviderCommand({ name: 'owned', cluster: 'owner', managedInstancesProvider: mip() }));
  const d = await ecs.send(new DescribeClustersCommand({ clusters: ['owner'] }));
  assert.deepEqual(d.clusters![0]!.capacityProviders, ['owned']);

  const put = await ecs.send(new PutClusterCapacityProvidersCommand({
    cluster: 'owner', capacityProviders: ['owned'], defaultCapacityProviderStrategy: [{ capacityProvider: 'owned', weight: 1, base: 1 }],
  }));
  assert.deepEqual(put.cluster!.defaultCapacityProviderStrategy, [{ capacityProvider: 'owned', weight: 1, base: 1 }]);
  await assert.rejects(ecs.send(new PutClusterCapacityProvidersCommand({ cluster: 'other', capacityProviders: ['owned'], defaultCapacityProviderStrategy: [] })),
    { name: 'InvalidParameterException', message: /belongs to cluster 'owner'/ });
  await assert.rejects(ecs.send(new PutClusterCapacityProvidersCommand({ cluster: 'owner', capacityProviders: [], defaultCapacityProviderStrategy: [] })),
    { name: 'ClientException', message: /stays associated/ });
  await assert.rejects(ecs.send(new PutClusterCapacityProvidersCommand({ cluster: 'other', capacityProviders: ['FARGATE'], defaultCapacityProviderStrategy: [] })),
    { name: 'InvalidParameterException', message: /managed instances only/ });

  await assert.rejects(ecs.send(new DeleteClusterCommand({ cluster: 'owner' })), { name: 'ClusterContainsCapacityProviderException' });
  await assert.rejects(ecs.send(new DeleteCapacityProviderCommand({ capacityProvider: 'owned' })), { name: 'ResourceInUseException' });
  await ecs.send(new PutClusterCapacityProvidersCommand({ cluster: 'owner', capacityProviders: ['owned'], defaultCapacityProviderStrategy: [] }));
  const gone = await ecs.send(new DeleteCapacityProviderCommand({ capacityProvider: 'owned', cluster: 'owner' }));
  assert.equal(gone.capacityProvider!.status, 'INACTIVE');
  assert.equal(gone.capacityProvider!.updateStatus, 'DELETE_COMPLETE');
  const after = await ecs.send(new DeleteClusterCommand({ cluster: 'owner' }));
  assert.equal(after.cluster!.status, 'INACTIVE');
});

test('cluster names are validated', async () => {
  await assert.rejects(ecs.send(new CreateClusterCommand({ clusterName: 'has space' })), { name: 'InvalidParameterException' });
  await assert.rejects(ecs.send(new CreateClusterCommand({ clusterName: 'x'.repeat(256) })), { name: 'InvalidParameterException' });
  await assert.rejects(ecs.send(new CreateClusterCommand({ clusterName: 't', tags: [{ key: 'aws:x', value: 'y' }] })), { name: 'InvalidParameterException', message: /reserved prefix/ });
});
