import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { InitiatorAcl, validCidr } from '../../src/iscsi/acl';
import { chapPolicy, chapResponse, decodeBinary } from '../../src/iscsi/login/chap';
import type { SecurityExchange } from '../../src/iscsi/login/security';
import { LoginFailure, LoginStatus } from '../../src/iscsi/login/status';

const INIT = { username: 'alice', secret: 'initiator-secret-1' };
const TGT = { username: 'tgt', secret: 'target-secret-22' };

function start(mutual = false): SecurityExchange {
  return chapPolicy({ initiator: INIT, ...(mutual ? { target: TGT } : {}) }).create('CHAP');
}

/** Runs the CHAP_A step and returns the chosen algorithm, identifier and challenge. */
function challenge(x: SecurityExchange, offer = '5'): { a: string; id: number; c: Buffer } {
  const s = x.step([['CHAP_A', offer]]);
  assert.equal(s.authenticated, false);
  const get = (k: string): string => {
    const v = s.reply.find(([key]) => key === k)?.[1];
    assert.ok(v !== undefined, `reply lacks ${k}`);
    return v;
  };
  const c = decodeBinary(get('CHAP_C'));
  assert.ok(c);
  return { a: get('CHAP_A'), id: Number(get('CHAP_I')), c };
}

const HASH: Record<string, string> = { '5': 'md5', '6': 'sha1', '7': 'sha256', '8': 'sha3-256' };

function expectAuthFailure(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof LoginFailure && e.status === LoginStatus.AuthenticationFailure);
}

describe('CHAP (RFC 7143 §12.1.3, RFC 1994)', () => {
  it('computes RFC 1994 responses: H(id || secret || challenge)', () => {
    const c = Buffer.from('00112233', 'hex');
    const want = createHash('md5')
      .update(Buffer.concat([Buffer.from([7]), Buffer.from('s3cret'), c]))
      .digest();
    assert.deepEqual(chapResponse('md5', 7, 's3cret', c), want);
  });

  it('decodes 0x hex (odd length too) and 0b base64 binary values, refuses others', () => {
    assert.deepEqual(decodeBinary('0xabcd'), Buffer.from([0xab, 0xcd]));
    assert.deepEqual(decodeBinary('0Xabc'), Buffer.from([0x0a, 0xbc]));
    assert.deepEqual(decodeBinary('0bAAEC'), Buffer.from([0, 1, 2]));
    assert.equal(decodeBinary('abcd'), undefined);
    assert.equal(decodeBinary('0xzz'), undefined);
    assert.equal(decodeBinary('0b!!'), undefined);
  });

  for (const a of ['5', '6', '7', '8']) {
    it(`accepts the right response with CHAP_A=${a} (${HASH[a]})`, () => {
      const x = start();
      const ch = challenge(x, a);
      assert.equal(ch.a, a);
      assert.ok(ch.c.length >= 16, 'challenge at least 16 bytes');
      const r = chapResponse(HASH[a], ch.id, INIT.secret, ch.c);
      const s = x.step([
        ['CHAP_N', INIT.username],
        ['CHAP_R', `0x${r.toString('hex')}`],
      ]);
      assert.equal(s.authenticated, true);
      assert.deepEqual(s.reply, []);
    });
  }

  it('picks the first algorithm of the initiator list that it implements', () => {
    assert.equal(challenge(start(), '99,7,5').a, '7');
    expectAuthFailure(() => start().step([['CHAP_A', '99,3']]));
  });

  it('issues a fresh random challenge for every login', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) seen.add(challenge(start()).c.toString('hex'));
    assert.equal(seen.size, 50);
  });

  it('accepts a base64 response', () => {
    const x = start();
    const ch = challenge(x);
    const r = chapResponse('md5', ch.id, INIT.secret, ch.c);
    assert.equal(
      x.step([
        ['CHAP_N', INIT.username],
        ['CHAP_R', `0b${r.toString('base64')}`],
      ]).authenticated,
      true,
    );
  });

  it('refuses a wrong secret, a wrong user, a wrong identifier, a truncated response, a missing CHAP_R', () => {
    const cases: Array<(ch: { id: number; c: Buffer }) => Array<[string, string]>> = [
      (ch) => [
        ['CHAP_N', INIT.username],
        ['CHAP_R', `0x${chapResponse('md5', ch.id, 'wrong-secret-xx', ch.c).toString('hex')}`],
      ],
      (ch) => [
        ['CHAP_N', 'mallory'],
        ['CHAP_R', `0x${chapResponse('md5', ch.id, INIT.secret, ch.c).toString('hex')}`],
      ],
      (ch) => [
        ['CHAP_N', INIT.username],
        ['CHAP_R', `0x${chapResponse('md5', (ch.id + 1) & 0xff, INIT.secret, ch.c).toString('hex')}`],
      ],
      (ch) => [
        ['CHAP_N', INIT.username],
        ['CHAP_R', `0x${chapResponse('md5', ch.id, INIT.secret, ch.c).subarray(0, 8).toString('hex')}`],
      ],
      () => [['CHAP_N', INIT.username]],
      () => [
        ['CHAP_N', INIT.username],
        ['CHAP_R', 'not-binary'],
      ],
    ];
    for (const pairs of cases) {
      const x = start();
      const ch = challenge(x);
      expectAuthFailure(() => x.step(pairs(ch)));
    }
  });

  it('answers mutual CHAP with the target credentials', () => {
    const x = start(true);
    const ch = challenge(x);
    const mine = Buffer.alloc(16, 0x5a);
    const s = x.step([
      ['CHAP_N', INIT.username],
      ['CHAP_R', `0x${chapResponse('md5', ch.id, INIT.secret, ch.c).toString('hex')}`],
      ['CHAP_I', '42'],
      ['CHAP_C', `0x${mine.toString('hex')}`],
    ]);
    assert.equal(s.authenticated, true);
    assert.deepEqual(s.reply, [
      ['CHAP_N', TGT.username],
      ['CHAP_R', `0x${chapResponse('md5', 42, TGT.secret, mine).toString('hex')}`],
    ]);
  });

  it('refuses mutual CHAP when the target has no credentials, and a reflected challenge', () => {
    for (const mutual of [false, true]) {
      const x = start(mutual);
      const ch = challenge(x);
      // The reflected challenge: our own CHAP_C sent back for us to answer.
      expectAuthFailure(() =>
        x.step([
          ['CHAP_N', INIT.username],
          ['CHAP_R', `0x${chapResponse('md5', ch.id, INIT.secret, ch.c).toString('hex')}`],
          ['CHAP_I', String(ch.id)],
          ['CHAP_C', `0x${ch.c.toString('hex')}`],
        ]),
      );
    }
  });

  it('refuses a bad mutual identifier', () => {
    const x = start(true);
    const ch = challenge(x);
    expectAuthFailure(() =>
      x.step([
        ['CHAP_N', INIT.username],
        ['CHAP_R', `0x${chapResponse('md5', ch.id, INIT.secret, ch.c).toString('hex')}`],
        ['CHAP_I', '256'],
        ['CHAP_C', '0x00112233445566778899aabbccddeeff'],
      ]),
    );
  });
});

