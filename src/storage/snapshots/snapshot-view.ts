import { StorageError } from '../errors';
import type { LunLayout } from '../layout';
import { type CopyOptions, type GetResult, type ListPage, listAll, type ObjectMeta, type ObjectStore, type RequestOptions } from '../object-store';
import { type Snapshot, SnapshotCatalog } from './catalog';

/** Where chunk i of a snapshot is: a preserved copy in snapshot `id`, a hole there, or the live chunk. */
export type ChunkSource = { readonly kind: 'snapshot'; readonly id: number } | { readonly kind: 'hole' } | { readonly kind: 'live' };

/**
 * Which object holds each chunk of snapshot S as it was when S was taken: S's own preserved
 * copy if it has one, else that of the next newer snapshot that has one, else the live chunk
 * (a chunk nobody preserved has not changed since S). Built from one listing per snapshot.
 */
export class SnapshotResolver {
  private constructor(
    private readonly owners: ReadonlyMap<number, ChunkSource>,
    readonly snapshot: Snapshot,
  ) {}

  static async load(store: ObjectStore, layout: LunLayout, catalog: SnapshotCatalog, snapshot: Snapshot): Promise<SnapshotResolver> {
    const owners = new Map<number, ChunkSource>();
    // Newest last: the first snapshot (oldest, from S on) that has a chunk owns it.
    for (const s of [snapshot, ...catalog.newerThan(snapshot.id)]) {
      for await (const e of listAll(store, layout.snapshotChunksPrefix(s.id), { lane: 'background' })) {
        const i = layout.snapshotChunkIndexOf(s.id, e.key);
        if (i === undefined || owners.has(i)) continue;
        // Chunk objects are never empty: a zero-length one is a hole marker.
        owners.set(i, e.size === 0 ? { kind: 'hole' } : { kind: 'snapshot', id: s.id });
      }
    }
    return new SnapshotResolver(owners, snapshot);
  }

  source(i: number): ChunkSource {
    return this.owners.get(i) ?? { kind: 'live' };
  }

  /** Indexes held by a snapshot copy or a hole marker (everything else is live). */
  get preserved(): ReadonlyMap<number, ChunkSource> {
    return this.owners;
  }
}

const readOnly = (what: string): StorageError => new StorageError('invalid', `${what}: a snapshot is read-only`, { code: 'STORE_ERR_SNAPSHOT' });

/**
 * A read-only store in which the LUN's `chunks/<i>` are the chunks of one snapshot: a
 * ChunkVolume opened on it reads the LUN as it was (export, a snapshot LUN).
 *
 * `live`: the LUN may be written meanwhile (served, here or by another server). A chunk the
 * listing left to the live LUN is read from it and then checked: the catalog is read again
 * and every snapshot from this one to the newest is asked (HEAD) for a copy of the chunk.
 * A writer copies a chunk into the newest snapshot before it overwrites it, so when no copy
 * exists after the read, the read saw the chunk as it was at the snapshot; when one does,
 * the first in order is the snapshot's. Chunks found in a snapshot are remembered (they never
 * change); the volume's cache keeps what was read.
 */
export class SnapshotView implements ObjectStore {
  readonly description: string;
  private readonly found = new Map<number, ChunkSource>();

  constructor(
    private readonly inner: ObjectStore,
    private readonly layout: LunLayout,
    private readonly resolver: SnapshotResolver,
    private readonly live = false,
  ) {
    this.description = `${inner.description} snapshot ${resolver.snapshot.name}`;
  }

  /** Where chunk i of the snapshot is now, asked of the store (see the class comment). */
  private async resolveNow(i: number, opts?: RequestOptions): Promise<ChunkSource> {
    const known = this.found.get(i);
    if (known) return known;
    const s = this.resolver.snapshot;
    const catalog = await SnapshotCatalog.load(this.inner, this.layout, opts);
    if (catalog.find(s.name)?.id !== s.id) {
      throw new StorageError('data', `snapshot "${s.name}" of LUN ${this.layout.name} was deleted`, { code: 'STORE_ERR_SNAPSHOT' });
    }
    for (const x of [s, ...catalog.newerThan(s.id)]) {
      const meta = await this.inner.head(this.layout.snapshotChunkKey(x.id, i), opts);
      if (!meta) continue;
      const src: ChunkSource = meta.size === 0 ? { kind: 'hole' } : { kind: 'snapshot', id: x.id };
      this.found.set(i, src);
      return src;
    }
    return { kind: 'live' };
  }

