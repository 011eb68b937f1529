import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { WRITER_META_KEY } from '../../src/storage/chunk-tags';
import { ChunkVolume, type VolumeEnv } from '../../src/storage/chunk-volume';
import { isStorageError, StorageError } from '../../src/storage/errors';
import { FileObjectStore } from '../../src/storage/file-store';
import { SEGMENT_SIZE } from '../../src/storage/integrity';
import type { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { type GetResult, listAll, type ObjectMeta, type ObjectStore, type PutOptions } from '../../src/storage/object-store';
import { RetryingStore } from '../../src/storage/retrying-store';
import { createClone } from '../../src/storage/snapshots/clones';
import { createSnapshot } from '../../src/storage/snapshots/operations';
import { lunDataStore } from '../../src/storage/snapshots/preserving-store';
import type { VolumeInfo } from '../../src/storage/volume';
import { createVolume, readVolumeInfo } from '../../src/storage/volume-meta';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { FailingStore } from '../lib/failing-store';
import { inTempDir } from '../lib/temp-dir';
import { MiB, TEST_LAYOUT, testInfo, testOptions } from '../lib/volumes';

const layout = TEST_LAYOUT;
const INFO = testInfo(32 * MiB);
const OPTIONS = testOptions(16 * MiB);
/** Fast retries: a lost answer is repeated at once, a failing key gives up within 200 ms. */
const RETRY = { deadlineMs: 200, baseDelayMs: 1, maxDelayMs: 5 };

/** A server's volume of the LUN: its own gate (as under its own lease), conditional chunk writes. */
function server(store: ObjectStore, env: VolumeEnv = {}, info: VolumeInfo = INFO, lun: LunLayout = layout): ChunkVolume {
  return new ChunkVolume(store, lun, info, OPTIONS, { gate: WriteGate.unleased(systemClock, lun.name), conditionalWrites: true, ...env });
}

/** Opened, its listing done (every chunk's ETag known where the listing saw one). */
async function listed(v: ChunkVolume): Promise<ChunkVolume> {
  await v.chunkStates();
  return v;
}

interface Sent {
  readonly op: 'get' | 'head' | 'put' | 'delete' | 'copy';
  readonly key: string;
  readonly opts?: PutOptions;
}

/** A memory store that records every request of the chunk path with its options. */
class RecordingStore extends MemoryObjectStore {
  readonly sent: Sent[] = [];
  override async get(key: string, range?: { offset: number; length: number }): Promise<GetResult | null> {
    this.sent.push({ op: 'get', key });
    return super.get(key, range);
  }
  override async head(key: string): Promise<ObjectMeta | null> {
    this.sent.push({ op: 'head', key });
    return super.head(key);
  }
  override async put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    this.sent.push({ op: 'put', key, opts });
    return super.put(key, body, opts);
  }
  override async delete(key: string): Promise<void> {
    this.sent.push({ op: 'delete', key });
    return super.delete(key);
  }
  override async deleteMany(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.sent.push({ op: 'delete', key });
    return super.deleteMany(keys);
  }
  override async copy(from: string, to: string): Promise<{ etag: string } | null> {
    this.sent.push({ op: 'copy', key: to });
    return super.copy(from, to);
  }
  requests(op: Sent['op'], key?: string): number {
    return this.sent.filter((s) => s.op === op && (key === undefined || s.key === key)).length;
  }
}

const isFenced = (e: unknown): boolean => isStorageError(e, 'fenced');

/** What the volume's ChunkMap knows of chunk i's object. */
const tagOf = async (v: ChunkVolume, i: number): Promise<string | undefined> => (await v.chunkStates()).tag(i)?.kind;

