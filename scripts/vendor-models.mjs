#!/usr/bin/env node
// Copies the official AWS API models Berth validates against from an installed botocore
// (Apache-2.0) into models/, without documentation and with only the shapes the chosen
// operations reach. Run by hand when the models should be refreshed; the output is committed.
//   node scripts/vendor-models.mjs /path/to/botocore/data [service…]
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';

const dataDir = process.argv[2];
if (!dataDir) { console.error('usage: vendor-models.mjs BOTOCORE_DATA_DIR'); process.exit(2); }

// service -> operations to keep (null: all)
const wanted = {
  ecs: null,
  logs: ['GetLogEvents', 'FilterLogEvents', 'DescribeLogGroups', 'DescribeLogStreams', 'CreateLogGroup', 'DeleteLogGroup', 'PutRetentionPolicy',
    'DeleteRetentionPolicy', 'CreateLogStream', 'DeleteLogStream', 'PutLogEvents', 'PutLogGroupDeletionProtection', 'AssociateKmsKey', 'DisassociateKmsKey'],
  ec2: ['CreateInstanceEventWindow', 'DescribeInstanceEventWindows', 'ModifyInstanceEventWindow', 'DeleteInstanceEventWindow',
    'AssociateInstanceEventWindow', 'DisassociateInstanceEventWindow', 'DescribeInstances'],
  kms: ['CreateKey', 'DescribeKey', 'ListKeys', 'Encrypt', 'Decrypt', 'GenerateDataKey', 'ScheduleKeyDeletion', 'CancelKeyDeletion',
    'EnableKey', 'DisableKey', 'GetKeyPolicy', 'PutKeyPolicy', 'CreateAlias', 'ListAliases'],
  iam: ['CreateUser', 'DeleteUser', 'GetUser', 'ListUsers', 'CreateAccessKey', 'DeleteAccessKey', 'ListAccessKeys', 'PutUserPolicy',
    'DeleteUserPolicy', 'GetUserPolicy', 'ListUserPolicies', 'CreateRole', 'DeleteRole', 'GetRole', 'PutRolePolicy', 'DeleteRolePolicy',
    'GetRolePolicy', 'ListRolePolicies', 'ListRoles', 'UpdateAccessKey'],
  sts: ['GetCallerIdentity', 'AssumeRole'],
  cloudtrail: ['LookupEvents'],
  ssm: ['ResumeSession', 'TerminateSession'],
};

function latest(service) {
  const dir = join(dataDir, service);
  const versions = readdirSync(dir).sort();
  return join(dir, versions[versions.length - 1], 'service-2.json.gz');
}

function strip(node) {
  if (Array.isArray(node)) return node.map(strip);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === 'documentation' || k === 'documentationUrl' || k === 'examples') continue;
      out[k] = strip(v);
    }
    return out;
  }
  return node;
}

// Optional further arguments name the services to refresh (default: all).
const only = process.argv.slice(3);
for (const [service, ops] of Object.entries(wanted)) {
  if (only.length && !only.includes(service)) continue;
  const model = JSON.parse(gunzipSync(readFileSync(latest(service))).toString('utf8'));
  const keepOps = ops ?? Object.keys(model.operations);
  const shapes = {};
  const visit = (name) => {
    if (!name || shapes[name]) return;
    const shape = model.shapes[name];
    if (!shape) throw new Error(`${service}: missing shape ${name}`);
    shapes[name] = shape;
    if (shape.member) visit(shape.member.shape);
    if (shape.key) visit(shape.key.shape);
    if (shape.value) visit(shape.value.shape);
    for (const m of Object.values(shape.members ?? {})) visit(m.shape);
  };
  const operations = {};
  for (const op of keepOps) {
    const o = model.operations[op];
    if (!o) throw new Error(`${service}: missing operation ${op}`);
    operations[op] = o;
    visit(o.input?.shape); visit(o.output?.shape);
    for (const e of o.errors ?? []) visit(e.shape);
  }
  const out = strip({ metadata: model.metadata, operations, shapes });
  writeFileSync(join('models', `${service}.json`), JSON.stringify(out) + '\n');
  console.log(`${service}: ${Object.keys(operations).length} operations, ${Object.keys(shapes).length} shapes`);
}
