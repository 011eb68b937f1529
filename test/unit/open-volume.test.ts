import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { type OpenLun, openLun, openSnapshotLun } from '../../src/app/open-volume';
import type { LunConfig } from '../../src/config/config';
import { CODEC_META_KEY, KEY_META_KEY, LUN_META_KEY } from '../../src/storage/codec/chunk-codec';
import { isStorageError, type StorageError } from '../../src/storage/errors';
import { SEGMENT_SIZE } from '../../src/storage/integrity';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { type GetResult, listAll, type ObjectStore, type RequestOptions } from '../../src/storage/object-store';
import { createClone, hydrateOnline } from '../../src/storage/snapshots/clones';
import { createSnapshot } from '../../src/storage/snapshots/operations';
import { createVolume, readVolumeInfo } from '../../src/storage/volume-meta';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';

const MiB = 1024 * 1024;

describe('opening a LUN to serve it (issue 13, defect 9)', () => {
  it('reads volume.json after taking the lease: a resize by the lease holder before it is served', async () => {
    const store = new MemoryObjectStore();
    const layout = new LunLayout('luns', 'disk0');
    const info = await createVolume(store, layout, 64 * MiB, 512, SEGMENT_SIZE);
    // `s3tgt lun resize` holds the lease (another host), grows the LUN, then releases the lease.
    const holder = { holder: 'cli', purpose: 'resize', host: 'admin-host', pid: 7, acquiredAt: 'now', renewedAt: 'now', ttlMs: 600, generation: 0 };
    await store.put(layout.leaseKey, Buffer.from(JSON.stringify(holder)));
    setTimeout(() => {
      void (async () => {
        await store.put(layout.volumeKey, Buffer.from(JSON.stringify({ formatVersion: 1, ...info, sizeBytes: 128 * MiB })));
        await store.delete(layout.leaseKey);
      })();
    }, 150);
    const lun = {
      lun: 0,
      name: 'disk0',
      store: 's3',
      sizeBytes: 64 * MiB,
      blockSize: 512,
      cacheBytes: 16 * MiB,
      cacheMode: 'write-back',
      journal: false,
      flushDelayMs: 50,
      readOnly: false,
    } as const satisfies LunConfig;
    const o = await openLun(store, layout, lun, { ttlMs: 600, renewEveryMs: 100, marginMs: 150 });
    try {
      assert.equal(o.volume.info.sizeBytes, 128 * MiB, 'the size the resize wrote, not the one before');
      assert.equal((await readVolumeInfo(store, layout))?.sizeBytes, 128 * MiB);
    } finally {
      await o.volume.close();
      await o.lease.release();
    }
  });
});

/**
 * A memory store that answers ranges as S3ObjectStore does: a range starting past the object's
 * end is S3's 416, which it reports as an empty object (s3-store.ts).
 */
class RangesAsS3 extends MemoryObjectStore {
  override async get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    const got = await super.get(key, range, opts);
    if (got && range && range.offset >= got.meta.size) return { body: Buffer.alloc(0), meta: { size: 0, etag: '', metadata: {} } };
    return got;
  }
}

