import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { GetResult } from '../../src/storage/object-store';
import { STREAMED_CHUNKS } from '../../src/storage/writeback';
import { MiB, TEST_LAYOUT, testInfo, testOptions } from '../lib/volumes';

const SIZE = 320 * MiB;
const CACHE = 128 * MiB;
const WORKING_SET = [5, 2, 9, 0, 7, 3, 8, 1, 6, 4];

class CountingStore extends MemoryObjectStore {
  gets = 0;
  override async get(key: string, range?: { offset: number; length: number }): Promise<GetResult | null> {
    this.gets++;
    return super.get(key, range);
  }
}

const open = (store: CountingStore): ChunkVolume =>
  new ChunkVolume(store, TEST_LAYOUT, testInfo(SIZE), { ...testOptions(CACHE), readAheadChunks: 8 });

/** Every chunk of the LUN stored, each filled with its index. */
async function filled(): Promise<CountingStore> {
  const store = new CountingStore();
  const v = open(store);
  for (let i = 0; i < SIZE / MiB; i++) await v.write(i * MiB, Buffer.alloc(MiB, i & 0xff), { fua: true });
  await v.close();
  store.gets = 0;
  return store;
}

describe('sequential streams in the chunk cache (issue 18)', () => {
  it('a sequential read of more than the cache keeps the working set cached and streams through a bounded set of buffers', async () => {
    const store = await filled();
    const v = open(store);
    // The working set: read out of order, so not a stream.
    for (const i of WORKING_SET) assert.equal((await v.read(i * MiB + 4096, 4096))[0], i);
    for (const i of WORKING_SET) await v.read(i * MiB, MiB);
    const workingGets = store.gets;
    // A backup streams 300 chunks (more than twice the cache) in 1 MiB reads.
    for (let i = 20; i < 320; i++) assert.equal((await v.read(i * MiB, MiB))[100], i & 0xff);
    assert.ok(v.stats.streamedEvictions > 0, 'the stream reused its own buffers');
    assert.ok(
      v.cachedBytes <= (WORKING_SET.length + STREAMED_CHUNKS + 8 + 2) * MiB,
      `the stream holds at most STREAMED_CHUNKS read chunks plus its read-ahead (${v.cachedBytes / MiB} MiB cached)`,
    );
    const before = store.gets;
    for (const i of WORKING_SET) assert.equal((await v.read(i * MiB, MiB))[7], i);
    assert.equal(store.gets - before, 0, 'the working set is still cached after the stream');
    assert.ok(workingGets <= 2 * WORKING_SET.length);
    await v.close();
  });

  it('a streamed chunk that a random reader reads is kept like any other', async () => {
    const store = await filled();
    const v = open(store);
    for (let i = 20; i < 40; i++) await v.read(i * MiB, MiB);
    // Chunk 30 came in with the stream; a random read of it makes it an ordinary cached chunk.
    await v.read(30 * MiB + 8192, 4096);
    await v.read(31 * MiB + 8192, 4096); // and out of the stream again
    for (let i = 40; i < 320; i++) await v.read(i * MiB, MiB);
    const before = store.gets;
    assert.equal((await v.read(30 * MiB, 4096))[0], 30);
    assert.equal(store.gets - before, 0, 'chunk 30 stayed cached');
    await v.close();
  });
});
