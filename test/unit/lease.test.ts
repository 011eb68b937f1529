import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../../src/storage/errors';
import { Lease, type LeaseEvents, readLease } from '../../src/storage/lease';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { PutOptions } from '../../src/storage/object-store';
import { RetryingStore } from '../../src/storage/retrying-store';

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

function recorder(): LeaseEvents & { log: string[] } {
  const log: string[] = [];
  return { log, suspended: (r) => log.push(`suspended ${r}`), resumed: () => log.push('resumed'), lost: (r) => log.push(`lost ${r}`) };
}

const TIMING = { ttlMs: 60_000, renewEveryMs: 60_000, marginMs: 0 };
const RETRY = { deadlineMs: 5_000, baseDelayMs: 1, maxDelayMs: 5 };

describe('LUN lease over a store that loses answers', () => {
  it('a create whose answer was lost, retried into a precondition failure, is recognised as ours', async () => {
    const inner = new LostAnswers();
    inner.lose = 1;
    const events = recorder();
    const lease = await Lease.acquire(new RetryingStore(inner, RETRY), 'luns/a/lease.json', 'test', events, TIMING);
    assert.equal(lease.state, 'held');
    assert.equal((await readLease(inner, 'luns/a/lease.json'))?.holder, lease.holder);
    await lease.release();
    assert.equal(await inner.head('luns/a/lease.json'), null, 'released: the object is gone');
  });

  it('a renewal whose answer was lost is not mistaken for a takeover, and the next renewal succeeds', async () => {
    const inner = new LostAnswers();
    const events = recorder();
    const lease = await Lease.acquire(new RetryingStore(inner, RETRY), 'luns/b/lease.json', 'test', events, TIMING);
    inner.lose = 1;
    await lease.renew();
    assert.equal(lease.state, 'held');
    assert.equal((await readLease(inner, 'luns/b/lease.json'))?.generation, 1);
    await lease.renew();
    assert.equal(lease.state, 'held');
    assert.equal((await readLease(inner, 'luns/b/lease.json'))?.generation, 2);
    assert.deepEqual(events.log, []);
    await lease.release();
  });

  it('a real takeover is still a lost lease', async () => {
    const inner = new LostAnswers();
    const events = recorder();
    const lease = await Lease.acquire(new RetryingStore(inner, RETRY), 'luns/c/lease.json', 'test', events, TIMING);
    const cur = await inner.get('luns/c/lease.json');
    assert.ok(cur);
    // Another process takes it over (same generation number, another holder).
    const rival = { ...JSON.parse(cur.body.toString('utf8')), holder: 'someone-else', generation: 1 };
    await inner.put('luns/c/lease.json', Buffer.from(JSON.stringify(rival)), { ifMatch: cur.meta.etag });
    await lease.renew();
    assert.equal(lease.state, 'lost');
    assert.match(events.log.join(), /lost the lease was taken over/);
    await lease.release();
    assert.equal((await readLease(inner, 'luns/c/lease.json'))?.holder, 'someone-else', 'a lost lease is not deleted');
  });
});
