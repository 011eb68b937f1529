import { serialOf } from '../identity';
import type { LogicalUnit } from '../logical-unit';
import { MAX_TRANSFER_BYTES } from './rw-decode';
import { thirdPartyCopy } from './third-party-copy-vpd';

/**
 * The IEEE company ID in our NAA-6 designators. This is a locally administered CID (the X bit
 * of the first octet is set), so it cannot collide with a registered vendor's OUI.
 */
export const NAA_COMPANY_ID = 0x0a5374;

/** Thin-provisioning facts reported in READ CAPACITY(16) and VPD B0h/B2h (SBC-4 §4.7). */
export const PROVISIONING = {
  /** Logical block provisioning management enabled (LBPME). */
  lbpme: true,
  /** Unmapped blocks read as zeros (LBPRZ = 001b). */
  lbprz: true,
  /** UNMAP supported (LBPU). */
  unmap: true,
  /** WRITE SAME(16)/(10) with UNMAP supported (LBPWS/LBPWS10). */
  writeSameUnmap: true,
};

/** Block Limits (SBC-4 §6.6.4): what our command paths accept. */
export const BLOCK_LIMITS = {
  maxCompareAndWriteBlocks: 255,
  maxTransferBytes: MAX_TRANSFER_BYTES,
  /** One chunk: the unit of an S3 object. */
  optimalTransferBytes: 1024 * 1024,
  /** 512 MiB: 2^20 blocks on 512e (libiscsi and initiators expect at most that many LBAs). */
  maxUnmapBytes: 512 * 1024 * 1024,
  maxUnmapDescriptors: 256,
  maxWriteSameBytes: 1024 * 1024 * 1024,
};

/**
 * WRITE ATOMIC limits (SBC-4 §6.6.4): at most 128 KiB, aligned to its own maximum, so an
 * atomic write never crosses a 1 MiB chunk (an object written with one PUT).
 */
export function ATOMIC_LIMITS(blockSize: number): { maxBlocks: number; alignment: number; granularity: number } {
  const blocks = (128 * 1024) / blockSize;
  return { maxBlocks: blocks, alignment: blocks, granularity: 1 };
}

interface VpdPageDef {
  readonly code: number;
  readonly build: (lu: LogicalUnit) => Buffer;
}

/** 00h: supported VPD pages, ascending (SPC-5 §7.7.16). */
function supportedPages(): Buffer {
  return Buffer.from(VPD_PAGES.map((p) => p.code));
}

/** 80h: unit serial number (SPC-5 §7.7.18). */
function unitSerial(lu: LogicalUnit): Buffer {
  return Buffer.from(serialOf(lu.identity.uuid), 'ascii');
}

function designator(codeSet: number, piv: boolean, association: number, type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = (piv ? 0x50 : 0x00) | codeSet; // PROTOCOL IDENTIFIER 5h (iSCSI) when PIV is set
  h[1] = (piv ? 0x80 : 0) | (association << 4) | type;
  h[3] = value.length;
  return Buffer.concat([h, value]);
}

/** NAA IEEE Registered Extended (NAA 6h, SPC-5 §7.7.6.6.5), 100 bits taken from the LUN's UUID. */
export function naa6(uuid: string): Buffer {
  const hex = `6${NAA_COMPANY_ID.toString(16).padStart(6, '0')}${serialOf(uuid).slice(0, 25)}`;
  return Buffer.from(hex, 'hex');
}

/** SCSI name strings are null-terminated and padded to a multiple of 4 (SPC-5 §7.7.6.11). */
function scsiName(name: string): Buffer {
  const raw = Buffer.from(name, 'utf8');
  const len = (raw.length + 1 + 3) & ~3;
  const b = Buffer.alloc(len);
  raw.copy(b);
  return b;
}

/**
 * The target device's SCSI name string designator (UTF-8, association 10b, type 8h), as VPD 83h
 * reports it; ODX's ROD tokens carry it as their TARGET DEVICE DESCRIPTOR.
 */
export function targetDeviceDesignator(iqn: string): Buffer {
  return designator(3, true, 2, 8, scsiName(iqn));
}

/**
 * 83h: device identification (SPC-5 §7.7.6). The LU designators (NAA-6 and T10 vendor ID)
 * come from the per-LUN UUID, so they survive restarts and differ between LUNs: ESXi and
 * Windows MPIO key devices by them.
 */
