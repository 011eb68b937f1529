import { type Cipher, createCipheriv, createDecipheriv, type Decipher, hkdfSync, randomFillSync } from 'node:crypto';
import { invariant } from '../../util/invariant';
import { StorageError } from '../errors';
import { CRC_META_KEY } from '../integrity';
import { COMPRESSORS, type Compression, type Compressor, compress, decompress } from './compression';
import type { KeyRing } from './keys';

/**
 * How a chunk object is encoded, in its metadata: `<format>/<compressor or raw>/<cipher or
 * none>`. An object without it is a plain chunk (the format every s3tgt reads).
 */
export const CODEC_META_KEY = 's3tgt-codec';
/** The id of the key that sealed the object (KeyRing). */
export const KEY_META_KEY = 's3tgt-key';
/** The UUID of the LUN that sealed the object (volume.json): bound into the tag. */
export const LUN_META_KEY = 's3tgt-lun';

const FORMAT = 'v1';
const CIPHER = 'aes-256-gcm';
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** salt, IV, a 4-byte length of the sealed metadata, the tag: what sealing adds to a chunk. */
export const SEAL_OVERHEAD = SALT_BYTES + IV_BYTES + 4 + TAG_BYTES;

export interface CodecSettings {
  readonly compression: Compression;
  /** Absent: chunks are stored in clear (compressed or not). */
  readonly keys?: KeyRing;
}

/** Where a chunk object belongs: what sealing binds it to. */
export interface ChunkPlace {
  readonly key: string;
  readonly index: number;
}

export interface Encoded {
  readonly body: Buffer;
  readonly metadata: Record<string, string>;
}

/**
 * One LUN's chunk encoding: compression first (a ciphertext does not compress), then
 * authenticated encryption. Each object is sealed under its own key, HKDF-SHA256 (RFC 5869)
 * of the LUN key with a random 128-bit salt kept in the object, with AES-256-GCM (NIST SP
 * 800-38D) and a random 96-bit IV: with one key and random IVs GCM allows about 2^32 objects
 * before an IV may repeat, which a busy LUN rewriting its chunks for years could reach; a
 * key per object removes that bound. The additional data binds the format, codec, key id, the
 * LUN's UUID and the chunk index: an object moved to another index or LUN, or whose metadata
 * was edited, fails the tag and is a MEDIUM ERROR, never decrypted. The per-segment CRC32C
 * over the plaintext moves inside the sealed part: in the clear it would let a reader of the
 * bucket confirm a guess of a 64 KiB block's content.
 */
export class ChunkCodec {
  /**
   * Whether a chunk in clear is accepted on an encrypted LUN: only on one that existed before
   * encryption was turned on, until `defrag --rekey` sealed them all. Set once, from
   * records/encryption.json, before the LUN's volume opens (encryption-record.ts).
   */
  plainAllowed = false;

  constructor(readonly settings: CodecSettings) {}

  get encrypted(): boolean {
    return this.settings.keys !== undefined;
  }

  /** Whether chunk objects are encoded at all (reads then fetch whole objects). */
  get active(): boolean {
    return this.encrypted || this.settings.compression !== 'off';
  }

  encode(plain: Buffer, metadata: Readonly<Record<string, string>>, uuid: string, at: ChunkPlace): Encoded {
    const c = this.settings.compression;
    const packed = c === 'off' ? undefined : compress(c, plain);
    const packer = packed ? c : 'raw';
    const payload = packed ?? plain;
    const ring = this.settings.keys;
    if (!ring) {
      // Compression alone: a chunk that does not compress stays a plain object.
      return packed
        ? { body: payload, metadata: { ...metadata, [CODEC_META_KEY]: `${FORMAT}/${packer}/none` } }
        : { body: plain, metadata: { ...metadata } };
    }
    const codec = `${FORMAT}/${packer}/${CIPHER}`;
    const { [CRC_META_KEY]: crcs, ...clear } = metadata;
    const sealedMeta = Buffer.from(JSON.stringify(crcs === undefined ? {} : { [CRC_META_KEY]: crcs }));
    const k = ring.current;
    const body = Buffer.allocUnsafe(SALT_BYTES + IV_BYTES + 4 + sealedMeta.length + payload.length + TAG_BYTES);
    const salt = randomFill(body.subarray(0, SALT_BYTES));
    const iv = randomFill(body.subarray(SALT_BYTES, SALT_BYTES + IV_BYTES));
    const cipher = createCipheriv(CIPHER, objectKey(k.key, salt), iv);
    cipher.setAAD(associated(codec, k.id, uuid, at.index));
    const head = Buffer.alloc(4);
    head.writeUInt32BE(sealedMeta.length);
    let pos = streamInto(cipher, head, body, SALT_BYTES + IV_BYTES);
    pos = streamInto(cipher, sealedMeta, body, pos);
    pos = streamInto(cipher, payload, body, pos);
    cipher.final();
    cipher.getAuthTag().copy(body, pos);
    return { body, metadata: { ...clear, [CODEC_META_KEY]: codec, [KEY_META_KEY]: k.id, [LUN_META_KEY]: uuid } };
  }

  /** A chunk stored in clear is refused on a LUN created encrypted (see plainAllowed). */
  private checkClearAllowed(at: ChunkPlace): void {
    if (this.encrypted && !this.plainAllowed) throw new StorageError('data', `${at.key}: chunk object is not encrypted, on a LUN created encrypted`);
  }

