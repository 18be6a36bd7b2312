// ECS's cluster query language, used by memberOf placement constraints and by
// ListContainerInstances' `filter`:
//
//   expression := or ;  or := and (('or' | '||') and)* ;  and := unary (('and' | '&&') unary)*
//   unary      := ('not' | '!') unary | '(' expression ')' | subject operator [argument]
//   subject    := attribute:<name> | task:group | agentConnected | agentVersion
//               | ec2InstanceId | registeredAt | runningTasksCount
//   operator   := == equals | != not_equals | > greater_than | >= greater_than_equal
//               | < less_than | <= less_than_equal | exists | !exists not_exists
//               | in | !in not_in | =~ matches | !~ not_matches
//   argument   := word | 'quoted' | "quoted" | [arg, arg, ...]
//
// Semantics (documented choices where ECS is silent):
// - `=~` takes a (Java-style) regular expression matched against the WHOLE value:
//   `attribute:ecs.instance-type =~ t2.*` matches t2.micro, not mt2.x.
// - Negated operators (`!=`, `!in`, `!~`, `!exists`) are the exact negation of the positive
//   one, so an instance without the attribute satisfies `attribute:stack != prod`.
// - `>`, `>=`, `<`, `<=` on attributes compare numerically when both sides are numbers,
//   else as strings; agentVersion compares dotted versions; registeredAt compares dates
//   (a date-only argument such as 2018-06-18 compares whole UTC days).
// - `task:group == g` holds when the instance runs at least one task of group g; `in`
//   when it runs one of the listed groups; `exists` when it runs any task.
// - `ecs.cpu-architecture` compares case-insensitively (x86_64 = X86_64).
// Expressions are parsed once and cached by their text; evaluation is a closure tree.

export interface QueryTarget {
  readonly attrs: ReadonlyMap<string, string>;
  /** Task group → tasks of that group on the instance. */
  readonly groups: ReadonlyMap<string, number>;
  readonly agentConnected: boolean;
  readonly agentVersion?: string | undefined;
  readonly ec2InstanceId?: string | undefined;
  readonly registeredAt?: number | undefined;
  readonly runningTasksCount: number;
}

export type CompiledQuery = (t: QueryTarget) => boolean;

/** A malformed expression; the API turns it into InvalidParameterException. */
export class QueryError extends Error {
  constructor(message: string, readonly expression: string, readonly position: number) {
    super(message);
    this.name = 'QueryError';
  }
}

export const MAX_EXPRESSION_LENGTH = 2000;

type Tok =
  | { k: 'word'; v: string; p: number }
  | { k: 'str'; v: string; p: number }
  | { k: 'sym'; v: string; p: number }
  | { k: 'end'; v: ''; p: number };

const SYMBOLS = ['==', '!=', '>=', '<=', '=~', '!~', '&&', '||', '>', '<', '!', '(', ')', '[', ']', ','];
const WORD_STOP = new Set([' ', '\t', '\n', '\r', '(', ')', '[', ']', ',', '=', '!', '<', '>', '&', '|', '"', "'"]);

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { i++; continue; }
    if (c === '"' || c === "'") {
      let v = '';
      let j = i + 1;
      for (; j < src.length && src[j] !== c; j++) {
        if (src[j] === '\\' && j + 1 < src.length) { v += src[++j]; continue; }
        v += src[j];
      }
      if (j >= src.length) throw new QueryError(`Unterminated quoted value starting at character ${i + 1}.`, src, i);
      out.push({ k: 'str', v, p: i });
      i = j + 1;
      continue;
    }
    const sym = SYMBOLS.find((s) => src.startsWith(s, i));
    if (sym) {
      out.push({ k: 'sym', v: sym, p: i });
      i += sym.length;
      continue;
    }
    if (c === '&' || c === '|' || c === '=') throw new QueryError(`Unexpected '${c}' at character ${i + 1}; use &&, || or ==.`, src, i);
    let j = i;
    while (j < src.length && !WORD_STOP.has(src[j]!)) j++;
    out.push({ k: 'word', v: src.slice(i, j), p: i });
    i = j;
  }
  out.push({ k: 'end', v: '', p: src.length });
  return out;
}

