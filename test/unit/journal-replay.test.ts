import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import type { JournalRecord } from '../../src/storage/journal/record';
import { replayInto } from '../../src/storage/journal/replay';
import { type ReplayDecision, replayDecision } from '../../src/storage/journal/replay-policy';
import { Lease, type LeaseTiming, readLease } from '../../src/storage/lease';
import type { HostIdentity, LeaseRecord } from '../../src/storage/lease-record';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { storeStack } from '../../src/storage/stack';
import { Rng } from '../fuzz/rng';
import { VirtualScheduler } from '../lib/virtual-clock';
import { MiB, TEST_LAYOUT, testInfo, testOptions } from '../lib/volumes';

const KEY = 'luns/a/lease.json';
const TIMING: LeaseTiming = { ttlMs: 20_000, renewEveryMs: 3_000, marginMs: 5_000 };
const hex = (uuid: string): string => uuid.replaceAll('-', '');

const record = (holder: string, sequence: number): JournalRecord => ({
  kind: 'write',
  lun: '00000000-0000-0000-0000-000000000001',
  holder,
  sequence,
  group: sequence,
  indexInGroup: 0,
  groupSize: 1,
  chunk: 0,
  offset: 0,
  length: 0,
  data: Buffer.alloc(0),
});

/** Processes of one machine on virtual time; each new one proves the previous one dead. */
function machine() {
  const sched = new VirtualScheduler();
  const s3 = new MemoryObjectStore();
  let pid = 100;
  /** Starts a process that takes the lease, vouching as `vouch` says, then dies (kill -9). */
  const crashAfterTaking = async (vouch: (p: LeaseRecord | undefined) => readonly string[]): Promise<Lease> => {
    const mine = ++pid;
    const clock = sched.clock(`p${mine}`);
    const id: HostIdentity = { host: 'h', bootId: 'b', pid: mine, pidStart: String(mine), isGone: (p) => p < mine };
    const { store } = storeStack(s3, { concurrency: 4, requestTimeoutMs: 2_000, retryDeadlineMs: 4_000, clock, random: () => 0.5 });
    const r = await sched.settle(Lease.acquire(store, KEY, 'serve', TIMING, { clock, identity: id }, vouch), 60_000);
    assert.ok(r !== 'pending' && r.ok, 'the lease is taken');
    clock.kill();
    return r.value;
  };
  return { sched, s3, crashAfterTaking };
}

describe('journal replay decisions over the lease chain (issue 14)', () => {
  it("a crashed holder's records are replayed by its successor, and a kill -9 during that replay keeps them replayable", async () => {
    const m = machine();
    const first = await m.crashAfterTaking(() => []);
    assert.equal(first.previous, undefined, 'it created the lease');
    const journal = [record(first.holder, 1), record(first.holder, 2)];
    // The successor finds the first holder's records and takes the lease over vouching for them.
    let decided: ReplayDecision | undefined;
    const deciding =
      (records: readonly JournalRecord[]) =>
      (prev: LeaseRecord | undefined): readonly string[] => {
        decided = replayDecision(records, prev);
        return decided.replay ? decided.vouches : [];
      };
    const second = await m.crashAfterTaking(deciding(journal));
    assert.ok(decided?.replay, 'its own crashed predecessor');
    assert.equal(second.previous?.holder, first.holder);
    assert.deepEqual((await readLease(m.s3, KEY))?.vouches, [hex(first.holder)], 'the vouch is in the lease it wrote');
    // It died during replay (its records and its own later ones are in the journal): the third
    // process still may replay both.
    const later = [...journal, record(second.holder, 3)];
    await m.crashAfterTaking(deciding(later));
    assert.ok(decided?.replay, `the chain vouches for both: ${JSON.stringify(decided)}`);
    assert.deepEqual([...decided.vouches].sort(), [hex(first.holder), hex(second.holder)].sort());
  });

  it('records of a holder the lease does not vouch for are refused, with the reason', async () => {
    const m = machine();
    const a = await m.crashAfterTaking(() => []);
    const journalOfA = [record(a.holder, 1)];
    // Another server (B) took the LUN over without A's journal, and wrote.
    const b = await m.crashAfterTaking(() => []);
    let d: ReplayDecision | undefined;
    const c = await m.crashAfterTaking((prev) => {
      d = replayDecision(journalOfA, prev);
      return [];
    });
    assert.equal(c.previous?.holder, b.holder);
    assert.ok(d && !d.replay);
    assert.deepEqual(d.unknown, [hex(a.holder)]);
    assert.match(d.why, /does not vouch/);
  });

  it('no lease object at start: recovered records are refused (someone may have released it after writing)', () => {
    const d = replayDecision([record('11111111-2222-3333-4444-555555555555', 1)], undefined);
    assert.ok(!d.replay);
    assert.match(d.why, /had no lease/);
    assert.deepEqual(replayDecision([], undefined), { replay: true, vouches: [], drop: [] }, 'nothing to replay is always fine');
  });
});

