import { crc32c } from '@node-rs/crc32';
import { StorageError } from './errors';

/**
 * Chunk checksums. A chunk carries one CRC32C per 64 KiB segment in its object metadata
 * (16 x 8 hex digits for a 1 MiB chunk, well inside S3's 2 KB metadata limit), so a ranged
 * GET widened to segment boundaries can be verified without fetching the whole chunk.
 */
export const SEGMENT_SIZE = 64 * 1024;
export const CRC_META_KEY = 's3tgt-crc32c';

export function segmentCrcs(chunk: Buffer): string {
  let out = '';
  for (let off = 0; off < chunk.length; off += SEGMENT_SIZE) {
    out += (crc32c(chunk.subarray(off, Math.min(off + SEGMENT_SIZE, chunk.length))) >>> 0).toString(16).padStart(8, '0');
  }
  return out;
}

/** Widens a byte range within a chunk to whole segments. */
export function segmentAligned(offset: number, length: number, chunkSize: number): { offset: number; length: number } {
  const start = Math.floor(offset / SEGMENT_SIZE) * SEGMENT_SIZE;
  const end = Math.min(chunkSize, Math.ceil((offset + length) / SEGMENT_SIZE) * SEGMENT_SIZE);
  return { offset: start, length: end - start };
}

/**
 * Checks `body`, which holds chunk bytes from segment-aligned `offset`, against the stored
 * CRCs. A mismatch is a `data` StorageError (a MEDIUM ERROR to the initiator), never silent.
 */
export function verifySegments(key: string, body: Buffer, offset: number, crcs: string | undefined): void {
  if (crcs === undefined) throw new StorageError('data', `${key}: no checksum metadata`);
  if (offset % SEGMENT_SIZE !== 0) throw new StorageError('internal', `${key}: unaligned verification at ${offset}`);
  for (let off = 0; off < body.length; off += SEGMENT_SIZE) {
    const seg = (offset + off) / SEGMENT_SIZE;
    const want = crcs.slice(seg * 8, seg * 8 + 8);
    const got = (crc32c(body.subarray(off, Math.min(off + SEGMENT_SIZE, body.length))) >>> 0).toString(16).padStart(8, '0');
    if (want !== got) {
      throw new StorageError('data', `${key}: checksum mismatch in segment ${seg} (stored ${want || 'none'}, computed ${got})`);
    }
  }
}
