import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../../src/storage/errors';
import { withTimeLimit } from '../../src/storage/time-limited-store';
import { systemClock } from '../../src/util/clock';

/** An attempt that never answers by itself; it records the signal it was given. */
function hanging(seen: { signal?: AbortSignal }): (signal: AbortSignal) => Promise<never> {
  return (signal) => {
    seen.signal = signal;
    return new Promise<never>(() => undefined);
  };
}

describe('withTimeLimit (every attempt that leaves the process ends in time)', () => {
  it('a hung attempt ends with a retryable STORE_ERR_TIMEOUT, and its signal is aborted with that error', async () => {
    const seen: { signal?: AbortSignal } = {};
    const t0 = performance.now();
    await assert.rejects(withTimeLimit(systemClock, 50, 'GET k', undefined, hanging(seen)), (e: unknown) => {
      assert.ok(e instanceof StorageError && e.code === 'STORE_ERR_TIMEOUT' && e.kind === 'unavailable');
      assert.equal(seen.signal?.reason, e);
      return true;
    });
    assert.ok(performance.now() - t0 < 1_000);
    assert.equal(seen.signal?.aborted, true);
  });

  it("the caller's abort ends the attempt at once with the caller's reason, passed on to the attempt's signal", async () => {
    const seen: { signal?: AbortSignal } = {};
    const caller = new AbortController();
    const reason = new StorageError('fenced', 'lease lost');
    const p = withTimeLimit(systemClock, 60_000, 'PUT k', caller.signal, hanging(seen));
    caller.abort(reason);
    await assert.rejects(p, (e: unknown) => e === reason);
    assert.equal(seen.signal?.reason, reason);
  });

  it("an answer in time is returned, and a caller's later abort no longer reaches the finished attempt", async () => {
    const caller = new AbortController();
    let signal: AbortSignal | undefined;
    const v = await withTimeLimit(systemClock, 60_000, 'HEAD k', caller.signal, async (s) => {
      signal = s;
      return 42;
    });
    assert.equal(v, 42);
    caller.abort(new Error('later'));
    assert.equal(signal?.aborted, false);
  });

  it('an already aborted caller gets its reason without an attempt', async () => {
    const caller = new AbortController();
    caller.abort(new Error('gone'));
    let ran = false;
    await assert.rejects(
      withTimeLimit(systemClock, 1_000, 'GET k', caller.signal, async () => {
        ran = true;
      }),
      /gone/,
    );
    assert.equal(ran, false);
  });
});
