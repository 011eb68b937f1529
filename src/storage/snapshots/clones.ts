import { log } from '../../util/log';
import { forEachParallel } from '../../util/parallel';
import { resealSnapshots } from '../codec/reseal';
import { StorageError } from '../errors';
import type { LunLayout } from '../layout';
import { listAll, type ObjectStore } from '../object-store';
import { StoredRecord } from '../record';
import type { VolumeInfo } from '../volume';
import { createVolume, readVolumeInfo, segmentSizeOf, writeVolumeIndependent } from '../volume-meta';
import { type Snapshot, SnapshotCatalog } from './catalog';
import { openParentView } from './clone-store';

/**
 * Clones (`s3tgt lun clone LUN@SNAPSHOT NEW`): a writable LUN whose volume.json names the
 * parent snapshot; it shares every chunk it has not written with that snapshot (CloneStore).
 * The parent keeps a marker per clone (`clones/<clone>.json`, written and removed by the
 * clone's lease holder) so that the snapshot is not deleted under it. Creating a clone and
 * deleting its snapshot each write first and check the other's object second (the snapshot's
 * `deleting` marker, the clone's marker): with S3's read-after-write, one of them sees the
 * other and backs off.
 */

const cloneError = (message: string): StorageError => new StorageError('invalid', message, { code: 'STORE_ERR_SNAPSHOT' });

interface CloneMarker {
  readonly clone: string;
  readonly snapshot: string;
  readonly snapshotId: number;
}

/**
 * Creates clone `clone` of snapshot `snapshotName` of LUN `parent`. `store` is the store seen
 * through the clone's lease (its write gate): the clone must not exist yet.
 */
export async function createClone(store: ObjectStore, parent: LunLayout, snapshotName: string, clone: LunLayout): Promise<VolumeInfo> {
  const parentInfo = await readVolumeInfo(store, parent);
  if (!parentInfo) throw cloneError(`LUN "${parent.name}" does not exist in the store`);
  const s = (await SnapshotCatalog.load(store, parent)).find(snapshotName);
  if (!s) throw cloneError(`LUN "${parent.name}" has no snapshot named "${snapshotName}"`);
  const existing = await readVolumeInfo(store, clone);
  if (existing) throw cloneError(`LUN "${clone.name}" already exists (created ${existing.created})`);
  for await (const e of listAll(store, `${clone.root}/`)) {
    if (e.key !== clone.leaseKey) throw cloneError(`LUN "${clone.name}" has objects left in the store (${e.key}): run s3tgt lun delete first`);
  }
  const marker = parent.cloneMarkerKey(clone.name);
  const body: CloneMarker = { clone: clone.name, snapshot: s.name, snapshotId: s.id };
  await store.put(marker, Buffer.from(`${JSON.stringify(body)}\n`));
  // Then look for a delete of the snapshot under way (it wrote its marker before it looked for clones).
  const still = (await SnapshotCatalog.load(store, parent)).find(snapshotName);
  if (!still || still.id !== s.id || (await store.head(parent.snapshotDeletingKey(s.id)))) {
    await store.delete(marker);
    throw cloneError(`snapshot "${snapshotName}" of LUN "${parent.name}" is being deleted`);
  }
  const info = await createVolume(store, clone, s.sizeBytes, parentInfo.logicalBlockSize, segmentSizeOf(parentInfo), {
    lun: parent.name,
    snapshot: s.name,
    snapshotId: s.id,
    sizeBytes: s.sizeBytes,
  });
  log.info('clone created', { lun: clone.name, parent: parent.name, snapshot: s.name });
  return info;
}

/**
 * Called by a snapshot delete once it wrote the snapshot's `deleting` marker: refuses while a
 * clone depends on the snapshot. A marker whose clone no longer names this snapshot (deleted,
 * hydrated, or never finished) is stale and removed.
 */
export async function checkNoClones(store: ObjectStore, layout: LunLayout, s: Snapshot): Promise<void> {
  const dependent: string[] = [];
  for await (const e of listAll(store, layout.clonesPrefix)) {
    const got = await store.get(e.key);
    if (!got) continue;
    const rec = StoredRecord.parse(got.body, e.key);
    if (rec.get('snapshotId').int(1) !== s.id) continue;
    const name = rec.get('clone').str();
    const info = await readVolumeInfo(store, layout.sibling(name));
    if (info?.parent?.lun === layout.name && info.parent.snapshotId === s.id) dependent.push(name);
    else await store.delete(e.key);
  }
  if (dependent.length > 0) {
    throw cloneError(
      `snapshot "${s.name}" of LUN "${layout.name}" has clones (${dependent.join(', ')}): hydrate them (s3tgt lun hydrate) or delete them first`,
    );
  }
}

