import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mustRun } from '../harness/exec';
import { TargetProcess } from '../harness/target';

const MiB = 1024 * 1024;

describe('qemu-img over iscsi:// (issue 2 acceptance)', () => {
  const target = new TargetProcess();
  let image: string;
  before(async () => {
    await target.start();
    image = path.join(target.dir, 'random.img');
    writeFileSync(image, randomBytes(64 * MiB));
  });
  after(() => target.stop());

  it('copies a 64 MiB random image in and back out byte-identical', async () => {
    await mustRun('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', image, target.url(0)]);
    const back = path.join(target.dir, 'back.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', target.url(0), back]);
    const want = readFileSync(image);
    const got = readFileSync(back);
    assert.equal(got.length, 1024 * MiB);
    assert.ok(got.subarray(0, 64 * MiB).equals(want), 'first 64 MiB identical');
    assert.ok(
      got.subarray(64 * MiB).every((b) => b === 0),
      'the rest reads as zeros',
    );
  });

  it('after a restart the data is still there, and the store holds exactly the 64 chunk files', async () => {
    assert.equal(await target.stop(), 0, 'graceful stop exits 0');
    const chunks = readdirSync(path.join(target.dir, 'data', 'lun0', 'chunks'));
    assert.equal(chunks.length, 64);
    assert.deepEqual(chunks.sort()[0], '0000000000000000');
    await target.start();
    const back = path.join(target.dir, 'back2.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', target.url(0), back]);
    assert.ok(
      readFileSync(back)
        .subarray(0, 64 * MiB)
        .equals(readFileSync(image)),
    );
  });
});
