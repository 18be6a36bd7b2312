// Starts a real Berth process for a test, with its own data dir and master key, and
// gives the test real clients: @aws-sdk/client-ecs and the aws CLI on the machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ECSClient } from '@aws-sdk/client-ecs';

export const repoRoot = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export interface Creds { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string }

export class BerthProcess {
  child!: ChildProcess;
  creds!: Creds;
  output = '';

  constructor(readonly dataDir: string, readonly extraEnv: Record<string, string> = {}) {}

  get env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      BERTH_DATA_DIR: this.dataDir,
      BERTH_PORT: '0',
      BERTH_MASTER_KEY_FILE: join(this.dataDir, '..', 'master.key'),
      ...this.extraEnv,
    };
  }

  async start(): Promise<this> {
    this.child = spawn(process.execPath, ['--enable-source-maps', cli, 'up'], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`Berth did not start: ${this.output}`)), 20_000);
      const onData = (d: Buffer) => {
        this.output += d.toString();
        if (/listening on http/.test(this.output)) { clearTimeout(timer); ok(); }
      };
      this.child.stdout!.on('data', onData);
      this.child.stderr!.on('data', (d: Buffer) => { this.output += d.toString(); });
      this.child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`Berth exited with ${code}: ${this.output}`)); });
    });
    this.child.removeAllListeners('exit');
    this.creds = this.readCreds();
    return this;
  }

  private readCreds(): Creds {
    const r = spawnSync(process.execPath, [cli, 'env'], { env: this.env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`berth env failed: ${r.stderr}`);
    const get = (name: string) => new RegExp(`^export ${name}='([^']*)'$`, 'm').exec(r.stdout)?.[1] ?? '';
    return {
      endpoint: get('AWS_ENDPOINT_URL'), accessKeyId: get('AWS_ACCESS_KEY_ID'),
      secretAccessKey: get('AWS_SECRET_ACCESS_KEY'), region: get('AWS_REGION'),
    };
  }

  ecs(region = this.creds.region, creds: Partial<Creds> = {}): ECSClient {
    return new ECSClient({
      endpoint: this.creds.endpoint,
      region,
      credentials: { accessKeyId: creds.accessKeyId ?? this.creds.accessKeyId, secretAccessKey: creds.secretAccessKey ?? this.creds.secretAccessKey },
      maxAttempts: 1,
    });
  }

  /** Runs the machine's `aws` CLI against this Berth; parses JSON output when there is some. */
  aws(args: string[], opts: { region?: string; env?: Record<string, string> } = {}): { status: number; stdout: string; stderr: string; json: any } {
    const r = spawnSync('aws', [...args, '--output', 'json'], {
      encoding: 'utf8',
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: this.creds.endpoint,
        AWS_ACCESS_KEY_ID: this.creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: this.creds.secretAccessKey,
        AWS_DEFAULT_REGION: opts.region ?? this.creds.region,
        AWS_REGION: opts.region ?? this.creds.region,
        AWS_MAX_ATTEMPTS: '1',
        ...opts.env,
      },
    });
    let json: any;
    try { json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined; } catch { json = undefined; }
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json };
  }

  /** Runs the `berth` CLI against this Berth (e.g. `clock advance 6h`). */
  cli(args: string[]): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [cli, ...args], { env: this.env, encoding: 'utf8' });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Kills the process (SIGKILL by default) and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((ok) => { this.child.once('exit', () => ok()); this.child.kill(signal); });
  }
}

export interface TestBerth extends BerthProcess { cleanup(): Promise<void> }

/** A fresh Berth in a temporary folder; call cleanup() when done. */
export async function startTestBerth(extraEnv: Record<string, string> = {}): Promise<TestBerth> {
  const root = mkdtempSync(join(tmpdir(), 'berth-test-'));
  const b = new BerthProcess(join(root, 'data'), extraEnv) as TestBerth;
  b.cleanup = async () => {
    await b.kill('SIGTERM');
    // Instances outlive the control plane: terminate them and free the host slot.
    spawnSync(process.execPath, [cli, 'down'], { env: b.env, encoding: 'utf8' });
    rmSync(root, { recursive: true, force: true });
  };
  await b.start();
  return b;
}
