import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { Rgw } from '../test/harness/rgw';
import { copyBench } from './copy';
import { dataAtRestBench } from './data-at-rest';
import { haJournalBench } from './ha-journal';
import { journalBench } from './journal';
import { multicoreBench } from './multicore';
import { protocolPathBench } from './protocol-path';
import { qosBench } from './qos';
import { type S3PathResult, s3PathBench } from './s3-path';
import { scaleBench } from './scale';

/**
 * `make bench`: every benchmark in one run, side by side with its reference, printing the
 * figures and the ratios. Set BENCH_QUICK=1 for a short smoke run.
 */
async function main(): Promise<void> {
  process.env.S3TGT_LOG_LEVEL ??= 'warn';
  const quick = process.env.BENCH_QUICK === '1';
  const cpu = os.cpus()[0]?.model ?? 'cpu';
  console.log(`# s3tgt benchmarks — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${cpu}), Node ${process.version}`);
  const only = process.env.BENCH_ONLY ?? 'protocol,multicore,s3,journal,copy,ha,scale,qos,codec';
  if (only.includes('protocol')) {
    const p = await protocolPathBench({ quick });
    console.log('\n## Protocol path (1 GiB LUN in RAM: tgtd file on tmpfs; s3tgt chunk store on tmpfs with a 1 GiB cache)');
    const tgtVersion = execFileSync('tgtd', ['--version'], { encoding: 'utf8' }).trim();
    console.log(`| workload | tgt ${tgtVersion} | s3tgt | ratio | CPU s/GiB tgt | CPU s/GiB s3tgt |`);
    console.log('|---|---|---|---|---|---|');
    for (const r of p.rows) {
      console.log(
        `| ${r.workload} | ${r.tgt.toFixed(0)} ${r.unit} | ${r.s3tgt.toFixed(0)} ${r.unit} | ${(r.s3tgt / r.tgt).toFixed(2)} | ` +
          `${r.tgtCpuPerGiB.toFixed(2)} | ${r.s3tgtCpuPerGiB.toFixed(2)} |`,
      );
    }
    console.log(`\nPeak RSS: s3tgt ${p.s3tgtPeakRssMiB.toFixed(0)} MiB (1 GiB chunk cache, full), tgtd ${p.tgtPeakRssMiB.toFixed(0)} MiB.`);
  }
  if (only.includes('multicore')) await printMulticoreBench(quick);
  if (!['s3', 'journal', 'copy', 'ha', 'scale', 'qos', 'codec'].some((k) => only.includes(k))) return;
  const rgw = await Rgw.start();
  try {
    if (only.includes('journal')) await printJournalBench(rgw, quick);
    if (only.includes('copy')) await printCopyBench(rgw, quick);
    if (only.includes('ha')) await printHaJournalBench(rgw, quick);
    if (only.includes('scale')) await printScaleBench(rgw, quick);
    if (only.includes('qos')) await printQosBench(rgw, quick);
    if (only.includes('codec')) await printCodecBench(rgw, quick);
    if (!only.includes('s3')) return;
    const rows: S3PathResult[] = [];
    for (const latencyMs of [0, 20]) {
      rows.push(
        await s3PathBench(rgw, {
          mib: quick ? 64 : 512,
          concurrency: 16,
          latencyMs,
          randomReads: quick ? 2000 : 10000,
          randomWrites: quick ? 2000 : 10000,
        }),
      );
    }
    console.log('\n## S3 path (Ceph RGW on this machine; 1 MiB sequential, QD 16; +20 ms through a latency proxy)');
    console.log('| S3 latency | workload | raw SDK | s3tgt | ratio |');
    console.log('|---|---|---|---|---|');
    // `raw` undefined: S3 has no equivalent (it cannot write 4 KiB into an object).
    const row = (r: S3PathResult, what: string, raw: number | undefined, ours: number, unit: string): void => {
      const ratio = raw === undefined ? 'n/a' : (ours / raw).toFixed(2);
      console.log(
        `| +${r.latencyMs} ms | ${what} | ${raw === undefined ? 'n/a' : `${raw.toFixed(0)} ${unit}`} | ${ours.toFixed(0)} ${unit} | ${ratio} |`,
      );
    };
    for (const r of rows) {
      row(r, '1 MiB sequential write, QD16 (s3tgt: until SYNC CACHE returns)', r.rawPut, r.targetWrite, 'MiB/s');
      row(r, '1 MiB sequential read, QD16, cold cache', r.rawGet, r.targetRead, 'MiB/s');
      row(r, '4 KiB random read, QD32, cold cache (raw: 4 KiB ranged GET)', r.rawRandomGetIops, r.randomReadIops, 'IOPS');
      row(r, '4 KiB random write over 1 GiB, QD32, then SYNC CACHE', undefined, r.randomWriteIops, 'IOPS');
    }
    console.log(
      `\nRandom reads s3tgt answered from its cache (64 KiB segments kept by earlier misses): ${rows.map((r) => `${(100 * r.randomReadHits).toFixed(0)} % at +${r.latencyMs} ms`).join(', ')}.`,
    );
    console.log(`Peak RSS of s3tgt (256 MiB chunk cache): ${rows.map((r) => `${r.peakRssMiB.toFixed(0)} MiB at +${r.latencyMs} ms`).join(', ')}.`);
  } finally {
    await rgw.stop();
  }
}

