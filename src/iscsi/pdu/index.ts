import { PduError, RejectReason } from '../errors';
import { type AsyncMessagePdu, decodeAsyncMessage } from './async-message';
import { type DataInPdu, decodeDataIn } from './data-in';
import { type DataOutPdu, decodeDataOut } from './data-out';
import { type Frame, opcodeOf } from './frame';
import { decodeLoginRequest, decodeLoginResponse, type LoginRequestPdu, type LoginResponsePdu } from './login';
import { decodeLogoutRequest, decodeLogoutResponse, type LogoutRequestPdu, type LogoutResponsePdu } from './logout';
import { decodeNopIn, decodeNopOut, type NopInPdu, type NopOutPdu } from './nop';
import { Op } from './opcodes';
import { decodeR2T, type R2TPdu } from './r2t';
import { decodeReject, type RejectPdu } from './reject';
import { decodeScsiCommand, type ScsiCommandPdu } from './scsi-command';
import { decodeScsiResponse, type ScsiResponsePdu } from './scsi-response';
import { decodeSnackRequest, type SnackRequestPdu } from './snack';
import { decodeTaskMgmtRequest, decodeTaskMgmtResponse, type TaskMgmtRequestPdu, type TaskMgmtResponsePdu } from './task-mgmt';
import { decodeTextRequest, decodeTextResponse, type TextRequestPdu, type TextResponsePdu } from './text';

/** Every PDU an initiator may send us (RFC 7143 §11.2.1.2, opcodes 0x00-0x1f). */
export type InitiatorPdu =
  | NopOutPdu
  | ScsiCommandPdu
  | TaskMgmtRequestPdu
  | LoginRequestPdu
  | TextRequestPdu
  | DataOutPdu
  | LogoutRequestPdu
  | SnackRequestPdu;

/** Every PDU a target sends (opcodes 0x20-0x3f); decoded only by tests and the test initiator. */
export type TargetPdu =
  | NopInPdu
  | ScsiResponsePdu
  | TaskMgmtResponsePdu
  | LoginResponsePdu
  | TextResponsePdu
  | DataInPdu
  | LogoutResponsePdu
  | R2TPdu
  | AsyncMessagePdu
  | RejectPdu;

const initiatorDecoders: Readonly<Record<number, (f: Frame) => InitiatorPdu>> = {
  [Op.NopOut]: decodeNopOut,
  [Op.ScsiCommand]: decodeScsiCommand,
  [Op.TaskMgmtRequest]: decodeTaskMgmtRequest,
  [Op.LoginRequest]: decodeLoginRequest,
  [Op.TextRequest]: decodeTextRequest,
  [Op.DataOut]: decodeDataOut,
  [Op.LogoutRequest]: decodeLogoutRequest,
  [Op.SnackRequest]: decodeSnackRequest,
};

const targetDecoders: Readonly<Record<number, (f: Frame) => TargetPdu>> = {
  [Op.NopIn]: decodeNopIn,
  [Op.ScsiResponse]: decodeScsiResponse,
  [Op.TaskMgmtResponse]: decodeTaskMgmtResponse,
  [Op.LoginResponse]: decodeLoginResponse,
  [Op.TextResponse]: decodeTextResponse,
  [Op.DataIn]: decodeDataIn,
  [Op.LogoutResponse]: decodeLogoutResponse,
  [Op.R2T]: decodeR2T,
  [Op.AsyncMessage]: decodeAsyncMessage,
  [Op.Reject]: decodeReject,
};

/** Decodes a PDU received by the target; an unknown opcode is a typed error (Reject 0x05). */
export function decodeInitiatorPdu(frame: Frame): InitiatorPdu {
  const op = opcodeOf(frame.bhs);
  const decode = initiatorDecoders[op];
  if (!decode) {
    throw new PduError('ISCSI_ERR_BAD_OPCODE', `opcode 0x${op.toString(16)} is not an initiator opcode`, RejectReason.CommandNotSupported);
  }
  return decode(frame);
}

export function decodeTargetPdu(frame: Frame): TargetPdu {
  const op = opcodeOf(frame.bhs);
  const decode = targetDecoders[op];
  if (!decode) throw new PduError('ISCSI_ERR_BAD_OPCODE', `opcode 0x${op.toString(16)} is not a target opcode`);
  return decode(frame);
}

export * from './async-message';
export * from './data-in';
export * from './data-out';
export * from './frame';
export * from './login';
export * from './logout';
export * from './nop';
export * from './opcodes';
export * from './r2t';
export * from './reject';
export * from './scsi-command';
export * from './scsi-response';
export * from './snack';
export * from './task-mgmt';
export * from './text';
