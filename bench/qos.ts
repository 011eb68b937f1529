import { Rng } from '../test/fuzz/rng';
import { FaultProxy } from '../test/harness/fault-proxy';
import type { Rgw } from '../test/harness/rgw';
import { s3Target } from '../test/harness/s3-target';
import { TEST_IQN } from '../test/harness/target';
import { read16, write16 } from '../test/lib/cdb';
import { Pipeline } from '../test/lib/pipeline';
import { BURSTS, quantile, SYNCHRONIZE_CACHE_16 } from './lib/pipeline';

const MiB = 1024 * 1024;

export interface Latencies {
  readonly reads: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The mean time of s3tgt's GET requests meanwhile (its store latency metric): S3's share. */
  getMs?: number;
}

export interface QosResult {
  readonly latencyMs: number;
  readonly dirtyMiB: number;
  readonly drain: QosDrain;
  /** Dirty cache when the reads began (MiB): the background write-back starts during the fill. */
  readonly dirtyAtStartMiB: number;
  readonly idle: Latencies;
  readonly draining: Latencies;
  /** How long the drain took from the start of the reads, and how much of it the reads overlapped (s). */
  readonly drainSeconds: number;
  readonly overlapSeconds: number;
}

/** Random 4 KiB reads over [base, base + span) at queue depth `qd` until `stop()` or `max` reads; each read's latency. */
async function timedReads(p: Pipeline, base: number, span: number, qd: number, seed: number, stop: () => boolean, max: number): Promise<Latencies> {
  const rng = new Rng(seed);
  const lat: number[] = [];
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < max && !stop()) {
      issued++;
      const lba = BigInt((base + rng.int(span / 4096) * 4096) / 512);
      const t0 = performance.now();
      const r = await p.run(read16(lba, 8), { read: 4096 });
      if (r.status !== 0) throw new Error(`read failed with status ${r.status}`);
      lat.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: qd }, worker));
  const s = lat.sort((a, b) => a - b);
  return { reads: s.length, p50Ms: quantile(s, 0.5), p99Ms: quantile(s, 0.99) };
}

