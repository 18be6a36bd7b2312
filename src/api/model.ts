// The official AWS API models (vendored from botocore into models/, see
// scripts/vendor-models.mjs) drive request validation, so every documented type,
// required member, enum, length and range is checked without a hand-written rule.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { invalidParameter } from './errors.js';

export interface ShapeRef { shape: string }
export interface Shape {
  type: string;
  members?: Record<string, ShapeRef & { locationName?: string }>;
  required?: string[];
  member?: ShapeRef & { locationName?: string };
  key?: ShapeRef;
  value?: ShapeRef;
  enum?: string[];
  min?: number;
  max?: number;
  pattern?: string;
  union?: boolean;
  exception?: boolean;
  error?: { code?: string; httpStatusCode?: number };
}
export interface OperationModel {
  name: string;
  input?: ShapeRef;
  output?: ShapeRef;
  errors?: ShapeRef[];
}
export interface ServiceModel {
  metadata: Record<string, string>;
  operations: Record<string, OperationModel>;
  shapes: Record<string, Shape>;
}

const modelsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'models');
const cache = new Map<string, ServiceModel>();

export function loadModel(service: string): ServiceModel {
  let m = cache.get(service);
  if (!m) {
    m = JSON.parse(readFileSync(join(modelsDir, `${service}.json`), 'utf8')) as ServiceModel;
    cache.set(service, m);
  }
  return m;
}

/** Checks a parsed request against its input shape; returns problems as messages. */
export type Validator = (value: unknown, path: string, problems: string[]) => void;

