import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileQuery, placementConstraintsProblem, queryProblem, queryTarget, QueryError, type QueryTargetInput } from '../../src/placement/index.js';
import { isStaticQuery } from '../../src/placement/query.js';

const web: QueryTargetInput = {
  availabilityZone: 'us-east-1a', subnetId: 'subnet-1', instanceType: 'm5a.large', architecture: 'X86_64',
  attributes: [{ name: 'stack', value: 'prod' }, { name: 'gpu' }, { name: 'size', value: '10' }, { name: 'ecs.os-type', value: 'linux' }],
  taskGroups: { 'service:web': 2, 'family:batch': 1 }, agentConnected: true, agentVersion: '1.14.2',
  ec2InstanceId: 'i-abcd1234', registeredAt: Date.parse('2018-06-18T22:28:28Z'), runningTasksCount: 3,
};
const empty: QueryTargetInput = {
  availabilityZone: 'us-east-1d', subnetId: 'subnet-2', instanceType: 't2.micro', architecture: 'ARM64',
  agentConnected: false, ec2InstanceId: 'i-wxyx7890', registeredAt: Date.parse('2024-01-01T00:00:00Z'), runningTasksCount: 0,
};

const cases: [string, boolean, boolean][] = [
  // [expression, on `web`, on `empty`]
  ['attribute:ecs.instance-type == m5a.large', true, false],
  ['attribute:ecs.instance-type equals m5a.large', true, false],
  ['attribute:ecs.instance-type != m5a.large', false, true],
  ['attribute:ecs.availability-zone in [us-east-1a, us-east-1b]', true, false],
  ['attribute:ecs.availability-zone not_in [us-east-1a, us-east-1b]', false, true],
  ['attribute:ecs.availability-zone !in [us-east-1a]', false, true],
  ['attribute:ecs.instance-type =~ m5a.*', true, false],
  ['attribute:ecs.instance-type =~ m5', false, false],
  ['attribute:ecs.instance-type matches t2\\..*', false, true],
  ['attribute:ecs.instance-type !~ t2.*', true, false],
  ['attribute:ecs.cpu-architecture == x86_64', true, false],
  ['attribute:ecs.cpu-architecture == ARM64', false, true],
  ['attribute:ecs.subnet-id == subnet-1', true, false],
  ['attribute:ecs.os-type == linux', true, true],
  ['attribute:stack exists', true, false],
  ['attribute:stack !exists', false, true],
  ['attribute:stack not_exists', false, true],
  ['attribute:gpu exists', true, false],
  ['attribute:stack != prod', false, true],
  ['attribute:size > 9', true, false],
  ['attribute:size >= 10 and attribute:size <= 10', true, false],
  ['attribute:size < 9', false, false],
  ['attribute:ecs.instance-type =~ m5a.* and attribute:ecs.availability-zone != us-east-1d', true, false],
  ['attribute:ecs.instance-type =~ t2.* or attribute:stack == prod', true, true],
  ['not(attribute:stack == prod)', false, true],
  ['!(attribute:stack == prod)', false, true],
  ['attribute:stack == prod && attribute:gpu exists', true, false],
  ['attribute:stack == prod || runningTasksCount == 0', true, true],
  ['not attribute:stack == prod and runningTasksCount == 0', false, true],
  ['(attribute:stack == prod or runningTasksCount == 0) and agentConnected == true', true, false],
  ['attribute:stack == prod or runningTasksCount == 0 and agentConnected == true', true, false],
  ['task:group == service:web', true, false],
  ['task:group in [service:api, family:batch]', true, false],
  ['not(task:group == database)', true, true],
  ['task:group exists', true, false],
  ['task:group =~ service:.*', true, false],
  ['runningTasksCount > 2', true, false],
  ['runningTasksCount == 0', false, true],
  ['runningTasksCount greater_than_equal 3', true, false],
  ['agentConnected == false', false, true],
  ['agentConnected in [true]', true, false],
  ['agentVersion >= 1.14.0', true, false],
  ['agentVersion < 1.9.0', false, false],
  ["ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true, true],
  ['ec2InstanceId == "i-abcd1234"', true, false],
  ['ec2InstanceId =~ i-abcd.*', true, false],
  ['registeredAt < 2020-01-01', true, false],
  ['registeredAt == 2018-06-18', true, false],
  ['registeredAt >= 2018-06-18T22:28:28Z', true, true],
  ['registeredAt > 2018-06-18T22:28:28+00:00', false, true],
  ["attribute:stack == 'prod'", true, false],
  ['attribute:ecs.instance-type=="m5a.large"', true, false],
];

for (const [expr, a, b] of cases) {
  test(`query: ${expr}`, () => {
    const q = compileQuery(expr);
    assert.equal(q(queryTarget(web)), a, 'on web');
    assert.equal(q(queryTarget(empty)), b, 'on empty');
  });
}

const bad: [string, RegExp][] = [
  ['', /the expression is empty/],
  ['foo == bar', /unknown subject 'foo'/],
  ['attribute: == x', /attribute: needs a name/],
  ['attribute:stack', /expected an operator .* but found 'the end'/],
  ['attribute:stack ==', /expected a value but found 'the end'/],
  ['attribute:stack in prod', /'in' needs a list/],
  ['attribute:stack in [a, b', /expected ',' or '\]'/],
  ['(attribute:stack == prod', /expected '\)' to close the '\('/],
  ['attribute:stack == prod attribute:gpu exists', /unexpected 'attribute:gpu'/],
  ['attribute:stack == prod and', /expected a subject/],
  ['attribute:x =~ "m5(("', /not a valid regular expression/],
  ['runningTasksCount =~ 1', /operator =~ is not valid for runningTasksCount/],
  ['runningTasksCount > many', /whole number/],
  ['registeredAt > yesterday', /registeredAt compares with a date/],
  ['agentConnected == maybe', /true or false/],
  ['task:group > a', /operator > is not valid for task:group/],
  ['attribute:stack = prod', /Unexpected '='/],
  ['attribute:x == "unterminated', /Unterminated quoted value/],
];

for (const [expr, re] of bad) {
  test(`query error: ${JSON.stringify(expr)}`, () => {
    assert.throws(() => compileQuery(expr), (e: unknown) => e instanceof QueryError && re.test(e.message));
    assert.match(queryProblem(expr)!, re);
  });
}

test('query: expressions over 2000 characters are refused; valid ones are cached', () => {
  assert.match(queryProblem(`attribute:a == ${'x'.repeat(2000)}`)!, /limit is 2000/);
  assert.equal(compileQuery('attribute:a == b'), compileQuery('attribute:a == b'));
  assert.equal(queryProblem('attribute:a == b'), undefined);
});

test('query: static queries (attributes, ids) versus ones a reservation can change', () => {
  assert.ok(isStaticQuery(compileQuery('attribute:ecs.instance-type =~ m5.* and ec2InstanceId != i-1')));
  assert.ok(!isStaticQuery(compileQuery('not(task:group == db)')));
  assert.ok(!isStaticQuery(compileQuery('attribute:a == b or runningTasksCount < 3')));
  assert.ok(isStaticQuery(compileQuery('attribute:note == "task:group"')));
});

test('placement constraint validation', () => {
  assert.equal(placementConstraintsProblem([{ type: 'distinctInstance' }, { type: 'memberOf', expression: 'attribute:ecs.availability-zone in [a, b]' }]), undefined);
  assert.match(placementConstraintsProblem([{ type: 'memberOf' }])!, /needs an expression/);
  assert.match(placementConstraintsProblem([{ type: 'distinctInstance', expression: 'x' }])!, /takes no expression/);
  assert.match(placementConstraintsProblem([{ type: 'sameInstance' }])!, /Unknown placement constraint type/);
  assert.match(placementConstraintsProblem([{ type: 'memberOf', expression: 'bogus' }])!, /unknown subject 'bogus'/);
  assert.match(placementConstraintsProblem(Array.from({ length: 11 }, () => ({ type: 'distinctInstance' })))!, /at most 10/);
});