function deviceIdentification(lu: LogicalUnit): Buffer {
  const t10 = Buffer.concat([Buffer.from(lu.identity.vendor.padEnd(8, ' ').slice(0, 8), 'ascii'), Buffer.from(serialOf(lu.identity.uuid), 'ascii')]);
  const relPort = Buffer.alloc(4);
  relPort.writeUInt16BE(lu.target.relativePortId, 2);
  const group = Buffer.alloc(4);
  if (lu.alua) group.writeUInt16BE(lu.alua.local.id, 2);
  return Buffer.concat([
    designator(1, false, 0, 3, naa6(lu.identity.uuid)), // binary, LU, NAA
    designator(2, false, 0, 1, t10), // ASCII, LU, T10 vendor ID
    designator(1, true, 1, 4, relPort), // binary, target port, relative target port identifier
    // SPC-5 r20 §7.7.6.8: with ALUA, the port's TARGET PORT GROUP (binary, target port, 5h).
    ...(lu.alua ? [designator(1, true, 1, 5, group)] : []),
    targetDeviceDesignator(lu.target.iqn), // UTF-8, target device, SCSI name string
  ]);
}

/** 86h: Extended INQUIRY Data (SPC-5 §7.7.7). */
function extendedInquiry(lu: LogicalUnit): Buffer {
  const b = Buffer.alloc(0x3c);
  b[1] = 0x07; // HEADSUP, ORDSUP, SIMPSUP: all task attributes
  b[2] = lu.volume.cacheMode === 'write-back' ? 0x01 : 0x00; // V_SUP: volatile cache present
  return b;
}

/** B0h: Block Limits (SBC-4 §6.6.4). */
function blockLimits(lu: LogicalUnit): Buffer {
  const bs = lu.blockSize;
  const b = Buffer.alloc(0x3c);
  b[1] = BLOCK_LIMITS.maxCompareAndWriteBlocks;
  // OPTIMAL TRANSFER LENGTH GRANULARITY: one physical block (4096 bytes).
  b.writeUInt16BE(4096 / bs, 2);
  b.writeUInt32BE(BLOCK_LIMITS.maxTransferBytes / bs, 4);
  b.writeUInt32BE(BLOCK_LIMITS.optimalTransferBytes / bs, 8);
  b.writeUInt32BE(BLOCK_LIMITS.maxTransferBytes / bs, 12); // MAXIMUM PREFETCH LENGTH
  if (PROVISIONING.unmap) {
    b.writeUInt32BE(BLOCK_LIMITS.maxUnmapBytes / bs, 16);
    b.writeUInt32BE(BLOCK_LIMITS.maxUnmapDescriptors, 20);
  }
  // OPTIMAL UNMAP GRANULARITY = one chunk; VMFS6 reclaims automatically only at <= 1 MiB.
  b.writeUInt32BE(lu.volume.info.chunkSize / bs, 24);
  b.writeUInt32BE(0x80000000, 28); // UGAVALID, alignment 0
  b.writeBigUInt64BE(BigInt(BLOCK_LIMITS.maxWriteSameBytes / bs), 32);
  const atomic = ATOMIC_LIMITS(bs);
  b.writeUInt32BE(atomic.maxBlocks, 40); // MAXIMUM ATOMIC TRANSFER LENGTH
  b.writeUInt32BE(atomic.alignment, 44); // ATOMIC ALIGNMENT
  b.writeUInt32BE(atomic.granularity, 48); // ATOMIC TRANSFER LENGTH GRANULARITY
  return b;
}

/** B1h: Block Device Characteristics (SBC-4 §6.6.2). */
function blockCharacteristics(): Buffer {
  const b = Buffer.alloc(0x3c);
  b.writeUInt16BE(0x0001, 0); // MEDIUM ROTATION RATE: non-rotating medium
  return b;
}

/** B2h: Logical Block Provisioning (SBC-4 §6.6.5). */
function logicalBlockProvisioning(): Buffer {
  const b = Buffer.alloc(4);
  b[0] = 0; // THRESHOLD EXPONENT
  b[1] = (PROVISIONING.unmap ? 0x80 : 0) | (PROVISIONING.writeSameUnmap ? 0x60 : 0) | (PROVISIONING.lbprz ? 0x04 : 0);
  b[2] = 0x02; // PROVISIONING TYPE: thin provisioned
  return b;
}

export const VPD_PAGES: readonly VpdPageDef[] = [
  { code: 0x00, build: supportedPages },
  { code: 0x80, build: unitSerial },
  { code: 0x83, build: deviceIdentification },
  { code: 0x86, build: extendedInquiry },
  { code: 0x8f, build: thirdPartyCopy },
  { code: 0xb0, build: blockLimits },
  { code: 0xb1, build: blockCharacteristics },
  { code: 0xb2, build: logicalBlockProvisioning },
];
