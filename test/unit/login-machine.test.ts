import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type LoginContext, LoginMachine, type LoginTarget } from '../../src/iscsi/login/login-machine';
import { DEFAULT_TARGET_LIMITS } from '../../src/iscsi/login/params';
import { NONE_AUTH } from '../../src/iscsi/login/security';
import { LoginStatus } from '../../src/iscsi/login/status';
import { parseText, serializeText } from '../../src/iscsi/login/text-codec';
import type { LoginRequestPdu, Stage } from '../../src/iscsi/pdu';

const IQN = 'iqn.2026-11.io.s3tgt:disk0';
const INITIATOR = 'iqn.2026-11.test:init';

function ctx(over: Partial<LoginContext> = {}, allow = true): LoginContext {
  const target: LoginTarget = { iqn: IQN, portalGroupTag: 3, authorize: () => allow, auth: NONE_AUTH };
  return {
    limits: DEFAULT_TARGET_LIMITS,
    peerAddress: '127.0.0.1',
    findTarget: (iqn) => (iqn === IQN ? target : undefined),
    discoveryAuth: NONE_AUTH,
    discoveryPortalGroupTag: 1,
    checkExistingSession: () => undefined,
    ...over,
  };
}

function req(csg: Stage, nsg: Stage, transit: boolean, pairs: Array<[string, string]>, over: Partial<LoginRequestPdu> = {}): LoginRequestPdu {
  return {
    kind: 'login-request',
    transit,
    cont: false,
    csg,
    nsg,
    versionMax: 0,
    versionMin: 0,
    isid: Buffer.from('023d00000001', 'hex'),
    tsih: 0,
    itt: 1,
    cid: 0,
    cmdSN: 1,
    expStatSN: 0,
    data: serializeText(pairs),
    ...over,
  };
}

const failsWith = (fn: () => unknown, status: number): void => {
  assert.throws(fn, (e: unknown) => (e as { status?: number }).status === status);
};

