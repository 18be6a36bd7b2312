// Task definitions: families and revisions. Revision numbers only ever grow within a
// family, even after deletions; deregistered revisions stay describable.
import type { RequestContext } from '../api/context.js';
import { clientException, invalidParameter } from '../api/errors.js';
import type { Store } from '../store/store.js';
import { decodeToken, ecsArn, encodeToken, pageSize, paginate, resolveRef, seconds, sk, validateTags, type Tag } from './common.js';
import { normalizeTaskDefinition, type Json } from './task-definition-rules.js';

export type TaskDefinitionStatus = 'ACTIVE' | 'INACTIVE' | 'DELETE_IN_PROGRESS';

export interface TaskDefinitionRecord {
  taskDefinitionArn: string;
  family: string;
  revision: number;
  status: TaskDefinitionStatus;
  body: Json;
  compatibilities: string[];
  registeredAt: number;
  registeredBy: string;
  deregisteredAt?: number;
  deleteRequestedAt?: number;
  tags: Tag[];
}

interface FamilyRecord { family: string; latestRevision: number; activeRevisions: number }

const KIND = 'task-definition';
const FAMILY = 'task-definition-family';
/** Sorts family names before revisions (' ' is below every allowed name character). */
const idOf = (family: string, revision: number) => `${family} ${String(revision).padStart(10, '0')}`;

/** Seals secret values at registration and opens them for task specs (kms/secrets.ts). */
export interface TaskSecrets {
  protect(scope: string, body: Json, tags: Tag[]): Json;
  /** A function opening one value for a task's spec; throws when a value cannot be opened for a task not started yet. */
  opener(scope: string, task: { taskArn: string; lastStatus: string }): (value: string, kind: 'environment' | 'secret', what: string) => string;
}

/** Answers whether tasks or services still use a revision (filled in by the task work). */
export type TaskDefinitionUsage = (scope: string, arn: string) => boolean;

export class TaskDefinitions {
  inUse: TaskDefinitionUsage = () => false;

  /** `secrets`: without it, `berth:secret:` values would be stored in clear, so there is no default. */
  constructor(private readonly store: Store, readonly secrets: TaskSecrets) {}

  view(r: TaskDefinitionRecord): Json {
    return {
      taskDefinitionArn: r.taskDefinitionArn,
      ...r.body,
      family: r.family,
      revision: r.revision,
      status: r.status,
      compatibilities: r.compatibilities,
      registeredAt: seconds(r.registeredAt),
      registeredBy: r.registeredBy,
      ...(r.deregisteredAt !== undefined ? { deregisteredAt: seconds(r.deregisteredAt) } : {}),
      ...(r.deleteRequestedAt !== undefined ? { deleteRequestedAt: seconds(r.deleteRequestedAt) } : {}),
    };
  }

  get(scope: string, family: string, revision: number): TaskDefinitionRecord | undefined {
    return this.store.get<TaskDefinitionRecord>(KIND, scope, idOf(family, revision));
  }

  save(scope: string, r: TaskDefinitionRecord): void {
    this.store.put(KIND, scope, idOf(r.family, r.revision), r, r.family);
  }

  /** The revision an ARN names, in `scope`. */
  byArn(scope: string, arn: string): TaskDefinitionRecord | undefined {
    const m = /:task-definition\/([a-zA-Z0-9_-]{1,255}):(\d+)$/.exec(arn);
    return m ? this.get(scope, m[1]!, Number(m[2])) : undefined;
  }

  /** family | family:revision | ARN → the record (latest ACTIVE revision for a bare family). */
  resolve(ctx: RequestContext, ref: string): TaskDefinitionRecord | undefined {
    const text = resolveRef(ctx, ref, 'task-definition', 'taskDefinition');
    const scope = sk(ctx.scope);
    const m = /^([a-zA-Z0-9_-]{1,255})(?::(\d{1,10}))?$/.exec(text);
    if (!m) return undefined;
    const family = m[1]!;
    if (m[2] !== undefined) return this.get(scope, family, Number(m[2]));
    const revisions = this.store.list<TaskDefinitionRecord>(KIND, scope, { parent: family, desc: true });
    return revisions.find((r) => r.status === 'ACTIVE');
  }

  register(ctx: RequestContext, input: Json) {
    const tags: Tag[] = (input.tags ?? []).map((t: Tag) => ({ key: t.key, value: t.value ?? '' }));
    validateTags(tags);
    const normalized = normalizeTaskDefinition(input);
    const { compatibilities } = normalized;
    const scope = sk(ctx.scope);
    const body = this.secrets.protect(scope, normalized.body, tags);
    return this.store.tx(() => {
      const fam = this.store.get<FamilyRecord>(FAMILY, scope, body.family) ?? { family: body.family, latestRevision: 0, activeRevisions: 0 };
      fam.latestRevision += 1;
      fam.activeRevisions += 1;
      this.store.put(FAMILY, scope, fam.family, fam);
      const record: TaskDefinitionRecord = {
        taskDefinitionArn: ecsArn(ctx.scope, `task-definition/${fam.family}:${fam.latestRevision}`),
        family: fam.family,
        revision: fam.latestRevision,
        status: 'ACTIVE',
        body,
        compatibilities,
        registeredAt: ctx.clock.now(),
        registeredBy: `arn:${ctx.scope.partition}:${ctx.principal.principal}`,
        tags,
      };
      this.save(scope, record);
      return { taskDefinition: this.view(record), ...(tags.length ? { tags } : {}) };
    });
  }

