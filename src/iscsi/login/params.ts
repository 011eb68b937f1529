/**
 * Negotiated iSCSI parameters. Session-wide values (RFC 7143 §13, scope SW) and per-connection
 * values (scope CO) are kept apart so a session can outlive a connection.
 */
export interface SessionParams {
  initialR2T: boolean;
  immediateData: boolean;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  errorRecoveryLevel: number;
  maxConnections: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
}

export interface ConnectionParams {
  headerDigest: boolean;
  dataDigest: boolean;
  /** What we accept: our declared MaxRecvDataSegmentLength. */
  maxRecvDataSegmentLength: number;
  /** What we may send: the initiator's declared MaxRecvDataSegmentLength. */
  maxXmitDataSegmentLength: number;
}

/** RFC 7143 §13 defaults: what applies for every key that is never negotiated. */
export const DEFAULT_SESSION_PARAMS: Readonly<SessionParams> = {
  initialR2T: true,
  immediateData: true,
  maxBurstLength: 262144,
  firstBurstLength: 65536,
  maxOutstandingR2T: 1,
  dataPDUInOrder: true,
  dataSequenceInOrder: true,
  errorRecoveryLevel: 0,
  maxConnections: 1,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
};

/** The default MaxRecvDataSegmentLength, which also applies to every login PDU (§13.12). */
export const DEFAULT_MAX_RECV_DSL = 8192;

/** What this target is willing to agree to; the responder side of every negotiation. */
export interface TargetLimits {
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  /** Our preference when the initiator leaves it to us: No lets open-iscsi send unsolicited data. */
  initialR2T: boolean;
  immediateData: boolean;
  /** Digests we accept, in the order we prefer them ("None" and/or "CRC32C"). */
  headerDigests: readonly string[];
  dataDigests: readonly string[];
  defaultTime2Wait: number;
  defaultTime2Retain: number;
}

export const DEFAULT_TARGET_LIMITS: Readonly<TargetLimits> = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 16776192,
  firstBurstLength: 262144,
  maxOutstandingR2T: 16,
  initialR2T: false,
  immediateData: true,
  headerDigests: ['CRC32C', 'None'],
  dataDigests: ['CRC32C', 'None'],
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
};
