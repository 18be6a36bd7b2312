// Reproducible OCI images built from the host's static busybox (Debian's busybox-static),
// for tests and for `berth registry`, with nothing downloaded:
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

