import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BHS_LENGTH,
  decodeAsyncMessage,
  decodeDataIn,
  decodeDataOut,
  decodeInitiatorPdu,
  decodeLoginRequest,
  decodeLoginResponse,
  decodeLogoutRequest,
  decodeLogoutResponse,
  decodeNopIn,
  decodeNopOut,
  decodeR2T,
  decodeReject,
  decodeScsiCommand,
  decodeScsiResponse,
  decodeSnackRequest,
  decodeTargetPdu,
  decodeTaskMgmtRequest,
  decodeTaskMgmtResponse,
  decodeTextRequest,
  decodeTextResponse,
  encodeAsyncMessage,
  encodeDataIn,
  encodeDataOut,
  encodeLoginRequest,
  encodeLoginResponse,
  encodeLogoutRequest,
  encodeLogoutResponse,
  encodeNopIn,
  encodeNopOut,
  encodeR2T,
  encodeReject,
  encodeScsiCommand,
  encodeScsiResponse,
  encodeSnackRequest,
  encodeTaskMgmtRequest,
  encodeTaskMgmtResponse,
  encodeTextRequest,
  encodeTextResponse,
  type Frame,
  type OutFrame,
} from '../../src/iscsi/pdu';
import { hex } from '../lib/hex';

/** A frame as the framer would hand it over: the BHS, no AHS, and the data segment. */
function frame(bhs: Buffer, data: Buffer = Buffer.alloc(0)): Frame {
  assert.equal(bhs.length, BHS_LENGTH, 'fixture BHS must be 48 bytes');
  return { bhs, ahs: Buffer.alloc(0), data };
}

/** parse -> expected fields; build(fields) -> the same bytes; parse(build(x)) -> x. */
function roundTrip<T extends { readonly kind: string }>(
  bytes: Buffer,
  data: Buffer,
  decode: (f: Frame) => T,
  encode: (p: T) => OutFrame,
  expected: Partial<T>,
): void {
  const parsed = decode(frame(bytes, data));
  // The opcode dispatch tables pick the same decoder.
  const viaTable = bytes[0] & 0x20 ? decodeTargetPdu(frame(bytes, data)) : decodeInitiatorPdu(frame(bytes, data));
  assert.equal(viaTable.kind, parsed.kind, 'opcode table dispatches to this decoder');
  for (const [k, v] of Object.entries(expected)) assert.deepEqual((parsed as Record<string, unknown>)[k], v, `field ${k}`);
  const built = encode(parsed);
  assert.deepEqual(built.bhs, bytes, 'built BHS matches the fixture byte for byte');
  assert.deepEqual(built.data ?? Buffer.alloc(0), data, 'built data segment matches');
  assert.deepEqual(decode(frame(built.bhs, built.data ?? Buffer.alloc(0))), parsed, 'mirror: parse(build(x)) = x');
}

