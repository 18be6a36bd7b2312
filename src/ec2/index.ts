// The EC2 subset Berth answers on the Query protocol: instance event windows (the user's
// maintenance windows for instance replacement) and DescribeInstances for Berth's instances.
import { randomBytes } from 'node:crypto';
import type { RequestContext } from '../api/context.js';
import { ApiError } from '../api/errors.js';
import type { ContainerInstanceRecord } from '../ecs/container-instances.js';
import type { Ecs } from '../ecs/index.js';
import { sk } from '../ecs/common.js';
import { intervalsFromCron, intervalsFromTimeRanges, WindowError, type TimeRange, type WeeklyInterval } from '../domain/event-windows.js';
import type { Store } from '../store/store.js';

type Json = Record<string, any>;
interface Tag { Key: string; Value: string }

export interface EventWindowRecord {
  InstanceEventWindowId: string;
  Name?: string;
  TimeRanges?: TimeRange[];
  CronExpression?: string;
  AssociationTarget: { InstanceIds: string[]; Tags: Tag[]; DedicatedHostIds: string[] };
  State: 'active';
  Tags: Tag[];
}

const KIND = 'event-window';
/** Every instance Berth launches carries this tag, as ECS Managed Instances' do. */
export const MANAGED_LAUNCH_TAG: Tag = { Key: 'aws:ec2:managed-launch', Value: 'ecs-managed-instances' };

const bad = (message: string) => new ApiError('InvalidParameterValue', message);
const combination = (message: string) => new ApiError('InvalidParameterCombination', message);
const notFound = (id: string) => new ApiError('InvalidInstanceEventWindowId.NotFound', `The event window ID '${id}' does not exist`);

/** The weekly intervals of a window (validated when it was stored). */
export function windowIntervals(w: EventWindowRecord): WeeklyInterval[] {
  return w.CronExpression ? intervalsFromCron(w.CronExpression) : intervalsFromTimeRanges(w.TimeRanges ?? []);
}

function checkSchedule(input: { TimeRanges?: TimeRange[]; CronExpression?: string }): void {
  const hasRanges = (input.TimeRanges?.length ?? 0) > 0;
  if (hasRanges && input.CronExpression) throw combination('You can specify either TimeRanges or CronExpression, not both.');
  if (!hasRanges && !input.CronExpression) throw new ApiError('MissingParameter', 'Specify either TimeRanges or CronExpression.');
  try {
    if (input.CronExpression) intervalsFromCron(input.CronExpression); else intervalsFromTimeRanges(input.TimeRanges!);
  } catch (e) {
    if (e instanceof WindowError) throw bad(e.message);
    throw e;
  }
}

export class Ec2 {
  constructor(private readonly store: Store, private readonly ecs: Ecs) {}

  private windows(scope: string): EventWindowRecord[] {
    return this.store.list<EventWindowRecord>(KIND, scope);
  }

  private window(scope: string, id: string): EventWindowRecord {
    const w = this.store.get<EventWindowRecord>(KIND, scope, id);
    if (!w) throw notFound(id);
    return w;
  }

  private save(scope: string, w: EventWindowRecord): void {
    this.store.put(KIND, scope, w.InstanceEventWindowId, w);
  }

  /** The tags an instance has as EC2 shows them. */
  instanceTags(ci: ContainerInstanceRecord): Tag[] {
    return [MANAGED_LAUNCH_TAG, ...ci.tags.map((t) => ({ Key: t.key, Value: t.value ?? '' }))];
  }

  /** The event windows that apply to an instance (by id, or by any of its tags). */
  windowsFor(scope: string, ci: ContainerInstanceRecord): EventWindowRecord[] {
    const tags = this.instanceTags(ci);
    return this.windows(scope).filter((w) => w.AssociationTarget.InstanceIds.includes(ci.ec2InstanceId)
      || w.AssociationTarget.Tags.some((t) => tags.some((x) => x.Key === t.Key && x.Value === t.Value)));
  }

  private instances(scope: string): ContainerInstanceRecord[] {
    return this.store.listAll<ContainerInstanceRecord>('container-instance')
      .filter((r) => r.scope === scope).map((r) => r.body);
  }

