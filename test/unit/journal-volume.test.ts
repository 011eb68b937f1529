import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { Journal } from '../../src/storage/journal/journal';
import { LunJournal } from '../../src/storage/journal/lun-journal';
import { replayInto } from '../../src/storage/journal/replay';
import type { HostIdentity } from '../../src/storage/lease-record';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import { storeStack } from '../../src/storage/stack';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { Rng } from '../fuzz/rng';
import { FailingStore } from '../lib/failing-store';
import { inTempDir } from '../lib/temp-dir';
import { MiB, TEST_LAYOUT, testInfo, testOptions } from '../lib/volumes';

const SIZE = 16 * MiB;
const HOLDER = '11111111-2222-3333-4444-555555555555';
const UUID = testInfo(SIZE).uuid;

/** Process `pid` of one machine: every lower pid is a dead process (a journal lock it left is taken over). */
const process = (pid: number): HostIdentity => ({ host: 'h', bootId: 'b', pid, pidStart: String(pid), isGone: (p) => p < pid });

const openJournal = (dir: string, pid: number): Promise<Journal> =>
  Journal.open({ dir, sizeBytes: 96 * MiB, segmentBytes: 4 * MiB, spaceTimeoutMs: 2_000, clock: systemClock, identity: process(pid) });

/** A journal LUN (write-through: acknowledged at the journal's fsync) with a cache of `cacheChunks` chunks. */
function journalLun(store: ObjectStore, journal: Journal, cacheChunks: number): ChunkVolume {
  const v = new ChunkVolume(store, TEST_LAYOUT, testInfo(SIZE), { ...testOptions(cacheChunks * MiB), cacheMode: 'write-through', flushDelayMs: 20 });
  v.attachJournal(new LunJournal(journal, UUID, HOLDER));
  return v;
}

function bounded(s: ObjectStore): ObjectStore {
  return storeStack(s, { concurrency: 8, requestTimeoutMs: 500, retryDeadlineMs: 1_000 }).store;
}

/** Random sector-aligned writes and discards over the LUN, applied to `model` in submission order. */
async function randomLoad(v: ChunkVolume, model: Buffer, rng: Rng, ops: number, qd: number, discards: boolean): Promise<Array<[number, number]>> {
  const written: Array<[number, number]> = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ops) {
      const n = next++;
      if (discards && rng.chance(0.05)) {
        const chunk = rng.int(SIZE / MiB);
        const whole = rng.chance(0.5);
        const off = chunk * MiB + (whole ? 0 : rng.int(2048) * 512);
        const len = whole ? MiB : Math.min(MiB - (off % MiB), (1 + rng.int(64)) * 512);
        model.fill(0, off, off + len);
        await v.discard([{ offset: off, length: len }]);
        continue;
      }
      const len = (1 + rng.int(128)) * 512;
      const off = rng.int((SIZE - len) / 512) * 512;
      const data = Buffer.alloc(len);
      for (let k = 0; k < len; k += 4) data.writeUInt32LE((n * 2654435761 + k) >>> 0, k);
      data.copy(model, off);
      written.push([off, len]);
      await v.write(off, data);
    }
  };
  await Promise.all(Array.from({ length: qd }, worker));
  return written;
}

async function assertReads(v: ChunkVolume, model: Buffer, what: string): Promise<void> {
  for (let off = 0; off < SIZE; off += MiB) {
    const got = await v.read(off, MiB);
    assert.ok(got.equals(model.subarray(off, off + MiB)), `${what}: chunk ${off / MiB} differs`);
  }
}

