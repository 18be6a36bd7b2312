// What the end-to-end benchmarks share: numeric flags, and a registry holding busybox plus a
// Berth (started as the tests start it) that are cleaned up however the run ends.
import { startTestBerth, type TestBerth } from '../test/helpers/berth.js';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { buildAndPush } from '../test/helpers/image.js';

/** `--name N` from the command line, or `dflt`. */
export function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** Runs `fn` against a fresh registry (busybox:latest pushed) and Berth; both go at the end, or on Ctrl-C. */
export async function withBerth(env: Record<string, string>, fn: (berth: TestBerth, registry: TestRegistry) => Promise<void>): Promise<void> {
  let registry: TestRegistry | undefined;
  let berth: TestBerth | undefined;
  const cleanup = async () => { await berth?.cleanup(); await registry?.stop(); };
  process.on('SIGINT', () => { void cleanup().then(() => process.exit(130)); });
  try {
    registry = await startRegistry();
    buildAndPush(registry.address, 'busybox:latest');
    berth = await startTestBerth(env);
    await fn(berth, registry);
  } finally {
    await cleanup();
  }
}
