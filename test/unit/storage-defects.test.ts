import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ChunkVolume, type ChunkVolumeOptions } from '../../src/storage/chunk-volume';
import { defrag } from '../../src/storage/defrag';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import type { VolumeInfo } from '../../src/storage/volume';
import { readVolumeInfo } from '../../src/storage/volume-meta';
import { FailingStore } from '../lib/failing-store';
import { MiB, TEST_LAYOUT, testInfo, testOptions } from '../lib/volumes';

const layout = TEST_LAYOUT;
const INFO = testInfo(16 * MiB);
const OPTIONS = testOptions(16 * MiB);

const volume = (store: ObjectStore, info: VolumeInfo = INFO, opts: Partial<ChunkVolumeOptions> = {}): ChunkVolume =>
  new ChunkVolume(store, layout, info, { ...OPTIONS, ...opts });
const chunkKey = (i: number): RegExp => new RegExp(`/chunks/${i.toString(16).padStart(16, '0')}$`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Issue 13's defects in the volume, each against a failing store, through the Volume API only
 * (so that the same test runs on the commit before the storage-core split, and fails there).
 */
describe('storage core defects (issue 13), against a failing store', () => {
  it('UNMAP while a PRE-FETCH GET of the chunk is in flight and its DELETE is slow: the blocks read zeros (defect 5)', async () => {
    const mem = new MemoryObjectStore();
    const store = new FailingStore(mem);
    const v = volume(store);
    await v.write(2 * MiB, randomBytes(MiB), { fua: true });
    v.dropCleanCache();
    await v.allocation({ offset: 0, length: INFO.sizeBytes }); // the listing is done
    store.add({ fault: 'slow-answer', ops: ['get'], delayMs: 20 });
    store.add({ fault: 'delay', ops: ['delete', 'deleteMany'], delayMs: 200 });
    await v.prefetch({ offset: 2 * MiB, length: MiB });
    await v.discard([{ offset: 2 * MiB, length: MiB }]);
    assert.ok(
      (await v.read(2 * MiB, 64 * 1024)).every((b) => b === 0),
      'discarded blocks read zeros (LBPRZ=1)',
    );
    await v.write(2 * MiB + 4096, Buffer.alloc(4096, 7));
    await v.flush();
    store.clear();
    await v.close();
    const cold = volume(mem);
    const expect = Buffer.alloc(MiB);
    expect.fill(7, 4096, 8192);
    assert.ok((await cold.read(2 * MiB, MiB)).equals(expect), 'the old data is not written back with the partial write');
    await cold.close();
  });

  it('a read that would join a whole-chunk GET sent before a later write was stored fetches again (defect 6)', async () => {
    const mem = new MemoryObjectStore();
    const store = new FailingStore(mem);
    const v = volume(store, INFO, { readAheadChunks: 2 });
    const a = Buffer.alloc(MiB, 0xaa);
    const b = Buffer.alloc(MiB, 0xbb);
    await v.write(MiB, a, { fua: true });
    v.dropCleanCache();
    await v.allocation({ offset: 0, length: INFO.sizeBytes });
    store.add({ fault: 'slow-answer', ops: ['get'], delayMs: 300, times: 1 });
    await v.prefetch({ offset: MiB, length: MiB }); // a GET of chunk 1 (A), 300 ms long
    await sleep(10);
    await v.write(MiB, b, { fua: true }); // B is acknowledged and in the store
    v.dropCleanCache();
    assert.ok((await v.read(MiB, MiB)).equals(b), 'the read returns the acknowledged write, not the older GET');
    await v.close();
  });

  it('a chunk PUT with an unknown outcome leaves the chunk may-exist: a later discard deletes it, and it does not come back (defect 7)', async () => {
    const mem = new MemoryObjectStore();
    const store = new FailingStore(mem);
    const v = volume(store);
    await v.allocation({ offset: 0, length: INFO.sizeBytes }); // chunk 3 is known absent
    store.add({ fault: 'lost-answer', ops: ['put'], key: chunkKey(3) });
    await v.write(3 * MiB, Buffer.alloc(4096, 0x77));
    await assert.rejects(v.flush(), { kind: 'unavailable' });
    assert.equal(mem.count(layout.chunksPrefix), 1, 'the PUT did land');
    store.clear();
    store.add({ fault: 'error', ops: ['put'], key: chunkKey(3) });
    await v.discard([{ offset: 3 * MiB, length: MiB }]);
    store.clear();
    await v.close();
    assert.equal(mem.count(layout.chunksPrefix), 0, 'the discard deleted the object the lost PUT left');
    const cold = volume(mem);
    assert.ok((await cold.read(3 * MiB, 4096)).every((x) => x === 0));
    await cold.close();
  });

  it('small cache misses are kept: a second 4 KiB read of the same 64 KiB segment sends no GET (defect 12)', async () => {
    const mem = new MemoryObjectStore();
    const store = new FailingStore(mem);
    const v = volume(store);
    const data = randomBytes(MiB);
    await v.write(0, data, { fua: true });
    v.dropCleanCache();
    const before = store.seen('get');
    assert.ok((await v.read(8192, 4096)).equals(data.subarray(8192, 12288)));
    assert.ok((await v.read(16384, 4096)).equals(data.subarray(16384, 20480)));
    assert.equal(store.seen('get') - before, 1, 'one ranged GET for both reads');
    // A write next to the kept segment still gets the rest of the chunk right.
    await v.write(4096, Buffer.alloc(512, 1));
    await v.flush();
    const expect = Buffer.from(data);
    expect.fill(1, 4096, 4608);
    await v.close();
    const cold = volume(mem);
    assert.ok((await cold.read(0, MiB)).equals(expect));
    await cold.close();
  });

  it('kept segments live in the free room of the cache: they never evict a cached chunk, and a write or discard forgets them (defect 12)', async () => {
    const mem = new MemoryObjectStore();
    const store = new FailingStore(mem);
    const v = volume(store, INFO, { cacheBytes: 4 * MiB });
    await v.write(0, randomBytes(8 * MiB), { fua: true }); // chunks 4-7 stay cached, clean
    const hot = await v.read(4 * MiB, 4 * MiB);
    const before = store.seen('get');
    await v.read(4096, 4096); // chunk 0: not cached, no room: read, not kept
    assert.ok((await v.read(4 * MiB, 4 * MiB)).equals(hot));
    assert.equal(store.seen('get') - before, 1, 'the four cached chunks are still cached');
    v.dropCleanCache();
    await v.read(8192, 4096); // room now: the segment is kept
    await v.write(8192, Buffer.alloc(512, 0x42)); // the chunk changes: its segments are forgotten
    await v.flush();
    await v.read(4 * MiB, 4 * MiB); // four chunks push chunk 0's (clean) entry out
    assert.equal((await v.read(8192, 512))[0], 0x42, 'not the segment kept before the write');
    await v.close();
  });

  it('concurrent grows are serialized: both acknowledged, the LUN ends at the larger size in memory and in volume.json (defect 9)', async () => {
    const mem = new MemoryObjectStore();
    await mem.put(layout.volumeKey, Buffer.from(JSON.stringify({ formatVersion: 1, ...INFO })));
    const store = new FailingStore(mem);
    const v = volume(store);
    // The first volume.json rewrite is slow: without serialization the second lands first.
    store.add({ fault: 'delay', ops: ['put'], key: /volume\.json$/, delayMs: 100, times: 1 });
    const results = await Promise.allSettled([v.grow(32 * MiB), v.grow(48 * MiB)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled'],
    );
    assert.equal(v.info.sizeBytes, 48 * MiB);
    assert.equal((await readVolumeInfo(mem, layout))?.sizeBytes, 48 * MiB);
    await v.close();
  });

  it('online defrag decides orphans with the size at the time it deletes them, not when it listed (defect 9)', async () => {
    const mem = new MemoryObjectStore();
    await mem.put(layout.volumeKey, Buffer.from(JSON.stringify({ formatVersion: 1, ...INFO, sizeBytes: 4 * MiB })));
    const store = new FailingStore(mem);
    const v = volume(store, { ...INFO, sizeBytes: 4 * MiB });
    await v.write(0, randomBytes(4 * MiB), { fua: true });
    await mem.put(layout.chunkKey(5), Buffer.alloc(MiB, 9)); // left by an older, larger life of the name
    v.dropCleanCache();
    // Scrubbing the four chunks is slow; meanwhile the LUN grows and chunk 5 is written.
    store.add({ fault: 'delay', ops: ['get'], key: /\/chunks\//, delayMs: 150 });
    const running = defrag(v, store, layout, { dryRun: false, parallel: 1 });
    await sleep(50);
    await v.grow(8 * MiB);
    const fresh = Buffer.alloc(MiB, 0x55);
    await v.write(5 * MiB, fresh, { fua: true });
    await running;
    store.clear();
    v.dropCleanCache();
    assert.ok((await v.read(5 * MiB, MiB)).equals(fresh), 'the chunk written after the grow is not deleted as an orphan');
    await v.close();
  });

  it('a discard whose DELETE fails keeps each block at its latest data or zeros, never older data, and nothing changes later (found by the simulation)', async () => {
    const mem = new MemoryObjectStore();
    const store = new FailingStore(mem);
    const v = volume(store);
    const a = Buffer.alloc(MiB, 0xa1);
    const b = Buffer.alloc(4096, 0xb2);
    const c = Buffer.alloc(MiB, 0xc3);
    await v.write(5 * MiB, a, { fua: true });
    await v.write(5 * MiB, b); // acknowledged, not yet in the store
    await v.write(6 * MiB, c, { fua: true }); // in the store and cached clean
    store.add({ fault: 'error', ops: ['delete', 'deleteMany'], key: chunkKey(5), times: 1 });
    await assert.rejects(v.discard([{ offset: 5 * MiB, length: MiB }]));
    const five = await v.read(5 * MiB, 4096);
    assert.ok(five.equals(b) || five.every((x) => x === 0), 'the acknowledged write or zeros, not the data it overwrote');
    store.add({ fault: 'lost-answer', ops: ['delete', 'deleteMany'], times: 1 }); // the DELETE of chunk 6 lands, its answer is lost
    await assert.rejects(v.discard([{ offset: 6 * MiB, length: MiB }]));
    store.clear();
    v.dropCleanCache();
    const six = Buffer.from(await v.read(6 * MiB, MiB));
    assert.ok(six.equals(c) || six.every((x) => x === 0));
    await v.close();
    const cold = volume(mem);
    assert.ok((await cold.read(5 * MiB, 4096)).equals(five), 'chunk 5 reads the same after a restart');
    assert.ok((await cold.read(6 * MiB, MiB)).equals(six), 'chunk 6 reads the same after a restart');
    await cold.close();
  });

  it('UNMAP of two chunks waiting for one upload while a read-ahead GET of the other lands: the other reads zeros and stays deleted (found in review)', async () => {
    const mem = new MemoryObjectStore();
    const store = new FailingStore(mem);
    const v = volume(store);
    await v.write(5 * MiB, Buffer.alloc(MiB, 0xa5), { fua: true }); // chunk 5 holds A in the store
    v.dropCleanCache();
    await v.allocation({ offset: 0, length: INFO.sizeBytes });
    await v.write(6 * MiB, Buffer.alloc(4096, 0x66)); // chunk 6 dirty
    store.add({ fault: 'delay', ops: ['put'], key: chunkKey(6), delayMs: 200, times: 1 });
    store.add({ fault: 'slow-answer', ops: ['get'], key: chunkKey(5), delayMs: 50, times: 1 });
    const flushed = v.flush(); // chunk 6 uploads for 200 ms
    await sleep(10);
    await v.prefetch({ offset: 5 * MiB, length: MiB }); // A comes back after 50 ms, while the UNMAP waits
    await v.discard([{ offset: 5 * MiB, length: 2 * MiB }]);
    await flushed;
    assert.ok(
      (await v.read(5 * MiB, MiB)).every((x) => x === 0),
      'discarded blocks read zeros (LBPRZ=1), not the GET that landed meanwhile',
    );
    await v.write(5 * MiB + 4096, Buffer.alloc(4096, 7));
    await v.close();
    const cold = volume(mem);
    const expect = Buffer.alloc(MiB);
    expect.fill(7, 4096, 8192);
    assert.ok((await cold.read(5 * MiB, MiB)).equals(expect), 'the discarded data is not written back with a later partial write');
    await cold.close();
  });
});
