import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, DescribeCapacityProvidersCommand, UpdateCapacityProviderCommand,
  DeleteCapacityProviderCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';

let berth: TestBerth;
let ecs: ECSClient;
before(async () => { berth = await startTestBerth(); ecs = berth.ecs(); });
after(async () => { await berth.cleanup(); });

const SEED_PROVIDER = '{ "infrastructureRoleArn": "infrastructure-role-arn", "instanceLaunchTemplate": { "ec2InstanceProfileArn": "instance-profile-arn", "fipsEnabled": false, "networkConfiguration": { "subnets": ["subnet-id"], "securityGroups": ["security-group-id"] } } }';

test("the seed document's command works verbatim with the aws CLI", () => {
  assert.equal(berth.aws(['ecs', 'create-cluster', '--cluster-name', 'cluster-name']).status, 0);
  const r = berth.aws(['ecs', 'create-capacity-provider', '--cluster', 'cluster-name', '--name', 'capacity-provider-name', '--managed-instances-provider', SEED_PROVIDER]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.capacityProvider.type, 'MANAGED_INSTANCES');
  assert.equal(r.json.capacityProvider.status, 'ACTIVE');
  const d = berth.aws(['ecs', 'describe-capacity-providers', '--capacity-providers', 'capacity-provider-name']);
  assert.equal(d.status, 0, d.stderr);
  const cp = d.json.capacityProviders[0];
  assert.equal(cp.managedInstancesProvider.instanceLaunchTemplate.fipsEnabled, false);
  assert.equal(cp.cluster, 'cluster-name');
  assert.match(cp.capacityProviderArn, /^arn:aws:ecs:us-east-1:\d{12}:capacity-provider\/capacity-provider-name$/);
});

test('in GovCloud, FIPS defaults to on and ARNs use the aws-us-gov partition', () => {
  const gov = { region: 'us-gov-west-1' };
  assert.equal(berth.aws(['ecs', 'create-cluster', '--cluster-name', 'cluster-name'], gov).status, 0);
  const noFips = SEED_PROVIDER.replace('"fipsEnabled": false, ', '');
  const r = berth.aws(['ecs', 'create-capacity-provider', '--cluster', 'cluster-name', '--name', 'capacity-provider-name', '--managed-instances-provider', noFips], gov);
  assert.equal(r.status, 0, r.stderr);
  const d = berth.aws(['ecs', 'describe-capacity-providers', '--capacity-providers', 'capacity-provider-name'], gov);
  const cp = d.json.capacityProviders[0];
  assert.equal(cp.managedInstancesProvider.instanceLaunchTemplate.fipsEnabled, true);
  assert.match(cp.capacityProviderArn, /^arn:aws-us-gov:ecs:us-gov-west-1:\d{12}:capacity-provider\/capacity-provider-name$/);
  // Regions are separate: us-gov-east-1 sees nothing of us-gov-west-1.
  const east = berth.aws(['ecs', 'describe-capacity-providers'], { region: 'us-gov-east-1' });
  assert.deepEqual(east.json.capacityProviders, []);
});

const mip = (extra: Record<string, unknown> = {}, template: Record<string, unknown> = {}) => ({
  infrastructureRoleArn: 'arn:aws:iam::123456789012:role/infra',
  instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-a', 'subnet-b'] }, ...template },
  ...extra,
}) as any;

