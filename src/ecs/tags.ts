// TagResource, UntagResource and ListTagsForResource over every taggable ECS resource.
// Each resource kind registers how to find and save its record by the part of its ARN
// after the resource type.
import type { RequestContext } from '../api/context.js';
import { invalidParameter, resourceNotFound } from '../api/errors.js';
import { parseArn } from '../domain/arn.js';
import { mergeTags, notAuthorized, sk, validateTags, withoutKeys, type Tag } from './common.js';

export interface Taggable {
  /** The record's tags, or undefined when no such (live) resource exists. */
  getTags(scope: string, id: string): Tag[] | undefined;
  setTags(scope: string, id: string, tags: Tag[]): void;
  /** Extra rules a kind puts on its tags (e.g. reserved settings keys). */
  checkTags?(tags: Tag[]): void;
}

export class Tags {
  private readonly kinds = new Map<string, Taggable>();

  register(resourceType: string, t: Taggable): void {
    this.kinds.set(resourceType, t);
  }

  private locate(ctx: RequestContext, resourceArn: string): { kind: Taggable; id: string } {
    const arn = parseArn(resourceArn);
    const slash = arn?.resource.indexOf('/') ?? -1;
    if (!arn || arn.service !== 'ecs' || slash < 0) {
      throw invalidParameter(`resourceArn '${resourceArn}' is not an Amazon ECS resource ARN.`);
    }
    if (arn.account !== ctx.scope.account) throw notAuthorized(ctx, resourceArn);
    if (arn.region !== ctx.scope.region || arn.partition !== ctx.scope.partition) {
      throw invalidParameter(`resourceArn '${resourceArn}' is in another region or partition than this request (${ctx.scope.region}).`);
    }
    const type = arn.resource.slice(0, slash);
    const kind = this.kinds.get(type);
    if (!kind) throw invalidParameter(`Resources of type '${type}' cannot be tagged. Taggable types: ${[...this.kinds.keys()].join(', ')}.`);
    return { kind, id: arn.resource.slice(slash + 1) };
  }

  private existing(ctx: RequestContext, resourceArn: string, missing = resourceNotFound): { kind: Taggable; id: string; tags: Tag[] } {
    const { kind, id } = this.locate(ctx, resourceArn);
    const tags = kind.getTags(sk(ctx.scope), id);
    if (!tags) throw missing(`The specified resource could not be found: ${resourceArn}.`);
    return { kind, id, tags };
  }

  tag(ctx: RequestContext, input: { resourceArn: string; tags: Tag[] }, tx: <R>(fn: () => R) => R) {
    validateTags(input.tags);
    return tx(() => {
      const { kind, id, tags } = this.existing(ctx, input.resourceArn);
      const next = mergeTags(tags, input.tags);
      validateTags(next);
      kind.checkTags?.(next);
      kind.setTags(sk(ctx.scope), id, next);
      return {};
    });
  }

  untag(ctx: RequestContext, input: { resourceArn: string; tagKeys: string[] }, tx: <R>(fn: () => R) => R) {
    return tx(() => {
      const { kind, id, tags } = this.existing(ctx, input.resourceArn);
      const next = withoutKeys(tags, input.tagKeys);
      kind.checkTags?.(next);
      kind.setTags(sk(ctx.scope), id, next);
      return {};
    });
  }

  list(ctx: RequestContext, input: { resourceArn: string }) {
    return { tags: this.existing(ctx, input.resourceArn, invalidParameter).tags };
  }
}
