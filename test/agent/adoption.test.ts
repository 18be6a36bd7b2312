// A restarted agent (here: a new ContainerRuntime on the same data dir) rebuilds every
// container's state from disk after the previous agent was SIGKILLed mid-flight.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ContainerSpec, TaskSpec } from '../../src/agent/protocol.js';
import { LOST_REASON } from '../../src/agent/runtime/containers.js';
import type { PulledImage } from '../../src/agent/runtime/images.js';
import { readLog, START } from '../../src/agent/runtime/logs.js';
import { buildAndPush } from '../helpers/image.js';
import { cannotRunContainers, makeContainer, makeTask, Sandbox } from './fixtures.js';

const childScript = join(fileURLToPath(import.meta.url), '..', 'adopt-child.js');

describe('adoption after the agent is killed', { skip: cannotRunContainers() }, () => {
  const sb = new Sandbox();
  let image: PulledImage;

  before(async () => {
    await sb.start();
    buildAndPush(sb.registry.address, 'busybox:adopt');
    image = await sb.images.pull(`${sb.registry.address}/busybox:adopt`);
  });
  after(() => sb.cleanup());

  /** Runs the child "agent", waits until it created (and maybe started) the container, SIGKILLs it. */
  async function createInDoomedAgent(task: TaskSpec, container: ContainerSpec, start: boolean): Promise<string> {
    const child = spawn(process.execPath, [childScript, JSON.stringify({ dataDir: sb.dataDir, cgroupRoot: sb.cgroupRoot, task, container, digest: image.digest, start })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const id = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /READY (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
    });
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    return id;
  }

  it('a running container is adopted and its exit code and logs are observed later', async () => {
    const task = makeTask();
    const id = await createInDoomedAgent(task, makeContainer({ command: ['sh', '-c', 'echo before; sleep 1; echo after; exit 3'] }), true);
    const rt = sb.newRuntime();
    const listed = (await rt.list()).find((s) => s.id === id);
    assert.equal(listed?.status, 'running');
    assert.equal(listed?.taskArn, task.taskArn);
    assert.equal(listed?.name, 'app');
    const done = await rt.waitForExit(id, 10_000);
    assert.equal(done?.exitCode, 3);
    assert.deepEqual(readLog(done!.logPath, START, { final: true }).events.map((e) => e.message), ['before', 'after']);
    await rt.remove(id);
  });

  it('a created-but-not-started container is reported created and can be started', async () => {
    const task = makeTask();
    const id = await createInDoomedAgent(task, makeContainer({ command: ['sh', '-c', 'exit 5'] }), false);
    const rt = sb.newRuntime();
    assert.equal((await rt.state(id)).status, 'created');
    await rt.start(id);
    assert.equal((await rt.waitForExit(id, 10_000))?.exitCode, 5);
    await rt.remove(id);
  });

  it('an exit that happened while no agent was running is found from the exit file', async () => {
    const task = makeTask();
    const id = await createInDoomedAgent(task, makeContainer({ command: ['sh', '-c', 'exit 9'] }), true);
    await new Promise((r) => setTimeout(r, 300));
    const s = await sb.newRuntime().state(id);
    assert.equal(s.status, 'stopped');
    assert.equal(s.exitCode, 9);
    await sb.runtime.remove(id);
  });

  it('when conmon died too, the container is killed and reported with an unknown exit code', async () => {
    const task = makeTask();
    const id = await createInDoomedAgent(task, makeContainer({ command: ['sleep', '1000'] }), true);
    const conmonPid = Number(readFileSync(join(sb.runtime.layout.bundle(id), 'conmon.pid'), 'utf8'));
    process.kill(conmonPid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const s = await sb.newRuntime().state(id);
    assert.equal(s.status, 'stopped');
    assert.equal(s.exitCode, undefined);
    assert.equal(s.reason, LOST_REASON);
    await sb.runtime.remove(id);
  });
});
