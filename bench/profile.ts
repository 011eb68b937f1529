import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { TargetProcess } from '../test/harness/target';
import { hotspots } from './lib/cpuprofile';
import { iscsiPerf, LUN_MIB, qemuWorkload, type Workload } from './protocol-path';

/**
 * `make profile PROFILE=<workload>`: one s3tgt process (the protocol path's LUN: 1 GiB in the
 * local chunk store on tmpfs) started under V8's CPU profiler, filled, then one workload of
 * the protocol bench; prints where the server's time went during that workload and keeps the
 * .cpuprofile for a flame graph (bench/README.md, "Profiling").
 */
const WORKLOADS: Record<string, { readonly cache: string; readonly w: Workload }> = {
  'write-4k': { cache: `${LUN_MIB}MiB`, w: qemuWorkload('qemu-img bench 4 KiB write, QD32', 4096, 32, 200_000, true, 'IOPS') },
  'read-4k': { cache: `${LUN_MIB}MiB`, w: qemuWorkload('qemu-img bench 4 KiB read, QD32', 4096, 32, 200_000, false, 'IOPS') },
  'write-256k': { cache: `${LUN_MIB}MiB`, w: qemuWorkload('qemu-img bench 256 KiB write, QD16', 262144, 16, 8000, true, 'MB/s') },
  'read-256k': { cache: `${LUN_MIB}MiB`, w: qemuWorkload('qemu-img bench 256 KiB read, QD16', 262144, 16, 16_000, false, 'MB/s') },
  'miss-4k': { cache: '256MiB', w: iscsiPerf(5) },
};

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<void> {
  const name = process.argv[2] ?? '';
  const chosen = WORKLOADS[name];
  if (!chosen) {
    console.error(`usage: profile.js <${Object.keys(WORKLOADS).join('|')}>`);
    process.exit(2);
  }
  const out = path.resolve(process.env.PROFILE_DIR ?? 'profiles');
  mkdirSync(out, { recursive: true });
  const dir = mkdtempSync('/dev/shm/s3tgt-profile-');
  const t = new TargetProcess({
    dataDir: path.join(dir, 'data'),
    logLevel: 'warn',
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${out}`, `--cpu-prof-name=${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`],
    lunsYaml: `      - lun: 0
        name: bench
        size: ${LUN_MIB}MiB
        cache: { size: ${chosen.cache}, mode: write-back }`,
  });
  const before = new Set(readdirSync(out));
  let window: [number, number];
  let figure: string;
  try {
    await t.start();
    await qemuWorkload('fill', 1048576, 16, LUN_MIB, true, 'MB/s', true).run(t.url(0));
    const from = nowUs();
    const m = await chosen.w.run(t.url(0));
    window = [from, nowUs()];
    figure = `${m.figure.toFixed(0)} ${chosen.w.unit}`;
  } finally {
    // SIGTERM: a graceful stop, so node writes the profile as it exits.
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const file = readdirSync(out).find((f) => !before.has(f) && f.startsWith(name));
  if (!file) throw new Error(`no profile written to ${out}`);
  const { sampledMs, spots } = hotspots(path.join(out, file), window[0], window[1], Number(process.env.PROFILE_TOP ?? 30));
  console.log(`# ${chosen.w.name}: ${figure}; ${(sampledMs / 1000).toFixed(1)} s of the server sampled; profile ${path.join(out, file)}`);
  console.log('| self | inclusive | function |');
  console.log('|---|---|---|');
  for (const s of spots) console.log(`| ${(100 * s.self).toFixed(1)} % | ${(100 * s.inclusive).toFixed(1)} % | ${s.where} |`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
