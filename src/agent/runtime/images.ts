// Image pulls for one instance: skopeo copies into one OCI layout under the instance's data
// dir (so layers shared by images are stored once), verified by digest, and each manifest
// digest is unpacked once with `umoci raw unpack` into a read-only lower dir that every
// container of that image overlays.
//
// A tag is first resolved to the registry's manifest digest (`skopeo inspect --raw`, hashed
// here), and then the digest is copied, so what is unpacked is exactly what was resolved even
// if the tag moves meanwhile; a reference that names a digest must match it.
//
// On an instance skopeo runs in the instance's pull network namespace (`pullNetns`, entered
// with `nsenter --net`): the only place the registry relays admit, and one no container joins.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CannotPullContainerError } from './errors.js';
import { CommandError, run } from './exec.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { parseImageRef, pullSource, type ImageRef } from './image-ref.js';
import { Mutex } from './mutex.js';

export interface PulledImage {
  /** The reference as the task definition wrote it. */
  ref: string;
  /** The registry's manifest digest (what ECS reports as imageDigest). */
  digest: string;
  /** Unpacked root filesystem: the read-only lower layer of every container of this image. */
  rootfs: string;
  config: ImageConfig;
}

export interface ImageStoreOptions {
  /** The instance's data dir; images live in <dataDir>/images. */
  dataDir: string;
  skopeo?: string;
  umoci?: string;
  /** A network namespace (path, e.g. /run/netns/…) skopeo runs in; unset: this process's own. */
  pullNetns?: string;
  nsenter?: string;
  /** Registry host[:port] as written in image names → address to dial instead (plain HTTP). */
  registryForwards?: Record<string, string>;
  /** Registries (as named, or their dialled address) spoken to over HTTP or unverified TLS. */
  insecureRegistries?: string[];
  timeoutMs?: number;
  /** How long a tag's resolved digest is reused before the registry is asked again (ms). */
  tagCacheMs?: number;
}

/** A tag is resolved against its registry at most this often per instance. */
export const DEFAULT_TAG_CACHE_MS = 30_000;

const MANIFEST_LIST_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
]);

export class ImageStore {
  private readonly tags = new Map<string, { digest: string; at: number }>();
  private readonly root: string;
  private readonly layout: string;
  private readonly tmp: string;
  private readonly lock = new Mutex();
  private readonly inflight = new Map<string, Promise<PulledImage>>();
  private forwards: Record<string, string>;
  private readonly insecure: string[];

  constructor(private readonly opts: ImageStoreOptions) {
    this.root = join(opts.dataDir, 'images');
    this.layout = join(this.root, 'oci');
    this.tmp = join(this.root, 'tmp');
    if (this.layout.includes(':')) throw new Error(`the data dir path must not contain ':' (skopeo's oci: syntax): ${opts.dataDir}`);
    this.forwards = { ...(opts.registryForwards ?? {}) };
    this.insecure = [...(opts.insecureRegistries ?? [])];
    mkdirSync(join(this.root, 'unpacked'), { recursive: true });
    // Tools write temp files; on an instance the root is read-only, so they go in the data dir.
    rmSync(this.tmp, { recursive: true, force: true });
    mkdirSync(this.tmp, { recursive: true });
  }

  /** The control plane's latest loopback forwards (sent with each desired state). */
  setRegistryForwards(forwards: Record<string, string>): void {
    this.forwards = { ...forwards };
  }

