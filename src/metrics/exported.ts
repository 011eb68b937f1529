import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS, type LatencyHistogram } from '../util/histogram';

/**
 * Adapters from the counters the layers keep about themselves (plain numbers and
 * LatencyHistograms, read at scrape time) to prom-client metrics. The data path never calls
 * the metrics library; a scrape reads what is there.
 */
type Labels = Record<string, string | number>;

export function pulledCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Iterable<[Labels, number]>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.inc(labels, v);
    },
  });
}

export function pulledGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Iterable<[Labels, number]>,
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.set(labels, v);
    },
  });
}

interface ExportedValue {
  readonly metricName: string;
  readonly labels: Labels;
  readonly value: number;
}

/**
 * A Prometheus histogram whose buckets come from LatencyHistograms (same bucket bounds), so
 * the data path pays a binary search per observation instead of prom-client's label hashing.
 * prom-client 15's Registry renders a histogram from its getForPromString() (lib/registry.js);
 * this class answers it from our buckets. The version is pinned in package.json and
 * test/unit/metrics.test.ts checks the exposition.
 */
class ExportedHistogram extends Histogram<string> {
  private readonly metric: string;
  private readonly helpText: string;

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly read: () => Iterable<[Labels, LatencyHistogram]>,
  ) {
    super({ name, help, labelNames, buckets: [...LATENCY_BUCKETS], registers: [registry] });
    this.metric = name;
    this.helpText = help;
  }

  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    for (const [labels, h] of this.read()) {
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += h.counts[i];
        values.push({ metricName: `${this.metric}_bucket`, labels: { ...labels, le }, value: cumulative });
      });
      values.push({ metricName: `${this.metric}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${this.metric}_sum`, labels, value: h.sum });
      values.push({ metricName: `${this.metric}_count`, labels, value: h.count });
    }
    return { name: this.metric, help: this.helpText, type: 'histogram', aggregator: 'sum', values };
  }
}

export function pulledHistogram(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Iterable<[Labels, LatencyHistogram]>,
): void {
  new ExportedHistogram(registry, name, help, labelNames, read);
}
