import { unreachable } from '../../util/unreachable';
import { be, checkControlByte, checkLbaRange, type LbaRange } from '../cdb';
import { invalidCdbField, ScsiError } from '../errors';
import type { LogicalUnit } from '../logical-unit';

/** SBC-4 §5: READ/WRITE/VERIFY CDB layouts, by CDB length. */
export type CdbSize = 6 | 10 | 12 | 16;

export interface RwRequest extends LbaRange {
  readonly offset: number;
  readonly length: number;
  readonly fua: boolean;
  readonly dpo: boolean;
  readonly dataOutLength: number;
  readonly transferLength: number;
}

/** Reads LBA and TRANSFER LENGTH of a 6/10/12/16-byte block command. */
export function lbaAndLength(cdb: Buffer, size: CdbSize): { lba: bigint; blocks: bigint } {
  switch (size) {
    case 6: {
      // SBC-4 §5.15: 21-bit LBA; a TRANSFER LENGTH of 0 means 256 blocks.
      const lba = BigInt(((cdb[1] & 0x1f) << 16) | (cdb[2] << 8) | cdb[3]);
      return { lba, blocks: BigInt(cdb[4] === 0 ? 256 : cdb[4]) };
    }
    case 10:
      return { lba: BigInt(be.u32(cdb, 2)), blocks: BigInt(be.u16(cdb, 7)) };
    case 12:
      return { lba: BigInt(be.u32(cdb, 2)), blocks: BigInt(be.u32(cdb, 6)) };
    case 16:
      return { lba: be.u64(cdb, 2), blocks: BigInt(be.u32(cdb, 10)) };
    default:
      return unreachable(size);
  }
}

/**
 * Decodes a read- or write-type CDB into a checked byte range. PROTECT fields must be zero
 * (we format without protection information, SBC-4 §4.22), the range is checked once, and
 * the transfer is limited to the Block Limits maximum.
 */
export function decodeRw(cdb: Buffer, size: CdbSize, lu: LogicalUnit, direction: 'in' | 'out' | 'none'): RwRequest {
  if (cdb.length < size) throw invalidCdbField(0);
  checkControlByte(cdb.subarray(0, size));
  const { lba, blocks } = lbaAndLength(cdb, size);
  let fua = false;
  let dpo = false;
  if (size !== 6) {
    if (cdb[1] & 0xe0) throw invalidCdbField(1, 7);
    dpo = (cdb[1] & 0x10) !== 0;
    fua = (cdb[1] & 0x08) !== 0;
  }
  checkLbaRange({ lba, blocks }, lu.capacityBlocks);
  if (direction === 'out') checkWritable(lu);
  const bs = lu.blockSize;
  if (blocks > BigInt(MAX_TRANSFER_BYTES / bs)) throw invalidCdbField(size === 16 ? 10 : size === 12 ? 6 : size === 10 ? 7 : 4);
  const length = Number(blocks) * bs;
  return {
    lba,
    blocks,
    offset: Number(lba) * bs,
    length,
    fua,
    dpo,
    dataOutLength: direction === 'out' ? length : 0,
    transferLength: direction === 'none' ? 0 : length,
  };
}

/**
 * SBC-4 §4.11: a write to a write-protected medium fails before any data moves; the Control
 * mode page's SWP protects it in software (SPC-5 §7.5.8).
 */
export function checkWritable(lu: LogicalUnit): void {
  if (lu.volume.readOnly) throw new ScsiError('WriteProtected');
  if (lu.mode.softwareWriteProtect) throw new ScsiError('SoftwareWriteProtected');
}

/**
 * Block Limits VPD MAXIMUM TRANSFER LENGTH, in bytes (SBC-4 §6.6.4): 32 MiB, ESXi's largest I/O.
 * The transport bounds how much of it a connection may hold at once.
 */
export const MAX_TRANSFER_BYTES = 32 * 1024 * 1024;

/** A write limited to the whole blocks of `bytes` (FCP-4 §9.4.2 a); SPDTL stays for the residual. */
export function shrinkWrite(r: RwRequest, bytes: number, blockSize: number): RwRequest {
  const blocks = BigInt(Math.floor(bytes / blockSize));
  const length = Number(blocks) * blockSize;
  return { ...r, blocks, length, dataOutLength: length };
}
