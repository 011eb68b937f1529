import { ScsiError } from './errors';

/** Big-endian field readers over a CDB or parameter list. */
export const be = {
  u16: (b: Buffer, o: number): number => b.readUInt16BE(o),
  u24: (b: Buffer, o: number): number => (b[o] << 16) | (b[o + 1] << 8) | b[o + 2],
  u32: (b: Buffer, o: number): number => b.readUInt32BE(o),
  u64: (b: Buffer, o: number): bigint => b.readBigUInt64BE(o),
};

/** A range of logical blocks, exact in 64 bits until it has been checked. */
export interface LbaRange {
  readonly lba: bigint;
  readonly blocks: bigint;
}

/**
 * THE range check (SBC-4 §4.5, LIO's sbc_check_valid): done once, in bigint, before any handler
 * sees the range, so LBA + length can never wrap.
 */
export function checkLbaRange(r: LbaRange, capacityBlocks: bigint): void {
  if (r.lba + r.blocks > capacityBlocks) throw new ScsiError('LbaOutOfRange');
}

/** Byte offset and length of a checked range; safe as numbers (capacity < 2^53 bytes). */
export function toBytes(r: LbaRange, blockSize: number): { offset: number; length: number } {
  return { offset: Number(r.lba) * blockSize, length: Number(r.blocks) * blockSize };
}

/** Truncates returned data to the ALLOCATION LENGTH (SPC-5 §4.2.5.6). */
export function truncate(data: Buffer, allocationLength: number): Buffer {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}

/** The CONTROL byte's NACA bit (SAM-5 §5.2): we do not support ACA. */
export function checkControlByte(cdb: Buffer): void {
  const control = cdb[cdb.length - 1];
  if (control & 0x04) throw new ScsiError('InvalidFieldInCdb', { field: { inCdb: true, byte: cdb.length - 1, bit: 2 } });
}
