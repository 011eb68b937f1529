import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Negotiator } from '../../src/iscsi/login/negotiator';
import { DEFAULT_TARGET_LIMITS } from '../../src/iscsi/login/params';
import { parseText, serializeText } from '../../src/iscsi/login/text-codec';

const respond = (pairs: Array<[string, string]>, n = new Negotiator(DEFAULT_TARGET_LIMITS)) => ({
  out: Object.fromEntries(n.respond(pairs, true)),
  n,
});

describe('text codec (RFC 7143 §6.1)', () => {
  it('round-trips key=value pairs', () => {
    const pairs: Array<[string, string]> = [
      ['InitiatorName', 'iqn.2026-11.test:x'],
      ['HeaderDigest', 'CRC32C,None'],
      ['X-com.example.Empty', ''],
    ];
    assert.deepEqual(parseText(serializeText(pairs)), pairs);
  });
  it('rejects malformed pairs, long values and bad key names', () => {
    assert.throws(() => parseText(Buffer.from('novalue\0')), { code: 'ISCSI_ERR_TEXT' });
    assert.throws(() => parseText(Buffer.from(`Key=${'x'.repeat(256)}\0`)), { code: 'ISCSI_ERR_TEXT' });
    assert.throws(() => parseText(Buffer.from('Bad Key=1\0')), { code: 'ISCSI_ERR_TEXT' });
    assert.throws(() => parseText(Buffer.from(`${'k'.repeat(64)}=1\0`)), { code: 'ISCSI_ERR_TEXT' });
    assert.throws(() => parseText(Buffer.from(Array.from({ length: 300 }, (_, i) => `K${i}=1`).join('\0'))), { code: 'ISCSI_ERR_TEXT' });
  });
});

describe('operational negotiation (RFC 7143 §6.2, §13)', () => {
  it('applies min/max/OR/AND rules', () => {
    const { out, n } = respond([
      ['MaxBurstLength', '1048576'], // min(ours 16776192, 1048576)
      ['FirstBurstLength', '999999999'], // out of range -> Reject
      ['DefaultTime2Wait', '0'], // max(ours 2, 0)
      ['DefaultTime2Retain', '60'], // min(ours 20, 60)
      ['InitialR2T', 'No'], // OR(ours No, No) = No
      ['ImmediateData', 'No'], // AND(ours Yes, No) = No
      ['MaxOutstandingR2T', '1'],
      ['ErrorRecoveryLevel', '2'], // min(0, 2)
      ['DataPDUInOrder', 'No'], // OR with our Yes -> Yes
    ]);
    assert.deepEqual(out, {
      MaxBurstLength: '1048576',
      FirstBurstLength: 'Reject',
      DefaultTime2Wait: '2',
      DefaultTime2Retain: '20',
      InitialR2T: 'No',
      ImmediateData: 'No',
      MaxOutstandingR2T: '1',
      ErrorRecoveryLevel: '0',
      DataPDUInOrder: 'Yes',
    });
    assert.equal(n.session.maxBurstLength, 1048576);
    assert.equal(n.session.firstBurstLength, 65536, 'a rejected value keeps the default');
    assert.equal(n.session.immediateData, false);
    assert.equal(n.session.errorRecoveryLevel, 0);
  });

  it('picks the first digest we support and records it', () => {
    const { out, n } = respond([
      ['HeaderDigest', 'CRC32C,None'],
      ['DataDigest', 'MD5,None'],
    ]);
    assert.deepEqual(out, { HeaderDigest: 'CRC32C', DataDigest: 'None' });
    assert.equal(n.connection.headerDigest, true);
    assert.equal(n.connection.dataDigest, false);
    assert.deepEqual(respond([['HeaderDigest', 'MD5']]).out, { HeaderDigest: 'Reject' });
  });

  it('answers unknown and extension keys NotUnderstood, obsolete markers per §13.26', () => {
    const { out } = respond([
      ['X-com.example.Foo', 'bar'],
      ['NoSuchKey', '1'],
      ['IFMarker', 'No'],
      ['OFMarkInt', '2048~8192'],
    ]);
    assert.deepEqual(out, { 'X-com.example.Foo': 'NotUnderstood', NoSuchKey: 'NotUnderstood', IFMarker: 'No', OFMarkInt: 'Reject' });
  });

  it('rejects malformed booleans and numbers, takes declarations silently', () => {
    const { out, n } = respond([
      ['InitialR2T', 'maybe'],
      ['MaxConnections', '0x10'],
      ['MaxRecvDataSegmentLength', '65536'],
      ['TargetAlias', 'spoof'],
    ]);
    assert.deepEqual(out, { InitialR2T: 'Reject', MaxConnections: '1', TargetAlias: 'Reject' });
    assert.equal(n.connection.maxXmitDataSegmentLength, 65536);
    assert.deepEqual(respond([['MaxRecvDataSegmentLength', '100']]).out, { MaxRecvDataSegmentLength: 'Reject' });
  });

  it('fails the login when a key is offered twice', () => {
    const n = new Negotiator(DEFAULT_TARGET_LIMITS);
    n.respond([['MaxBurstLength', '512']], true);
    assert.throws(() => n.respond([['MaxBurstLength', '1024']], true), { name: 'LoginFailure' });
  });

  it('keeps FirstBurstLength within MaxBurstLength', () => {
    const n = new Negotiator(DEFAULT_TARGET_LIMITS);
    n.respond(
      [
        ['MaxBurstLength', '4096'],
        ['FirstBurstLength', '65536'],
      ],
      true,
    );
    n.finish();
    assert.equal(n.session.firstBurstLength, 4096);
  });
});