describe('a journal LUN (issue 14)', () => {
  it('keeps acknowledging writes while S3 is down, far beyond its RAM cache, reads them back, and uploads them all once S3 returns', async () => {
    await inTempDir(async (dir) => {
      const raw = new MemoryObjectStore();
      const failing = new FailingStore(raw);
      const journal = await openJournal(dir, 100);
      const v = journalLun(bounded(failing), journal, 4);
      const model = Buffer.alloc(SIZE);
      // Everything is written once first (so reads never need a base from S3), then S3 goes away.
      for (let c = 0; c < SIZE / MiB; c++) {
        const b = Buffer.alloc(MiB, c + 1);
        b.copy(model, c * MiB);
        await v.write(c * MiB, b);
      }
      await v.flushToStore();
      failing.add({ fault: 'error' });
      const written = await randomLoad(v, model, new Rng(7), 400, 16, false);
      assert.ok(v.stats.journalSpills > 0, 'dirty chunks went to the journal (16 chunks written, 4 in RAM)');
      // What was written meanwhile reads back without S3 (the rest of a chunk is S3's to give).
      for (const [off, len] of written) assert.ok((await v.read(off, len)).equals(model.subarray(off, off + len)), `${off}+${len} while S3 is down`);
      assert.ok(v.stats.journalRestores > 0, 'spilled chunks were read back from the journal');
      failing.clear();
      await v.close();
      assert.equal(journal.backlog().bytes, 0, 'every record is in S3');
      const fresh = new ChunkVolume(raw, TEST_LAYOUT, testInfo(SIZE), testOptions(4 * MiB));
      await assertReads(fresh, model, 'S3 after the drain');
      await journal.close();
    });
  });

  it('in a cluster it acknowledges nothing while its lease is not known to be held (gate suspended): a deposed node must not; alone it goes on', async () => {
    await inTempDir(async (dir) => {
      const journal = await openJournal(dir, 1);
      for (const cluster of [true, false]) {
        const gate = new WriteGate(systemClock, 'lun', Date.now() + 60_000);
        const v = new ChunkVolume(
          new MemoryObjectStore(),
          TEST_LAYOUT,
          testInfo(SIZE),
          { ...testOptions(4 * MiB), cacheMode: 'write-through', flushDelayMs: 20 },
          { gate, conditionalWrites: cluster },
        );
        v.attachJournal(new LunJournal(journal, UUID, HOLDER));
        await v.write(0, Buffer.alloc(4096, 1));
        gate.suspend('the lease renewal did not land');
        if (cluster) await assert.rejects(v.write(4096, Buffer.alloc(4096, 2)), { kind: 'unavailable', code: 'STORE_ERR_SUSPENDED' });
        else await v.write(4096, Buffer.alloc(4096, 2));
        gate.extend(Date.now() + 60_000);
        await v.write(8192, Buffer.alloc(4096, 3));
        await v.close();
      }
      await journal.close();
    });
  });

  it('every acknowledged write and discard survives a crash: a new process replays the journal onto S3', async () => {
    await inTempDir(async (dir) => {
      for (const seed of [1, 2, 3]) {
        const raw = new MemoryObjectStore();
        const journal = await openJournal(dir, 100 + seed * 10);
        const v = journalLun(raw, journal, 3);
        const model = Buffer.alloc(SIZE);
        await randomLoad(v, model, new Rng(seed), 300, 32, true);
        assert.ok(v.stats.journalSpills > 0, 'chunks went through the journal (16 chunks, 3 in RAM)');
        await assertReads(v, model, `seed ${seed} before the crash`);
        // kill -9: nothing more reaches the store or the journal from this process.
        v.gate.fence('killed');
        const restarted = await openJournal(dir, 100 + seed * 10 + 1);
        const records = restarted.recoveredFor(UUID);
        assert.ok(records.length > 0, 'the journal held records not yet in S3');
        const after = new ChunkVolume(raw, TEST_LAYOUT, testInfo(SIZE), testOptions(4 * MiB));
        await replayInto(after, restarted.recoveredChunks(UUID));
        restarted.retireRecovered(UUID);
        await restarted.checkpoint(UUID, HOLDER);
        await assertReads(after, model, `seed ${seed} after replay`);
        await after.close();
        await restarted.close();
        const again = await openJournal(dir, 100 + seed * 10 + 2);
        assert.equal(again.recoveredFor(UUID).length, 0, 'after the checkpoint nothing is replayed again');
        await again.close();
      }
    });
  });

  it('a journal LUN takes its recovered records over at start: served from the journal at once, uploaded by the close', async () => {
    await inTempDir(async (dir) => {
      const raw = new MemoryObjectStore();
      const journal = await openJournal(dir, 100);
      const v = journalLun(raw, journal, 3);
      const model = Buffer.alloc(SIZE);
      await randomLoad(v, model, new Rng(9), 300, 32, true);
      v.gate.fence('killed');
      const restarted = await openJournal(dir, 101);
      const n = restarted.recoveredFor(UUID).length;
      assert.ok(n > 0);
      assert.equal(restarted.adoptRecovered(UUID), n);
      assert.equal(restarted.recoveredFor(UUID).length, 0);
      const served = journalLun(raw, restarted, 3);
      await assertReads(served, model, 'served right after the takeover of the records');
      await served.close();
      assert.equal(restarted.backlog().bytes, 0, 'the close uploaded them all');
      await restarted.close();
      await assertReads(new ChunkVolume(raw, TEST_LAYOUT, testInfo(SIZE), testOptions(4 * MiB)), model, 'S3 after the close');
      const again = await openJournal(dir, 102);
      assert.equal(again.recoveredFor(UUID).length, 0, 'checkpointed');
      await again.close();
    });
  });

  it('SYNCHRONIZE CACHE returns once what came before it is durable, however many writes keep arriving', async () => {
    await inTempDir(async (dir) => {
      const journal = await openJournal(dir, 100);
      const lj = new LunJournal(journal, UUID, HOLDER);
      let stop = false;
      // Writers that do not wait for each other (commands in flight): records keep arriving
      // while every group is being committed.
      const writer = async (k: number): Promise<void> => {
        const pending: Promise<void>[] = [];
        for (let n = 0; !stop; n++) {
          pending.push((await lj.placeWrite(k, 0, [Buffer.alloc(4096, n)], 4096, () => undefined)).durable);
          await new Promise((r) => setImmediate(r));
        }
        await Promise.all(pending);
      };
      const writers = Array.from({ length: 8 }, (_, k) => writer(k));
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      const before = journal.durableThrough;
      await lj.sync();
      const took = Date.now() - t0;
      assert.ok(journal.durableThrough > before);
      stop = true;
      await Promise.all(writers);
      assert.ok(took < 1_000, `sync took ${took} ms under a continuous load`);
      await journal.close();
    });
  });

  it('a closed journal LUN leaves nothing to replay, and SYNCHRONIZE CACHE of a write-back journal LUN returns without S3', async () => {
    await inTempDir(async (dir) => {
      const raw = new MemoryObjectStore();
      const failing = new FailingStore(raw);
      const journal = await openJournal(dir, 100);
      const v = new ChunkVolume(bounded(failing), TEST_LAYOUT, testInfo(SIZE), testOptions(8 * MiB));
      v.attachJournal(new LunJournal(journal, UUID, HOLDER));
      failing.add({ fault: 'error' });
      await v.write(3 * MiB + 4096, Buffer.alloc(8192, 9));
      await v.flush(); // the journal's fsync, not an upload
      v.gate.fence('killed');
      const k = await openJournal(dir, 101);
      const records = await k.readRecovered(UUID);
      assert.equal(records.length, 1, 'the write-back write was journaled');
      assert.ok(records[0].data.equals(Buffer.alloc(8192, 9)));
      await k.close();
    });
  });
});
