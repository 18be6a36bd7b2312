// AWS KMS (the subset Berth answers), after "Actions, resources, and condition keys for AWS
// Key Management Service": key actions are checked on the key's ARN (aliases resolved to their
// key, Decrypt without KeyId to the ciphertext's key), CreateKey/ListKeys/ListAliases on `*`,
// CreateAlias on the alias and its key. Key policies are the KMS module's own business (src/kms);
// this table is the identity-policy side.
import { regionalArn, requestTags, type Args, type Check, type Rule, type ServiceAuthz } from './types.js';

function key(a: Args): Check {
  const resolved = a.env.kmsKeyArn?.(a.ctx, a.input);
  const id = a.input.KeyId as string | undefined;
  // Unresolvable (unknown key or alias): the request is about that key id as given; the
  // handler answers NotFound for it.
  const resource = resolved ?? (id === undefined ? regionalArn(a.ctx, 'kms', 'key/*')
    : id.startsWith('arn:') ? id : regionalArn(a.ctx, 'kms', id.startsWith('alias/') ? id : `key/${id}`));
  return { resource, tags: a.env.kmsKeyTags?.(a.ctx, resource) ?? {} };
}

const onKey: Rule = { resources: (a) => [key(a)] };

export const kmsAuthz: ServiceAuthz = {
  prefix: 'kms',
  style: 'json',
  rules: {
    CreateKey: { keys: (a) => {
      const tags: Record<string, string> = {};
      for (const t of (a.input.Tags ?? []) as { TagKey: string; TagValue?: string }[]) tags[t.TagKey] = t.TagValue ?? '';
      return requestTags(tags);
    } },
    ListKeys: {},
    ListAliases: {},
    DescribeKey: onKey,
    Encrypt: onKey,
    Decrypt: onKey,
    GenerateDataKey: onKey,
    ScheduleKeyDeletion: onKey,
    CancelKeyDeletion: onKey,
    EnableKey: onKey,
    DisableKey: onKey,
    GetKeyPolicy: onKey,
    PutKeyPolicy: onKey,
    CreateAlias: { resources: (a) => [
      { resource: regionalArn(a.ctx, 'kms', String(a.input.AliasName)) },
      key({ ...a, input: { KeyId: a.input.TargetKeyId } }),
    ] },
  },
};
