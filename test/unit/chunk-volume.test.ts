import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ChunkVolume, type ChunkVolumeOptions } from '../../src/storage/chunk-volume';
import { StorageError } from '../../src/storage/errors';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { GetResult, ObjectStore, PutOptions } from '../../src/storage/object-store';

const MiB = 1024 * 1024;
const layout = new LunLayout('p', 'vol');

function volume(store: ObjectStore, opts: Partial<ChunkVolumeOptions> = {}, size = 64 * MiB): ChunkVolume {
  return new ChunkVolume(
    store,
    layout,
    { name: 'vol', sizeBytes: size, logicalBlockSize: 512, chunkSize: MiB, uuid: '00000000-0000-0000-0000-000000000000', created: '' },
    { cacheBytes: 16 * MiB, cacheMode: 'write-back', readOnly: false, flushDelayMs: 50, readAheadChunks: 2, spaceTimeoutMs: 5000, ...opts },
  );
}

/** A store that counts requests and can hold PUTs until released. */
class SpyStore extends MemoryObjectStore {
  gets = 0;
  puts = 0;
  deletes = 0;
  gate: Promise<void> | undefined;
  /** Latency of every GET, so requests overlap as they do against S3. */
  getDelayMs = 0;
  override async get(key: string, range?: { offset: number; length: number }): Promise<GetResult | null> {
    this.gets++;
    if (this.getDelayMs > 0) await new Promise((r) => setTimeout(r, this.getDelayMs));
    return super.get(key, range);
  }
  override async put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    this.puts++;
    if (this.gate) await this.gate;
    return super.put(key, body, opts);
  }
  override async delete(key: string): Promise<void> {
    this.deletes++;
    return super.delete(key);
  }
  override async deleteMany(keys: readonly string[]): Promise<void> {
    this.deletes += keys.length;
    return super.deleteMany(keys);
  }
}

