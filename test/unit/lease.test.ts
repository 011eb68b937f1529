import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStorageError, StorageError } from '../../src/storage/errors';
import { Lease, type LeaseEnv, LeaseError, type LeaseTiming, readLease } from '../../src/storage/lease';
import type { HostIdentity } from '../../src/storage/lease-record';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore, PutOptions } from '../../src/storage/object-store';
import { RetryingStore } from '../../src/storage/retrying-store';
import { storeStack } from '../../src/storage/stack';
import { FailingStore } from '../lib/failing-store';
import { VirtualScheduler } from '../lib/virtual-clock';

/** A store whose next N PUTs land but lose their answer (a reset after the server wrote). */
class LostAnswers extends MemoryObjectStore {
  lose = 0;
  override async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<{ etag: string }> {
    const r = await super.put(key, body, opts);
    if (this.lose > 0) {
      this.lose--;
      throw new StorageError('unavailable', 'connection reset after the PUT was written');
    }
    return r;
  }
}

const RETRY = { deadlineMs: 5_000, baseDelayMs: 1, maxDelayMs: 5 };
const SLOW: LeaseTiming = { ttlMs: 60_000, renewEveryMs: 60_000, marginMs: 0 };
/** The production defaults: TTL 20 s, renew every 3 s, 5 s margin. */
const TIMING: LeaseTiming = { ttlMs: 20_000, renewEveryMs: 3_000, marginMs: 5_000 };
const KEY = 'luns/a/lease.json';

function identity(over: Partial<HostIdentity> = {}, gone: (pid: number) => boolean = () => false): HostIdentity {
  return { host: 'host-a', bootId: 'boot-1', pid: 100, pidStart: '5000', isGone: (pid) => gone(pid), ...over };
}

/** Two processes on virtual time, sharing one store behind their own failing networks. */
function world() {
  const sched = new VirtualScheduler();
  const s3 = new MemoryObjectStore();
  const storeClock = sched.clock('s3');
  const proc = (name: string, id: HostIdentity) => {
    const clock = sched.clock(name);
    const net = new FailingStore(s3, { clock, storeClock, latencyMs: () => 5 });
    const { store } = storeStack(net, { concurrency: 8, requestTimeoutMs: 2_000, retryDeadlineMs: 4_000, clock, random: () => 0.5 });
    const env: LeaseEnv = { clock, identity: id };
    return { clock, net, store, env };
  };
  /** Runs virtual time until `p` settles; fails on a rejection or a hang. */
  const run = async <T>(p: Promise<T>, limitMs = 60_000): Promise<T> => {
    const r = await sched.settle(p, limitMs);
    if (r === 'pending') throw new Error('still pending: a hang');
    if (!r.ok) throw r.error;
    return r.value;
  };
  return { sched, s3, proc, run };
}

/** A chunk write through the gate, as the volume does it. */
const writeChunk = async (store: ObjectStore, lease: Lease, tag: string): Promise<unknown> =>
  store.put('luns/a/chunks/0000000000000000', Buffer.from(tag), lease.gate.options('flush'));

describe('LUN lease over a store that loses answers', () => {
  it('a create whose answer was lost, retried into a precondition failure, is recognised as ours', async () => {
    const inner = new LostAnswers();
    inner.lose = 1;
    const lease = await Lease.acquire(new RetryingStore(inner, RETRY), KEY, 'test', SLOW);
    assert.equal(lease.state, 'held');
    assert.equal((await readLease(inner, KEY))?.holder, lease.holder);
    await lease.release();
    assert.equal(await inner.head(KEY), null, 'released: the object is gone');
  });

  it('a renewal whose answer was lost is not mistaken for a takeover, and the next renewal succeeds', async () => {
    const inner = new LostAnswers();
    const lease = await Lease.acquire(new RetryingStore(inner, RETRY), KEY, 'test', SLOW);
    inner.lose = 1;
    await lease.renew();
    assert.equal(lease.state, 'held');
    assert.equal((await readLease(inner, KEY))?.generation, 1);
    await lease.renew();
    assert.equal(lease.state, 'held');
    assert.equal((await readLease(inner, KEY))?.generation, 2);
    await lease.release();
  });

  it('a real takeover fences the gate: no store write passes it again', async () => {
    const inner = new LostAnswers();
    const lease = await Lease.acquire(new RetryingStore(inner, RETRY), KEY, 'test', SLOW);
    const cur = await inner.get(KEY);
    assert.ok(cur);
    const rival = { ...JSON.parse(cur.body.toString('utf8')), holder: 'someone-else', generation: 1 };
    await inner.put(KEY, Buffer.from(JSON.stringify(rival)), { ifMatch: cur.meta.etag });
    await lease.renew();
    assert.equal(lease.state, 'lost');
    assert.throws(() => lease.gate.check('PUT chunk'), { code: 'STORE_ERR_FENCED' });
    await lease.release();
    assert.equal((await readLease(inner, KEY))?.holder, 'someone-else', 'a lost lease is not deleted');
  });
});

