import type { ChunkVolumeOptions } from '../../src/storage/chunk-volume';
import { LunLayout } from '../../src/storage/layout';
import type { VolumeInfo } from '../../src/storage/volume';

/** What the storage-core unit tests build their volumes from. */
export const MiB = 1024 * 1024;
export const TEST_LAYOUT = new LunLayout('p', 'vol');

export function testInfo(sizeBytes: number): VolumeInfo {
  return { name: 'vol', sizeBytes, logicalBlockSize: 512, chunkSize: MiB, uuid: '00000000-0000-0000-0000-000000000000', created: '' };
}

/** A write-back volume whose flusher waits a minute: only FUA, flushes and close write. */
export function testOptions(cacheBytes: number): ChunkVolumeOptions {
  return { cacheBytes, cacheMode: 'write-back', readOnly: false, flushDelayMs: 60_000, readAheadChunks: 0, spaceTimeoutMs: 5_000 };
}
