import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TargetProcess } from '../harness/target';
import { formatScore, runTestcu } from '../harness/testcu';

/**
 * libiscsi's conformance suite against a fresh LUN. The floor only ever rises: a change that
 * makes a test fail, or stop passing, fails CI. (tgt 1.0.85 on this machine: passed 160,
 * skipped 62, failed 8.)
 */
const MIN_PASSED = 205;

describe('iscsi-test-cu -t ALL (SPC/SBC conformance, issues 3 and 5 acceptance)', () => {
  const target = new TargetProcess();
  before(() => target.start());
  after(() => target.stop());

  it(`failed = 0 and passed >= ${MIN_PASSED}`, async (t) => {
    const score = await runTestcu(target.url(0), 'ALL');
    t.diagnostic(formatScore(score));
    process.stdout.write(`${formatScore(score)}\n`);
    assert.equal(score.total, 230, 'the whole suite ran');
    assert.equal(score.failed, 0, formatScore(score));
    assert.ok(score.passed >= MIN_PASSED, `passed ${score.passed} < ${MIN_PASSED}`);
    assert.ok(target.alive, 'the target survived the suite');
  });
});
