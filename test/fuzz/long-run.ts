import { TargetProcess } from '../harness/target';
import { formatCampaign, fuzzCampaign } from './campaign';

/**
 * The long fuzz run (issue 6): `node dist/test/fuzz/long-run.js [inputs] [seed]`, default
 * 1,000,000 inputs. Starts its own target on a 64 MiB LUN, fuzzes it, then checks it is alive,
 * answers a normal login and logged no internal error. Exit 0 only if all of that holds.
 */
async function main(): Promise<void> {
  const inputs = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? Date.now() % 100000);
  const target = new TargetProcess({
    logLevel: 'error',
    lunsYaml: `      - lun: 0
        name: fuzz0
        size: 64MiB`,
  });
  await target.start();
  process.stdout.write(`fuzzing 127.0.0.1:${target.port} with ${inputs} inputs, seed ${seed}\n`);
  const r = await fuzzCampaign(target, {
    inputs,
    seconds: 6 * 3600,
    seed,
    workers: 2,
    onProgress: (p) => process.stdout.write(`  ${p.inputs} inputs, ${p.connections} connections, ${(p.inputs / p.seconds).toFixed(0)}/s\n`),
  });
  await target.stop();
  process.stdout.write(`${formatCampaign(r)}\n`);
  for (const l of r.bugLines.slice(0, 20)) process.stdout.write(`  BUG ${l}\n`);
  const ok = r.aliveAfter && r.healthyAfter && r.bugLines.length === 0 && r.report.malformedFromTarget === 0;
  process.exit(ok ? 0 : 1);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(2);
});
