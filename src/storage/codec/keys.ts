import { createHmac, hkdfSync } from 'node:crypto';
import { StorageError } from '../errors';

/** A data key of 256 bits and the name it is known by in each object's metadata. */
export interface ChunkKey {
  readonly id: string;
  readonly key: Buffer;
}

export const KEY_BYTES = 32;
export const KEY_ID_RE = /^[A-Za-z0-9._-]{1,32}$/;

/**
 * The keys of one LUN: `current` seals every new chunk, `previous` only open the chunks sealed
 * before a rotation (until `s3tgt defrag --rekey` rewrote them).
 */
export class KeyRing {
  private readonly byId = new Map<string, ChunkKey>();

  constructor(
    readonly current: ChunkKey,
    previous: readonly ChunkKey[] = [],
  ) {
    for (const k of [current, ...previous]) {
      if (!KEY_ID_RE.test(k.id)) throw new StorageError('invalid', `key id "${k.id}" must be 1-32 of A-Z a-z 0-9 . _ -`);
      if (k.key.length !== KEY_BYTES) throw new StorageError('invalid', `key "${k.id}" is ${k.key.length} bytes, not ${KEY_BYTES}`);
      if (this.byId.has(k.id)) throw new StorageError('invalid', `key id "${k.id}" is given twice`);
      this.byId.set(k.id, k);
    }
  }

  find(id: string): ChunkKey | undefined {
    return this.byId.get(id);
  }

  get ids(): string[] {
    return [...this.byId.keys()];
  }
}

/**
 * What proves, at start, that a configured key is the one a LUN's chunks were sealed with,
 * without storing anything that helps to find the key: HMAC-SHA256 under a key derived for this
 * purpose only (RFC 5869 HKDF, its own `info`), over the LUN's UUID. A wrong key is refused
 * before any chunk is read or written (records/encryption.json).
 */
export function keyVerifier(k: ChunkKey, uuid: string): string {
  const macKey = Buffer.from(hkdfSync('sha256', k.key, Buffer.alloc(0), 's3tgt key verifier v1', 32));
  return createHmac('sha256', macKey).update(uuid).digest('hex').slice(0, 32);
}

/**
 * Key material as configured: 64 hex digits, or base64 of 32 bytes; a key file may also hold
 * the 32 raw bytes. Returns the key, or why it is not one (for the configuration's error).
 */
export function parseKeyMaterial(raw: Buffer | string): Buffer | string {
  if (Buffer.isBuffer(raw) && raw.length === KEY_BYTES) return Buffer.from(raw);
  const text = raw.toString().trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) {
    const b = Buffer.from(text, 'base64');
    if (b.length === KEY_BYTES) return b;
  }
  return `a key is ${KEY_BYTES} bytes: 64 hex digits or 44 characters of base64 (e.g. "openssl rand -hex 32")`;
}