describe('fencing on a clock we control (issue 13, defect 2)', () => {
  it('a hung renewal: writes stop TTL/2 after the SEND time of the last successful renewal, before any takeover', async () => {
    const w = world();
    const h = w.proc('holder', identity());
    const lease = await w.run(Lease.acquire(h.store, KEY, 'serve', TIMING, h.env));
    // Taken at 0.01 s (5 ms each way); renewals sent at 3.01 s and 6.01 s succeed.
    await w.sched.runUntil(6_500);
    h.net.add({ fault: 'black-hole', key: /lease\.json$/ }); // from now on the lease path hangs
    await w.sched.runUntil(16_000);
    assert.equal(lease.gate.state, 'open', 'valid until 6.01 s + TTL/2');
    assert.ok(h.net.counts['black-hole'] >= 2, 'renewals were sent and hung');
    await w.sched.runUntil(16_011);
    assert.equal(lease.gate.state, 'suspended', 'shut by the timer while renewals hang');
    const refused = await w.sched.settle(writeChunk(h.store, lease, 'late'), 1_000);
    assert.ok(refused !== 'pending' && !refused.ok && isStorageError(refused.error) && refused.error.code === 'STORE_ERR_SUSPENDED');
    // A newcomer that started watching at 7 s takes over no earlier than 7 + 25 = 32 s: 16 s of slack.
    const n = w.proc('newcomer', identity({ host: 'host-b' }));
    await w.sched.runUntil(7_000 + 16_001);
    const taking = Lease.acquire(n.store, KEY, 'serve', TIMING, n.env);
    const took = await w.sched.settle(taking, 60_000);
    assert.ok(took !== 'pending' && took.ok, 'the newcomer takes the lease over');
    assert.ok(w.sched.now >= 23_000 + 25_000, `not before TTL + margin of watching (${w.sched.now})`);
  });

  it('a renewal answered after a pause does not reopen the gate; only one sent after the pause does', async () => {
    const w = world();
    const h = w.proc('holder', identity());
    const lease = await w.run(Lease.acquire(h.store, KEY, 'serve', TIMING, h.env));
    await w.sched.runUntil(3_002); // the renewal sent at 3 s has landed; its answer is on its way
    h.clock.pause();
    await w.sched.runUntil(15_000);
    h.clock.resume();
    assert.throws(() => lease.gate.check('PUT chunk'), { code: 'STORE_ERR_SUSPENDED' }, 'validity ended at 0 + TTL/2');
    await w.sched.runUntil(15_001);
    assert.equal(lease.gate.state, 'suspended', 'the answer of the renewal sent at 3 s extends only to 13 s');
    await w.sched.runUntil(16_000);
    assert.equal(lease.gate.state, 'open', 'a renewal sent after the pause re-validated it');
  });

  it('a process paused past the TTL writes nothing when it resumes, and learns it was taken over', async () => {
    const w = world();
    const h = w.proc('holder', identity());
    const lease = await w.run(Lease.acquire(h.store, KEY, 'serve', TIMING, h.env));
    await w.sched.runUntil(3_500);
    h.clock.pause(); // SIGSTOP
    const n = w.proc('newcomer', identity({ host: 'host-b' }));
    const took = await w.sched.settle(Lease.acquire(n.store, KEY, 'serve', TIMING, n.env), 60_000);
    assert.ok(took !== 'pending' && took.ok);
    const successor = took.value;
    await w.sched.settle(writeChunk(n.store, successor, 'successor'), 5_000);
    h.clock.resume(); // SIGCONT, about 30 s later
    const late = await w.sched.settle(writeChunk(h.store, lease, 'zombie'), 5_000);
    assert.ok(late !== 'pending' && !late.ok, 'the resumed holder may not write');
    await w.sched.advance(10_000);
    assert.equal(lease.state, 'lost', 'its next renewal found the lease taken');
    assert.equal((await w.s3.get('luns/a/chunks/0000000000000000'))?.body.toString(), 'successor');
  });

  it('a renewal that landed unanswered, found later by a renewal sent after it, extends the gate only from its own send time (found in review)', async () => {
    const w = world();
    const h = w.proc('holder', identity());
    const lease = await w.run(Lease.acquire(h.store, KEY, 'serve', TIMING, h.env));
    await w.sched.runUntil(7_000); // renewals sent at 3.01 s and 6.01 s succeeded: valid until 16.01 s
    h.net.add({ fault: 'black-hole', key: /lease\.json$/, lands: true }); // the renewal sent at 9.01 s lands; no answer comes
    await w.sched.runUntil(31_000);
    assert.equal((await readLease(w.s3, KEY))?.generation, 3, 'generation 3 landed at about 9.02 s');
    assert.equal(lease.gate.state, 'suspended');
    h.net.clear(); // the path heals: the renewal sent at 27.01 s, retried, meets generation 3 (412, then its own record)
    await w.sched.runUntil(32_900);
    h.net.add({ fault: 'black-hole', key: /lease\.json$/ }); // and breaks again: nothing changes the object after 9.02 s
    // A newcomer watching since 9.02 s may take over from 9.02 + TTL + margin = 34.02 s on.
    for (const t of [33_000, 34_100, 35_500, 36_900]) {
      await w.sched.runUntil(t);
      assert.notEqual(lease.gate.state, 'open', `valid at ${t} ms: generation 3 was credited with the send time of the renewal that found it`);
    }
    h.net.clear();
    await w.sched.runUntil(45_000);
    assert.equal(lease.gate.state, 'open', 'a renewal on the ETag of generation 3 re-validates it');
    assert.equal((await readLease(w.s3, KEY))?.holder, lease.holder);
  });

  it('a hung renewal attempt is bounded well below TTL/2: the next one is sent and keeps the lease', async () => {
    const w = world();
    const h = w.proc('holder', identity());
    const lease = await w.run(Lease.acquire(h.store, KEY, 'serve', TIMING, h.env));
    h.net.add({ fault: 'black-hole', key: /lease\.json$/, ops: ['put'], times: 1 });
    await w.sched.runUntil(30_000);
    assert.equal(lease.gate.state, 'open');
    assert.ok(((await readLease(w.s3, KEY))?.generation ?? 0) >= 8, 'renewals went on');
  });
});

