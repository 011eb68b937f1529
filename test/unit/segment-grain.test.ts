import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { isStorageError } from '../../src/storage/errors';
import { FileObjectStore } from '../../src/storage/file-store';
import { CRC_META_KEY, FINE_SEGMENT_SIZE, SEGMENT_SIZE, segmentCrcs, verifySegments } from '../../src/storage/integrity';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { GetResult, ObjectStore, RequestOptions } from '../../src/storage/object-store';
import { createVolume, readVolumeInfo, segmentSizeFor } from '../../src/storage/volume-meta';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { MiB, testOptions } from '../lib/volumes';

const LAYOUT = new LunLayout('p', 'grain');

/** A store that remembers the length of every ranged GET. */
function recording(inner: ObjectStore): { store: ObjectStore; ranges: number[] } {
  const ranges: number[] = [];
  const store: ObjectStore = Object.create(inner);
  store.get = (key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> => {
    if (range) ranges.push(range.length);
    return inner.get(key, range, opts);
  };
  return { store, ranges };
}

async function volumeOn(store: ObjectStore, kind: 'file' | 's3'): Promise<ChunkVolume> {
  const info = (await readVolumeInfo(store, LAYOUT)) ?? (await createVolume(store, LAYOUT, 8 * MiB, 512, segmentSizeFor(kind)));
  return new ChunkVolume(store, LAYOUT, info, testOptions(4 * MiB), { gate: WriteGate.unleased(systemClock, 'grain') });
}

describe('checksum segments of 4 KiB on the local chunk store (issue 18: a 4 KiB miss read and checked 64 KiB)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-grain-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a new LUN on the file store has 4 KiB segments (format 2), on S3 64 KiB (format 1)', async () => {
    const store = new MemoryObjectStore();
    const fine = await createVolume(store, LAYOUT, 8 * MiB, 512, segmentSizeFor('file'));
    assert.equal(fine.segmentSize, FINE_SEGMENT_SIZE);
    const json = JSON.parse(((await store.get(LAYOUT.volumeKey)) as GetResult).body.toString());
    assert.equal(json.formatVersion, 2);
    assert.equal(json.segmentSize, 4096);
    assert.equal((await readVolumeInfo(store, LAYOUT))?.segmentSize, 4096);
    const s3 = new LunLayout('p', 'coarse');
    const coarse = await createVolume(store, s3, 8 * MiB, 512, segmentSizeFor('s3'));
    assert.equal(coarse.segmentSize, undefined);
    const cj = JSON.parse(((await store.get(s3.volumeKey)) as GetResult).body.toString());
    assert.equal(cj.formatVersion, 1);
    assert.equal(cj.segmentSize, undefined);
  });

  it('a LUN is created with one of the two grains only', async () => {
    await assert.rejects(createVolume(new MemoryObjectStore(), LAYOUT, 8 * MiB, 512, 8192), /checksum segment 8192 must be 4096 or 65536/);
  });

  it('a format-2 volume.json without segmentSize, or a format-1 one with it, is refused by name', async () => {
    const store = new MemoryObjectStore();
    const base = {
      name: 'grain',
      sizeBytes: 8 * MiB,
      logicalBlockSize: 512,
      chunkSize: MiB,
      uuid: '00000000-0000-0000-0000-000000000001',
      created: '',
    };
    await store.put(LAYOUT.volumeKey, Buffer.from(JSON.stringify({ formatVersion: 2, ...base })));
    await assert.rejects(readVolumeInfo(store, LAYOUT), /segmentSize/);
    await store.put(LAYOUT.volumeKey, Buffer.from(JSON.stringify({ formatVersion: 1, ...base, segmentSize: 4096 })));
    await assert.rejects(readVolumeInfo(store, LAYOUT), /segmentSize/);
    await store.put(LAYOUT.volumeKey, Buffer.from(JSON.stringify({ formatVersion: 1, ...base })));
    assert.equal((await readVolumeInfo(store, LAYOUT))?.segmentSize, undefined);
  });

  it('a 4 KiB read that misses the cache reads 4 KiB of the chunk file, checked; a flipped byte elsewhere does not matter to it', async () => {
    const files = new FileObjectStore(path.join(dir, 'store'));
    const data = Buffer.alloc(MiB);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const w = await volumeOn(files, 'file');
    await w.write(MiB, data, { fua: true });
    await w.close();
    const stored = (await files.get(LAYOUT.chunkKey(1))) as GetResult;
    assert.equal(stored.meta.metadata[CRC_META_KEY].length, 256 * 8);
    const { store, ranges } = recording(files);
    const v = await volumeOn(store, 'file');
    const got = await v.read(MiB + 3 * 4096 + 512, 4096 - 512);
    assert.ok(got.equals(data.subarray(3 * 4096 + 512, 4 * 4096)));
    assert.deepEqual(ranges, [4096]);
    await v.close();
  });

  it('a corrupt 4 KiB segment is a data error for the reads that touch it only', async () => {
    const mem = new MemoryObjectStore();
    const w = await volumeOn(mem, 'file');
    await w.write(0, Buffer.alloc(MiB, 5), { fua: true });
    await w.close();
    const good = Buffer.alloc(MiB, 5);
    const bad = Buffer.from(good);
    bad[2 * 4096 + 100] ^= 1;
    await mem.put(LAYOUT.chunkKey(0), bad, { metadata: { [CRC_META_KEY]: segmentCrcs(good, FINE_SEGMENT_SIZE) } });
    const v = await volumeOn(mem, 'file');
    await assert.rejects(v.read(2 * 4096, 4096), (e: unknown) => isStorageError(e, 'data'));
    assert.ok((await v.read(5 * 4096, 4096)).equals(Buffer.alloc(4096, 5)));
    await v.close();
  });

  it("an object's grain comes from its checksums: bytes that are not whole segments of it are a data error, never a false match", () => {
    const chunk = Buffer.alloc(MiB, 9);
    const coarse = segmentCrcs(chunk, SEGMENT_SIZE);
    assert.doesNotThrow(() => verifySegments('k', chunk.subarray(0, SEGMENT_SIZE), 0, coarse, MiB));
    assert.throws(
      () => verifySegments('k', chunk.subarray(0, 4096), 4096, coarse, MiB),
      (e: unknown) => isStorageError(e, 'data') && /not whole 65536-byte checksum segments/.test((e as Error).message),
    );
    const fine = segmentCrcs(chunk, FINE_SEGMENT_SIZE);
    assert.doesNotThrow(() => verifySegments('k', chunk.subarray(0, 4096), 4096, fine, MiB));
    assert.throws(
      () => verifySegments('k', chunk.subarray(0, 4096), 0, fine.slice(0, 24), MiB),
      (e: unknown) => isStorageError(e, 'data'),
    );
  });
});
