import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Rgw } from '../test/harness/rgw';
import { s3Target } from '../test/harness/s3-target';
import { TargetProcess } from '../test/harness/target';
import { hotspots } from './lib/cpuprofile';
import { qemuBench } from './lib/qemu';
import { iscsiPerf, LUN_MIB, qemuWorkload, type Workload } from './protocol-path';

/**
 * `make profile PROFILE=<workload>`: one s3tgt process started under V8's CPU profiler, one
 * workload, then where the server's time went during that workload (the .cpuprofile stays
 * for a flame graph: bench/README.md, "Profiling"). The protocol workloads use the protocol
 * bench's LUN (1 GiB in the local chunk store on tmpfs, filled first); `s3-read-1m` is the S3
 * bench's cold sequential read (RGW started here, the LUN written by an earlier process).
 */
interface Profiled {
  /** Runs the workload against a target started with `nodeArgs`; returns its figure and time window. */
  run(nodeArgs: readonly string[]): Promise<{ figure: string; window: [number, number] }>;
}

const S3_READ_MIB = 512;

const WORKLOADS: Record<string, Profiled> = {
  'write-4k': protocol(`${LUN_MIB}MiB`, qemuWorkload('qemu-img bench 4 KiB write, QD32', 4096, 32, 200_000, true, 'IOPS')),
  'read-4k': protocol(`${LUN_MIB}MiB`, qemuWorkload('qemu-img bench 4 KiB read, QD32', 4096, 32, 200_000, false, 'IOPS')),
  'write-256k': protocol(`${LUN_MIB}MiB`, qemuWorkload('qemu-img bench 256 KiB write, QD16', 262144, 16, 8000, true, 'MB/s')),
  'read-256k': protocol(`${LUN_MIB}MiB`, qemuWorkload('qemu-img bench 256 KiB read, QD16', 262144, 16, 16_000, false, 'MB/s')),
  'miss-4k': protocol('256MiB', iscsiPerf(5)),
  's3-read-1m': { run: s3ColdRead },
};

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

function protocol(cache: string, w: Workload): Profiled {
  return {
    async run(nodeArgs) {
      const dir = mkdtempSync('/dev/shm/s3tgt-profile-');
      const t = new TargetProcess({
        dataDir: path.join(dir, 'data'),
        logLevel: 'warn',
        nodeArgs,
        lunsYaml: `      - lun: 0
        name: bench
        size: ${LUN_MIB}MiB
        cache: { size: ${cache}, mode: write-back }`,
      });
      try {
        await t.start();
        await qemuWorkload('fill', 1048576, 16, LUN_MIB, true, 'MB/s', true).run(t.url(0));
        const from = nowUs();
        const m = await w.run(t.url(0));
        return { figure: `${w.name}: ${m.figure.toFixed(0)} ${w.unit}`, window: [from, nowUs()] };
      } finally {
        // SIGTERM: a graceful stop, so node writes the profile as it exits.
        await t.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** bench/s3-path.ts's cold sequential read at +0 ms: 1 MiB reads at QD16 of data a previous process wrote. */
async function s3ColdRead(nodeArgs: readonly string[]): Promise<{ figure: string; window: [number, number] }> {
  const rgw = await Rgw.start();
  try {
    const bucket = `profile-${Date.now()}`;
    await rgw.createBucket(bucket);
    const opts = { bucket, size: '4GiB', cache: '{ size: 256MiB, flushDelay: 200ms }', lease: '{ ttl: 20s, renewInterval: 3s }', logLevel: 'warn' };
    const base = ['-t', 'writeback', '-s', '1M', '-d', '16', '-c', String(S3_READ_MIB)];
    const writer = s3Target(rgw, opts);
    await writer.start();
    try {
      await qemuBench(writer.url(0), ['-w', ...base, '--flush-interval', String(S3_READ_MIB), '--pattern', '0xa5']);
    } finally {
      await writer.stop();
    }
    const t = s3Target(rgw, { ...opts, nodeArgs });
    await t.start();
    try {
      const from = nowUs();
      const s = await qemuBench(t.url(0), base);
      return { figure: `qemu-img bench 1 MiB read, QD16, cold, from RGW: ${(S3_READ_MIB / s).toFixed(0)} MiB/s`, window: [from, nowUs()] };
    } finally {
      await t.stop();
    }
  } finally {
    await rgw.stop();
  }
}

async function main(): Promise<void> {
  const name = process.argv[2] ?? '';
  const chosen = WORKLOADS[name];
  if (!chosen) {
    console.error(`usage: profile.js <${Object.keys(WORKLOADS).join('|')}>`);
    process.exit(2);
  }
  const out = path.resolve(process.env.PROFILE_DIR ?? 'profiles');
  mkdirSync(out, { recursive: true });
  const before = new Set(readdirSync(out));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const { figure, window } = await chosen.run(['--cpu-prof', `--cpu-prof-dir=${out}`, `--cpu-prof-name=${name}-${stamp}.cpuprofile`]);
  const file = readdirSync(out).find((f) => !before.has(f) && f.startsWith(name));
  if (!file) throw new Error(`no profile written to ${out}`);
  const { sampledMs, spots } = hotspots(path.join(out, file), window[0], window[1], Number(process.env.PROFILE_TOP ?? 30));
  console.log(`# ${figure}; ${(sampledMs / 1000).toFixed(1)} s of the server sampled; profile ${path.join(out, file)}`);
  console.log('| self | inclusive | function |');
  console.log('|---|---|---|');
  for (const s of spots) console.log(`| ${(100 * s.self).toFixed(1)} % | ${(100 * s.inclusive).toFixed(1)} % | ${s.where} |`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