describe('login state machine (RFC 7143 §6.3)', () => {
  it('security -> operational -> full feature, declaring TPGT first and our MaxRecvDataSegmentLength', () => {
    const m = new LoginMachine(ctx());
    const s1 = m.handle(
      req(0, 1, true, [
        ['InitiatorName', INITIATOR],
        ['TargetName', IQN],
        ['SessionType', 'Normal'],
        ['AuthMethod', 'CHAP,None'],
      ]),
    );
    assert.equal(s1.kind, 'reply');
    assert.equal(s1.kind === 'reply' && s1.transit, true);
    assert.deepEqual(s1.text, [
      ['AuthMethod', 'None'],
      ['TargetPortalGroupTag', '3'],
    ]);
    const s2 = m.handle(
      req(1, 3, true, [
        ['HeaderDigest', 'None'],
        ['MaxBurstLength', '65536'],
      ]),
    );
    assert.equal(s2.kind, 'complete');
    if (s2.kind !== 'complete') return;
    assert.deepEqual(Object.fromEntries(s2.text), {
      HeaderDigest: 'None',
      MaxBurstLength: '65536',
      MaxRecvDataSegmentLength: String(DEFAULT_TARGET_LIMITS.maxRecvDataSegmentLength),
    });
    assert.equal(s2.result.session.maxBurstLength, 65536);
    assert.equal(s2.result.initiatorName, INITIATOR);
  });

  it('goes straight to the operational stage when no authentication is required', () => {
    const m = new LoginMachine(ctx());
    const s = m.handle(
      req(1, 3, true, [
        ['InitiatorName', INITIATOR],
        ['TargetName', IQN],
      ]),
    );
    assert.equal(s.kind, 'complete');
  });

  it('answers C-bit requests empty and parses the joined text', () => {
    const m = new LoginMachine(ctx());
    const full = serializeText([
      ['InitiatorName', INITIATOR],
      ['TargetName', IQN],
    ]);
    const a = m.handle({ ...req(1, 0, false, []), cont: true, data: full.subarray(0, 10) });
    assert.deepEqual(a.kind === 'reply' && a.text, []);
    const b = m.handle({ ...req(1, 3, true, []), data: full.subarray(10) });
    assert.equal(b.kind, 'complete');
  });

  it('fails with the right status class and detail', () => {
    failsWith(() => new LoginMachine(ctx()).handle(req(0, 1, true, [['TargetName', IQN]])), LoginStatus.MissingParameter);
    failsWith(() => new LoginMachine(ctx()).handle(req(0, 1, true, [['InitiatorName', INITIATOR]])), LoginStatus.MissingParameter);
    failsWith(
      () =>
        new LoginMachine(ctx()).handle(
          req(0, 1, true, [
            ['InitiatorName', INITIATOR],
            ['TargetName', 'iqn.2026-11.x:nope'],
          ]),
        ),
      LoginStatus.TargetNotFound,
    );
    failsWith(
      () =>
        new LoginMachine(ctx({}, false)).handle(
          req(0, 1, true, [
            ['InitiatorName', INITIATOR],
            ['TargetName', IQN],
          ]),
        ),
      LoginStatus.AuthorizationFailure,
    );
    failsWith(
      () =>
        new LoginMachine(ctx()).handle(
          req(0, 1, true, [
            ['InitiatorName', INITIATOR],
            ['SessionType', 'Bogus'],
          ]),
        ),
      LoginStatus.SessionTypeNotSupported,
    );
    failsWith(() => new LoginMachine(ctx()).handle(req(0, 1, true, [], { versionMin: 2 })), LoginStatus.UnsupportedVersion);
    failsWith(() => new LoginMachine(ctx()).handle(req(3, 3, true, [['InitiatorName', INITIATOR]])), LoginStatus.InitiatorError);
    failsWith(
      () =>
        new LoginMachine(ctx()).handle(
          req(1, 0, true, [
            ['InitiatorName', INITIATOR],
            ['TargetName', IQN],
          ]),
        ),
      LoginStatus.InitiatorError,
    );
    failsWith(
      () =>
        new LoginMachine(ctx()).handle(
          req(0, 2, true, [
            ['InitiatorName', INITIATOR],
            ['TargetName', IQN],
          ]),
        ),
      LoginStatus.InitiatorError,
    );
  });

  it('refuses going back to the security stage and changing the ISID mid-login', () => {
    const m = new LoginMachine(ctx());
    m.handle(
      req(0, 1, true, [
        ['InitiatorName', INITIATOR],
        ['TargetName', IQN],
      ]),
    );
    failsWith(() => m.handle(req(1, 1, false, [], { isid: Buffer.from('023d00000002', 'hex') })), LoginStatus.InitiatorError);
    const m2 = new LoginMachine(ctx());
    m2.handle(
      req(0, 1, true, [
        ['InitiatorName', INITIATOR],
        ['TargetName', IQN],
      ]),
    );
    m2.handle(req(1, 1, false, []));
    failsWith(() => m2.handle(req(0, 1, false, [])), LoginStatus.InitiatorError);
  });

  it('lets a discovery session in without a TargetName and never declares a TPGT', () => {
    const m = new LoginMachine(ctx());
    const s = m.handle(
      req(0, 3, true, [
        ['InitiatorName', INITIATOR],
        ['SessionType', 'Discovery'],
      ]),
    );
    assert.equal(s.kind, 'complete');
    if (s.kind === 'complete') {
      assert.equal(s.result.sessionType, 'Discovery');
      assert.equal(
        s.text.find(([k]) => k === 'TargetPortalGroupTag'),
        undefined,
      );
    }
  });

  it('parses the login text it answers', () => {
    const m = new LoginMachine(ctx());
    const s = m.handle(
      req(1, 3, true, [
        ['InitiatorName', INITIATOR],
        ['TargetName', IQN],
        ['X-foo', 'y'],
      ]),
    );
    assert.equal(s.kind, 'complete');
    assert.deepEqual(
      parseText(serializeText(s.text)).find(([k]) => k === 'X-foo'),
      ['X-foo', 'NotUnderstood'],
    );
  });
});
