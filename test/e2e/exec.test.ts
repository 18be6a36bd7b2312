// ECS Exec end to end: real tasks in real containers, ExecuteCommand through the SDK and the
// aws CLI, the session driven by the test suite's own data-channel client (written from
// the protocol reference), ResumeSession/TerminateSession, limits, the audit history, the
// transcripts and their encryption at rest, and that exec is the only door.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  CreateCapacityProviderCommand, CreateClusterCommand, DescribeContainerInstancesCommand, ECSClient, ExecuteCommandCommand,
  RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, UpdateClusterCommand, type ExecuteCommandCommandOutput,
} from '@aws-sdk/client-ecs';
import { DescribeLogGroupsCommand, FilterLogEventsCommand, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { repoRoot, startTestBerth, type Creds, type TestBerth } from '../helpers/berth.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildAndPush } from '../helpers/image.js';
import { describeTask, logsClient, taskId, waitFor, waitForStatus } from '../helpers/ecs.js';
import { raw } from '../helpers/raw.js';
import { agentPid } from '../helpers/instances.js';
import { SsmClient, type SessionInfo } from '../helpers/ssm-client.js';
import { SqliteStore } from '../../src/store/store.js';
import { MasterKey } from '../../src/identity/master-key.js';
import { Credentials } from '../../src/identity/credentials.js';

const NOT_ENABLED = 'The execute command failed because execute command was not enabled when the task was run or the execute command agent isn\'t running. Wait and try again or run a new task with execute command enabled and try again.';
const cluster = 'exec';
let KMS: string; // a customer managed key of Berth's KMS (created in before())
const SESSIONS_GROUP = '/exec-e2e/sessions';
const marker = `berthos-${randomBytes(8).toString('hex')}`;
const TOKEN_TTL_S = 5;
const RESUME_WINDOW_S = 4;
const IDLE_S = 10;

let berth: TestBerth;
let registry: TestRegistry;
let ecs: ECSClient;
let image: string;
let main: string; // a task started with enableExecuteCommand
let plain: string; // one without
let other: Creds; // a second account

before(async () => {
  registry = await startRegistry();
  buildAndPush(registry.address, 'busybox:latest', { files: { '/etc/os-release': `NAME="Berth test OS"\nID=berthtest\nVERSION_ID="${marker}"\n` } });
  image = `${registry.address}/busybox:latest`;
  berth = await startTestBerth({
    BERTH_EXEC_TOKEN_TTL: String(TOKEN_TTL_S), BERTH_EXEC_RESUME_WINDOW: String(RESUME_WINDOW_S),
    BERTH_EXEC_IDLE_TIMEOUT: String(IDLE_S), BERTH_EXEC_MAX_SESSIONS_PER_TASK: '3',
  });
  ecs = berth.ecs();
  other = createAccount(berth);
  KMS = berth.aws(['kms', 'create-key', '--description', 'exec transcripts']).json.KeyMetadata.Arn;
  await ecs.send(new CreateClusterCommand({
    clusterName: cluster,
    configuration: { executeCommandConfiguration: { kmsKeyId: KMS, logging: 'OVERRIDE', logConfiguration: { cloudWatchLogGroupName: SESSIONS_GROUP } } },
  }));
  await ecs.send(new CreateCapacityProviderCommand({
    name: 'exec-cp', cluster,
    managedInstancesProvider: { infrastructureRoleArn: 'r', instanceLaunchTemplate: { ec2InstanceProfileArn: 'p', networkConfiguration: { subnets: ['subnet-1'] } } },
  }));
  await ecs.send(new RegisterTaskDefinitionCommand({
    family: 'shell', requiresCompatibilities: ['MANAGED_INSTANCES'], networkMode: 'host',
    containerDefinitions: [{
      name: 'app', image, memory: 48, stopTimeout: 2, command: ['sleep', '3600'],
      logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/exec-e2e', 'awslogs-stream-prefix': 'shell' } },
    }],
  }));
  main = (await ecs.send(new RunTaskCommand({ cluster, taskDefinition: 'shell', enableExecuteCommand: true }))).tasks![0]!.taskArn!;
  plain = (await ecs.send(new RunTaskCommand({ cluster, taskDefinition: 'shell' }))).tasks![0]!.taskArn!;
  await waitForStatus(ecs, cluster, main, 'RUNNING', 120_000);
  await waitForStatus(ecs, cluster, plain, 'RUNNING', 120_000);
});

after(async () => {
  await berth?.cleanup();
  await registry?.stop();
});

/** A second account with its own root access key, written where Berth keeps keys. */
function createAccount(b: TestBerth): Creds {
  const store = new SqliteStore(b.dataDir);
  try {
    const master = MasterKey.fromBytes(Buffer.from(readFileSync(b.env.BERTH_MASTER_KEY_FILE!, 'utf8').trim(), 'base64'));
    const accountId = '210987654321';
    store.put('account', 'global', accountId, { accountId, name: 'other', createdAt: Date.now() });
    const { record, secret } = new Credentials(store, master).createAccessKey(accountId, 'root', `iam::${accountId}:root`, Date.now());
    return { ...b.creds, accessKeyId: record.accessKeyId, secretAccessKey: secret };
  } finally {
    store.close();
  }
}

function execute(command: string, task = main, client = ecs): Promise<ExecuteCommandCommandOutput> {
  return client.send(new ExecuteCommandCommand({ cluster, task, container: 'app', interactive: true, command }));
}

async function open(command: string, opts: ConstructorParameters<typeof SsmClient>[1] = {}): Promise<{ client: SsmClient; session: SessionInfo }> {
  const r = await execute(command);
  const session = r.session as SessionInfo;
  const client = new SsmClient(session, opts);
  await client.connect();
  return { client, session };
}

async function run(command: string): Promise<{ text: string; exitCode: number | undefined; sessionId: string; client: SsmClient }> {
  const { client, session } = await open(command);
  await client.waitClosed(20_000);
  client.close();
  return { text: client.text(), exitCode: client.exitCode, sessionId: session.sessionId, client };
}

/** The processes of the main task's container, as `ps` in another session sees them. */
async function processes(): Promise<string> {
  return (await run('ps -o pid,args')).text;
}

function ssm(action: string, body: unknown, creds: Creds = berth.creds) {
  return raw(creds, action, JSON.stringify(body), { target: `AmazonSSM.${action}`, service: 'ssm' });
}

function sessionsCli(args: string[] = []): string {
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'sessions', ...args], { env: berth.env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function auditRecords(): Record<string, any>[] {
  return sessionsCli(['--json']).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function record(sessionId: string): Record<string, any> {
  const r = auditRecords().find((x) => x.sessionId === sessionId);
  if (!r) throw new Error(`no audit record for ${sessionId}`);
  return r;
}

test('DescribeTasks shows what the CLI needs: enableExecuteCommand, runtimeId, the ExecuteCommandAgent', async () => {
  const t = await describeTask(ecs, cluster, main);
  assert.equal(t.enableExecuteCommand, true);
  const c = t.containers![0]!;
  assert.match(c.runtimeId!, /^[0-9a-f]{12}-app-/);
  assert.deepEqual(c.managedAgents!.map((a) => [a.name, a.lastStatus]), [['ExecuteCommandAgent', 'RUNNING']]);
  const p = await describeTask(ecs, cluster, plain);
  assert.equal(p.enableExecuteCommand, false);
  assert.equal(p.containers![0]!.managedAgents, undefined);
});

test('ExecuteCommand refuses what AWS refuses, with AWS\'s words', async () => {
  await assert.rejects(execute('id', plain), { name: 'InvalidParameterException', message: NOT_ENABLED });
  await assert.rejects(ecs.send(new ExecuteCommandCommand({ cluster, task: main, container: 'app', interactive: false, command: 'id' })),
    { name: 'InvalidParameterException', message: 'Interactive is the only mode supported currently.' });
  await assert.rejects(ecs.send(new ExecuteCommandCommand({ cluster: 'nowhere', task: main, interactive: true, command: 'id' })), { name: 'ClusterNotFoundException' });
  await assert.rejects(ecs.send(new ExecuteCommandCommand({ cluster, task: main, container: 'ghost', interactive: true, command: 'id' })), { name: 'InvalidParameterException', message: /ghost/ });
  await assert.rejects(execute('sh -c "unterminated'), { name: 'InvalidParameterException', message: /unterminated double quote/ });
  await assert.rejects(execute('id', `${main.slice(0, main.lastIndexOf('/'))}/${'0'.repeat(32)}`), { name: 'InvalidParameterException', message: /not found/ });
  // Another account's task ARN.
  const foreign = main.replace(/:\d{12}:/, ':999999999999:');
  await assert.rejects(execute('id', foreign), { name: 'AccessDeniedException', message: /is not authorized to perform: ecs:ExecuteCommand on resource/ });
  // The container may be omitted when the task has one.
  const r = await ecs.send(new ExecuteCommandCommand({ cluster, task: taskId(main), interactive: true, command: 'true' }));
  assert.equal(r.containerName, 'app');
  assert.equal(r.interactive, true);
  assert.equal(r.taskArn, main);
  assert.match(r.clusterArn!, /:cluster\/exec$/);
  assert.match(r.containerArn!, /:container\/exec\//);
  assert.match(r.session!.sessionId!, /^ecs-execute-command-[0-9a-f]{24}$/);
  assert.equal(r.session!.streamUrl, `${berth.creds.endpoint.replace('http:', 'ws:')}/v1/data-channel/${r.session!.sessionId}?role=publish_subscribe`);
  assert.ok(r.session!.tokenValue!.length >= 40);
  await ssm('TerminateSession', { SessionId: r.session!.sessionId });
});

test('the aws CLI: its exact error for a task without exec, and the session it hands the plugin', async () => {
  // A stand-in for session-manager-plugin's two invocations: the install check (no
  // arguments) and the session (six arguments, recorded here). The session is then driven
  // by the test's client, which is what the plugin would do.
  const dir = mkdtempSync(join(tmpdir(), 'berth-plugin-stub-'));
  try {
    const out = join(dir, 'args.json');
    writeFileSync(join(dir, 'session-manager-plugin'), `#!/bin/sh\n[ $# -eq 0 ] && exit 0\n${JSON.stringify(process.execPath)} -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))' ${JSON.stringify(out)} "$@"\n`);
    chmodSync(join(dir, 'session-manager-plugin'), 0o755);
    const env = { PATH: `${dir}:${process.env.PATH}` };
    const refused = berth.aws(['ecs', 'execute-command', '--cluster', cluster, '--task', plain, '--container', 'app', '--interactive', '--command', 'id'], { env });
    assert.notEqual(refused.status, 0);
    assert.ok(refused.stderr.includes(`An error occurred (InvalidParameterException) when calling the ExecuteCommand operation: ${NOT_ENABLED}`), refused.stderr);

    const ok = berth.aws(['ecs', 'execute-command', '--cluster', cluster, '--task', taskId(main), '--container', 'app', '--interactive', '--command', 'cat /etc/os-release'], { env });
    assert.equal(ok.status, 0, ok.stderr);
    const args = JSON.parse(readFileSync(out, 'utf8')) as string[];
    assert.equal(args.length, 6);
    const session = JSON.parse(args[0]!) as SessionInfo;
    const t = await describeTask(ecs, cluster, main);
    assert.deepEqual(args.slice(1, 4), [berth.creds.region, 'StartSession', '']);
    assert.deepEqual(JSON.parse(args[4]!), { Target: `ecs:${cluster}_${taskId(main)}_${t.containers![0]!.runtimeId}` });
    assert.equal(args[5], berth.creds.endpoint);
    const client = new SsmClient(session);
    await client.connect();
    await client.waitClosed();
    assert.match(client.text(), new RegExp(`VERSION_ID="${marker}"`));
    assert.equal(client.exitCode, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a session through the broker: handshake, output and exit codes (cat /etc/os-release, id, sh -c \'exit 3\')', async () => {
  const osRelease = await run('cat /etc/os-release');
  assert.equal(osRelease.text, `NAME="Berth test OS"\r\nID=berthtest\r\nVERSION_ID="${marker}"\r\n[exit code 0]\r\n0`);
  assert.equal(osRelease.exitCode, 0);
  const c = osRelease.client;
  // Output numbered from 0 up by one: handshake request, handshake complete, output…
  const outputs = c.received.filter((m) => m.messageType === 'output_stream_data');
  assert.deepEqual(outputs.map((m) => m.sequenceNumber), outputs.map((_, i) => i));
  assert.equal(outputs[0]!.payloadType, 5);
  assert.deepEqual(JSON.parse(outputs[0]!.payload.toString()).RequestedClientActions, [{ ActionType: 'SessionType', ActionParameters: { SessionType: 'Standard_Stream', Properties: null } }]);
  assert.equal(outputs[1]!.payloadType, 7);
  assert.ok(Number.isInteger(c.handshakeTimeToComplete) && (c.handshakeTimeToComplete as number) > 0);
  assert.equal(outputs.at(-1)!.payloadType, 12);
  assert.equal(c.closedPayload!.SessionId, osRelease.sessionId);
  assert.equal(c.closedPayload!.MessageType, 'channel_closed');
  assert.equal(c.unackedInput, 0, 'every client message was acknowledged');

  const id = await run('id');
  assert.match(id.text, /^uid=0\(root\) gid=0\(root\)/);
  assert.equal(id.exitCode, 0);
  const three = await run("sh -c 'exit 3'");
  assert.equal(three.exitCode, 3);
  assert.equal(three.text, '[exit code 3]\r\n3');
  // The terminal is a real pty of the client's size (runc sizes it just after the command
  // starts, hence the pause).
  const size = await open('sh -c "sleep 0.3; tty; stty size"', { cols: 132, rows: 43 });
  await size.client.waitClosed();
  assert.match(size.client.text(), /^\/dev\/pts\/\d+\r\n43 132\r\n/);
  // A command that does not exist is reported, as a shell would.
  const missing = await run('no-such-program');
  assert.notEqual(missing.exitCode, 0);
  assert.match(missing.text, /no-such-program/);
});

test('Ctrl-C interrupts a long-running command (sleep 1000)', async () => {
  const { client } = await open('sleep 1000');
  await waitFor('sleep 1000 running', async () => /sleep 1000/.test(await processes()), 20_000, 200);
  client.type('\x03');
  await client.waitClosed(10_000);
  assert.equal(client.exitCode, 130);
  client.close();
  assert.doesNotMatch(await processes(), /sleep 1000/);
});

test('an interactive shell: keystrokes, a resize, and exit', async () => {
  const { client } = await open('sh', { cols: 80, rows: 24 });
  await client.waitForText('#');
  client.resize(100, 30);
  client.type('sleep 0.2; stty size; echo $((6*7)); exit 5\r');
  await client.waitClosed();
  assert.match(client.text(), /30 100\r\n42\r\n/);
  assert.equal(client.exitCode, 5);
  client.close();
});

test('a lost connection resumes with ResumeSession (aws ssm resume-session on the ECS endpoint), nothing lost or repeated', async () => {
  let holding = false;
  const { client, session } = await open("sh -c 'for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.3; done'", {
    // Just before the drop, output is consumed but its acknowledgements are "lost" with the connection.
    ackFilter: () => !holding,
  });
  await client.waitForText('tick 2');
  holding = true;
  await client.waitForText('tick 3');
  client.drop();
  await new Promise((r) => setTimeout(r, 700)); // output goes on meanwhile
  // The old token is spent.
  const stale = new SsmClient(session);
  await stale.connect();
  assert.equal((await stale.closedSocket()).code, 1008);
  const r = berth.aws(['ssm', 'resume-session', '--session-id', session.sessionId]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.SessionId, session.sessionId);
  assert.equal(r.json.StreamUrl, session.streamUrl);
  assert.ok(r.json.TokenValue);
  holding = false;
  await client.resume(r.json.TokenValue);
  await client.waitClosed(20_000);
  const ticks = client.text().match(/tick \d/g);
  assert.deepEqual(ticks, ['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5', 'tick 6', 'tick 7', 'tick 8']);
  assert.ok(client.repeats > 0, 'output the client had but had not acknowledged was resent, and dropped as a repeat');
  assert.equal(client.exitCode, 0);
  client.close();
  assert.equal(record(session.sessionId).resumes, 1);
  // A session that ended resumes to nothing: the client stops.
  const ended = await ssm('ResumeSession', { SessionId: session.sessionId });
  assert.equal(ended.status, 200);
  assert.deepEqual(ended.json, { SessionId: session.sessionId });
  const unknown = await ssm('ResumeSession', { SessionId: 'ecs-execute-command-000000000000000000000000' });
  assert.equal(unknown.json.__type, 'DoesNotExistException');
});

test('tokens: single-use, bound to their session, short-lived', async () => {
  const a = await execute("sh -c 'echo ready; exec sleep 1000'");
  const b = await execute('true');
  // Another session's token, or a wrong one, opens nothing.
  const wrong = new SsmClient({ ...a.session, tokenValue: b.session!.tokenValue } as SessionInfo);
  await wrong.connect();
  assert.deepEqual(await wrong.closedSocket(), { code: 1008, reason: 'wrong token' });
  const first = new SsmClient(a.session as SessionInfo);
  await first.connect();
  await first.waitForText('ready');
  const again = new SsmClient(a.session as SessionInfo);
  await again.connect();
  assert.equal((await again.closedSocket()).code, 1008);
  assert.equal(again.received.length, 0);
  first.type('\x03');
  await first.waitClosed();
  first.close();
  // b's token expires unused.
  await new Promise((r) => setTimeout(r, TOKEN_TTL_S * 1000 + 500));
  const late = new SsmClient(b.session as SessionInfo);
  await assert.rejects(late.connect(), /Unexpected server response: 404/);
  assert.equal(record(b.session!.sessionId!).endReason, 'never-connected');
  // Unknown session paths, and other paths, are not upgraded.
  const ghost = new SsmClient({ ...b.session, streamUrl: b.session!.streamUrl!.replace(b.session!.sessionId!, 'ecs-execute-command-nope') } as SessionInfo);
  await assert.rejects(ghost.connect(), /Unexpected server response: 404/);
  const elsewhere = new SsmClient({ ...b.session, streamUrl: berth.creds.endpoint.replace('http:', 'ws:') + '/agent' } as SessionInfo);
  await assert.rejects(elsewhere.connect(), /Unexpected server response: 404/);
});

test('a client that vanishes: after the resume window its command is killed', async () => {
  const { client, session } = await open('sleep 1000');
  await waitFor('sleep 1000 running', async () => /sleep 1000/.test(await processes()), 20_000, 200);
  client.drop();
  client.close();
  await waitFor('the session to end', async () => record(session.sessionId).endReason === 'client-gone', (RESUME_WINDOW_S + 10) * 1000, 250);
  await waitFor('sleep 1000 gone', async () => !/sleep 1000/.test(await processes()), 10_000, 250);
});

test('an idle session ends after the idle timeout, and its command with it', async () => {
  const { client, session } = await open('sleep 1000');
  await client.waitClosed((IDLE_S + 10) * 1000);
  assert.match(client.text(), /idle for 10 s/);
  client.close();
  assert.equal(record(session.sessionId).endReason, 'idle-timeout');
  assert.doesNotMatch(await processes(), /sleep 1000/);
});

test('at most BERTH_EXEC_MAX_SESSIONS_PER_TASK sessions per task', async () => {
  const issued = [await execute('true'), await execute('true'), await execute('true')];
  await assert.rejects(execute('true'), { name: 'ClientException', message: /already has 3 ECS Exec sessions/ });
  for (const s of issued) {
    const t = berth.aws(['ssm', 'terminate-session', '--session-id', s.session!.sessionId!]);
    assert.equal(t.status, 0, t.stderr);
  }
  const ok = await run('true');
  assert.equal(ok.exitCode, 0);
  assert.equal(record(issued[0]!.session!.sessionId!).endReason, 'terminated');
});

test('another account can reach neither the task nor its sessions', async () => {
  const theirs = berth.ecs(berth.creds.region, other);
  await assert.rejects(execute('id', main, theirs), { name: 'AccessDeniedException', message: /arn:aws:iam::210987654321:root is not authorized to perform: ecs:ExecuteCommand/ });
  await assert.rejects(theirs.send(new ExecuteCommandCommand({ cluster, task: taskId(main), interactive: true, command: 'id' })), { name: 'ClusterNotFoundException' });
  const clusterArn = (await describeTask(ecs, cluster, main)).clusterArn!;
  await assert.rejects(theirs.send(new ExecuteCommandCommand({ cluster: clusterArn, task: main, interactive: true, command: 'id' })), { name: 'AccessDeniedException' });
  const mine = await execute('true');
  const resumed = await ssm('ResumeSession', { SessionId: mine.session!.sessionId }, other);
  assert.equal(resumed.json.__type, 'DoesNotExistException');
  await ssm('TerminateSession', { SessionId: mine.session!.sessionId }, other);
  const stillMine = new SsmClient(mine.session as SessionInfo);
  await stillMine.connect();
  await stillMine.waitClosed();
  assert.equal(stillMine.exitCode, 0);
  stillMine.close();
});

test('no other door: the instance has no listening socket while a session runs', async () => {
  const { client } = await open('sleep 1000');
  await waitFor('sleep 1000 running', async () => /sleep 1000/.test(await processes()), 20_000, 200);
  const t = await describeTask(ecs, cluster, main);
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!;
  const ss = spawnSync('nsenter', [`--net=/run/netns/berth-${ci.ec2InstanceId}`, 'ss', '-Hltnu'], { encoding: 'utf8' });
  assert.equal(ss.status, 0, ss.stderr);
  assert.equal(ss.stdout.trim(), '');
  client.type('\x03');
  await client.waitClosed();
  client.close();
});

test('audit: every session is in the history, printed by `berth sessions`', async () => {
  const three = await run("sh -c 'exit 3'");
  const r = record(three.sessionId);
  assert.equal(r.status, 'ENDED');
  assert.equal(r.exitCode, 3);
  assert.equal(r.endReason, 'exited');
  assert.equal(r.command, "sh -c 'exit 3'");
  assert.deepEqual(r.argv, ['sh', '-c', 'exit 3']);
  assert.equal(r.principalArn, `arn:aws:iam::${main.split(':')[4]}:root`);
  assert.equal(r.accessKeyId, berth.creds.accessKeyId);
  assert.equal(r.cluster, cluster);
  assert.equal(r.taskArn, main);
  assert.equal(r.container, 'app');
  assert.ok(r.connectedAt >= r.requestedAt && r.endedAt >= r.connectedAt && r.durationMs >= 0);
  assert.equal(r.account, main.split(':')[4]);
  const all = auditRecords();
  assert.ok(all.length >= 15, `${all.length} records`);
  assert.ok(all.every((x) => x.status === 'ENDED' || x.status === 'ACTIVE'));
  const table = sessionsCli();
  assert.match(table.split('\n')[0]!, /^REQUESTED \(UTC\)\s+DURATION\s+EXIT\s+STATUS\s+CLUSTER\s+TASK\s+CONTAINER\s+PRINCIPAL\s+ACCESS KEY\s+COMMAND$/);
  assert.ok(table.split('\n').some((l) => l.includes(`"sh -c 'exit 3'"`) && / 3 +exited /.test(l) && l.includes(berth.creds.accessKeyId)), table);
  assert.match(sessionsCli(['--cluster', 'nope']), /\(no ECS Exec sessions yet\)/);
  assert.ok(sessionsCli(['--task', taskId(main)]).includes(`"sh -c 'exit 3'"`));
});

/** Every file of the database (main file, WAL, shared memory) as raw bytes. */
function rawDatabase(): Buffer {
  return Buffer.concat(readdirSync(berth.dataDir).filter((f) => f.startsWith('berth.db')).map((f) => readFileSync(join(berth.dataDir, f))));
}

test('transcripts land in the log store, sealed at rest under the kmsKeyId and readable through the API', async () => {
  const logs = logsClient(berth);
  const { sessionId } = await run('cat /etc/os-release');
  const got = await logs.send(new GetLogEventsCommand({ logGroupName: SESSIONS_GROUP, logStreamName: sessionId, startFromHead: true }));
  assert.deepEqual(got.events!.map((e) => e.message), ['NAME="Berth test OS"', 'ID=berthtest', `VERSION_ID="${marker}"`]);
  const filtered = await logs.send(new FilterLogEventsCommand({ logGroupName: SESSIONS_GROUP, filterPattern: `"${marker}"` }));
  assert.ok(filtered.events!.some((e) => e.logStreamName === sessionId && e.message === `VERSION_ID="${marker}"`));
  const g = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: SESSIONS_GROUP }));
  assert.equal(g.logGroups![0]!.kmsKeyId, KMS);
  assert.equal(record(sessionId).transcript.encrypted, true);
  // The data-channel connection and the session's end are in the audit trail (as SSM events).
  const trail = (name: string) => (berth.aws(['cloudtrail', 'lookup-events', '--lookup-attributes', `AttributeKey=EventName,AttributeValue=${name}`]).json?.Events ?? [])
    .map((e: any) => JSON.parse(e.CloudTrailEvent));
  assert.ok(trail('ExecSessionConnected').some((r: any) => r.eventSource === 'ssm.amazonaws.com' && r.serviceEventDetails.sessionId === sessionId));
  await waitFor('the session end in the audit trail', async () => trail('ExecSessionEnded').some((r: any) => r.serviceEventDetails.sessionId === sessionId), 10_000);
  // On disk: sealed values only; the transcript is nowhere in the raw files.
  assert.ok(!rawDatabase().includes(marker), 'the transcript is in the database in clear');
  const db = new Database(join(berth.dataDir, 'berth.db'), { readonly: true });
  try {
    const stored = db.prepare(`SELECT e.message FROM log_events e JOIN log_streams s ON s.id = e.stream_id WHERE s.name = ?`).pluck().all(sessionId) as string[];
    assert.equal(stored.length, 3);
    for (const m of stored) assert.match(m, /^berth:kms:v1:[0-9a-f-]{36}:[A-Za-z0-9+/=]+$/);
  } finally {
    db.close();
  }

  // Disabling the key makes the transcript unreadable (a clear error) and refuses new
  // sessions that would have to be encrypted under it; enabling it again restores both.
  assert.equal(berth.aws(['kms', 'disable-key', '--key-id', KMS]).status, 0);
  await assert.rejects(logs.send(new GetLogEventsCommand({ logGroupName: SESSIONS_GROUP, logStreamName: sessionId, startFromHead: true })),
    (e: any) => e.name === 'DisabledException' && /is disabled; these log events cannot be decrypted until the key is enabled/.test(e.message));
  await assert.rejects(execute('true'), (e: any) => e.name === 'InvalidParameterException' && /kmsKeyId cannot encrypt the session transcript/.test(e.message));
  assert.equal(berth.aws(['kms', 'enable-key', '--key-id', KMS]).status, 0);
  const again = await logs.send(new GetLogEventsCommand({ logGroupName: SESSIONS_GROUP, logStreamName: sessionId, startFromHead: true }));
  assert.equal(again.events!.length, 3);

  // DEFAULT logging without a key: the container's awslogs group, in clear (which also shows
  // the check above would have seen a clear transcript).
  await ecs.send(new UpdateClusterCommand({ cluster, configuration: { executeCommandConfiguration: { logging: 'DEFAULT' } } }));
  const clear = await run('cat /etc/os-release');
  const inContainerGroup = await logs.send(new GetLogEventsCommand({ logGroupName: '/exec-e2e', logStreamName: clear.sessionId, startFromHead: true }));
  assert.deepEqual(inContainerGroup.events!.map((e) => e.message), ['NAME="Berth test OS"', 'ID=berthtest', `VERSION_ID="${marker}"`]);
  assert.equal(record(clear.sessionId).transcript.encrypted, false);
  await waitFor('the clear transcript on disk', async () => rawDatabase().includes(marker), 5_000);
  // NONE: no transcript at all.
  await ecs.send(new UpdateClusterCommand({ cluster, configuration: { executeCommandConfiguration: { logging: 'NONE' } } }));
  const none = await run('true');
  assert.equal(record(none.sessionId).transcript, undefined);
});

test('TargetNotConnectedException while the instance\'s agent is away', async () => {
  const t = await describeTask(ecs, cluster, main);
  const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }))).containerInstances![0]!;
  const pid = agentPid(ci.ec2InstanceId!);
  process.kill(pid, 'SIGSTOP');
  try {
    await waitFor('the agent to count as disconnected', async () => {
      const d = await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }));
      return d.containerInstances![0]!.agentConnected === false;
    }, 15_000, 200);
    await assert.rejects(execute('id'), { name: 'TargetNotConnectedException' });
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await waitFor('the agent back', async () => {
    const d = await ecs.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [t.containerInstanceArn!] }));
    return d.containerInstances![0]!.agentConnected === true;
  }, 15_000, 200);
  assert.equal((await run('true')).exitCode, 0);
});

