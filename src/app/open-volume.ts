import type { LunConfig } from '../config/config';
import { formatSize } from '../config/units';
import { ChunkVolume } from '../storage/chunk-volume';
import { StorageError } from '../storage/errors';
import type { LunLayout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import { createVolume, readVolumeInfo } from '../storage/volume-meta';

/**
 * Opens the LUN's volume, creating it on first use. An existing volume whose size or block
 * size differs from the configuration is refused: silently serving the wrong geometry would
 * corrupt the initiator's view of the disk.
 */
export async function openVolume(store: ObjectStore, layout: LunLayout, lun: LunConfig): Promise<ChunkVolume> {
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
  return new ChunkVolume(store, layout, info, {
    cacheBytes: lun.cacheBytes,
    cacheMode: lun.cacheMode,
    readOnly: lun.readOnly,
    flushDelayMs: lun.flushDelayMs,
    readAheadChunks: 8,
    spaceTimeoutMs: 20_000,
  });
}