/** Sequential 256 KiB writes (one immediate-data PDU each) of [base, base + bytes) at QD 16 (no SYNCHRONIZE CACHE). */
async function fill(p: Pipeline, base: number, bytes: number, byte: number): Promise<void> {
  const size = 256 * 1024;
  const data = Buffer.alloc(size, byte);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bytes) {
      const at = base + next;
      next += size;
      const r = await p.run(write16(BigInt(at / 512), size / 512), { write: data });
      if (r.status !== 0) throw new Error(`write failed with status ${r.status}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

/**
 * What drains the dirty cache: the background write-back (flushDelay 30 s: it starts after
 * the fill), or a SYNCHRONIZE CACHE on a second session (flushDelay 1 h: nothing is uploaded
 * before it).
 */
export type QosDrain = 'background' | 'sync';

/**
 * Issue 18's read QoS rows: cold random 4 KiB reads (QD 8) of data in S3, first with the LUN
 * idle, then while `dirtyMiB` of dirty cache drains to S3, through a proxy adding `latencyMs`
 * to every S3 request. s3backer's users wait seconds for reads behind uploads (its issue #132);
 * the goal is p99 at most twice the idle one.
 */
export async function qosBench(rgw: Rgw, opts: { latencyMs: number; dirtyMiB: number; coldMiB: number; drain: QosDrain }): Promise<QosResult> {
  const bucket = `qos-${opts.drain}-${opts.latencyMs}-${Date.now()}`;
  await rgw.createBucket(bucket);
  const proxy = new FaultProxy(rgw.port);
  await proxy.start();
  proxy.set({ latencyMs: opts.latencyMs });
  const cold = opts.coldMiB * MiB;
  const dirty = opts.dirtyMiB * MiB;
  // The cache is over twice the dirty data: at half full the flusher would upload everything
  // (during the fill). With a SYNCHRONIZE CACHE the dirty data stays in RAM until it
  // (flushDelay 1 h); the background write-back starts 30 s after a chunk's last write (the
  // fill takes about 20 s here), and the reads start with its first upload. The drain is the
  // only upload traffic meanwhile.
  const t = s3Target(rgw, {
    bucket,
    endpoint: proxy.endpoint,
    size: `${Math.ceil((2 * cold + dirty) / MiB / 1024) + 1}GiB`,
    cache: `{ size: ${2 * opts.dirtyMiB + 256}MiB, mode: write-back, flushDelay: ${opts.drain === 'sync' ? '1h' : '30s'} }`,
    logLevel: 'warn',
  });
  try {
    await t.start(120_000);
    // Two halves of cold data in S3 (one for the idle reads, one for the reads during the
    // drain: a read keeps its 64 KiB segment), then a restart: nothing of them is cached.
    let p = await Pipeline.login(t.port, TEST_IQN, BURSTS);
    await fill(p, 0, 2 * cold, 0x11);
    if ((await p.run(SYNCHRONIZE_CACHE_16)).status !== 0) throw new Error('SYNCHRONIZE CACHE failed');
    p.close();
    await t.stop();
    await t.start(120_000);
    p = await Pipeline.login(t.port, TEST_IQN, BURSTS);
    const gets = async (): Promise<[number, number]> => [
      await t.metric('s3tgt_store_request_seconds_sum{op="get"}'),
      await t.metric('s3tgt_store_request_seconds_count{op="get"}'),
    ];
    const meanMs = (a: [number, number], b: [number, number]): number => (1000 * (b[0] - a[0])) / (b[1] - a[1]);
    let g0 = await gets();
    const idle = await timedReads(p, 0, cold, 8, 1, () => false, 2_000);
    idle.getMs = meanMs(g0, await gets());
    await fill(p, 2 * cold, dirty, 0x22);
    const filled = await t.metric('s3tgt_cache_dirty_bytes');
    if (opts.drain === 'background') await until(t, (d) => d < filled);
    const dirtyAtStart = await t.metric('s3tgt_cache_dirty_bytes');
    const syncer = await Pipeline.login(t.port, TEST_IQN, BURSTS, Buffer.from('400000000002', 'hex'));
    const t0 = performance.now();
    let drained = 0;
    const sync =
      opts.drain === 'sync'
        ? syncer.run(SYNCHRONIZE_CACHE_16).then((r) => {
            drained = performance.now();
            if (r.status !== 0) throw new Error(`SYNCHRONIZE CACHE failed with status ${r.status}`);
          })
        : until(t, (d) => d === 0).then(() => {
            drained = performance.now();
          });
    g0 = await gets();
    // As many reads as idle, over as many segments (a read keeps its segment: later reads hit more).
    const draining = await timedReads(p, cold, cold, 8, 2, () => drained > 0, 2_000);
    draining.getMs = meanMs(g0, await gets());
    const readsEnd = performance.now();
    await sync;
    p.close();
    syncer.close();
    return {
      latencyMs: opts.latencyMs,
      dirtyMiB: opts.dirtyMiB,
      drain: opts.drain,
      dirtyAtStartMiB: dirtyAtStart / MiB,
      idle,
      draining,
      drainSeconds: (drained - t0) / 1000,
      overlapSeconds: (Math.min(readsEnd, drained) - t0) / 1000,
    };
  } catch (e) {
    throw new Error(`${(e as Error).stack}\n${t.output.slice(-3000)}`);
  } finally {
    await t.stop();
    await proxy.stop();
  }
}

/** Polls the LUN's dirty bytes (every 100 ms, at most 10 min) until `ok` holds. */
async function until(t: { metric(selector: string): Promise<number> }, ok: (dirtyBytes: number) => boolean): Promise<void> {
  const end = performance.now() + 600_000;
  while (!ok(await t.metric('s3tgt_cache_dirty_bytes'))) {
    if (performance.now() > end) throw new Error('the write-back did not get there within 10 min');
    await new Promise((r) => setTimeout(r, 100));
  }
}