const MAX_PROBLEMS = 10;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 60 ? text.slice(0, 57) + '...' : text}`;
}

const at = (path: string) => (path === '' ? 'the request' : `'${path}'`);

export class ModelValidator {
  private readonly compiled = new Map<string, Validator>();
  constructor(private readonly model: ServiceModel) {}

  /** Throws InvalidParameterException listing what is wrong with `input`. */
  validateInput(operation: string, input: unknown): void {
    const op = this.model.operations[operation];
    if (!op?.input) return;
    const problems: string[] = [];
    this.validator(op.input.shape)(input, '', problems);
    if (problems.length > 0) {
      const n = problems.length >= MAX_PROBLEMS ? `${MAX_PROBLEMS} or more` : String(problems.length);
      throw invalidParameter(`${n} validation error${problems.length === 1 ? '' : 's'} detected: ${problems.join('; ')}`);
    }
  }

  validator(shapeName: string): Validator {
    const existing = this.compiled.get(shapeName);
    if (existing) return existing;
    // Recursive shapes: install a forwarder before compiling.
    let impl: Validator = () => {};
    this.compiled.set(shapeName, (v, p, pr) => impl(v, p, pr));
    impl = this.compile(shapeName);
    this.compiled.set(shapeName, impl);
    return impl;
  }

  private compile(shapeName: string): Validator {
    const shape = this.model.shapes[shapeName];
    if (!shape) throw new Error(`model has no shape ${shapeName}`);
    const push = (problems: string[], msg: string) => { if (problems.length < MAX_PROBLEMS) problems.push(msg); };
    switch (shape.type) {
      case 'structure': {
        const members = shape.members ?? {};
        const names = Object.keys(members);
        const required = shape.required ?? [];
        const children = new Map<string, Validator>();
        for (const name of names) children.set(name, this.validator(members[name]!.shape));
        return (value, path, problems) => {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) {
            push(problems, `Invalid type at ${at(path)}: expected an object, got ${describe(value)}`);
            return;
          }
          const obj = value as Record<string, unknown>;
          for (const r of required) {
            if (obj[r] === undefined || obj[r] === null) push(problems, `Value null at '${path ? path + '.' : ''}${r}' failed to satisfy constraint: Member must not be null`);
          }
          let set = 0;
          for (const key of Object.keys(obj)) {
            const child = children.get(key);
            const childPath = path ? `${path}.${key}` : key;
            if (!child) {
              push(problems, `Unknown parameter '${childPath}'; valid parameters${path ? ` of ${at(path)}` : ''}: ${names.join(', ')}`);
              continue;
            }
            const v = obj[key];
            // A null member means "not set", as AWS services read it: handlers never see it.
            if (v === null || v === undefined) { delete obj[key]; continue; }
            set++;
            child(v, childPath, problems);
          }
          if (shape.union && set !== 1) push(problems, `${at(path)} must have exactly one member set, found ${set}`);
        };
      }
      case 'list': {
        const member = this.validator(shape.member!.shape);
        const { min, max } = shape;
        return (value, path, problems) => {
          if (!Array.isArray(value)) { push(problems, `Invalid type at ${at(path)}: expected a list, got ${describe(value)}`); return; }
          if (min !== undefined && value.length < min) push(problems, `Value at '${path}' failed to satisfy constraint: Member must have length greater than or equal to ${min}`);
          if (max !== undefined && value.length > max) push(problems, `Value at '${path}' failed to satisfy constraint: Member must have length less than or equal to ${max}`);
          for (let i = 0; i < value.length && problems.length < MAX_PROBLEMS; i++) {
            if (value[i] === null) { push(problems, `Value null at '${path}[${i}]' failed to satisfy constraint: Member must not be null`); continue; }
            member(value[i], `${path}[${i}]`, problems);
          }
        };
      }
      case 'map': {
        const key = this.validator(shape.key!.shape);
        const val = this.validator(shape.value!.shape);
        return (value, path, problems) => {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) { push(problems, `Invalid type at ${at(path)}: expected a map, got ${describe(value)}`); return; }
          for (const [k, v] of Object.entries(value)) {
            key(k, `${path}.${k}`, problems);
            if (v !== null) val(v, `${path}.${k}`, problems);
            else delete (value as Record<string, unknown>)[k];
          }
        };
      }
      case 'string': {
        const { min, max } = shape;
        const allowed = shape.enum ? new Set(shape.enum) : undefined;
        const pattern = shape.pattern ? safeRegExp(shape.pattern) : undefined;
        return (value, path, problems) => {
          if (typeof value !== 'string') { push(problems, `Invalid type at ${at(path)}: expected a string, got ${describe(value)}`); return; }
          if (allowed && !allowed.has(value)) {
            push(problems, `Value '${value.slice(0, 100)}' at '${path}' failed to satisfy constraint: Member must satisfy enum value set: [${shape.enum!.join(', ')}]`);
            return;
          }
          if (min !== undefined && value.length < min) push(problems, `Value '${value}' at '${path}' failed to satisfy constraint: Member must have length greater than or equal to ${min}`);
          if (max !== undefined && value.length > max) push(problems, `Value at '${path}' failed to satisfy constraint: Member must have length less than or equal to ${max}`);
          if (pattern && !pattern.test(value)) push(problems, `Value '${value.slice(0, 100)}' at '${path}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${shape.pattern}`);
        };
      }
      case 'integer':
      case 'long': {
        const { min, max } = shape;
        const lo = shape.type === 'integer' ? -2147483648 : Number.MIN_SAFE_INTEGER;
        const hi = shape.type === 'integer' ? 2147483647 : Number.MAX_SAFE_INTEGER;
        return (value, path, problems) => {
          if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) {
            push(problems, `Invalid type at ${at(path)}: expected an integer, got ${describe(value)}`);
            return;
          }
          if (min !== undefined && value < min) push(problems, `Value '${value}' at '${path}' failed to satisfy constraint: Member must have value greater than or equal to ${min}`);
          if (max !== undefined && value > max) push(problems, `Value '${value}' at '${path}' failed to satisfy constraint: Member must have value less than or equal to ${max}`);
        };
      }
      case 'double':
      case 'float': {
        const { min, max } = shape;
        return (value, path, problems) => {
          if (typeof value !== 'number' || !Number.isFinite(value)) { push(problems, `Invalid type at ${at(path)}: expected a number, got ${describe(value)}`); return; }
          if (min !== undefined && value < min) push(problems, `Value '${value}' at '${path}' failed to satisfy constraint: Member must have value greater than or equal to ${min}`);
          if (max !== undefined && value > max) push(problems, `Value '${value}' at '${path}' failed to satisfy constraint: Member must have value less than or equal to ${max}`);
        };
      }
      case 'boolean':
        return (value, path, problems) => {
          if (typeof value !== 'boolean') push(problems, `Invalid type at ${at(path)}: expected a boolean, got ${describe(value)}`);
        };
      case 'timestamp':
        return (value, path, problems) => {
          const ok = (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && !Number.isNaN(Date.parse(value)));
          if (!ok) push(problems, `Invalid type at ${at(path)}: expected a timestamp (epoch seconds), got ${describe(value)}`);
        };
      case 'blob':
        return (value, path, problems) => {
          if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) push(problems, `Invalid type at ${at(path)}: expected base64-encoded data, got ${describe(value)}`);
        };
      default:
        return () => {};
    }
  }
}

function safeRegExp(pattern: string): RegExp | undefined {
  try { return new RegExp(pattern, 'u'); } catch { return undefined; }
}
