import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mustRun, qemuIo } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { listObjects, s3Target } from '../harness/s3-target';
import type { TargetProcess } from '../harness/target';

const MiB = 1024 * 1024;
const chunkKey = (i: number): string => `luns/disk0/chunks/${i.toString(16).padStart(16, '0')}`;

describe('S3 layout: a LUN as 1 MiB objects in RGW (issue 4 acceptance)', () => {
  let rgw: Rgw;
  let target: TargetProcess;
  let image: string;
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('layout');
    target = s3Target(rgw, { bucket: 'layout' });
    await target.start();
    image = path.join(target.dir, 'random.img');
    writeFileSync(image, randomBytes(64 * MiB));
  });
  after(async () => {
    await target?.stop();
    await rgw?.stop();
  });

  it('64 MiB written with qemu-img, then SYNCHRONIZE CACHE: exactly 64 chunk objects of 1 MiB', async () => {
    // -t writeback: qemu-img convert defaults to cache=unsafe, which never flushes.
    await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', image, target.url(0)]);
    const objects = await listObjects(rgw, 'layout');
    const chunks = [...objects].filter(([k]) => k.includes('/chunks/'));
    assert.deepEqual(
      chunks.map(([k]) => k),
      Array.from({ length: 64 }, (_, i) => chunkKey(i)),
    );
    assert.ok(
      chunks.every(([, size]) => size === MiB),
      'every chunk object is 1 MiB',
    );
    assert.ok(objects.has('luns/disk0/volume.json'));
    const vol = JSON.parse((await rgw.store('layout').get('luns/disk0/volume.json'))?.body.toString() ?? '{}');
    assert.equal(vol.chunkSize, MiB);
    assert.equal(vol.sizeBytes, 1024 * MiB);
    assert.match(vol.uuid, /^[0-9a-f-]{36}$/);
  });

  it('reads back identical from S3 after a restart (cold cache)', async () => {
    assert.equal(await target.stop(), 0);
    await target.start();
    const back = path.join(target.dir, 'back.img');
    await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=64', `if=${target.url(0)}`, `of=${back}`]);
    assert.ok(readFileSync(back).equals(readFileSync(image)));
  });

  it('zeroing 8 MiB removes those 8 objects, and they read as zeros', async () => {
    const r = await qemuIo(target.url(0), ['write -z 16M 8M', 'flush']);
    assert.equal(r.code, 0, r.stderr);
    const objects = await listObjects(rgw, 'layout');
    for (let i = 0; i < 64; i++) assert.equal(objects.has(chunkKey(i)), i < 16 || i >= 24, `chunk ${i}`);
    const check = await qemuIo(target.url(0), ['read -P 0 16M 8M', `read -v ${15 * MiB} 16`]);
    assert.doesNotMatch(check.stdout, /Pattern verification failed/);
  });
});
