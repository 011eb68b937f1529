import { HistogramMap } from '../util/histogram';

/** Per-LU command counters (pulled by src/metrics): latency per command, outcomes per status. */
export class CommandStats {
  /** command name -> latency from arrival to status, seconds */
  readonly latency = new HistogramMap<string>();
  /** `${command} ${status}` -> count; status is good, check-condition, busy, conflict, ... */
  readonly outcomes = new Map<string, number>();
  aborted = 0;

  record(command: string, status: string, seconds: number): void {
    this.latency.observe(command, seconds);
    const k = `${command} ${status}`;
    this.outcomes.set(k, (this.outcomes.get(k) ?? 0) + 1);
  }
}
