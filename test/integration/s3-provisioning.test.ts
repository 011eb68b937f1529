import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { segmentCrcs } from '../../src/storage/integrity';
import { mustRun, qemuIo, run } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { listObjects, s3Target } from '../harness/s3-target';
import { type TargetProcess, TEST_IQN } from '../harness/target';
import { TestInitiator } from '../lib/initiator';

const MiB = 1024 * 1024;
const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const chunkKey = (i: number): string => `luns/disk0/chunks/${i.toString(16).padStart(16, '0')}`;

async function session(port: number): Promise<TestInitiator> {
  const c = await TestInitiator.connect(port);
  await c.login({ target: TEST_IQN });
  await c.response(c.command(Buffer.from([0, 0, 0, 0, 0, 0])));
  return c;
}

/** GET LBA STATUS (SBC-4 §5.8) at `lba`: the first descriptor. */
async function lbaStatus(c: TestInitiator, lba: bigint): Promise<{ lba: bigint; blocks: number; deallocated: boolean }> {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x9e;
  cdb[1] = 0x12;
  cdb.writeBigUInt64BE(lba, 2);
  cdb.writeUInt32BE(24, 10);
  const r = await c.response(c.command(cdb, { read: 24 }));
  assert.equal(r.status, 0);
  return { lba: r.data.readBigUInt64BE(8), blocks: r.data.readUInt32BE(16), deallocated: r.data[20] === 1 };
}

/** READ(16) of one chunk: its status, sense key and data. */
async function readChunk(c: TestInitiator, i: number): Promise<{ status: number; key: number; data: Buffer }> {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x88;
  cdb.writeBigUInt64BE(BigInt(i * 2048), 2);
  cdb.writeUInt32BE(2048, 10);
  const r = await c.response(c.command(cdb, { read: MiB }), 30_000);
  return { status: r.status, key: r.sense.length ? r.sense[2] & 0x0f : 0, data: r.data };
}

