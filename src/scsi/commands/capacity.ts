import { be, checkControlByte, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { PROVISIONING } from './vpd';

/** SBC-4 §5.20: READ CAPACITY(10). */
export const READ_CAPACITY_10: Command<LogicalUnit> = defineCommand({
  name: 'READ CAPACITY(10)',
  inStandby: true,
  opcode: 0x25,
  cdbLength: 10,
  usage: [0x25, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00],
  reservation: 'allowed',
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 10));
    // PMI is obsolete in SBC-4; with PMI = 0 the LBA field must be zero.
    if (!(cdb[8] & 0x01) && be.u32(cdb, 2) !== 0) throw invalidCdbField(2);
    return { dataOutLength: 0, transferLength: 8 };
  },
  execute({ lu }) {
    const d = Buffer.alloc(8);
    const last = lu.capacityBlocks - 1n;
    // A capacity beyond 32 bits is reported as FFFFFFFFh: use READ CAPACITY(16).
    d.writeUInt32BE(last > 0xffffffffn ? 0xffffffff : Number(last), 0);
    d.writeUInt32BE(lu.blockSize, 4);
    return d;
  },
});

/** SBC-4 §5.21: READ CAPACITY(16) parameter data. */
export function readCapacity16Data(lu: LogicalUnit): Buffer {
  const d = Buffer.alloc(32);
  d.writeBigUInt64BE(lu.capacityBlocks - 1n, 0);
  d.writeUInt32BE(lu.blockSize, 8);
  // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT: 512e reports 8 blocks per 4096-byte block.
  d[13] = lu.blockSize === 512 ? 3 : 0;
  d[14] = (PROVISIONING.lbpme ? 0x80 : 0) | (PROVISIONING.lbprz ? 0x40 : 0);
  return d;
}

/** SERVICE ACTION IN(16) / READ CAPACITY(16), service action 10h. */
export const READ_CAPACITY_16: Command<LogicalUnit> = defineCommand({
  name: 'READ CAPACITY(16)',
  inStandby: true,
  opcode: 0x9e,
  serviceAction: 0x10,
  cdbLength: 16,
  usage: [0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'allowed',
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 16));
    const allocationLength = be.u32(cdb, 10);
    return { allocationLength, dataOutLength: 0, transferLength: allocationLength };
  },
  execute({ lu }, r) {
    return truncate(readCapacity16Data(lu), r.allocationLength);
  },
});
