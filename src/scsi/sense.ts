/** SPC-5 §4.4.8 Table 52: sense keys. */
export const SenseKey = {
  NoSense: 0x0,
  RecoveredError: 0x1,
  NotReady: 0x2,
  MediumError: 0x3,
  HardwareError: 0x4,
  IllegalRequest: 0x5,
  UnitAttention: 0x6,
  DataProtect: 0x7,
  AbortedCommand: 0xb,
  Miscompare: 0xe,
  CopyAborted: 0xa,
} as const;

interface SenseCode {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
}

/**
 * THE sense table: every reason a command can fail, with its sense key and additional sense
 * code (SPC-5 Annex F). Command code returns a reason; only `buildSense` writes sense bytes.
 */
export const SENSE_TABLE = {
  // ILLEGAL REQUEST
  InvalidOpcode: { key: SenseKey.IllegalRequest, asc: 0x20, ascq: 0x00 },
  LbaOutOfRange: { key: SenseKey.IllegalRequest, asc: 0x21, ascq: 0x00 },
  InvalidFieldInCdb: { key: SenseKey.IllegalRequest, asc: 0x24, ascq: 0x00 },
  LunNotSupported: { key: SenseKey.IllegalRequest, asc: 0x25, ascq: 0x00 },
  InvalidFieldInParameterList: { key: SenseKey.IllegalRequest, asc: 0x26, ascq: 0x00 },
  ParameterValueInvalid: { key: SenseKey.IllegalRequest, asc: 0x26, ascq: 0x02 },
  InvalidReleaseOfPersistentReservation: { key: SenseKey.IllegalRequest, asc: 0x26, ascq: 0x04 },
  ParameterListLengthError: { key: SenseKey.IllegalRequest, asc: 0x1a, ascq: 0x00 },
  InvalidFieldInInformationUnit: { key: SenseKey.IllegalRequest, asc: 0x0e, ascq: 0x03 },
  SavingParametersNotSupported: { key: SenseKey.IllegalRequest, asc: 0x39, ascq: 0x00 },
  InsufficientRegistrationResources: { key: SenseKey.IllegalRequest, asc: 0x55, ascq: 0x04 },
  MediumRemovalPrevented: { key: SenseKey.IllegalRequest, asc: 0x53, ascq: 0x02 },
  // UNIT ATTENTION
  PowerOnResetOccurred: { key: SenseKey.UnitAttention, asc: 0x29, ascq: 0x00 },
  BusDeviceResetOccurred: { key: SenseKey.UnitAttention, asc: 0x29, ascq: 0x03 },
  ITNexusLossOccurred: { key: SenseKey.UnitAttention, asc: 0x29, ascq: 0x07 },
  ModeParametersChanged: { key: SenseKey.UnitAttention, asc: 0x2a, ascq: 0x01 },
  ReservationsPreempted: { key: SenseKey.UnitAttention, asc: 0x2a, ascq: 0x03 },
  ReservationsReleased: { key: SenseKey.UnitAttention, asc: 0x2a, ascq: 0x04 },
  RegistrationsPreempted: { key: SenseKey.UnitAttention, asc: 0x2a, ascq: 0x05 },
  CapacityDataChanged: { key: SenseKey.UnitAttention, asc: 0x2a, ascq: 0x09 },
  // The LUN's contents were rolled back under the initiator (a forced online restore).
  MediumMayHaveChanged: { key: SenseKey.UnitAttention, asc: 0x28, ascq: 0x00 },
  CommandsClearedByAnotherInitiator: { key: SenseKey.UnitAttention, asc: 0x2f, ascq: 0x00 },
  ReportedLunsDataChanged: { key: SenseKey.UnitAttention, asc: 0x3f, ascq: 0x0e },
  // SPC-5 r20 §5.16.2.6: every implicit ALUA transition, to every I_T nexus (multipath re-reads RTPG).
  AsymmetricAccessStateChanged: { key: SenseKey.UnitAttention, asc: 0x2a, ascq: 0x06 },
  // NOT READY: a transient backend outage. Linux, Windows and ESXi retry 04/01 with a delay, and
  // none of them treats it as a permanent device loss (unlike 05/25/00).
  BackendUnavailable: { key: SenseKey.NotReady, asc: 0x04, ascq: 0x01 },
  // The LUN lost its single-writer lease: it must stop writing until an admin intervenes.
  LeaseLost: { key: SenseKey.NotReady, asc: 0x04, ascq: 0x03 },
  // SPC-5 r20 §5.16.2.4.4 / §5.16.2.4.5: media access through a standby port, or while the
  // LUN moves between nodes. Multipath sends it down the active path, or retries (04/0A).
  LunStandby: { key: SenseKey.NotReady, asc: 0x04, ascq: 0x0b },
  LunTransitioning: { key: SenseKey.NotReady, asc: 0x04, ascq: 0x0a },
  // MEDIUM ERROR
  UnrecoveredReadError: { key: SenseKey.MediumError, asc: 0x11, ascq: 0x00 },
  WriteError: { key: SenseKey.MediumError, asc: 0x0c, ascq: 0x00 },
  // HARDWARE ERROR: our own invariant broke.
  InternalTargetFailure: { key: SenseKey.HardwareError, asc: 0x44, ascq: 0x00 },
  // DATA PROTECT
  WriteProtected: { key: SenseKey.DataProtect, asc: 0x27, ascq: 0x00 },
  SoftwareWriteProtected: { key: SenseKey.DataProtect, asc: 0x27, ascq: 0x02 },
  // ABORTED COMMAND
  DataPhaseError: { key: SenseKey.AbortedCommand, asc: 0x4b, ascq: 0x00 },
  ProtocolServiceCrcError: { key: SenseKey.AbortedCommand, asc: 0x47, ascq: 0x05 },
  // MISCOMPARE
  MiscompareDuringVerify: { key: SenseKey.Miscompare, asc: 0x1d, ascq: 0x00 },
  // EXTENDED COPY parameter list checks (spc4r37 §6.4.3.4, §6.4.3.5, §6.4.5, §6.4.6).
  TooManyTargetDescriptors: { key: SenseKey.IllegalRequest, asc: 0x26, ascq: 0x06 },
  UnsupportedTargetDescriptorType: { key: SenseKey.IllegalRequest, asc: 0x26, ascq: 0x07 },
  TooManySegmentDescriptors: { key: SenseKey.IllegalRequest, asc: 0x26, ascq: 0x08 },
  UnsupportedSegmentDescriptorType: { key: SenseKey.IllegalRequest, asc: 0x26, ascq: 0x09 },
  // A copy with the same LIST IDENTIFIER from the same I_T nexus is still running.
  OperationInProgress: { key: SenseKey.IllegalRequest, asc: 0x00, ascq: 0x16 },
  // COPY ABORTED: a segment names a CSCD descriptor that is absent or matches no logical unit.
  UnreachableCopyTarget: { key: SenseKey.CopyAborted, asc: 0x08, ascq: 0x04 },
  // COPY ABORTED with no more specific code: the segment pointer (sense key specific bytes)
  // names the offending field, e.g. an LBA range beyond the copy target's capacity.
  CopySegmentAborted: { key: SenseKey.CopyAborted, asc: 0x00, ascq: 0x00 },
  // ODX (POPULATE TOKEN / WRITE USING TOKEN), a ROD token that cannot be used (spc4r37 Annex F,
  // ASC 23h). FreeBSD CTL answers an unknown token with 05/23/04; Windows' classpnp takes every
  // 05/23/xx for STATUS_INVALID_TOKEN and stops using the token.
  TokenUnknown: { key: SenseKey.IllegalRequest, asc: 0x23, ascq: 0x04 },
  TokenExpired: { key: SenseKey.IllegalRequest, asc: 0x23, ascq: 0x07 },
  // The data the token represents was written after POPULATE TOKEN (a "change vulnerable"
  // point in time ROD); QNAP's ODX target reports the same for the same cause.
  TokenCancelled: { key: SenseKey.IllegalRequest, asc: 0x23, ascq: 0x08 },
  // WRITE USING TOKEN with DEL_TKN deleted it.
  TokenDeleted: { key: SenseKey.IllegalRequest, asc: 0x23, ascq: 0x09 },
  // WRITE USING TOKEN ranges longer than the ROD holds past BLOCK OFFSET INTO ROD: COPY TARGET
  // DEVICE DATA UNDERRUN, checked before any data moves (classpnp and ddpt expect it with
  // ILLEGAL REQUEST for exactly this condition).
  CopyTargetDataUnderrun: { key: SenseKey.IllegalRequest, asc: 0x0d, ascq: 0x04 },
} as const satisfies Record<string, SenseCode>;