describe('initiator ACL', () => {
  it('allows everyone when empty', () => {
    assert.equal(new InitiatorAcl([], []).allows('iqn.x:any', '10.1.1.1'), true);
  });

  it('matches exact names and prefixes ending in *', () => {
    const acl = new InitiatorAcl(['iqn.2026-11.a:host1', 'iqn.2026-11.b:*'], []);
    assert.equal(acl.allows('iqn.2026-11.a:host1', '127.0.0.1'), true);
    assert.equal(acl.allows('iqn.2026-11.a:host2', '127.0.0.1'), false);
    assert.equal(acl.allows('iqn.2026-11.b:anything', '127.0.0.1'), true);
  });

  it('checks source networks, IPv4, IPv4-mapped and IPv6', () => {
    const acl = new InitiatorAcl([], ['10.0.0.0/8', 'fd00::/8', '192.168.1.7']);
    assert.equal(acl.allows('iqn.x:a', '10.2.3.4'), true);
    assert.equal(acl.allows('iqn.x:a', '::ffff:10.2.3.4'), true);
    assert.equal(acl.allows('iqn.x:a', '11.0.0.1'), false);
    assert.equal(acl.allows('iqn.x:a', 'fd12::1'), true);
    assert.equal(acl.allows('iqn.x:a', 'fe80::1'), false);
    assert.equal(acl.allows('iqn.x:a', '192.168.1.7'), true);
    assert.equal(acl.allows('iqn.x:a', '192.168.1.8'), false);
  });

  it('needs both the name and the network when both are given', () => {
    const acl = new InitiatorAcl(['iqn.x:a'], ['127.0.0.0/8']);
    assert.equal(acl.allows('iqn.x:a', '127.0.0.1'), true);
    assert.equal(acl.allows('iqn.x:b', '127.0.0.1'), false);
    assert.equal(acl.allows('iqn.x:a', '10.0.0.1'), false);
  });

  it('validates CIDR strings', () => {
    assert.equal(validCidr('10.0.0.0/8'), true);
    assert.equal(validCidr('fd00::/8'), true);
    assert.equal(validCidr('1.2.3.4'), true);
    assert.equal(validCidr('10.0.0.0/33'), false);
    assert.equal(validCidr('10.0.0.0/8/1'), false);
    assert.equal(validCidr('host.example'), false);
    assert.equal(validCidr('10.0.0.0/x'), false);
  });
});