/**
 * Issue 18's multi-core rows, and the model they give for more cores: a node's CPU per GiB as
 * two nodes measured it, with the initiators on other machines and one node per core.
 */
async function printMulticoreBench(quick: boolean): Promise<void> {
  const rows = await multicoreBench({ quick });
  console.log(
    '\n## Multi-core (two 1 GiB LUNs in RAM, one client per LUN at once; s3tgt: one process, or a two-node cluster with one LUN active on each)',
  );
  console.log(
    '| workload | tgt | s3tgt, 1 process | s3tgt, 2 nodes | 2 nodes / 1 process | 2 nodes / tgt | cores used: tgt, 1, 2 | CPU s/GiB: tgt, 1, 2 |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const f = (c: { figure: number }): string => `${c.figure.toFixed(0)} ${r.unit}`;
    console.log(
      `| ${r.workload} | ${f(r.tgt)} | ${f(r.one)} | ${f(r.two)} | ${(r.two.figure / r.one.figure).toFixed(2)} | ${(r.two.figure / r.tgt.figure).toFixed(2)} | ` +
        `${r.tgt.cores.toFixed(2)}, ${r.one.cores.toFixed(2)}, ${r.two.cores.toFixed(2)} | ${r.tgt.cpuPerGiB.toFixed(2)}, ${r.one.cpuPerGiB.toFixed(2)}, ${r.two.cpuPerGiB.toFixed(2)} |`,
    );
  }
  // A node's CPU per GiB: the two-node figure (processes and clients crowd two cores: an upper
  // bound) and the one-process figure (the cost when a node has its core to itself).
  console.log(
    '\nModel (s3tgt nodes only, one per core, LUNs spread evenly, initiators elsewhere; a node costs the CPU per GiB measured above, the 2-node or the 1-process figure):',
  );
  console.log('| workload | per core | 16 cores | 32 cores |');
  console.log('|---|---|---|---|');
  for (const r of rows) {
    const fmt = (gib: number): string =>
      r.unit === 'IOPS' ? `${((gib * 2 ** 30) / 4096 / 1000).toFixed(0)}k` : `${((gib * 2 ** 30) / 1e6).toFixed(0)}`;
    const [lo, hi] = [r.two.cpuPerGiB, r.one.cpuPerGiB].sort((x, y) => y - x); // the dearer node first
    const range = (cores: number): string => `${fmt(cores / lo)}-${fmt(cores / hi)} ${r.unit}`;
    console.log(`| ${r.workload} | ${range(1)} | ${range(16)} | ${range(32)} |`);
  }
}