  /** Pulls (or finds) an image; concurrent pulls of the same reference share one pull. */
  pull(ref: string): Promise<PulledImage> {
    let parsed: ImageRef;
    try { parsed = parseImageRef(ref); } catch (e) { return Promise.reject(e); }
    const key = `${parsed.registry}/${parsed.repository}:${parsed.tag ?? ''}@${parsed.digest ?? ''}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.pullOnce(parsed).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** An image already unpacked here, by manifest digest. */
  get(digest: string, ref = digest): PulledImage | undefined {
    const dir = this.unpackedDir(digest);
    try {
      const meta = JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')) as { digest: string; config: ImageConfig };
      return { ref, digest: meta.digest, rootfs: join(dir, 'rootfs'), config: meta.config };
    } catch {
      return undefined;
    }
  }

  private unpackedDir(digest: string): string {
    return join(this.root, 'unpacked', digest.replace(/^sha256:/, ''));
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, TMPDIR: this.tmp };
  }

  /** skopeo with `args`, in the pull namespace when there is one. */
  private skopeo(args: string[]): Promise<{ stdout: string }> {
    const skopeo = this.opts.skopeo ?? 'skopeo';
    const timeoutMs = this.opts.timeoutMs ?? 10 * 60_000;
    const [bin, argv] = this.opts.pullNetns
      ? [this.opts.nsenter ?? 'nsenter', [`--net=${this.opts.pullNetns}`, '--', skopeo, ...args]]
      : [skopeo, args];
    return run(bin, argv, { timeoutMs, env: this.env() });
  }

  private async pullOnce(ref: ImageRef): Promise<PulledImage> {
    // Content named by digest needs no registry once it is here; a tag resolved lately is
    // trusted for tagCacheMs (a burst of task starts asks the registry once).
    if (ref.digest) {
      const local = this.get(ref.digest, ref.original);
      if (local) return local;
    } else {
      const known = this.tags.get(ref.original);
      if (known && Date.now() - known.at < (this.opts.tagCacheMs ?? DEFAULT_TAG_CACHE_MS)) {
        const local = this.get(known.digest, ref.original);
        if (local) return local;
      }
    }
    const pulled = await this.resolveAndPull(ref);
    if (!ref.digest) this.tags.set(ref.original, { digest: pulled.digest, at: Date.now() });
    return pulled;
  }

  private async resolveAndPull(ref: ImageRef): Promise<PulledImage> {
    const timeoutMs = this.opts.timeoutMs ?? 10 * 60_000;
    const source = pullSource(ref, this.forwards, this.insecure);
    // 1. Resolve the manifest digest (exact bytes hashed here: this is the verification).
    let raw: string;
    try {
      ({ stdout: raw } = await this.skopeo(['inspect', '--raw', `--tls-verify=${source.tlsVerify}`, source.reference]));
    } catch (e) {
      throw pullError(ref, source.address, e);
    }
    const digest = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
    if (ref.digest && ref.digest !== digest) {
      throw new CannotPullContainerError(`${ref.original}: manifest digest mismatch: the registry at ${source.address} served content with digest ${digest}`, 'digest-mismatch');
    }
    const cached = this.get(digest, ref.original);
    if (cached) return cached;

    return this.lock.run(async () => {
      const again = this.get(digest, ref.original);
      if (again) return again;
      const pinned = pullSource(ref, this.forwards, this.insecure, digest);
      const name = `sha256-${digest.slice('sha256:'.length)}`;
      const digestFile = join(this.tmp, `${name}.digest`);
      try {
        await this.skopeo(['copy', '--quiet', `--src-tls-verify=${pinned.tlsVerify}`, '--digestfile', digestFile,
          pinned.reference, `oci:${this.layout}:${name}`]);
      } catch (e) {
        throw pullError(ref, pinned.address, e);
      }
      // A manifest list was resolved to this platform's manifest: that one is in the layout.
      const localDigest = readFileSync(digestFile, 'utf8').trim();
      rmSync(digestFile, { force: true });
      const manifest = JSON.parse(this.blob(localDigest)) as { config: { digest: string }; mediaType?: string };
      if (MANIFEST_LIST_TYPES.has(manifest.mediaType ?? '')) throw new CannotPullContainerError(`${ref.original}: no image for this platform`, 'not-found');
      const config = parseImageConfig(this.blob(manifest.config.digest));

      // 2. Unpack once per digest, into a temp dir renamed into place (a crash leaves no half rootfs).
      const staging = join(this.root, 'unpacked', `.staging-${randomBytes(6).toString('hex')}`);
      try {
        mkdirSync(staging);
        await run(this.opts.umoci ?? 'umoci', ['raw', 'unpack', '--image', `${this.layout}:${name}`, join(staging, 'rootfs')], { timeoutMs, env: this.env() });
        writeFileSync(join(staging, 'image.json'), JSON.stringify({ ref: ref.original, digest, manifest: localDigest, config }));
        renameSync(staging, this.unpackedDir(digest));
      } catch (e) {
        rmSync(staging, { recursive: true, force: true });
        throw new CannotPullContainerError(`${ref.original}: failed to unpack: ${e instanceof Error ? e.message : String(e)}`, 'other');
      }
      return this.get(digest, ref.original)!;
    });
  }

  private blob(digest: string): string {
    const [alg, hex] = digest.split(':');
    return readFileSync(join(this.layout, 'blobs', alg!, hex!), 'utf8');
  }

  /** Whether an image is unpacked here. */
  has(digest: string): boolean {
    return existsSync(join(this.unpackedDir(digest), 'image.json'));
  }
}

/** skopeo's words → ECS-style CannotPullContainerError with a kind callers can act on. */
export function pullError(ref: ImageRef, address: string, e: unknown): CannotPullContainerError {
  const text = e instanceof CommandError ? e.stderr || e.message : String(e);
  // skopeo logs `time="..." level=fatal msg="<escaped message>"`: keep the message only.
  const line = text.trim().split('\n').pop() ?? text;
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
  const detail = msg !== undefined ? msg.replace(/\\(.)/g, '$1') : line;
  if (/does not match|digest mismatch/i.test(text)) {
    return new CannotPullContainerError(`${ref.original}: manifest digest mismatch: ${detail}`, 'digest-mismatch');
  }
  if (/manifest unknown|name unknown|not found|NAME_UNKNOWN|MANIFEST_UNKNOWN/i.test(text)) {
    return new CannotPullContainerError(`${ref.original}: not found: ${detail}`, 'not-found');
  }
  if (/unauthorized|authentication required|denied/i.test(text)) {
    return new CannotPullContainerError(`${ref.original}: access denied by the registry: ${detail}`, 'unauthorized');
  }
  if (/connection refused|no such host|i\/o timeout|network is unreachable|no route to host|dial tcp|server gave HTTP response|certificate|timeout/i.test(text)) {
    return new CannotPullContainerError(`${ref.original}: registry ${address} unreachable: ${detail}`, 'unreachable');
  }
  return new CannotPullContainerError(`${ref.original}: ${detail}`, 'other');
}
