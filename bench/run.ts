import * as os from 'node:os';
import { Rgw } from '../test/harness/rgw';
import { type S3PathResult, s3PathBench } from './s3-path';

/**
 * `make bench`: every benchmark in one run, side by side with its reference, printing the
 * figures and the ratios. Set BENCH_QUICK=1 for a short smoke run.
 */
async function main(): Promise<void> {
  process.env.S3TGT_LOG_LEVEL ??= 'warn';
  const quick = process.env.BENCH_QUICK === '1';
  const cpu = os.cpus()[0]?.model ?? 'cpu';
  console.log(`# s3tgt benchmarks — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${cpu}), Node ${process.version}`);
  const rgw = await Rgw.start();
  try {
    const rows: S3PathResult[] = [];
    for (const latencyMs of [0]) {
      rows.push(await s3PathBench(rgw, { mib: quick ? 64 : 512, concurrency: 16, latencyMs, randomWrites: quick ? 2000 : 10000 }));
    }
    console.log('\n## S3 path (Ceph RGW on this machine; 1 MiB sequential, QD 16)');
    console.log(
      '| S3 latency | raw SDK PUT | s3tgt write (to SYNC CACHE) | ratio | raw SDK GET | s3tgt read (cold) | ratio | s3tgt 4 KiB random write, QD32 |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| +${r.latencyMs} ms | ${r.rawPut.toFixed(0)} MiB/s | ${r.targetWrite.toFixed(0)} MiB/s | ${(r.targetWrite / r.rawPut).toFixed(2)} | ${r.rawGet.toFixed(0)} MiB/s | ${r.targetRead.toFixed(0)} MiB/s | ${(r.targetRead / r.rawGet).toFixed(2)} | ${r.randomWriteIops.toFixed(0)} IOPS |`,
      );
    }
  } finally {
    await rgw.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
