/**
 * RFC 7143 §11.17.1: Reject reasons. A peer that breaks the protocol gets one of these (or, when
 * the stream can no longer be trusted, a closed connection).
 */
export const RejectReason = {
  DataDigestError: 0x02,
  SnackReject: 0x03,
  ProtocolError: 0x04,
  CommandNotSupported: 0x05,
  ImmediateCommandReject: 0x06,
  TaskInProgress: 0x07,
  InvalidDataAck: 0x08,
  InvalidPduField: 0x09,
  LongOpReject: 0x0a,
  WaitingForLogout: 0x0c,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

export type PduErrorCode =
  | 'ISCSI_ERR_BAD_OPCODE'
  | 'ISCSI_ERR_DATA_TOO_LONG'
  | 'ISCSI_ERR_AHS'
  | 'ISCSI_ERR_HEADER_DIGEST'
  | 'ISCSI_ERR_DATA_DIGEST'
  | 'ISCSI_ERR_UNEXPECTED_DATA'
  | 'ISCSI_ERR_FIELD'
  | 'ISCSI_ERR_SEQUENCE'
  | 'ISCSI_ERR_TEXT';

/**
 * The peer sent something the protocol forbids. `reject` says which Reject reason to answer
 * with; `fatal` means the byte stream can no longer be trusted and the connection must close
 * (RFC 7143 §7.8: without markers a bad header cannot be skipped reliably).
 */
export class PduError extends Error {
  readonly reject: RejectReason;
  readonly fatal: boolean;
  /** The offending header, echoed in the Reject PDU's data segment. */
  header: Buffer | undefined;
  constructor(
    readonly code: PduErrorCode,
    message: string,
    reject: RejectReason = RejectReason.ProtocolError,
    fatal = false,
  ) {
    super(message);
    this.name = 'PduError';
    this.reject = reject;
    this.fatal = fatal;
  }
}