type Op = '==' | '!=' | '>' | '>=' | '<' | '<=' | 'exists' | '!exists' | 'in' | '!in' | '=~' | '!~';
const WORD_OPS: Record<string, Op> = {
  equals: '==', not_equals: '!=', greater_than: '>', greater_than_equal: '>=', less_than: '<', less_than_equal: '<=',
  exists: 'exists', not_exists: '!exists', in: 'in', not_in: '!in', matches: '=~', not_matches: '!~',
};
const SYM_OPS = new Set(['==', '!=', '>', '>=', '<', '<=', '=~', '!~']);

type Subject =
  | { kind: 'attribute'; name: string }
  | { kind: 'group' | 'agentConnected' | 'agentVersion' | 'ec2InstanceId' | 'registeredAt' | 'runningTasksCount' };

const SUBJECT_OPS: Record<Exclude<Subject['kind'], 'attribute'>, Set<Op>> = {
  group: new Set<Op>(['==', '!=', 'exists', '!exists', 'in', '!in', '=~', '!~']),
  agentConnected: new Set<Op>(['==', '!=', 'in', '!in', '=~', '!~']),
  agentVersion: new Set<Op>(['==', '!=', '>', '>=', '<', '<=']),
  ec2InstanceId: new Set<Op>(['==', '!=', 'in', '!in', '=~', '!~']),
  registeredAt: new Set<Op>(['==', '!=', '>', '>=', '<', '<=']),
  runningTasksCount: new Set<Op>(['==', '!=', '>', '>=', '<', '<=']),
};

const SUBJECTS_HELP = 'attribute:<name>, task:group, agentConnected, agentVersion, ec2InstanceId, registeredAt or runningTasksCount';

class Parser {
  private i = 0;
  /** The expression reads task:group or runningTasksCount (which reservations change). */
  dynamic = false;
  constructor(private readonly src: string, private readonly toks: Tok[]) {}

  private peek(): Tok { return this.toks[this.i]!; }
  private next(): Tok { return this.toks[this.i++]!; }
  private fail(msg: string, t: Tok = this.peek()): never {
    throw new QueryError(`Invalid expression '${this.src}': ${msg} (at character ${t.p + 1}).`, this.src, t.p);
  }
  private isWord(t: Tok, ...words: string[]): boolean {
    return t.k === 'word' && words.includes(t.v.toLowerCase());
  }

  parse(): CompiledQuery {
    if (this.peek().k === 'end') this.fail('the expression is empty');
    const q = this.or();
    const t = this.peek();
    if (t.k !== 'end') this.fail(`unexpected '${t.v}'; expected and, or, or the end of the expression`);
    return q;
  }

  private or(): CompiledQuery {
    const parts = [this.and()];
    for (;;) {
      const t = this.peek();
      if ((t.k === 'sym' && t.v === '||') || this.isWord(t, 'or')) { this.next(); parts.push(this.and()); } else break;
    }
    if (parts.length === 1) return parts[0]!;
    return (x) => { for (const p of parts) if (p(x)) return true; return false; };
  }

  private and(): CompiledQuery {
    const parts = [this.unary()];
    for (;;) {
      const t = this.peek();
      if ((t.k === 'sym' && t.v === '&&') || this.isWord(t, 'and')) { this.next(); parts.push(this.unary()); } else break;
    }
    if (parts.length === 1) return parts[0]!;
    return (x) => { for (const p of parts) if (!p(x)) return false; return true; };
  }

