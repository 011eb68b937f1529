import { be, checkControlByte, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField, invalidParamField, ScsiError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { findPage, PAGES, type PageControl } from '../mode/mode-pages';

const PC: readonly PageControl[] = ['current', 'changeable', 'default', 'saved'];
const ALL_PAGES = 0x3f;

interface ModeSenseRequest {
  readonly ten: boolean;
  readonly dbd: boolean;
  readonly llbaa: boolean;
  readonly pc: PageControl;
  readonly page: number;
  readonly subpage: number;
  readonly allocationLength: number;
  readonly dataOutLength: 0;
  readonly transferLength: number;
}

function decodeModeSense(cdb: Buffer, ten: boolean): ModeSenseRequest {
  checkControlByte(cdb.subarray(0, ten ? 10 : 6));
  const page = cdb[2] & 0x3f;
  const subpage = cdb[3];
  // SPC-5 §6.14: we have no subpages; 00h, and FFh with "all pages", are the only ones.
  if (subpage !== 0 && !(subpage === 0xff && page === ALL_PAGES)) throw invalidCdbField(3);
  if (page !== ALL_PAGES && !findPage(page)) throw invalidCdbField(2, 5);
  const allocationLength = ten ? be.u16(cdb, 7) : cdb[4];
  return {
    ten,
    dbd: (cdb[1] & 0x08) !== 0,
    llbaa: ten && (cdb[1] & 0x10) !== 0,
    pc: PC[cdb[2] >> 6],
    page,
    subpage,
    allocationLength,
    dataOutLength: 0,
    transferLength: allocationLength,
  };
}

/** SBC-4 §6.3.2: the block descriptor, short (8 bytes) or long (16, LONGLBA). */
function blockDescriptor(lu: LogicalUnit, long: boolean): Buffer {
  const blocks = lu.capacityBlocks;
  if (long) {
    const d = Buffer.alloc(16);
    d.writeBigUInt64BE(blocks, 0);
    d.writeUInt32BE(lu.blockSize, 12);
    return d;
  }
  const d = Buffer.alloc(8);
  d.writeUInt32BE(blocks > 0xffffffffn ? 0xffffffff : Number(blocks), 0);
  d.writeUIntBE(lu.blockSize, 5, 3);
  return d;
}

/**
 * SPC-5 §6.14/§6.15: MODE SENSE(6/10). The device-specific parameter has WP (write
 * protected) and DPOFUA (we honour DPO and FUA, SBC-4 §6.3.1).
 */
function modeSenseData(lu: LogicalUnit, r: ModeSenseRequest): Buffer {
  const pages = (r.page === ALL_PAGES ? PAGES : PAGES.filter((p) => p.code === r.page)).map((p) => lu.mode.get(p, r.pc));
  const bd = r.dbd ? Buffer.alloc(0) : blockDescriptor(lu, r.llbaa);
  const wp = lu.volume.readOnly || lu.mode.softwareWriteProtect ? 0x80 : 0;
  const deviceSpecific = wp | 0x10;
  const body = Buffer.concat([bd, ...pages]);
  if (r.ten) {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(6 + body.length, 0);
    h[3] = deviceSpecific;
    h[4] = r.llbaa && !r.dbd ? 0x01 : 0;
    h.writeUInt16BE(bd.length, 6);
    return Buffer.concat([h, body]);
  }
  const h = Buffer.alloc(4);
  h[0] = Math.min(255, 3 + body.length);
  h[2] = deviceSpecific;
  h[3] = bd.length;
  return Buffer.concat([h, body]);
}

function modeSense(name: string, opcode: number, ten: boolean): Command<LogicalUnit> {
  return defineCommand({
    name,
    opcode,
    cdbLength: ten ? 10 : 6,
    usage: ten ? [opcode, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0x00] : [opcode, 0x08, 0xff, 0xff, 0xff, 0x00],
    reservation: 'allowed',
    inStandby: true,
    decode: (cdb) => decodeModeSense(cdb, ten),
    execute: ({ lu }, r) => truncate(modeSenseData(lu, r), r.allocationLength),
  });
}

interface ModeSelectRequest {
  readonly ten: boolean;
  readonly save: boolean;
  readonly dataOutLength: number;
  readonly transferLength: number;
}

/**
 * SPC-5 §6.12/§6.13: MODE SELECT(6/10). Every page must be one we have, of the right length,
 * and change only changeable bits; then all of them apply, other nexuses get a MODE
 * PARAMETERS CHANGED unit attention, and with SP=1 the values are saved in the store.
 */
function modeSelect(name: string, opcode: number, ten: boolean): Command<LogicalUnit> {
  return defineCommand({
    name,
    opcode,
    cdbLength: ten ? 10 : 6,
    usage: ten ? [opcode, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0x00] : [opcode, 0x11, 0, 0, 0xff, 0x00],
    reservation: 'write',
    decode(cdb): ModeSelectRequest {
      checkControlByte(cdb.subarray(0, ten ? 10 : 6));
      // PF=0 would mean vendor-specific pages: we only take the standard format.
      if (!(cdb[1] & 0x10) && (ten ? be.u16(cdb, 7) : cdb[4]) > 0) throw invalidCdbField(1, 4);
      const len = ten ? be.u16(cdb, 7) : cdb[4];
      return { ten, save: (cdb[1] & 0x01) !== 0, dataOutLength: len, transferLength: len };
    },
    async execute({ lu, nexus, dataOut }, r) {
      const data = dataOut.subarray(0, r.dataOutLength);
      if (data.length === 0) return undefined;
      const headerLength = r.ten ? 8 : 4;
      if (data.length < headerLength) throw new ScsiError('ParameterListLengthError');
      const bdLength = r.ten ? data.readUInt16BE(6) : data[3];
      let off = headerLength;
      if (off + bdLength > data.length) throw new ScsiError('ParameterListLengthError');
      if (bdLength > 0) {
        if (bdLength !== 8 && bdLength !== 16) throw invalidParamField(r.ten ? 6 : 3);
        const blockLength = bdLength === 8 ? data.readUIntBE(off + 5, 3) : data.readUInt32BE(off + 12);
        if (blockLength !== lu.blockSize) throw invalidParamField(off + (bdLength === 8 ? 5 : 12));
      }
      off += bdLength;
      const updates: Array<[NonNullable<ReturnType<typeof findPage>>, Buffer]> = [];
      while (off < data.length) {
        if (off + 2 > data.length) throw new ScsiError('ParameterListLengthError');
        if (data[off] & 0x40) throw invalidParamField(off, 6); // SPF: we have no subpages
        const def = findPage(data[off] & 0x3f);
        if (!def) throw invalidParamField(off);
        const bytes = data.subarray(off, off + 2 + data[off + 1]);
        if (bytes.length !== def.changeable.length || data[off + 1] !== def.changeable[1]) throw invalidParamField(off + 1);
        const current = lu.mode.get(def, 'current');
        for (let i = 2; i < bytes.length; i++) {
          if ((bytes[i] ^ current[i]) & ~def.changeable[i]) throw invalidParamField(off + i);
        }
        updates.push([def, bytes]);
        off += bytes.length;
      }
      let changed = false;
      for (const [def, bytes] of updates) changed = (await lu.mode.set(def, bytes, r.save)) || changed;
      if (changed) lu.ua.establish('ModeParametersChanged', nexus.id);
      return undefined;
    },
  });
}

export const MODE_COMMANDS: readonly Command<LogicalUnit>[] = [
  modeSense('MODE SENSE(6)', 0x1a, false),
  modeSense('MODE SENSE(10)', 0x5a, true),
  modeSelect('MODE SELECT(6)', 0x15, false),
  modeSelect('MODE SELECT(10)', 0x55, true),
];
