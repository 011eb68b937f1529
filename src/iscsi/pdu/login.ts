import { type Frame, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.12.3: stage codes for CSG/NSG. */
export const Stage = { Security: 0, Operational: 1, FullFeature: 3 } as const;
export type Stage = 0 | 1 | 2 | 3;

/** RFC 7143 §11.12: Login Request. */
export interface LoginRequestPdu {
  readonly kind: 'login-request';
  /** T: the initiator is ready to move to NSG. */
  readonly transit: boolean;
  /** C: the text is continued in the next PDU. */
  readonly cont: boolean;
  readonly csg: Stage;
  readonly nsg: Stage;
  readonly versionMax: number;
  readonly versionMin: number;
  /** ISID, 6 bytes (RFC 7143 §11.12.5), kept raw. */
  readonly isid: Buffer;
  readonly tsih: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export function decodeLoginRequest(f: Frame): LoginRequestPdu {
  const b = f.bhs;
  return {
    kind: 'login-request',
    transit: (b[1] & 0x80) !== 0,
    cont: (b[1] & 0x40) !== 0,
    csg: ((b[1] >> 2) & 3) as Stage,
    nsg: (b[1] & 3) as Stage,
    versionMax: b[2],
    versionMin: b[3],
    isid: Buffer.from(b.subarray(8, 14)),
    tsih: b.readUInt16BE(14),
    itt: b.readUInt32BE(16),
    cid: b.readUInt16BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    data: f.data,
  };
}

export function encodeLoginRequest(p: Omit<LoginRequestPdu, 'kind'>): OutFrame {
  const flags = (p.transit ? 0x80 : 0) | (p.cont ? 0x40 : 0) | (p.csg << 2) | p.nsg;
  const bhs = newBhs(Op.LoginRequest, flags, p.data.length, true);
  bhs[2] = p.versionMax;
  bhs[3] = p.versionMin;
  p.isid.copy(bhs, 8, 0, 6);
  bhs.writeUInt16BE(p.tsih, 14);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt16BE(p.cid, 20);
  bhs.writeUInt32BE(p.cmdSN, 24);
  bhs.writeUInt32BE(p.expStatSN, 28);
  return { bhs, data: p.data };
}

/** RFC 7143 §11.13: Login Response. */
export interface LoginResponsePdu {
  readonly kind: 'login-response';
  readonly transit: boolean;
  readonly cont: boolean;
  readonly csg: Stage;
  readonly nsg: Stage;
  readonly versionMax: number;
  readonly versionActive: number;
  readonly isid: Buffer;
  readonly tsih: number;
  readonly itt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly statusClass: number;
  readonly statusDetail: number;
  readonly data: Buffer;
}

export function encodeLoginResponse(p: Omit<LoginResponsePdu, 'kind'>): OutFrame {
  const flags = (p.transit ? 0x80 : 0) | (p.cont ? 0x40 : 0) | (p.csg << 2) | p.nsg;
  const bhs = newBhs(Op.LoginResponse, flags, p.data.length);
  bhs[2] = p.versionMax;
  bhs[3] = p.versionActive;
  p.isid.copy(bhs, 8, 0, 6);
  bhs.writeUInt16BE(p.tsih, 14);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  bhs[36] = p.statusClass;
  bhs[37] = p.statusDetail;
  return { bhs, data: p.data };
}

export function decodeLoginResponse(f: Frame): LoginResponsePdu {
  const b = f.bhs;
  return {
    kind: 'login-response',
    transit: (b[1] & 0x80) !== 0,
    cont: (b[1] & 0x40) !== 0,
    csg: ((b[1] >> 2) & 3) as Stage,
    nsg: (b[1] & 3) as Stage,
    versionMax: b[2],
    versionActive: b[3],
    isid: Buffer.from(b.subarray(8, 14)),
    tsih: b.readUInt16BE(14),
    itt: b.readUInt32BE(16),
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    statusClass: b[36],
    statusDetail: b[37],
    data: f.data,
  };
}
