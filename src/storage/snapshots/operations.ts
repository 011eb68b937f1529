import { log } from '../../util/log';
import { StorageError } from '../errors';
import type { LunLayout } from '../layout';
import { listAll, type ObjectStore } from '../object-store';
import type { VolumeInfo } from '../volume';
import { type Snapshot, SnapshotCatalog } from './catalog';
import { checkNoClones } from './clones';
import { putHole } from './holes';
import { lunReadStore, PreservingStore } from './preserving-store';
import { SnapshotResolver } from './snapshot-view';

/**
 * Snapshot operations on a LUN that is not being served (the caller holds its lease, and
 * `store` is the store seen through the lease's write gate). Nothing here buffers data: the
 * store holds everything the LUN acknowledged, so the point in time is the call itself.
 */

const unknown = (name: string): StorageError => new StorageError('invalid', `no snapshot named "${name}"`, { code: 'STORE_ERR_SNAPSHOT' });

/**
 * Takes a snapshot: one record (after removing leftovers of an earlier attempt that used the
 * same id and never became listed). Chunks are copied out later, each before its first
 * overwrite. On a served LUN (`live`) this happens at a barrier: every write acknowledged
 * before it is in the snapshot, none after. A catalog write whose outcome is unknown may have
 * landed, so preservation switches to the new snapshot whatever the answer.
 */
export async function createSnapshot(
  store: ObjectStore,
  layout: LunLayout,
  info: VolumeInfo,
  name: string,
  live?: LiveLun,
  now = new Date(),
): Promise<Snapshot> {
  const take = async (): Promise<Snapshot> => {
    const next = (await SnapshotCatalog.load(store, layout)).with(name, now, info.sizeBytes);
    const leftovers: string[] = [];
    for await (const e of listAll(store, layout.snapshotChunksPrefix(next.snapshot.id))) leftovers.push(e.key);
    for (let at = 0; at < leftovers.length; at += 1000) await store.deleteMany(leftovers.slice(at, at + 1000));
    try {
      await next.catalog.save(store, layout);
    } finally {
      live?.retarget(next.snapshot, true);
    }
    return next.snapshot;
  };
  const snapshot = live ? await live.barrier(take) : await take();
  log.info('snapshot created', { lun: layout.name, snapshot: name, id: snapshot.id, online: live !== undefined });
  return snapshot;
}

export async function listSnapshots(
  store: ObjectStore,
  layout: LunLayout,
): Promise<Array<Snapshot & { preservedChunks: number; preservedBytes: number }>> {
  const catalog = await SnapshotCatalog.load(store, layout);
  const out = [];
  for (const s of catalog.snapshots) {
    let preservedChunks = 0;
    let preservedBytes = 0;
    for await (const e of listAll(store, layout.snapshotChunksPrefix(s.id))) {
      preservedChunks++;
      preservedBytes += e.size;
    }
    out.push({ ...s, preservedChunks, preservedBytes });
  }
  return out;
}

/** Hands every chunk `s` preserved and `older` lacks to `older`; returns the keys of `s`. */
async function handOver(
  store: ObjectStore,
  layout: LunLayout,
  s: Snapshot,
  older: Snapshot | undefined,
): Promise<{ keys: string[]; handedOver: number }> {
  const keys: string[] = [];
  let handedOver = 0;
  const olderHas = new Set<number>();
  if (older) {
    for await (const e of listAll(store, layout.snapshotChunksPrefix(older.id))) {
      const i = layout.snapshotChunkIndexOf(older.id, e.key);
      if (i !== undefined) olderHas.add(i);
    }
  }
  for await (const e of listAll(store, layout.snapshotChunksPrefix(s.id))) {
    keys.push(e.key);
    const i = layout.snapshotChunkIndexOf(s.id, e.key);
    if (!older || i === undefined || olderHas.has(i)) continue;
    const to = layout.snapshotChunkKey(older.id, i);
    if (e.size === 0) await putHole(store, to);
    else if (!(await store.copy(e.key, to))) throw new StorageError('unavailable', `${e.key} vanished while snapshot "${s.name}" was being deleted`);
    handedOver++;
  }
  return { keys, handedOver };
}

