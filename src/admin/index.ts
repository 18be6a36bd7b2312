// Berth's own administration API (JSON 1.1, target prefix `Berth_20261101`, signing name
// `berth`; model in models/berth.json): the clock (for tests, demos and the simulator),
// platform versions and lifecycle events. The `berth` CLI speaks it.
import type { RequestContext, Handler } from '../api/context.js';
import { ApiError } from '../api/errors.js';
import { VirtualClock, type Clock } from '../domain/clock.js';
import { sk } from '../ecs/common.js';
import type { LifecycleController } from '../lifecycle/controller.js';
import type { PlatformVersions, SecurityFix } from '../lifecycle/platform-versions.js';

export interface AdminOptions {
  clock: Clock;
  platforms: PlatformVersions;
  lifecycle: () => LifecycleController;
  /** Something changed that controllers should look at (a version, the time). */
  changed: () => void;
}

const seconds = (ms: number) => ms / 1000;

export function adminHandlers(o: AdminOptions): Record<string, Handler> {
  const clockView = () => ({
    now: seconds(o.clock.now()),
    mode: o.clock instanceof VirtualClock ? (o.clock.factor === 0 ? 'MANUAL' : 'ACCELERATED') : 'SYSTEM',
    factor: o.clock instanceof VirtualClock ? o.clock.factor : 1,
  });
  const versionView = (v: { version: string; releasedAt: number; securityFix: SecurityFix; description?: string }, latest: string | undefined) =>
    ({ version: v.version, releasedAt: seconds(v.releasedAt), securityFix: v.securityFix, ...(v.description ? { description: v.description } : {}), latest: v.version === latest });
  return {
    GetClock: () => clockView(),
    AdvanceClock: (_ctx: RequestContext, i: { seconds: number }) => {
      if (!(o.clock instanceof VirtualClock)) {
        throw new ApiError('ClockNotAdjustableException', 'The clock follows real time; start Berth with BERTH_CLOCK=manual or BERTH_CLOCK=accelerated:<factor> to move it.');
      }
      if (i.seconds < 0) throw new ApiError('InvalidParameterException', 'Time only moves forward: seconds must be 0 or more.');
      o.clock.advance(i.seconds * 1000);
      o.changed();
      return clockView();
    },
    PublishPlatformVersion: (ctx: RequestContext, i: { version: string; securityFix?: SecurityFix; description?: string }) => {
      if (o.platforms.get(i.version)) throw new ApiError('InvalidParameterException', `Platform version ${i.version} already exists.`);
      const v = o.platforms.publish(i.version, i.securityFix ?? 'NONE', ctx.clock.now(), i.description);
      o.changed();
      return { platformVersion: versionView(v, v.version) };
    },
    ListPlatformVersions: () => {
      const latest = o.platforms.latest()?.version;
      return { platformVersions: o.platforms.all().reverse().map((v) => versionView(v, latest)) };
    },
    ListLifecycleEvents: (ctx: RequestContext, i: { cluster?: string; instanceId?: string; maxResults?: number; nextToken?: string }) => {
      const limit = i.maxResults ?? 100;
      const after = i.nextToken ? Buffer.from(i.nextToken, 'base64url').toString() : undefined;
      const events = o.lifecycle().events(sk(ctx.scope), { ...(i.cluster ? { cluster: i.cluster } : {}), ...(i.instanceId ? { instanceId: i.instanceId } : {}) }, after, limit + 1);
      const page = events.slice(0, limit);
      return {
        events: page.map((e) => ({ ...e, time: seconds(e.time) })),
        ...(events.length > limit ? { nextToken: Buffer.from(page[page.length - 1]!.id).toString('base64url') } : {}),
      };
    },
  };
}
