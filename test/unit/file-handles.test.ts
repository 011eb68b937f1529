import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HandleCache } from '../../src/storage/file-handles';

describe('HandleCache (the local store reuses open chunk files)', () => {
  function cache(max = 2) {
    const opened: string[] = [];
    const closed: string[] = [];
    let exists = true;
    const c = new HandleCache<{ key: string; n: number }>(
      max,
      async (key) => {
        opened.push(key);
        return exists ? { key, n: opened.length } : null;
      },
      async (h) => {
        closed.push(`${h.key}#${h.n}`);
      },
    );
    return { c, opened, closed, setExists: (v: boolean) => (exists = v) };
  }
  const tick = () => new Promise((r) => setImmediate(r));

  it('opens once for many readers, closes after the last reader once invalidated', async () => {
    const { c, opened, closed } = cache();
    const a = await c.acquire('k');
    const b = await c.acquire('k');
    assert.equal(a.handle, b.handle);
    assert.deepEqual(opened, ['k']);
    c.invalidate('k');
    a.release();
    await tick();
    assert.deepEqual(closed, [], 'still in use by b');
    b.release();
    await tick();
    assert.deepEqual(closed, ['k#1']);
    const again = await c.acquire('k');
    assert.equal(again.handle?.n, 2, 'a new open after invalidation');
    again.release();
  });

  it('does not cache absence', async () => {
    const { c, opened, setExists } = cache();
    setExists(false);
    assert.equal((await c.acquire('k')).handle, null);
    setExists(true);
    assert.equal((await c.acquire('k')).handle?.key, 'k');
    assert.equal(opened.length, 2);
  });

  it('keeps at most `max` handles, closing the least recently used', async () => {
    const { c, closed } = cache(2);
    for (const k of ['a', 'b', 'a', 'c']) (await c.acquire(k)).release();
    await tick();
    assert.deepEqual(closed, ['b#2']);
    await c.closeAll();
    await tick();
    assert.deepEqual(closed.sort(), ['a#1', 'b#2', 'c#3']);
  });
});