describe('thin provisioning and defrag on S3 (issue 5 acceptance)', () => {
  let rgw: Rgw;
  let target: TargetProcess;
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('thin');
    target = s3Target(rgw, { bucket: 'thin', lease: '{ ttl: 4s, renewInterval: 500ms }' });
    await target.start();
  });
  after(async () => {
    await target?.stop();
    await rgw?.stop();
  });

  it('a discard of a written 64 MiB region deletes its 64 objects; GET LBA STATUS reports it deallocated; it reads zeros', async () => {
    const image = path.join(target.dir, 'random.img');
    writeFileSync(image, randomBytes(64 * MiB));
    await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', image, target.url(0)]);
    const c = await session(target.port);
    assert.deepEqual(await lbaStatus(c, 0n), { lba: 0n, blocks: 64 * 2048, deallocated: false });
    assert.equal([...(await listObjects(rgw, 'thin')).keys()].filter((k) => k.includes('/chunks/')).length, 64);
    const d = await qemuIo(target.url(0), ['discard 0 64M']);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /discard 67108864\/67108864/);
    assert.equal([...(await listObjects(rgw, 'thin')).keys()].filter((k) => k.includes('/chunks/')).length, 0, 'all 64 objects are gone');
    const st = await lbaStatus(c, 0n);
    assert.equal(st.deallocated, true);
    assert.ok(st.blocks >= 64 * 2048, 'the whole range is one deallocated extent');
    const z = await qemuIo(target.url(0), ['read -P 0 0 64M']);
    assert.doesNotMatch(z.stdout, /Pattern verification failed/);
    // A starting LBA past the end is LOGICAL BLOCK ADDRESS OUT OF RANGE.
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x9e;
    cdb[1] = 0x12;
    cdb.writeBigUInt64BE(BigInt((1024 * MiB) / 512), 2);
    cdb.writeUInt32BE(24, 10);
    const oob = await c.response(c.command(cdb, { read: 24 }));
    assert.deepEqual([oob.status, oob.sense[2] & 0x0f, oob.sense[12]], [2, 5, 0x21]);
    c.close();
  });

  it('defrag --dry-run reports zero chunks, orphans and a corrupt chunk and changes nothing; defrag removes the first two and keeps the data', async () => {
    // Data in chunks 0-7, then the server stops (and releases the LUN's lease).
    const image = path.join(target.dir, 'data.img');
    writeFileSync(image, randomBytes(8 * MiB));
    await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', image, target.url(0)]);
    assert.equal(await target.stop(), 0);
    const s3 = rgw.store('thin');
    const zero = Buffer.alloc(MiB);
    for (const i of [100, 101, 102]) await s3.put(chunkKey(i), zero, { metadata: { 's3tgt-crc32c': segmentCrcs(zero) } });
    await s3.put(chunkKey(0x400), zero, { metadata: { 's3tgt-crc32c': segmentCrcs(zero) } }); // beyond 1 GiB
    await s3.put(chunkKey(0x7ffffff), randomBytes(4096));
    await s3.put('luns/disk0/chunks/not-a-chunk', Buffer.from('junk'));
    const good = (await s3.get(chunkKey(3)))?.body as Buffer;
    const bad = Buffer.from(good);
    bad[500_000] ^= 0xff;
    await s3.put(chunkKey(3), bad, { metadata: { 's3tgt-crc32c': segmentCrcs(good) } });
    await s3.close();

    // What the LUN reads like before defrag.
    await target.start();
    const before = await session(target.port);
    const readsBefore = [];
    for (let i = 0; i < 8; i++) readsBefore.push(await readChunk(before, i));
    before.close();
    assert.deepEqual([readsBefore[3].status, readsBefore[3].key], [2, 3], 'the corrupt chunk is a MEDIUM ERROR, not silent');
    assert.equal(await target.stop(), 0);

    const objectsBefore = await listObjects(rgw, 'thin');
    const dry = await run(process.execPath, [MAIN, 'defrag', 'disk0', '--config', target.configFile, '--dry-run', '--json'], { env: rgw.env() });
    assert.equal(dry.code, 4, `findings exit code\n${dry.stderr}`);
    const dr = JSON.parse(dry.stdout);
    assert.equal(dr.dryRun, true);
    assert.equal(dr.zeroChunks.count, 3);
    assert.equal(dr.orphans.count, 3);
    assert.deepEqual(dr.corrupt, [chunkKey(3)]);
    assert.equal(dr.mappedChunks, 7);
    assert.deepEqual(await listObjects(rgw, 'thin'), objectsBefore, 'a dry run changes nothing');

    const real = await run(process.execPath, [MAIN, 'defrag', 'disk0', '--config', target.configFile, '--json'], { env: rgw.env() });
    assert.equal(real.code, 4, real.stderr);
    const rr = JSON.parse(real.stdout);
    assert.equal(rr.reclaimed.objects, 6);
    assert.deepEqual(rr.corrupt, [chunkKey(3)]);
    const after = await listObjects(rgw, 'thin');
    assert.deepEqual(
      [...after.keys()].filter((k) => k.includes('/chunks/')),
      Array.from({ length: 8 }, (_, i) => chunkKey(i)),
      'zero chunks and orphans are gone, the corrupt chunk is kept',
    );

    await target.start();
    const c = await session(target.port);
    const readsAfter = [];
    for (let i = 0; i < 8; i++) readsAfter.push(await readChunk(c, i));
    c.close();
    for (let i = 0; i < 8; i++) {
      assert.equal(readsAfter[i].status, readsBefore[i].status, `chunk ${i} status unchanged`);
      if (i !== 3) assert.ok(readsAfter[i].data.equals(readsBefore[i].data), `chunk ${i} data unchanged`);
    }
  });

  it('defrag --online runs inside the serving process while an initiator writes', async () => {
    const s3 = rgw.store('thin');
    const zero = Buffer.alloc(MiB);
    await s3.put(chunkKey(200), zero, { metadata: { 's3tgt-crc32c': segmentCrcs(zero) } });
    await s3.close();
    const writes = qemuIo(
      target.url(0),
      Array.from({ length: 64 }, (_, i) => `aio_write -P ${i + 1} ${(300 + (i % 8)) * MiB + i * 4096} 4k`).concat(['aio_flush']),
    );
    const r = await run(process.execPath, [MAIN, 'defrag', 'disk0', '--config', target.configFile, '--online', '--json'], { env: rgw.env() });
    const w = await writes;
    assert.equal(w.code, 0, w.stderr);
    const report = JSON.parse(r.stdout);
    assert.ok(report.zeroChunks.count >= 1, r.stdout + r.stderr);
    assert.equal((await listObjects(rgw, 'thin')).has(chunkKey(200)), false);
    const check = await qemuIo(
      target.url(0),
      Array.from({ length: 64 }, (_, i) => `read -P ${i + 1} ${(300 + (i % 8)) * MiB + i * 4096} 4k`),
    );
    assert.doesNotMatch(check.stdout, /Pattern verification failed/);
  });

  it('defrag refuses a LUN a server is serving (lease)', async () => {
    const r = await run(process.execPath, [MAIN, 'defrag', 'disk0', '--config', target.configFile, '--dry-run'], { env: rgw.env() });
    assert.equal(r.code, 5);
    assert.match(r.stderr, /LUN is in use/);
  });
});
