import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../../src/storage/errors';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore, RequestOptions } from '../../src/storage/object-store';
import { TimeLimitedStore, withTimeLimit } from '../../src/storage/time-limited-store';
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

describe('TimeLimitedStore: the attempt signal is made on first use (issue 18)', () => {
  /** Runs `fn` with AbortController counting its instances. */
  async function counting<T>(fn: () => Promise<T>): Promise<{ value: T; made: number }> {
    const Real = globalThis.AbortController;
    let made = 0;
    globalThis.AbortController = class extends Real {
      constructor() {
        super();
        made++;
      }
    };
    try {
      return { value: await fn(), made };
    } finally {
      globalThis.AbortController = Real;
    }
  }

  it('a store that never looks at the signal (the local file store) costs no AbortController', async () => {
    const inner = new MemoryObjectStore();
    await inner.put('k', Buffer.from('v'));
    const store = new TimeLimitedStore(inner, systemClock, 60_000);
    const { value, made } = await counting(() => store.get('k'));
    assert.equal(value?.body.toString(), 'v');
    assert.equal(made, 0);
  });

  it('a signal first read after the time limit is already aborted with the timeout', async () => {
    let late: AbortSignal | undefined;
    const slow: ObjectStore = Object.assign(new MemoryObjectStore(), {
      get: (_k: string, _r?: unknown, o?: RequestOptions): Promise<null> =>
        new Promise((r) =>
          setTimeout(() => {
            late = o?.signal;
            r(null);
          }, 100),
        ),
    });
    const store = new TimeLimitedStore(slow, systemClock, 20);
    await assert.rejects(store.get('k'), (e: unknown) => e instanceof StorageError && e.code === 'STORE_ERR_TIMEOUT');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(late?.aborted, true);
    assert.ok(late?.reason instanceof StorageError && late.reason.code === 'STORE_ERR_TIMEOUT');
  });

  it("a signal read while the attempt runs aborts with the caller's reason", async () => {
    let seen: AbortSignal | undefined;
    const hang: ObjectStore = Object.assign(new MemoryObjectStore(), {
      get: (_k: string, _r?: unknown, o?: RequestOptions): Promise<null> => {
        seen = o?.signal;
        return new Promise<null>(() => undefined);
      },
    });
    const caller = new AbortController();
    const reason = new StorageError('fenced', 'lease lost');
    const p = new TimeLimitedStore(hang, systemClock, 60_000).get('k', undefined, { signal: caller.signal });
    caller.abort(reason);
    await assert.rejects(p, (e: unknown) => e === reason);
    assert.equal(seen?.reason, reason);
  });
});
