import { randomBytes } from 'node:crypto';
import { invariant } from '../../util/invariant';
import type { LogicalUnit } from '../logical-unit';
import { readCapacity16Data } from './capacity';
import { IDENTIFICATION_CSCD } from './extended-copy-params';
import { ROD_TOKEN_BYTES, ROD_TYPE } from './odx-params';
import { naa6, targetDeviceDesignator } from './vpd';

/** Offset of the target device descriptor; what follows it up to 512 bytes is random. */
const TARGET_DEVICE_DESCRIPTOR = 128;
/** At least this many random bytes end every token: 1024 bits nobody can guess. */
const MIN_RANDOM_BYTES = 128;

/**
 * A new ROD token for `bytes` bytes of `lu` (spc4r37 ROD token format):
 *   0-3    ROD TYPE: point in time copy, change vulnerable
 *   6-7    ROD TOKEN LENGTH: 01F8h (the bytes after this field)
 *   8-15   COPY MANAGER ROD TOKEN IDENTIFIER (random)
 *   16-47  CREATOR LOGICAL UNIT DESCRIPTOR: an identification CSCD descriptor naming the LU by
 *          its VPD 83h NAA designator, with its logical block length
 *   48-63  NUMBER OF BYTES REPRESENTED
 *   96-127 device type specific data: READ CAPACITY(16) data after the LBA (sbc3r35)
 *   128-   TARGET DEVICE DESCRIPTOR (our SCSI name string designator), then random bytes.
 * The table (rod-tokens.ts) finds a token only by all 512 bytes, so the random part is what
 * keeps a token from being forged or guessed by another initiator.
 */
export function createRodToken(lu: LogicalUnit, bytes: number): Buffer {
  const t = Buffer.alloc(ROD_TOKEN_BYTES);
  t.writeUInt32BE(ROD_TYPE.pointInTimeChangeVulnerable, 0);
  t.writeUInt16BE(ROD_TOKEN_BYTES - 8, 6);
  randomBytes(8).copy(t, 8);
  creatorDescriptor(lu).copy(t, 16);
  t.writeBigUInt64BE(BigInt(bytes), 56); // low half of the 128-bit NUMBER OF BYTES REPRESENTED
  readCapacity16Data(lu).copy(t, 96, 8, 32);
  const target = targetDeviceDesignator(lu.target.iqn);
  const randomAt = TARGET_DEVICE_DESCRIPTOR + target.length;
  invariant(
    randomAt <= ROD_TOKEN_BYTES - MIN_RANDOM_BYTES,
    () => `target designator of ${target.length} bytes leaves too little of the token random`,
  );
  target.copy(t, TARGET_DEVICE_DESCRIPTOR);
  randomBytes(ROD_TOKEN_BYTES - randomAt).copy(t, randomAt);
  return t;
}

/** The ROD TYPE of a token. */
export function rodTypeOf(token: Buffer): number {
  return token.readUInt32BE(0);
}

/** spc4r37 identification descriptor CSCD descriptor (E4h), as EXTENDED COPY's parser reads it. */
function creatorDescriptor(lu: LogicalUnit): Buffer {
  const d = Buffer.alloc(32);
  d[0] = IDENTIFICATION_CSCD;
  d[1] = 0x00; // LU ID TYPE 00b (logical unit), PERIPHERAL DEVICE TYPE 00h
  const naa = naa6(lu.identity.uuid);
  d[4] = 0x01; // CODE SET: binary
  d[5] = 0x03; // ASSOCIATION: logical unit, DESIGNATOR TYPE: NAA
  d[7] = naa.length;
  naa.copy(d, 8);
  d.writeUIntBE(lu.blockSize, 29, 3); // DISK BLOCK LENGTH
  return d;
}
