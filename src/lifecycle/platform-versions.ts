// The catalog of instance platform releases. Publishing a version makes older instances due
// for replacement (promptly for a critical security fix, in a maintenance window for a
// regular one); new instances always launch on the newest version.
import type { Store } from '../store/store.js';

export type SecurityFix = 'NONE' | 'REGULAR' | 'CRITICAL';

export interface PlatformVersion {
  version: string;
  releasedAt: number;
  securityFix: SecurityFix;
  description?: string;
  seq: number;
}

const KIND = 'platform-version';
const GLOBAL = 'global';
export const INITIAL_PLATFORM_VERSION = '2026.11.0';

export class PlatformVersions {
  constructor(private readonly store: Store) {}

  all(): PlatformVersion[] {
    return this.store.list<PlatformVersion>(KIND, GLOBAL);
  }

  latest(): PlatformVersion | undefined {
    return this.store.list<PlatformVersion>(KIND, GLOBAL, { desc: true, limit: 1 })[0];
  }

  get(version: string): PlatformVersion | undefined {
    return this.all().find((v) => v.version === version);
  }

  /** The first version, once. */
  bootstrap(now: number): PlatformVersion {
    return this.latest() ?? this.publish(INITIAL_PLATFORM_VERSION, 'NONE', now, 'The platform Berth starts with.');
  }

  publish(version: string, securityFix: SecurityFix, now: number, description?: string): PlatformVersion {
    return this.store.tx(() => {
      if (this.get(version)) throw new Error(`Platform version ${version} already exists.`);
      const seq = this.store.nextSequence('platform-version');
      const v: PlatformVersion = { version, releasedAt: now, securityFix, seq, ...(description ? { description } : {}) };
      this.store.put(KIND, GLOBAL, String(seq).padStart(10, '0'), v);
      return v;
    });
  }

  /** The most severe security fix among the versions newer than `version`. */
  pendingPatch(version: string | undefined): { version: string; severity: 'REGULAR' | 'CRITICAL'; releasedAt: number } | undefined {
    const all = this.all();
    const mine = all.find((v) => v.version === version)?.seq ?? 0;
    const newer = all.filter((v) => v.seq > mine && v.securityFix !== 'NONE');
    if (newer.length === 0) return undefined;
    const critical = newer.filter((v) => v.securityFix === 'CRITICAL');
    const pick = (critical.length ? critical : newer)[0]!;
    return { version: pick.version, severity: critical.length ? 'CRITICAL' : 'REGULAR', releasedAt: pick.releasedAt };
  }
}
