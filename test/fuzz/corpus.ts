import { serializeText } from '../../src/iscsi/login/text-codec';
import {
  encodeDataOut,
  encodeLoginRequest,
  encodeLogoutRequest,
  encodeNopOut,
  encodeScsiCommand,
  encodeSnackRequest,
  encodeTaskMgmtRequest,
  encodeTextRequest,
  type OutFrame,
  pad4,
} from '../../src/iscsi/pdu';

/** A valid PDU on the wire (no digests): BHS, data, padding. */
export function wire(f: OutFrame): Buffer {
  const data = f.data ?? Buffer.alloc(0);
  return Buffer.concat([f.bhs, data, Buffer.alloc(pad4(data.length) - data.length)]);
}

/** Sequence numbers a full-feature-phase PDU carries, filled in when it is sent. */
export interface Seq {
  itt: number;
  cmdSN: number;
  expStatSN: number;
}

const cdb = (...bytes: number[]): Buffer => {
  const b = Buffer.alloc(16);
  Buffer.from(bytes).copy(b);
  return b;
};

/** CDBs of the commands the target implements, small transfers only. */
const CDBS: ReadonlyArray<{ cdb: Buffer; read?: number; write?: Buffer }> = [
  { cdb: cdb(0x00) },
  { cdb: cdb(0x12, 0, 0, 0, 96, 0), read: 96 },
  { cdb: cdb(0x12, 1, 0x83, 0, 255, 0), read: 255 },
  { cdb: cdb(0x12, 1, 0xb0, 0, 64, 0), read: 64 },
  { cdb: cdb(0x03, 0, 0, 0, 18, 0), read: 18 },
  { cdb: cdb(0x25), read: 8 },
  { cdb: cdb(0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32), read: 32 },
  { cdb: cdb(0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64), read: 64 },
  { cdb: cdb(0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0), read: 4096 },
  { cdb: cdb(0x88, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0), read: 512 },
  { cdb: cdb(0x08, 0, 0, 4, 1, 0), read: 512 },
  { cdb: cdb(0x2a, 0, 0, 0, 0, 16, 0, 0, 8, 0), write: Buffer.alloc(4096, 0xa5) },
  { cdb: cdb(0x8a, 0x08, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 1, 0, 0), write: Buffer.alloc(512, 0x5a) },
  { cdb: cdb(0x0a, 0, 0, 48, 1, 0), write: Buffer.alloc(512, 1) },
  { cdb: cdb(0x35) },
  { cdb: cdb(0x91) },
  { cdb: cdb(0x1a, 0, 0x3f, 0, 255, 0), read: 255 },
  { cdb: cdb(0x5a, 0, 0x08, 0, 0, 0, 0, 0, 255, 0), read: 255 },
  { cdb: cdb(0x15, 0x10, 0, 0, 24, 0), write: Buffer.from('00000000000000000000000008020000000000000000000000', 'hex').subarray(0, 24) },
  { cdb: cdb(0x5e, 0x00, 0, 0, 0, 0, 0, 0, 64, 0), read: 64 },
  {
    cdb: cdb(0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0),
    write: Buffer.from('0000000000000001000000000000000000000000000000000000', 'hex').subarray(0, 24),
  },
  { cdb: cdb(0x89, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 1), write: Buffer.alloc(1024) },
  { cdb: cdb(0x41, 0, 0, 0, 0, 64, 0, 0, 8, 0), write: Buffer.alloc(512) },
  { cdb: cdb(0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, 72, 0, 0, 0, 8), write: Buffer.alloc(512) },
  { cdb: cdb(0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0), write: Buffer.from('0016001000000000000000000000000000000080000000080000', 'hex').subarray(0, 24) },
  { cdb: cdb(0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64), read: 64 },
  { cdb: cdb(0x2f, 0, 0, 0, 0, 0, 0, 0, 8, 0) },
  { cdb: cdb(0x34, 0, 0, 0, 0, 0, 0, 0, 8, 0) },
  { cdb: cdb(0x1b, 0, 0, 0, 1, 0) },
  { cdb: cdb(0x1e, 0, 0, 0, 1, 0) },
  { cdb: cdb(0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0), read: 256 },
  { cdb: cdb(0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0), read: 64 },
  { cdb: cdb(0x37, 0, 0x08, 0, 0, 0, 0, 0, 8, 0), read: 8 },
  { cdb: cdb(0x16, 0, 0, 0, 0, 0) },
  { cdb: cdb(0x17, 0, 0, 0, 0, 0) },
  { cdb: cdb(0x2e, 0x02, 0, 0, 0, 0, 0, 0, 8, 0), write: Buffer.alloc(4096) },
  { cdb: cdb(0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0), write: Buffer.alloc(64) },
  { cdb: cdb(0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0), read: 256 },
];

