// AWS Query front door (EC2's `ec2` dialect and IAM/STS's `query` dialect): form-encoded
// requests (`Action=…&Version=…&Name.1=…`) and XML responses and errors, both driven by the
// official models, so every member name, list layout and type follows what the CLIs send.
import { ApiError, type ErrorCode } from './errors.js';
import type { Handler, RequestContext } from './context.js';
import { ModelValidator, loadModel, type Shape, type ServiceModel } from './model.js';

type Dialect = 'ec2' | 'query';

export interface QueryService {
  name: string;
  signingName: string;
  dialect: Dialect;
  model: ServiceModel;
  validator: ModelValidator;
  handlers: Record<string, Handler>;
  known: Set<string>;
  xmlNamespace: string;
  /** Error codes this service uses for bad input. */
  codes: { invalid: ErrorCode; missing: ErrorCode; unknownAction: ErrorCode };
}

export function queryService(name: string, modelName: string, signingName: string, handlers: Record<string, Handler>): QueryService {
  const model = loadModel(modelName);
  const dialect: Dialect = model.metadata.protocol === 'ec2' ? 'ec2' : 'query';
  const ns = model.metadata.xmlNamespace ?? `https://${model.metadata.endpointPrefix}.amazonaws.com/doc/${model.metadata.apiVersion}/`;
  return {
    name, signingName, dialect, model, validator: new ModelValidator(model), handlers,
    known: new Set(Object.keys(model.operations)),
    xmlNamespace: ns.endsWith('/') ? ns : `${ns}/`,
    codes: dialect === 'ec2'
      ? { invalid: 'InvalidParameterValue', missing: 'MissingParameter', unknownAction: 'InvalidAction' }
      : { invalid: 'ValidationError', missing: 'ValidationError', unknownAction: 'InvalidAction' },
  };
}

interface MemberRef { shape: string; locationName?: string; queryName?: string; flattened?: boolean }

/** The request parameter name of a member, as botocore's serializers compute it. */
function paramName(dialect: Dialect, name: string, ref: MemberRef): string {
  if (dialect === 'ec2') {
    if (ref.queryName) return ref.queryName;
    if (ref.locationName) return ref.locationName[0]!.toUpperCase() + ref.locationName.slice(1);
    return name;
  }
  return ref.locationName ?? name;
}

