import type { LunConfig } from '../config/config';
import { ChunkVolume } from '../storage/chunk-volume';
import { ChunkCodec } from '../storage/codec/chunk-codec';
import { codecStore } from '../storage/codec/codec-store';
import { checkKeys } from '../storage/codec/encryption-record';
import { KeyRing } from '../storage/codec/keys';
import { StorageError } from '../storage/errors';
import type { Journal } from '../storage/journal/journal';
import { LunJournal } from '../storage/journal/lun-journal';
import { type ReplayResult, replayInto } from '../storage/journal/replay';
import { replayDecision } from '../storage/journal/replay-policy';
import type { ReplicaBacklog } from '../storage/journal/replication/replica-backlog';
import type { LunLayout } from '../storage/layout';
import { Lease, type LeaseRecord, type LeaseTiming } from '../storage/lease';
import type { ObjectStore } from '../storage/object-store';
import { SnapshotCatalog } from '../storage/snapshots/catalog';
import { lunDataStore, lunReadStore, type PreservingStore } from '../storage/snapshots/preserving-store';
import { SnapshotResolver, SnapshotView } from '../storage/snapshots/snapshot-view';
import type { VolumeInfo } from '../storage/volume';
import { createVolume, readVolumeInfo, segmentSizeFor } from '../storage/volume-meta';
import { WriteGate } from '../storage/write-gate';
import { systemClock } from '../util/clock';
import { log } from '../util/log';
import { recoverLun } from './journal-recovery';

/** What a cluster takeover replays of its predecessor's journal (docs/ha.md, "Journal replication"). */
export interface ReplicaReplay {
  /** The records to apply, in order, for the LUN of this UUID (read back a chunk at a time). */
  records(uuid: string): Promise<ReplicaBacklog>;
  /** They are durable in S3: never apply them again. */
  consumed(uuid: string): Promise<void>;
}

export interface OpenLun {
  readonly volume: ChunkVolume;
  readonly lease: Lease;
  /** The store the volume writes through, which preserves chunks into the newest snapshot. */
  readonly preserving: PreservingStore;
  /** What replay at open did, if the LUN had records in the journal. */
  readonly replay?: ReplayResult;
}

/**
 * Opens a LUN for serving: its lease first, then its volume.json (read under the lease, so no
 * offline resize can change it after we read; created on first use), then the volume, whose
 * every store mutation passes the lease's gate; then what it left in the journal is replayed
 * (or quarantined: journal-recovery.ts) and, for a journal LUN, the journal attached. Anything
 * that fails after the lease was taken releases it.
 */
export async function openLun(
  store: ObjectStore,
  layout: LunLayout,
  lun: LunConfig,
  timing: LeaseTiming,
  journal?: Journal,
  /**
   * How the lease is taken, given what to vouch for: a cluster standby claims the lease it
   * watched expire (Lease.claim); by default it is acquired (Lease.acquire).
   */
  take: (vouch: (previous: LeaseRecord | undefined) => readonly string[]) => Promise<Lease> = (vouch) =>
    Lease.acquire(store, layout.leaseKey, 'serve', timing, undefined, vouch),
  /**
   * In a cluster (docs/ha.md): this node, whose name qualifies the lease's vouches; chunk
   * writes are conditional (fencing by ETag) and never offloaded; and the predecessor's journal
   * records this node holds, if a takeover applies them (before anything else).
   */
  cluster?: { readonly node: string; readonly replica?: ReplicaReplay },
): Promise<OpenLun> {
  const conditionalWrites = cluster !== undefined;
  const replica = cluster?.replica;
  const codec = lunCodec(lun);
  const data = codecStore(store, codec);
  // The journal's records are keyed by the LUN's UUID, read before the lease (read only) so
  // that the takeover's PUT can vouch for the holders they were written under.
  const early = journal ? await readVolumeInfo(store, layout) : null;
  const recovered = early && journal ? journal.recoveredFor(early.uuid) : [];
  const node = cluster?.node;
  const lease = await take((previous) => {
    const d = replayDecision(recovered, previous, node);
    return d.replay ? d.vouches : [];
  });
  let volume: ChunkVolume | undefined;
  let preserving: PreservingStore | undefined;
  let fromReplica: ReplicaBacklog | undefined;
  try {
    const { info, isNew } = await volumeInfo(lease.gate.bind(store), layout, lun);
    fromReplica = replica ? await replica.records(info.uuid) : undefined;
    // A LUN that no longer journals replays through its cache, flushing once at the end; so does
    // a takeover's replay of its predecessor's records.
    const replaying = (journal !== undefined && !lun.journal && journal.recoveredFor(info.uuid).length > 0) || (fromReplica?.count ?? 0) > 0;
    // A LUN with snapshots writes through the store that preserves each chunk before its first
    // overwrite; which chunks are preserved already is listed in the background.
    preserving = await lunDataStore(data, layout, info);
    // After a clone's parents' keys were checked (clone-store.ts), before its own are recorded.
    await checkKeys(lease.gate.bind(store), layout, info.uuid, codec, isNew);
    void preserving
      .loadPreserved()
      .catch((e: unknown) =>
        log.warn('listing the newest snapshot failed; overwrites check each chunk instead', { lun: layout.name, error: String(e) }),
      );
    volume = new ChunkVolume(
      preserving,
      layout,
      info,
      {
        cacheBytes: lun.cacheBytes,
        cacheMode: replaying ? 'write-back' : lun.cacheMode,
        readOnly: lun.readOnly,
        flushDelayMs: lun.flushDelayMs,
        readAheadChunks: 8,
        spaceTimeoutMs: 20_000,
        wholeChunkReads: codec.active,
        sealedChunks: codec.encrypted,
      },
      // LUNs of one bucket copy chunks to each other server-side (EXTENDED COPY, ODX), compressed
      // or not (every LUN decodes what it reads, codec-store.ts); not encrypted ones, whose
      // objects are bound to their LUN and index (chunk-codec.ts).
      conditionalWrites || codec.encrypted ? { gate: lease.gate, conditionalWrites } : { gate: lease.gate, copyDomain: store.description },
    );
    // The store holds the LUN's size; a larger configured size grows it, a smaller one is
    // ignored with a warning (LUNs never shrink: the data past the new end would be lost).
    if (lun.sizeBytes > info.sizeBytes) await volume.grow(lun.sizeBytes);
    else if (lun.sizeBytes < info.sizeBytes) {
      log.warn('the configured size is smaller than the LUN; serving the LUN as it is (LUNs never shrink)', {
        lun: layout.name,
        configured: lun.sizeBytes,
        size: info.sizeBytes,
      });
    }
    let replay: ReplayResult | undefined;
    if (replica && fromReplica && fromReplica.count > 0) {
      // Older than anything in this node's journal for the LUN (docs/ha.md): applied first,
      // and made durable in S3 before the LUN serves, then marked consumed so that no later
      // start of this node applies them over newer writes.
      const t0 = Date.now();
      replay = await replayInto(volume, fromReplica.chunks());
      await replica.consumed(info.uuid);
      replay = { ...replay, seconds: (Date.now() - t0) / 1000 };
      log.warn("journal: applied the previous node's replicated records", { lun: layout.name, ...replay });
    }
    if (replica) await volume.setCacheMode(lun.cacheMode);
    if (journal) {
      replay = (await recoverLun(volume, journal, lease, layout.name, lun.journal, node)) ?? replay;
      await volume.setCacheMode(lun.cacheMode);
      if (lun.journal) volume.attachJournal(new LunJournal(journal, info.uuid, lease.holder));
    }
    return { volume, lease, preserving, ...(replay ? { replay } : {}) };
  } catch (e) {
    await volume?.close().catch(() => undefined);
    await lease.release();
    throw e;
  } finally {
    await fromReplica?.close();
  }
}

