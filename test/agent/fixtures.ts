// Shared set-up for the runtime tests: task/container specs with ECS's defaults, and a
// sandbox (temp data dir, a private cgroup root under /berth-test, a test registry) that
// removes every container, mount and cgroup it made, even when a test failed.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerSpec, TaskSpec } from '../../src/agent/protocol.js';
import { ContainerRuntime, type ContainerRuntimeOptions } from '../../src/agent/runtime/containers.js';
import { ImageStore } from '../../src/agent/runtime/images.js';
import { removeCgroup, removeCgroupTree } from '../../src/agent/runtime/cgroups.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/** Why the real-container tests cannot run here, or false when they can. */
export function cannotRunContainers(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (runc, overlay mounts, cgroups)';
  for (const bin of ['runc', 'conmon', 'skopeo', 'umoci', 'docker-registry']) {
    try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); } catch { return `needs ${bin} (scripts/setup.sh installs it as root)`; }
  }
  if (process.arch !== 'x64') return 'the syscall probes are x86-64';
  return false;
}

export function makeTask(over: Partial<TaskSpec> = {}): TaskSpec {
  const taskId = over.taskId ?? randomBytes(16).toString('hex');
  return {
    taskArn: `arn:aws:ecs:us-east-1:123456789012:task/test/${taskId}`, taskId, family: 'test', revision: 1,
    desiredStatus: 'RUNNING', networkMode: 'host', containers: [], volumes: [], allowedPrivilegedCapabilities: [],
    enableExecuteCommand: false, ...over,
  };
}

export function makeContainer(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: 'app', image: 'unused', environment: [], essential: true, cpu: 0, readonlyRootFilesystem: false,
    privileged: false, capabilitiesAdd: [], capabilitiesDrop: [], initProcessEnabled: false, stopTimeoutSeconds: 30,
    portMappings: [], ulimits: [], dependsOn: [], mountPoints: [], log: { group: 'g', stream: 's' },
    pseudoTerminal: false, interactive: false, ...over,
  };
}

export class Sandbox {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'brt-'));
  readonly cgroupRoot = `/berth-test/${randomBytes(4).toString('hex')}`;
  registry!: TestRegistry;
  images!: ImageStore;
  runtime!: ContainerRuntime;
  private runtimes: ContainerRuntime[] = [];

  async start(withRegistry = true): Promise<this> {
    if (withRegistry) this.registry = await startRegistry();
    this.images = new ImageStore({ dataDir: this.dataDir });
    this.runtime = this.newRuntime();
    return this;
  }

  /** Another runtime on the same data dir: what a restarted agent would build. */
  newRuntime(over: Partial<ContainerRuntimeOptions> = {}): ContainerRuntime {
    const rt = new ContainerRuntime({ dataDir: this.dataDir, cgroupRoot: this.cgroupRoot, exitScanIntervalMs: 200, ...over });
    this.runtimes.push(rt);
    return rt;
  }

  /** Removes everything, whatever state the tests left it in. */
  async cleanup(): Promise<void> {
    const rt = this.runtimes[0] ?? this.newRuntime();
    for (const s of await rt.list().catch(() => [])) await rt.remove(s.id).catch(() => undefined);
    for (const r of this.runtimes) r.close();
    // Belt and braces: anything still mounted below the data dir.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(this.dataDir));
    for (const m of mounts.sort().reverse()) { try { execFileSync('umount', ['-l', m]); } catch { /* already gone */ } }
    removeCgroupTree(this.cgroupRoot);
    removeCgroup('/berth-test'); // the shared parent: goes once no parallel test file uses it
    await this.registry?.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