describe('conditional chunk writes (issue 17: fencing by ETag)', () => {
  describe('the store contract they rely on, memory and local directory', () => {
    const contract = async (s: ObjectStore): Promise<void> => {
      const key = layout.chunkKey(7);
      const a = await s.put(key, randomBytes(MiB), { ifNoneMatch: '*', metadata: { [WRITER_META_KEY]: 'x.1' } });
      await assert.rejects(s.put(key, randomBytes(MiB), { ifNoneMatch: '*' }), { kind: 'precondition' });
      const b = await s.put(key, Buffer.alloc(0), { ifMatch: a.etag, metadata: { [WRITER_META_KEY]: 'x.2' } });
      await assert.rejects(s.put(key, randomBytes(MiB), { ifMatch: a.etag }), { kind: 'precondition' });
      const head = await s.head(key);
      assert.equal(head?.etag, b.etag, "a put's ETag is the one HEAD gives");
      assert.equal(head?.size, 0, 'a hole marker is a zero-length object');
      assert.equal(head?.metadata[WRITER_META_KEY], 'x.2', 'the writer rides in the metadata');
      await s.put(layout.chunkKey(8), randomBytes(MiB));
      const entries = [];
      for await (const e of listAll(s, layout.chunksPrefix)) entries.push(e);
      assert.deepEqual(
        entries.map((e) => e.key),
        [layout.chunkKey(7), layout.chunkKey(8)],
      );
      for (const e of entries) assert.equal(e.etag, (await s.head(e.key))?.etag, `the listing gives ${e.key}'s ETag`);
      // The listed ETag is good for If-Match.
      await s.put(layout.chunkKey(8), randomBytes(MiB), { ifMatch: entries[1].etag as string });
    };
    it('memory: If-None-Match: * and If-Match on chunk keys, hole markers, ETags from the listing', () => contract(new MemoryObjectStore()));
    it('memory with S3 ETags (MD5): the same', () => contract(new MemoryObjectStore('md5')));
    it('local directory: the same', () =>
      inTempDir(async (dir) => {
        const s = new FileObjectStore(dir);
        try {
          await contract(s);
        } finally {
          await s.close();
        }
      }));
  });

  it('every chunk PUT is conditional and signed; a known chunk needs no HEAD, an unknown one one', async () => {
    const store = new RecordingStore();
    const v = await listed(server(store));
    await v.write(0, randomBytes(MiB), { fua: true });
    const stored = (await store.head(layout.chunkKey(0)))?.etag;
    await v.write(0, randomBytes(MiB), { fua: true });
    const puts = store.sent.filter((s) => s.op === 'put' && s.key === layout.chunkKey(0));
    assert.equal(puts.length, 2);
    assert.equal(puts[0].opts?.ifNoneMatch, '*', 'a chunk known absent is created only');
    assert.equal(puts[1].opts?.ifMatch, stored, 'a chunk known stored is replaced only in the version last seen');
    const writers = puts.map((p) => p.opts?.metadata?.[WRITER_META_KEY]);
    assert.ok(writers.every((w) => w && /^[0-9a-z]+\.[0-9a-z]+$/.test(w)) && writers[0] !== writers[1], 'each PUT has its own writer id');
    assert.equal(v.stats.conditionalHeads, 0, 'the listing and our own PUTs told every ETag');
    await v.close();

    // Reopened before its listing has run: the first PUT of a chunk HEADs it first.
    const w = server(store);
    await w.write(0, randomBytes(MiB), { fua: true });
    assert.ok(w.stats.conditionalHeads <= 1, 'one HEAD at most (none if the listing came first)');
    assert.equal(w.gate.state, 'open');
    await w.close();
    assert.equal(store.requests('delete'), 0);
  });

  it('takeover: the deposed server overwrites nothing its successor wrote, and is fenced by its 412', async () => {
    const store = new MemoryObjectStore();
    const a = await listed(server(store));
    const dataA = Buffer.alloc(MiB, 0xaa);
    await a.write(0, dataA, { fua: true });

    // B takes the LUN over (its lease; nothing tells A) and writes chunks 0 and 5.
    const b = await listed(server(store));
    const dataB = Buffer.alloc(MiB, 0xbb);
    await b.write(0, dataB, { fua: true });
    await b.write(5 * MiB, dataB, { fua: true });

    // A's late write-back of chunk 0: If-Match on the ETag A stored, 412, B's writer: fenced.
    await assert.rejects(a.write(0, Buffer.alloc(MiB, 0xa1), { fua: true }), isFenced);
    assert.equal(a.gate.state, 'fenced');
    assert.equal(a.stats.writeConflicts, 1);
    assert.ok(store.peek(layout.chunkKey(0))?.equals(dataB), "the store holds B's data");
    // Whatever A tries next is refused; B goes on.
    await assert.rejects(a.write(5 * MiB, Buffer.alloc(512, 1)), isFenced);
    await assert.rejects(a.close(), isFenced);
    await b.write(0, Buffer.alloc(MiB, 0xbc), { fua: true });
    assert.equal(b.gate.state, 'open');
    await b.close();
  });

  it("takeover: a deposed server's PUT that lands on a chunk its successor had only listed does not fence the successor, which holds the lease: it writes over it", async () => {
    const store = new MemoryObjectStore();
    const a = await listed(server(store));
    await a.write(0, Buffer.alloc(MiB, 0xaa), { fua: true });
    // B takes over; the lease object says B (its holder check answers yes), A's says no.
    const gateB = WriteGate.unleased(systemClock, layout.name);
    gateB.holderCheck = async () => true;
    const b = await listed(server(store, { gate: gateB }));
    // A's write lands after B listed chunk 0 (A's ETag is still the one it stored: no 412 for A).
    await a.write(0, Buffer.alloc(MiB, 0xa1), { fua: true });
    const dataB = Buffer.alloc(MiB, 0xbb);
    await b.write(0, dataB, { fua: true });
    assert.equal(b.gate.state, 'open', 'the holder is not fenced by its predecessor');
    assert.equal(b.stats.lateForeignWrites, 1);
    assert.equal(b.stats.writeConflicts, 0);
    assert.ok(store.peek(layout.chunkKey(0))?.equals(dataB), "the store holds B's data");
    // A's next PUT meets B's write and A's own holder check (none here) fences A.
    await assert.rejects(a.write(0, Buffer.alloc(MiB, 0xa2), { fua: true }), isFenced);
    assert.ok(store.peek(layout.chunkKey(0))?.equals(dataB));
    await b.close();
  });

  it('takeover: when the lease object no longer names the writer, a foreign chunk fences it even with a holder check', async () => {
    const store = new MemoryObjectStore();
    const gateA = WriteGate.unleased(systemClock, layout.name);
    gateA.holderCheck = async () => false;
    const a = await listed(server(store, { gate: gateA }));
    await a.write(0, Buffer.alloc(MiB, 0xaa), { fua: true });
    const b = await listed(server(store));
    await b.write(0, Buffer.alloc(MiB, 0xbb), { fua: true });
    await assert.rejects(a.write(0, Buffer.alloc(MiB, 0xa1), { fua: true }), isFenced);
    assert.equal(a.gate.state, 'fenced');
    await b.close();
  });

  it('takeover on the local directory store (two servers, two store instances): the same', () =>
    inTempDir(async (dir) => {
      const sa = new FileObjectStore(dir);
      const sb = new FileObjectStore(dir);
      try {
        const a = await listed(server(sa));
        await a.write(0, Buffer.alloc(2 * MiB, 0xaa), { fua: true });
        const b = await listed(server(sb));
        assert.equal(b.stats.conditionalHeads, 0);
        const dataB = Buffer.alloc(MiB, 0xbb);
        await b.write(MiB, dataB, { fua: true }); // If-Match on the ETag B's listing gave
        assert.equal(b.stats.conditionalHeads, 0, "the listing's ETag was good for If-Match");
        // A chunk B has not written yet: A's late PUT lands (ETags fence only what B wrote).
        await a.write(0, Buffer.alloc(MiB, 0xa0), { fua: true });
        await assert.rejects(a.write(MiB, Buffer.alloc(MiB, 0xa1), { fua: true }), isFenced);
        assert.ok((await sb.get(layout.chunkKey(1)))?.body.equals(dataB));
        // The limit of fencing by ETag: B's next PUT of chunk 0 meets A's late write (412, a
        // writer not its own) and B fences itself. Nothing is overwritten, but B stops writing.
        await assert.rejects(b.write(0, Buffer.alloc(MiB, 0xb0), { fua: true }), isFenced);
        assert.equal(b.gate.state, 'fenced');
        await assert.rejects(b.close(), isFenced);
      } finally {
        await sa.close();
        await sb.close();
      }
    }));

  it('takeover: a chunk the deposed server thought absent (If-None-Match: *) was created by its successor: fenced', async () => {
    const store = new MemoryObjectStore();
    const a = await listed(server(store));
    assert.equal(await tagOf(a, 5), 'none');
    const b = await listed(server(store));
    const dataB = randomBytes(MiB);
    await b.write(5 * MiB, dataB, { fua: true });
    await assert.rejects(a.write(5 * MiB, randomBytes(MiB), { fua: true }), isFenced);
    assert.equal(a.gate.state, 'fenced');
    assert.ok(store.peek(layout.chunkKey(5))?.equals(dataB));
    await b.close();
  });

  it('takeover: a discard (hole marker) of the deposed server over a chunk its successor wrote is refused too', async () => {
    const store = new RecordingStore();
    const a = await listed(server(store));
    await a.write(3 * MiB, randomBytes(MiB), { fua: true });
    const b = await listed(server(store));
    const dataB = randomBytes(MiB);
    await b.write(3 * MiB, dataB, { fua: true });
    await assert.rejects(a.discard([{ offset: 0, length: 8 * MiB }]), isFenced);
    assert.ok(store.peek(layout.chunkKey(3))?.equals(dataB));
    assert.equal(store.requests('delete'), 0);
    await b.close();
  });

  it('S3 ETags (MD5): a successor that wrote and discarded a chunk the deposed server knew as a hole marker (same ETag) is found by the HEAD', async () => {
    const store = new MemoryObjectStore('md5');
    const a = await listed(server(store));
    await a.write(3 * MiB, randomBytes(MiB), { fua: true });
    await a.discard([{ offset: 3 * MiB, length: MiB }]);
    const b = await listed(server(store));
    await b.write(3 * MiB, randomBytes(MiB), { fua: true });
    await b.discard([{ offset: 3 * MiB, length: MiB }]);
    // If-Match on the empty body's MD5 would succeed: only the writer tells B's marker from A's.
    await assert.rejects(a.write(3 * MiB, randomBytes(MiB), { fua: true }), isFenced);
    assert.equal(store.peek(layout.chunkKey(3))?.length, 0, "B's discard stands");
    // B, whose own marker it is, writes there as usual.
    await b.write(3 * MiB, Buffer.alloc(MiB, 2), { fua: true });
    assert.equal(b.gate.state, 'open');
    await b.close();
  });

  it('a PUT that landed but whose answer was lost is repeated, meets itself (412, its own writer) and succeeds: no fencing', async () => {
    const mem = new MemoryObjectStore();
    const net = new FailingStore(mem);
    const v = await listed(server(new RetryingStore(net, RETRY)));
    const key = layout.chunkKey(2);
    const first = randomBytes(MiB);
    net.add({ fault: 'lost-answer', ops: ['put'], key: /chunks\/0+2$/, times: 1 });
    await v.write(2 * MiB, first, { fua: true });
    assert.equal(net.seen('put', /chunks\/0+2$/), 2, 'the retry layer repeated the PUT');
    assert.equal(v.stats.conditionalRepeats, 1);
    assert.equal(v.gate.state, 'open');
    assert.ok(mem.peek(key)?.equals(first));
    // The ETag taken from the HEAD is right: the next PUT needs no HEAD and lands.
    const heads = v.stats.conditionalHeads;
    const second = randomBytes(MiB);
    net.add({ fault: 'lost-answer', ops: ['put'], key: /chunks\/0+2$/, times: 1 });
    await v.write(2 * MiB, second, { fua: true });
    assert.equal(v.stats.conditionalHeads, heads + 1, 'one HEAD, after the 412');
    assert.ok(mem.peek(key)?.equals(second));
    // The same for a hole marker (a discard).
    net.add({ fault: 'lost-answer', ops: ['put'], key: /chunks\/0+2$/, times: 1 });
    await v.discard([{ offset: 2 * MiB, length: MiB }]);
    assert.equal(mem.peek(key)?.length, 0);
    assert.equal(v.stats.writeConflicts, 0);
    await v.close();
  });

  it('a PUT that landed and whose retries all failed leaves the chunk uncertain: the next PUT HEADs, finds its own write and goes on', async () => {
    const mem = new MemoryObjectStore();
    const net = new FailingStore(mem);
    const v = await listed(server(new RetryingStore(net, RETRY)));
    net.add({ fault: 'lost-answer', ops: ['put'], key: /chunks\/0+1$/, times: 1 });
    net.add({ fault: 'error', ops: ['put'], key: /chunks\/0+1$/ });
    await assert.rejects(v.write(MiB, randomBytes(MiB), { fua: true }), (e: unknown) => isStorageError(e, 'unavailable'));
    assert.equal(await tagOf(v, 1), 'pending');
    net.clear();
    const data = randomBytes(MiB);
    await v.write(MiB, data, { fua: true });
    assert.equal(v.gate.state, 'open');
    assert.ok(mem.peek(layout.chunkKey(1))?.equals(data));
    assert.equal(await tagOf(v, 1), 'object');
    await v.close();
  });

  it('an earlier PUT of ours that lands late (after the next one was decided) is overwritten, not taken for a rival', async () => {
    const mem = new MemoryObjectStore();
    /** Holds the first PUT of chunk 4 (fails it to the caller), and lands it right before the next one. */
    class LateStore extends MemoryObjectStore {
      held: (() => Promise<unknown>) | undefined;
      holding = true;
      override get(key: string, range?: { offset: number; length: number }): Promise<GetResult | null> {
        return mem.get(key, range);
      }
      override head(key: string): Promise<ObjectMeta | null> {
        return mem.head(key);
      }
      override async put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
        if (key === layout.chunkKey(4) && this.holding) {
          this.holding = false;
          this.held = () => mem.put(key, body, opts);
          throw new StorageError('unavailable', 'connection reset (injected)');
        }
        if (this.held) {
          const late = this.held;
          this.held = undefined;
          await late();
        }
        return mem.put(key, body, opts);
      }
      override listPage(prefix: string, token: string | undefined): ReturnType<ObjectStore['listPage']> {
        return mem.listPage(prefix, token);
      }
    }
    const v = await listed(server(new LateStore()));
    await assert.rejects(v.write(4 * MiB, randomBytes(MiB), { fua: true }), (e: unknown) => isStorageError(e, 'unavailable'));
    const data = randomBytes(MiB);
    await v.write(4 * MiB, data, { fua: true });
    assert.equal(v.gate.state, 'open');
    assert.ok(mem.peek(layout.chunkKey(4))?.equals(data), 'the newer data is stored');
    await v.close();
  });

  it('a discard and an all-zero chunk store hole markers (no DELETE), read zeros without a request, and are written over later', async () => {
    const store = new RecordingStore();
    const v = await listed(server(store));
    await v.write(0, randomBytes(20 * MiB), { fua: true });
    await v.discard([{ offset: 2 * MiB, length: 16 * MiB }]);
    await v.write(0, Buffer.alloc(MiB), { fua: true }); // all zeros
    assert.equal(store.requests('delete'), 0, 'nothing deleted');
    for (const i of [0, ...Array.from({ length: 16 }, (_, k) => k + 2)]) {
      assert.equal(store.peek(layout.chunkKey(i))?.length, 0, `chunk ${i} is a hole marker`);
    }
    assert.equal(v.stats.chunksDeleted, 17);
    v.dropCleanCache();
    const gets = store.requests('get');
    assert.ok((await v.read(0, 20 * MiB)).subarray(2 * MiB, 18 * MiB).every((b) => b === 0));
    assert.ok((await v.read(0, MiB)).every((b) => b === 0));
    assert.equal(store.requests('get'), gets + 3, 'chunks 1, 18 and 19 are read, the hole markers are not');
    const again = randomBytes(MiB);
    await v.write(5 * MiB, again, { fua: true });
    assert.ok(store.peek(layout.chunkKey(5))?.equals(again));
    // A discard of a chunk already a hole marker sends nothing.
    const puts = store.requests('put');
    await v.discard([{ offset: 6 * MiB, length: MiB }]);
    assert.equal(store.requests('put'), puts);
    await v.close();

    // Reopened: the listing sees the markers as absent (zeros, no GET) and knows their ETags.
    const w = await listed(server(store));
    const before = store.requests('get');
    assert.ok((await w.read(6 * MiB, MiB)).every((b) => b === 0));
    assert.equal(store.requests('get'), before);
    await w.write(6 * MiB, Buffer.alloc(MiB, 6), { fua: true });
    assert.equal(w.gate.state, 'open');
    await w.close();
  });

  it('no server-side copy into a LUN with conditional writes: copyFrom hands the whole range back, copyIn refuses', async () => {
    const store = new RecordingStore();
    const env = { copyDomain: 'memory' };
    const src = await listed(server(store, env, INFO, layout.sibling('src')));
    await src.write(0, randomBytes(4 * MiB), { fua: true });
    const dst = await listed(server(store, env));
    assert.deepEqual(await dst.copyFrom(src, 0, 0, 4 * MiB), [{ sourceOffset: 0, offset: 0, length: 4 * MiB }]);
    assert.equal(store.requests('copy'), 0);
    const map = await dst.chunkStates();
    assert.throws(() => map.copyIn([{ index: 0, from: layout.sibling('src').chunkKey(0) }], 'foreground'), /server-side copy with conditional/);
    await src.close();
    await dst.close();
  });

  it('a clone: inherited chunks are written, discarded and hydrated with conditional PUTs on its own keys', async () => {
    const store = new RecordingStore();
    const gated = WriteGate.unleased(systemClock, 't').bind(store);
    const P = layout.sibling('parent');
    const C = layout.sibling('clone');
    await createVolume(gated, P, 4 * MiB, 512, SEGMENT_SIZE);
    const pv = server(await lunDataStore(store, P, await readVolumeInfo(store, P)), {}, testInfo(4 * MiB), P);
    for (const c of [0, 1, 2]) await pv.write(c * MiB, Buffer.alloc(MiB, c + 1), { fua: true });
    await pv.close();
    const pinfo = await readVolumeInfo(store, P);
    assert.ok(pinfo);
    await createSnapshot(gated, P, pinfo, 'base');
    const info = await createClone(gated, P, 'base', C);
    const open = async (): Promise<ChunkVolume> => listed(server(await lunDataStore(store, C, info), {}, info, C));
    const c = await open();
    await c.write(0, Buffer.alloc(MiB, 7), { fua: true }); // inherited, no own object: If-None-Match
    await c.discard([{ offset: MiB, length: MiB }]); // hides the parent's chunk 1
    assert.equal(await c.hydrateChunk(2), true); // read through, stored as its own
    assert.equal(c.gate.state, 'open');
    assert.equal(store.requests('copy'), 0);
    assert.equal(store.requests('delete'), 0);
    assert.equal(store.peek(C.chunkKey(1))?.length, 0);
    assert.ok(store.peek(C.chunkKey(2))?.equals(Buffer.alloc(MiB, 3)));
    await c.close();
    // Reopened before its listing: every PUT HEADs the clone's own object (never the parent's).
    const d = server(await lunDataStore(store, C, info), {}, info, C);
    await d.write(MiB, Buffer.alloc(MiB, 8), { fua: true });
    await d.write(2 * MiB, Buffer.alloc(MiB, 9), { fua: true });
    await d.write(3 * MiB, Buffer.alloc(MiB, 4), { fua: true });
    assert.equal(d.gate.state, 'open');
    const back = await d.read(0, 4 * MiB);
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => back[k * MiB]),
      [7, 8, 9, 4],
    );
    await d.close();
  });

  it('with the option off nothing changes: no HEAD, no precondition, no writer, DELETEs as before', async () => {
    const store = new RecordingStore();
    const v = await listed(new ChunkVolume(store, layout, INFO, OPTIONS));
    await v.write(0, randomBytes(4 * MiB), { fua: true });
    await v.write(0, randomBytes(MiB), { fua: true });
    await v.discard([{ offset: MiB, length: 2 * MiB }]);
    await v.write(3 * MiB, Buffer.alloc(MiB), { fua: true });
    assert.equal(store.requests('head'), 0);
    assert.equal(store.requests('delete'), 3);
    for (const s of store.sent.filter((x) => x.op === 'put')) {
      assert.equal(s.opts?.ifMatch, undefined);
      assert.equal(s.opts?.ifNoneMatch, undefined);
      assert.equal(s.opts?.metadata?.[WRITER_META_KEY], undefined);
    }
    assert.equal(store.requests('put'), 5);
    assert.equal(await tagOf(v, 0), undefined);
    await v.close();
  });
});
