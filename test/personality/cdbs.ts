/** CDBs the personality suite sends, as the initiators build them (SPC-5 r17, SBC-4 r22). */

/** INQUIRY (SPC-5 §6.7): standard data, or the VPD page `page` with EVPD=1. */
export function inquiry(alloc: number, page?: number): Buffer {
  const c = Buffer.alloc(6);
  c[0] = 0x12;
  if (page !== undefined) {
    c[1] = 1;
    c[2] = page;
  }
  c.writeUInt16BE(alloc, 3);
  return c;
}

/** READ CAPACITY(16) (SBC-4 §5.20): SERVICE ACTION IN(16) 10h. */
export function readCapacity16(alloc: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x9e;
  c[1] = 0x10;
  c.writeUInt32BE(alloc, 10);
  return c;
}

/** READ CAPACITY(10) (SBC-4 §5.19). */
export const READ_CAPACITY10 = Buffer.from([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** MODE SENSE(6) (SPC-5 §6.13): PC 0 current, 1 changeable, 2 default; DBD set by `dbd`. */
export function modeSense6(page: number, alloc: number, pc = 0, dbd = false): Buffer {
  return Buffer.from([0x1a, dbd ? 0x08 : 0, (pc << 6) | page, 0, alloc, 0]);
}

/** MODE SELECT(6) (SPC-5 §6.11) with PF=1, SP=0 and a parameter list of `length` bytes. */
export function modeSelect6(length: number): Buffer {
  return Buffer.from([0x15, 0x10, 0, 0, length, 0]);
}

/** VERIFY(10) (SBC-4 §5.34); BYTCHK 01b compares the Data-Out with the medium. */
export function verify10(lba: number, blocks: number, bytchk = 0): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x2f;
  c[1] = bytchk << 1;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

/** RESERVE(6) / RELEASE(6) (SPC-2 §7.21, §7.16) and their 10-byte forms (SPC-2 §7.22, §7.17). */
export const RESERVE6 = Buffer.from([0x16, 0, 0, 0, 0, 0]);
export const RELEASE6 = Buffer.from([0x17, 0, 0, 0, 0, 0]);
export const RESERVE10 = Buffer.from([0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
export const RELEASE10 = Buffer.from([0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** REPORT LUNS (SPC-5 §6.33) with SELECT REPORT `select`. */
export function reportLuns(select: number, alloc = 4096): Buffer {
  const c = Buffer.alloc(12);
  c[0] = 0xa0;
  c[2] = select;
  c.writeUInt32BE(alloc, 6);
  return c;
}

/**
 * REPORT SUPPORTED OPERATION CODES (SPC-5 §6.35), one command: option 001b (by opcode) or
 * 010b (by opcode and service action).
 */
export function reportOpcode(opcode: number, serviceAction?: number, alloc = 512): Buffer {
  const c = Buffer.alloc(12);
  c[0] = 0xa3;
  c[1] = 0x0c;
  c[2] = serviceAction === undefined ? 1 : 2;
  c[3] = opcode;
  c.writeUInt16BE(serviceAction ?? 0, 4);
  c.writeUInt32BE(alloc, 6);
  return c;
}

/** COMPARE AND WRITE (SBC-4 §5.3) of `blocks` blocks at `lba`; data is compare then write. */
export function compareAndWrite(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x89;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c[13] = blocks;
  return c;
}

/** UNMAP (SBC-4 §5.37) with several block descriptors. */
export function unmapMany(extents: ReadonlyArray<readonly [number, number]>): { cdb: Buffer; data: Buffer } {
  const data = Buffer.alloc(8 + 16 * extents.length);
  data.writeUInt16BE(data.length - 2, 0);
  data.writeUInt16BE(16 * extents.length, 2);
  extents.forEach(([lba, blocks], i) => {
    data.writeBigUInt64BE(BigInt(lba), 8 + 16 * i);
    data.writeUInt32BE(blocks, 16 + 16 * i);
  });
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x42;
  cdb.writeUInt16BE(data.length, 7);
  return { cdb, data };
}

/** The binary NAA designator with LU association in a VPD 83h page (what ESXi names an LU by in XCOPY). */
export function naaDesignator(vpd83: Buffer): Buffer {
  const end = 4 + vpd83.readUInt16BE(2);
  for (let at = 4; at + 4 <= end; at += 4 + vpd83[at + 3]) {
    const codeSet = vpd83[at] & 0x0f;
    const association = (vpd83[at + 1] >> 4) & 0x03;
    const type = vpd83[at + 1] & 0x0f;
    if (codeSet === 1 && association === 0 && type === 3) return vpd83.subarray(at, at + 4 + vpd83[at + 3]);
  }
  throw new Error('no NAA designator with LU association in VPD 83h');
}

/**
 * EXTENDED COPY(LID1) as ESXi's "full copy" sends it (spc4r37 §6.4.3): identification CSCD
 * descriptors (E4h) for the LUs named by their NAA designators, block to block segment
 * descriptors (02h), LIST ID USAGE 11b (no list identifier).
 */
export function extendedCopy(
  designators: readonly Buffer[],
  segments: ReadonlyArray<{ readonly src: number; readonly dst: number; readonly blocks: number; readonly srcLba: number; readonly dstLba: number }>,
  blockSize = 512,
): { cdb: Buffer; data: Buffer } {
  const cscds = designators.map((d) => {
    const c = Buffer.alloc(32);
    c[0] = 0xe4;
    d.copy(c, 4);
    c.writeUIntBE(blockSize, 29, 3); // DISK BLOCK LENGTH
    return c;
  });
  const segs = segments.map((s) => {
    const d = Buffer.alloc(28);
    d[0] = 0x02;
    d.writeUInt16BE(24, 2);
    d.writeUInt16BE(s.src, 4);
    d.writeUInt16BE(s.dst, 6);
    d.writeUInt16BE(s.blocks, 10);
    d.writeBigUInt64BE(BigInt(s.srcLba), 12);
    d.writeBigUInt64BE(BigInt(s.dstLba), 20);
    return d;
  });
  const h = Buffer.alloc(16);
  h[1] = 0x18; // LIST ID USAGE 11b
  const c = Buffer.concat(cscds);
  const s = Buffer.concat(segs);
  h.writeUInt16BE(c.length, 2);
  h.writeUInt32BE(s.length, 8);
  const data = Buffer.concat([h, c, s]);
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x83;
  cdb.writeUInt32BE(data.length, 10);
  return { cdb, data };
}
