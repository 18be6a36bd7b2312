// The `berth` command.
import { configFromEnv } from '../config.js';
import { clockFromSpec } from '../domain/clock.js';
import { readServerInfo, startBerth } from '../server.js';
import { SqliteStore } from '../store/store.js';
import { Credentials } from '../identity/credentials.js';
import { MasterKey } from '../identity/master-key.js';
import { existsSync } from 'node:fs';
import { LocalInstanceProvider } from '../providers/local/index.js';
import { registryDown, registryUp } from './registry.js';
import { auditCommand } from './audit.js';
import { operatorKey } from './operator-key.js';
import { callAdmin, parseDuration } from './admin-client.js';
import { ExecAudit, type ExecSessionRecord } from '../exec/index.js';
import { join } from 'node:path';
import { recordedServer } from '../server-process.js';

const USAGE = `usage: berth <command>

commands:
  up      start Berth in the foreground (embedded SQLite store, local instances)
  env     print shell exports that point the aws CLI and SDKs at this Berth:
            eval "$(bin/berth env)"
  down    stop Berth and terminate its instances (they outlive the control plane
          otherwise), freeing every host resource they used
  operator-key [--name NAME]
          mint credentials for a fleet operator (prints exports like env): a user of the
          operator account that may assume BerthOperator in customer accounts (instance
          lifecycle, never customer data) and call the berth administration API
  sessions [--json] [--cluster NAME] [--task ID]
          the ECS Exec event history: who opened which session into which container,
          when, the command, how long it lasted, its exit code and why it ended
  clock [advance <duration>]
          show Berth's clock, or move a manual/accelerated clock forward (e.g. 6h, 14d)
  platform list | publish <version> [--security regular|critical] [--description <text>]
          list the instance platform versions, or publish one (older instances get replaced)
  events [--cluster <name>] [--instance <i-…>]
          the lifecycle decisions (drains, repairs, expiries) with their reasons
  audit verify | export [--account ID]
          verify walks the tamper-evident audit trail and names the first record that
          was edited, inserted or deleted; export writes it as JSON lines
  registry up|down
          start (or stop) a local OCI registry on 127.0.0.1:5000 holding busybox:latest,
          built from this machine's busybox, for a first task without any other registry
  help    show this text

environment:
  BERTH_PORT       port to listen on (default 4480)
  BERTH_HOST       address to listen on (default 127.0.0.1)
  BERTH_DATA_DIR   where state is kept (default ./.berth)
  BERTH_REGION     region printed by 'berth env' (default us-east-1)
  BERTH_REGISTRY_PORT  port of 'berth registry' (default 5000)
  BERTH_CLOCK      system (default), manual[:<ISO start>] or accelerated:<factor>[:<ISO start>]
  BERTH_HEARTBEAT_TIMEOUT      seconds an agent may be away before its tasks are replaced (20)
  BERTH_MAX_INSTANCE_LIFETIME  seconds before an instance starts draining (1209600 = 14 days)
  BERTH_DRAIN_GRACE            seconds from drain start to the forced stop (604800 = 7 days)
  BERTH_AGENT_REPAIR_GRACE     seconds auto repair waits for the agent of a live instance (600)
  BERTH_RUNTIME_REPAIR_GRACE   seconds a failing runtime must keep failing before a repair (60)
  BERTH_MASTER_KEY / BERTH_MASTER_KEY_FILE
                   the key sealing secrets at rest (default file ~/.config/berth/master.key)
  BERTH_EXEC_TOKEN_TTL, BERTH_EXEC_IDLE_TIMEOUT, BERTH_EXEC_MAX_SESSION,
  BERTH_EXEC_MAX_SESSIONS_PER_TASK, BERTH_EXEC_RESUME_WINDOW
                   ECS Exec limits (see README.md)
  BERTH_TLS_PORT, BERTH_TLS_CERT, BERTH_TLS_KEY
                   an HTTPS listener for the same API (self-signed certificate by default)
  BERTH_FIPS=1     the HTTPS listener accepts only FIPS-approved TLS versions and suites
  BERTH_DB_RESERVE_MB  MiB kept free inside the database for audit records and StopTask
                   when tasks fill the data disk (32; 0 for none)
  BERTH_METRICS_TOKEN  a bearer token that may read GET /metrics (else a SigV4-signed GET
                   by the administrator)
`;

