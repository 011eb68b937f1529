/** CDBs the end-to-end tests send through the raw initiator. */

/** TEST UNIT READY (SPC-5 §6.47). */
export const TUR = Buffer.from([0x00, 0, 0, 0, 0, 0]);

function rw10(op: 0x28 | 0x2a, lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = op;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

/** READ(10) (SBC-4 §5.16). */
export const read10 = (lba: number, blocks: number): Buffer => rw10(0x28, lba, blocks);

/** WRITE(10) (SBC-4 §5.41). */
export const write10 = (lba: number, blocks: number): Buffer => rw10(0x2a, lba, blocks);

function rw16(op: 0x88 | 0x8a, lba: bigint, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op;
  c.writeBigUInt64BE(lba, 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

/** READ(16) (SBC-4 §5.18). */
export const read16 = (lba: bigint, blocks: number): Buffer => rw16(0x88, lba, blocks);

/** WRITE(16) (SBC-4 §5.43). */
export const write16 = (lba: bigint, blocks: number): Buffer => rw16(0x8a, lba, blocks);

/** WRITE(10) with FUA (SBC-4 §5.41: byte 1 bit 3). */
export const write10Fua = (lba: number, blocks: number): Buffer => {
  const c = rw10(0x2a, lba, blocks);
  c[1] |= 0x08;
  return c;
};

/** SYNCHRONIZE CACHE(10) of the whole LUN (SBC-4 §5.24). */
export const SYNC_CACHE = Buffer.from([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** PRE-FETCH(10) (SBC-4 §5.11). */
export const prefetch10 = (lba: number, blocks: number): Buffer => {
  const c = Buffer.alloc(10);
  c[0] = 0x34;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
};

/** UNMAP (SBC-4 §5.37) of one extent: the CDB and its parameter list. */
export function unmap(lba: number, blocks: number): { cdb: Buffer; data: Buffer } {
  const data = Buffer.alloc(24);
  data.writeUInt16BE(22, 0); // UNMAP DATA LENGTH
  data.writeUInt16BE(16, 2); // UNMAP BLOCK DESCRIPTOR DATA LENGTH
  data.writeBigUInt64BE(BigInt(lba), 8);
  data.writeUInt32BE(blocks, 16);
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x42;
  cdb.writeUInt16BE(data.length, 7);
  return { cdb, data };
}