/** Full-feature-phase PDUs, built fresh with the connection's sequence numbers. */
export const FFP_BUILDERS: ReadonlyArray<(s: Seq) => OutFrame> = [
  ...CDBS.map(
    (c) => (s: Seq) =>
      encodeScsiCommand({
        immediate: false,
        final: true,
        read: c.read !== undefined,
        write: c.write !== undefined,
        attr: 1,
        lun: 0n,
        itt: s.itt,
        expectedDataLength: c.read ?? c.write?.length ?? 0,
        cmdSN: s.cmdSN,
        expStatSN: s.expStatSN,
        cdb: c.cdb,
        data: c.write ?? Buffer.alloc(0),
      }),
  ),
  // A write that needs R2T-solicited data, then Data-Out for it (offset 0, TTT guessed).
  (s) =>
    encodeScsiCommand({
      immediate: false,
      final: true,
      read: false,
      write: true,
      attr: 1,
      lun: 0n,
      itt: s.itt,
      expectedDataLength: 65536,
      cmdSN: s.cmdSN,
      expStatSN: s.expStatSN,
      cdb: cdb(0x2a, 0, 0, 0, 1, 0, 0, 0, 128, 0),
      data: Buffer.alloc(0),
    }),
  (s) =>
    encodeDataOut({ final: true, lun: 0n, itt: s.itt - 1, ttt: 1, expStatSN: s.expStatSN, dataSN: 0, bufferOffset: 0, data: Buffer.alloc(8192, 7) }),
  (s) =>
    encodeDataOut({
      final: false,
      lun: 0n,
      itt: s.itt,
      ttt: 0xffffffff,
      expStatSN: s.expStatSN,
      dataSN: 0,
      bufferOffset: 0,
      data: Buffer.alloc(512),
    }),
  (s) => encodeNopOut({ immediate: true, lun: 0n, itt: s.itt, ttt: 0xffffffff, cmdSN: s.cmdSN, expStatSN: s.expStatSN, data: Buffer.from('ping') }),
  (s) => encodeNopOut({ immediate: false, lun: 0n, itt: s.itt, ttt: 0xffffffff, cmdSN: s.cmdSN, expStatSN: s.expStatSN, data: Buffer.alloc(0) }),
  ...[1, 2, 3, 4, 5, 8, 14].map(
    (func) => (s: Seq) =>
      encodeTaskMgmtRequest({
        immediate: true,
        func,
        lun: 0n,
        itt: s.itt,
        referencedTaskTag: s.itt - 1,
        cmdSN: s.cmdSN,
        expStatSN: s.expStatSN,
        refCmdSN: s.cmdSN - 1,
        expDataSN: 0,
      }),
  ),
  (s) =>
    encodeTextRequest({
      immediate: true,
      final: true,
      cont: false,
      lun: 0n,
      itt: s.itt,
      ttt: 0xffffffff,
      cmdSN: s.cmdSN,
      expStatSN: s.expStatSN,
      data: serializeText([['SendTargets', 'All']]),
    }),
  (s) =>
    encodeTextRequest({
      immediate: false,
      final: true,
      cont: false,
      lun: 0n,
      itt: s.itt,
      ttt: 0xffffffff,
      cmdSN: s.cmdSN,
      expStatSN: s.expStatSN,
      data: serializeText([
        ['MaxRecvDataSegmentLength', '8192'],
        ['X-com.example.unknown', 'value'],
      ]),
    }),
  (s) => encodeSnackRequest({ type: 0, lun: 0n, itt: s.itt, ttt: 0xffffffff, expStatSN: s.expStatSN, begRun: 0, runLength: 0 }),
];

