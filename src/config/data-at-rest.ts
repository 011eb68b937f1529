import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Compression } from '../storage/codec/compression';
import { type ChunkKey, KEY_ID_RE, parseKeyMaterial } from '../storage/codec/keys';
import { EXAMPLE_PRICES, type PriceTable, type S3Request } from '../storage/lun-costs';
import type { ServerSideEncryption } from '../storage/s3-sse';
import type { Reader } from './reader';

/** A LUN's `encryption`: the key new chunks are sealed with, and older ones still read. */
export interface EncryptionConfig {
  readonly current: ChunkKey;
  readonly previous: readonly ChunkKey[];
}

/** `compression: zstd | lz4 | off` (docs/data-at-rest.md says which when). */
export function parseCompression(r: Reader): Compression {
  return r.oneOf(['zstd', 'lz4', 'off'] as const, 'off');
}

/**
 * `encryption: { keyId, key | keyFile | keyEnv, previous: [{ keyId, key | keyFile | keyEnv }] }`.
 * Key material is read now, so a missing file or variable is an error naming the line; a key
 * file path is relative to the configuration file.
 */
export function parseEncryption(r: Reader, baseDir: string): EncryptionConfig | undefined {
  if (!r.present) return undefined;
  r.object(['keyId', 'key', 'keyFile', 'keyEnv', 'previous']);
  const current = parseKey(r, baseDir);
  const previous = r
    .get('previous')
    .array()
    .map((p) => {
      p.object(['keyId', 'key', 'keyFile', 'keyEnv']);
      return parseKey(p, baseDir);
    });
  const ids = new Set<string>([current.id]);
  r.get('previous')
    .array()
    .forEach((p, i) => {
      if (ids.has(previous[i].id)) p.get('keyId').fail(`key id "${previous[i].id}" is given twice`);
      ids.add(previous[i].id);
    });
  return { current, previous };
}

function parseKey(r: Reader, baseDir: string): ChunkKey {
  const idR = r.get('keyId');
  const id = idR.required().string();
  if (!KEY_ID_RE.test(id)) idR.fail("a key id is 1-32 of A-Z a-z 0-9 . _ - (it is stored in each object's metadata)");
  const given = ['key', 'keyFile', 'keyEnv'].filter((k) => r.get(k).present);
  if (given.length !== 1) r.fail('give exactly one of "key", "keyFile" or "keyEnv"', 'key', [...r.path, given[1] ?? 'key']);
  const at = r.get(given[0]);
  const key = parseKeyMaterial(material(given[0], at, baseDir));
  return typeof key === 'string' ? at.fail(key) : { id, key };
}

function material(kind: string, at: Reader, baseDir: string): Buffer | string {
  if (kind === 'keyEnv') {
    const name = at.string();
    return process.env[name] ?? at.fail(`environment variable ${name} is not set`);
  }
  if (kind !== 'keyFile') return at.string();
  const file = path.resolve(baseDir, at.string());
  try {
    return readFileSync(file);
  } catch (e) {
    return at.fail(`cannot read key file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/**
 * `s3.prices: { storageGbMonth, put, get, head, list, copy, delete }`: dollars per GB-month and
 * per 1000 requests; each one left out keeps the example's (EXAMPLE_PRICES).
 */
export function parsePrices(r: Reader): PriceTable {
  if (!r.present) return EXAMPLE_PRICES;
  const keys: Record<string, S3Request> = { put: 'PUT', get: 'GET', head: 'HEAD', list: 'LIST', copy: 'COPY', delete: 'DELETE' };
  r.object(['storageGbMonth', ...Object.keys(keys)]);
  const per1000 = { ...EXAMPLE_PRICES.per1000 };
  for (const [k, req] of Object.entries(keys)) per1000[req] = r.get(k).price(EXAMPLE_PRICES.per1000[req]);
  return { storageGbMonth: r.get('storageGbMonth').price(EXAMPLE_PRICES.storageGbMonth), per1000 };
}

/**
 * `s3.serverSideEncryption: { type: SSE-S3 | SSE-KMS | SSE-C, kmsKeyId, key | keyFile | keyEnv }`:
 * what the S3 server encrypts every object with (src/storage/s3-sse.ts). SSE-C takes a key
 * like `encryption:` does; SSE-KMS an optional key id (else the bucket's default).
 */
export function parseServerSideEncryption(r: Reader, baseDir: string): ServerSideEncryption | undefined {
  if (!r.present) return undefined;
  r.object(['type', 'kmsKeyId', 'key', 'keyFile', 'keyEnv']);
  const type = r.get('type').oneOf(['SSE-S3', 'SSE-KMS', 'SSE-C'] as const);
  const keyGiven = ['key', 'keyFile', 'keyEnv'].filter((k) => r.get(k).present);
  if (type !== 'SSE-C' && keyGiven.length > 0) r.get(keyGiven[0]).fail(`${type} takes no key of ours (only SSE-C does)`);
  if (type !== 'SSE-KMS' && r.get('kmsKeyId').present) r.get('kmsKeyId').fail('only SSE-KMS takes a kmsKeyId');
  if (type === 'SSE-S3') return { type };
  if (type === 'SSE-KMS') {
    const id = r.get('kmsKeyId').optionalString();
    return id ? { type, kmsKeyId: id } : { type };
  }
  if (keyGiven.length !== 1) r.fail('SSE-C needs exactly one of "key", "keyFile" or "keyEnv"', 'key', [...r.path, keyGiven[1] ?? 'key']);
  const at = r.get(keyGiven[0]);
  const key = parseKeyMaterial(material(keyGiven[0], at, baseDir));
  return typeof key === 'string' ? at.fail(key) : { type, key };
}
