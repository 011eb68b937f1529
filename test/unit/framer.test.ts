import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestOf } from '../../src/iscsi/digest';
import { Framer } from '../../src/iscsi/framer';
import { encodeDataOut, encodeNopOut, encodeScsiCommand, type OutFrame, pad4 } from '../../src/iscsi/pdu';

/** Serializes a PDU the way a sender does: BHS, [header digest], data, padding, [data digest]. */
function wire(f: OutFrame, digests = { header: false, data: false }): Buffer {
  const parts = [f.bhs];
  if (digests.header) {
    const d = Buffer.alloc(4);
    d.writeUInt32LE(digestOf(f.bhs));
    parts.push(d);
  }
  const data = f.data ?? Buffer.alloc(0);
  if (data.length > 0) {
    const padded = Buffer.concat([data, Buffer.alloc(pad4(data.length) - data.length)]);
    parts.push(padded);
    if (digests.data) {
      const d = Buffer.alloc(4);
      d.writeUInt32LE(digestOf(padded));
      parts.push(d);
    }
  }
  return Buffer.concat(parts);
}

function stream(digests = { header: false, data: false }): { bytes: Buffer; datas: Buffer[] } {
  const datas = [Buffer.from('ping!'), Buffer.alloc(0), Buffer.alloc(1001, 9)];
  const pdus: OutFrame[] = [
    encodeNopOut({ immediate: true, lun: 0n, itt: 1, ttt: 0xffffffff, cmdSN: 1, expStatSN: 1, data: datas[0] }),
    encodeScsiCommand({
      immediate: false,
      final: true,
      read: true,
      write: false,
      attr: 1,
      lun: 0n,
      itt: 2,
      expectedDataLength: 512,
      cmdSN: 1,
      expStatSN: 1,
      cdb: Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
      data: datas[1],
    }),
    encodeDataOut({ final: true, lun: 0n, itt: 3, ttt: 7, expStatSN: 1, dataSN: 0, bufferOffset: 0, data: datas[2] }),
  ];
  return { bytes: Buffer.concat(pdus.map((p) => wire(p, digests))), datas };
}

function drain(f: Framer): Array<{ op: number; data: Buffer; bad: boolean }> {
  const out = [];
  for (let fr = f.next(); fr; fr = f.next()) out.push({ op: fr.bhs[0] & 0x3f, data: Buffer.from(fr.data), bad: fr.dataDigestError });
  return out;
}

describe('Framer', () => {
  for (const digests of [
    { header: false, data: false },
    { header: true, data: true },
  ]) {
    it(`yields the same PDUs for every two-way and many three-way splits (digests ${digests.header ? 'on' : 'off'})`, () => {
      const { bytes, datas } = stream(digests);
      const check = (got: ReturnType<typeof drain>): void => {
        assert.deepEqual(
          got.map((g) => g.op),
          [0x00, 0x01, 0x05],
        );
        got.forEach((g, i) => {
          assert.deepEqual(g.data, datas[i]);
          assert.equal(g.bad, false);
        });
      };
      for (let i = 0; i <= bytes.length; i++) {
        const f = new Framer(65536);
        f.headerDigest = digests.header;
        f.dataDigest = digests.data;
        f.push(bytes.subarray(0, i));
        const got = drain(f);
        f.push(bytes.subarray(i));
        got.push(...drain(f));
        check(got);
        assert.equal(f.bufferedBytes, 0);
      }
      for (let i = 0; i < bytes.length; i += 7) {
        for (let j = i; j <= bytes.length; j += 13) {
          const f = new Framer(65536);
          f.headerDigest = digests.header;
          f.dataDigest = digests.data;
          const got = [];
          for (const part of [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]) {
            f.push(part);
            got.push(...drain(f));
          }
          check(got);
        }
      }
    });
  }

  it('delivers byte-at-a-time input', () => {
    const { bytes } = stream();
    const f = new Framer(65536);
    const got = [];
    for (const b of bytes) {
      f.push(Buffer.from([b]));
      got.push(...drain(f));
    }
    assert.equal(got.length, 3);
  });

  it('refuses a DataSegmentLength above the limit before buffering it (fatal, RFC 7143 §7.8)', () => {
    const f = new Framer(8192);
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x01;
    bhs.writeUIntBE(8193, 5, 3);
    f.push(bhs);
    assert.throws(
      () => f.next(),
      (e: unknown) => (e as { code?: string; fatal?: boolean }).code === 'ISCSI_ERR_DATA_TOO_LONG' && (e as { fatal: boolean }).fatal === true,
    );
  });

  it('closes on a header digest error and flags a data digest error', () => {
    const { bytes } = stream({ header: true, data: true });
    const corruptHeader = Buffer.from(bytes);
    corruptHeader[20] ^= 1;
    const f1 = new Framer(65536);
    f1.headerDigest = true;
    f1.dataDigest = true;
    f1.push(corruptHeader);
    assert.throws(() => f1.next(), { code: 'ISCSI_ERR_HEADER_DIGEST' });

    const corruptData = Buffer.from(bytes);
    corruptData[48 + 4 + 1] ^= 1; // inside the first PDU's ping data
    const f2 = new Framer(65536);
    f2.headerDigest = true;
    f2.dataDigest = true;
    f2.push(corruptData);
    const got = drain(f2);
    assert.equal(got.length, 3);
    assert.equal(got[0].bad, true);
    assert.equal(got[1].bad, false);
  });

  it('waits for a truncated header or data segment without yielding', () => {
    const { bytes } = stream();
    const f = new Framer(65536);
    f.push(bytes.subarray(0, 47));
    assert.equal(f.next(), null);
    f.push(bytes.subarray(47, 50));
    assert.equal(f.next(), null);
  });
});
