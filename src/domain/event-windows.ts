// EC2 instance event windows as weekly time intervals (UTC): parsing and validating
// TimeRanges or a cron expression (with cron-parser), and the pure time arithmetic the
// lifecycle decisions need (is it open, when does it next open, the last opening before a
// deadline).
import { CronExpressionParser } from 'cron-parser';

export const WEEK_MINUTES = 7 * 24 * 60;
const WEEK_MS = WEEK_MINUTES * 60_000;
export const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
export type WeekDay = (typeof WEEKDAYS)[number];

/** [start, end) in minutes from Sunday 00:00 UTC, within one week; end may exceed the week (wraps). */
export interface WeeklyInterval { start: number; end: number }

export interface TimeRange { StartWeekDay?: string; StartHour?: number; EndWeekDay?: string; EndHour?: number }

export class WindowError extends Error {}

const MIN_RANGE_MINUTES = 120;
const MIN_WEEK_MINUTES = 240;

function dayIndex(name: string | undefined, what: string): number {
  const i = WEEKDAYS.indexOf((name ?? '') as WeekDay);
  if (i < 0) throw new WindowError(`${what} must be one of ${WEEKDAYS.join(', ')}; got '${name ?? ''}'.`);
  return i;
}

/** Merges touching or overlapping intervals (wrapping ones split at the week's end first). */
function normalize(list: WeeklyInterval[]): WeeklyInterval[] {
  const flat: WeeklyInterval[] = [];
  for (const i of list) {
    if (i.end <= WEEK_MINUTES) flat.push(i);
    else { flat.push({ start: i.start, end: WEEK_MINUTES }); flat.push({ start: 0, end: i.end - WEEK_MINUTES }); }
  }
  flat.sort((a, b) => a.start - b.start);
  const out: WeeklyInterval[] = [];
  for (const i of flat) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else out.push({ ...i });
  }
  // One that ends at the week's end and one that starts at 0 are one range over Sunday midnight.
  if (out.length > 1 && out[0]!.start === 0 && out[out.length - 1]!.end === WEEK_MINUTES) {
    const first = out.shift()!;
    out[out.length - 1]!.end = WEEK_MINUTES + first.end;
  }
  return out;
}

function checkDurations(intervals: WeeklyInterval[], source: string): void {
  const total = intervals.reduce((n, i) => n + (i.end - i.start), 0);
  for (const i of intervals) {
    if (i.end - i.start < MIN_RANGE_MINUTES) {
      throw new WindowError(`Each time range of an event window must be at least 2 hours; ${source} has a range of ${((i.end - i.start) / 60).toFixed(1)} hours.`);
    }
  }
  if (total < MIN_WEEK_MINUTES) throw new WindowError(`An event window must span at least 4 hours a week in total; ${source} spans ${(total / 60).toFixed(1)} hours.`);
}

export function intervalsFromTimeRanges(ranges: TimeRange[]): WeeklyInterval[] {
  if (ranges.length === 0) throw new WindowError('TimeRanges must contain at least one time range.');
  const list: WeeklyInterval[] = ranges.map((r, n) => {
    const sd = dayIndex(r.StartWeekDay, `TimeRange ${n + 1} StartWeekDay`);
    const ed = dayIndex(r.EndWeekDay, `TimeRange ${n + 1} EndWeekDay`);
    for (const [k, v] of [['StartHour', r.StartHour], ['EndHour', r.EndHour]] as const) {
      if (v === undefined || !Number.isInteger(v) || v < 0 || v > 23) throw new WindowError(`TimeRange ${n + 1} ${k} must be an hour from 0 to 23.`);
    }
    const start = sd * 1440 + r.StartHour! * 60;
    let end = ed * 1440 + r.EndHour! * 60;
    if (end <= start) end += WEEK_MINUTES;
    return { start, end };
  });
  const merged = normalize(list);
  checkDurations(merged, 'the time ranges');
  return merged;
}

/** EC2's cron form: `* <hours> * * <days of week>` (minute, day of month and month are `*`). */
export function intervalsFromCron(expression: string): WeeklyInterval[] {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) throw new WindowError(`The cron expression must have 5 fields (minute hour day-of-month month day-of-week), e.g. '* 0-4,20-23 * * 1,5'; got '${expression}'.`);
  const [minute, , dom, month] = fields;
  if (minute !== '*' || dom !== '*' || month !== '*') {
    throw new WindowError(`In an event window's cron expression the minute, day-of-month and month fields must be '*'; got '${expression}'.`);
  }
  let parsed;
  try {
    parsed = CronExpressionParser.parse(expression, { tz: 'UTC' });
  } catch (e) {
    throw new WindowError(`The cron expression '${expression}' is not valid: ${(e as Error).message}`);
  }
  const hours = [...parsed.fields.hour.values] as number[];
  const days = [...new Set(([...parsed.fields.dayOfWeek.values] as number[]).map((d) => d % 7))];
  const list: WeeklyInterval[] = [];
  for (const d of days) for (const h of hours) list.push({ start: d * 1440 + h * 60, end: d * 1440 + h * 60 + 60 });
  const merged = normalize(list);
  checkDurations(merged, `'${expression}'`);
  return merged;
}

/** Minutes since Sunday 00:00 UTC of the week `t` is in, and that week's start (epoch ms). */
function weekOf(t: number): { weekStart: number; minute: number } {
  const d = new Date(t);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const weekStart = midnight - d.getUTCDay() * 86_400_000;
  return { weekStart, minute: (t - weekStart) / 60_000 };
}

/** Every occurrence [start, end) of the intervals overlapping [from, to), in epoch ms. */
export function occurrences(intervals: WeeklyInterval[], from: number, to: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (let week = weekOf(from).weekStart - WEEK_MS; week < to; week += WEEK_MS) {
    for (const i of intervals) {
      const start = week + i.start * 60_000;
      const end = week + i.end * 60_000;
      if (end > from && start < to) out.push({ start, end });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The occurrence open at `t`, if any. */
export function openAt(intervals: WeeklyInterval[], t: number): { start: number; end: number } | undefined {
  return occurrences(intervals, t, t + 1).find((o) => o.start <= t && t < o.end);
}

/** The first opening at or after `t`. */
export function nextOpening(intervals: WeeklyInterval[], t: number): number | undefined {
  if (intervals.length === 0) return undefined;
  return occurrences(intervals, t, t + 2 * WEEK_MS).map((o) => o.start).find((s) => s >= t);
}

/** The last opening in [after, before), if any. */
export function lastOpeningBefore(intervals: WeeklyInterval[], before: number, after: number): number | undefined {
  const starts = occurrences(intervals, after, before).map((o) => o.start).filter((s) => s >= after && s < before);
  return starts.length ? starts[starts.length - 1] : undefined;
}
