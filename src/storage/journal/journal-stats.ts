import { LatencyHistogram } from '../../util/histogram';
import type { CommitStats } from './segment-writer';

/** What the journal's group commits did, for the metrics (pulled at scrape time). */
export class JournalStats {
  commits = 0;
  records = 0;
  bytes = 0;
  /** One fdatasync per commit group, seconds. */
  readonly fsyncLatency = new LatencyHistogram();

  readonly onCommit = (s: CommitStats): void => {
    this.commits++;
    this.records += s.records;
    this.bytes += s.bytes;
    this.fsyncLatency.observe(s.fsyncMs / 1000);
  };
}
