import type { ByteRange } from '../../storage/volume';
import { be, checkControlByte, checkLbaRange, toBytes, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField, invalidParamField, ScsiError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { checkWritable } from './rw-decode';
import { BLOCK_LIMITS } from './vpd';

/**
 * SBC-4 §5.30: UNMAP. Every block descriptor is range checked, and the totals are held to the
 * Block Limits VPD maxima, before anything is deallocated. Whole chunks become deletions,
 * partial chunks are zeroed (LBPRZ=1: unmapped blocks read as zeros).
 */
export const UNMAP: Command<LogicalUnit> = defineCommand({
  name: 'UNMAP',
  opcode: 0x42,
  cdbLength: 10,
  usage: [0x42, 0x00, 0, 0, 0, 0, 0x00, 0xff, 0xff, 0x00],
  reservation: 'write',
  timeout: 60,
  decode(cdb, lu) {
    checkControlByte(cdb.subarray(0, 10));
    // ANCHOR needs ANC_SUP (VPD B2h), which we do not offer.
    if (cdb[1] & 0x01) throw invalidCdbField(1, 0);
    const len = be.u16(cdb, 7);
    // SBC-4 §5.30.1: a non-zero parameter list shorter than its 8-byte header is an error.
    if (len > 0 && len < 8) throw new ScsiError('ParameterListLengthError');
    if (len > 0) checkWritable(lu);
    return { dataOutLength: len, transferLength: len };
  },
  async execute({ lu, dataOut }, r) {
    if (r.dataOutLength === 0) return undefined;
    const p = dataOut.subarray(0, r.dataOutLength);
    const descLength = be.u16(p, 2);
    if (descLength % 16 !== 0 || 8 + descLength > p.length) throw invalidParamField(2);
    const count = descLength / 16;
    if (count > BLOCK_LIMITS.maxUnmapDescriptors) throw invalidParamField(2);
    const ranges: ByteRange[] = [];
    let total = 0n;
    for (let i = 0; i < count; i++) {
      const off = 8 + 16 * i;
      const lba = be.u64(p, off);
      const blocks = BigInt(be.u32(p, off + 8));
      checkLbaRange({ lba, blocks }, lu.capacityBlocks);
      total += blocks;
      if (blocks > 0n) ranges.push(toBytes({ lba, blocks }, lu.blockSize));
    }
    if (total * BigInt(lu.blockSize) > BigInt(BLOCK_LIMITS.maxUnmapBytes)) throw invalidParamField(8 + 8);
    if (ranges.length > 0) await lu.volume.discard(ranges);
    return undefined;
  },
});

/** Upper bound on the chunks one GET LBA STATUS looks at (1 TiB): the answer may be shorter. */
const MAX_SCAN_BYTES = 1024 ** 4;

/**
 * SBC-4 §5.8: GET LBA STATUS, from the allocation map at chunk granularity (a chunk is mapped
 * while its object exists). The first descriptor starts at the STARTING LBA, with one
 * deliberate exception: on a 512e LUN a starting LBA inside a physical block is moved to the
 * next physical block boundary (the skipped blocks share that status), which is what
 * libiscsi's conformance suite expects of devices with several logical blocks per physical
 * block.
 */
export const GET_LBA_STATUS: Command<LogicalUnit> = defineCommand({
  name: 'GET LBA STATUS',
  opcode: 0x9e,
  serviceAction: 0x12,
  cdbLength: 16,
  usage: [0x9e, 0x1f, ...Array<number>(8).fill(0xff), 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'read',
  decode(cdb, lu) {
    checkControlByte(cdb.subarray(0, 16));
    const lba = be.u64(cdb, 2);
    // §5.8.1: a starting LBA beyond the last one is LBA OUT OF RANGE.
    if (lba >= lu.capacityBlocks) throw new ScsiError('LbaOutOfRange');
    const allocationLength = be.u32(cdb, 10);
    return { lba, allocationLength, dataOutLength: 0, transferLength: allocationLength };
  },
  async execute({ lu }, r) {
    const perPhysical = 4096 / lu.blockSize;
    let start = r.lba;
    if (perPhysical > 1 && start % BigInt(perPhysical) !== 0n) {
      const next = start + BigInt(perPhysical) - (start % BigInt(perPhysical));
      if (next < lu.capacityBlocks) start = next;
    }
    const maxDescriptors = Math.max(1, Math.floor((r.allocationLength - 8) / 16));
    const bs = lu.blockSize;
    const offset = Number(start) * bs;
    const length = Math.min(lu.volume.info.sizeBytes - offset, MAX_SCAN_BYTES);
    const extents = (await lu.volume.allocation({ offset, length })).slice(0, maxDescriptors);
    const d = Buffer.alloc(8 + 16 * extents.length);
    d.writeUInt32BE(d.length - 4, 0);
    extents.forEach((e, i) => {
      const o = 8 + 16 * i;
      d.writeBigUInt64BE(BigInt(e.offset / bs), o);
      // NUMBER OF LOGICAL BLOCKS is 32 bits; a longer extent is reported in part.
      d.writeUInt32BE(Math.min(e.length / bs, 0xffffffff), o + 8);
      d[o + 12] = e.mapped ? 0x00 : 0x01; // mapped (or unknown) / deallocated
    });
    return truncate(d, r.allocationLength);
  },
});