  private keyOfSource(key: string, i: number, src: ChunkSource): string | null {
    if (src.kind === 'hole') return null;
    return src.kind === 'snapshot' ? this.layout.snapshotChunkKey(src.id, i) : key;
  }

  /**
   * Applies `op` (a GET, a copy) to the object that holds chunk i of a snapshot whose LUN may
   * change meanwhile: the listed source first; for a live chunk, `op` on it and then the check
   * (resolveNow), and `op` again on the snapshot copy if the LUN's writer preserved the chunk
   * meanwhile. Null: the chunk is a hole.
   */
  private async throughLive<T>(key: string, i: number, op: (k: string) => Promise<T | null>, opts?: RequestOptions): Promise<T | null> {
    const listed = this.found.get(i) ?? this.resolver.source(i);
    if (listed.kind !== 'live') {
      const k = this.keyOfSource(key, i, listed);
      if (k === null) return null;
      const got = await op(k);
      if (got) return got;
      // Handed to an older snapshot by a delete: ask again.
      this.found.delete(i);
    }
    const got = await op(key);
    const now = await this.resolveNow(i, opts);
    if (now.kind === 'live') return got;
    const k = this.keyOfSource(key, i, now);
    return k === null ? null : op(k);
  }

  /**
   * Copies chunk `key` of the snapshot to `to`, outside the LUN (a clone's chunk), the way
   * `get` reads it. Null: the chunk is a hole.
   */
  async copyOut(key: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    const i = this.layout.chunkIndexOf(key);
    if (i === undefined) throw new StorageError('internal', `${key} is not a chunk of ${this.layout.name}`);
    if (this.live) return this.throughLive(key, i, (k) => this.inner.copy(k, to, opts), opts);
    const k = this.keyOf(key);
    return k === null ? null : this.inner.copy(k, to, opts);
  }

  /** The key that holds what `key` is in the snapshot, or null for a hole. */
  private keyOf(key: string): string | null {
    const i = this.layout.chunkIndexOf(key);
    return i === undefined ? key : this.keyOfSource(key, i, this.resolver.source(i));
  }

  async get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    const i = this.layout.chunkIndexOf(key);
    if (this.live && i !== undefined) return this.throughLive(key, i, (k) => this.inner.get(k, range, opts), opts);
    const k = this.keyOf(key);
    return k === null ? null : this.inner.get(k, range, opts);
  }

  async head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    const i = this.layout.chunkIndexOf(key);
    if (this.live && i !== undefined) {
      const src = await this.resolveNow(i, opts);
      const k = this.keyOfSource(key, i, src);
      return k === null ? null : this.inner.head(k, opts);
    }
    const k = this.keyOf(key);
    return k === null ? null : this.inner.head(k, opts);
  }

  /** The chunk listing of the snapshot: preserved copies, and the live chunks nobody preserved. */
  async listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    if (prefix !== this.layout.chunksPrefix) return this.inner.listPage(prefix, token, opts);
    if (token !== undefined) return { entries: [] };
    const present = new Map<number, number>();
    for await (const e of listAll(this.inner, prefix, opts)) {
      const i = this.layout.chunkIndexOf(e.key);
      if (i !== undefined && this.resolver.source(i).kind === 'live') present.set(i, e.size);
    }
    for (const [i, s] of this.resolver.preserved) if (s.kind === 'snapshot') present.set(i, 1);
    const entries = [...present.entries()].sort((a, b) => a[0] - b[0]).map(([i, size]) => ({ key: this.layout.chunkKey(i), size }));
    return { entries };
  }

  async put(key: string): Promise<{ etag: string }> {
    throw readOnly(`PUT ${key}`);
  }

  async copy(_from: string, to: string): Promise<{ etag: string } | null> {
    throw readOnly(`COPY to ${to}`);
  }

  async delete(key: string): Promise<void> {
    throw readOnly(`DELETE ${key}`);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    throw readOnly(`DELETE ${keys.length} keys`);
  }

  /** A view: the backend is closed by its owner. */
  async close(): Promise<void> {}
}
