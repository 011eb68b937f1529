/**
 * A fixed-bucket latency histogram the data path updates in a few nanoseconds, without
 * depending on the metrics library (src/metrics exports it to Prometheus). Buckets are upper
 * bounds in seconds, Prometheus style: counts[i] = observations <= BUCKETS[i], not cumulative.
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export class LatencyHistogram {
  /** One count per bucket plus the +Inf bucket. */
  readonly counts: number[] = new Array(LATENCY_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let lo = 0;
    let hi = LATENCY_BUCKETS.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seconds <= LATENCY_BUCKETS[mid]) hi = mid;
      else lo = mid + 1;
    }
    this.counts[lo]++;
    this.sum += seconds;
    this.count++;
  }
}

/** A histogram per key, created on first use. */
export class HistogramMap<K> {
  readonly map = new Map<K, LatencyHistogram>();

  observe(key: K, seconds: number): void {
    let h = this.map.get(key);
    if (!h) {
      h = new LatencyHistogram();
      this.map.set(key, h);
    }
    h.observe(seconds);
  }
}