  private view(w: EventWindowRecord): Json {
    return {
      InstanceEventWindowId: w.InstanceEventWindowId,
      ...(w.TimeRanges ? { TimeRanges: w.TimeRanges } : {}),
      ...(w.Name !== undefined ? { Name: w.Name } : {}),
      ...(w.CronExpression ? { CronExpression: w.CronExpression } : {}),
      AssociationTarget: w.AssociationTarget,
      State: w.State,
      Tags: w.Tags,
    };
  }

  create(ctx: RequestContext, input: Json) {
    checkSchedule(input);
    const tags: Tag[] = [];
    for (const spec of input.TagSpecifications ?? []) {
      if (spec.ResourceType && spec.ResourceType !== 'instance-event-window') throw bad(`TagSpecifications ResourceType must be instance-event-window; got '${spec.ResourceType}'.`);
      for (const t of spec.Tags ?? []) tags.push({ Key: t.Key, Value: t.Value ?? '' });
    }
    if (tags.some((t) => /^aws:/i.test(t.Key))) throw bad('Tag keys starting with aws: are reserved.');
    const w: EventWindowRecord = {
      InstanceEventWindowId: `iew-${randomBytes(9).toString('hex').slice(0, 17)}`,
      ...(input.Name !== undefined ? { Name: input.Name } : {}),
      ...(input.TimeRanges?.length ? { TimeRanges: input.TimeRanges.map(pickRange) } : {}),
      ...(input.CronExpression ? { CronExpression: input.CronExpression } : {}),
      AssociationTarget: { InstanceIds: [], Tags: [], DedicatedHostIds: [] },
      State: 'active',
      Tags: tags,
    };
    this.save(sk(ctx.scope), w);
    return { InstanceEventWindow: this.view(w) };
  }