describe('journal replay (issue 14)', () => {
  const INFO = testInfo(4 * MiB);
  const LUN = INFO.uuid;
  /** A random history of writes and discards, as journal records. */
  const history = (seed: number, n: number): JournalRecord[] => {
    const rng = new Rng(seed);
    return Array.from({ length: n }, (_, k) => {
      const chunk = rng.int(4);
      const offset = rng.int(2048) * 512;
      const length = Math.min(MiB - offset, (1 + rng.int(64)) * 512);
      const discard = rng.chance(0.15);
      const data = discard ? Buffer.alloc(0) : rng.bytes(length);
      return { ...record(HOLDER, k + 1), kind: discard ? 'discard' : 'write', lun: LUN, chunk, offset, length, data };
    });
  };
  const HOLDER = '11111111-2222-3333-4444-555555555555';
  const apply = async (v: ChunkVolume, rs: readonly JournalRecord[]): Promise<void> => {
    for (const r of rs) {
      if (r.kind === 'write') await v.write(r.chunk * MiB + r.offset, r.data);
      else await v.discard([{ offset: r.chunk * MiB + r.offset, length: r.length }]);
    }
    await v.flush();
  };

  it('replaying a suffix of the writes, in order, onto any later state gives the latest data; again gives the same', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const all = history(seed, 60);
      const expected = new ChunkVolume(new MemoryObjectStore(), TEST_LAYOUT, INFO, testOptions(16 * MiB));
      await apply(expected, all);
      const want = Buffer.from(await expected.read(0, INFO.sizeBytes));
      await expected.close();
      // S3 holds the writes up to `uploaded`; the journal still holds those from `kept` on.
      const rng = new Rng(seed * 7);
      const kept = rng.int(40);
      const uploaded = kept + rng.int(20);
      const s3 = new MemoryObjectStore();
      const before = new ChunkVolume(s3, TEST_LAYOUT, INFO, testOptions(16 * MiB));
      await apply(before, all.slice(0, uploaded));
      await before.close();
      for (let round = 0; round < 2; round++) {
        const v = new ChunkVolume(s3, TEST_LAYOUT, INFO, testOptions(16 * MiB));
        const r = await replayInto(v, all.slice(kept));
        assert.equal(r.records, all.length - kept);
        await v.close();
        const cold = new ChunkVolume(s3, TEST_LAYOUT, INFO, testOptions(16 * MiB));
        assert.ok(
          Buffer.from(await cold.read(0, INFO.sizeBytes)).equals(want),
          `seed ${seed}, kept from ${kept}, uploaded ${uploaded}, round ${round}`,
        );
        await cold.close();
      }
    }
  });

  it('records of another LUN or out of order are refused (an invariant, not data)', async () => {
    const v = new ChunkVolume(new MemoryObjectStore(), TEST_LAYOUT, INFO, testOptions(16 * MiB));
    const other = { ...record(HOLDER, 1), lun: '99999999-0000-0000-0000-000000000000' };
    await assert.rejects(replayInto(v, [other]), /replay of LUN/);
    const a = { ...record(HOLDER, 2), lun: LUN };
    await assert.rejects(replayInto(v, [a, { ...a, sequence: 1 }]), /out of order/);
    await v.close();
  });
});
