import { be, checkControlByte, checkLbaRange, toBytes, truncate } from '../cdb';
import { type Command, defineCommand, NO_DATA } from '../command';
import { invalidCdbField } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { encodeLun } from '../lun-address';
import { buildSense } from '../sense';

/** SPC-5 §6.47: TEST UNIT READY. */
export const TEST_UNIT_READY: Command<LogicalUnit> = defineCommand({
  name: 'TEST UNIT READY',
  inStandby: true,
  opcode: 0x00,
  cdbLength: 6,
  usage: [0x00, 0, 0, 0, 0, 0x00],
  reservation: 'allowed',
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 6));
    return NO_DATA;
  },
  execute: () => undefined,
});

/** SPC-5 §6.33: REPORT LUNS parameter data for the LUN numbers given. */
export function reportLunsData(luns: readonly number[]): Buffer {
  const d = Buffer.alloc(8 + 8 * luns.length);
  d.writeUInt32BE(8 * luns.length, 0);
  for (const [i, l] of luns.entries()) d.writeBigUInt64BE(encodeLun(l), 8 + 8 * i);
  return d;
}

/** Decodes REPORT LUNS; shared with the absent-LUN path, which must answer it too. */
export function decodeReportLuns(cdb: Buffer): { select: number; allocationLength: number; dataOutLength: 0; transferLength: number } {
  checkControlByte(cdb.subarray(0, 12));
  const select = cdb[2];
  // SELECT REPORT 00h/01h/02h; well-known LUN reports (10h-12h) list nothing here.
  if (select > 0x02 && (select < 0x10 || select > 0x12)) throw invalidCdbField(2);
  const allocationLength = be.u32(cdb, 6);
  // SPC-5 §6.33: an allocation length below 16 is an error.
  if (allocationLength < 16) throw invalidCdbField(6);
  return { select, allocationLength, dataOutLength: 0, transferLength: allocationLength };
}

export function reportLuns(luns: readonly number[], select: number, allocationLength: number): Buffer {
  return truncate(reportLunsData(select === 0x01 || select === 0x10 || select === 0x12 ? [] : luns), allocationLength);
}

export const REPORT_LUNS: Command<LogicalUnit> = defineCommand({
  name: 'REPORT LUNS',
  inStandby: true,
  opcode: 0xa0,
  cdbLength: 12,
  usage: [0xa0, 0x00, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'allowed',
  skipsUnitAttention: true,
  spc2Allowed: true,
  anyLun: true,
  decode: (cdb) => decodeReportLuns(cdb),
  execute: ({ lu }, r) => reportLuns(lu.target.lunNumbers(), r.select, r.allocationLength),
});

/** SPC-5 §6.39: REQUEST SENSE. Reports (and clears) a pending unit attention, else NO SENSE. */
export const REQUEST_SENSE: Command<LogicalUnit> = defineCommand({
  name: 'REQUEST SENSE',
  inStandby: true,
  opcode: 0x03,
  cdbLength: 6,
  usage: [0x03, 0x01, 0, 0, 0xff, 0x00],
  reservation: 'allowed',
  skipsUnitAttention: true,
  spc2Allowed: true,
  anyLun: true,
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 6));
    if (cdb[1] & 0xfe) throw invalidCdbField(1);
    return { desc: (cdb[1] & 1) !== 0, allocationLength: cdb[4], dataOutLength: 0, transferLength: cdb[4] };
  },
  execute({ lu, nexus }, r) {
    const ua = lu.ua.take(nexus.id);
    return truncate(ua ? buildSense(ua, r.desc) : noSense(r.desc), r.allocationLength);
  },
});

/** Sense data with NO SENSE and no additional sense code. */
export function noSense(descriptor: boolean): Buffer {
  const s = Buffer.alloc(descriptor ? 8 : 18);
  s[0] = descriptor ? 0x72 : 0x70;
  if (!descriptor) s[7] = 10;
  return s;
}

/** SBC-4 §5.26/§5.27: SYNCHRONIZE CACHE(10/16); IMMED returns before the flush completes. */
function synchronizeCache(name: string, opcode: number, size: 10 | 16): Command<LogicalUnit> {
  return defineCommand({
    name,
    opcode,
    cdbLength: size,
    usage:
      size === 10
        ? [opcode, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00]
        : [opcode, 0x02, ...Array<number>(8).fill(0xff), 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
    reservation: 'write',
    timeout: 60,
    decode(cdb, lu) {
      checkControlByte(cdb.subarray(0, size));
      const lba = size === 10 ? BigInt(be.u32(cdb, 2)) : be.u64(cdb, 2);
      let blocks = BigInt(size === 10 ? be.u16(cdb, 7) : be.u32(cdb, 10));
      checkLbaRange({ lba, blocks }, lu.capacityBlocks);
      // NUMBER OF LOGICAL BLOCKS 0: through the last LBA.
      if (blocks === 0n) blocks = lu.capacityBlocks - lba;
      return { immed: (cdb[1] & 0x02) !== 0, range: toBytes({ lba, blocks }, lu.blockSize), dataOutLength: 0, transferLength: 0 };
    },
    async execute({ lu }, r) {
      const flushed = lu.volume.flush(r.range);
      if (r.immed) {
        flushed.catch(() => undefined);
        return undefined;
      }
      await flushed;
      return undefined;
    },
  });
}

export const SYNCHRONIZE_CACHE_10 = synchronizeCache('SYNCHRONIZE CACHE(10)', 0x35, 10);
export const SYNCHRONIZE_CACHE_16 = synchronizeCache('SYNCHRONIZE CACHE(16)', 0x91, 16);
