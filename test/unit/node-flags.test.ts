import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { missingServeFlags, SERVE_V8_FLAGS } from '../../src/app/node-flags';

describe('the V8 options serve needs (issue 18)', () => {
  it('names what node was started without', () => {
    assert.deepEqual(missingServeFlags([]), ['--no-memory-reducer']);
    assert.deepEqual(missingServeFlags(['--inspect', '--max-old-space-size=512']), ['--no-memory-reducer']);
  });

  it('takes them in either spelling', () => {
    assert.deepEqual(missingServeFlags([...SERVE_V8_FLAGS]), []);
    assert.deepEqual(missingServeFlags(['--no_memory_reducer']), []);
  });
});
