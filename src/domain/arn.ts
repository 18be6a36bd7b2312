// ARNs and partitions. The region comes from the request's signature; the partition
// follows from the region, so GovCloud resources carry `aws-us-gov`.

export type Partition = 'aws' | 'aws-us-gov' | 'aws-cn';

const REGION_PATTERN = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;

export function isValidRegion(region: string): boolean {
  return REGION_PATTERN.test(region);
}

export function partitionOf(region: string): Partition {
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('cn-')) return 'aws-cn';
  return 'aws';
}

export function isGovCloud(region: string): boolean {
  return partitionOf(region) === 'aws-us-gov';
}

export interface Arn {
  partition: string;
  service: string;
  region: string;
  account: string;
  /** Everything after the account, e.g. `cluster/default`. */
  resource: string;
}

export function formatArn(a: Arn): string {
  return `arn:${a.partition}:${a.service}:${a.region}:${a.account}:${a.resource}`;
}

export function parseArn(text: string): Arn | undefined {
  if (!text.startsWith('arn:')) return undefined;
  const parts = text.split(':');
  if (parts.length < 6) return undefined;
  const [, partition, service, region, account] = parts;
  const resource = parts.slice(5).join(':');
  if (!partition || !service || resource === '') return undefined;
  return { partition, service, region: region ?? '', account: account ?? '', resource };
}

/** The scope every regional resource lives in: one account in one region. */
export interface Scope {
  account: string;
  region: string;
  partition: Partition;
}

export function scopeKey(s: Scope): string {
  return `${s.account}/${s.region}`;
}

export function regionalArn(scope: Scope, service: string, resource: string): string {
  return formatArn({ partition: scope.partition, service, region: scope.region, account: scope.account, resource });
}

/** The Scope of a `account/region` store key. */
export function scopeFromKey(key: string): Scope {
  const [account, region] = key.split('/') as [string, string];
  return { account, region, partition: partitionOf(region) };
}
