import { be, checkControlByte, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField } from '../errors';
import { asciiField, type LuIdentity } from '../identity';
import type { LogicalUnit } from '../logical-unit';
import { VPD_PAGES } from './vpd';

/** SPC-5 §6.7.2 Table 148: version descriptors we claim. */
const VERSION_DESCRIPTORS = [
  0x00a0, // SAM-5 (no version claimed)
  0x0960, // iSCSI (no version claimed)
  0x0460, // SPC-4 (no version claimed)
  0x04c0, // SBC-3 (no version claimed)
];

/**
 * SPC-5 §6.7.2: standard INQUIRY data. `present` false gives peripheral qualifier 011b;
 * `alua` reports implicit asymmetric access (TPGS 01b, SPC-5 r20 §5.16.2.1) in a cluster.
 */
export function standardInquiry(identity: Pick<LuIdentity, 'vendor' | 'product' | 'revision'>, present: boolean, alua = false): Buffer {
  const d = Buffer.alloc(96);
  d[0] = present ? 0x00 : 0x7f; // PERIPHERAL QUALIFIER | DEVICE TYPE (00h direct access block)
  d[1] = 0x00; // RMB = 0: not removable
  d[2] = 0x06; // VERSION: SPC-4
  d[3] = 0x12; // HISUP = 1, RESPONSE DATA FORMAT = 2
  d[4] = d.length - 5; // ADDITIONAL LENGTH
  d[5] = 0x08 | (alua ? 0x10 : 0); // 3PC: EXTENDED COPY is supported; SCCS, ACC zero; TPGS 01b (implicit) or 00b; PROTECT zero
  d[6] = 0x00;
  d[7] = 0x02; // CMDQUE: full task management model
  asciiField(identity.vendor, 8).copy(d, 8);
  asciiField(identity.product, 16).copy(d, 16);
  asciiField(identity.revision, 4).copy(d, 32);
  for (const [i, v] of VERSION_DESCRIPTORS.entries()) d.writeUInt16BE(v, 58 + i * 2);
  return d;
}

interface InquiryRequest {
  readonly evpd: boolean;
  readonly page: number;
  readonly allocationLength: number;
  readonly dataOutLength: 0;
  readonly transferLength: number;
}

export function decodeInquiry(cdb: Buffer): InquiryRequest {
  checkControlByte(cdb.subarray(0, 6));
  // SPC-5 §6.7.1: CMDDT is obsolete and must be zero; a page code without EVPD is invalid.
  if (cdb[1] & 0xfe) throw invalidCdbField(1, cdb[1] & 0x02 ? 1 : 0);
  const evpd = (cdb[1] & 0x01) !== 0;
  if (!evpd && cdb[2] !== 0) throw invalidCdbField(2);
  const allocationLength = be.u16(cdb, 3);
  return { evpd, page: cdb[2], allocationLength, dataOutLength: 0, transferLength: allocationLength };
}

export const INQUIRY: Command<LogicalUnit> = defineCommand({
  name: 'INQUIRY',
  inStandby: true,
  opcode: 0x12,
  cdbLength: 6,
  usage: [0x12, 0x01, 0xff, 0xff, 0xff, 0x00],
  reservation: 'allowed',
  skipsUnitAttention: true,
  spc2Allowed: true,
  anyLun: true,
  decode: (cdb) => decodeInquiry(cdb),
  execute({ lu }, r) {
    if (!r.evpd) return truncate(standardInquiry(lu.identity, true, lu.alua !== undefined), r.allocationLength);
    const page = VPD_PAGES.find((p) => p.code === r.page);
    if (!page) throw invalidCdbField(2);
    return truncate(vpdPage(r.page, page.build(lu)), r.allocationLength);
  },
});

/** SPC-5 §7.7.1: every VPD page starts with device type, page code and a 16-bit page length. */
export function vpdPage(code: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x00;
  head[1] = code;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}