describe('taking over a lease (issue 13, defects 10 and 13)', () => {
  const held = async (w: ReturnType<typeof world>, id: HostIdentity): Promise<void> => {
    const p = w.proc('old', id);
    const got = await w.sched.settle(Lease.acquire(p.store, KEY, 'serve', TIMING, p.env), 10_000);
    assert.ok(got !== 'pending' && got.ok);
    p.clock.kill(); // kill -9: it never renews again
  };

  it('a holder that is provably a dead process of this machine and boot is taken over at once', async () => {
    const w = world();
    await held(w, identity({ pid: 41, pidStart: '777' }));
    const p = w.proc(
      'new',
      identity({ pid: 42, pidStart: '900' }, (pid) => pid === 41),
    );
    const t0 = w.sched.now;
    const got = await w.sched.settle(Lease.acquire(p.store, KEY, 'serve', TIMING, p.env), 60_000);
    assert.ok(got !== 'pending' && got.ok);
    assert.ok(w.sched.now - t0 < 1_000, `took ${w.sched.now - t0} ms`);
  });

  for (const [what, newId] of [
    ['another host', identity({ host: 'host-b', pid: 42 }, () => true)],
    ['another boot', identity({ bootId: 'boot-2', pid: 42 }, () => true)],
    ['a holder still running', identity({ pid: 42 }, () => false)],
  ] as const) {
    it(`${what}: waits the whole TTL + margin`, async () => {
      const w = world();
      await held(w, identity({ pid: 41, pidStart: '777' }));
      const p = w.proc('new', newId);
      const t0 = w.sched.now;
      const got = await w.sched.settle(Lease.acquire(p.store, KEY, 'serve', TIMING, p.env), 60_000);
      assert.ok(got !== 'pending' && got.ok);
      assert.ok(w.sched.now - t0 >= 25_000, `took ${w.sched.now - t0} ms`);
    });
  }

  it('an unreadable lease object is watched like any other, then taken over; lun info names the key', async () => {
    const w = world();
    await w.s3.put(KEY, Buffer.from('{"holder": 12'));
    await assert.rejects(readLease(w.s3, KEY), (e: unknown) => isStorageError(e) && e.code === 'STORE_ERR_RECORD' && e.message.includes(KEY));
    await w.s3.put(KEY, Buffer.from('{"holder":"x","purpose":"serve","host":"h","pid":-1}'));
    await assert.rejects(readLease(w.s3, KEY), /lease.json: pid: missing or not an integer/);
    const p = w.proc('new', identity());
    const t0 = w.sched.now;
    const got = await w.sched.settle(Lease.acquire(p.store, KEY, 'serve', TIMING, p.env), 60_000);
    assert.ok(got !== 'pending' && got.ok);
    assert.ok(w.sched.now - t0 >= 25_000);
  });

  it('a lease being renewed is refused with a LeaseError', async () => {
    const w = world();
    const a = w.proc('a', identity());
    const got = await w.sched.settle(Lease.acquire(a.store, KEY, 'serve', TIMING, a.env), 10_000);
    assert.ok(got !== 'pending' && got.ok);
    const b = w.proc('b', identity({ host: 'host-b' }));
    const second = await w.sched.settle(Lease.acquire(b.store, KEY, 'serve', TIMING, b.env), 60_000);
    assert.ok(second !== 'pending' && !second.ok && second.error instanceof LeaseError);
  });
});
