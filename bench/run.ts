import * as os from 'node:os';
import { Rgw } from '../test/harness/rgw';
import { protocolPathBench } from './protocol-path';
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
  const only = process.env.BENCH_ONLY ?? 'protocol,s3';
  if (only.includes('protocol')) {
    const p = await protocolPathBench({ quick });
    console.log('\n## Protocol path (1 GiB LUN in RAM: tgtd file on tmpfs; s3tgt chunk store on tmpfs with a 1 GiB cache)');
    console.log('| workload | tgt 1.0.85 | s3tgt | ratio |');
    console.log('|---|---|---|---|');
    for (const r of p.rows) {
      console.log(`| ${r.workload} | ${r.tgt.toFixed(0)} ${r.unit} | ${r.s3tgt.toFixed(0)} ${r.unit} | ${(r.s3tgt / r.tgt).toFixed(2)} |`);
    }
    console.log(`\nPeak RSS: s3tgt ${p.s3tgtPeakRssMiB.toFixed(0)} MiB (1 GiB chunk cache, full), tgtd ${p.tgtPeakRssMiB.toFixed(0)} MiB.`);
  }
  if (!only.includes('s3')) return;
  const rgw = await Rgw.start();
  try {
    const rows: S3PathResult[] = [];
    for (const latencyMs of [0, 20]) {
      rows.push(await s3PathBench(rgw, { mib: quick ? 64 : 512, concurrency: 16, latencyMs, randomWrites: quick ? 2000 : 10000 }));
    }
    console.log('\n## S3 path (Ceph RGW on this machine; 1 MiB sequential, QD 16; +20 ms through a latency proxy)');
    console.log(
      '| S3 latency | raw SDK PUT | s3tgt write (to SYNC CACHE) | ratio | raw SDK GET | s3tgt read (cold) | ratio | s3tgt 4 KiB random write, QD32 | s3tgt peak RSS |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| +${r.latencyMs} ms | ${r.rawPut.toFixed(0)} MiB/s | ${r.targetWrite.toFixed(0)} MiB/s | ${(r.targetWrite / r.rawPut).toFixed(2)} | ${r.rawGet.toFixed(0)} MiB/s | ${r.targetRead.toFixed(0)} MiB/s | ${(r.targetRead / r.rawGet).toFixed(2)} | ${r.randomWriteIops.toFixed(0)} IOPS | ${r.peakRssMiB.toFixed(0)} MiB |`,
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
