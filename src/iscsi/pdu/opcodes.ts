// RFC 7143 §11.2.1.2: opcodes. Initiator opcodes are 0x00-0x1f, target opcodes 0x20-0x3f.
export const Op = {
  NopOut: 0x00,
  ScsiCommand: 0x01,
  TaskMgmtRequest: 0x02,
  LoginRequest: 0x03,
  TextRequest: 0x04,
  DataOut: 0x05,
  LogoutRequest: 0x06,
  SnackRequest: 0x10,
  NopIn: 0x20,
  ScsiResponse: 0x21,
  TaskMgmtResponse: 0x22,
  LoginResponse: 0x23,
  TextResponse: 0x24,
  DataIn: 0x25,
  LogoutResponse: 0x26,
  R2T: 0x31,
  AsyncMessage: 0x32,
  Reject: 0x3f,
} as const;
export type Opcode = (typeof Op)[keyof typeof Op];

/** The reserved tag value (RFC 7143 §11.18.3, §11.19.2). */
export const RESERVED_TAG = 0xffffffff;
