// KMS ciphertext blobs, self-describing as KMS's are (they name their key):
//   "BKMS" | version 1 | key id (36 ASCII bytes, a UUID) | iv (12) | GCM tag (16) | ciphertext
// The key's account and region are not inside: a blob only opens in the scope (account and
// region) it was made in, which is bound as associated data with the key id and the
// encryption context.

const MAGIC = Buffer.from('BKMS');
const VERSION = 1;
const HEADER = MAGIC.length + 1 + 36;
export const MAX_PLAINTEXT_BYTES = 4096;

export interface ParsedBlob { keyId: string; iv: Buffer; tag: Buffer; ciphertext: Buffer }

export function encodeBlob(keyId: string, iv: Buffer, tag: Buffer, ciphertext: Buffer): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([VERSION]), Buffer.from(keyId, 'ascii'), iv, tag, ciphertext]);
}

export function decodeBlob(blob: Buffer): ParsedBlob | undefined {
  if (blob.length < HEADER + 28 || !blob.subarray(0, 4).equals(MAGIC) || blob[4] !== VERSION) return undefined;
  const keyId = blob.subarray(5, HEADER).toString('ascii');
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(keyId)) return undefined;
  return { keyId, iv: blob.subarray(HEADER, HEADER + 12), tag: blob.subarray(HEADER + 12, HEADER + 28), ciphertext: blob.subarray(HEADER + 28) };
}
