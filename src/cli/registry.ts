// `berth registry up|down`: a local OCI registry (Debian's docker-registry) on the host's
// loopback, with a busybox image pushed, for trying Berth on a machine with no registry.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAndPush } from '../tools/busybox-image.js';

export interface RegistryConfig { dataDir: string; port: number }

const pidFile = (c: RegistryConfig) => join(c.dataDir, 'registry', 'pid');

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function waitUntilServing(address: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try { if ((await fetch(`http://${address}/v2/`)).status === 200) return true; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function registryUp(c: RegistryConfig): Promise<void> {
  const address = `127.0.0.1:${c.port}`;
  const dir = join(c.dataDir, 'registry');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const running = existsSync(pidFile(c)) && alive(Number(readFileSync(pidFile(c), 'utf8')));
  if (!running) {
    const config = join(dir, 'config.yml');
    writeFileSync(config, [
      'version: 0.1',
      'log: {level: error, accesslog: {disabled: true}}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}, delete: {enabled: true}}`,
      `http: {addr: ${address}}`,
      '',
    ].join('\n'));
    const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore', detached: true });
    child.unref();
    writeFileSync(pidFile(c), String(child.pid));
    if (!(await waitUntilServing(address, 10_000))) throw new Error(`docker-registry did not start on ${address} (is the port free?)`);
  }
  const digest = buildAndPush(address, 'busybox:latest');
  process.stdout.write(
    `A registry is listening on ${address} with ${address}/busybox:latest (${digest}).\n` +
    `Instances reach loopback registries through Berth, so use the image name as it is, e.g.\n` +
    `  aws ecs register-task-definition --family hello --requires-compatibilities MANAGED_INSTANCES \\\n` +
    `    --container-definitions '[{"name":"hello","image":"${address}/busybox:latest","memory":32,"command":["echo","hello"]}]'\n`,
  );
}

export function registryDown(c: RegistryConfig): void {
  if (!existsSync(pidFile(c))) { process.stdout.write('No registry is running.\n'); return; }
  const pid = Number(readFileSync(pidFile(c), 'utf8'));
  if (alive(pid)) process.kill(pid, 'SIGTERM');
  rmSync(pidFile(c), { force: true });
  process.stdout.write(`Stopped the registry (pid ${pid}); its images stay in ${join(c.dataDir, 'registry', 'data')}.\n`);
}
