import { type Command, defineCommand } from '../command';
import { invalidCdbField } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { rwUsage } from './read-write';
import { decodeRw } from './rw-decode';
import { ATOMIC_LIMITS } from './vpd';

/**
 * SBC-4 §5.9: ORWRITE(16): the stored blocks become (stored OR Data-Out), in one atomic
 * read-modify-write against every other write to the range.
 */
export const ORWRITE: Command<LogicalUnit> = defineCommand({
  name: 'ORWRITE(16)',
  opcode: 0x8b,
  cdbLength: 16,
  usage: rwUsage(0x8b, 16),
  reservation: 'write',
  decode: (cdb, lu) => decodeRw(cdb, 16, lu, 'out'),
  async execute({ lu, dataOut }, r) {
    if (r.length === 0) return undefined;
    await lu.volume.update(
      r.offset,
      r.length,
      (current) => {
        const next = Buffer.allocUnsafe(current.length);
        for (let i = 0; i < current.length; i++) next[i] = current[i] | dataOut[i];
        return next;
      },
      { fua: r.fua },
    );
    return undefined;
  },
});

/**
 * SBC-4 §5.48: WRITE ATOMIC(16). The alignment and maximum we report in Block Limits keep an
 * atomic write inside one chunk, and a chunk is updated in the cache under one range lock and
 * stored with one PUT: readers and a crash see all of the write or none of it.
 */
export const WRITE_ATOMIC_16: Command<LogicalUnit> = defineCommand({
  name: 'WRITE ATOMIC(16)',
  opcode: 0x9c,
  cdbLength: 16,
  usage: [0x9c, 0x18, ...Array<number>(10).fill(0xff), 0xff, 0xff, 0x00, 0x00],
  reservation: 'write',
  decode(cdb, lu) {
    // The TRANSFER LENGTH of WRITE ATOMIC(16) is 16 bits at byte 12 (bytes 10-11 are reserved).
    if (cdb.readUInt16BE(10) !== 0) throw invalidCdbField(10);
    const shaped = Buffer.from(cdb.subarray(0, 16));
    shaped.writeUInt32BE(cdb.readUInt16BE(12), 10);
    const r = decodeRw(shaped, 16, lu, 'out');
    const limits = ATOMIC_LIMITS(lu.blockSize);
    if (r.blocks > BigInt(limits.maxBlocks) || r.blocks % BigInt(limits.granularity) !== 0n) throw invalidCdbField(12);
    if (r.lba % BigInt(limits.alignment) !== 0n) throw invalidCdbField(2);
    return r;
  },
  async execute({ lu, dataOut }, r) {
    if (r.length > 0) await lu.volume.write(r.offset, dataOut.subarray(0, r.length), { fua: r.fua });
    return undefined;
  },
});
