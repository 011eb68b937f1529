import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkStates } from '../../src/storage/chunk-states';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { PagedBytes } from '../../src/util/paged-bytes';

/** mulberry32: a seeded generator, so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('PagedBytes (per-chunk state of big LUNs)', () => {
  it('reads back what a plain byte array holds under random set, fill and grow (2,000 operations per seed)', () => {
    for (const seed of [1, 2, 3]) {
      const r = rng(seed);
      let model = new Uint8Array(150_000).fill(1);
      const p = new PagedBytes(150_000, 1);
      for (let op = 0; op < 2_000; op++) {
        const x = r();
        if (x < 0.6) {
          const i = Math.floor(r() * model.length);
          const v = Math.floor(r() * 5);
          model[i] = v;
          p.set(i, v);
        } else if (x < 0.95) {
          const a = Math.floor(r() * model.length);
          const b = Math.min(model.length, a + Math.floor(r() * 200_000));
          const v = Math.floor(r() * 5);
          model.fill(v, a, b);
          p.fill(a, b, v);
        } else {
          const n = model.length + Math.floor(r() * 70_000);
          const v = Math.floor(r() * 5);
          const next = new Uint8Array(n).fill(v);
          next.set(model);
          model = next;
          p.grow(n, v);
        }
      }
      assert.equal(p.length, model.length);
      for (let i = 0; i < model.length; i++) if (p.get(i) !== model[i]) assert.fail(`seed ${seed}: index ${i} is ${p.get(i)}, expected ${model[i]}`);
      // forEachRun covers every index once, in order, with its value; runEnd never spans a change.
      let next = 0;
      p.forEachRun((from, to, v) => {
        assert.equal(from, next);
        for (let i = from; i < to; i++) if (model[i] !== v) assert.fail(`run [${from}, ${to}) says ${v} at ${i}`);
        next = to;
      });
      assert.equal(next, model.length);
      for (let i = 0; i < model.length; i = p.runEnd(i)) {
        const end = p.runEnd(i);
        assert.ok(end > i && end <= model.length);
        for (let k = i; k < end; k++) if (model[k] !== model[i]) assert.fail(`runEnd(${i}) = ${end} spans a change at ${k}`);
      }
    }
  });

  it('a page exists only where entries differ: uniform ranges cost nothing, a set makes one page, a fill over it takes it back', () => {
    const p = new PagedBytes(1 << 20, 0); // a 1 TiB LUN's chunks
    assert.equal(p.materializedPages, 0);
    p.set(5, 0);
    assert.equal(p.materializedPages, 0, 'setting the value a page already has makes no page');
    p.set(70_000, 2);
    assert.equal(p.materializedPages, 1);
    p.fill(65_536, 131_072, 1);
    assert.equal(p.materializedPages, 0);
    assert.equal(p.get(70_000), 1);
  });

  it('an empty 1 TiB LUN: the listing leaves a million chunks absent without a byte each', async () => {
    const store = new MemoryObjectStore();
    const states = new ChunkStates(1 << 20);
    states.set(7, 'stored');
    await states.load(store, new LunLayout('p', 'big'));
    assert.deepEqual(states.census(), { unlisted: 0, absent: (1 << 20) - 1, stored: 1, 'may-exist': 0, inherited: 0 });
    assert.equal(states.get(8), 'absent');
    assert.equal(states.get(7), 'stored', 'a state set before the listing ended is kept');
  });
});