class Params {
  readonly used = new Set<string>();
  constructor(readonly map: Map<string, string>) {}
  get(key: string): string | undefined {
    const v = this.map.get(key);
    if (v !== undefined) this.used.add(key);
    return v;
  }
  /** Whether any parameter starts with `prefix.` (or is `prefix`). */
  has(prefix: string): boolean {
    for (const k of this.map.keys()) if (k === prefix || k.startsWith(`${prefix}.`)) return true;
    return false;
  }
  indices(prefix: string): number[] {
    const out = new Set<number>();
    const re = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)(\\.|$)`);
    for (const k of this.map.keys()) { const m = re.exec(k); if (m) out.add(Number(m[1])); }
    return [...out].sort((a, b) => a - b);
  }
}

function readValue(s: QueryService, shapeName: string, prefix: string, p: Params, flattened = false): unknown {
  const shape: Shape = s.model.shapes[shapeName]!;
  switch (shape.type) {
    case 'structure': {
      if (!p.has(prefix) && prefix !== '') return undefined;
      const out: Record<string, unknown> = {};
      for (const [name, ref] of Object.entries(shape.members ?? {})) {
        const key = (prefix ? `${prefix}.` : '') + paramName(s.dialect, name, ref as MemberRef);
        const v = readValue(s, ref.shape, key, p, (ref as MemberRef).flattened);
        if (v !== undefined) out[name] = v;
      }
      return out;
    }
    case 'list': {
      const memberRef = shape.member as MemberRef;
      // EC2 lists are always flattened; query lists use `.member.N` unless flattened.
      const flat = s.dialect === 'ec2' || flattened || (shape as { flattened?: boolean }).flattened;
      const base = flat ? prefix : `${prefix}.${memberRef.locationName ?? 'member'}`;
      if (!flat && p.get(prefix) === '') return [];
      const idx = p.indices(base);
      if (idx.length === 0) return undefined;
      return idx.map((i) => readValue(s, memberRef.shape, `${base}.${i}`, p));
    }
    case 'map': {
      const base = flattened ? prefix : `${prefix}.entry`;
      const idx = p.indices(base);
      if (idx.length === 0) return undefined;
      const out: Record<string, unknown> = {};
      for (const i of idx) {
        const k = p.get(`${base}.${i}.key`);
        // defineProperty: a key named `__proto__` is a key, never the map's prototype.
        if (k !== undefined) Object.defineProperty(out, k, { value: readValue(s, shape.value!.shape, `${base}.${i}.value`, p), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default: {
      const raw = p.get(prefix);
      if (raw === undefined) return undefined;
      switch (shape.type) {
        case 'integer': case 'long': case 'double': case 'float': {
          const n = Number(raw);
          return raw.trim() === '' || Number.isNaN(n) ? raw : n;
        }
        case 'boolean': return raw === 'true' ? true : raw === 'false' ? false : raw;
        default: return raw;
      }
    }
  }
}

/** Turns form parameters into the operation's typed input and validates it against the model. */
export function parseQueryInput(s: QueryService, operation: string, params: URLSearchParams): Record<string, unknown> {
  const map = new Map<string, string>();
  for (const [k, v] of params) if (k !== 'Action' && k !== 'Version') map.set(k, v);
  const op = s.model.operations[operation]!;
  const p = new Params(map);
  const input = op.input ? (readValue(s, op.input.shape, '', p) as Record<string, unknown>) ?? {} : {};
  const unknown = [...map.keys()].filter((k) => !p.used.has(k));
  if (unknown.length) {
    throw new ApiError(s.dialect === 'ec2' ? 'UnknownParameter' : s.codes.invalid, `The parameter ${unknown[0]} is not recognized.`);
  }
  try {
    s.validator.validateInput(operation, input);
  } catch (e) {
    if (e instanceof ApiError) {
      const missing = /must not be null/.test(e.message);
      throw new ApiError(missing ? s.codes.missing : s.codes.invalid, e.message.replace(/^\d+ validation errors? detected: /, ''));
    }
    throw e;
  }
  return input;
}

// XML ------------------------------------------------------------------------------------

const escapeXml = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function scalar(shape: Shape, v: unknown): string {
  if (shape.type === 'timestamp') {
    const d = typeof v === 'number' ? new Date(v) : new Date(String(v));
    return d.toISOString().replace(/\.\d{3}Z$/, '.000Z');
  }
  if (shape.type === 'blob' && Buffer.isBuffer(v)) return v.toString('base64');
  return escapeXml(String(v));
}

function writeValue(s: QueryService, shapeName: string, tag: string, v: unknown, out: string[], flattened = false): void {
  if (v === undefined || v === null) return;
  const shape = s.model.shapes[shapeName]!;
  switch (shape.type) {
    case 'structure': {
      out.push(`<${tag}>`);
      writeMembers(s, shape, v as Record<string, unknown>, out);
      out.push(`</${tag}>`);
      return;
    }
    case 'list': {
      const memberRef = shape.member as MemberRef;
      const flat = flattened || (shape as { flattened?: boolean }).flattened;
      if (flat) {
        for (const item of v as unknown[]) writeValue(s, memberRef.shape, memberRef.locationName ?? tag, item, out);
        return;
      }
      out.push(`<${tag}>`);
      for (const item of v as unknown[]) writeValue(s, memberRef.shape, memberRef.locationName ?? (s.dialect === 'ec2' ? 'item' : 'member'), item, out);
      out.push(`</${tag}>`);
      return;
    }
    case 'map': {
      out.push(`<${tag}>`);
      for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
        out.push('<entry><key>', escapeXml(k), '</key>');
        writeValue(s, shape.value!.shape, 'value', val, out);
        out.push('</entry>');
      }
      out.push(`</${tag}>`);
      return;
    }
    default:
      out.push(`<${tag}>`, scalar(shape, v), `</${tag}>`);
  }
}

function writeMembers(s: QueryService, shape: Shape, v: Record<string, unknown>, out: string[]): void {
  for (const [name, ref] of Object.entries(shape.members ?? {})) {
    const r = ref as MemberRef;
    writeValue(s, r.shape, r.locationName ?? name, v[name], out, r.flattened);
  }
}

export function serializeQueryOutput(s: QueryService, operation: string, output: Record<string, unknown>, requestId: string): string {
  const op = s.model.operations[operation]!;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>', `<${operation}Response xmlns="${s.xmlNamespace}">`];
  const shape = op.output ? s.model.shapes[op.output.shape] : undefined;
  if (s.dialect === 'ec2') {
    out.push(`<requestId>${requestId}</requestId>`);
    if (shape) writeMembers(s, shape, output, out);
  } else {
    const wrapper = (op.output as { resultWrapper?: string } | undefined)?.resultWrapper ?? `${operation}Result`;
    out.push(`<${wrapper}>`);
    if (shape) writeMembers(s, shape, output, out);
    out.push(`</${wrapper}>`, `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata>`);
  }
  out.push(`</${operation}Response>`);
  return out.join('');
}

export function serializeQueryError(s: QueryService | undefined, e: ApiError, requestId: string): string {
  if (!s || s.dialect === 'ec2') {
    return `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${escapeXml(e.code)}</Code><Message>${escapeXml(e.message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`;
  }
  const type = e.status >= 500 ? 'Receiver' : 'Sender';
  return `<?xml version="1.0" encoding="UTF-8"?><ErrorResponse xmlns="${s.xmlNamespace}"><Error><Type>${type}</Type><Code>${escapeXml(e.code)}</Code><Message>${escapeXml(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
}

export async function invokeQuery(s: QueryService, action: string, ctx: RequestContext, params: URLSearchParams,
  before?: (ctx: RequestContext, input: Record<string, unknown>) => void | Promise<void>): Promise<Record<string, unknown>> {
  const handler = s.handlers[action];
  if (!handler) {
    if (s.known.has(action)) throw new ApiError('UnsupportedOperation', `${action} is not supported by Berth yet.`);
    throw new ApiError(s.codes.unknownAction, `The action ${action} is not valid for this web service.`);
  }
  const input = parseQueryInput(s, action, params);
  await before?.(ctx, input);
  if (s.dialect === 'ec2' && input.DryRun === true) {
    throw new ApiError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
  }
  return ((await handler(ctx, input)) ?? {}) as Record<string, unknown>;
}
