import { StorageError } from '../errors';
import { CHUNK_SIZE, chunkKeyPlace } from '../layout';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from '../object-store';
import { type ChunkCodec, CODEC_META_KEY } from './chunk-codec';

/**
 * Buffers encoded objects are read into, shared by every LUN of the process: a chunk and room
 * for the seal each, at most 16 kept (16 MiB), about the reads in flight at once.
 */
const SCRATCH: Buffer[] = [];
const SCRATCH_KEPT = 16;
const SCRATCH_BYTES = CHUNK_SIZE + 64 * 1024;

function release(b: Buffer): void {
  if (SCRATCH.length < SCRATCH_KEPT) SCRATCH.push(b);
}

/** The store a LUN's chunks go through, whether its codec encodes new chunks or not. */
export function codecStore(store: ObjectStore, codec: ChunkCodec): CodecStore {
  return new CodecStore(store, codec, CHUNK_SIZE);
}

/**
 * The store a LUN with compression or encryption reads and writes its chunks through (under
 * its snapshot and clone stores, over the shared stack): chunk bodies are encoded on PUT and
 * decoded on GET by the LUN's ChunkCodec; records, the lease and hole markers (empty objects)
 * pass as they are, and so do server-side copies (a snapshot's copy of chunk i is still chunk i
 * of the same LUN: it stays sealed, nothing is decrypted). A ranged GET of an encoded chunk
 * reads the whole object (a GCM tag covers all of it) and returns the range of the plaintext;
 * the volume reads whole chunks on such a LUN (ChunkVolumeOptions.wholeChunkReads).
 *
 * Every LUN reads through one, also with compression and encryption off (`codec.active` is
 * false): chunks it wrote while compression was on stay compressed until rewritten, and must
 * still read as what they hold, not as a MEDIUM ERROR or the compressed bytes. Such a LUN writes
 * chunks plain and reads ranges; a range that comes back encoded, or empty, is read again whole.
 */
export class CodecStore implements ObjectStore {
  readonly description: string;
  /** LUN root (layout.root) -> its UUID: the LUN itself and, for a clone, each parent. */
  private readonly uuids = new Map<string, string>();
  private readonly lineage = new Set<string>();

  constructor(
    private readonly inner: ObjectStore,
    readonly codec: ChunkCodec,
    private readonly chunkSize: number,
  ) {
    this.description = inner.description;
  }

  /** The LUN at `root` has this UUID: its chunks are sealed with it, and read back if it says so. */
  vouch(root: string, uuid: string): void {
    this.uuids.set(root, uuid);
    this.lineage.add(uuid);
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    const at = chunkKeyPlace(key);
    if (!at) return this.inner.get(key, range, opts);
    if (this.codec.active) return this.getWhole(key, at, range, opts);
    return this.inner.get(key, range, opts).then((got) => {
      const encoded = got !== null && got.meta.size > 0 && got.meta.metadata[CODEC_META_KEY] !== undefined;
      // S3 answers a range past an object's end with 416, which the store reports as an empty
      // object (a hole marker reads so): a compressed object is shorter than the chunk, so an
      // empty ranged answer is checked with a whole GET (a hole marker costs nothing to read).
      const empty = range !== undefined && got !== null && got.meta.size === 0;
      return encoded || empty ? this.getWhole(key, at, range, opts) : got;
    });
  }

  private async getWhole(
    key: string,
    at: { root: string; index: number },
    range: { offset: number; length: number } | undefined,
    opts?: RequestOptions,
  ): Promise<GetResult | null> {
    // Whole objects only. A plain chunk lands in the caller's recycled chunk buffer; an encoded
    // one (smaller or larger) in one of our scratch buffers, free again once decoded (decoding
    // is synchronous and keeps nothing of it), and its plaintext goes to a recycled buffer.
    let scratch: Buffer | undefined;
    const got = await this.inner.get(key, undefined, {
      ...opts,
      bodyBuffer: (n) => {
        if (n === this.chunkSize) return opts?.bodyBuffer?.(n);
        if (n > SCRATCH_BYTES) return undefined;
        scratch = SCRATCH.pop() ?? Buffer.allocUnsafeSlow(SCRATCH_BYTES);
        return scratch.subarray(0, n);
      },
    });
    // A failed request abandons the buffer it was given (object-store.ts): so does this.
    if (!got || got.meta.size === 0) {
      if (scratch) release(scratch);
      return got && range ? { ...got, body: got.body.subarray(0, 0) } : got;
    }
    const encoded = got.meta.metadata[CODEC_META_KEY] !== undefined;
    const into = encoded ? opts?.bodyBuffer?.(this.chunkSize) : undefined;
    let decoded = this.codec.decode(got.body, got.meta.metadata, this.chunkSize, { key, index: at.index }, this.lineage, into);
    if (scratch) {
      if (decoded.body.buffer === scratch.buffer) decoded = { ...decoded, body: Buffer.from(decoded.body) };
      release(scratch);
    }
    if (decoded.body.length !== this.chunkSize) {
      throw new StorageError('data', `${key}: object holds ${decoded.body.length} bytes, expected ${this.chunkSize}`);
    }
    const body = range ? decoded.body.subarray(range.offset, range.offset + range.length) : decoded.body;
    return { body, meta: { size: decoded.body.length, etag: got.meta.etag, metadata: decoded.metadata } };
  }

  /** The stored object's metadata as it is (its size is the encoded one). */
  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.inner.head(key, opts);
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    const at = chunkKeyPlace(key);
    if (!at || body.length === 0 || !this.codec.active) return this.inner.put(key, body, opts);
    const uuid = this.uuids.get(at.root);
    if (uuid === undefined) throw new StorageError('internal', `${key}: no LUN UUID known for ${at.root}; refusing to write a chunk unsealed`);
    const encoded = this.codec.encode(body, opts?.metadata ?? {}, uuid, { key, index: at.index });
    return this.inner.put(key, encoded.body, { ...opts, metadata: encoded.metadata });
  }

  copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    return this.inner.copy(from, to, opts);
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.inner.delete(key, opts);
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.inner.deleteMany(keys, opts);
  }

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.inner.listPage(prefix, token, opts);
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  /** A view: the backend is closed by its owner. */
  async close(): Promise<void> {}
}
