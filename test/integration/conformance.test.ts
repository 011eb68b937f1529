import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TargetProcess, TEST_IQN } from '../harness/target';
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

/**
 * The same suite over a session with mutual CHAP and CRC32C header digests (issue 6): libiscsi
 * offers HeaderDigest=None,CRC32C, so the target requires CRC32C to get it. (libiscsi never
 * offers DataDigest; data digests are covered by test/integration/security.test.ts and the
 * kernel initiator in test/integration/guest.test.ts.)
 */
describe('iscsi-test-cu -t ALL with mutual CHAP and HeaderDigest=CRC32C (issue 6 acceptance)', () => {
  const target = new TargetProcess({
    logLevel: 'info',
    extraYaml: 'iscsi: { headerDigest: required }',
    targetYaml: `    chap:
      username: conformance
      secret: conformance-secret
      mutual: { username: target, secret: target-secret-42 }`,
  });
  before(() => target.start());
  after(() => target.stop());

  it(`failed = 0 and passed >= ${MIN_PASSED}`, async (t) => {
    const url = `iscsi://conformance%conformance-secret@127.0.0.1:${target.port}/${TEST_IQN}/0?target_user=target&target_password=target-secret-42`;
    const score = await runTestcu(url, 'ALL');
    t.diagnostic(formatScore(score));
    process.stdout.write(`with CHAP + CRC32C: ${formatScore(score)}\n`);
    assert.equal(score.total, 230, 'the whole suite ran');
    assert.equal(score.failed, 0, formatScore(score));
    assert.ok(score.passed >= MIN_PASSED, `passed ${score.passed} < ${MIN_PASSED}`);
    assert.match(target.output, /"headerDigest":true/, 'the sessions used header digests');
    assert.doesNotMatch(target.output, /"headerDigest":false/, 'no session went without header digests');
    assert.ok(target.alive);
  });
});