/** How a serving process lets a snapshot operation stop its writers and switch preservation. */
export interface LiveLun {
  /** Runs `fn` with every write acknowledged before it in the store and none starting meanwhile. */
  barrier<T>(fn: () => Promise<T>): Promise<T>;
  /** From now on, preserve chunks into `snapshot` (`fresh`: it holds nothing yet). */
  retarget(snapshot: Snapshot | undefined, fresh: boolean): void;
}

/**
 * Deletes a snapshot. The next older snapshot reads through this one for every chunk it did not
 * preserve itself, so each such chunk is first handed to it (a copy, or a hole marker); then
 * the catalog forgets the snapshot; then its objects go. Interrupted, it is simply run again:
 * a chunk already handed over is not copied twice, and leftovers of a forgotten id are removed
 * before the id could be used again. On a served LUN (`live`) the newest snapshot still
 * receives chunks while its contents are handed over: the last pass, the catalog and the
 * switch of preservation to the older snapshot happen at a barrier.
 */
export async function deleteSnapshot(
  store: ObjectStore,
  layout: LunLayout,
  name: string,
  live?: LiveLun,
): Promise<{ handedOver: number; deleted: number }> {
  const catalog = await SnapshotCatalog.load(store, layout);
  const s = catalog.find(name);
  if (!s) throw unknown(name);
  // Say so first, then look for clones (a clone being made looks for this marker after it
  // wrote its own: one of the two sees the other).
  const deleting = layout.snapshotDeletingKey(s.id);
  await store.put(deleting, Buffer.alloc(0));
  try {
    await checkNoClones(store, layout, s);
  } catch (e) {
    await store.delete(deleting);
    throw e;
  }
  const older = catalog.olderThan(s.id);
  let r = await handOver(store, layout, s, older);
  let handedOver = r.handedOver;
  const forget = async (): Promise<void> => {
    await catalog.without(s.id).save(store, layout);
  };
  if (live && catalog.newest?.id === s.id) {
    r = await live.barrier(async () => {
      const last = await handOver(store, layout, s, older);
      await forget();
      live.retarget(older, false);
      return last;
    });
    handedOver += r.handedOver;
  } else await forget();
  for (let at = 0; at < r.keys.length; at += 1000) await store.deleteMany(r.keys.slice(at, at + 1000));
  await store.delete(deleting);
  log.info('snapshot deleted', { lun: layout.name, snapshot: name, handedOver, deleted: r.keys.length });
  return { handedOver, deleted: r.keys.length };
}

/**
 * Rolls the LUN back to a snapshot: every chunk that changed since is copied back from where
 * the snapshot keeps it (or deleted: it did not exist then), and chunks past the snapshot's
 * size are deleted. Snapshots newer than it keep their contents: each overwrite first
 * preserves the live chunk into the newest one. The LUN keeps its current size. `info`: the
 * LUN's volume.json (a clone restores through the store that reads its parent).
 */
export async function restoreSnapshot(
  store: ObjectStore,
  layout: LunLayout,
  info: VolumeInfo | null,
  name: string,
): Promise<{ restored: number; deleted: number }> {
  const catalog = await SnapshotCatalog.load(store, layout);
  const s = catalog.find(name);
  if (!s) throw unknown(name);
  const resolver = await SnapshotResolver.load(store, layout, catalog, s);
  const newest = catalog.newest as Snapshot;
  // A clone's restore deletes through its CloneStore: a chunk that was zeros becomes a hole
  // marker, not a missing object (which would read the parent's chunk).
  const out = new PreservingStore(await lunReadStore(store, layout, info), layout, newest);
  let restored = 0;
  let deleted = 0;
  const chunks = Math.ceil(s.sizeBytes / (1024 * 1024));
  for (const [i, src] of resolver.preserved) {
    if (i >= chunks) continue;
    if (src.kind === 'hole') {
      await out.delete(layout.chunkKey(i));
      deleted++;
    } else if (src.kind === 'snapshot') {
      const from = layout.snapshotChunkKey(src.id, i);
      if (!(await out.copy(from, layout.chunkKey(i)))) throw new StorageError('unavailable', `${from} vanished during the restore`);
      restored++;
    }
  }
  for await (const e of listAll(store, layout.chunksPrefix)) {
    const i = layout.chunkIndexOf(e.key);
    if (i !== undefined && i >= chunks) {
      await out.delete(e.key);
      deleted++;
    }
  }
  log.info('snapshot restored', { lun: layout.name, snapshot: name, restored, deleted });
  return { restored, deleted };
}
