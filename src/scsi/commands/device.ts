import { be, checkControlByte, truncate } from '../cdb';
import { type Command, defineCommand, NO_DATA } from '../command';
import { invalidCdbField } from '../errors';
import type { LogicalUnit } from '../logical-unit';

/**
 * SBC-4 §5.25: START STOP UNIT. A virtual disk cannot be ejected (LOEJ is refused); a stop
 * flushes the write cache unless NO_FLUSH is set, and the unit stays ready, as LIO does.
 * Power condition changes are accepted and ignored.
 */
export const START_STOP_UNIT: Command<LogicalUnit> = defineCommand({
  name: 'START STOP UNIT',
  opcode: 0x1b,
  cdbLength: 6,
  usage: [0x1b, 0x01, 0x00, 0x0f, 0xf7, 0x00],
  reservation: 'write',
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 6));
    if (cdb[4] & 0x02) throw invalidCdbField(4, 1); // LOEJ: not removable
    return { immed: (cdb[1] & 0x01) !== 0, start: (cdb[4] & 0x01) !== 0, noFlush: (cdb[4] & 0x04) !== 0, power: cdb[4] >> 4, ...NO_DATA };
  },
  async execute({ lu }, r) {
    if (!r.start && !r.noFlush && r.power === 0) {
      const flushed = lu.volume.flush();
      if (r.immed) flushed.catch(() => undefined);
      else await flushed;
    }
    return undefined;
  },
});

/** SPC-5 §6.16 / SBC-4 §5.10: PREVENT ALLOW MEDIUM REMOVAL; nothing to prevent on a fixed disk. */
export const PREVENT_ALLOW_MEDIUM_REMOVAL: Command<LogicalUnit> = defineCommand({
  name: 'PREVENT ALLOW MEDIUM REMOVAL',
  opcode: 0x1e,
  cdbLength: 6,
  usage: [0x1e, 0, 0, 0, 0x03, 0x00],
  reservation: 'allowed',
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 6));
    return NO_DATA;
  },
  execute: () => undefined,
});

/** SBC-4 §5.16/§5.17: READ DEFECT DATA (10/12): a virtual disk has an empty defect list. */
function readDefectData(size: 10 | 12): Command<LogicalUnit> {
  const opcode = size === 10 ? 0x37 : 0xb7;
  return defineCommand({
    name: `READ DEFECT DATA(${size})`,
    opcode,
    cdbLength: size,
    usage: size === 10 ? [opcode, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0x00] : [opcode, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x00],
    reservation: 'read',
    decode(cdb) {
      checkControlByte(cdb.subarray(0, size));
      const flags = size === 10 ? cdb[2] : cdb[1];
      const allocationLength = size === 10 ? be.u16(cdb, 7) : be.u32(cdb, 6);
      return { flags, allocationLength, dataOutLength: 0, transferLength: allocationLength };
    },
    execute(_ctx, r) {
      const h = Buffer.alloc(size === 10 ? 4 : 8);
      // Echo PLIST/GLIST requests as valid (empty) lists in the requested format.
      h[1] = r.flags & 0x1f;
      return truncate(h, r.allocationLength);
    },
  });
}

export const DEVICE_COMMANDS: readonly Command<LogicalUnit>[] = [
  START_STOP_UNIT,
  PREVENT_ALLOW_MEDIUM_REMOVAL,
  readDefectData(10),
  readDefectData(12),
];