  /**
   * The chunk an object holds (`size` bytes) and its metadata as it was before encoding.
   * `lineage` says which LUN UUIDs may have sealed a chunk this LUN reads (itself, and for a
   * clone its parents). Every failure is a `data` StorageError (MEDIUM ERROR).
   */
  decode(
    body: Buffer,
    metadata: Readonly<Record<string, string>>,
    size: number,
    at: ChunkPlace,
    lineage: ReadonlySet<string>,
    /** Where a raw sealed chunk is decrypted to (a recycled chunk buffer); left as garbage if decoding fails. */
    into?: Buffer,
  ): Encoded {
    const codec = metadata[CODEC_META_KEY];
    if (codec === undefined) {
      this.checkClearAllowed(at);
      return { body, metadata };
    }
    const [format, packer, cipher, ...rest] = codec.split('/');
    if (
      format !== FORMAT ||
      rest.length > 0 ||
      (packer !== 'raw' && !COMPRESSORS.includes(packer as Compressor)) ||
      (cipher !== 'none' && cipher !== CIPHER)
    ) {
      throw new StorageError('data', `${at.key}: unknown chunk encoding "${codec}" (this s3tgt reads ${FORMAT})`);
    }
    if (cipher === 'none') {
      this.checkClearAllowed(at);
      return { body: unpack(packer, body, size, at.key), metadata };
    }
    const ring = this.settings.keys;
    if (!ring) throw new StorageError('data', `${at.key}: chunk is encrypted and this LUN has no "encryption" configured`);
    const id = metadata[KEY_META_KEY] ?? '';
    const k = ring.find(id);
    if (!k) throw new StorageError('data', `${at.key}: sealed with key "${id}", which is not configured for this LUN`);
    const uuid = metadata[LUN_META_KEY] ?? '';
    if (!lineage.has(uuid)) throw new StorageError('data', `${at.key}: sealed by LUN ${uuid || '(none)'}, not this LUN or a parent of it`);
    if (body.length < SEAL_OVERHEAD) throw new StorageError('data', `${at.key}: encrypted object of ${body.length} bytes is too short`);
    const salt = body.subarray(0, SALT_BYTES);
    const iv = body.subarray(SALT_BYTES, SALT_BYTES + IV_BYTES);
    const tag = body.subarray(body.length - TAG_BYTES);
    const ct = body.subarray(SALT_BYTES + IV_BYTES, body.length - TAG_BYTES);
    const decipher = createDecipheriv(CIPHER, objectKey(k.key, salt), iv);
    decipher.setAAD(associated(codec, id, uuid, at.index));
    decipher.setAuthTag(tag);
    // Nothing decrypted is used before final() has checked the tag: the length is only bounded.
    const metaLen = decipher.update(ct.subarray(0, 4)).readUInt32BE(0);
    if (4 + metaLen > ct.length) throw new StorageError('data', `${at.key}: authentication failed (sealed header out of bounds)`);
    const sealedMeta = decipher.update(ct.subarray(4, 4 + metaLen));
    const payloadCt = ct.subarray(4 + metaLen);
    const payload = packer === 'raw' && into?.length === payloadCt.length ? into : Buffer.allocUnsafe(payloadCt.length);
    streamInto(decipher, payloadCt, payload, 0);
    try {
      decipher.final();
    } catch {
      throw new StorageError('data', `${at.key}: authentication failed (the object was altered, or moved from another chunk or LUN)`);
    }
    const sealed = JSON.parse(sealedMeta.toString()) as Record<string, string>;
    const { [CODEC_META_KEY]: _c, [KEY_META_KEY]: _k, [LUN_META_KEY]: _l, ...clear } = metadata;
    return { body: unpack(packer, payload, size, at.key), metadata: { ...clear, ...sealed } };
  }
}

/**
 * GCM is a stream mode: what goes in comes out, byte for byte. In 16 KiB steps, copied into
 * `dst`: one update() of 1 MiB returns a fresh 1 MiB buffer whose first touch costs 256 page
 * faults (about 3 ms in this VM, ten times the cipher's work); small outputs are recycled by
 * the allocator.
 */
function streamInto(c: Cipher | Decipher, src: Buffer, dst: Buffer, at: number): number {
  let pos = at;
  for (let off = 0; off < src.length; off += STEP) {
    const part = c.update(src.subarray(off, Math.min(off + STEP, src.length)));
    part.copy(dst, pos);
    pos += part.length;
  }
  invariant(pos - at === src.length, () => `GCM gave ${pos - at} bytes for ${src.length}`);
  return pos;
}

const STEP = 16 * 1024;

function unpack(packer: string, payload: Buffer, size: number, key: string): Buffer {
  return packer === 'raw' ? payload : decompress(packer as Compressor, payload, size, key);
}

function randomFill(b: Buffer): Buffer {
  randomFillSync(b);
  return b;
}

function objectKey(key: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, 's3tgt chunk key v1', 32));
}

function associated(codec: string, keyId: string, uuid: string, index: number): Buffer {
  return Buffer.from(`s3tgt chunk\n${codec}\n${keyId}\n${uuid}\n${index}`);
}
