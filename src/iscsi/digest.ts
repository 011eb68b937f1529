import { crc32c } from '@node-rs/crc32';

/**
 * RFC 7143 §13.1 / Appendix B.4: CRC32C digests, computed by a SIMD (SSE4.2) implementation.
 * The iSCSI digest is the CRC32C value stored little-endian on the wire.
 */
export function digestOf(...parts: Buffer[]): number {
  let crc = 0;
  for (const p of parts) if (p.length > 0) crc = crc32c(p, crc);
  return crc >>> 0;
}

export function writeDigest(crc: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(crc >>> 0, 0);
  return b;
}