async function up(): Promise<void> {
  const config = configFromEnv();
  // A promise some code path forgot to handle must not end the control plane (and with it
  // every API caller's answer): it is logged with its stack, and Berth goes on.
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`berth: unhandled rejection (a bug; Berth goes on): ${(e as Error)?.stack ?? String(e)}\n`);
  });
  const berth = await startBerth(config, { clock: clockFromSpec(process.env.BERTH_CLOCK) });
  process.stdout.write(
    `Berth is listening on ${berth.endpoint} (account ${berth.accountId}, data in ${config.dataDir}).\n` +
    (berth.tlsEndpoint ? `TLS endpoint: ${berth.tlsEndpoint}\n` : '') +
    `Point the aws CLI at it from another shell in this folder:\n` +
    `  eval "$(bin/berth env)"\n` +
    `  aws ecs create-cluster --cluster-name demo\n` +
    `Stop with Ctrl-C.\n`,
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void berth.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function env(): void {
  const config = configFromEnv();
  if (!existsSync(join(config.dataDir, 'berth.db'))) {
    process.stderr.write(`berth env: no Berth data in ${config.dataDir}; start it first with 'npm start' (or 'bin/berth up').\n`);
    process.exit(1);
  }
  const store = new SqliteStore(config.dataDir);
  try {
    const admin = new Credentials(store, MasterKey.load({ create: false })).adminKey();
    if (!admin) throw new Error('no administrator key yet; start Berth once with `berth up`');
    const endpoint = readServerInfo(config.dataDir)?.endpoint ?? `http://${config.host}:${config.port}`;
    const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
    process.stdout.write([
      `export AWS_ENDPOINT_URL=${q(endpoint)}`,
      `export AWS_ACCESS_KEY_ID=${q(admin.accessKeyId)}`,
      `export AWS_SECRET_ACCESS_KEY=${q(admin.secret)}`,
      `export AWS_REGION=${q(config.region)}`,
      `export AWS_DEFAULT_REGION=${q(config.region)}`,
      '',
    ].join('\n'));
  } finally {
    store.close();
  }
}

function sessions(args: string[]): void {
  const config = configFromEnv();
  if (!existsSync(join(config.dataDir, 'berth.db'))) {
    process.stderr.write(`berth sessions: no Berth data in ${config.dataDir}.\n`);
    process.exit(1);
  }
  const opt = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
  const cluster = opt('--cluster');
  const task = opt('--task');
  const store = new SqliteStore(config.dataDir);
  try {
    const rows = new ExecAudit(store).all().filter(({ record: r }) =>
      (cluster === undefined || r.cluster === cluster) && (task === undefined || r.taskArn.endsWith(`/${task}`) || r.taskArn === task));
    if (args.includes('--json')) {
      for (const { scope, record } of rows) process.stdout.write(JSON.stringify({ account: scope.split('/')[0], ...record }) + '\n');
      return;
    }
    const table: string[][] = [['REQUESTED (UTC)', 'DURATION', 'EXIT', 'STATUS', 'CLUSTER', 'TASK', 'CONTAINER', 'PRINCIPAL', 'ACCESS KEY', 'COMMAND']];
    for (const { record: r } of rows) table.push(sessionRow(r));
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table) process.stdout.write(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n');
    if (rows.length === 0) process.stdout.write('(no ECS Exec sessions yet)\n');
  } finally {
    store.close();
  }
}

function sessionRow(r: ExecSessionRecord): string[] {
  return [
    new Date(r.requestedAt).toISOString().replace('T', ' ').slice(0, 19),
    r.durationMs !== undefined ? `${(r.durationMs / 1000).toFixed(1)}s` : '-',
    r.exitCode !== undefined ? String(r.exitCode) : '-',
    r.status === 'ACTIVE' ? 'active' : r.endReason ?? 'ended',
    r.cluster,
    r.taskArn.slice(r.taskArn.lastIndexOf('/') + 1),
    r.container,
    // The current owner; a session taken over names who had it before.
    r.previousOwners?.length ? `${r.principalArn} (took over from ${r.previousOwners.map((o) => o.principalArn).join(', ')})` : r.principalArn,
    r.accessKeyId,
    JSON.stringify(r.command),
  ];
}

async function down(): Promise<void> {
  const config = configFromEnv();
  const info = readServerInfo(config.dataDir);
  // Only a pid that is still this Berth gets the signal (not a zombie, not a reused pid).
  if (info && recordedServer(info).running) {
    try {
      process.kill(info.pid, 'SIGTERM');
      for (let i = 0; i < 100 && recordedServer(info).running; i++) await new Promise((r) => setTimeout(r, 100));
    } catch { /* gone */ }
  }
  if (!existsSync(config.dataDir)) return;
  const provider = new LocalInstanceProvider({ dataDir: config.dataDir, log: (l) => process.stderr.write(l + '\n') });
  const problems = await provider.check();
  if (problems.length) {
    process.stdout.write(`Berth is down. (No instances to terminate: ${problems.join('; ')}.)\n`);
    return;
  }
  await provider.prepare();
  const instances = await provider.list();
  await provider.releaseHost();
  process.stdout.write(`Berth is down; ${instances.length} instance(s) terminated. State is kept in ${config.dataDir}.\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command] = argv;
  switch (command) {
    case 'up': await up(); break;
    case 'env': env(); break;
    case 'down': await down(); break;
    case 'sessions': sessions(argv.slice(1)); break;
    case 'operator-key': operatorKey(argv.slice(1)); break;
    case 'audit': process.exitCode = auditCommand(configFromEnv().dataDir, argv.slice(1)); break;
    case 'clock': {
      const { dataDir, region } = configFromEnv();
      const out = argv[1] === 'advance'
        ? await callAdmin(dataDir, region, 'AdvanceClock', { seconds: parseDuration(argv[2] ?? '') })
        : await callAdmin(dataDir, region, 'GetClock');
      process.stdout.write(`${new Date(out.now * 1000).toISOString()} (${out.mode}${out.mode === 'ACCELERATED' ? ` ×${out.factor}` : ''})\n`);
      break;
    }
    case 'platform': {
      const { dataDir, region } = configFromEnv();
      if (argv[1] === 'publish') {
        const flag = (name: string) => { const i = argv.indexOf(`--${name}`); return i > 0 ? argv[i + 1] : undefined; };
        const security = (flag('security') ?? 'none').toUpperCase();
        const out = await callAdmin(dataDir, region, 'PublishPlatformVersion', { version: argv[2], securityFix: security, ...(flag('description') ? { description: flag('description') } : {}) });
        process.stdout.write(`Published platform version ${out.platformVersion.version} (${out.platformVersion.securityFix}).\n`);
      } else {
        const out = await callAdmin(dataDir, region, 'ListPlatformVersions');
        for (const v of out.platformVersions) process.stdout.write(`${v.version}\t${new Date(v.releasedAt * 1000).toISOString()}\t${v.securityFix}${v.latest ? '\tlatest' : ''}\n`);
      }
      break;
    }
    case 'events': {
      const { dataDir, region } = configFromEnv();
      const flag = (name: string) => { const i = argv.indexOf(`--${name}`); return i > 0 ? argv[i + 1] : undefined; };
      const out = await callAdmin(dataDir, region, 'ListLifecycleEvents', { ...(flag('cluster') ? { cluster: flag('cluster') } : {}), ...(flag('instance') ? { instanceId: flag('instance') } : {}) });
      for (const e of out.events) process.stdout.write(`${new Date(e.time * 1000).toISOString()}\t${e.cluster}\t${e.instanceId}\t${e.action}\t${e.reason}\t${e.message}\n`);
      break;
    }
    case 'registry': {
      const c = { dataDir: configFromEnv().dataDir, port: Number(process.env.BERTH_REGISTRY_PORT ?? 5000) };
      if (argv[1] === 'up') await registryUp(c);
      else if (argv[1] === 'down') registryDown(c);
      else { process.stderr.write('usage: berth registry up|down\n'); process.exit(2); }
      break;
    }
    case undefined: case 'help': case '--help': case '-h': process.stdout.write(USAGE); break;
    default:
      process.stderr.write(`berth: unknown command '${command}'\n\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`berth: ${(e as Error).message ?? e}\n`);
  process.exit(1);
});
