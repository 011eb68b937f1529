import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JournalRecord } from '../../src/storage/journal/record';
import { type ReplayDecision, replayDecision } from '../../src/storage/journal/replay-policy';
import { Lease, type LeaseTiming, readLease } from '../../src/storage/lease';
import type { HostIdentity, LeaseRecord } from '../../src/storage/lease-record';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { storeStack } from '../../src/storage/stack';
import { VirtualScheduler } from '../lib/virtual-clock';

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
    assert.deepEqual(replayDecision([], undefined), { replay: true, vouches: [] }, 'nothing to replay is always fine');
  });
});