/** Issue 19's rows: compression and encryption on the S3 path, each against the plain LUN. */
async function printCodecBench(rgw: Rgw, quick: boolean): Promise<void> {
  const mib = quick ? 64 : 256;
  const rows = await dataAtRestBench(rgw, { mib, randomReads: quick ? 500 : 2000 });
  const plain = rows[0];
  console.log(`\n## Compression and encryption (S3 LUN on RGW, +0 ms; ${mib} MiB, half random and half text; 64 MiB cache)`);
  console.log(
    '| LUN | sequential write, QD16 | / plain | CPU s/GiB | cold sequential read, QD16 | / plain | CPU s/GiB | 4 KiB random read, QD32, cold | / plain | stored in the bucket | / plain |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.variant} | ${r.writeMiBs.toFixed(0)} MiB/s | ${(r.writeMiBs / plain.writeMiBs).toFixed(2)} | ${r.writeCpuPerGiB.toFixed(1)} | ` +
        `${r.readMiBs.toFixed(0)} MiB/s | ${(r.readMiBs / plain.readMiBs).toFixed(2)} | ${r.readCpuPerGiB.toFixed(1)} | ` +
        `${r.randomReadIops.toFixed(0)} IOPS | ${(r.randomReadIops / plain.randomReadIops).toFixed(2)} | ${r.storedMiB.toFixed(0)} MiB | ${(r.storedMiB / plain.storedMiB).toFixed(2)} |`,
    );
  }
}

/** Issue 18's read QoS row: cold random reads, idle and while dirty data drains, at +20 ms. */
async function printQosBench(rgw: Rgw, quick: boolean): Promise<void> {
  const size = { latencyMs: 20, dirtyMiB: quick ? 256 : 2048, coldMiB: quick ? 64 : 256 };
  const runs = [await qosBench(rgw, { ...size, drain: 'background' }), await qosBench(rgw, { ...size, drain: 'sync' })];
  console.log(
    `\n## Read QoS (S3 LUN on RGW at +${size.latencyMs} ms; cold random 4 KiB reads at QD 8, idle and while ${size.dirtyMiB} MiB of dirty cache drains)`,
  );
  console.log('| reads | count | p50 | p99 | p99 / idle p99 (goal ≤ 2) | mean S3 GET |');
  console.log('|---|---|---|---|---|---|');
  for (const r of runs) {
    const row = (what: string, l: typeof r.idle): void => {
      console.log(
        `| ${what} | ${l.reads} | ${l.p50Ms.toFixed(1)} ms | ${l.p99Ms.toFixed(1)} ms | ${(l.p99Ms / r.idle.p99Ms).toFixed(2)} | ${l.getMs?.toFixed(1)} ms |`,
      );
    };
    const by = r.drain === 'sync' ? 'a SYNCHRONIZE CACHE' : 'the background write-back';
    row('idle', r.idle);
    row(
      `while ${by} drains ${r.dirtyAtStartMiB.toFixed(0)} MiB (${r.drainSeconds.toFixed(1)} s; reads overlapped ${r.overlapSeconds.toFixed(1)} s of it)`,
      r.draining,
    );
  }
}

/** Issue 18's scale rows: a login storm (tgt and s3tgt), many big S3 LUNs in one process. */
async function printScaleBench(rgw: Rgw, quick: boolean): Promise<void> {
  const r = await scaleBench(rgw, { quick });
  console.log(`\n## Scale (${r.sessions} sessions logging in at once; ${r.luns} S3 LUNs of ${r.lunSize} in one process on RGW)`);
  console.log('| workload | tgt | s3tgt | goal |');
  console.log('|---|---|---|---|');
  const storm = (s: typeof r.tgt): string =>
    `${s.allSeconds.toFixed(2)} s (slowest session ${s.slowestSeconds.toFixed(2)} s${s.failed ? `, ${s.failed} failed` : ''})`;
  console.log(`| ${r.sessions} sessions: connect, login, READ CAPACITY, all at once | ${storm(r.tgt)} | ${storm(r.s3tgt)} | all within 5 s |`);
  console.log(`| ${r.luns} LUNs of ${r.lunSize}: first start (creates them) to ready | n/a | ${r.createSeconds.toFixed(1)} s | |`);
  console.log(`| ${r.luns} LUNs of ${r.lunSize}: restart (opens them) to ready | n/a | ${r.openSeconds.toFixed(1)} s | under 10 s |`);
  console.log(`| ${r.luns} LUNs of ${r.lunSize}: RSS idle after the restart | n/a | ${r.idleRssMiB.toFixed(0)} MiB | under 400 MiB |`);
}

