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
  chunksUploaded = 0;
  bytesUploaded = 0;
  chunksDeleted = 0;
  /** Chunks made by a server-side copy (EXTENDED COPY, ODX): no data passed through us. */
  chunksCopied = 0;
  bytesCopiedServerSide = 0;
  flushErrors = 0;
  checksumErrors = 0;
  backPressureWaits = 0;
  /** Dirty chunks evicted from RAM to the journal, and read back from it. */
  journalSpills = 0;
  journalRestores = 0;
  /** Time to upload (or delete) one dirty chunk, seconds. */
  readonly flushLatency = new LatencyHistogram();
}
