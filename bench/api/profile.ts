// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): where the time went by area
// (Berth's src/, dependencies, Node internals, GC, idle), the top functions by self time,
// and Berth's own functions by inclusive time.
import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

function area(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'program (native, not attributed)';
  if (url.includes('/dist/src/')) return 'Berth src/';
  if (url.includes('/node_modules/')) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    return `dep ${m?.[1] ?? '?'}`;
  }
  if (url.startsWith('node:') || url === '') return 'Node internals / native';
  return 'other';
}

function label(cf: CallFrame): string {
  const url = cf.url.replace(/^file:\/\/.*?\/dist\//, '').replace(/^file:\/\/.*?\/node_modules\//, '');
  return `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim();
}

/** Returns printable lines. */
export function summarizeProfile(file: string, top = 15): string[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    const leaf = byId.get(p.samples[i]!)!;
    total += dt;
    const a = area(leaf.callFrame.url, leaf.callFrame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    if (a === 'idle') continue;
    busy += dt;
    const key = label(leaf.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id)!.callFrame;
      if (!cf.url.includes('/dist/src/')) continue;
      const k = label(cf);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  }
  const pct = (v: number, of: number) => `${((100 * v) / of).toFixed(1).padStart(5)}%`;
  const out: string[] = [];
  out.push(`profile ${file}: ${(total / 1e6).toFixed(1)} s sampled, ${pct(busy, total).trim()} busy`);
  out.push('  busy time by area:');
  for (const [a, v] of [...areas].filter(([a]) => a !== 'idle').sort((x, y) => y[1] - x[1]).slice(0, 10)) out.push(`    ${pct(v, busy)}  ${a}`);
  out.push(`  top ${top} functions by self time (% of busy):`);
  for (const [k, v] of [...self].sort((x, y) => y[1] - x[1]).slice(0, top)) out.push(`    ${pct(v, busy)}  ${k}`);
  out.push(`  top ${top} Berth src/ functions by inclusive time (% of busy):`);
  for (const [k, v] of [...inclusive].sort((x, y) => y[1] - x[1]).slice(0, top)) out.push(`    ${pct(v, busy)}  ${k}`);
  return out;
}

// Run directly: node dist/bench/api/profile.js FILE.cpuprofile [TOP]
if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top] = process.argv.slice(2);
  if (!file) { process.stderr.write('usage: profile.js FILE.cpuprofile [TOP]\n'); process.exit(2); }
  process.stdout.write(summarizeProfile(file, top ? Number(top) : 15).join('\n') + '\n');
}