describe('ChunkVolume', () => {
  it('reads zeros from a new volume without a request once the allocation map is built', async () => {
    const store = new SpyStore();
    const v = volume(store);
    await v.chunkStates();
    const before = store.gets;
    const r = await v.read(3 * MiB + 512, 4096);
    assert.ok(r.every((b) => b === 0));
    assert.equal(store.gets, before, 'a known hole costs no GET');
    await v.close();
  });

  it('write, flush, reopen, read back; the store holds one 1 MiB object per touched chunk under the layout keys', async () => {
    const store = new SpyStore();
    const v = volume(store);
    const data = randomBytes(3 * MiB);
    await v.write(MiB, data);
    await v.flush();
    assert.equal(store.count(layout.chunksPrefix), 3);
    for (const i of [1, 2, 3]) {
      const o = await store.get(layout.chunkKey(i));
      assert.equal(o?.body.length, MiB);
      assert.match(o?.meta.metadata['s3tgt-crc32c'] ?? '', /^[0-9a-f]{128}$/);
    }
    await v.close();
    const v2 = volume(store);
    assert.ok((await v2.read(MiB, 3 * MiB)).equals(data));
    await v2.close();
  });

  it('a partial write needs no GET when the rest of the chunk is written too, and one GET otherwise', async () => {
    const store = new SpyStore();
    const v = volume(store);
    const base = randomBytes(MiB);
    await v.write(0, base, { fua: true });
    v.dropCleanCache();
    const gets0 = store.gets;
    // Two halves of chunk 1, never stored before: no GET at all.
    await v.write(MiB, Buffer.alloc(MiB / 2, 1));
    await v.write(MiB + MiB / 2, Buffer.alloc(MiB / 2, 2));
    await v.flush();
    assert.equal(store.gets, gets0, 'fully rewritten chunk: no base fetch');
    // 4 KiB into stored chunk 0 (evicted from cache): exactly one base fetch at flush.
    v.dropCleanCache();
    const gets1 = store.gets;
    await v.write(8192, Buffer.alloc(4096, 7));
    await v.flush();
    assert.equal(store.gets - gets1, 1, 'one GET for the missing sectors');
    const expect = Buffer.from(base);
    expect.fill(7, 8192, 8192 + 4096);
    v.dropCleanCache();
    assert.ok((await v.read(0, MiB)).equals(expect));
    await v.close();
  });

  it('two writers on different sectors of the same chunks never lose each other (RMW race)', async () => {
    const store = new SpyStore();
    const v = volume(store, { flushDelayMs: 0 });
    const base = randomBytes(4 * MiB);
    await v.write(0, base, { fua: true });
    v.dropCleanCache();
    const expect = Buffer.from(base);
    const writes: Promise<void>[] = [];
    for (let round = 0; round < 50; round++) {
      for (let chunk = 0; chunk < 4; chunk++) {
        const a = chunk * MiB + ((round * 2) % 2048) * 512;
        const b = chunk * MiB + ((round * 2 + 1) % 2048) * 512;
        const da = Buffer.alloc(512, round + 1);
        const db = Buffer.alloc(512, 255 - round);
        da.copy(expect, a);
        db.copy(expect, b);
        writes.push(v.write(a, da), v.write(b, db));
        if (round % 7 === 0) writes.push(v.flush());
        if (round % 11 === 0) v.dropCleanCache();
      }
    }
    await Promise.all(writes);
    await v.flush();
    v.dropCleanCache();
    const v2 = volume(store);
    assert.ok((await v2.read(0, 4 * MiB)).equals(expect), 'every sector of both writers is there');
    await v.close();
    await v2.close();
  });

  it('eviction under back-pressure never loses an acknowledged write (slow store, tiny cache, 2 writers)', async () => {
    class SlowStore extends MemoryObjectStore {
      override async get(key: string, range?: { offset: number; length: number }): Promise<GetResult | null> {
        await new Promise((r) => setTimeout(r, Math.random() * 4));
        return super.get(key, range);
      }
      override async put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
        await new Promise((r) => setTimeout(r, Math.random() * 4));
        return super.put(key, body, opts);
      }
    }
    const store = new SlowStore();
    const v = volume(store, { cacheBytes: 4 * MiB, flushDelayMs: 0 });
    await v.write(0, randomBytes(8 * MiB), { fua: true });
    const sectors = (8 * MiB) / 512;
    const pattern = (s: number): number => 1 + ((s * 13) % 254);
    // Writer w owns sectors of parity w; both walk the 8 chunks round-robin, 64 writes in flight.
    const writer = async (w: number): Promise<void> => {
      const inflight = new Set<Promise<void>>();
      for (let i = 0; i < sectors / 2; i++) {
        const s = 2 * ((i % 8) * 1024 + Math.floor(i / 8)) + w;
        const p: Promise<void> = v.write(s * 512, Buffer.alloc(512, pattern(s))).then(() => {
          inflight.delete(p);
        });
        inflight.add(p);
        if (inflight.size >= 64) await Promise.race(inflight);
      }
      await Promise.all(inflight);
    };
    await Promise.all([writer(0), writer(1)]);
    await v.flush();
    const cold = volume(store);
    const d = await cold.read(0, 8 * MiB);
    let lost = 0;
    for (let s = 0; s < sectors; s++) if (d[s * 512] !== pattern(s)) lost++;
    assert.equal(lost, 0, `${lost} sectors lost`);
    assert.ok(v.stats.backPressureWaits > 0, 'the cache really was full');
    await v.close();
    await cold.close();
  });

  it('overlapping writes land in submission order', async () => {
    const v = volume(new MemoryObjectStore());
    const ps = [];
    for (let i = 1; i <= 20; i++) ps.push(v.write(1000 * 512, Buffer.alloc(64 * 1024, i)));
    await Promise.all(ps);
    assert.ok((await v.read(1000 * 512, 64 * 1024)).every((b) => b === 20));
    await v.close();
  });

  it('FUA and flush return only once the bytes are in the store', async () => {
    const store = new SpyStore();
    const v = volume(store, { flushDelayMs: 60_000 });
    let released = false;
    let release!: () => void;
    store.gate = new Promise((r) => {
      release = () => {
        released = true;
        r();
      };
    });
    const w = v.write(0, Buffer.alloc(4096, 9), { fua: true });
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(await Promise.race([w.then(() => 'done'), Promise.resolve('pending')]), 'pending', 'FUA waits for the PUT');
    release();
    await w;
    assert.ok(released);
    const o = await store.get(layout.chunkKey(0));
    assert.equal(o?.body[0], 9);
    await v.close();
  });

  it('a write-through volume stores every write before returning', async () => {
    const store = new SpyStore();
    const v = volume(store, { cacheMode: 'write-through', flushDelayMs: 60_000 });
    await v.write(5 * MiB, Buffer.alloc(512, 3));
    assert.equal((await store.get(layout.chunkKey(5)))?.body[0], 3);
    await v.close();
  });

  it('an all-zero chunk is deleted, not stored; discard deletes whole chunks and zeroes partial ones', async () => {
    const store = new SpyStore();
    const v = volume(store);
    await v.write(0, randomBytes(8 * MiB), { fua: true });
    assert.equal(store.count(layout.chunksPrefix), 8);
    await v.write(MiB, Buffer.alloc(MiB), { fua: true });
    assert.equal(store.count(layout.chunksPrefix), 7, 'zeroed chunk deleted');
    await v.discard([{ offset: 2 * MiB + 4096, length: 4 * MiB }]);
    await v.flush();
    // chunks 3,4,5 deleted whole; 2 and 6 zeroed in part and kept
    assert.deepEqual(
      [...Array(8).keys()].filter((i) => store.count(layout.chunkKey(i)) === 1),
      [0, 2, 6, 7],
    );
    const r = await v.read(2 * MiB, 5 * MiB);
    assert.ok(r.subarray(4096, 4096 + 4 * MiB).every((b) => b === 0));
    const ext = await v.allocation({ offset: 0, length: 8 * MiB });
    assert.deepEqual(
      ext.map((e) => [e.offset / MiB, e.length / MiB, e.mapped]),
      [
        [0, 1, true],
        [1, 1, false],
        [2, 1, true],
        [3, 3, false],
        [6, 2, true],
      ],
    );
    await v.close();
  });

  it('discard after a pending upload of the same chunk: the DELETE lands last', async () => {
    const store = new SpyStore();
    const v = volume(store, { flushDelayMs: 0 });
    let release!: () => void;
    store.gate = new Promise((r) => {
      release = r;
    });
    await v.write(0, randomBytes(MiB));
    await new Promise((r) => setTimeout(r, 120)); // flusher has started the PUT, which is held
    const d = v.discard([{ offset: 0, length: MiB }]);
    release();
    store.gate = undefined;
    await d;
    await v.flush();
    assert.equal(store.count(layout.chunkKey(0)), 0);
    assert.ok((await v.read(0, MiB)).every((b) => b === 0));
    await v.close();
  });

  it('back-pressure: a cache full of dirty chunks makes writers wait for flushes, then they proceed', async () => {
    const store = new SpyStore();
    const v = volume(store, { cacheBytes: 4 * MiB, flushDelayMs: 60_000 }, 128 * MiB);
    for (let i = 0; i < 40; i++) await v.write(i * MiB + 4096, Buffer.alloc(4096, 1));
    await v.flush();
    assert.equal(store.count(layout.chunksPrefix), 40);
    assert.ok(v.stats.backPressureWaits > 0);
    await v.close();
  });

  it('a writer facing a store that cannot take flushes gets a retryable error, and no acknowledged data is lost', async () => {
    const store = new SpyStore();
    const v = volume(store, { cacheBytes: 4 * MiB, flushDelayMs: 10, spaceTimeoutMs: 300 }, 128 * MiB);
    const original = store.put.bind(store);
    store.put = async () => {
      throw new StorageError('unavailable', 'injected outage');
    };
    const acked: number[] = [];
    let failure: unknown;
    for (let i = 0; i < 10; i++) {
      try {
        await v.write(i * MiB, Buffer.alloc(4096, i + 1));
        acked.push(i);
      } catch (e) {
        failure = e;
        break;
      }
    }
    assert.ok(failure instanceof StorageError && failure.kind === 'unavailable');
    await assert.rejects(v.flush(), { kind: 'unavailable' });
    store.put = original;
    await v.flush();
    for (const i of acked) assert.equal((await v.read(i * MiB, 512))[0], i + 1);
    await v.close();
  });

  it('a corrupted chunk is a data error on read, never silent', async () => {
    const store = new SpyStore();
    const v = volume(store);
    await v.write(0, randomBytes(MiB), { fua: true });
    v.dropCleanCache();
    store.corrupt(layout.chunkKey(0), 70_000);
    await assert.rejects(v.read(65536, 4096), { code: 'STORE_ERR_CHECKSUM' });
    // A range in another 64 KiB segment still verifies and reads fine.
    await v.read(0, 4096);
    assert.ok(v.stats.checksumErrors >= 1);
    await v.close();
  });

  it('update is an atomic read-modify-write: concurrent increments are never lost', async () => {
    const v = volume(new MemoryObjectStore());
    const inc = (cur: Buffer): Buffer => {
      const next = Buffer.from(cur);
      next.writeUInt32LE(cur.readUInt32LE(0) + 1, 0);
      return next;
    };
    const ops = [];
    for (let i = 0; i < 200; i++) {
      ops.push(v.update(MiB - 512, 1024, inc)); // straddles chunks 0 and 1
      if (i % 10 === 0) ops.push(v.write(MiB + 4096, Buffer.alloc(512, i)), v.flush());
    }
    await Promise.all(ops);
    assert.equal((await v.read(MiB - 512, 512)).readUInt32LE(0), 200);
    await v.update(0, 512, () => null);
    await assert.rejects(v.update(MiB - 256, 512, inc), { code: 'STORE_ERR_INTERNAL' }, 'unaligned ranges are refused');
    await v.close();
  });

  it('write same of a pattern fills the range; of zeros it deallocates', async () => {
    const store = new SpyStore();
    const v = volume(store);
    const block = Buffer.alloc(512);
    block.write('s3tgt');
    await v.writeSame({ offset: 512, length: 3 * MiB }, block);
    const r = await v.read(512, 3 * MiB);
    for (let o = 0; o < r.length; o += 512) assert.equal(r.toString('ascii', o, o + 5), 's3tgt');
    await v.flush();
    await v.writeSame({ offset: 0, length: 4 * MiB }, Buffer.alloc(512));
    await v.flush();
    assert.equal(store.count(layout.chunksPrefix), 0);
    await v.close();
  });

  it('sequential reads prefetch the next chunks', async () => {
    const store = new SpyStore();
    const v = volume(store);
    await v.write(0, randomBytes(8 * MiB), { fua: true });
    v.dropCleanCache();
    for (let o = 0; o < 3 * 256 * 1024; o += 256 * 1024) await v.read(o, 256 * 1024);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(v.stats.readAheadChunks >= 1);
    await v.close();
  });

  it('a read view keeps its bytes while a write lands on the chunk, and a released one lets the next write skip the copy', async () => {
    const store = new SpyStore();
    const v = volume(store, { flushDelayMs: 60_000 }); // no upload in between (it would copy too)
    const old = Buffer.alloc(4096, 0x11);
    await v.write(2 * MiB, old);
    const view = await v.readView(2 * MiB, 4096);
    assert.ok(view.data.equals(old));
    // Not released yet (the Data-In is still queued): the write must not touch these bytes.
    await v.write(2 * MiB, Buffer.alloc(4096, 0x22));
    assert.ok(view.data.equals(old), 'the view still holds what was read');
    const now = await v.readView(2 * MiB, 4096);
    assert.ok(now.data.equals(Buffer.alloc(4096, 0x22)));
    now.release();
    view.release();
    view.release(); // twice is harmless
    // Released: the next write goes into the same memory a fresh view sees.
    const second = await v.readView(2 * MiB, 4096);
    second.release();
    await v.write(2 * MiB, Buffer.alloc(4096, 0x33));
    assert.ok(second.data.equals(Buffer.alloc(4096, 0x33)), 'written in place, no copy');
    await v.close();
  });

  it('a reader and read-ahead that want the same chunk share one GET', async () => {
    const store = new SpyStore();
    const v = volume(store, { readAheadChunks: 4 });
    await v.write(0, randomBytes(16 * MiB));
    await v.close();
    const cold = volume(store, { readAheadChunks: 4 });
    await cold.chunkStates();
    const before = store.gets;
    store.getDelayMs = 5;
    // Sixteen 1 MiB reads in flight at once, in order (an initiator at QD16): read-ahead starts
    // after the first ones complete, for chunks whose reads are already on their way.
    const reads = Array.from({ length: 16 }, (_, i) => cold.read(i * MiB, MiB));
    await Promise.all(reads);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(store.gets - before, 16, 'one GET per chunk');
    await cold.close();
  });
});