test('stopping the task ends its sessions', async () => {
  const { client, session } = await open('sleep 1000');
  await waitFor('sleep 1000 running', async () => /sleep 1000/.test(await processes()), 20_000, 200);
  const r = await ecs.send(new RunTaskCommand({ cluster, taskDefinition: 'shell', enableExecuteCommand: true }));
  const spare = r.tasks![0]!.taskArn!;
  await waitForStatus(ecs, cluster, spare, 'RUNNING', 60_000);
  await ecs.send(new StopTaskCommand({ cluster, task: main }));
  await client.waitClosed(30_000);
  client.close();
  assert.ok(['exited', 'task-stopped', 'agent-disconnected'].includes(record(session.sessionId).endReason), record(session.sessionId).endReason);
  await waitForStatus(ecs, cluster, main, 'STOPPED', 30_000);
  await assert.rejects(execute('id'), { name: 'InvalidParameterException', message: /not running/ });
  main = spare;
});

test('the real `aws ecs execute-command` with session-manager-plugin, when it is installed', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v session-manager-plugin']).status !== 0) {
    t.diagnostic('session-manager-plugin is not on PATH: skipped the run of the real aws ecs execute-command (the plugin is not in Debian or npm)');
    process.stdout.write('# SKIPPED: session-manager-plugin is not on PATH, so the real `aws ecs execute-command` was not run\n');
    t.skip('session-manager-plugin is not on PATH');
    return;
  }
  const fips = (() => { try { return readFileSync('/proc/sys/crypto/fips_enabled', 'utf8').trim(); } catch { return '0'; } })();
  const child = spawn('aws', ['ecs', 'execute-command', '--cluster', cluster, '--task', main, '--container', 'app', '--interactive', '--command', 'cat /proc/sys/crypto/fips_enabled'], {
    env: { ...process.env, AWS_ENDPOINT_URL: berth.creds.endpoint, AWS_ACCESS_KEY_ID: berth.creds.accessKeyId, AWS_SECRET_ACCESS_KEY: berth.creds.secretAccessKey, AWS_DEFAULT_REGION: berth.creds.region, AWS_REGION: berth.creds.region },
    stdio: ['pipe', 'pipe', 'pipe'], // stdin stays open: the plugin exits at end-of-file
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  child.stdin.destroy();
  assert.equal(code, 0, out);
  assert.match(out, new RegExp(`(^|\\n)${fips}\\r?\\n`));
  assert.match(out, /Exiting session with sessionId: ecs-execute-command-/);
});

