import { checkControlByte } from '../cdb';
import { type Command, defineCommand, NO_DATA } from '../command';
import { invalidCdbField, ScsiStatusError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { ScsiStatus } from '../status';

/**
 * SPC-2 §7.21-§7.24: RESERVE and RELEASE (6/10). Only whole-LU reservations; third-party and
 * extent reservations are not offered. A persistent reservation or registration in place
 * makes RESERVE a conflict (SPC-5 §5.13.3).
 */
function reserve(name: string, opcode: number, size: 6 | 10): Command<LogicalUnit> {
  return defineCommand({
    name,
    opcode,
    cdbLength: size,
    usage: size === 6 ? [opcode, 0, 0, 0, 0, 0x00] : [opcode, 0, 0, 0, 0, 0, 0, 0, 0, 0x00],
    reservation: 'write',
    decode(cdb) {
      checkControlByte(cdb.subarray(0, size));
      if (cdb[1] & 0x13) throw invalidCdbField(1); // 3RDPTY, LONGID, extents
      return NO_DATA;
    },
    execute({ lu, nexus }) {
      const pr = lu.reservations;
      if (pr.registrations.size > 0 || pr.reservation) throw new ScsiStatusError(ScsiStatus.ReservationConflict);
      if (pr.spc2Holder !== undefined && pr.spc2Holder !== nexus.id) throw new ScsiStatusError(ScsiStatus.ReservationConflict);
      pr.spc2Holder = nexus.id;
      return undefined;
    },
  });
}

function release(name: string, opcode: number, size: 6 | 10): Command<LogicalUnit> {
  return defineCommand({
    name,
    opcode,
    cdbLength: size,
    usage: size === 6 ? [opcode, 0, 0, 0, 0, 0x00] : [opcode, 0, 0, 0, 0, 0, 0, 0, 0, 0x00],
    reservation: 'allowed',
    spc2Allowed: true,
    decode(cdb) {
      checkControlByte(cdb.subarray(0, size));
      if (cdb[1] & 0x13) throw invalidCdbField(1);
      return NO_DATA;
    },
    execute({ lu, nexus }) {
      // Releasing someone else's reservation (or none) is a no-op, not an error.
      if (lu.reservations.spc2Holder === nexus.id) lu.reservations.spc2Holder = undefined;
      return undefined;
    },
  });
}

export const RESERVE_RELEASE_COMMANDS: readonly Command<LogicalUnit>[] = [
  reserve('RESERVE(6)', 0x16, 6),
  release('RELEASE(6)', 0x17, 6),
  reserve('RESERVE(10)', 0x56, 10),
  release('RELEASE(10)', 0x57, 10),
];
