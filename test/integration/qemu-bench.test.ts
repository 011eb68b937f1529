import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { run } from '../harness/exec';
import { TargetProcess } from '../harness/target';

/** Not a benchmark (those live in bench/): this only proves the I/O patterns complete cleanly. */
describe('qemu-img bench patterns complete without error (issue 2 acceptance)', () => {
  const target = new TargetProcess();
  before(() => target.start());
  after(() => target.stop());

  for (const [name, args] of [
    ['4 KiB QD32 read', ['-d', '32', '-s', '4k', '-c', '20000']],
    ['4 KiB QD32 write', ['-w', '-d', '32', '-s', '4k', '-c', '20000']],
    ['256 KiB QD16 read', ['-d', '16', '-s', '256k', '-c', '4000']],
    ['256 KiB QD16 write', ['-w', '-d', '16', '-s', '256k', '-c', '4000']],
    ['4 KiB QD32 random-offset write', ['-w', '-d', '32', '-s', '4k', '-S', '1052672', '-c', '2000']],
  ] as const) {
    it(name, async () => {
      const r = await run('qemu-img', ['bench', '-f', 'raw', '-t', 'none', ...args, target.url(0)], { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Run completed in/);
      assert.doesNotMatch(r.stderr, /error/i);
    });
  }
});
