import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intervalsFromCron, intervalsFromTimeRanges, lastOpeningBefore, nextOpening, openAt, WindowError } from '../../src/domain/event-windows.js';
import { DAY_MS, DEFAULT_POLICY, nextAction, type LifecycleInstance } from '../../src/lifecycle/decide.js';
import { repairPaused } from '../../src/lifecycle/controller.js';

const H = 3_600_000;
const at = (iso: string) => Date.parse(iso);
// 2026-11-28 is a Saturday.
const saturday = intervalsFromTimeRanges([{ StartWeekDay: 'saturday', StartHour: 2, EndWeekDay: 'saturday', EndHour: 6 }]);

test('time ranges: validation as EC2 states it', () => {
  assert.throws(() => intervalsFromTimeRanges([{ StartWeekDay: 'monday', StartHour: 1, EndWeekDay: 'monday', EndHour: 2 }]), /at least 2 hours/);
  assert.throws(() => intervalsFromTimeRanges([{ StartWeekDay: 'monday', StartHour: 1, EndWeekDay: 'monday', EndHour: 4 }]), /at least 4 hours a week/);
  assert.throws(() => intervalsFromTimeRanges([{ StartWeekDay: 'funday', StartHour: 1, EndWeekDay: 'monday', EndHour: 9 }]), /StartWeekDay must be one of/);
  assert.throws(() => intervalsFromTimeRanges([{ StartWeekDay: 'monday', StartHour: 24, EndWeekDay: 'monday', EndHour: 9 }]), /hour from 0 to 23/);
  assert.deepEqual(saturday, [{ start: 6 * 1440 + 120, end: 6 * 1440 + 360 }]);
});

test('a range crossing midnight and one crossing the end of the week', () => {
  const overnight = intervalsFromTimeRanges([{ StartWeekDay: 'monday', StartHour: 22, EndWeekDay: 'tuesday', EndHour: 3 }]);
  assert.ok(openAt(overnight, at('2026-11-30T23:30:00Z')));
  assert.ok(openAt(overnight, at('2026-12-01T02:59:00Z')));
  assert.ok(!openAt(overnight, at('2026-12-01T03:00:00Z')));
  const weekend = intervalsFromTimeRanges([{ StartWeekDay: 'saturday', StartHour: 22, EndWeekDay: 'sunday', EndHour: 4 }]);
  assert.equal(weekend.length, 1);
  assert.ok(openAt(weekend, at('2026-11-28T23:00:00Z')));
  assert.ok(openAt(weekend, at('2026-11-29T01:00:00Z')));
  assert.equal(nextOpening(weekend, at('2026-11-29T05:00:00Z')), at('2026-12-05T22:00:00Z'));
});

test('cron windows: lists and ranges of hours and days', () => {
  const w = intervalsFromCron('* 0-4,20-23 * * 1,5');
  assert.ok(openAt(w, at('2026-11-30T03:00:00Z')));  // Monday
  assert.ok(openAt(w, at('2026-11-30T21:00:00Z')));
  assert.ok(!openAt(w, at('2026-11-30T12:00:00Z')));
  assert.ok(openAt(w, at('2026-12-04T01:00:00Z')));  // Friday
  assert.ok(!openAt(w, at('2026-12-01T01:00:00Z')));  // Tuesday
  assert.throws(() => intervalsFromCron('0 1-3 * * 1'), /minute, day-of-month and month fields must be/);
  assert.throws(() => intervalsFromCron('* 1 * * 1'), /at least 2 hours/);
  assert.throws(() => intervalsFromCron('* 1-4 * * mon-'), /not valid/);
  assert.throws(() => intervalsFromCron('* 1-4 * *'), /5 fields/);
  assert.ok(WindowError);
});

const base = (over: Partial<LifecycleInstance> = {}): LifecycleInstance => ({ launchedAt: at('2026-11-02T10:00:00Z'), empty: false, ...over });

test('no window: nothing until day 14, then drain whatever the budget', () => {
  const i = base();
  const early = nextAction(i, i.launchedAt + 3 * DAY_MS, [], DEFAULT_POLICY, 0);
  assert.deepEqual(early, { action: 'none', recheckAt: i.launchedAt + 14 * DAY_MS });
  const due = nextAction(i, i.launchedAt + 14 * DAY_MS, [], DEFAULT_POLICY, 0);
  assert.equal(due.action, 'drain');
  assert.equal((due as { reason: string }).reason, 'expiry');
});

test('with a Saturday window: the last opening before day 14, only inside the window', () => {
  const i = base(); // launched Monday 2026-11-02; day 14 = Monday 2026-11-16
  const target = lastOpeningBefore(saturday, i.launchedAt + 14 * DAY_MS, i.launchedAt);
  assert.equal(target, at('2026-11-14T02:00:00Z'));
  const before = nextAction(i, at('2026-11-07T03:00:00Z'), [saturday], DEFAULT_POLICY, 1); // the first Saturday: not the last one
  assert.deepEqual(before, { action: 'none', recheckAt: target });
  const inside = nextAction(i, at('2026-11-14T03:00:00Z'), [saturday], DEFAULT_POLICY, 1);
  assert.equal(inside.action, 'drain');
  assert.equal((inside as { reason: string }).reason, 'window');
  const noBudget = nextAction(i, at('2026-11-14T03:00:00Z'), [saturday], DEFAULT_POLICY, 0);
  assert.equal(noBudget.action, 'none');
  // Missed (budget) until the window closed: day 14 still holds.
  const after = nextAction(i, at('2026-11-14T07:00:00Z'), [saturday], DEFAULT_POLICY, 1);
  assert.deepEqual(after, { action: 'none', recheckAt: i.launchedAt + 14 * DAY_MS });
});

