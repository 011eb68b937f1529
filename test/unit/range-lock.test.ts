import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type LockMode, RangeLock } from '../../src/storage/range-lock';

/** A request under the lock that records when it ran and ends when told to. */
class Job {
  started = false;
  ended = false;
  private finish!: () => void;
  private fail!: (e: Error) => void;
  readonly done: Promise<void>;

  constructor(
    lock: RangeLock,
    readonly name: string,
    offset: number,
    length: number,
    mode: LockMode,
    log: string[],
  ) {
    this.done = lock.with(offset, length, mode, () => {
      this.started = true;
      log.push(`+${name}`);
      return new Promise<void>((resolve, reject) => {
        this.finish = () => {
          this.ended = true;
          log.push(`-${name}`);
          resolve();
        };
        this.fail = reject;
      });
    });
  }

  end(): void {
    this.finish();
  }

  throw(e: Error): void {
    this.fail(e);
  }
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

describe('RangeLock', () => {
  it('runs requests on distinct ranges at once, overlapping exclusive ones one after the other in arrival order', async () => {
    const lock = new RangeLock();
    const log: string[] = [];
    const a = new Job(lock, 'a', 0, 4096, 'exclusive', log);
    const b = new Job(lock, 'b', 4096, 4096, 'exclusive', log);
    const c = new Job(lock, 'c', 2048, 4096, 'exclusive', log);
    const d = new Job(lock, 'd', 4608, 512, 'exclusive', log);
    await turns();
    assert.deepEqual([a.started, b.started, c.started, d.started], [true, true, false, false]);
    b.end();
    await turns();
    assert.equal(c.started, false, 'c overlaps a, which still runs');
    a.end();
    await turns();
    assert.equal(c.started, true);
    assert.equal(d.started, false, 'd overlaps b and c and came after them');
    c.end();
    await turns();
    d.end();
    await Promise.all([a.done, b.done, c.done, d.done]);
    assert.deepEqual(log, ['+a', '+b', '-b', '-a', '+c', '-c', '+d', '-d']);
    assert.equal(lock.size, 0);
  });

  it('lets shared requests overlap, and a shared request that comes after a waiting exclusive one waits too (FIFO)', async () => {
    const lock = new RangeLock();
    const log: string[] = [];
    const s1 = new Job(lock, 's1', 0, 8192, 'shared', log);
    const s2 = new Job(lock, 's2', 4096, 8192, 'shared', log);
    const x = new Job(lock, 'x', 0, 4096, 'exclusive', log);
    const s3 = new Job(lock, 's3', 0, 512, 'shared', log);
    await turns();
    assert.deepEqual([s1.started, s2.started, x.started, s3.started], [true, true, false, false]);
    s2.end();
    await turns();
    assert.equal(x.started, false, 'x still waits for s1');
    s1.end();
    await turns();
    assert.equal(x.started, true);
    assert.equal(s3.started, false, 's3 does not overtake x');
    x.end();
    await turns();
    assert.equal(s3.started, true);
    s3.end();
    await Promise.all([s1.done, s2.done, x.done, s3.done]);
    assert.equal(lock.size, 0);
  });

  it('releases the range when the work fails, and a zero-length request still locks its first byte', async () => {
    const lock = new RangeLock();
    const log: string[] = [];
    const a = new Job(lock, 'a', 0, 0, 'exclusive', log);
    const b = new Job(lock, 'b', 0, 512, 'exclusive', log);
    const c = new Job(lock, 'c', 1, 512, 'exclusive', log);
    await turns();
    assert.deepEqual([a.started, b.started, c.started], [true, false, false]);
    a.throw(new Error('store failed'));
    await assert.rejects(a.done, /store failed/);
    await turns();
    assert.equal(b.started, true);
    b.end();
    await turns();
    c.end();
    await Promise.all([b.done, c.done]);
    assert.equal(lock.size, 0);
  });

  it('releases the range when the work throws before its first await', async () => {
    const lock = new RangeLock();
    const first = lock.with(0, 512, 'exclusive', () => {
      throw new Error('bad range');
    });
    await assert.rejects(first, /bad range/);
    assert.equal(await lock.with(0, 512, 'exclusive', async () => 'ran'), 'ran');
    assert.equal(lock.size, 0);
  });
});