/**
 * The LUN's volume.json, created on first use. An existing volume whose block size differs
 * from the configuration is refused: serving another geometry would corrupt the initiator's
 * view of the disk.
 */
async function volumeInfo(store: ObjectStore, layout: LunLayout, lun: LunConfig): Promise<{ info: VolumeInfo; isNew: boolean }> {
  let info = await readVolumeInfo(store, layout);
  let isNew = false;
  if (!info) {
    try {
      info = await createVolume(store, layout, lun.sizeBytes, lun.blockSize, segmentSizeFor(lun.store));
      isNew = true;
    } catch (e) {
      // Someone else created it between our read and our create: use theirs.
      if (!(e instanceof StorageError && e.kind === 'precondition')) throw e;
      info = await readVolumeInfo(store, layout);
      if (!info) throw e;
    }
  }
  if (info.logicalBlockSize !== lun.blockSize) {
    throw new StorageError(
      'invalid',
      `LUN ${layout.name} has ${info.logicalBlockSize}-byte blocks in the store, ${lun.blockSize} in the configuration`,
    );
  }
  return { info, isNew };
}

/** A LUN's chunk encoding as configured (compression, encryption; both off by default). */
export function lunCodec(lun: LunConfig): ChunkCodec {
  const e = lun.encryption;
  return new ChunkCodec({ compression: lun.compression ?? 'off', ...(e ? { keys: new KeyRing(e.current, e.previous) } : {}) });
}

/**
 * Opens a snapshot LUN (`snapshot: LUN@SNAPSHOT`): read-only, without a lease (nothing is
 * written), through a live SnapshotView, since the LUN it was taken of may be served and
 * written meanwhile, here or elsewhere.
 */
export async function openSnapshotLun(store: ObjectStore, layout: LunLayout, lun: LunConfig): Promise<ChunkVolume> {
  const of = lun.snapshotOf;
  if (!of) throw new StorageError('internal', `${lun.name} is not a snapshot LUN`);
  const info = await readVolumeInfo(store, layout);
  if (!info) throw new StorageError('invalid', `LUN ${lun.name}: LUN "${of.lun}" does not exist in the store`, { code: 'STORE_ERR_SNAPSHOT' });
  const codec = lunCodec(lun);
  await checkKeys(store, layout, info.uuid, codec, false, true);
  const data = codecStore(store, codec);
  const catalog = await SnapshotCatalog.load(store, layout);
  const s = catalog.find(of.snapshot);
  if (!s)
    throw new StorageError('invalid', `LUN ${lun.name}: LUN "${of.lun}" has no snapshot named "${of.snapshot}"`, { code: 'STORE_ERR_SNAPSHOT' });
  if (info.logicalBlockSize !== lun.blockSize) {
    throw new StorageError('invalid', `LUN ${lun.name}: "${of.lun}" has ${info.logicalBlockSize}-byte blocks, ${lun.blockSize} in the configuration`);
  }
  const view = new SnapshotView(await lunReadStore(data, layout, info), layout, await SnapshotResolver.load(store, layout, catalog, s), true);
  return new ChunkVolume(
    view,
    layout,
    { ...info, sizeBytes: s.sizeBytes },
    {
      cacheBytes: lun.cacheBytes,
      cacheMode: 'write-through',
      readOnly: true,
      flushDelayMs: lun.flushDelayMs,
      readAheadChunks: 8,
      spaceTimeoutMs: 20_000,
      wholeChunkReads: codec.active,
      sealedChunks: codec.encrypted,
    },
    { gate: WriteGate.unleased(systemClock, lun.name) },
  );
}
