/**
 * ODX CDBs and parameter lists as Windows' classpnp builds them (Windows-driver-samples
 * `ClasspSetupPopulateTokenTransferPacket`, `ClasspSetupWriteUsingTokenTransferPacket`,
 * `ClasspSetupReceivePopulateTokenInformationTransferPacket`; scsi.h POPULATE_TOKEN_HEADER,
 * WRITE_USING_TOKEN_HEADER, RECEIVE_TOKEN_INFORMATION_HEADER), and a parser of the answer.
 */

/** A block device range descriptor: LBA and NUMBER OF LOGICAL BLOCKS. */
export type Range = readonly [lba: bigint | number, blocks: number];

/** POPULATE TOKEN (83h/10h) or WRITE USING TOKEN (83h/11h): LIST IDENTIFIER 6-9, PARAMETER LIST LENGTH 10-13. */
export function tokenCdb(serviceAction: 0x10 | 0x11, listId: number, length: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x83;
  c[1] = serviceAction;
  c.writeUInt32BE(listId, 6);
  c.writeUInt32BE(length, 10);
  return c;
}

/** RECEIVE ROD TOKEN INFORMATION (84h/07h): LIST IDENTIFIER 2-5, ALLOCATION LENGTH 10-13. */
export function rrtiCdb(listId: number, allocation = 4096): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x84;
  c[1] = 0x07;
  c.writeUInt32BE(listId, 2);
  c.writeUInt32BE(allocation, 10);
  return c;
}

function descriptors(ranges: readonly Range[]): Buffer {
  const d = Buffer.alloc(16 * ranges.length);
  ranges.forEach(([lba, blocks], i) => {
    d.writeBigUInt64BE(BigInt(lba), 16 * i);
    d.writeUInt32BE(blocks, 16 * i + 8);
  });
  return d;
}

/** POPULATE TOKEN parameter list: DATA LENGTH, IMMED/RTV, INACTIVITY TIMEOUT, ROD TYPE, descriptors. */
export function populateTokenList(ranges: readonly Range[], o: { timeout?: number; immed?: boolean; rodType?: number } = {}): Buffer {
  const h = Buffer.alloc(16);
  const d = descriptors(ranges);
  h.writeUInt16BE(h.length + d.length - 2, 0);
  h[2] = (o.immed ? 0x01 : 0) | (o.rodType !== undefined ? 0x02 : 0);
  h.writeUInt32BE(o.timeout ?? 0, 4);
  h.writeUInt32BE(o.rodType ?? 0, 8);
  h.writeUInt16BE(d.length, 14);
  return Buffer.concat([h, d]);
}

/** WRITE USING TOKEN parameter list: flags, BLOCK OFFSET INTO ROD, the token at 16, descriptors at 536. */
export function writeUsingTokenList(
  token: Buffer,
  ranges: readonly Range[],
  o: { offset?: bigint | number; deleteToken?: boolean; immed?: boolean } = {},
): Buffer {
  const h = Buffer.alloc(536);
  const d = descriptors(ranges);
  h.writeUInt16BE(h.length + d.length - 2, 0);
  h[2] = (o.immed ? 0x01 : 0) | (o.deleteToken ? 0x02 : 0);
  h.writeBigUInt64BE(BigInt(o.offset ?? 0), 8);
  token.copy(h, 16);
  h.writeUInt16BE(d.length, 534);
  return Buffer.concat([h, d]);
}

/** The block device zero ROD token: ROD TYPE FFFF0001h, ROD TOKEN LENGTH 01F8h, the rest zero. */
export function zeroRodToken(): Buffer {
  const t = Buffer.alloc(512);
  t.writeUInt32BE(0xffff0001, 0);
  t.writeUInt16BE(0x01f8, 6);
  return t;
}

export interface TokenInformation {
  readonly availableData: number;
  readonly responseTo: number;
  readonly status: number;
  readonly completionStatus: number;
  readonly senseFieldLength: number;
  readonly sense: Buffer;
  readonly units: number;
  readonly transferCount: bigint;
  readonly segmentsProcessed: number;
  readonly descriptorsLength: number;
  /** The 512-byte token of a POPULATE TOKEN's answer. */
  readonly token: Buffer | undefined;
  /** The 2 bytes before the token (reserved; classpnp asserts them zero). */
  readonly tokenIdentifier: number | undefined;
}

/** Reads RECEIVE ROD TOKEN INFORMATION parameter data the way classpnp does. */
export function parseTokenInformation(d: Buffer): TokenInformation {
  const senseFieldLength = d[13];
  const at = 32 + senseFieldLength;
  const descriptorsLength = d.readUInt32BE(at);
  return {
    availableData: d.readUInt32BE(0),
    responseTo: d[4] & 0x1f,
    status: d[5] & 0x7f,
    completionStatus: d[12],
    senseFieldLength,
    sense: d.subarray(32, 32 + d[14]),
    units: d[15],
    transferCount: d.readBigUInt64BE(16),
    segmentsProcessed: d.readUInt16BE(24),
    descriptorsLength,
    token: descriptorsLength >= 514 ? d.subarray(at + 6, at + 6 + 512) : undefined,
    tokenIdentifier: descriptorsLength >= 514 ? d.readUInt16BE(at + 4) : undefined,
  };
}