describe('opening an encoded LUN or its clone (issue 19)', () => {
  const K1 = { id: 'k1', key: randomBytes(32) };
  const K2 = { id: 'k2', key: randomBytes(32) };
  const P = new LunLayout('luns', 'parent');
  const C = new LunLayout('luns', 'clone');
  const TIMING = { ttlMs: 600, renewEveryMs: 100, marginMs: 150 };
  const text = Buffer.from('all work and no play makes a dull disk; '.repeat(Math.ceil(MiB / 40)).slice(0, MiB));
  const lunOf = (name: string, over: Partial<LunConfig> = {}): LunConfig => ({
    lun: 0,
    name,
    store: 's3',
    sizeBytes: 8 * MiB,
    blockSize: 512,
    cacheBytes: 4 * MiB,
    cacheMode: 'write-through',
    journal: false,
    flushDelayMs: 50,
    readOnly: false,
    ...over,
  });
  const keyRefused = (e: unknown): boolean => isStorageError(e, 'invalid') && e.code === 'STORE_ERR_KEY';

  async function withLun<T>(store: ObjectStore, layout: LunLayout, lun: LunConfig, f: (o: OpenLun) => Promise<T>): Promise<T> {
    const o = await openLun(store, layout, lun, TIMING);
    try {
      return await f(o);
    } finally {
      await o.volume.close();
      await o.lease.release();
    }
  }

  it('a LUN whose compression is turned off reads the chunks it compressed, and writes new ones plain', async () => {
    const store = new RangesAsS3();
    await withLun(store, P, lunOf('parent', { compression: 'zstd' }), (o) => o.volume.write(0, text, { fua: true }));
    assert.ok(((await store.head(P.chunkKey(0)))?.size ?? MiB) < MiB / 4, 'chunk 0 is stored compressed');
    await withLun(store, P, lunOf('parent', { compression: 'off' }), async (o) => {
      // First a range past the end of the compressed object (S3: 416, an empty answer), then all.
      assert.ok((await o.volume.read(MiB / 2, 8192)).equals(text.subarray(MiB / 2, MiB / 2 + 8192)), 'a range of it, not zeros');
      assert.ok((await o.volume.read(0, MiB)).equals(text), 'the compressed chunk reads as written');
      await o.volume.write(MiB, text, { fua: true });
    });
    assert.equal((await store.head(P.chunkKey(1)))?.metadata[CODEC_META_KEY], undefined, 'chunk 1 is stored plain');
    await withLun(store, P, lunOf('parent', { compression: 'lz4' }), async (o) => {
      assert.ok((await o.volume.read(0, 2 * MiB)).equals(Buffer.concat([text, text])));
    });
  });

  it("a clone is refused at start unless it has its parent's keys, by key (STORE_ERR_KEY); with them it reads the parent's chunks", async () => {
    const store = new MemoryObjectStore();
    await withLun(store, P, lunOf('parent', { encryption: { current: K1, previous: [] } }), (o) => o.volume.write(0, text, { fua: true }));
    const info = await readVolumeInfo(store, P);
    assert.ok(info);
    const gate = WriteGate.unleased(systemClock, 'test').bind(store);
    await createSnapshot(gate, P, info, 'base');
    await createClone(gate, P, 'base', C);
    await assert.rejects(
      openLun(store, C, lunOf('clone', { encryption: { current: K2, previous: [] } }), TIMING),
      (e: StorageError) => keyRefused(e) && /clone.*"parent".*key "k1"/.test(e.message),
    );
    await assert.rejects(openLun(store, C, lunOf('clone'), TIMING), (e: StorageError) => keyRefused(e) && /"parent"/.test(e.message));
    await assert.rejects(
      openLun(store, C, lunOf('clone', { encryption: { current: { id: 'k1', key: randomBytes(32) }, previous: [] } }), TIMING),
      (e: StorageError) => keyRefused(e) && /key "k1" is not the key/.test(e.message),
    );
    await withLun(store, C, lunOf('clone', { encryption: { current: K2, previous: [K1] } }), async (o) => {
      assert.ok((await o.volume.read(0, MiB)).equals(text), "the parent's sealed chunk, through the clone");
      await o.volume.write(MiB, text, { fua: true });
    });
    assert.equal((await store.head(C.chunkKey(1)))?.metadata[KEY_META_KEY], 'k2', "the clone's own chunks are sealed with its current key");
  });

  it("an encrypted clone hydrated while served: every chunk it keeps, its snapshots' too, is sealed as its own; then it needs neither parent nor parent key", async () => {
    const store = new MemoryObjectStore();
    const fill = (b: number): Buffer => Buffer.alloc(MiB, b);
    await withLun(store, P, lunOf('parent', { encryption: { current: K1, previous: [] } }), async (o) => {
      await o.volume.write(0, fill(1), { fua: true });
      await o.volume.write(MiB, fill(2), { fua: true });
    });
    const pinfo = await readVolumeInfo(store, P);
    assert.ok(pinfo);
    const gate = WriteGate.unleased(systemClock, 'test').bind(store);
    await createSnapshot(gate, P, pinfo, 'base');
    const cinfo = await createClone(gate, P, 'base', C);
    const both = lunOf('clone', { encryption: { current: K2, previous: [K1] } });
    await withLun(store, C, both, (o) => o.volume.write(2 * MiB, fill(3), { fua: true }));
    await createSnapshot(gate, C, cinfo, 's1');
    await withLun(store, C, both, async (o) => {
      // Chunk 0 is inherited: its preservation into s1 copies the parent's sealed object.
      await o.volume.write(0, fill(4), { fua: true });
      assert.ok(o.preserving);
      const r = await hydrateOnline(o.lease.gate.bind(store), C, o.volume.info, o.volume, o.lease.gate.bind(o.preserving));
      assert.equal(r.copied, 6, 'chunks 1 and 3-7 were inherited (3-7 hold nothing: hole markers)');
      assert.ok(r.snapshotChunks >= 2);
    });
    assert.equal((await readVolumeInfo(store, C))?.parent, undefined, 'independent');
    let sealed = 0;
    for await (const e of listAll(store, 'luns/clone/')) {
      if (e.size === 0 || !/\/chunks\//.test(e.key)) continue;
      const meta = await store.head(e.key);
      assert.equal(meta?.metadata[LUN_META_KEY], cinfo.uuid, `${e.key} is sealed by the clone`);
      assert.equal(meta?.metadata[KEY_META_KEY], 'k2', `${e.key} is sealed with the clone's key`);
      sealed++;
    }
    assert.ok(sealed >= 5, `${sealed} chunk objects`);
    // The parent's data and key gone: the clone and its snapshot read as they were.
    for await (const e of listAll(store, 'luns/parent/')) await store.delete(e.key);
    const own = lunOf('clone', { encryption: { current: K2, previous: [] } });
    await withLun(store, C, own, async (o) => {
      assert.ok((await o.volume.read(0, 3 * MiB)).equals(Buffer.concat([fill(4), fill(2), fill(3)])));
    });
    const snap = await openSnapshotLun(store, C, { ...own, name: 'clone-s1', readOnly: true, snapshotOf: { lun: 'clone', snapshot: 's1' } });
    try {
      assert.ok((await snap.read(0, 3 * MiB)).equals(Buffer.concat([fill(1), fill(2), fill(3)])), 's1 as the clone was');
    } finally {
      await snap.close();
    }
  });

  it('EXTENDED COPY between compressed and plain LUNs of one bucket is server-side; from an encrypted LUN it goes through the target', async () => {
    const store = new MemoryObjectStore();
    const D = new LunLayout('luns', 'dest');
    const src = await openLun(store, P, lunOf('parent', { compression: 'zstd' }), TIMING);
    const dst = await openLun(store, D, lunOf('dest'), TIMING);
    try {
      await src.volume.write(0, Buffer.concat([text, text]), { fua: true });
      assert.deepEqual(await dst.volume.copyFrom(src.volume, 0, 2 * MiB, 2 * MiB), [], 'both chunks copied as objects');
      assert.equal((await store.head(D.chunkKey(2)))?.metadata[CODEC_META_KEY], 'v1/zstd/none', 'the compressed object itself');
      assert.ok((await dst.volume.read(2 * MiB, 2 * MiB)).equals(Buffer.concat([text, text])));
    } finally {
      for (const o of [src, dst]) {
        await o.volume.close();
        await o.lease.release();
      }
    }
    const sealed = await openLun(store, C, lunOf('clone', { encryption: { current: K1, previous: [] } }), TIMING);
    const plain = await openLun(store, D, lunOf('dest'), TIMING);
    try {
      await sealed.volume.write(0, text, { fua: true });
      assert.deepEqual(await plain.volume.copyFrom(sealed.volume, 0, 0, MiB), [{ sourceOffset: 0, offset: 0, length: MiB }]);
    } finally {
      for (const o of [sealed, plain]) {
        await o.volume.close();
        await o.lease.release();
      }
    }
  });
});
