import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chapResponse, decodeBinary } from '../../src/iscsi/login/chap';
import { run } from '../harness/exec';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { read10, TUR, write10 } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';

/**
 * Issue 6 acceptance with real initiators: CHAP one-way and mutual (libiscsi), discovery CHAP,
 * initiator ACLs, login status codes, and CRC32C digests negotiated and enforced.
 */
const USER = 'alice';
const SECRET = 'alice-secret-12';
const TGT_USER = 'tgt';
const TGT_SECRET = 'target-secret-9';
const DISCO_USER = 'disco';
const DISCO_SECRET = 'disco-secret-123';
const ACL_IQN = 'iqn.2026-11.io.s3tgt:acl';
const ALLOWED = 'iqn.2026-11.allowed:host1';

describe('security: CHAP, ACLs, digests (issue 6)', () => {
  const target = new TargetProcess({
    logLevel: 'info',
    extraYaml: `discovery:
  chap: { username: ${DISCO_USER}, secret: ${DISCO_SECRET} }`,
    targetYaml: `    chap:
      username: ${USER}
      secretEnv: TEST_CHAP_SECRET
      mutual: { username: ${TGT_USER}, secret: ${TGT_SECRET} }`,
    moreTargetsYaml: `  - iqn: ${ACL_IQN}
    acl: { initiators: ["iqn.2026-11.allowed:*"], networks: ["127.0.0.0/8"] }
    luns:
      - { lun: 0, name: acl0, size: 64MiB }`,
    env: { TEST_CHAP_SECRET: SECRET },
  });
  before(() => target.start());
  after(() => target.stop());

  const url = (cred: string, query = ''): string => `iscsi://${cred}127.0.0.1:${target.port}/${TEST_IQN}/0${query}`;

  it('libiscsi logs in with the right CHAP secret and is refused with a wrong one or none', async () => {
    const ok = await run('iscsi-inq', [url(`${USER}%${SECRET}@`)]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /S3TGT/i);
    const wrong = await run('iscsi-inq', [url(`${USER}%wrong-secret-999@`)]);
    assert.notEqual(wrong.code, 0, 'a wrong secret must not log in');
    const none = await run('iscsi-inq', [url('')]);
    assert.notEqual(none.code, 0, 'no CHAP must not log in');
    const otherUser = await run('iscsi-inq', [url(`mallory%${SECRET}@`)]);
    assert.notEqual(otherUser.code, 0, 'a wrong user name must not log in');
  });

  it('mutual CHAP: libiscsi verifies the target and refuses a target that answers wrongly', async () => {
    const ok = await run('iscsi-inq', [url(`${USER}%${SECRET}@`, `?target_user=${TGT_USER}&target_password=${TGT_SECRET}`)]);
    assert.equal(ok.code, 0, ok.stderr);
    // The initiator expects another target secret: the target's (correct) answer fails its check.
    const bad = await run('iscsi-inq', [url(`${USER}%${SECRET}@`, `?target_user=${TGT_USER}&target_password=not-the-target-sec`)]);
    assert.notEqual(bad.code, 0, 'the initiator must reject a target proving another secret');
  });

  it('answers authentication failure (0x0201) for a wrong response, and the login failure metric counts it', async () => {
    const c = await TestInitiator.connect(target.port);
    const base: Array<[string, string]> = [
      ['InitiatorName', 'iqn.2026-11.test:raw'],
      ['TargetName', TEST_IQN],
      ['SessionType', 'Normal'],
    ];
    const s1 = await c.loginStep(0, 1, false, [...base, ['AuthMethod', 'CHAP,None']]);
    assert.equal(s1.status, 0);
    assert.equal(s1.text.AuthMethod, 'CHAP');
    const s2 = await c.loginStep(0, 1, false, [['CHAP_A', '5']]);
    const challenge = decodeBinary(s2.text.CHAP_C);
    assert.ok(challenge && challenge.length >= 16);
    const bad = chapResponse('md5', Number(s2.text.CHAP_I), 'wrong-secret-123', challenge);
    const s3 = await c.loginStep(0, 1, true, [
      ['CHAP_N', USER],
      ['CHAP_R', `0x${bad.toString('hex')}`],
    ]);
    assert.equal(s3.status, 0x0201);
    c.close();
    const metrics = await (await fetch(`http://127.0.0.1:${target.metricsPort}/metrics`)).text();
    assert.match(metrics, /s3tgt_login_failures_total\{reason="authentication"\} [1-9]/);
  });

  it('a raw CHAP login with the right response, then mutual CHAP answered with the target secret', async () => {
    const c = await TestInitiator.connect(target.port);
    await c.loginStep(0, 1, false, [
      ['InitiatorName', 'iqn.2026-11.test:raw'],
      ['TargetName', TEST_IQN],
      ['SessionType', 'Normal'],
      ['AuthMethod', 'CHAP'],
    ]);
    const s2 = await c.loginStep(0, 1, false, [['CHAP_A', '7,5']]);
    assert.equal(s2.text.CHAP_A, '7', 'SHA-256 preferred when offered');
    const challenge = decodeBinary(s2.text.CHAP_C) as Buffer;
    const mine = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
    const s3 = await c.loginStep(0, 1, true, [
      ['CHAP_N', USER],
      ['CHAP_R', `0x${chapResponse('sha256', Number(s2.text.CHAP_I), SECRET, challenge).toString('hex')}`],
      ['CHAP_I', '9'],
      ['CHAP_C', `0x${mine.toString('hex')}`],
    ]);
    assert.equal(s3.status, 0);
    assert.equal(s3.transit, true);
    assert.equal(s3.text.CHAP_N, TGT_USER);
    assert.equal(s3.text.CHAP_R, `0x${chapResponse('sha256', 9, TGT_SECRET, mine).toString('hex')}`);
    c.close();
  });

  it('discovery needs the discovery CHAP secret', async () => {
    const ok = await run('iscsi-ls', [`iscsi://${DISCO_USER}%${DISCO_SECRET}@127.0.0.1:${target.port}`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(TEST_IQN.replace(/\./g, '\\.')));
    const none = await run('iscsi-ls', [`iscsi://127.0.0.1:${target.port}`]);
    assert.notEqual(none.code, 0, 'discovery without CHAP must fail');
    const wrong = await run('iscsi-ls', [`iscsi://${DISCO_USER}%wrong-secret-999@127.0.0.1:${target.port}`]);
    assert.notEqual(wrong.code, 0);
  });

  it('a disallowed initiator does not see the ACL target in SendTargets and cannot log in (0x0202)', async () => {
    const disco = async (name: string): Promise<string> => {
      const r = await run('iscsi-ls', ['-i', name, `iscsi://${DISCO_USER}%${DISCO_SECRET}@127.0.0.1:${target.port}`]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    assert.match(await disco(ALLOWED), /:acl/);
    assert.doesNotMatch(await disco('iqn.2026-11.denied:host'), /:acl/);

    const denied = await TestInitiator.connect(target.port);
    await assert.rejects(denied.login({ initiatorName: 'iqn.2026-11.denied:host', target: ACL_IQN }), /status 0x202/);
    denied.close();
    const allowed = await TestInitiator.connect(target.port);
    await allowed.login({ initiatorName: ALLOWED, target: ACL_IQN });
    allowed.close();
    const inq = await run('iscsi-inq', ['-i', ALLOWED, `iscsi://127.0.0.1:${target.port}/${ACL_IQN}/0`]);
    assert.equal(inq.code, 0, inq.stderr);
    const inqDenied = await run('iscsi-inq', ['-i', 'iqn.2026-11.denied:host', `iscsi://127.0.0.1:${target.port}/${ACL_IQN}/0`]);
    assert.notEqual(inqDenied.code, 0);
  });

  describe('CRC32C digests (RFC 7143 §13.1, §7.8)', () => {
    async function digestSession(): Promise<TestInitiator> {
      const c = await TestInitiator.connect(target.port);
      const answers = await c.login({ initiatorName: ALLOWED, target: ACL_IQN, digests: true });
      assert.equal(answers.HeaderDigest, 'CRC32C');
      assert.equal(answers.DataDigest, 'CRC32C');
      await c.response(c.command(TUR)); // the power-on unit attention
      return c;
    }

    it('negotiated both ways: writes and reads carry correct digests', async () => {
      const c = await digestSession();
      const data = Buffer.alloc(4096);
      for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
      const w = await c.response(c.command(write10(100, 8), { write: data }));
      assert.equal(w.status, 0);
      const r = await c.response(c.command(read10(100, 8), { read: 4096 }));
      assert.equal(r.status, 0);
      assert.deepEqual(r.data, data);
      assert.equal(c.digestErrors, 0, 'every PDU from the target had correct digests');
      c.close();
    });

    it('a bad data digest: Reject (data digest error) and the command ends in CHECK CONDITION, nothing written', async () => {
      const c = await digestSession();
      const before = await c.response(c.command(read10(200, 8), { read: 4096 }));
      c.corruptNext = 'data';
      const itt = c.command(write10(200, 8), { write: Buffer.alloc(4096, 0xee) });
      const rej = await c.recv();
      assert.ok(typeof rej !== 'string' && rej.kind === 'reject', `expected a Reject, got ${typeof rej === 'string' ? rej : rej.kind}`);
      assert.equal(rej.reason, 0x02, 'reason: data (payload) digest error');
      const res = await c.response(itt);
      assert.equal(res.status, 0x02, 'CHECK CONDITION');
      // Fixed sense: key ABORTED COMMAND, 47h/05h protocol service CRC error.
      assert.equal(res.sense[2] & 0x0f, 0x0b);
      assert.equal(res.sense[12], 0x47);
      assert.equal(res.sense[13], 0x05);
      const after = await c.response(c.command(read10(200, 8), { read: 4096 }));
      assert.deepEqual(after.data, before.data, 'the corrupted write did not land');
      c.close();
    });

    it('a bad header digest drops the connection; a new login works', async () => {
      const c = await digestSession();
      c.corruptNext = 'header';
      c.command(TUR);
      assert.equal(await c.recv(5000), 'closed');
      const again = await digestSession();
      assert.equal((await again.response(again.command(TUR))).status, 0);
      again.close();
      assert.ok(target.alive);
    });
  });
});

describe('digests required by the target', () => {
  const target = new TargetProcess({ logLevel: 'info', extraYaml: 'iscsi: { headerDigest: required, dataDigest: required }' });
  before(() => target.start());
  after(() => target.stop());

  it('refuses an initiator that offers only None', async () => {
    const c = await TestInitiator.connect(target.port);
    await assert.rejects(c.login({ target: TEST_IQN }), /login failed/);
    c.close();
    const d = await TestInitiator.connect(target.port);
    const answers = await d.login({ target: TEST_IQN, digests: true });
    assert.equal(answers.HeaderDigest, 'CRC32C');
    d.close();
  });

  it('does not require them of discovery sessions (open-iscsi has no digest setting for discovery)', async () => {
    const c = await TestInitiator.connect(target.port);
    const answers = await c.login();
    assert.equal(answers.HeaderDigest, 'None');
    c.close();
    const ls = await run('iscsi-ls', [`iscsi://127.0.0.1:${target.port}`]);
    assert.equal(ls.code, 0, ls.stderr);
  });
});
