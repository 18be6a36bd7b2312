// Parsing image references the way Docker normalises them ("busybox" is
// docker.io/library/busybox:latest; a first component with '.' or ':' or "localhost" is a
// registry), and choosing where to pull from: the control plane's loopback forwards (a host
// registry on 127.0.0.1 is unreachable from the instance's netns, so it is forwarded to an
// address the instance can reach), and whether TLS is verified.
import { CannotPullContainerError } from './errors.js';

export interface ImageRef {
  /** As written in the task definition. */
  original: string;
  /** Registry host[:port] as named in the reference (docker.io for Docker Hub). */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

export function parseImageRef(ref: string): ImageRef {
  const bad = (why: string) => new CannotPullContainerError(`invalid reference format: ${ref}: ${why}`, 'invalid-reference');
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('digest must be sha256:<64 lowercase hex>');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`bad tag '${tag}'`);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost')) {
    registry = parts.shift()!;
  }
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  if (!parts.length || !parts.every((p) => COMPONENT.test(p))) throw bad('repository names are lowercase letters, digits and separators');
  if (!tag && !digest) tag = 'latest';
  return { original: ref, registry, repository: parts.join('/'), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export interface PullSource {
  /** skopeo transport reference: docker://host/repo:tag or @digest. */
  reference: string;
  /** Address actually dialled. */
  address: string;
  tlsVerify: boolean;
}

/** Docker treats registries on 127.0.0.0/8 (and localhost, ::1) as insecure by default. */
export function isLoopback(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.split(':')[0]!;
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Forwarded (loopback) registries are dialled at their forward address over plain HTTP, as
 * Docker allows for registries on 127.0.0.0/8; so are loopback registries dialled directly
 * (an agent running on the host itself); others use TLS unless listed as insecure.
 */
export function pullSource(ref: ImageRef, forwards: Record<string, string>, insecure: readonly string[], digest?: string): PullSource {
  const forward = forwards[ref.registry];
  const address = forward ?? (ref.registry === 'docker.io' ? 'docker.io' : ref.registry);
  const tlsVerify = !forward && !isLoopback(ref.registry) && !insecure.includes(ref.registry) && !insecure.includes(address);
  const pin = digest ?? ref.digest;
  const reference = `docker://${address}/${ref.repository}${pin ? `@${pin}` : `:${ref.tag}`}`;
  return { reference, address, tlsVerify };
}
