import { log } from '../../util/log';
import { CodecStore } from '../codec/codec-store';
import { StorageError } from '../errors';
import { CHUNK_SIZE, type LunLayout } from '../layout';
import {
  type CopyOptions,
  type GetResult,
  type ListEntry,
  type ListPage,
  listAll,
  type ObjectMeta,
  type ObjectStore,
  type PutOptions,
  type RequestOptions,
} from '../object-store';
import type { VolumeInfo } from '../volume';
import { type Snapshot, SnapshotCatalog } from './catalog';
import { CloneStore, openParentView } from './clone-store';
import { putHole } from './holes';

/**
 * The store a LUN's volume writes through: a PreservingStore for its newest snapshot (the
 * catalog is read under the lease, before any write), idle while the LUN has none; for a
 * clone, over the CloneStore that reads through to its parent snapshot.
 */
export async function lunDataStore(store: ObjectStore, layout: LunLayout, info: VolumeInfo | null): Promise<PreservingStore> {
  return new PreservingStore(await lunReadStore(store, layout, info), layout, (await SnapshotCatalog.load(store, layout)).newest);
}

/** The store a LUN's chunks read from: the store itself, or for a clone its CloneStore. */
export async function lunReadStore(store: ObjectStore, layout: LunLayout, info: VolumeInfo | null, depth = 0): Promise<ObjectStore> {
  // An encoded LUN's chunks are sealed by it, or by the parents a clone reads through.
  if (info && store instanceof CodecStore) store.vouch(layout.root, info.uuid);
  const parent = info?.parent;
  if (!parent) return store;
  // Clones of clones chain; a chain this long is a loop in the volume.json files, not a design.
  if (depth >= MAX_CLONE_DEPTH) {
    throw new StorageError('data', `clone ${layout.name}: more than ${MAX_CLONE_DEPTH} parents (a loop in the volume.json files?)`, {
      code: 'STORE_ERR_SNAPSHOT',
    });
  }
  const chunks = Math.ceil(parent.sizeBytes / info.chunkSize);
  return new CloneStore(store, layout, await openParentView(store, layout, parent, depth + 1), parent.lun, chunks);
}

const MAX_CLONE_DEPTH = 16;

/** At most this many chunks are preserved at once for one deleteMany. */
const PRESERVE_PARALLEL = 8;

/**
 * The store a LUN with snapshots writes through: before any mutation of a live chunk
 * (`chunks/<i>`: PUT, DELETE, DeleteObjects, or the destination of a copy), the chunk as it is
 * now is copied into the newest snapshot, once (S3 CopyObject; a zero-length hole marker when
 * the chunk does not exist), and the mutation leaves only after that copy was answered.
 * Older snapshots need nothing: they read through to the newer ones (snapshot-view.ts).
 *
 * Which chunks are preserved is one bit per chunk, filled by a background listing of the
 * snapshot's chunks; until the listing is done a HEAD decides, never a blind second copy
 * (which would replace the preserved old data with newer data). The preservation requests
 * carry the mutation's options, so they pass the same write gate.
 */
export class PreservingStore implements ObjectStore {
  readonly description: string;
  private preserved = new Uint8Array(0);
  private listed = false;
  private readonly inflight = new Map<number, Promise<void>>();
  /** Bumped by retarget: work started for an earlier target does not mark the new one. */
  private generation = 0;
  private target: Snapshot | undefined;
  /** Chunks copied (or marked as holes) into the snapshot by this process. */
  preservedCount = 0;
  /** Bytes those copies hold (a hole marker holds none). */
  preservedBytes = 0;

  constructor(
    private readonly inner: ObjectStore,
    private readonly layout: LunLayout,
    snapshot: Snapshot | undefined,
  ) {
    this.description = inner.description;
    this.target = snapshot;
  }

  /** The snapshot chunks are preserved into (the newest), or undefined: nothing to preserve. */
  get snapshot(): Snapshot | undefined {
    return this.target;
  }

