/**
 * V8 options `s3tgt serve` runs with. They cannot be set once the process runs (V8 reads them
 * when it creates the heap; Node refuses them in NODE_OPTIONS), so they are on every command
 * line that starts the server: the `s3tgt` script's shebang, the Dockerfile, the Makefile and
 * the test harness; `serve` warns when started without them.
 *
 * --no-memory-reducer: after about 8 s without allocation, V8's memory reducer shrinks the heap
 * and then grows it "slowly" until a mark-compact finds 10 MB more committed memory, which a
 * steady load never produces. On Node 20 and 22 (not 24) a busy target that went idle for a
 * minute then runs a full GC every 30 ms: 4 KiB reads that miss the cache fell from 19k to 7k
 * IOPS and stayed there (measured 2026-12-04, README "Issue 18 rows"). Our heap is small (the
 * cache is off-heap), so the reducer saves little.
 */
export const SERVE_V8_FLAGS: readonly string[] = ['--no-memory-reducer'];

/** The flags of SERVE_V8_FLAGS missing from `execArgv` (the options node was started with). */
export function missingServeFlags(execArgv: readonly string[]): string[] {
  // V8 takes `_` for `-` inside a flag's name (--no_memory_reducer).
  const given = new Set(execArgv.map((a) => `--${a.slice(2).replace(/_/g, '-')}`));
  return SERVE_V8_FLAGS.filter((f) => !given.has(f));
}