  describe(ctx: RequestContext, input: Json) {
    const scope = sk(ctx.scope);
    let list = this.windows(scope);
    if (input.InstanceEventWindowIds?.length) {
      for (const id of input.InstanceEventWindowIds) if (!list.some((w) => w.InstanceEventWindowId === id)) throw notFound(id);
      list = list.filter((w) => input.InstanceEventWindowIds.includes(w.InstanceEventWindowId));
    }
    for (const f of input.Filters ?? []) {
      const values: string[] = f.Values ?? [];
      const match = (w: EventWindowRecord): boolean => {
        switch (f.Name) {
          case 'instance-id': return w.AssociationTarget.InstanceIds.some((i) => values.includes(i));
          case 'dedicated-host-id': return w.AssociationTarget.DedicatedHostIds.some((i) => values.includes(i));
          case 'instance-tag': return w.AssociationTarget.Tags.some((t) => values.includes(`${t.Key}=${t.Value}`));
          case 'instance-tag-key': return w.AssociationTarget.Tags.some((t) => values.includes(t.Key));
          case 'instance-tag-value': return w.AssociationTarget.Tags.some((t) => values.includes(t.Value));
          case 'event-window-name': return values.includes(w.Name ?? '');
          case 'tag-key': return w.Tags.some((t) => values.includes(t.Key));
          case 'tag-value': return w.Tags.some((t) => values.includes(t.Value));
          default:
            if (typeof f.Name === 'string' && f.Name.startsWith('tag:')) return w.Tags.some((t) => t.Key === f.Name.slice(4) && values.includes(t.Value));
            throw bad(`The filter '${f.Name}' is invalid.`);
        }
      };
      list = list.filter(match);
    }
    const max = input.MaxResults ?? 500;
    if (max < 20 || max > 500) throw bad('MaxResults must be between 20 and 500.');
    const start = input.NextToken ? Number(Buffer.from(input.NextToken, 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0) throw bad('The NextToken is invalid.');
    const page = list.slice(start, start + max);
    const more = start + max < list.length;
    return { InstanceEventWindows: page.map((w) => this.view(w)), ...(more ? { NextToken: Buffer.from(String(start + max)).toString('base64url') } : {}) };
  }

  modify(ctx: RequestContext, input: Json) {
    const scope = sk(ctx.scope);
    const w = this.window(scope, input.InstanceEventWindowId);
    if (input.TimeRanges?.length || input.CronExpression) {
      checkSchedule(input);
      if (input.CronExpression) { w.CronExpression = input.CronExpression; delete w.TimeRanges; }
      else { w.TimeRanges = input.TimeRanges.map(pickRange); delete w.CronExpression; }
    }
    if (input.Name !== undefined) w.Name = input.Name;
    this.save(scope, w);
    return { InstanceEventWindow: this.view(w) };
  }

  delete(ctx: RequestContext, input: Json) {
    const scope = sk(ctx.scope);
    const w = this.window(scope, input.InstanceEventWindowId);
    const t = w.AssociationTarget;
    if (!input.ForceDelete && (t.InstanceIds.length || t.Tags.length || t.DedicatedHostIds.length)) {
      throw new ApiError('InvalidInstanceEventWindow.InUse', `The event window '${w.InstanceEventWindowId}' is associated with targets. Disassociate them first, or delete it with ForceDelete.`);
    }
    this.store.delete(KIND, scope, w.InstanceEventWindowId);
    return { InstanceEventWindowState: { InstanceEventWindowId: w.InstanceEventWindowId, State: 'deleting' } };
  }

  associate(ctx: RequestContext, input: Json) {
    const scope = sk(ctx.scope);
    const w = this.window(scope, input.InstanceEventWindowId);
    const target = input.AssociationTarget ?? {};
    const ids: string[] = target.InstanceIds ?? [];
    const tags: Tag[] = (target.InstanceTags ?? []).map((t: Tag) => ({ Key: t.Key, Value: t.Value ?? '' }));
    const hosts: string[] = target.DedicatedHostIds ?? [];
    const kinds = [ids.length > 0, tags.length > 0, hosts.length > 0].filter(Boolean).length;
    if (kinds !== 1) throw combination('Specify exactly one type of target: instance IDs, instance tags or Dedicated Host IDs.');
    if (hosts.length) throw new ApiError('InvalidHostID.NotFound', `The Dedicated Host ID '${hosts[0]}' does not exist: Berth has no Dedicated Hosts.`);
    const cur = w.AssociationTarget;
    const currentKind = cur.InstanceIds.length ? 'ids' : cur.Tags.length ? 'tags' : undefined;
    if (currentKind && currentKind !== (ids.length ? 'ids' : 'tags')) {
      throw combination('An event window can be associated with only one type of target; disassociate the current targets first.');
    }
    const known = new Set(this.instances(scope).filter((ci) => ci.ec2State !== 'terminated').map((ci) => ci.ec2InstanceId));
    for (const id of ids) if (!known.has(id)) throw new ApiError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    cur.InstanceIds = [...new Set([...cur.InstanceIds, ...ids])];
    for (const t of tags) if (!cur.Tags.some((x) => x.Key === t.Key && x.Value === t.Value)) cur.Tags.push(t);
    this.save(scope, w);
    return { InstanceEventWindow: this.view(w) };
  }

  disassociate(ctx: RequestContext, input: Json) {
    const scope = sk(ctx.scope);
    const w = this.window(scope, input.InstanceEventWindowId);
    const target = input.AssociationTarget ?? {};
    const cur = w.AssociationTarget;
    const ids: string[] = target.InstanceIds ?? [];
    const tags: Tag[] = target.InstanceTags ?? [];
    cur.InstanceIds = cur.InstanceIds.filter((i) => !ids.includes(i));
    cur.Tags = cur.Tags.filter((t) => !tags.some((x) => x.Key === t.Key && (x.Value ?? '') === t.Value));
    this.save(scope, w);
    return { InstanceEventWindow: this.view(w) };
  }

  describeInstances(ctx: RequestContext, input: Json) {
    const scope = sk(ctx.scope);
    // Terminated instances stay visible for an hour, as on EC2.
    const now = ctx.clock.now();
    let list = this.instances(scope).filter((ci) => ci.ec2State !== 'terminated' || now - (ci.terminatedAt ?? now) < 3_600_000);
    if (input.InstanceIds?.length) {
      for (const id of input.InstanceIds) {
        if (!list.some((ci) => ci.ec2InstanceId === id)) throw new ApiError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
      }
      list = list.filter((ci) => input.InstanceIds.includes(ci.ec2InstanceId));
    }
    const state = (ci: ContainerInstanceRecord) => ({ pending: { Code: 0, Name: 'pending' }, running: { Code: 16, Name: 'running' }, 'shutting-down': { Code: 32, Name: 'shutting-down' }, terminated: { Code: 48, Name: 'terminated' } })[ci.ec2State];
    for (const f of input.Filters ?? []) {
      const values: string[] = f.Values ?? [];
      list = list.filter((ci) => {
        const tags = this.instanceTags(ci);
        switch (f.Name) {
          case 'instance-id': return values.includes(ci.ec2InstanceId);
          case 'instance-state-name': return values.includes(state(ci).Name);
          case 'instance-type': return values.includes(ci.instanceType);
          case 'availability-zone': return values.includes(ci.availabilityZone);
          case 'subnet-id': return values.includes(ci.subnetId);
          case 'tag-key': return tags.some((t) => values.includes(t.Key));
          default:
            if (typeof f.Name === 'string' && f.Name.startsWith('tag:')) return tags.some((t) => t.Key === f.Name.slice(4) && values.includes(t.Value));
            throw bad(`The filter '${f.Name}' is invalid.`);
        }
      });
    }
    list.sort((a, b) => a.launchedAt - b.launchedAt);
    const max = input.MaxResults ?? 1000;
    if (input.MaxResults !== undefined && (max < 5 || max > 1000)) throw bad('MaxResults must be between 5 and 1000.');
    const start = input.NextToken ? Number(Buffer.from(input.NextToken, 'base64url').toString()) : 0;
    const page = list.slice(start, start + max);
    const more = start + max < list.length;
    return {
      Reservations: page.map((ci) => ({
        ReservationId: `r-${ci.id.slice(0, 17)}`,
        OwnerId: ctx.scope.account,
        Groups: [],
        Instances: [{
          InstanceId: ci.ec2InstanceId,
          ImageId: `ami-berth-${(ci.platformVersion ?? 'unknown').replace(/[^0-9a-z]/gi, '')}`,
          InstanceType: ci.instanceType,
          LaunchTime: ci.launchedAt,
          State: state(ci),
          Placement: { AvailabilityZone: ci.availabilityZone, Tenancy: 'default' },
          SubnetId: ci.subnetId,
          ...(ci.privateIpv4Address ? { PrivateIpAddress: ci.privateIpv4Address } : {}),
          Architecture: (ci.attributes.find((a) => a.name === 'ecs.cpu-architecture')?.value ?? 'x86_64'),
          Tags: this.instanceTags(ci),
          PlatformDetails: 'Linux/UNIX',
          ...(ci.ec2State === 'terminated' && ci.statusReason ? { StateReason: { Code: 'Client.UserInitiatedShutdown', Message: ci.statusReason } } : {}),
        }],
      })),
      ...(more ? { NextToken: Buffer.from(String(start + max)).toString('base64url') } : {}),
    };
  }

  handlers() {
    return {
      CreateInstanceEventWindow: (ctx: RequestContext, i: Json) => this.create(ctx, i),
      DescribeInstanceEventWindows: (ctx: RequestContext, i: Json) => this.describe(ctx, i),
      ModifyInstanceEventWindow: (ctx: RequestContext, i: Json) => this.modify(ctx, i),
      DeleteInstanceEventWindow: (ctx: RequestContext, i: Json) => this.delete(ctx, i),
      AssociateInstanceEventWindow: (ctx: RequestContext, i: Json) => this.associate(ctx, i),
      DisassociateInstanceEventWindow: (ctx: RequestContext, i: Json) => this.disassociate(ctx, i),
      DescribeInstances: (ctx: RequestContext, i: Json) => this.describeInstances(ctx, i),
    };
  }
}

function pickRange(r: TimeRange): TimeRange {
  return { StartWeekDay: r.StartWeekDay, StartHour: r.StartHour, EndWeekDay: r.EndWeekDay, EndHour: r.EndHour };
}

