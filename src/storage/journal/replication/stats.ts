/** What journal replication counts (metrics: docs/ha.md, "Journal replication"). */
export class ReplicationStats {
  /** Commit groups the peers acknowledged, and their bytes. */
  sentBatches = 0;
  sentBytes = 0;
  /** Commit groups acknowledged with no peer holding them (a link was down; the lease said so first). */
  localOnlyBatches = 0;
  /** Commit groups a peer refused (it had taken one of their LUNs). */
  refusedByPeer = 0;
  /** Receiving side: groups refused, bytes kept, handshakes that failed authentication. */
  refusedBatches = 0;
  receivedBytes = 0;
  authFailures = 0;
  /** Round trip of the last acknowledged group (send to ACK), seconds: the replication lag. */
  lastAckSeconds = 0;
  /** Takeovers whose predecessor's replica was incomplete (writes it acknowledged local-only may be missing). */
  unprotectedTakeovers = 0;
  /** Records applied from a replica at takeovers. */
  replayedRecords = 0;
}
