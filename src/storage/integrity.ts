import { crc32c } from '@node-rs/crc32';
import { StorageError } from './errors';

/**
 * Chunk checksums. A chunk carries one CRC32C per segment in its object metadata, so a ranged
 * read widened to segment boundaries can be verified without fetching the whole chunk. The
 * segment is a LUN's, fixed when it is created (volume.json): 64 KiB on S3 (16 x 8 hex digits
 * for a 1 MiB chunk, well inside S3's 2 KB metadata limit), 4 KiB on the local chunk store,
 * whose metadata has room for 256 (a 4 KiB read that misses the cache then reads and checks
 * 4 KiB, not 64: the CRC was 17 % of the CPU of that read). The grain of an object is also
 * implied by its checksum count, so a read checks it.
 */
export const SEGMENT_SIZE = 64 * 1024;
/** The local chunk store's segment (volume.json `segmentSize`). */
export const FINE_SEGMENT_SIZE = 4096;
export const CRC_META_KEY = 's3tgt-crc32c';

export function segmentCrcs(chunk: Buffer, segmentSize = SEGMENT_SIZE): string {
  let out = '';
  for (let off = 0; off < chunk.length; off += segmentSize) {
    out += (crc32c(chunk.subarray(off, Math.min(off + segmentSize, chunk.length))) >>> 0).toString(16).padStart(8, '0');
  }
  return out;
}

/** Widens a byte range within a chunk to whole segments. */
export function segmentAligned(offset: number, length: number, chunkSize: number, segmentSize = SEGMENT_SIZE): { offset: number; length: number } {
  const start = Math.floor(offset / segmentSize) * segmentSize;
  const end = Math.min(chunkSize, Math.ceil((offset + length) / segmentSize) * segmentSize);
  return { offset: start, length: end - start };
}

/**
 * Checks `body`, which holds chunk bytes from segment-aligned `offset`, against the stored
 * CRCs. A mismatch is a `data` StorageError (a MEDIUM ERROR to the initiator), never silent.
 */
export function verifySegments(key: string, body: Buffer, offset: number, crcs: string | undefined, chunkSize: number): void {
  if (crcs === undefined) throw new StorageError('data', `${key}: no checksum metadata`);
  // The object's own grain, from its checksum count (each one 8 hex digits).
  const count = crcs.length / 8;
  const grain = chunkSize / count;
  if (!Number.isInteger(count) || !Number.isInteger(grain) || grain % 512 !== 0) {
    throw new StorageError('data', `${key}: corrupt checksum metadata (${crcs.length} characters)`);
  }
  if (offset % grain !== 0 || body.length % grain !== 0) {
    throw new StorageError('data', `${key}: bytes ${offset}+${body.length} are not whole ${grain}-byte checksum segments of this object`);
  }
  for (let off = 0; off < body.length; off += grain) {
    const seg = (offset + off) / grain;
    const want = crcs.slice(seg * 8, seg * 8 + 8);
    const got = (crc32c(body.subarray(off, Math.min(off + grain, body.length))) >>> 0).toString(16).padStart(8, '0');
    if (want !== got) {
      throw new StorageError('data', `${key}: checksum mismatch in segment ${seg} (stored ${want || 'none'}, computed ${got})`);
    }
  }
}
