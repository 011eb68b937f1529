import { expectNoData, type Frame, immediateOf, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.14.1: reason codes. */
export const LogoutReason = { CloseSession: 0, CloseConnection: 1, RemoveConnectionForRecovery: 2 } as const;
/** RFC 7143 §11.15.1: response codes. */
export const LogoutResponseCode = {
  Success: 0,
  CidNotFound: 1,
  RecoveryNotSupported: 2,
  CleanupFailed: 3,
} as const;

/** RFC 7143 §11.14: Logout Request. */
export interface LogoutRequestPdu {
  readonly kind: 'logout-request';
  readonly immediate: boolean;
  readonly reason: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}

export function decodeLogoutRequest(f: Frame): LogoutRequestPdu {
  expectNoData(f, 'Logout Request');
  const b = f.bhs;
  return {
    kind: 'logout-request',
    immediate: immediateOf(b),
    reason: b[1] & 0x7f,
    itt: b.readUInt32BE(16),
    cid: b.readUInt16BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
  };
}

export function encodeLogoutRequest(p: Omit<LogoutRequestPdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.LogoutRequest, 0x80 | (p.reason & 0x7f), 0, p.immediate);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt16BE(p.cid, 20);
  bhs.writeUInt32BE(p.cmdSN, 24);
  bhs.writeUInt32BE(p.expStatSN, 28);
  return { bhs };
}

/** RFC 7143 §11.15: Logout Response. */
export interface LogoutResponsePdu {
  readonly kind: 'logout-response';
  readonly response: number;
  readonly itt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly time2Wait: number;
  readonly time2Retain: number;
}

export function encodeLogoutResponse(p: Omit<LogoutResponsePdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.LogoutResponse, 0x80, 0);
  bhs[2] = p.response;
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  bhs.writeUInt16BE(p.time2Wait, 40);
  bhs.writeUInt16BE(p.time2Retain, 42);
  return { bhs };
}

export function decodeLogoutResponse(f: Frame): LogoutResponsePdu {
  const b = f.bhs;
  return {
    kind: 'logout-response',
    response: b[2],
    itt: b.readUInt32BE(16),
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    time2Wait: b.readUInt16BE(40),
    time2Retain: b.readUInt16BE(42),
  };
}
