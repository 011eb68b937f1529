import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { GetResult, ObjectStore, RequestOptions } from '../../src/storage/object-store';
import { lunDataStore } from '../../src/storage/snapshots/preserving-store';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { MiB, testInfo, testOptions } from '../lib/volumes';

const SIZE = 64 * MiB;

/** The memory store answering in a later macrotask, as every real store's I/O does, remembering the buffer each whole-chunk GET answered with. */
class RecordingStore extends MemoryObjectStore {
  readonly bodies: ArrayBuffer[] = [];
  /** Called as each GET returns (the test's way into the microtasks right after it). */
  afterGet: (() => Promise<void>) | undefined;
  override async get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    await new Promise((r) => setImmediate(r));
    const r = await super.get(key, range, opts);
    if (r && r.body.length === MiB && r.body.buffer instanceof ArrayBuffer) this.bodies.push(r.body.buffer);
    void this.afterGet?.();
    return r;
  }
}

async function open(store: ObjectStore, cacheBytes: number): Promise<ChunkVolume> {
  const layout = new LunLayout('p', 'bufs');
  const data = await lunDataStore(store, layout, null);
  return new ChunkVolume(data, layout, { ...testInfo(SIZE), name: 'bufs' }, testOptions(cacheBytes), {
    gate: WriteGate.unleased(systemClock, 'bufs'),
  });
}

async function stored(store: ObjectStore, chunks: number): Promise<void> {
  const w = await open(store, 64 * MiB);
  for (let i = 0; i < chunks; i++) await w.write(i * MiB, Buffer.alloc(MiB, i + 1), { fua: true });
  await w.close();
}

describe('chunk buffers of fetched chunks (issue 18: a cold read page-faulted a fresh 1 MiB buffer per GET)', () => {
  it('a cold whole-chunk read lands in a buffer an evicted chunk gave back', async () => {
    const store = new RecordingStore();
    await stored(store, 24);
    const v = await open(store, 4 * MiB);
    store.bodies.length = 0;
    for (let i = 0; i < 24; i++) {
      const view = await v.readView(i * MiB, MiB);
      assert.ok(view.data.equals(Buffer.alloc(MiB, i + 1)), `chunk ${i}`);
      view.release();
    }
    const distinct = new Set(store.bodies).size;
    assert.equal(store.bodies.length, 24);
    // Four cache slots: after the first few GETs, each lands in a buffer an eviction freed.
    assert.ok(distinct <= 8, `${distinct} distinct buffers for ${store.bodies.length} GETs`);
    await v.close();
  });

  it('a view still held when its chunk is evicted keeps its bytes: that buffer is never handed out again', async () => {
    const store = new RecordingStore();
    await stored(store, 24);
    const v = await open(store, 4 * MiB);
    const held = await v.readView(0, MiB);
    for (let i = 1; i < 24; i++) (await v.readView(i * MiB, MiB)).release();
    assert.ok(held.data.equals(Buffer.alloc(MiB, 1)), 'the held view of chunk 0 was overwritten');
    held.release();
    await v.close();
  });

  it('a chunk evicted and its buffer reused in the very microtasks after its GET lands: the readers that joined the GET still see its bytes', async () => {
    // The window between the cache adopting a fetched buffer and the resumption of the callers
    // that waited for it: a write that needs a slot evicts the chunk there (the only clean one)
    // and fills a buffer; were the fetched one given back, the write would fill it under them.
    for (let depth = 0; depth < 12; depth++) {
      const store = new RecordingStore();
      await stored(store, 24);
      const v = await open(store, 4 * MiB);
      for (let k = 0; k < 3; k++) await v.write((10 + k) * MiB, Buffer.alloc(MiB, 0xe0 + k));
      let writing: Promise<void> | undefined;
      store.afterGet = async () => {
        for (let n = 0; n < depth; n++) await null;
        writing = v.write(20 * MiB, Buffer.alloc(MiB, 0xee));
      };
      const views = await Promise.all(Array.from({ length: 3 }, () => v.readView(5 * MiB, MiB)));
      store.afterGet = undefined;
      await writing;
      for (const view of views)
        assert.ok(view.data.equals(Buffer.alloc(MiB, 6)), `a view of chunk 5 holds other bytes (hook ${depth} microtasks after the GET)`);
      for (const view of views) view.release();
      await v.close();
    }
  });
});
