import { be, checkControlByte, checkLbaRange, toBytes } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { checkWritable } from './rw-decode';
import { BLOCK_LIMITS, PROVISIONING } from './vpd';

interface WriteSameRequest {
  readonly offset: number;
  readonly length: number;
  readonly unmap: boolean;
  /** NDOB: no Data-Out; the block is all zeros (SBC-4 §5.50). */
  readonly ndob: boolean;
  readonly dataOutLength: number;
  readonly transferLength: number;
}

/**
 * SBC-4 §5.49/§5.50: WRITE SAME (10/16). A NUMBER OF LOGICAL BLOCKS of zero means "to the
 * end of the medium" (WSNZ=0), bounded like any other by MAXIMUM WRITE SAME LENGTH. ANCHOR
 * is refused (ANC_SUP=0). A zero block, with or without UNMAP, deallocates whole chunks:
 * unmapped blocks read as zeros (LBPRZ=1), so the result is the same and costs no storage.
 */
function decodeWriteSame(cdb: Buffer, size: 10 | 16, lu: LogicalUnit): WriteSameRequest {
  checkControlByte(cdb.subarray(0, size));
  if (cdb[1] & 0xe0) throw invalidCdbField(1, 7); // WRPROTECT: no protection information
  if (cdb[1] & 0x10) throw invalidCdbField(1, 4); // ANCHOR
  // UNMAP is offered only when VPD B2h says so (LBPWS/LBPWS10, SBC-4 §6.6.5).
  if (cdb[1] & 0x08 && !PROVISIONING.writeSameUnmap) throw invalidCdbField(1, 3);
  const ndob = size === 16 && (cdb[1] & 0x01) !== 0;
  if (size === 10 && cdb[1] & 0x01) throw invalidCdbField(1, 0);
  const lba = size === 10 ? BigInt(be.u32(cdb, 2)) : be.u64(cdb, 2);
  let blocks = BigInt(size === 10 ? be.u16(cdb, 7) : be.u32(cdb, 10));
  checkLbaRange({ lba, blocks }, lu.capacityBlocks);
  if (blocks === 0n) blocks = lu.capacityBlocks - lba;
  if (blocks * BigInt(lu.blockSize) > BigInt(BLOCK_LIMITS.maxWriteSameBytes)) throw invalidCdbField(size === 10 ? 7 : 10);
  checkWritable(lu);
  const { offset, length } = toBytes({ lba, blocks }, lu.blockSize);
  const out = ndob ? 0 : lu.blockSize;
  return { offset, length, unmap: (cdb[1] & 0x08) !== 0, ndob, dataOutLength: out, transferLength: out };
}

function writeSame(size: 10 | 16): Command<LogicalUnit> {
  const opcode = size === 10 ? 0x41 : 0x93;
  return defineCommand({
    name: `WRITE SAME(${size})`,
    opcode,
    cdbLength: size,
    usage: size === 10 ? [opcode, 0x08, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00] : [opcode, 0x09, ...Array<number>(12).fill(0xff), 0x00, 0x00],
    reservation: 'write',
    timeout: 60,
    // The Data-Out is exactly one logical block (SBC-4 §5.49): a different size is an error.
    exactDataOut: { byte: 1 },
    decode: (cdb, lu) => decodeWriteSame(cdb, size, lu),
    async execute({ lu, dataOut }, r) {
      if (r.length === 0) return undefined;
      const block = r.ndob ? Buffer.alloc(lu.blockSize) : dataOut.subarray(0, lu.blockSize);
      await lu.volume.writeSame({ offset: r.offset, length: r.length }, block, { unmap: r.unmap });
      return undefined;
    },
  });
}

export const WRITE_SAME_COMMANDS: readonly Command<LogicalUnit>[] = [writeSame(10), writeSame(16)];