  /**
   * Preserves into `snapshot` from now on (the caller holds every writer of the LUN off while
   * it switches). `fresh`: a snapshot just taken holds nothing yet, so no listing is needed;
   * otherwise what it holds is listed again (HEAD meanwhile).
   */
  retarget(snapshot: Snapshot | undefined, fresh: boolean): void {
    this.target = snapshot;
    this.preserved = new Uint8Array(0);
    this.listed = fresh;
    this.generation++;
  }

  /** Lists what the snapshot holds already (in the background; mutations meanwhile HEAD). */
  async loadPreserved(): Promise<void> {
    const s = this.target;
    const generation = this.generation;
    if (!s) return;
    const found: number[] = [];
    for await (const e of listAll(this.inner, this.layout.snapshotChunksPrefix(s.id), { lane: 'background' })) {
      const i = this.layout.snapshotChunkIndexOf(s.id, e.key);
      if (i !== undefined) found.push(i);
    }
    // Retargeted meanwhile: this listing is of another snapshot.
    if (generation !== this.generation) return;
    for (const i of found) this.mark(i);
    this.listed = true;
    log.info('snapshot preservation map loaded', { lun: this.layout.name, snapshot: s.name, preserved: found.length });
  }

  isPreserved(i: number): boolean {
    return i < this.preserved.length && this.preserved[i] === 1;
  }

  private mark(i: number): void {
    if (i >= this.preserved.length) {
      const grown = new Uint8Array(Math.max(i + 1, this.preserved.length * 2, 1024));
      grown.set(this.preserved);
      this.preserved = grown;
    }
    this.preserved[i] = 1;
  }

  /** Preserves chunk `i` into the snapshot unless it already is; one preservation per chunk at a time. */
  private preserve(i: number, opts: RequestOptions | undefined): Promise<void> {
    if (!this.target || this.isPreserved(i)) return Promise.resolve();
    const running = this.inflight.get(i);
    if (running) return running;
    const p = this.copyOut(i, opts).finally(() => this.inflight.delete(i));
    this.inflight.set(i, p);
    return p;
  }

  private async copyOut(i: number, opts: RequestOptions | undefined): Promise<void> {
    const s = this.target as Snapshot;
    const generation = this.generation;
    // Only what carries the gate and the bounds: never the mutation's own preconditions.
    const ro: RequestOptions = {
      ...(opts?.lane ? { lane: opts.lane } : {}),
      ...(opts?.signal ? { signal: opts.signal } : {}),
      ...(opts?.guard ? { guard: opts.guard } : {}),
    };
    const to = this.layout.snapshotChunkKey(s.id, i);
    if (!this.listed && (await this.inner.head(to, ro))) {
      if (generation === this.generation) this.mark(i);
      return;
    }
    // A copy whose answer was lost may have landed; the retry layer repeats it, copying the
    // same live chunk (it is not overwritten before this returns).
    const copied = await this.inner.copy(this.layout.chunkKey(i), to, ro);
    if (!copied) await putHole(this.inner, to, ro);
    if (generation === this.generation) this.mark(i);
    this.preservedCount++;
    if (copied) this.preservedBytes += CHUNK_SIZE;
  }

  private chunkOf(key: string): number | undefined {
    return this.layout.chunkIndexOf(key);
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.inner.get(key, range, opts);
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.inner.head(key, opts);
  }

  async put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    const i = this.chunkOf(key);
    if (i !== undefined) await this.preserve(i, opts);
    return this.inner.put(key, body, opts);
  }

  async copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    const i = this.chunkOf(to);
    if (i !== undefined) await this.preserve(i, opts);
    return this.inner.copy(from, to, opts);
  }

  async delete(key: string, opts?: RequestOptions): Promise<void> {
    const i = this.chunkOf(key);
    if (i !== undefined) await this.preserve(i, opts);
    return this.inner.delete(key, opts);
  }

  async deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    const chunks = keys.map((k) => this.chunkOf(k)).filter((i): i is number => i !== undefined);
    for (let at = 0; at < chunks.length; at += PRESERVE_PARALLEL) {
      await Promise.all(chunks.slice(at, at + PRESERVE_PARALLEL).map((i) => this.preserve(i, opts)));
    }
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
