import { StorageError } from '../errors';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from '../object-store';
import { type ChunkCodec, CODEC_META_KEY } from './chunk-codec';

/** A LUN's live or snapshot chunk key: `<root>/chunks/<i>` or `<root>/snapshots/<id>/chunks/<i>` (layout.ts). */
const CHUNK_KEY_RE = /^(.*?)\/(?:snapshots\/[0-9]+\/)?chunks\/([0-9a-f]{16})$/;

/**
 * The store a LUN with compression or encryption reads and writes its chunks through (under
 * its snapshot and clone stores, over the shared stack): chunk bodies are encoded on PUT and
 * decoded on GET by the LUN's ChunkCodec; records, the lease and hole markers (empty objects)
 * pass as they are, and so do server-side copies (a snapshot's copy of chunk i is still chunk i
 * of the same LUN: it stays sealed, nothing is decrypted). A ranged GET of an encoded chunk
 * reads the whole object (a GCM tag covers all of it) and returns the range of the plaintext;
 * the volume reads whole chunks on such a LUN (ChunkVolumeOptions.wholeChunkReads).
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

  private place(key: string): { root: string; index: number } | undefined {
    const m = CHUNK_KEY_RE.exec(key);
    return m ? { root: m[1], index: Number.parseInt(m[2], 16) } : undefined;
  }

  async get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    const at = this.place(key);
    if (!at) return this.inner.get(key, range, opts);
    // Whole objects only: a recycled chunk buffer fits a plain chunk; an encoded one is smaller or larger.
    const got = await this.inner.get(key, undefined, opts);
    if (!got || got.meta.size === 0) return got && range ? { ...got, body: got.body.subarray(0, 0) } : got;
    const plain = got.meta.metadata[CODEC_META_KEY] === undefined && !this.codec.encrypted;
    const decoded = plain
      ? { body: got.body, metadata: got.meta.metadata }
      : this.codec.decode(got.body, got.meta.metadata, this.chunkSize, { key, index: at.index }, this.lineage);
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
    const at = this.place(key);
    if (!at || body.length === 0) return this.inner.put(key, body, opts);
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
