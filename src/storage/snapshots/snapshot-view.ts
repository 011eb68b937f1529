import { StorageError } from '../errors';
import type { LunLayout } from '../layout';
import { type GetResult, type ListPage, listAll, type ObjectMeta, type ObjectStore, type RequestOptions } from '../object-store';
import type { Snapshot, SnapshotCatalog } from './catalog';

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
 * ChunkVolume opened on it reads the LUN as it was (export, and later a snapshot LUN). The
 * LUN must not change meanwhile (offline under its lease).
 */
export class SnapshotView implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly layout: LunLayout,
    private readonly resolver: SnapshotResolver,
  ) {
    this.description = `${inner.description} snapshot ${resolver.snapshot.name}`;
  }

  /** The key that holds what `key` is in the snapshot, or null for a hole. */
  private keyOf(key: string): string | null {
    const i = this.layout.chunkIndexOf(key);
    if (i === undefined) return key;
    const s = this.resolver.source(i);
    if (s.kind === 'hole') return null;
    return s.kind === 'snapshot' ? this.layout.snapshotChunkKey(s.id, i) : key;
  }

  async get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    const k = this.keyOf(key);
    return k === null ? null : this.inner.get(k, range, opts);
  }

  async head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
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
