// Task storage (loop-mounted ext4 images) and host volumes resolved inside the instance's
// volume area, with real mounts on this host (root).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CannotStartContainerError } from '../../src/agent/runtime/errors.js';
import { sourcePathComponents, stageHostVolume } from '../../src/agent/runtime/host-volumes.js';
import { isMounted, unmountAllUnder } from '../../src/agent/runtime/overlay.js';
import { SpareFilesystem, ensureLoopFilesystem, parseStorageGiB, removeLoopFilesystem, type LoopFilesystem } from '../../src/agent/runtime/storage.js';

describe('sourcePath components', () => {
  it('splits absolute paths and refuses ".", ".." and the root', () => {
    assert.deepEqual(sourcePathComponents('/var/lib//app/'), { components: ['var', 'lib', 'app'] });
    for (const bad of ['/var/lib/../..', '/tmp/./x', 'tmp/x', '/']) assert.ok('problem' in sourcePathComponents(bad), bad);
  });

  it('parses storage sizes in GiB', () => {
    assert.equal(parseStorageGiB(undefined), 20 * 1024 ** 3);
    assert.equal(parseStorageGiB('0.25'), 0.25 * 1024 ** 3);
    assert.throws(() => parseStorageGiB('lots'), /GiB/);
  });
});

describe('loop filesystems and host volumes (real mounts)', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, () => {
  let dir: string;
  let area: LoopFilesystem;
  const loops = () => execFileSync('losetup', ['-a'], { encoding: 'utf8' });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'brt-storage-'));
    area = { image: join(dir, 'storage', 'area.img'), mountPoint: join(dir, 'area'), sizeBytes: 32 * 1024 * 1024 };
    await ensureLoopFilesystem(area);
  });
  after(async () => {
    await unmountAllUnder(dir).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('is bounded, nodev and nosuid, mounted once, and leaves no loop device when removed', async () => {
    const fs: LoopFilesystem = { image: join(dir, 'storage', 't.img'), mountPoint: join(dir, 't'), sizeBytes: 24 * 1024 * 1024 };
    await ensureLoopFilesystem(fs);
    await ensureLoopFilesystem(fs); // adoption: already mounted, nothing to do
    assert.equal(loops().split(fs.image).length, 2, loops());
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === fs.mountPoint)!;
    assert.match(line.split(' ')[5]!, /nosuid/);
    assert.match(line.split(' ')[5]!, /nodev/);
    assert.ok(statSync(fs.image).blocks * 512 < 8 * 1024 * 1024, 'the image is sparse');
    assert.throws(() => execFileSync('dd', ['if=/dev/zero', `of=${fs.mountPoint}/big`, 'bs=1M', 'count=64'], { stdio: 'pipe' }), /No space left/);
    // A lost mount (the image is still there) is mounted again with its data.
    execFileSync('umount', [fs.mountPoint]);
    await ensureLoopFilesystem(fs);
    assert.ok(existsSync(`${fs.mountPoint}/big`));
    await removeLoopFilesystem(fs);
    assert.equal(isMounted(fs.mountPoint), false);
    assert.equal(existsSync(fs.image), false);
    assert.equal(loops().includes(fs.image), false, loops());
  });

  it('keeps one filesystem mounted ahead: a task takes it by rename and bind, and another is made behind it', async () => {
    const spares = join(dir, 'spares');
    const size = 20 * 1024 * 1024;
    mkdirSync(spares);
    writeFileSync(join(spares, 'spare.img'), 'another size'); // discarded
    const spare = new SpareFilesystem(spares, size);
    spare.replenish();
    await spare.idle();
    const ino = statSync(join(spares, 'spare.img')).ino;
    assert.equal(statSync(join(spares, 'spare.img')).size, size);
    const fs: LoopFilesystem = { image: join(spares, 'task.img'), mountPoint: join(dir, 'from-spare'), sizeBytes: size };
    await ensureLoopFilesystem(fs, spare);
    assert.equal(statSync(fs.image).ino, ino, 'the spare itself became the task image');
    assert.ok(isMounted(fs.mountPoint));
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === fs.mountPoint)!;
    assert.match(line.split(' ')[5]!, /nodev/);
    assert.match(line.split(' ')[5]!, /nosuid/);
    assert.equal(loops().split(fs.image).length, 2, `one loop device, following the renamed file:\n${loops()}`);
    await spare.idle();
    assert.ok(isMounted(join(spares, 'spare.mnt')), 'a new spare was made');
    assert.notEqual(statSync(join(spares, 'spare.img')).ino, ino);
    await removeLoopFilesystem(fs);
    assert.equal(loops().includes(fs.image), false, loops());
    await spare.remove();
    assert.equal(loops().includes(spares), false, loops());
  });

  it('resolves a sourcePath inside the area, made when missing, shared by whoever names it', async () => {
    const a = join(dir, 'mnt-a');
    const b = join(dir, 'mnt-b');
    await stageHostVolume(area.mountPoint, '/var/lib/app', a);
    await stageHostVolume(area.mountPoint, '/var/lib/app', b);
    await stageHostVolume(area.mountPoint, '/var/lib/app', b); // already bound: nothing to do
    writeFileSync(join(a, 'f'), 'shared');
    assert.equal(readFileSync(join(b, 'f'), 'utf8'), 'shared');
    assert.equal(readFileSync(join(area.mountPoint, 'var', 'lib', 'app', 'f'), 'utf8'), 'shared');
    await unmountAllUnder(a);
    await unmountAllUnder(b);
  });

  it('never follows a symlink a task planted, wherever it points', async () => {
    mkdirSync(join(area.mountPoint, 'tmp', 'shared'), { recursive: true });
    symlinkSync('/', join(area.mountPoint, 'tmp', 'shared', 'abs'));
    symlinkSync('../../..', join(area.mountPoint, 'tmp', 'shared', 'rel'));
    symlinkSync('/tmp/shared', join(area.mountPoint, 'tmp', 'inside'));
    for (const src of ['/tmp/shared/abs', '/tmp/shared/abs/etc', '/tmp/shared/rel/x', '/tmp/inside/x']) {
      const target = join(dir, 'mnt-link');
      await assert.rejects(stageHostVolume(area.mountPoint, src, target), (e: Error) => e instanceof CannotStartContainerError && /symbolic link/.test(e.message), src);
      assert.equal(isMounted(target), false);
    }
    await assert.rejects(stageHostVolume(area.mountPoint, '/tmp/../..', join(dir, 'mnt-dots')), /'\.\.'/);
    writeFileSync(join(area.mountPoint, 'tmp', 'file'), '');
    await assert.rejects(stageHostVolume(area.mountPoint, '/tmp/file', join(dir, 'mnt-file')), /not a directory/);
  });

  it('refuses a directory on another filesystem than the area', async () => {
    const other = join(area.mountPoint, 'var', 'other');
    mkdirSync(other, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', other]);
    try {
      await assert.rejects(stageHostVolume(area.mountPoint, '/var/other', join(dir, 'mnt-other')), /outside the instance's volume area/);
    } finally {
      execFileSync('umount', [other]);
    }
  });
});