/** PDUs that end the session or reset the target: sent rarely, so sessions live long enough. */
export const DISRUPTIVE_BUILDERS: ReadonlyArray<(s: Seq) => OutFrame> = [
  (s) => encodeLogoutRequest({ immediate: true, reason: 0, itt: s.itt, cid: 0, cmdSN: s.cmdSN, expStatSN: s.expStatSN }),
  (s) => encodeLogoutRequest({ immediate: false, reason: 1, itt: s.itt, cid: 0, cmdSN: s.cmdSN, expStatSN: s.expStatSN }),
  ...[6, 7].map(
    (func) => (s: Seq) =>
      encodeTaskMgmtRequest({
        immediate: true,
        func,
        lun: 0n,
        itt: s.itt,
        referencedTaskTag: 0xffffffff,
        cmdSN: s.cmdSN,
        expStatSN: s.expStatSN,
        refCmdSN: 0,
        expDataSN: 0,
      }),
  ),
];

/** The login of a normal session in one step (AuthMethod None), for the fuzz sessions. */
export function normalLogin(initiator: string, target: string, isid: Buffer): Buffer {
  return wire(
    encodeLoginRequest({
      transit: true,
      cont: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionMin: 0,
      isid,
      tsih: 0,
      itt: 0,
      cid: 0,
      cmdSN: 1,
      expStatSN: 0,
      data: serializeText([
        ['InitiatorName', initiator],
        ['TargetName', target],
        ['SessionType', 'Normal'],
        ['HeaderDigest', 'None'],
        ['DataDigest', 'None'],
        ['InitialR2T', 'No'],
        ['ImmediateData', 'Yes'],
        ['MaxRecvDataSegmentLength', '65536'],
        ['FirstBurstLength', '65536'],
      ]),
    }),
  );
}

/** Login-phase PDUs: security and operational stages, discovery and normal. */
export function loginCorpus(target: string): Buffer[] {
  const base = {
    cont: false,
    versionMax: 0,
    versionMin: 0,
    isid: Buffer.from('400000000009', 'hex'),
    tsih: 0,
    itt: 0,
    cid: 0,
    cmdSN: 1,
    expStatSN: 0,
  };
  const pairs: Array<Array<[string, string]>> = [
    [
      ['InitiatorName', 'iqn.2026-11.fuzz:init'],
      ['SessionType', 'Discovery'],
      ['AuthMethod', 'None'],
    ],
    [
      ['InitiatorName', 'iqn.2026-11.fuzz:init'],
      ['TargetName', target],
      ['AuthMethod', 'CHAP,None'],
    ],
    [['CHAP_A', '5,7']],
    [
      ['CHAP_N', 'user'],
      ['CHAP_R', '0x00112233445566778899aabbccddeeff'],
      ['CHAP_I', '1'],
      ['CHAP_C', '0b3q2+7w=='],
    ],
    [
      ['InitiatorName', 'iqn.2026-11.fuzz:init'],
      ['TargetName', target],
      ['HeaderDigest', 'CRC32C,None'],
      ['DataDigest', 'None'],
      ['MaxBurstLength', '262144'],
      ['FirstBurstLength', '65536'],
      ['MaxOutstandingR2T', '1'],
      ['ErrorRecoveryLevel', '0'],
      ['DefaultTime2Wait', '2'],
      ['MaxConnections', '1'],
    ],
  ];
  const out: Buffer[] = [];
  for (const p of pairs) {
    out.push(wire(encodeLoginRequest({ ...base, transit: true, csg: 1, nsg: 3, data: serializeText(p) })));
    out.push(wire(encodeLoginRequest({ ...base, transit: false, csg: 0, nsg: 0, data: serializeText(p) })));
    out.push(wire(encodeLoginRequest({ ...base, transit: true, csg: 0, nsg: 1, data: serializeText(p) })));
  }
  return out;
}