  describe(ctx: RequestContext, input: { taskDefinition: string; include?: string[] }) {
    const r = this.resolve(ctx, input.taskDefinition);
    if (!r) throw clientException('Unable to describe task definition.');
    return { taskDefinition: this.view(r), ...((input.include ?? []).includes('TAGS') ? { tags: r.tags } : {}) };
  }

  list(ctx: RequestContext, input: { familyPrefix?: string; status?: TaskDefinitionStatus; sort?: 'ASC' | 'DESC'; maxResults?: number; nextToken?: string }) {
    const max = pageSize(input.maxResults, 100);
    const status = input.status ?? 'ACTIVE';
    const desc = input.sort === 'DESC';
    const after = decodeToken(input.nextToken);
    const scope = sk(ctx.scope);
    const arns: string[] = [];
    let last: string | undefined;
    let cursor = after;
    let more = false;
    // Scan in id order, reading only each revision's ARN and status, until a page is full.
    const batchSize = max + 1;
    for (;;) {
      const batch = this.store.listFields<{ taskDefinitionArn: string; status: string }>(KIND, scope, ['taskDefinitionArn', 'status'], {
        ...(input.familyPrefix ? { prefix: input.familyPrefix } : {}),
        ...(cursor !== undefined ? { after: cursor } : {}),
        desc, limit: batchSize,
      });
      for (const r of batch) {
        cursor = r.id;
        if (r.status !== status) continue;
        if (arns.length === max) { more = true; break; }
        arns.push(r.taskDefinitionArn);
        last = cursor;
      }
      if (more || batch.length < batchSize) break;
    }
    return { taskDefinitionArns: arns, ...(more && last !== undefined ? { nextToken: encodeToken(last) } : {}) };
  }

  listFamilies(ctx: RequestContext, input: { familyPrefix?: string; status?: 'ACTIVE' | 'INACTIVE' | 'ALL'; maxResults?: number; nextToken?: string }) {
    const max = pageSize(input.maxResults, 100);
    const status = input.status ?? 'ACTIVE';
    const families = this.store.list<FamilyRecord>(FAMILY, sk(ctx.scope), input.familyPrefix ? { prefix: input.familyPrefix } : {})
      .filter((f) => status === 'ALL' || (status === 'ACTIVE' ? f.activeRevisions > 0 : f.activeRevisions === 0));
    const { page, nextToken } = paginate(families, (f) => f.family, max, input.nextToken);
    return { families: page.map((f) => f.family), ...(nextToken ? { nextToken } : {}) };
  }

  private requireRevision(ctx: RequestContext, ref: string): TaskDefinitionRecord {
    const text = resolveRef(ctx, ref, 'task-definition', 'taskDefinition');
    if (!/^[a-zA-Z0-9_-]{1,255}:\d{1,10}$/.test(text)) {
      throw invalidParameter(`Task definition '${ref}' must include a revision: use family:revision or the full ARN.`);
    }
    const r = this.resolve(ctx, ref);
    if (!r) throw clientException('The specified task definition does not exist.');
    return r;
  }

  deregister(ctx: RequestContext, input: { taskDefinition: string }) {
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const r = this.requireRevision(ctx, input.taskDefinition);
      if (r.status === 'ACTIVE') {
        r.status = 'INACTIVE';
        r.deregisteredAt = ctx.clock.now();
        this.save(scope, r);
        const fam = this.store.get<FamilyRecord>(FAMILY, scope, r.family)!;
        fam.activeRevisions = Math.max(0, fam.activeRevisions - 1);
        this.store.put(FAMILY, scope, fam.family, fam);
      }
      return { taskDefinition: this.view(r) };
    });
  }

  deleteMany(ctx: RequestContext, input: { taskDefinitions: string[] }) {
    if (input.taskDefinitions.length === 0 || input.taskDefinitions.length > 10) {
      throw invalidParameter(`taskDefinitions must list between 1 and 10 task definitions; got ${input.taskDefinitions.length}.`);
    }
    const scope = sk(ctx.scope);
    return this.store.tx(() => {
      const taskDefinitions: Json[] = [];
      const failures: { arn: string; reason: string; detail?: string }[] = [];
      for (const ref of input.taskDefinitions) {
        let r: TaskDefinitionRecord;
        try { r = this.requireRevision(ctx, ref); } catch (e) {
          failures.push({ arn: ref, reason: 'The specified task definition does not exist.', detail: (e as Error).message });
          continue;
        }
        if (r.status === 'ACTIVE') {
          failures.push({ arn: r.taskDefinitionArn, reason: 'The specified task definition is still in ACTIVE status. Please deregister the target and try again.' });
          continue;
        }
        if (r.status === 'INACTIVE') {
          r.status = 'DELETE_IN_PROGRESS';
          r.deleteRequestedAt = ctx.clock.now();
          this.save(scope, r);
        }
        taskDefinitions.push(this.view(r));
      }
      return { taskDefinitions, failures };
    });
  }

  /** Removes revisions whose deletion was requested once nothing uses them. */
  reapDeleted(): number {
    let removed = 0;
    for (const { scope, id, body } of this.store.listAll<TaskDefinitionRecord>(KIND)) {
      if (body.status !== 'DELETE_IN_PROGRESS' || this.inUse(scope, body.taskDefinitionArn)) continue;
      this.store.delete(KIND, scope, id);
      removed++;
    }
    return removed;
  }

}
