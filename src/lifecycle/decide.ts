// Instance lifecycle as one pure decision: given an instance, the time, its maintenance
// windows, the policy and the disruption budget, what happens next and when to look again.
// Like Karpenter's disruption methods, each reason is checked in a fixed priority order:
// hard deadline, repair, maximum lifetime, critical patch, patch in a window, early
// replacement in the last window before the deadline.
import { lastOpeningBefore, nextOpening, openAt, type WeeklyInterval } from '../domain/event-windows.js';

export const DAY_MS = 86_400_000;

export interface LifecyclePolicy {
  /** Draining starts at the latest this old (AWS: 14 days). */
  maxLifetimeMs: number;
  /** After draining starts, whatever still runs is stopped this much later (AWS: 7 days). */
  drainGraceMs: number;
  /** Replace impaired instances (autoRepairConfiguration.actionsStatus ENABLED). */
  autoRepair: boolean;
}

export const DEFAULT_POLICY: LifecyclePolicy = { maxLifetimeMs: 14 * DAY_MS, drainGraceMs: 7 * DAY_MS, autoRepair: true };

export interface LifecycleInstance {
  launchedAt: number;
  /** Set once the instance started draining (by lifecycle or a user). */
  drainStartedAt?: number;
  /**
   * A failed health check. `unconfirmed` says why the instance may still be fine (its host
   * still runs it, the failure is too recent): auto repair then waits instead of replacing.
   */
  impaired?: { check: string; reason: string; unconfirmed?: string };
  /** The most severe fix in the platform versions newer than the instance's. */
  pendingPatch?: { version: string; severity: 'REGULAR' | 'CRITICAL'; releasedAt: number };
  /** The instance has no task left (not STOPPED). */
  empty: boolean;
}

export type LifecycleReason = 'hard-deadline' | 'drained' | 'repair' | 'expiry' | 'critical-patch' | 'patch' | 'window';

export type LifecycleAction =
  | { action: 'none'; recheckAt?: number; waiting?: string }
  | { action: 'drain'; reason: LifecycleReason; message: string }
  | { action: 'terminate'; reason: LifecycleReason; message: string };

const days = (ms: number) => `${Math.round((ms / DAY_MS) * 10) / 10} days`;
const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
const min = (...xs: (number | undefined)[]) => {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length ? Math.min(...v) : undefined;
};

/**
 * @param windows the weekly intervals of every event window associated with the instance
 * @param budget how many more instances of its provider may start a voluntary drain now
 */
export function nextAction(i: LifecycleInstance, now: number, windows: WeeklyInterval[][], policy: LifecyclePolicy, budget: number): LifecycleAction {
  const deadline = i.launchedAt + policy.maxLifetimeMs;
  const all = windows.flat();

  // 1. Draining: the hard deadline stops whatever still runs; an empty instance goes now.
  if (i.drainStartedAt !== undefined) {
    const hard = Math.min(i.drainStartedAt + policy.drainGraceMs, deadline + policy.drainGraceMs);
    if (i.empty) return { action: 'terminate', reason: 'drained', message: 'The instance finished draining and has no task left.' };
    if (now >= hard) {
      return { action: 'terminate', reason: 'hard-deadline', message: `The drain that started at ${iso(i.drainStartedAt)} reached its hard deadline (${days(policy.drainGraceMs)} later): remaining tasks are stopped and the instance is terminated.` };
    }
    return { action: 'none', recheckAt: hard };
  }
  // 2. Repair: impaired instances are replaced when auto repair is enabled (not budgeted),
  // once the impairment is confirmed: a network blip or a tenant exhausting its own limits
  // must not get an instance and its neighbours' tasks terminated. Until then the other
  // reasons still apply.
  if (i.impaired && policy.autoRepair && !i.impaired.unconfirmed) {
    return { action: 'terminate', reason: 'repair', message: `The instance is IMPAIRED (${i.impaired.check}: ${i.impaired.reason}) and auto repair is ENABLED: it is replaced.` };
  }
  // 3. Maximum lifetime: draining starts at day 14 whatever the budget or windows.
  if (now >= deadline) {
    return { action: 'drain', reason: 'expiry', message: `The instance reached its maximum lifetime of ${days(policy.maxLifetimeMs)} (launched ${iso(i.launchedAt)}).` };
  }
  const inWindow = all.length > 0 ? openAt(all, now) : undefined;
  const budgeted = (reason: LifecycleReason, message: string, retryAt?: number): LifecycleAction =>
    budget > 0 ? { action: 'drain', reason, message } : { action: 'none', waiting: `${message} Waiting for the disruption budget.`, ...(retryAt !== undefined ? { recheckAt: retryAt } : {}) };

  // 4. A critical security fix drains promptly, within the budget.
  if (i.pendingPatch?.severity === 'CRITICAL') {
    return budgeted('critical-patch', `Platform version ${i.pendingPatch.version} fixes a critical security issue.`);
  }
  // 5. A regular fix is applied in the next maintenance window (before day 14 at the latest).
  let patchAt: number | undefined;
  if (i.pendingPatch) {
    if (inWindow) return budgeted('patch', `Platform version ${i.pendingPatch.version} fixes a security issue; replacing in the maintenance window.`, inWindow.end);
    patchAt = all.length ? nextOpening(all, now) : undefined;
    if (patchAt !== undefined && patchAt >= deadline) patchAt = undefined;
  }
  // 6. With windows, replacement moves to the last window opening before day 14.
  let windowAt: number | undefined;
  if (all.length) {
    const target = lastOpeningBefore(all, deadline, i.launchedAt);
    if (target !== undefined) {
      const open = openAt(all, target);
      if (now >= target && open && now < open.end) {
        return budgeted('window', `The instance is replaced in the last maintenance window before its maximum lifetime (${iso(deadline)}).`, open.end);
      }
      if (now < target) windowAt = target;
    }
  }
  return { action: 'none', recheckAt: min(patchAt, windowAt, deadline) };
}
