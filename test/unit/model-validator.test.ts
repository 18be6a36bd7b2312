import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelValidator, loadModel } from '../../src/api/model.js';
import { ApiError } from '../../src/api/errors.js';

const v = new ModelValidator(loadModel('ecs'));

function problems(op: string, input: unknown): string {
  try { v.validateInput(op, input); return ''; } catch (e) {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 'InvalidParameterException');
    return e.message;
  }
}

test('accepts a valid request', () => {
  assert.equal(problems('CreateCluster', { clusterName: 'a', tags: [{ key: 'k', value: 'v' }] }), '');
});

test('missing required members are named', () => {
  assert.match(problems('CreateCapacityProvider', {}), /Value null at 'name' failed to satisfy constraint: Member must not be null/);
  assert.match(problems('CreateCapacityProvider', { name: 'x', managedInstancesProvider: { instanceLaunchTemplate: {} } }),
    /managedInstancesProvider.infrastructureRoleArn.*must not be null/);
});

test('wrong types are reported with their path', () => {
  assert.match(problems('CreateCluster', { clusterName: 5 }), /Invalid type at 'clusterName': expected a string, got number 5/);
  assert.match(problems('RegisterTaskDefinition', { family: 'f', containerDefinitions: [{ name: 'a', cpu: 'x' }] }),
    /'containerDefinitions\[0\]\.cpu': expected an integer/);
  assert.match(problems('ListClusters', { maxResults: 1.5 }), /expected an integer/);
  assert.match(problems('DescribeClusters', { clusters: 'default' }), /expected a list/);
  assert.match(problems('CreateCluster', { tags: [null] }), /Value null at 'tags\[0\]'/);
});

test('unknown members are refused', () => {
  assert.match(problems('CreateCluster', { clusterName: 'a', colour: 'red' }), /Unknown parameter 'colour'/);
  assert.match(problems('CreateCluster', { configuration: { executeCommandConfiguration: { bogus: 1 } } }),
    /Unknown parameter 'configuration.executeCommandConfiguration.bogus'/);
});

test('enums, lengths and ranges come from the model', () => {
  assert.match(problems('DescribeClusters', { include: ['NOPE'] }), /Member must satisfy enum value set: \[ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS, TAGS\]/);
  assert.match(problems('CreateCluster', { tags: [{ key: '' }] }), /length greater than or equal to 1/);
  assert.match(problems('PutClusterCapacityProviders', { cluster: 'c', capacityProviders: [], defaultCapacityProviderStrategy: [{ capacityProvider: 'x', weight: 1001 }] }),
    /value less than or equal to 1000/);
  assert.match(problems('CreateCluster', { tags: Array.from({ length: 51 }, (_, i) => ({ key: `k${i}` })) }), /length less than or equal to 50/);
});

test('reports several problems at once', () => {
  assert.match(problems('CreateCapacityProvider', { name: 1, tags: 'x' }), /^2 validation errors detected/);
});
