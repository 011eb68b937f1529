import { be, checkControlByte, checkLbaRange, toBytes } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField, ScsiError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { checkWritable } from './rw-decode';
import { BLOCK_LIMITS } from './vpd';

/**
 * SBC-4 §5.3: COMPARE AND WRITE, the VMware ATS primitive. The Data-Out holds N blocks to
 * compare and N blocks to write; the volume compares and writes under one exclusive byte-range
 * lock, so no other write to the range can land between the two. On a miscompare nothing is
 * written and INFORMATION holds the offset of the first differing byte.
 */
export const COMPARE_AND_WRITE: Command<LogicalUnit> = defineCommand({
  name: 'COMPARE AND WRITE',
  opcode: 0x89,
  cdbLength: 16,
  usage: [0x89, 0x18, ...Array<number>(8).fill(0xff), 0, 0, 0, 0xff, 0x00, 0x00],
  reservation: 'write',
  exactDataOut: { byte: 13 },
  decode(cdb, lu) {
    checkControlByte(cdb.subarray(0, 16));
    if (cdb[1] & 0xe0) throw invalidCdbField(1, 7);
    const lba = be.u64(cdb, 2);
    const blocks = cdb[13];
    if (blocks > BLOCK_LIMITS.maxCompareAndWriteBlocks) throw invalidCdbField(13);
    checkLbaRange({ lba, blocks: BigInt(blocks) }, lu.capacityBlocks);
    checkWritable(lu);
    const range = toBytes({ lba, blocks: BigInt(blocks) }, lu.blockSize);
    return { range, fua: (cdb[1] & 0x08) !== 0, dataOutLength: 2 * range.length, transferLength: 2 * range.length };
  },
  async execute({ lu, dataOut, aborted }, r) {
    const n = r.range.length;
    if (n === 0) return undefined;
    const expected = dataOut.subarray(0, n);
    let at = -1;
    await lu.volume.update(
      r.range.offset,
      n,
      (current) => {
        // The commit point: an ABORT TASK answered while the read waited on S3 wins (VMFS
        // retries an aborted ATS heartbeat with the same compare data; applying the first one
        // late would fail the retry with a false miscompare, VMware KB 2113956).
        if (aborted()) return null;
        if (current.equals(expected)) return dataOut.subarray(n, 2 * n);
        at = firstDifference(current, expected);
        return null;
      },
      { fua: r.fua },
    );
    if (at >= 0) throw new ScsiError('MiscompareDuringVerify', { information: BigInt(at) });
    return undefined;
  },
});

export function firstDifference(a: Buffer, b: Buffer): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
