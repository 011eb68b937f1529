import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { copyFrom, joinParts, partsLength, takeParts } from '../../src/util/parts';

describe('Data-Out parts (a write copied once, from the PDUs it arrived in)', () => {
  const whole = randomBytes(10_000);
  const parts = [whole.subarray(0, 1), whole.subarray(1, 4097), whole.subarray(4097, 4097), whole.subarray(4097)];

  it('copies any range across part boundaries exactly like one buffer', () => {
    for (const [from, length] of [
      [0, 10_000],
      [0, 1],
      [1, 4096],
      [4000, 200],
      [4096, 2],
      [9_999, 1],
      [5000, 0],
    ]) {
      const a = Buffer.alloc(length + 8, 0xee);
      const b = Buffer.alloc(length + 8, 0xee);
      copyFrom(parts, from, a, 3, length);
      copyFrom(whole, from, b, 3, length);
      assert.ok(a.equals(b), `range ${from}+${length}`);
    }
  });

  it('takes a prefix as views and joins only when there is more than one part', () => {
    assert.equal(partsLength(parts), 10_000);
    const head = takeParts(parts, 4000);
    assert.equal(partsLength(head), 4000);
    assert.ok(joinParts(head).equals(whole.subarray(0, 4000)));
    assert.equal(joinParts([whole]), whole, 'a single part is returned as is');
    assert.equal(partsLength(takeParts(parts, 0)), 0);
  });
});
