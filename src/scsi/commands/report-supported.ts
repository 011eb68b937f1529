import { be, checkControlByte, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField } from '../errors';
import type { LogicalUnit } from '../logical-unit';

/** SPC-5 §6.35.4: a command timeouts descriptor (nominal and recommended, in seconds). */
function timeoutsDescriptor(seconds: number): Buffer {
  const d = Buffer.alloc(12);
  d.writeUInt16BE(0x0a, 0);
  d.writeUInt32BE(seconds, 4);
  d.writeUInt32BE(seconds * 2, 8);
  return d;
}

const DEFAULT_TIMEOUT_S = 30;

/**
 * SPC-5 §6.35: REPORT SUPPORTED OPERATION CODES, built from the opcode table itself so it can
 * never disagree with what the device server accepts.
 */
export function reportSupportedOpcodes(all: () => readonly Command<LogicalUnit>[]): Command<LogicalUnit> {
  return defineCommand({
    name: 'REPORT SUPPORTED OPERATION CODES',
    inStandby: true,
    opcode: 0xa3,
    serviceAction: 0x0c,
    cdbLength: 12,
    usage: [0xa3, 0x1f, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x00],
    reservation: 'allowed',
    decode(cdb) {
      checkControlByte(cdb.subarray(0, 12));
      const options = cdb[2] & 0x07;
      if (options > 3) throw invalidCdbField(2, 2);
      const allocationLength = be.u32(cdb, 6);
      return {
        rctd: (cdb[2] & 0x80) !== 0,
        options,
        opcode: cdb[3],
        sa: be.u16(cdb, 4),
        allocationLength,
        dataOutLength: 0,
        transferLength: allocationLength,
      };
    },
    execute(_ctx, r) {
      const commands = all();
      const hasSa = (op: number): boolean => commands.some((c) => c.def.opcode === op && c.def.serviceAction !== undefined);
      if (r.options === 0) {
        const descs = commands.map((c) => {
          const d = Buffer.alloc(8);
          d[0] = c.def.opcode;
          if (c.def.serviceAction !== undefined) {
            d.writeUInt16BE(c.def.serviceAction, 2);
            d[5] |= 0x01; // SERVACTV
          }
          if (r.rctd) d[5] |= 0x02; // CTDP
          d.writeUInt16BE(c.def.cdbLength, 6);
          return r.rctd ? Buffer.concat([d, timeoutsDescriptor(c.def.timeout ?? DEFAULT_TIMEOUT_S)]) : d;
        });
        const body = Buffer.concat(descs);
        const h = Buffer.alloc(4);
        h.writeUInt32BE(body.length, 0);
        return truncate(Buffer.concat([h, body]), r.allocationLength);
      }
      // One command: 01b by opcode (no service actions), 10b by opcode and service action,
      // 11b either (SPC-5 Table 311).
      if (r.options === 1 && hasSa(r.opcode)) throw invalidCdbField(3);
      if (r.options === 2 && !hasSa(r.opcode)) throw invalidCdbField(3);
      const found = commands.find(
        (c) => c.def.opcode === r.opcode && (hasSa(r.opcode) && r.options !== 1 ? c.def.serviceAction === r.sa : c.def.serviceAction === undefined),
      );
      const h = Buffer.alloc(4);
      if (!found) {
        h[1] = 0x01; // SUPPORT: not supported
        return truncate(h, r.allocationLength);
      }
      h[1] = (r.rctd ? 0x80 : 0) | 0x03; // CTDP, SUPPORT: supported as the standard says
      h.writeUInt16BE(found.def.cdbLength, 2);
      const parts: Buffer[] = [h, Buffer.from(found.def.usage)];
      if (r.rctd) parts.push(timeoutsDescriptor(found.def.timeout ?? DEFAULT_TIMEOUT_S));
      return truncate(Buffer.concat(parts), r.allocationLength);
    },
  });
}

/** SPC-5 §6.36: REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (what src/scsi/target.ts implements). */
export const REPORT_SUPPORTED_TMF: Command<LogicalUnit> = defineCommand({
  name: 'REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS',
  inStandby: true,
  opcode: 0xa3,
  serviceAction: 0x0d,
  cdbLength: 12,
  usage: [0xa3, 0x1f, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x00],
  reservation: 'allowed',
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 12));
    const allocationLength = be.u32(cdb, 6);
    if (allocationLength < 4) throw invalidCdbField(6);
    return { repd: (cdb[2] & 0x80) !== 0, allocationLength, dataOutLength: 0, transferLength: allocationLength };
  },
  execute(_ctx, r) {
    const d = Buffer.alloc(r.repd ? 16 : 4);
    d[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x04 | 0x02; // ATS, ATSS, CTSS, LURS, QTS, TRS
    d[1] = 0x02 | 0x01; // QTSS, ITNRS
    if (r.repd) d[3] = 0x0c; // ADDITIONAL DATA LENGTH
    return truncate(d, r.allocationLength);
  },
});