  private unary(): CompiledQuery {
    const t = this.peek();
    if ((t.k === 'sym' && t.v === '!') || this.isWord(t, 'not')) {
      this.next();
      const inner = this.unary();
      return (x) => !inner(x);
    }
    if (t.k === 'sym' && t.v === '(') {
      this.next();
      const inner = this.or();
      const close = this.next();
      if (close.k !== 'sym' || close.v !== ')') this.fail(`expected ')' to close the '(' at character ${t.p + 1}`, close);
      return inner;
    }
    return this.comparison();
  }

  private subject(): Subject {
    const t = this.next();
    if (t.k !== 'word') this.fail(`expected a subject (${SUBJECTS_HELP})`, t);
    const v = t.v;
    if (v.toLowerCase().startsWith('attribute:')) {
      const name = v.slice('attribute:'.length);
      if (!name) this.fail('attribute: needs a name, e.g. attribute:ecs.availability-zone', t);
      return { kind: 'attribute', name };
    }
    switch (v) {
      case 'task:group': this.dynamic = true; return { kind: 'group' };
      case 'runningTasksCount': this.dynamic = true; return { kind: v };
      case 'agentConnected': case 'agentVersion': case 'ec2InstanceId': case 'registeredAt':
        return { kind: v };
      default: this.fail(`unknown subject '${v}'; subjects are ${SUBJECTS_HELP}`, t);
    }
  }

  private operator(): Op {
    const t = this.next();
    if (t.k === 'sym' && SYM_OPS.has(t.v)) return t.v as Op;
    if (t.k === 'sym' && t.v === '!') {
      const w = this.next();
      if (this.isWord(w, 'exists')) return '!exists';
      if (this.isWord(w, 'in')) return '!in';
      this.fail("expected 'exists' or 'in' after '!'", w);
    }
    if (t.k === 'word' && WORD_OPS[t.v.toLowerCase()]) return WORD_OPS[t.v.toLowerCase()]!;
    this.fail(`expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~) but found '${t.v || 'the end'}'`, t);
  }

  private value(): string {
    const t = this.next();
    if (t.k === 'word' || t.k === 'str') return t.v;
    this.fail(`expected a value but found '${t.v || 'the end'}'`, t);
  }

  private argument(op: Op): string[] {
    if (op === 'exists' || op === '!exists') return [];
    if (op === 'in' || op === '!in') {
      const open = this.next();
      if (open.k !== 'sym' || open.v !== '[') this.fail(`'${op}' needs a list such as [a, b]`, open);
      const vals = [this.value()];
      for (;;) {
        const t = this.next();
        if (t.k === 'sym' && t.v === ']') break;
        if (t.k !== 'sym' || t.v !== ',') this.fail("expected ',' or ']' in the list", t);
        vals.push(this.value());
      }
      return vals;
    }
    return [this.value()];
  }

  private comparison(): CompiledQuery {
    const start = this.peek();
    const subj = this.subject();
    const opTok = this.peek();
    const op = this.operator();
    if (subj.kind !== 'attribute' && !SUBJECT_OPS[subj.kind].has(op)) {
      this.fail(`operator ${op} is not valid for ${subj.kind === 'group' ? 'task:group' : subj.kind}; valid: ${[...SUBJECT_OPS[subj.kind]].join(' ')}`, opTok);
    }
    const args = this.argument(op);
    return compileComparison(subj, op, args, (msg) => this.fail(msg, start));
  }
}

function fullMatch(pattern: string, fail: (m: string) => never): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    fail(`'${pattern}' is not a valid regular expression (${(e as Error).message})`);
  }
}

function isNum(s: string): boolean {
  return s.trim() !== '' && Number.isFinite(Number(s));
}

function compareLoose(a: string, b: string): number {
  if (isNum(a) && isNum(b)) return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/i, '').split(/[.\-+]/);
  const pb = b.replace(/^v/i, '').split(/[.\-+]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const c = compareLoose(pa[i] ?? '0', pb[i] ?? '0');
    if (c !== 0) return c;
  }
  return 0;
}

