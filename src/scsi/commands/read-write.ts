import { takeParts } from '../../util/parts';
import { unreachable } from '../../util/unreachable';
import { type Command, defineCommand } from '../command';
import type { LogicalUnit } from '../logical-unit';
import { ScsiStatus } from '../status';
import { type CdbSize, decodeRw, shrinkWrite } from './rw-decode';

/**
 * CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES (SPC-5 §6.35.3): the bits we look at.
 * Byte 1 holds DPO and FUA (the PROTECT bits must be zero); the CONTROL byte is not used.
 */
export function rwUsage(op: number, size: CdbSize): number[] {
  switch (size) {
    case 6:
      return [op, 0x1f, 0xff, 0xff, 0xff, 0x00];
    case 10:
      return [op, 0x18, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00];
    case 12:
      return [op, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00];
    case 16:
      return [op, 0x18, ...Array<number>(12).fill(0xff), 0x00, 0x00];
    default:
      return unreachable(size);
  }
}

/** SBC-4 §5.15-§5.19: READ (6/10/12/16). */
function read(name: string, opcode: number, size: CdbSize): Command<LogicalUnit> {
  return defineCommand({
    name,
    opcode,
    cdbLength: size,
    usage: rwUsage(opcode, size),
    reservation: 'read',
    decode: (cdb, lu) => decodeRw(cdb, size, lu, 'in'),
    async execute({ lu }, r) {
      if (r.length === 0) return Buffer.alloc(0);
      const view = await lu.volume.readView(r.offset, r.length);
      return { status: ScsiStatus.Good, data: view.data, release: view.release };
    },
  });
}

/** SBC-4 §5.40-§5.44: WRITE (6/10/12/16); FUA makes it durable before status. */
function write(name: string, opcode: number, size: CdbSize): Command<LogicalUnit> {
  return defineCommand({
    name,
    opcode,
    cdbLength: size,
    usage: rwUsage(opcode, size),
    reservation: 'write',
    decode: (cdb, lu) => decodeRw(cdb, size, lu, 'out'),
    // Write only the whole blocks the initiator offered; the residual reports the rest.
    shrink: (r, bytes, lu) => shrinkWrite(r, bytes, lu.blockSize),
    async execute({ lu, dataParts }, r) {
      if (r.length === 0) return undefined;
      await lu.volume.write(r.offset, takeParts(dataParts, r.length), { fua: r.fua });
      return undefined;
    },
  });
}

export const READ_WRITE_COMMANDS: readonly Command<LogicalUnit>[] = [
  read('READ(6)', 0x08, 6),
  read('READ(10)', 0x28, 10),
  read('READ(12)', 0xa8, 12),
  read('READ(16)', 0x88, 16),
  write('WRITE(6)', 0x0a, 6),
  write('WRITE(10)', 0x2a, 10),
  write('WRITE(12)', 0xaa, 12),
  write('WRITE(16)', 0x8a, 16),
];
