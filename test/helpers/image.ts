// Reproducible OCI images for tests, built at test time from the host's static busybox:
// a rootfs dir (busybox + one symlink per applet, /etc/passwd, /etc/group, /tmp), one
// layer tarred with fixed order/owners/mtimes and `gzip -n`, and hand-written config,
// manifest and index.json — the same bytes (so the same digest) on every run.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ImageOptions {
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  user?: string;
  workingDir?: string;
  /** Extra files in the rootfs: path → content (executables: mode 0755). */
  files?: Record<string, string>;
  executables?: Record<string, Buffer>;
}

export interface BuiltImage {
  /** OCI layout dir, tag "latest". */
  layout: string;
  /** Manifest digest. */
  digest: string;
  cleanup(): void;
}

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p)) ?? '/bin/busybox';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
export const GROUP = 'root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n';

export function buildImage(opts: ImageOptions = {}): BuiltImage {
  const work = mkdtempSync(join(tmpdir(), 'berth-image-'));
  const rootfs = join(work, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'root', 'home/app', 'proc', 'sys', 'dev']) mkdirSync(join(rootfs, d), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc', 'passwd'), PASSWD);
  writeFileSync(join(rootfs, 'etc', 'group'), GROUP);
  for (const [p, content] of Object.entries(opts.files ?? {})) {
    const full = join(rootfs, p);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content);
  }
  for (const [p, content] of Object.entries(opts.executables ?? {})) {
    const full = join(rootfs, p);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content, { mode: 0o755 });
    chmodSync(full, 0o755);
  }

  const layout = join(work, 'oci');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const tar = join(work, 'layer.tar');
  execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-C', rootfs, '-cf', tar, '.']);
  const diffId = `sha256:${sha256(readFileSync(tar))}`;
  const gz = execFileSync('gzip', ['-n', '-c', tar], { maxBuffer: 64 * 1024 * 1024 });
  const layerDigest = sha256(gz);
  writeFileSync(join(blobs, layerDigest), gz);

  const cfg: Record<string, unknown> = { Env: opts.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], WorkingDir: opts.workingDir ?? '/' };
  if (opts.cmd) cfg['Cmd'] = opts.cmd;
  else if (!opts.entrypoint) cfg['Cmd'] = ['/bin/sh'];
  if (opts.entrypoint) cfg['Entrypoint'] = opts.entrypoint;
  if (opts.user) cfg['User'] = opts.user;
  const config = JSON.stringify({ created: '1970-01-01T00:00:00Z', architecture: 'amd64', os: 'linux', config: cfg, rootfs: { type: 'layers', diff_ids: [diffId] } });
  const configDigest = sha256(config);
  writeFileSync(join(blobs, configDigest), config);
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: Buffer.byteLength(config) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerDigest}`, size: gz.length }],
  });
  const manifestDigest = sha256(manifest);
  writeFileSync(join(blobs, manifestDigest), manifest);
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${manifestDigest}`, size: Buffer.byteLength(manifest), annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  rmSync(tar);
  rmSync(rootfs, { recursive: true, force: true });
  return { layout, digest: `sha256:${manifestDigest}`, cleanup: () => rmSync(work, { recursive: true, force: true }) };
}

/** Pushes a built image to `registry` (host:port) as `name:tag`; returns the manifest digest. */
export function pushImage(image: BuiltImage, registry: string, nameTag: string): string {
  const digestFile = join(image.layout, '..', 'pushed.digest');
  execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--digestfile', digestFile, `oci:${image.layout}:latest`, `docker://${registry}/${nameTag}`]);
  const digest = readFileSync(digestFile, 'utf8').trim();
  rmSync(digestFile);
  return digest;
}

/** Builds and pushes in one go. */
export function buildAndPush(registry: string, nameTag: string, opts: ImageOptions = {}): string {
  const img = buildImage(opts);
  try { return pushImage(img, registry, nameTag); } finally { img.cleanup(); }
}


/**
 * A static x86-64 Linux program (a hand-assembled ELF, no compiler needed) that makes one raw
 * syscall `nr` with all-zero arguments and exits with the errno it got (0 on success): the
 * way to see what seccomp does to a syscall busybox has no applet for. ENOSYS (38) = blocked
 * by the profile's default action; EPERM (1) = blocked by an ERRNO rule; EFAULT/EINVAL = the
 * kernel ran it and rejected the null arguments.
 */
export function syscallProbe(nr: number): Buffer {
  const base = 0x400000;
  const code = Buffer.from([
    0xb8, nr & 0xff, (nr >> 8) & 0xff, 0, 0, // mov eax, nr
    0x31, 0xff, 0x31, 0xf6, 0x31, 0xd2, // xor edi,edi; xor esi,esi; xor edx,edx
    0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0, 0x45, 0x31, 0xc9, // xor r10d,r10d; xor r8d,r8d; xor r9d,r9d
    0x0f, 0x05, // syscall
    0xf7, 0xd8, // neg eax  (-errno → errno)
    0x85, 0xc0, 0x79, 0x02, 0x31, 0xc0, // test eax,eax; jns +2; xor eax,eax (success → 0)
    0x89, 0xc7, // mov edi, eax
    0xb8, 60, 0, 0, 0, // mov eax, 60 (exit)
    0x0f, 0x05, // syscall
  ]);
  const headerSize = 64 + 56;
  const elf = Buffer.alloc(headerSize + code.length);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(elf, 0); // ELF64, little-endian, SysV
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BigInt(base + headerSize), 24); // entry
  elf.writeBigUInt64LE(64n, 32); // program headers right after the ELF header
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt32LE(1, 64); // PT_LOAD
  elf.writeUInt32LE(5, 68); // R+X
  elf.writeBigUInt64LE(0n, 72);
  elf.writeBigUInt64LE(BigInt(base), 80);
  elf.writeBigUInt64LE(BigInt(base), 88);
  elf.writeBigUInt64LE(BigInt(elf.length), 96);
  elf.writeBigUInt64LE(BigInt(elf.length), 104);
  elf.writeBigUInt64LE(0x1000n, 112);
  code.copy(elf, headerSize);
  return elf;
}

/** Syscall numbers on x86-64. */
export const SYS = { add_key: 248, bpf: 321, getpid: 39 } as const;
