import { CodecStore } from '../codec/codec-store';
import { checkInheritedKeys } from '../codec/encryption-record';
import { StorageError } from '../errors';
import type { LunLayout } from '../layout';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from '../object-store';
import type { CloneParent } from '../volume';
import { readVolumeInfo } from '../volume-meta';
import { SnapshotCatalog } from './catalog';
import { putHole } from './holes';
import { lunReadStore } from './preserving-store';
import { SnapshotResolver, SnapshotView } from './snapshot-view';

/** Hole markers one deleteMany writes at once. */
const HOLES_PARALLEL = 8;

/**
 * The parent snapshot a clone reads through, checked: it must still be the snapshot the clone
 * was made from (same name and id). Read live: the parent LUN may be served and written.
 */
export async function openParentView(store: ObjectStore, layout: LunLayout, parent: CloneParent, depth = 1): Promise<SnapshotView> {
  const of = layout.sibling(parent.lun);
  const catalog = await SnapshotCatalog.load(store, of);
  const s = catalog.find(parent.snapshot);
  if (!s || s.id !== parent.snapshotId) {
    throw new StorageError('data', `clone ${layout.name}: snapshot "${parent.snapshot}" of LUN "${parent.lun}" is gone`, {
      code: 'STORE_ERR_SNAPSHOT',
    });
  }
  const info = await readVolumeInfo(store, of);
  // The clone decodes what it inherits with its own keys: they must include the parent's.
  if (info && store instanceof CodecStore) await checkInheritedKeys(store, of, info.uuid, store.codec, layout.name);
  // The parent may be a clone itself: its live chunks are read through its own parent.
  const inner = await lunReadStore(store, of, info, depth);
  return new SnapshotView(inner, of, await SnapshotResolver.load(store, of, catalog, s), true);
}

/**
 * The store a clone's volume reads and writes through (under its PreservingStore). A chunk the
 * clone never wrote has no object of its own and reads through to the parent's snapshot (the
 * ChunkMap calls it `inherited`); a chunk it deallocated must hide the parent's, so a DELETE of
 * a chunk the parent has becomes a hole marker (a zero-length object, read as zeros), and the
 * parent is never touched. A copy *from* one of the clone's chunks (a snapshot of the clone
 * preserving it) copies the object that holds it: the clone's own, or the parent's.
 */
export class CloneStore implements ObjectStore {
  readonly description: string;
  private readonly parentLayout: LunLayout;

  constructor(
    private readonly inner: ObjectStore,
    private readonly layout: LunLayout,
    private readonly parent: SnapshotView,
    parentLun: string,
    /** Chunks of the parent snapshot: indexes at or past it have nothing to inherit. */
    private readonly parentChunks: number,
  ) {
    this.description = inner.description;
    this.parentLayout = layout.sibling(parentLun);
  }

  /** The chunk index of `key` when it can inherit from the parent, else undefined. */
  private inheriting(key: string): number | undefined {
    const i = this.layout.chunkIndexOf(key);
    return i !== undefined && i < this.parentChunks ? i : undefined;
  }

  async get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    const i = this.inheriting(key);
    if (i === undefined || opts?.exactKey) return this.inner.get(key, range, opts);
    const own = await this.inner.get(key, range, opts);
    // Chunk objects are never empty: a zero-length one is a hole marker (a ranged GET of one
    // is answered as an empty body too).
    if (own) return own.meta.size === 0 ? null : own;
    return this.parent.get(this.parentLayout.chunkKey(i), range, opts);
  }

  /** With `exactKey`: the clone's own object only, a hole marker included (conditional chunk PUTs). */
  async head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    const i = this.inheriting(key);
    if (i === undefined || opts?.exactKey) return this.inner.head(key, opts);
    const own = await this.inner.head(key, opts);
    if (own) return own.size === 0 ? null : own;
    return this.parent.head(this.parentLayout.chunkKey(i), opts);
  }

  /**
   * The object that holds chunk `i` of the clone now: its own, or the parent's (null: zeros).
   * A parent chunk read live is checked by the view; a copy from it is checked the same way
   * afterwards (HEAD), and redone from the snapshot copy if the parent overwrote it meanwhile.
   */
  async copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    const i = this.inheriting(from);
    if (i === undefined) return this.inner.copy(from, to, opts);
    const own = await this.inner.head(from, opts);
    if (own) return own.size === 0 ? null : this.inner.copy(from, to, opts);
    return this.parent.copyOut(this.parentLayout.chunkKey(i), to, opts);
  }

  async put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.inner.put(key, body, opts);
  }

  async delete(key: string, opts?: RequestOptions): Promise<void> {
    if (this.inheriting(key) === undefined) return this.inner.delete(key, opts);
    await putHole(this.inner, key, opts);
  }

  async deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    const hide = keys.filter((k) => this.inheriting(k) !== undefined);
    const rest = keys.filter((k) => this.inheriting(k) === undefined);
    for (let at = 0; at < hide.length; at += HOLES_PARALLEL) {
      await Promise.all(hide.slice(at, at + HOLES_PARALLEL).map((k) => putHole(this.inner, k, opts)));
    }
    if (rest.length > 0) await this.inner.deleteMany(rest, opts);
  }

  /** The clone's own objects (hole markers are listed with size 0). */
  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.inner.listPage(prefix, token, opts);
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  /** A view: the backend is closed by its owner. */
  async close(): Promise<void> {}
}
