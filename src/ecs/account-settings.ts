// ECS account settings: explicit per-principal values, account defaults (root), and the
// AWS defaults behind both. Effective value = principal's, else the account default,
// else AWS's.
import type { RequestContext } from '../api/context.js';
import { invalidParameter } from '../api/errors.js';
import { isGovCloud, parseArn } from '../domain/arn.js';
import type { Store } from '../store/store.js';
import { notAuthorized, pageSize, paginate, sk } from './common.js';

type SettingName =
  | 'serviceLongArnFormat' | 'taskLongArnFormat' | 'containerInstanceLongArnFormat' | 'awsvpcTrunking'
  | 'containerInsights' | 'fargateFIPSMode' | 'tagResourceAuthorization' | 'fargateTaskRetirementWaitPeriod'
  | 'guardDutyActivate' | 'defaultLogDriverMode' | 'fargateEventWindows';

interface SettingRule { values: string[]; dflt: string; defaultOnly?: boolean; readOnly?: boolean; govCloudOnly?: boolean }

const RULES: Record<SettingName, SettingRule> = {
  serviceLongArnFormat: { values: ['enabled', 'disabled'], dflt: 'enabled' },
  taskLongArnFormat: { values: ['enabled', 'disabled'], dflt: 'enabled' },
  containerInstanceLongArnFormat: { values: ['enabled', 'disabled'], dflt: 'enabled' },
  awsvpcTrunking: { values: ['enabled', 'disabled'], dflt: 'disabled' },
  containerInsights: { values: ['enhanced', 'enabled', 'disabled'], dflt: 'disabled' },
  fargateFIPSMode: { values: ['enabled', 'disabled'], dflt: 'disabled', defaultOnly: true, govCloudOnly: true },
  tagResourceAuthorization: { values: ['on', 'off'], dflt: 'on' },
  fargateTaskRetirementWaitPeriod: { values: ['0', '7', '14'], dflt: '7', defaultOnly: true },
  guardDutyActivate: { values: ['on', 'off'], dflt: 'off', readOnly: true },
  defaultLogDriverMode: { values: ['blocking', 'non-blocking'], dflt: 'non-blocking' },
  fargateEventWindows: { values: ['enabled', 'disabled'], dflt: 'disabled' },
};

const NAMES = Object.keys(RULES) as SettingName[];

interface StoredSetting { name: SettingName; value: string; principalArn: string }
interface Setting { name: string; value: string; principalArn: string; type: 'user' | 'aws_managed' }

const KIND = 'account-setting';

export function rootArn(ctx: RequestContext): string {
  return `arn:${ctx.scope.partition}:iam::${ctx.scope.account}:root`;
}

function callerArn(ctx: RequestContext): string {
  return `arn:${ctx.scope.partition}:${ctx.principal.principal}`;
}

function checkPrincipal(ctx: RequestContext, principalArn: string): void {
  const arn = parseArn(principalArn);
  if (!arn || arn.service !== 'iam' || !/^\d{12}$/.test(arn.account) || !/^(root|user\/.+|role\/.+)$/.test(arn.resource)) {
    throw invalidParameter(`principalArn '${principalArn}' is not an IAM user, role or root ARN (arn:${ctx.scope.partition}:iam::ACCOUNT:user/NAME).`);
  }
  if (arn.account !== ctx.scope.account) throw notAuthorized(ctx, principalArn);
}

function checkValue(ctx: RequestContext, name: SettingName, value: string, asDefault: boolean): void {
  const rule = RULES[name];
  if (rule.readOnly) throw invalidParameter(`The ${name} setting is read-only; it cannot be changed through the API.`);
  if (rule.govCloudOnly && !isGovCloud(ctx.scope.region)) throw invalidParameter(`The ${name} setting is only supported in AWS GovCloud (US) Regions.`);
  if (rule.defaultOnly && !asDefault) throw invalidParameter(`The ${name} setting can only be changed for the whole account; use PutAccountSettingDefault.`);
  if (!rule.values.includes(value)) throw invalidParameter(`Invalid value '${value}' for setting ${name}. Valid values: ${rule.values.join(', ')}.`);
}

export class AccountSettings {
  constructor(private readonly store: Store) {}

  /** The value that applies to the caller for `name`. */
  effective(ctx: RequestContext, name: SettingName, principalArn = callerArn(ctx)): string {
    const scope = sk(ctx.scope);
    return this.store.get<StoredSetting>(KIND, scope, `${principalArn}|${name}`)?.value
      ?? this.store.get<StoredSetting>(KIND, scope, `${rootArn(ctx)}|${name}`)?.value
      ?? RULES[name].dflt;
  }

  put(ctx: RequestContext, input: { name: SettingName; value: string; principalArn?: string }): { setting: Setting } {
    const principalArn = input.principalArn ?? callerArn(ctx);
    checkPrincipal(ctx, principalArn);
    const asDefault = principalArn === rootArn(ctx);
    checkValue(ctx, input.name, input.value, asDefault);
    const stored: StoredSetting = { name: input.name, value: input.value, principalArn };
    this.store.put(KIND, sk(ctx.scope), `${principalArn}|${input.name}`, stored);
    return { setting: { ...stored, type: 'user' } };
  }

  putDefault(ctx: RequestContext, input: { name: SettingName; value: string }): { setting: Setting } {
    return this.put(ctx, { ...input, principalArn: rootArn(ctx) });
  }

  delete(ctx: RequestContext, input: { name: SettingName; principalArn?: string }): { setting: Setting } {
    const principalArn = input.principalArn ?? callerArn(ctx);
    checkPrincipal(ctx, principalArn);
    const id = `${principalArn}|${input.name}`;
    const existing = this.store.get<StoredSetting>(KIND, sk(ctx.scope), id);
    if (!existing) throw invalidParameter(`No ${input.name} setting is set for ${principalArn}; there is nothing to delete.`);
    this.store.delete(KIND, sk(ctx.scope), id);
    return { setting: { ...existing, type: 'user' } };
  }

  list(ctx: RequestContext, input: { name?: SettingName; value?: string; principalArn?: string; effectiveSettings?: boolean; maxResults?: number; nextToken?: string }):
    { settings: Setting[]; nextToken?: string } {
    if (input.value !== undefined && input.name === undefined) throw invalidParameter('value can only be used together with name.');
    const principalArn = input.principalArn ?? callerArn(ctx);
    checkPrincipal(ctx, principalArn);
    const max = pageSize(input.maxResults, 10);
    const scope = sk(ctx.scope);
    const names = input.name ? [input.name] : NAMES;
    const settings: Setting[] = [];
    for (const name of names) {
      const own = this.store.get<StoredSetting>(KIND, scope, `${principalArn}|${name}`);
      if (own) { settings.push({ ...own, type: 'user' }); continue; }
      if (!input.effectiveSettings) continue;
      const dflt = this.store.get<StoredSetting>(KIND, scope, `${rootArn(ctx)}|${name}`);
      if (dflt) settings.push({ ...dflt, type: 'user' });
      else settings.push({ name, value: RULES[name].dflt, principalArn: rootArn(ctx), type: 'aws_managed' });
    }
    const filtered = (input.value === undefined ? settings : settings.filter((s) => s.value === input.value))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const { page, nextToken } = paginate(filtered, (s) => s.name, max, input.nextToken);
    return nextToken ? { settings: page, nextToken } : { settings: page };
  }
}