/** Removes a clone's marker from its parent (the clone is being deleted, or no longer depends on it). */
export async function forgetClone(store: ObjectStore, clone: LunLayout, info: VolumeInfo): Promise<void> {
  if (info.parent) await store.delete(clone.sibling(info.parent.lun).cloneMarkerKey(clone.name));
}

/** Chunks copied at once while hydrating. */
const HYDRATE_PARALLEL = 8;

/** A served clone, as online hydration uses it (ChunkVolume). */
export interface LiveClone {
  hydrateChunk(i: number): Promise<boolean>;
}

/**
 * Makes a served clone independent while it is written (the serving process runs it in the
 * background of the admin request): each chunk it still inherits is copied into it under the
 * chunk's lock, then volume.json stops naming the parent and the parent's marker goes. The
 * hole markers stay (zero-length chunks read as zeros; the next start lists them as holes).
 *
 * An encrypted clone (`sealed`: its codec store, under its lease) seals each chunk as its own
 * (ChunkVolume.hydrateChunk passes the bytes through), and then its snapshots' chunks, which
 * may be copies of objects the parent sealed: once volume.json no longer names the parent,
 * nothing the clone keeps may need the parent's UUID or keys (docs/data-at-rest.md).
 */
export async function hydrateOnline(
  store: ObjectStore,
  layout: LunLayout,
  info: VolumeInfo,
  live: LiveClone,
  sealed?: ObjectStore,
): Promise<{ copied: number; snapshotChunks: number }> {
  const parent = info.parent;
  if (!parent) throw cloneError(`LUN "${layout.name}" is not a clone`);
  const chunks = Math.ceil(parent.sizeBytes / info.chunkSize);
  let copied = 0;
  await forEachParallel(chunks, HYDRATE_PARALLEL, async (i) => {
    if (await live.hydrateChunk(i)) copied++;
  });
  const snapshotChunks = sealed ? await resealSnapshots(sealed, layout) : 0;
  await writeVolumeIndependent(store, layout, info);
  await forgetClone(store, layout, info);
  log.info('clone hydrated online', { lun: layout.name, parent: parent.lun, snapshot: parent.snapshot, copied, snapshotChunks });
  return { copied, snapshotChunks };
}

/**
 * Makes a clone independent of its parent, offline under the clone's lease: every chunk it
 * still inherits is copied into it (S3 CopyObject from wherever the snapshot keeps it; no data
 * through s3tgt), then volume.json stops naming the parent, then the hole markers (no longer
 * needed: a missing chunk now reads as zeros) and the parent's marker go. Interrupted, it is
 * run again; a zero-length chunk left behind reads as zeros either way.
 */
export async function hydrateClone(store: ObjectStore, layout: LunLayout, info: VolumeInfo): Promise<{ copied: number; holes: number }> {
  const parent = info.parent;
  if (!parent) throw cloneError(`LUN "${layout.name}" is not a clone`);
  const view = await openParentView(store, layout, parent);
  const own = new Map<number, number>();
  for await (const e of listAll(store, layout.chunksPrefix)) {
    const i = layout.chunkIndexOf(e.key);
    if (i !== undefined) own.set(i, e.size);
  }
  const chunks = Math.ceil(parent.sizeBytes / info.chunkSize);
  const parentLayout = layout.sibling(parent.lun);
  const todo: number[] = [];
  for (let i = 0; i < chunks; i++) if (!own.has(i)) todo.push(i);
  let copied = 0;
  await forEachParallel(todo.length, HYDRATE_PARALLEL, async (k) => {
    if (await view.copyOut(parentLayout.chunkKey(todo[k]), layout.chunkKey(todo[k]))) copied++;
  });
  await writeVolumeIndependent(store, layout, info);
  const holes = [...own].filter(([, size]) => size === 0).map(([i]) => layout.chunkKey(i));
  for (let at = 0; at < holes.length; at += 1000) await store.deleteMany(holes.slice(at, at + 1000));
  await forgetClone(store, layout, info);
  log.info('clone hydrated', { lun: layout.name, parent: parent.lun, snapshot: parent.snapshot, copied, holes: holes.length });
  return { copied, holes: holes.length };
}
