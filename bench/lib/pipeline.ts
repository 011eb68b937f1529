import { Rng } from '../../test/fuzz/rng';
import { read16, write16 } from '../../test/lib/cdb';
import { Pipeline } from '../../test/lib/pipeline';

export const SYNCHRONIZE_CACHE_16 = Buffer.from([0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** Bursts a load generator negotiates: a 64 KiB write goes as immediate data. */
export const BURSTS: Array<[string, string]> = [
  ['FirstBurstLength', '262144'],
  ['MaxBurstLength', '1048576'],
];

/**
 * `count` random 4 KiB reads or writes over the first `spanBytes` of LUN 0 at queue depth `qd`
 * (writes end with SYNCHRONIZE CACHE, inside the time); returns IOPS. The packaged clients do
 * not do random writes against an iscsi:// URL (qemu-img bench is sequential, iscsi-perf
 * reads only), hence test/lib/pipeline.ts.
 */
export async function randomIo(
  port: number,
  target: string,
  opts: { kind: 'read' | 'write'; count: number; qd: number; spanBytes: number; seed?: number },
): Promise<number> {
  const p = await Pipeline.login(port, target, BURSTS);
  // mulberry32: the low bits of the LCG used before cycled through a few hundred 64 KiB
  // segments, so a cache kept them and the random-read row measured cache hits.
  const rng = new Rng(opts.seed ?? 12345);
  const data = Buffer.alloc(4096, 0x5a);
  const slots = opts.spanBytes / 4096;
  const t0 = process.hrtime.bigint();
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < opts.count) {
      issued++;
      const lba = BigInt(rng.int(slots) * 8);
      const r = opts.kind === 'write' ? await p.run(write16(lba, 8), { write: data }) : await p.run(read16(lba, 8), { read: 4096 });
      if (r.status !== 0) throw new Error(`${opts.kind} failed with status ${r.status}`);
    }
  };
  await Promise.all(Array.from({ length: opts.qd }, worker));
  if (opts.kind === 'write') {
    const r = await p.run(SYNCHRONIZE_CACHE_16);
    if (r.status !== 0) throw new Error(`SYNCHRONIZE CACHE failed with status ${r.status}`);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  p.close();
  return opts.count / seconds;
}

export interface TimedWrites {
  readonly iops: number;
  readonly mibs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * Writes for `seconds` at queue depth `qd`: 4 KiB at random over `spanBytes`, or 64 KiB
 * sequentially (wrapping at `spanBytes`); no SYNCHRONIZE CACHE (what is measured is the
 * acknowledgement). Returns IOPS, MiB/s and the p50/p99 of each write's latency.
 */
export async function timedWrites(
  port: number,
  target: string,
  opts: { pattern: 'random-4k' | 'sequential-64k'; qd: number; spanBytes: number; seconds: number },
): Promise<TimedWrites> {
  const p = await Pipeline.login(port, target, BURSTS);
  const size = opts.pattern === 'random-4k' ? 4096 : 65536;
  const data = Buffer.alloc(size, 0x3c);
  const rng = new Rng(4242);
  const slots = opts.spanBytes / size;
  let next = 0;
  const latencies: number[] = [];
  const end = Date.now() + opts.seconds * 1000;
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      const slot = opts.pattern === 'random-4k' ? rng.int(slots) : next++ % slots;
      const started = process.hrtime.bigint();
      const r = await p.run(write16(BigInt((slot * size) / 512), size / 512), { write: data });
      if (r.status !== 0) throw new Error(`write failed with status ${r.status}`);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: opts.qd }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  p.close();
  latencies.sort((a, b) => a - b);
  return {
    iops: latencies.length / seconds,
    mibs: (latencies.length * size) / 1048576 / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  };
}

/** The q-quantile (0..1) of ascending `sorted`; 0 when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}