export type SenseReason = keyof typeof SENSE_TABLE;

/** SPC-5 §4.4.2.2: sense-key specific field pointer for INVALID FIELD IN CDB / PARAMETER LIST. */
export interface FieldPointer {
  /** C/D: true when the field is in the CDB, false in the parameter list. */
  readonly inCdb: boolean;
  readonly byte: number;
  readonly bit?: number;
}

export interface SenseDetail {
  /** INFORMATION field (SPC-5 §4.4.2.1): e.g. the offset of a miscompare. */
  readonly information?: bigint;
  readonly field?: FieldPointer;
}

function sksBytes(field: FieldPointer): Buffer {
  const b = Buffer.alloc(3);
  b[0] = 0x80 | (field.inCdb ? 0x40 : 0) | (field.bit !== undefined ? 0x08 | (field.bit & 7) : 0);
  b.writeUInt16BE(field.byte & 0xffff, 1);
  return b;
}

/**
 * Builds sense data: fixed format (SPC-5 §4.4.3) by default, descriptor format (§4.4.2) when
 * the Control mode page has D_SENSE set.
 */
export function buildSense(reason: SenseReason, descriptor: boolean, detail: SenseDetail = {}): Buffer {
  const code = SENSE_TABLE[reason];
  if (descriptor) {
    const parts: Buffer[] = [];
    if (detail.information !== undefined) {
      // §4.4.2.2: information descriptor, type 00h.
      const d = Buffer.alloc(12);
      d[0] = 0x00;
      d[1] = 0x0a;
      d[2] = 0x80;
      d.writeBigUInt64BE(BigInt.asUintN(64, detail.information), 4);
      parts.push(d);
    }
    if (detail.field) {
      // §4.4.2.4: sense key specific descriptor, type 02h.
      const d = Buffer.alloc(8);
      d[0] = 0x02;
      d[1] = 0x06;
      sksBytes(detail.field).copy(d, 4);
      parts.push(d);
    }
    const descriptors = Buffer.concat(parts);
    const head = Buffer.alloc(8);
    head[0] = 0x72;
    head[1] = code.key;
    head[2] = code.asc;
    head[3] = code.ascq;
    head[7] = descriptors.length;
    return Buffer.concat([head, descriptors]);
  }
  const s = Buffer.alloc(18);
  s[0] = 0x70;
  s[2] = code.key;
  if (detail.information !== undefined) {
    // The fixed format INFORMATION field is 4 bytes; VALID only when the value fits.
    if (detail.information <= 0xffffffffn && detail.information >= 0n) {
      s[0] |= 0x80;
      s.writeUInt32BE(Number(detail.information), 3);
    }
  }
  s[7] = 10;
  s[12] = code.asc;
  s[13] = code.ascq;
  if (detail.field) sksBytes(detail.field).copy(s, 15);
  return s;
}

/** The reason a built sense buffer carries (for tests and REQUEST SENSE bookkeeping). */
export function senseCodeOf(sense: Buffer): SenseCode {
  if ((sense[0] & 0x7f) >= 0x72) return { key: sense[1] & 0x0f, asc: sense[2], ascq: sense[3] };
  return { key: sense[2] & 0x0f, asc: sense[12], ascq: sense[13] };
}
