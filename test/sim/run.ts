import { log } from '../../src/util/log';
import { simulate } from './sim';

/**
 * The storage-core simulation from the command line:
 *   node dist/test/sim/run.js [--seeds N] [--first S] [--ops N] [--total N]
 * runs seeds S, S+1, ... with N operations each (or until --total operations in all), prints
 * one summary line, and on a failure the seed and the command that replays exactly that run.
 */
async function main(): Promise<void> {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const first = arg('first', arg('seed', 1));
  const opsPerSeed = arg('ops', 200);
  const total = arg('total', Number.POSITIVE_INFINITY);
  const seeds = process.argv.includes('--seed') ? 1 : arg('seeds', Number.isFinite(total) ? Number.MAX_SAFE_INTEGER : 100);
  log.silent = true;
  const t0 = Date.now();
  let ops = 0;
  let virtual = 0;
  const sum = { crashes: 0, takeovers: 0, suspensions: 0, faults: 0 };
  let n = 0;
  for (let seed = first; n < seeds && ops < total; seed++, n++) {
    try {
      const r = await simulate({ seed, ops: opsPerSeed });
      ops += r.ops;
      virtual += r.virtualSeconds;
      for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += r[k];
    } catch (e) {
      process.stderr.write(`simulation FAILED at seed ${seed}: ${(e as Error).stack ?? String(e)}\n`);
      process.stderr.write(`reproduce: node dist/test/sim/run.js --seed ${seed} --ops ${opsPerSeed}\n`);
      process.exit(1);
    }
    if (n % 50 === 49) process.stderr.write(`  ${n + 1} seeds, ${ops} operations, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  process.stdout.write(
    `simulation: seeds ${first}..${first + n - 1} (${n}), ${ops} operations, ${virtual} s of virtual time, ` +
      `${sum.crashes} crashes, ${sum.takeovers} takeovers, ${sum.suspensions} lease outages, ${sum.faults} fault phases: ` +
      `no violation (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`,
  );
}

void main();
