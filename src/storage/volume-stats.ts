import { LatencyHistogram } from '../util/histogram';

/**
 * Counters a volume keeps about itself; the metrics module reads them (pull), so the data path
 * does not depend on the metrics library.
 */
export class VolumeStats {
  bytesRead = 0;
  bytesWritten = 0;
  bytesDiscarded = 0;
  cacheHits = 0;
  cacheMisses = 0;
  holeReads = 0;
  baseFetches = 0;
  readAheadChunks = 0;
  /** Chunks a sequential reader had read, evicted for the next chunk of its stream (Writeback's STREAMED_CHUNKS). */
  streamedEvictions = 0;
  chunksUploaded = 0;
  bytesUploaded = 0;
  /** Chunks deallocated: deleted, or (conditional writes) replaced by a hole marker. */
  chunksDeleted = 0;
  /** Chunks made by a server-side copy (EXTENDED COPY, ODX): no data passed through us. */
  chunksCopied = 0;
  bytesCopiedServerSide = 0;
  /**
   * Conditional chunk writes (a cluster): HEADs a PUT needed first or after a 412, 412s that
   * were our own PUT landing (an answer lost, repeated), and 412s that were another server's
   * write (each fences the LUN).
   */
  conditionalHeads = 0;
  conditionalRepeats = 0;
  writeConflicts = 0;
  /** Chunks found written by a deposed predecessor after this holder took the LUN (written over). */
  lateForeignWrites = 0;
  flushErrors = 0;
  checksumErrors = 0;
  backPressureWaits = 0;
  /** Dirty chunks evicted from RAM to the journal, and read back from it. */
  journalSpills = 0;
  journalRestores = 0;
  /** Time to upload (or delete) one dirty chunk, seconds. */
  readonly flushLatency = new LatencyHistogram();
}
