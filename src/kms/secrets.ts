// Task definition secrets, sealed at rest under KMS keys and opened only when a task's spec
// goes to its instance's agent. What Berth means by them:
//   - environment values marked secret: a value written `berth:secret:<plaintext>` is sealed
//     at RegisterTaskDefinition under the key the task definition's `berth:kms-key-id` tag
//     names (key id, ARN or alias), else the account's AWS managed key `alias/aws/ecs`
//     (created on first use). It is stored and described as `berth:kms:v1:…`, a value that
//     can be registered again as it is (describe → edit → register keeps it sealed).
//   - `secrets[].valueFrom`: a KMS ciphertext of this account and region (the base64
//     CiphertextBlob of `aws kms encrypt`), stored as it is; or `berth:secret:<plaintext>`,
//     sealed as above. Secrets Manager and Parameter Store ARNs are refused (Berth has neither).
// Opening needs the key enabled: a task whose secrets cannot be opened when it is first sent
// to its agent stops with a ResourceInitializationError naming the key. Tasks that already
// received their secrets keep running when a key is disabled later (as on ECS); their spec
// is resent with the values they already got (kept in memory for live tasks only).
import { clientException } from '../api/errors.js';
import type { Json } from '../ecs/task-definition-rules.js';
import type { TaskSecrets } from '../ecs/task-definitions.js';
import { isSealed, type Kms } from './kms.js';

export const SECRET_MARK = 'berth:secret:';
export const KEY_TAG = 'berth:kms-key-id';
const MAX_CACHE = 10_000;

/** Why a task's secrets could not be opened (its stoppedReason). */
export class SecretUnavailable extends Error {}

export function taskSecrets(kms: Kms): TaskSecrets {
  const opened = new Map<string, string>();
  return {
    protect(scope: string, body: Json, tags: { key: string; value: string }[]): Json {
      const keyRef = tags.find((t) => t.key === KEY_TAG)?.value;
      let key: string | undefined;
      const keyFor = () => {
        if (key) return key;
        try {
          key = keyRef ? kms.check(scope, keyRef).arn : kms.managedKey(scope, 'ecs').arn;
        } catch (e) {
          throw clientException(`The ${KEY_TAG} tag names a KMS key that cannot seal secrets: ${(e as Error).message}`);
        }
        return key;
      };
      const sealIfMarked = (v: string, what: string): string => {
        if (v.startsWith(SECRET_MARK)) return kms.seal(scope, keyFor(), v.slice(SECRET_MARK.length));
        if (isSealed(v)) {
          const keyId = v.slice('berth:kms:v1:'.length, 'berth:kms:v1:'.length + 36);
          try { kms.resolve(scope, keyId); } catch { throw clientException(`${what} is sealed under a KMS key this account and region do not have (${keyId}).`); }
        }
        return v;
      };
      const containerDefinitions = (body.containerDefinitions as Json[]).map((c) => ({
        ...c,
        ...(c.environment ? { environment: (c.environment as Json[]).map((e) => (typeof e.value === 'string' ? { ...e, value: sealIfMarked(e.value, `Environment variable '${e.name}' of container '${c.name}'`) } : e)) } : {}),
        ...(c.secrets ? {
          secrets: (c.secrets as Json[]).map((s) => {
            const what = `Secret '${s.name}' of container '${c.name}'`;
            const v = String(s.valueFrom ?? '');
            if (v.startsWith(SECRET_MARK) || isSealed(v)) return { ...s, valueFrom: sealIfMarked(v, what) };
            if (!kms.blobKey(scope, v)) {
              throw clientException(`${what}: valueFrom must be a KMS ciphertext of this account and region (the base64 CiphertextBlob of 'aws kms encrypt'), or '${SECRET_MARK}<value>' for Berth to seal; Secrets Manager and Parameter Store ARNs are not supported by Berth.`);
            }
            return s;
          }),
        } : {}),
      }));
      return { ...body, containerDefinitions };
    },

    opener(scope: string, task: { taskArn: string; lastStatus: string }) {
      const started = !['PROVISIONING', 'PENDING'].includes(task.lastStatus);
      return (value: string, kind: 'environment' | 'secret', what: string): string => {
        if (kind === 'environment' && !isSealed(value)) return value;
        const k = `${task.taskArn}\0${value}`;
        const cached = opened.get(k);
        if (cached !== undefined) return cached;
        let plain: string;
        try {
          plain = isSealed(value) ? kms.open(scope, value, '', what) : kms.decryptBase64(scope, value, what);
        } catch (e) {
          // A running task keeps what it got; it is never sent anything in clear it did not have.
          if (started) return value;
          throw new SecretUnavailable(`ResourceInitializationError: unable to retrieve secrets: ${(e as Error).message}`);
        }
        if (opened.size >= MAX_CACHE) opened.delete(opened.keys().next().value!);
        opened.set(k, plain);
        return plain;
      };
    },
  };
}