test('a window that never fits before day 14 leaves the default schedule', () => {
  const i = base({ launchedAt: at('2026-11-14T07:00:00Z') }); // just after a Saturday window; day 14 = 2026-11-28T07:00
  const w = intervalsFromTimeRanges([{ StartWeekDay: 'saturday', StartHour: 8, EndWeekDay: 'saturday', EndHour: 12 }]);
  // Windows on 11-14 08:00 (before launch? no: after) and 11-21 08:00: the last before the deadline is 11-21.
  assert.equal(lastOpeningBefore(w, i.launchedAt + 14 * DAY_MS, i.launchedAt), at('2026-11-21T08:00:00Z'));
  const tight = base({ launchedAt: at('2026-11-21T13:00:00Z') });
  const policy = { ...DEFAULT_POLICY, maxLifetimeMs: 2 * DAY_MS };
  assert.deepEqual(nextAction(tight, at('2026-11-22T00:00:00Z'), [w], policy, 1), { action: 'none', recheckAt: tight.launchedAt + 2 * DAY_MS });
});

test('patches: critical drains within the budget, regular waits for a window', () => {
  const i = base({ pendingPatch: { version: '2026.12.0', severity: 'CRITICAL', releasedAt: 0 } });
  assert.equal(nextAction(i, at('2026-11-05T12:00:00Z'), [saturday], DEFAULT_POLICY, 1).action, 'drain');
  assert.equal(nextAction(i, at('2026-11-05T12:00:00Z'), [saturday], DEFAULT_POLICY, 0).action, 'none');
  const r = base({ pendingPatch: { version: '2026.12.0', severity: 'REGULAR', releasedAt: 0 } });
  const wait = nextAction(r, at('2026-11-05T12:00:00Z'), [saturday], DEFAULT_POLICY, 1);
  assert.deepEqual(wait, { action: 'none', recheckAt: at('2026-11-07T02:00:00Z') });
  const go = nextAction(r, at('2026-11-07T02:30:00Z'), [saturday], DEFAULT_POLICY, 1);
  assert.equal((go as { reason: string }).reason, 'patch');
});

test('draining: the hard deadline 7 days later, and an empty instance goes at once', () => {
  const drainAt = at('2026-11-16T10:00:00Z');
  const i = base({ drainStartedAt: drainAt });
  assert.deepEqual(nextAction(i, drainAt + DAY_MS, [], DEFAULT_POLICY, 1), { action: 'none', recheckAt: drainAt + 7 * DAY_MS });
  assert.equal((nextAction(i, drainAt + 7 * DAY_MS, [], DEFAULT_POLICY, 1) as { reason: string }).reason, 'hard-deadline');
  assert.equal((nextAction({ ...i, empty: true }, drainAt + H, [], DEFAULT_POLICY, 1) as { reason: string }).reason, 'drained');
});

test('repair only when enabled', () => {
  const i = base({ impaired: { check: 'AGENT_CONNECTIVITY', reason: 'no heartbeat' } });
  assert.equal((nextAction(i, i.launchedAt + H, [], DEFAULT_POLICY, 0) as { reason: string }).reason, 'repair');
  assert.equal(nextAction(i, i.launchedAt + H, [], { ...DEFAULT_POLICY, autoRepair: false }, 0).action, 'none');
});

test('an unconfirmed impairment waits: a network disconnect or one failed check does not replace the instance', () => {
  const i = base({ impaired: { check: 'AGENT_CONNECTIVITY', reason: 'no heartbeat', unconfirmed: 'its host still runs it' } });
  assert.equal(nextAction(i, i.launchedAt + H, [], DEFAULT_POLICY, 0).action, 'none');
  // The other reasons still apply meanwhile: an unconfirmed impairment does not hold back day 14.
  assert.equal((nextAction(i, i.launchedAt + 14 * DAY_MS, [], DEFAULT_POLICY, 0) as { reason?: string }).reason, 'expiry');
  const confirmed = base({ impaired: { check: 'AGENT_CONNECTIVITY', reason: 'no heartbeat; its host no longer runs it' } });
  assert.equal((nextAction(confirmed, confirmed.launchedAt + H, [], DEFAULT_POLICY, 0) as { reason?: string }).reason, 'repair');
});

test('repairs pause when more than one and more than 20% of a provider\'s instances are impaired at once', () => {
  assert.equal(repairPaused(1, 1), false, 'a lone dead instance is repaired');
  assert.equal(repairPaused(1, 50), false);
  assert.equal(repairPaused(2, 5), true, '40% at once looks like a wider fault');
  assert.equal(repairPaused(10, 50), false, 'exactly 20% is still repaired');
  assert.equal(repairPaused(11, 50), true);
  assert.equal(repairPaused(28, 50), true);
});