/** Issue 14's rows: writes in each cache mode, at +0 and +20 ms, with the ratios it sets goals for. */
async function printJournalBench(rgw: Rgw, quick: boolean): Promise<void> {
  const rows = [];
  for (const latencyMs of [0, 20]) rows.push(...(await journalBench(rgw, { latencyMs, seconds: quick ? 3 : 10 })));
  console.log('\n## Writes by cache mode (S3 LUN on RGW, 64 MiB RAM cache, writes over 256 MiB; no SYNCHRONIZE CACHE)');
  console.log(
    '| S3 latency | workload | write-through (WCE=0) | write-back, RAM (WCE=1) | journal (WCE=0) | journal / write-back | journal / write-through |',
  );
  console.log('|---|---|---|---|---|---|---|');
  const cell = (t: { iops: number; p50Ms: number; p99Ms: number }): string =>
    `${t.iops.toFixed(0)} IOPS (p50 ${t.p50Ms.toFixed(1)} / p99 ${t.p99Ms.toFixed(1)} ms)`;
  for (const r of rows) {
    const m = r.byMode;
    const what = r.pattern === 'random-4k' ? '4 KiB random write, QD32' : '64 KiB sequential write, QD16';
    console.log(
      `| +${r.latencyMs} ms | ${what} | ${cell(m['write-through'])} | ${cell(m['write-back'])} | ${cell(m.journal)} | ${(m.journal.iops / m['write-back'].iops).toFixed(2)} | ${(m.journal.iops / m['write-through'].iops).toFixed(1)} |`,
    );
  }
  console.log(
    `\nJournal bytes not yet in S3 when each journal run ended (uploads wait up to journal.uploadDelay, 30 s, unless a chunk settles or the journal is half full): ${rows.map((r) => `${r.journalBacklogMiB.toFixed(0)} MiB`).join(', ')}.`,
  );
}

/** Issue 17's rows: what synchronous journal replication to the other node costs. */
async function printHaJournalBench(rgw: Rgw, quick: boolean): Promise<void> {
  const rows = await haJournalBench(rgw, { seconds: quick ? 3 : 10 });
  console.log('\n## Journal replication (journal LUN on RGW, 64 MiB RAM cache, 64 MiB journal; both nodes on this machine, loopback link)');
  console.log('| workload | one server, local journal | HA pair: node b fsyncs each group too | ratio |');
  console.log('|---|---|---|---|');
  const cell = (t: { iops: number; p50Ms: number; p99Ms: number }): string =>
    `${t.iops.toFixed(0)} IOPS (p50 ${t.p50Ms.toFixed(1)} / p99 ${t.p99Ms.toFixed(1)} ms)`;
  for (const r of rows) {
    const what = r.pattern === 'random-4k' ? '4 KiB random write, QD32' : '64 KiB sequential write, QD16';
    console.log(`| ${what} | ${cell(r.alone)} | ${cell(r.replicated)} | ${(r.replicated.iops / r.alone.iops).toFixed(2)} |`);
  }
}

/** Issue 16's row: a LUN-to-LUN copy by the host against EXTENDED COPY (S3 CopyObject per chunk). */
async function printCopyBench(rgw: Rgw, quick: boolean): Promise<void> {
  const rows = [];
  for (const latencyMs of [0, 20]) rows.push(await copyBench(rgw, { mib: quick ? 128 : 1024, latencyMs }));
  console.log('\n## LUN-to-LUN copy (two S3 LUNs in one RGW bucket, 64 MiB caches; the copy is in S3 when it ends)');
  console.log(
    '| S3 latency | size | host read + write (qemu-img convert) | EXTENDED COPY | speed-up | raw SDK CopyObject, 8 in flight | XCOPY / raw | S3 body bytes, host / XCOPY |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| +${r.latencyMs} ms | ${r.mib} MiB | ${r.hostSeconds.toFixed(1)} s | ${r.xcopySeconds.toFixed(1)} s | ${(r.hostSeconds / r.xcopySeconds).toFixed(1)}x | ${r.rawCopySeconds.toFixed(1)} s | ${(r.rawCopySeconds / r.xcopySeconds).toFixed(2)} | ${(r.hostS3Bytes / 1048576).toFixed(0)} MiB / ${(r.xcopyS3Bytes / 1024).toFixed(1)} KiB |`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
