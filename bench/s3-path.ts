import { FaultProxy } from '../test/harness/fault-proxy';
import type { Rgw } from '../test/harness/rgw';
import { peakRssMiB } from '../test/harness/rss';
import { s3Target } from '../test/harness/s3-target';
import { type TargetProcess, TEST_IQN } from '../test/harness/target';
import { randomIo } from './lib/pipeline';
import { qemuBench } from './lib/qemu';
import { rawPutGet } from './lib/raw-s3';

export interface S3PathResult {
  readonly latencyMs: number;
  readonly concurrency: number;
  readonly mib: number;
  readonly rawPut: number;
  readonly rawGet: number;
  readonly targetWrite: number;
  readonly targetRead: number;
  readonly rawRandomGetIops: number;
  readonly randomReadIops: number;
  /** Share of the random reads s3tgt answered from its cache (segments kept by earlier misses). */
  readonly randomReadHits: number;
  readonly randomWriteIops: number;
  /** Peak RSS of the s3tgt process over the run (after the random writes). */
  readonly peakRssMiB: number;
}

/**
 * The S3 path: sequential 1 MiB-aligned writes and reads through s3tgt (qemu-img bench, the
 * write timed until SYNCHRONIZE CACHE returns, the read from a cold cache) against the raw
 * AWS SDK doing PUT/GET of 1 MiB objects at the same concurrency, on the same RGW, in one run;
 * plus 4 KiB random reads at QD32 from a cold cache against raw 4 KiB ranged GETs, and 4 KiB
 * random writes at QD32 (with the final SYNCHRONIZE CACHE). With `latencyMs` both
 * go through a proxy that adds that much latency to every S3 request.
 */
export async function s3PathBench(
  rgw: Rgw,
  opts: { mib: number; concurrency: number; latencyMs: number; randomReads: number; randomWrites: number },
): Promise<S3PathResult> {
  const bucket = `bench-${opts.latencyMs}ms-${Date.now()}`;
  await rgw.createBucket(bucket);
  // The proxy (a Node HTTP proxy, itself CPU on this machine) only when latency is injected.
  const proxy = opts.latencyMs > 0 ? new FaultProxy(rgw.port) : undefined;
  await proxy?.start();
  proxy?.set({ latencyMs: opts.latencyMs });
  const endpoint = proxy?.endpoint ?? rgw.endpoint;
  try {
    // Warm the gateway (bucket index, connections) so neither side pays for a cold start.
    await rawPutGet(
      { endpoint, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, bucket },
      { objects: 64, size: 1048576, concurrency: opts.concurrency, contentMd5: false },
    );
    const raw = await rawPutGet(
      { endpoint, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, bucket },
      { objects: opts.mib, size: 1048576, concurrency: opts.concurrency, contentMd5: false, randomGets: opts.randomReads },
    );
    const target = s3Target(rgw, {
      bucket,
      endpoint,
      size: '4GiB',
      cache: '{ size: 256MiB, flushDelay: 200ms }',
      // The production lease timing (the test harness shortens it for kill-and-restart tests).
      lease: '{ ttl: 20s, renewInterval: 3s }',
      logLevel: 'warn',
    });
    await target.start();
    try {
      const count = String(opts.mib);
      const base = ['-t', 'writeback', '-s', '1M', '-d', String(opts.concurrency), '-c', count];
      const writeS = await qemuBench(target.url(0), ['-w', ...base, '--flush-interval', count, '--pattern', '0xa5']);
      await target.stop();
      await target.start();
      const readS = await qemuBench(target.url(0), base);
      // Cold again: random 4 KiB reads of the data just written (a miss reads one 64 KiB
      // CRC32C segment with a ranged GET).
      await target.stop();
      await target.start();
      const readIops = await randomIo(target.port, TEST_IQN, { kind: 'read', count: opts.randomReads, qd: 32, spanBytes: opts.mib * 1048576 });
      const readHits = await cacheHitShare(target);
      const iops = await randomIo(target.port, TEST_IQN, { kind: 'write', count: opts.randomWrites, qd: 32, spanBytes: 1024 * 1048576 });
      return {
        latencyMs: opts.latencyMs,
        concurrency: opts.concurrency,
        mib: opts.mib,
        rawPut: raw.putMiBs,
        rawGet: raw.getMiBs,
        targetWrite: opts.mib / writeS,
        targetRead: opts.mib / readS,
        rawRandomGetIops: raw.randomGetIops,
        randomReadIops: readIops,
        randomReadHits: readHits,
        randomWriteIops: iops,
        peakRssMiB: peakRssMiB(target.proc?.pid ?? 0),
      };
    } finally {
      await target.stop();
    }
  } finally {
    await proxy?.stop();
  }
}

/** Cache hits / (hits + misses) of the target's LUN 0, from its metrics endpoint. */
async function cacheHitShare(target: TargetProcess): Promise<number> {
  const hits = await target.metric('s3tgt_cache_hits_total');
  return hits / Math.max(1, hits + (await target.metric('s3tgt_cache_misses_total')));
}
