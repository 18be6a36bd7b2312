import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand, CreateCapacityProviderCommand, RegisterTaskDefinitionCommand, TagResourceCommand, UntagResourceCommand,
  ListTagsForResourceCommand, PutAccountSettingCommand, PutAccountSettingDefaultCommand, ListAccountSettingsCommand,
  DeleteAccountSettingCommand, DescribeClustersCommand, type ECSClient,
} from '@aws-sdk/client-ecs';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';

let berth: TestBerth;
let ecs: ECSClient;
let account: string;
before(async () => {
  berth = await startTestBerth();
  ecs = berth.ecs();
  const c = await ecs.send(new CreateClusterCommand({ clusterName: 'tagged' }));
  account = c.cluster!.clusterArn!.split(':')[4]!;
});
after(async () => { await berth.cleanup(); });

test('tag, list and untag clusters, capacity providers and task definitions', async () => {
  const cp = await ecs.send(new CreateCapacityProviderCommand({ name: 'tcp', cluster: 'tagged', managedInstancesProvider: {
    infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['s'] } } } }));
  const td = await ecs.send(new RegisterTaskDefinitionCommand({ family: 'tt', containerDefinitions: [{ name: 'a', image: 'i', memory: 32 }] }));
  const arns = [`arn:aws:ecs:us-east-1:${account}:cluster/tagged`, cp.capacityProvider!.capacityProviderArn!, td.taskDefinition!.taskDefinitionArn!];
  for (const resourceArn of arns) {
    await ecs.send(new TagResourceCommand({ resourceArn, tags: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }] }));
    await ecs.send(new TagResourceCommand({ resourceArn, tags: [{ key: 'a', value: '3' }] }));
    assert.deepEqual((await ecs.send(new ListTagsForResourceCommand({ resourceArn }))).tags, [{ key: 'a', value: '3' }, { key: 'b', value: '2' }]);
    await ecs.send(new UntagResourceCommand({ resourceArn, tagKeys: ['a'] }));
    assert.deepEqual((await ecs.send(new ListTagsForResourceCommand({ resourceArn }))).tags, [{ key: 'b', value: '2' }]);
  }
  const tooMany = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
  await assert.rejects(ecs.send(new TagResourceCommand({ resourceArn: arns[0], tags: tooMany })), { name: 'InvalidParameterException', message: /at most 50 tags/ });
  assert.deepEqual((await ecs.send(new ListTagsForResourceCommand({ resourceArn: arns[0] }))).tags, [{ key: 'b', value: '2' }]);
});

test('reserved capacity provider tags are checked on TagResource too', async () => {
  const arn = `arn:aws:ecs:us-east-1:${account}:capacity-provider/tcp`;
  await ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: 'berth:privileged-capabilities', value: 'CAP_SYS_ADMIN' }] }));
  await assert.rejects(ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: 'berth:single-task-mode', value: 'sometimes' }] })),
    { name: 'InvalidParameterException', message: /must be 'enabled' or 'disabled'/ });
  const tags = (await ecs.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags!;
  assert.ok(tags.some((t) => t.key === 'berth:privileged-capabilities' && t.value === 'CAP_SYS_ADMIN'));
  assert.ok(!tags.some((t) => t.key === 'berth:single-task-mode'));
});

test("another account's or region's ARNs are refused and change nothing", async () => {
  const foreign = 'arn:aws:ecs:us-east-1:999999999999:cluster/tagged';
  await assert.rejects(ecs.send(new TagResourceCommand({ resourceArn: foreign, tags: [{ key: 'x', value: 'y' }] })),
    { name: 'AccessDeniedException', message: /is not authorized to perform: ecs:TagResource on resource: arn:aws:ecs:us-east-1:999999999999:cluster\/tagged/ });
  await assert.rejects(ecs.send(new DescribeClustersCommand({ clusters: [foreign] })), { name: 'AccessDeniedException' });
  await assert.rejects(ecs.send(new TagResourceCommand({ resourceArn: `arn:aws:ecs:eu-west-1:${account}:cluster/tagged`, tags: [{ key: 'x', value: 'y' }] })),
    { name: 'InvalidParameterException' });
  await assert.rejects(ecs.send(new TagResourceCommand({ resourceArn: `arn:aws:ecs:us-east-1:${account}:cluster/ghost`, tags: [{ key: 'x', value: 'y' }] })),
    { name: 'ResourceNotFoundException' });
  await assert.rejects(ecs.send(new TagResourceCommand({ resourceArn: 'not-an-arn', tags: [{ key: 'x', value: 'y' }] })), { name: 'InvalidParameterException' });
  const d = await ecs.send(new DescribeClustersCommand({ clusters: ['tagged'], include: ['TAGS'] }));
  assert.ok(!d.clusters![0]!.tags!.some((t) => t.key === 'x'));
});

test('account settings: explicit, default, effective, delete', async () => {
  const put = await ecs.send(new PutAccountSettingCommand({ name: 'containerInsights', value: 'enabled' }));
  assert.deepEqual(put.setting, { name: 'containerInsights', value: 'enabled', principalArn: `arn:aws:iam::${account}:root`, type: 'user' });
  // New clusters pick up the containerInsights default.
  const c = await ecs.send(new CreateClusterCommand({ clusterName: 'insightful' }));
  assert.deepEqual(c.cluster!.settings, [{ name: 'containerInsights', value: 'enabled' }]);

  const dflt = await ecs.send(new PutAccountSettingDefaultCommand({ name: 'fargateTaskRetirementWaitPeriod', value: '14' }));
  assert.equal(dflt.setting!.value, '14');
  await assert.rejects(ecs.send(new PutAccountSettingDefaultCommand({ name: 'fargateTaskRetirementWaitPeriod', value: '3' })), { name: 'InvalidParameterException', message: /Valid values: 0, 7, 14/ });
  await assert.rejects(ecs.send(new PutAccountSettingCommand({ name: 'guardDutyActivate', value: 'on' })), { name: 'InvalidParameterException', message: /read-only/ });
  await assert.rejects(ecs.send(new PutAccountSettingCommand({ name: 'awsvpcTrunking', value: 'enabled', principalArn: 'arn:aws:iam::999999999999:user/x' })), { name: 'AccessDeniedException' });

  const own = await ecs.send(new ListAccountSettingsCommand({}));
  assert.deepEqual(own.settings!.map((s) => s.name).sort(), ['containerInsights', 'fargateTaskRetirementWaitPeriod']);
  const effective: any[] = [];
  let nextToken: string | undefined;
  do {
    const r = await ecs.send(new ListAccountSettingsCommand({ effectiveSettings: true, nextToken }));
    assert.ok(r.settings!.length <= 10);
    effective.push(...r.settings!);
    nextToken = r.nextToken;
  } while (nextToken);
  assert.equal(effective.length, 11);
  assert.equal(effective.find((s) => s.name === 'awsvpcTrunking').type, 'aws_managed');
  const one = await ecs.send(new ListAccountSettingsCommand({ name: 'taskLongArnFormat', effectiveSettings: true }));
  assert.deepEqual(one.settings!.map((s) => s.value), ['enabled']);

  const del = await ecs.send(new DeleteAccountSettingCommand({ name: 'containerInsights' }));
  assert.equal(del.setting!.value, 'enabled');
  await assert.rejects(ecs.send(new DeleteAccountSettingCommand({ name: 'containerInsights' })), { name: 'InvalidParameterException' });
  const after = await ecs.send(new ListAccountSettingsCommand({ name: 'containerInsights', effectiveSettings: true }));
  assert.equal(after.settings![0]!.value, 'disabled');
});
