import type { LunConfig } from '../config/config';
import { formatSize } from '../config/units';
import { ChunkVolume } from '../storage/chunk-volume';
import { StorageError } from '../storage/errors';
import type { LunLayout } from '../storage/layout';
import { Lease, type LeaseTiming } from '../storage/lease';
import type { ObjectStore } from '../storage/object-store';
import type { VolumeInfo } from '../storage/volume';
import { createVolume, readVolumeInfo } from '../storage/volume-meta';

export interface OpenLun {
  readonly volume: ChunkVolume;
  readonly lease: Lease;
}

/**
 * Opens a LUN for serving: its volume (created on first use) under its single-writer lease.
 * Lease events drive the volume: suspended/resumed writes, and fencing when it is lost.
 */
export async function openLun(store: ObjectStore, layout: LunLayout, lun: LunConfig, timing: LeaseTiming): Promise<OpenLun> {
  const info = await volumeInfo(store, layout, lun);
  let volume: ChunkVolume | undefined;
  const lease = await Lease.acquire(
    store,
    layout.leaseKey,
    'serve',
    {
      suspended: (reason) => volume?.suspend(reason),
      resumed: () => volume?.resume(),
      lost: (reason) => volume?.fence(reason),
    },
    timing,
  );
  volume = new ChunkVolume(store, layout, info, {
    cacheBytes: lun.cacheBytes,
    cacheMode: lun.cacheMode,
    readOnly: lun.readOnly,
    flushDelayMs: lun.flushDelayMs,
    readAheadChunks: 8,
    spaceTimeoutMs: 20_000,
  });
  return { volume, lease };
}

/**
 * The LUN's volume.json, created on first use. An existing volume whose size or block
 * size differs from the configuration is refused: silently serving the wrong geometry would
 * corrupt the initiator's view of the disk.
 */
async function volumeInfo(store: ObjectStore, layout: LunLayout, lun: LunConfig): Promise<VolumeInfo> {
  let info = await readVolumeInfo(store, layout);
  if (!info) {
    try {
      info = await createVolume(store, layout, lun.sizeBytes, lun.blockSize);
    } catch (e) {
      // Someone else created it between our read and our create: use theirs.
      if (!(e instanceof StorageError && e.kind === 'precondition')) throw e;
      info = await readVolumeInfo(store, layout);
      if (!info) throw e;
    }
  }
  if (info.sizeBytes !== lun.sizeBytes) {
    throw new StorageError(
      'invalid',
      `LUN ${layout.name} is ${formatSize(info.sizeBytes)} in the store but ${formatSize(lun.sizeBytes)} in the configuration (use "s3tgt lun resize")`,
    );
  }
  if (info.logicalBlockSize !== lun.blockSize) {
    throw new StorageError(
      'invalid',
      `LUN ${layout.name} has ${info.logicalBlockSize}-byte blocks in the store, ${lun.blockSize} in the configuration`,
    );
  }
  return info;
}