test('validation of managed instances providers', async () => {
  await ecs.send(new CreateClusterCommand({ clusterName: 'v' }));
  const bad = async (input: any, name: string, message: RegExp) =>
    assert.rejects(ecs.send(new CreateCapacityProviderCommand({ name: 'p1', cluster: 'v', ...input })), { name, message });
  await bad({ managedInstancesProvider: mip(), cluster: undefined }, 'InvalidParameterException', /cluster is required/);
  await bad({ managedInstancesProvider: mip(), cluster: 'ghost' }, 'ClusterNotFoundException', /Cluster not found/);
  await bad({ name: 'ecs-thing', managedInstancesProvider: mip() }, 'InvalidParameterException', /can't be prefixed/);
  await bad({ name: 'AWSy', managedInstancesProvider: mip() }, 'InvalidParameterException', /can't be prefixed/);
  await bad({ autoScalingGroupProvider: { autoScalingGroupArn: 'arn' } }, 'UnsupportedFeatureException', /managed instances only/);
  await bad({}, 'InvalidParameterException', /managedInstancesProvider is required/);
  await bad({ managedInstancesProvider: mip({ infrastructureOptimization: { scaleInAfter: 3601 } }) }, 'InvalidParameterException', /scaleInAfter must be -1/);
  await bad({ managedInstancesProvider: mip({ infrastructureOptimization: { scaleInAfter: -2 } }) }, 'InvalidParameterException', /scaleInAfter/);
  await bad({ managedInstancesProvider: mip({}, { storageConfiguration: { storageSizeGiB: 20 } }) }, 'InvalidParameterException', /between 30 and 16384/);
  await bad({ managedInstancesProvider: mip({}, { networkConfiguration: { subnets: [] } }) }, 'InvalidParameterException', /at least one subnet/);
  await bad({ managedInstancesProvider: mip({}, { capacityOptionType: 'RESERVED' }) }, 'InvalidParameterException', /capacityReservations is required/);
  await bad({ managedInstancesProvider: mip({}, { instanceRequirements: { vCpuCount: { min: 8, max: 2 }, memoryMiB: { min: 0 } } }) },
    'InvalidParameterException', /vCpuCount.max/);
  await bad({ managedInstancesProvider: mip(), tags: [{ key: 'berth:privileged-capabilities', value: 'CAP_TELEPORT' }] },
    'InvalidParameterException', /Unknown Linux capability 'CAP_TELEPORT'/);
  await bad({ managedInstancesProvider: mip({ propagateTags: 'SOMETIMES' }) }, 'InvalidParameterException', /enum value set/);
  const ok = await ecs.send(new CreateCapacityProviderCommand({
    name: 'p1', cluster: 'v', managedInstancesProvider: mip({ infrastructureOptimization: { scaleInAfter: -1 }, autoRepairConfiguration: { actionsStatus: 'ENABLED' } },
      { instanceRequirements: { vCpuCount: { min: 2, max: 8 }, memoryMiB: { min: 2048 }, allowedInstanceTypes: ['m5.*'] } }),
    tags: [{ key: 'berth:single-task-mode', value: 'enabled' }, { key: 'berth:privileged-capabilities', value: 'CAP_NET_ADMIN+CAP_BPF' }],
  }));
  assert.equal(ok.capacityProvider!.managedInstancesProvider!.infrastructureOptimization!.scaleInAfter, -1);
  await bad({ managedInstancesProvider: mip() }, 'ClientException', /already exists/);
});

test('describe with include TAGS, cluster scope and pagination; update; delete', async () => {
  await ecs.send(new CreateClusterCommand({ clusterName: 'pg' }));
  for (let i = 0; i < 12; i++) {
    await ecs.send(new CreateCapacityProviderCommand({ name: `pg-${String(i).padStart(2, '0')}`, cluster: 'pg', managedInstancesProvider: mip(), tags: [{ key: 'i', value: String(i) }] }));
  }
  const first = await ecs.send(new DescribeCapacityProvidersCommand({ cluster: 'pg', include: ['TAGS'] }));
  assert.equal(first.capacityProviders!.length, 10);
  assert.deepEqual(first.capacityProviders![0]!.tags, [{ key: 'i', value: '0' }]);
  const second = await ecs.send(new DescribeCapacityProvidersCommand({ cluster: 'pg', nextToken: first.nextToken }));
  assert.equal(second.capacityProviders!.length, 2);
  assert.equal(second.capacityProviders![0]!.tags, undefined);
  assert.equal(second.nextToken, undefined);
  await assert.rejects(ecs.send(new DescribeCapacityProvidersCommand({ maxResults: 11 })), { name: 'InvalidParameterException' });

  const missing = await ecs.send(new DescribeCapacityProvidersCommand({ capacityProviders: ['pg-00', 'nope'] }));
  assert.equal(missing.capacityProviders!.length, 1);
  assert.equal(missing.failures![0]!.reason, 'MISSING');

  const upd = await ecs.send(new UpdateCapacityProviderCommand({
    name: 'pg-00', cluster: 'pg',
    managedInstancesProvider: { infrastructureRoleArn: 'arn:aws:iam::123456789012:role/infra2', instanceLaunchTemplate: { monitoring: 'DETAILED' } } as any,
  }));
  assert.equal(upd.capacityProvider!.updateStatus, 'UPDATE_COMPLETE');
  assert.equal(upd.capacityProvider!.managedInstancesProvider!.instanceLaunchTemplate!.monitoring, 'DETAILED');
  assert.deepEqual(upd.capacityProvider!.managedInstancesProvider!.instanceLaunchTemplate!.networkConfiguration!.subnets, ['subnet-a', 'subnet-b']);
  assert.equal(upd.capacityProvider!.managedInstancesProvider!.infrastructureRoleArn, 'arn:aws:iam::123456789012:role/infra2');

  const del = await ecs.send(new DeleteCapacityProviderCommand({ capacityProvider: 'pg-01' }));
  assert.equal(del.capacityProvider!.status, 'INACTIVE');
  await assert.rejects(ecs.send(new DeleteCapacityProviderCommand({ capacityProvider: 'pg-01' })), { name: 'InvalidParameterException', message: /does not exist/ });
  await assert.rejects(ecs.send(new UpdateCapacityProviderCommand({ name: 'pg-02', cluster: 'v',
    managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: {} } as any })), { name: 'InvalidParameterException', message: /belongs to cluster 'pg'/ });
  // The name can be reused once inactive.
  await ecs.send(new CreateCapacityProviderCommand({ name: 'pg-01', cluster: 'pg', managedInstancesProvider: mip() }));
});