describe('PDU golden fixtures (RFC 7143 §11)', () => {
  it('SCSI Command: WRITE(10) with 512 bytes of immediate data (§11.3)', () => {
    const bhs = hex`
      41          // I=1, opcode 0x01 SCSI Command
      a1          // F=1 R=0 W=1, ATTR=1 (simple)
      0000        // reserved
      00          // TotalAHSLength
      000200      // DataSegmentLength = 512
      0001000000000000 // LUN 1 (peripheral addressing)
      12345678    // ITT
      00001000    // Expected Data Transfer Length = 4096
      0000000a    // CmdSN
      00000007    // ExpStatSN
      2a00000000200000080000000000000 0 // CDB: WRITE(10) LBA 0x20, 8 blocks
    `;
    const data = Buffer.alloc(512, 0xab);
    roundTrip(bhs, data, decodeScsiCommand, encodeScsiCommand, {
      kind: 'scsi-command',
      immediate: true,
      final: true,
      read: false,
      write: true,
      attr: 1,
      lun: 0x0001000000000000n,
      itt: 0x12345678,
      expectedDataLength: 4096,
      cmdSN: 10,
      expStatSN: 7,
    });
  });

  it('SCSI Response with sense data and an underflow (§11.4)', () => {
    const sense = hex`70 00 05 00000000 0a 00000000 24 00 00 000000`;
    const data = Buffer.concat([hex`0012`, sense]); // SenseLength = 18
    const bhs = hex`
      21          // opcode 0x21 SCSI Response
      82          // 1, U=1 (underflow)
      00          // Response: command completed at target
      02          // Status: CHECK CONDITION
      00 000014   // TotalAHSLength, DataSegmentLength = 20
      0000000000000000 // reserved
      00000042    // ITT
      00000000    // SNACK Tag
      00000100    // StatSN
      00000011    // ExpCmdSN
      00000090    // MaxCmdSN
      00000000    // ExpDataSN
      00000000    // Bidirectional Read Residual Count
      00000200    // Residual Count = 512
    `;
    roundTrip(bhs, data, decodeScsiResponse, encodeScsiResponse, {
      kind: 'scsi-response',
      status: 2,
      itt: 0x42,
      statSN: 0x100,
      residual: { overflow: false, underflow: true, count: 512 },
      sense,
    });
  });

  it('Data-In with status collapsed into the final PDU (§11.7)', () => {
    const data = Buffer.alloc(1024, 7);
    const bhs = hex`
      25          // opcode 0x25 Data-In
      81          // F=1, S=1
      00 00       // reserved, Status GOOD
      00 000400   // DataSegmentLength = 1024
      0000000000000000 // LUN
      00000009    // ITT
      ffffffff    // Target Transfer Tag
      00000033    // StatSN
      00000004    // ExpCmdSN
      00000083    // MaxCmdSN
      00000002    // DataSN
      00000800    // Buffer Offset = 2048
      00000000    // Residual Count
    `;
    roundTrip(bhs, data, decodeDataIn, encodeDataIn, {
      kind: 'data-in',
      final: true,
      itt: 9,
      dataSN: 2,
      bufferOffset: 2048,
      status: { status: 0, statSN: 0x33, residual: { overflow: false, underflow: false, count: 0 } },
    });
  });

  it('Data-Out answering an R2T (§11.7)', () => {
    const data = Buffer.alloc(8192, 1);
    const bhs = hex`
      05 80 0000  // opcode 0x05 Data-Out, F=1
      00 002000   // DataSegmentLength = 8192
      0000000000000000 // LUN
      00000011    // ITT
      00000003    // Target Transfer Tag
      00000000    // reserved
      00000005    // ExpStatSN
      00000000    // reserved
      00000001    // DataSN
      00010000    // Buffer Offset = 65536
      00000000    // reserved
    `;
    roundTrip(bhs, data, decodeDataOut, encodeDataOut, {
      kind: 'data-out',
      final: true,
      itt: 0x11,
      ttt: 3,
      dataSN: 1,
      bufferOffset: 65536,
    });
  });

  it('R2T (§11.8)', () => {
    const bhs = hex`
      31 80 0000 00 000000 // opcode 0x31 R2T
      0000000000000000 // LUN
      00000011    // ITT
      00000003    // Target Transfer Tag
      00000020    // StatSN
      00000005    // ExpCmdSN
      00000084    // MaxCmdSN
      00000001    // R2TSN
      00040000    // Buffer Offset
      00040000    // Desired Data Transfer Length
    `;
    roundTrip(bhs, Buffer.alloc(0), decodeR2T, encodeR2T, {
      kind: 'r2t',
      itt: 0x11,
      ttt: 3,
      r2tSN: 1,
      bufferOffset: 0x40000,
      desiredLength: 0x40000,
    });
  });

  it('Login Request, security stage to operational, T=1 (§11.12)', () => {
    const text = Buffer.from('InitiatorName=iqn.2026-11.test:i\0SessionType=Normal\0AuthMethod=None\0');
    const bhs = hex`
      43          // I=1, opcode 0x03 Login Request
      81          // T=1 C=0 CSG=0 NSG=1
      00 00       // Version-max, Version-min
      00 ${text.length.toString(16).padStart(6, '0')} // DataSegmentLength
      023d00010000 // ISID (type 0x02 random)
      0000        // TSIH
      00000001    // ITT
      0001 0000   // CID, reserved
      00000005    // CmdSN
      00000000    // ExpStatSN
      00000000000000000000000000000000 // reserved
    `;
    roundTrip(bhs, text, decodeLoginRequest, encodeLoginRequest, {
      kind: 'login-request',
      transit: true,
      cont: false,
      csg: 0,
      nsg: 1,
      isid: hex`023d00010000`,
      tsih: 0,
      cid: 1,
      cmdSN: 5,
    });
  });

  it('Login Response, final, with a TSIH (§11.13)', () => {
    const text = Buffer.from('MaxRecvDataSegmentLength=262144\0');
    const bhs = hex`
      23 87 00 00 // opcode 0x23, T=1 CSG=1 NSG=3, Version-max 0, Version-active 0
      00 ${text.length.toString(16).padStart(6, '0')}
      023d00010000 0007 // ISID, TSIH = 7
      00000001    // ITT
      00000000    // reserved
      00000001    // StatSN
      00000005    // ExpCmdSN
      00000084    // MaxCmdSN
      00 00       // Status-Class, Status-Detail: success
      00000000000000000000 // reserved
    `;
    roundTrip(bhs, text, decodeLoginResponse, encodeLoginResponse, {
      kind: 'login-response',
      transit: true,
      csg: 1,
      nsg: 3,
      tsih: 7,
      statusClass: 0,
      statusDetail: 0,
    });
  });

  it('Text Request and Response (§11.10, §11.11)', () => {
    const text = Buffer.from('SendTargets=All\0');
    const req = hex`
      44 80 0000 00 ${text.length.toString(16).padStart(6, '0')} // I=1 Text Request, F=1
      0000000000000000 00000002 ffffffff 00000001 00000001
      00000000000000000000000000000000
    `;
    roundTrip(req, text, decodeTextRequest, encodeTextRequest, { kind: 'text-request', final: true, ttt: 0xffffffff });
    const answer = Buffer.from('TargetName=iqn.2026-11.io.s3tgt:disk0\0TargetAddress=127.0.0.1:3260,1\0');
    const resp = hex`
      24 80 0000 00 ${answer.length.toString(16).padStart(6, '0')}
      0000000000000000 00000002 ffffffff 00000002 00000001 00000080
      000000000000000000000000
    `;
    roundTrip(resp, answer, decodeTextResponse, encodeTextResponse, { kind: 'text-response', final: true, statSN: 2 });
  });

  it('NOP-Out ping and NOP-In reply echo the ping data (§11.18, §11.19)', () => {
    const ping = Buffer.from('ping');
    const out = hex`
      40 80 0000 00 000004 // I=1 NOP-Out, 4 bytes of ping data
      0000000000000000 00000005 ffffffff 00000003 00000002
      00000000000000000000000000000000
    `;
    roundTrip(out, ping, decodeNopOut, encodeNopOut, { kind: 'nop-out', itt: 5, ttt: 0xffffffff });
    const nopIn = hex`
      20 80 0000 00 000004
      0000000000000000 00000005 ffffffff 00000009 00000003 00000082
      000000000000000000000000
    `;
    roundTrip(nopIn, ping, decodeNopIn, encodeNopIn, { kind: 'nop-in', itt: 5, statSN: 9 });
  });

  it('Task Management request and response (§11.5, §11.6)', () => {
    const req = hex`
      42 81 0000 00 000000 // I=1 TMF, F=1 function 1 ABORT TASK
      0000000000000000 // LUN
      00000020 // ITT
      00000011 // Referenced Task Tag
      00000009 00000004 00000008 00000000 // CmdSN, ExpStatSN, RefCmdSN, ExpDataSN
      0000000000000000
    `;
    roundTrip(req, Buffer.alloc(0), decodeTaskMgmtRequest, encodeTaskMgmtRequest, {
      kind: 'task-mgmt-request',
      func: 1,
      referencedTaskTag: 0x11,
      refCmdSN: 8,
    });
    const resp = hex`
      22 80 01 00 00 000000 // TMF response: Task does not exist
      0000000000000000 00000020 00000000 0000000a 00000009 00000088
      000000000000000000000000
    `;
    roundTrip(resp, Buffer.alloc(0), decodeTaskMgmtResponse, encodeTaskMgmtResponse, { kind: 'task-mgmt-response', response: 1 });
  });

  it('Logout request and response (§11.14, §11.15)', () => {
    const req = hex`
      46 80 0000 00 000000 // I=1 Logout, reason 0 close session
      0000000000000000 00000030 0001 0000 0000000b 00000006
      00000000000000000000000000000000
    `;
    roundTrip(req, Buffer.alloc(0), decodeLogoutRequest, encodeLogoutRequest, { kind: 'logout-request', reason: 0, cid: 1 });
    const resp = hex`
      26 80 00 00 00 000000
      0000000000000000 00000030 00000000 00000006 0000000b 0000008a
      00000000 0002 0000 00000000 // reserved, Time2Wait 2, Time2Retain 0
    `;
    roundTrip(resp, Buffer.alloc(0), decodeLogoutResponse, encodeLogoutResponse, { kind: 'logout-response', time2Wait: 2 });
  });

  it('Reject carries the rejected header (§11.17) and Async Message asks for logout (§11.9)', () => {
    const rejected = Buffer.alloc(48, 0x5a);
    const rej = hex`
      3f 80 04 00 00 000030 // Reject, reason 0x04 protocol error, 48 bytes of data
      0000000000000000 ffffffff 00000000 00000003 00000004 00000083 00000000
      0000000000000000
    `;
    roundTrip(rej, rejected, decodeReject, encodeReject, { kind: 'reject', reason: 4 });
    const asyncMsg = hex`
      32 80 0000 00 000000
      0000000000000000 ffffffff 00000000 00000007 00000004 00000083
      01 00 0000 0000 000a // AsyncEvent 1 (request logout), Parameter3 = 10 s
      00000000
    `;
    roundTrip(asyncMsg, Buffer.alloc(0), decodeAsyncMessage, encodeAsyncMessage, { kind: 'async-message', event: 1, param3: 10 });
  });

  it('SNACK Request decodes (we reject it at ERL 0)', () => {
    const bhs = hex`
      10 81 0000 00 000000 // SNACK, type 1 (status)
      0000000000000000 ffffffff ffffffff 00000000 00000004 0000000000000000 00000005 00000001
    `;
    roundTrip(bhs, Buffer.alloc(0), decodeSnackRequest, encodeSnackRequest, { kind: 'snack-request', type: 1, begRun: 5, runLength: 1 });
  });

  it('rejects an unknown opcode with a typed error', () => {
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x1c;
    assert.throws(() => decodeInitiatorPdu(frame(bhs)), { code: 'ISCSI_ERR_BAD_OPCODE' });
  });
});
