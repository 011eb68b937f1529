import { readFileSync } from 'node:fs';

/** Peak resident set of a process (VmHWM from /proc), MiB; NaN when it cannot be read. */
export function peakRssMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
