import { run } from '../../test/harness/exec';

/** Runs `qemu-img bench` and returns the seconds it reports for the run. */
export async function qemuBench(url: string, args: readonly string[]): Promise<number> {
  const r = await run('qemu-img', ['bench', '-f', 'raw', ...args, url], { timeoutMs: 600_000 });
  const m = /Run completed in ([0-9.]+) seconds/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`qemu-img bench ${args.join(' ')} failed: ${r.stderr}`);
  return Number(m[1]);
}