function ordered(op: Op, c: number): boolean {
  switch (op) {
    case '>': return c > 0;
    case '>=': return c >= 0;
    case '<': return c < 0;
    case '<=': return c <= 0;
    case '==': return c === 0;
    default: return c !== 0;
  }
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DAY = 86_400_000;

function compileComparison(subj: Subject, op: Op, args: string[], fail: (m: string) => never): CompiledQuery {
  const negate = op === '!=' || op === '!in' || op === '!~' || op === '!exists';
  const positive: Op = negate ? ({ '!=': '==', '!in': 'in', '!~': '=~', '!exists': 'exists' } as Record<string, Op>)[op]! : op;
  const q = compilePositive(subj, positive, args, fail);
  return negate ? (x) => !q(x) : q;
}

function compilePositive(subj: Subject, op: Op, args: string[], fail: (m: string) => never): CompiledQuery {
  const arg = args[0] ?? '';
  switch (subj.kind) {
    case 'group': {
      if (op === 'exists') return (x) => hasAnyGroup(x.groups);
      if (op === '==') return (x) => (x.groups.get(arg) ?? 0) > 0;
      if (op === 'in') return (x) => args.some((g) => (x.groups.get(g) ?? 0) > 0);
      const re = fullMatch(arg, fail);
      return (x) => { for (const [g, n] of x.groups) if (n > 0 && re.test(g)) return true; return false; };
    }
    case 'runningTasksCount': {
      if (!/^\d+$/.test(arg)) fail(`runningTasksCount compares with a whole number, not '${arg}'`);
      const n = Number(arg);
      return (x) => ordered(op, x.runningTasksCount - n);
    }
    case 'registeredAt': {
      const dayOnly = DATE_ONLY.test(arg);
      const at = Date.parse(dayOnly ? `${arg}T00:00:00Z` : /[zZ]|[+-]\d\d:?\d\d$/.test(arg) ? arg : `${arg}Z`);
      if (!Number.isFinite(at)) fail(`registeredAt compares with a date such as 2018-06-18 or 2018-06-18T22:28:28Z, not '${arg}'`);
      return (x) => {
        if (x.registeredAt === undefined) return false;
        const v = dayOnly ? Math.floor(x.registeredAt / DAY) * DAY : Math.floor(x.registeredAt / 1000) * 1000;
        return ordered(op, v - at);
      };
    }
    case 'agentVersion':
      return (x) => x.agentVersion !== undefined && ordered(op, compareVersions(x.agentVersion, arg));
    case 'agentConnected': {
      for (const a of args) if (op !== '=~' && a !== 'true' && a !== 'false') fail(`agentConnected compares with true or false, not '${a}'`);
      if (op === '==') return (x) => String(x.agentConnected) === arg;
      if (op === 'in') return (x) => args.includes(String(x.agentConnected));
      const re = fullMatch(arg, fail);
      return (x) => re.test(String(x.agentConnected));
    }
    case 'ec2InstanceId':
      return stringOp((x) => x.ec2InstanceId, op, args, fail, false);
    case 'attribute': {
      const name = subj.name;
      const ci = name === 'ecs.cpu-architecture';
      return stringOp((x) => x.attrs.get(name), op, args, fail, ci);
    }
  }
}

function hasAnyGroup(groups: ReadonlyMap<string, number>): boolean {
  for (const n of groups.values()) if (n > 0) return true;
  return false;
}

function stringOp(get: (x: QueryTarget) => string | undefined, op: Op, args: string[], fail: (m: string) => never, ci: boolean): CompiledQuery {
  const norm = ci ? (s: string) => s.toLowerCase() : (s: string) => s;
  const arg = norm(args[0] ?? '');
  switch (op) {
    case 'exists': return (x) => get(x) !== undefined;
    case '==': return (x) => { const v = get(x); return v !== undefined && norm(v) === arg; };
    case 'in': {
      const set = new Set(args.map(norm));
      return (x) => { const v = get(x); return v !== undefined && set.has(norm(v)); };
    }
    case '=~': {
      const re = fullMatch(args[0] ?? '', fail);
      const rei = ci ? new RegExp(re.source, 'i') : re;
      return (x) => { const v = get(x); return v !== undefined && rei.test(v); };
    }
    default:
      return (x) => { const v = get(x); return v !== undefined && ordered(op, compareLoose(norm(v), arg)); };
  }
}

const CACHE_LIMIT = 1024;
const cache = new Map<string, CompiledQuery>();
const staticQueries = new WeakSet<CompiledQuery>();

/**
 * True when the query only reads what a reservation never changes (attributes, ids, agent
 * facts), not task:group or runningTasksCount: the engine can then keep an index of just
 * the instances that match it.
 */
export function isStaticQuery(q: CompiledQuery): boolean {
  return staticQueries.has(q);
}

/** Parses (or takes from the cache) a cluster query expression. Throws QueryError. */
export function compileQuery(expression: string): CompiledQuery {
  const hit = cache.get(expression);
  if (hit) return hit;
  if (expression.length > MAX_EXPRESSION_LENGTH) {
    throw new QueryError(`Invalid expression: it has ${expression.length} characters; the limit is ${MAX_EXPRESSION_LENGTH}.`, expression.slice(0, 100), MAX_EXPRESSION_LENGTH);
  }
  const parser = new Parser(expression, tokenize(expression));
  const q = parser.parse();
  if (!parser.dynamic) staticQueries.add(q);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(expression, q);
  return q;
}

/** The problem with an expression, or undefined when it is valid (for request validation). */
export function queryProblem(expression: string): string | undefined {
  try {
    compileQuery(expression);
    return undefined;
  } catch (e) {
    if (e instanceof QueryError) return e.message;
    throw e;
  }
}

export interface QueryTargetInput {
  attributes?: readonly { name: string; value?: string }[] | Readonly<Record<string, string>>;
  availabilityZone?: string;
  subnetId?: string;
  instanceType?: string;
  /** X86_64 / ARM64 (or x86_64 / arm64). */
  architecture?: string;
  taskGroups?: Readonly<Record<string, number>> | readonly string[];
  agentConnected?: boolean;
  agentVersion?: string;
  ec2InstanceId?: string;
  registeredAt?: number;
  runningTasksCount?: number;
}

/** Attribute map with the built-in ecs.* attributes derived from the instance's fields. */
export function attributeMap(i: QueryTargetInput): Map<string, string> {
  const m = new Map<string, string>();
  const a = i.attributes;
  if (Array.isArray(a)) for (const x of a as readonly { name: string; value?: string }[]) m.set(x.name, x.value ?? '');
  else if (a) for (const [k, v] of Object.entries(a)) m.set(k, v);
  if (i.availabilityZone !== undefined) m.set('ecs.availability-zone', i.availabilityZone);
  if (i.subnetId !== undefined) m.set('ecs.subnet-id', i.subnetId);
  if (i.instanceType !== undefined) m.set('ecs.instance-type', i.instanceType);
  if (i.architecture !== undefined) m.set('ecs.cpu-architecture', i.architecture.toLowerCase());
  if (!m.has('ecs.os-type')) m.set('ecs.os-type', 'linux');
  return m;
}

/** A query target for ListContainerInstances' filter (placement builds its own). */
export function queryTarget(i: QueryTargetInput): QueryTarget {
  const groups = new Map<string, number>();
  if (Array.isArray(i.taskGroups)) for (const g of i.taskGroups as readonly string[]) groups.set(g, (groups.get(g) ?? 0) + 1);
  else if (i.taskGroups) for (const [g, n] of Object.entries(i.taskGroups)) groups.set(g, n);
  return {
    attrs: attributeMap(i), groups,
    agentConnected: i.agentConnected ?? false,
    agentVersion: i.agentVersion, ec2InstanceId: i.ec2InstanceId, registeredAt: i.registeredAt,
    runningTasksCount: i.runningTasksCount ?? 0,
  };
}
