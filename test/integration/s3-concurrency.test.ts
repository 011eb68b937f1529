import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mustRun, qemuIo } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { s3Target } from '../harness/s3-target';
import type { TargetProcess } from '../harness/target';

const MiB = 1024 * 1024;
const CHUNKS = 8;
const SECTORS = (CHUNKS * MiB) / 512;

/** The byte writer `w` puts in sector `s` on pass `p` (never zero, distinct per writer). */
const pattern = (w: number, s: number, p: number): number => 1 + ((w * 97 + s * 13 + p * 29) % 254);

/**
 * Two initiators (two qemu-io sessions) write interleaved 512-byte sectors of the same
 * chunks at the same time: every chunk is read-modify-written by both, through a small
 * cache that flushes and evicts all along. Nothing either of them wrote may be lost.
 */
describe('two writers on the same chunks lose nothing (issue 4 acceptance)', () => {
  let rgw: Rgw;
  let target: TargetProcess;
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('race');
    target = s3Target(rgw, { bucket: 'race', cache: '{ size: 4MiB, flushDelay: 0ms }' });
    await target.start();
  });
  after(async () => {
    await target?.stop();
    await rgw?.stop();
  });

  it('every sector holds the last pattern its writer wrote, read back from S3', async () => {
    // Stored chunks first, so every partial write needs its base merged in.
    const base = path.join(target.dir, 'base.img');
    writeFileSync(base, randomBytes(CHUNKS * MiB));
    await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', base, target.url(0)]);
    const passes = 2;
    const writer = (w: number): string[] => {
      const cmds: string[] = [];
      for (let p = 0; p < passes; p++) {
        // Writer 0 owns even sectors, writer 1 odd ones; each pass walks the chunks round-robin.
        for (let i = 0; i < SECTORS / 2; i++) {
          const s = 2 * (((i % CHUNKS) * (SECTORS / CHUNKS)) / 2 + Math.floor(i / CHUNKS)) + w;
          cmds.push(`aio_write -P ${pattern(w, s, p)} ${s * 512} 512`);
        }
        cmds.push('aio_flush');
      }
      return cmds;
    };
    const [a, b] = await Promise.all([qemuIo(target.url(0), writer(0)), qemuIo(target.url(0), writer(1))]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.doesNotMatch(a.stdout + b.stdout, /error|failed/i);
    // A restart empties the cache: what we read comes from the chunk objects.
    assert.equal(await target.stop(), 0);
    await target.start();
    const back = path.join(target.dir, 'back.img');
    await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', `count=${CHUNKS}`, `if=${target.url(0)}`, `of=${back}`]);
    const data = readFileSync(back);
    let wrong = 0;
    for (let s = 0; s < SECTORS; s++) {
      const want = pattern(s % 2, s, passes - 1);
      const sector = data.subarray(s * 512, s * 512 + 512);
      if (!sector.every((x) => x === want)) wrong++;
    }
    assert.equal(wrong, 0, `${wrong} of ${SECTORS} sectors lost a write`);
  });
});
