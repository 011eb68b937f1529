import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseText, serializeText } from '../../src/iscsi/login/text-codec';
import { encodeNopOut, encodeScsiCommand, encodeTaskMgmtRequest, encodeTextRequest, type TargetPdu } from '../../src/iscsi/pdu';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { read10, TUR, write10 } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';

async function session(port: number, keys: Array<[string, string]> = []): Promise<TestInitiator> {
  const c = await TestInitiator.connect(port);
  await c.login({ target: TEST_IQN, keys });
  await c.response(c.command(TUR)); // consume the power-on unit attention
  return c;
}

async function expectKind<K extends TargetPdu['kind']>(c: TestInitiator, kind: K): Promise<Extract<TargetPdu, { kind: K }>> {
  const p = await c.recv();
  assert.ok(typeof p !== 'string', `expected ${kind}, got ${p}`);
  assert.equal(p.kind, kind);
  return p as Extract<TargetPdu, { kind: K }>;
}

describe('iSCSI full feature phase with a raw initiator (RFC 7143)', () => {
  const target = new TargetProcess({ extraYaml: 'iscsi: { nopInterval: 2s, nopTimeout: 2s, maxBurstLength: 65536, maxOutstandingR2T: 2 }' });
  before(() => target.start());
  after(() => target.stop());

  it('a write beyond the first burst is solicited with R2Ts of at most MaxBurstLength, in order, and lands', async () => {
    const c = await session(target.port, [['MaxBurstLength', '65536']]);
    const data = Buffer.alloc(256 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const itt = c.itt++;
    const cdb = Buffer.alloc(16);
    write10(2048, 512).copy(cdb);
    // InitialR2T=Yes (negotiated by the test initiator): 8 KiB immediate, the rest by R2T.
    c.send(
      encodeScsiCommand({
        immediate: false,
        final: true,
        read: false,
        write: true,
        attr: 1,
        lun: 0n,
        itt,
        expectedDataLength: data.length,
        cmdSN: c.cmdSN++,
        expStatSN: c.expStatSN,
        cdb,
        data: data.subarray(0, 8192),
      }),
    );
    let expectedOffset = 8192;
    let r2tSN = 0;
    for (;;) {
      const p = await c.recv();
      assert.ok(typeof p !== 'string', String(p));
      if (p.kind === 'scsi-response') {
        assert.equal(p.status, 0);
        break;
      }
      assert.equal(p.kind, 'r2t');
      if (p.kind !== 'r2t') return;
      assert.equal(p.r2tSN, r2tSN++);
      assert.equal(p.bufferOffset, expectedOffset);
      assert.ok(p.desiredLength <= 65536);
      for (let off = 0, sn = 0; off < p.desiredLength; off += 16384, sn++) {
        const len = Math.min(16384, p.desiredLength - off);
        c.dataOut(
          itt,
          p.ttt,
          p.bufferOffset + off,
          data.subarray(p.bufferOffset + off, p.bufferOffset + off + len),
          sn,
          off + len === p.desiredLength,
        );
      }
      expectedOffset += p.desiredLength;
    }
    assert.equal(expectedOffset, data.length);
    const back = await c.response(c.command(read10(2048, 512), { read: data.length }));
    assert.ok(back.data.equals(data));
    c.close();
  });

  it('a Data-Out with the wrong DataSN ends the command with CHECK CONDITION (no data written)', async () => {
    const c = await session(target.port);
    const before = await c.response(c.command(read10(4096, 16), { read: 8192 }));
    const itt = c.itt++;
    const cdb = Buffer.alloc(16);
    write10(4096, 16).copy(cdb);
    c.send(
      encodeScsiCommand({
        immediate: false,
        final: true,
        read: false,
        write: true,
        attr: 1,
        lun: 0n,
        itt,
        expectedDataLength: 8192,
        cmdSN: c.cmdSN++,
        expStatSN: c.expStatSN,
        cdb,
        data: Buffer.alloc(0),
      }),
    );
    const r2t = await expectKind(c, 'r2t');
    c.dataOut(itt, r2t.ttt, 0, Buffer.alloc(8192, 0xee), 5, true); // DataSN must be 0
    const resp = await expectKind(c, 'scsi-response');
    assert.equal(resp.status, 2);
    assert.equal(resp.sense[2] & 0x0f, 0x0b, 'ABORTED COMMAND');
    const after = await c.response(c.command(read10(4096, 16), { read: 8192 }));
    assert.ok(after.data.equals(before.data), 'nothing was written');
    c.close();
  });

  it('reports exact residual underflow and overflow counts', async () => {
    const c = await session(target.port);
    // INQUIRY with allocation length 255, EDTL 255: 96 bytes come back, underflow 159.
    const inqItt = c.command(Buffer.from([0x12, 0, 0, 0, 255, 0]), { read: 255 });
    let got = 0;
    for (;;) {
      const p = await c.recv();
      assert.ok(typeof p !== 'string');
      if (p.kind === 'data-in') {
        got += p.data.length;
        if (p.status) {
          assert.deepEqual(p.status.residual, { overflow: false, underflow: true, count: 255 - 96 });
          break;
        }
      } else assert.fail(`unexpected ${p.kind} ${p.kind === 'scsi-response' ? p.status : ''} for ${inqItt}`);
    }
    assert.equal(got, 96);
    // READ(10) of 8 blocks with EDTL 1024: 1024 bytes sent, overflow 3072.
    c.command(read10(0, 8), { read: 1024 });
    let bytes = 0;
    for (;;) {
      const p = await c.recv();
      assert.ok(typeof p !== 'string');
      assert.equal(p.kind, 'data-in');
      if (p.kind !== 'data-in') return;
      bytes += p.data.length;
      if (p.status) {
        assert.deepEqual(p.status.residual, { overflow: true, underflow: false, count: 3072 });
        break;
      }
    }
    assert.equal(bytes, 1024);
    c.close();
  });

  it('answers a NOP-Out ping with its data, and pings an idle initiator with a NOP-In', async () => {
    const c = await session(target.port);
    c.send(
      encodeNopOut({ immediate: true, lun: 0n, itt: 0x99, ttt: 0xffffffff, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: Buffer.from('hello') }),
    );
    const pong = await expectKind(c, 'nop-in');
    assert.equal(pong.itt, 0x99);
    assert.equal(pong.data.toString(), 'hello');
    const ping = await expectKind(c, 'nop-in'); // nopInterval is 2 s in this config
    assert.equal(ping.itt, 0xffffffff);
    assert.notEqual(ping.ttt, 0xffffffff);
    c.send(encodeNopOut({ immediate: true, lun: 0n, itt: 0xffffffff, ttt: ping.ttt, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: Buffer.alloc(0) }));
    c.close();
  });

  it('drops a connection whose initiator stops answering NOP-In pings', async () => {
    const c = await session(target.port);
    // Never answer: after nopInterval (2 s) + nopTimeout (2 s) the target closes.
    const end = Date.now() + 10_000;
    let closed = false;
    while (Date.now() < end) {
      const p = await c.recv(1000);
      if (p === 'closed') {
        closed = true;
        break;
      }
    }
    assert.ok(closed);
  });

  it('ignores a command whose CmdSN is outside the window, then goes on (RFC 7143 §3.2.2.1)', async () => {
    const c = await session(target.port);
    const tooHigh = c.cmdSN + 100000;
    const cdb = Buffer.alloc(16);
    c.send(
      encodeScsiCommand({
        immediate: false,
        final: true,
        read: false,
        write: false,
        attr: 1,
        lun: 0n,
        itt: 0x4444,
        expectedDataLength: 0,
        cmdSN: tooHigh,
        expStatSN: c.expStatSN,
        cdb,
        data: Buffer.alloc(0),
      }),
    );
    assert.equal(await c.recv(500), 'timeout', 'no answer to an out-of-window command');
    const r = await c.response(c.command(TUR));
    assert.equal(r.status, 0);
    c.close();
  });

  it('ABORT TASK of a write waiting for data: function complete, and the task never answers', async () => {
    const c = await session(target.port);
    const itt = c.itt++;
    const cdb = Buffer.alloc(16);
    write10(8192, 128).copy(cdb);
    c.send(
      encodeScsiCommand({
        immediate: false,
        final: true,
        read: false,
        write: true,
        attr: 1,
        lun: 0n,
        itt,
        expectedDataLength: 65536,
        cmdSN: c.cmdSN++,
        expStatSN: c.expStatSN,
        cdb,
        data: Buffer.alloc(0),
      }),
    );
    await expectKind(c, 'r2t');
    c.send(
      encodeTaskMgmtRequest({
        immediate: true,
        func: 1,
        lun: 0n,
        itt: 0x7000,
        referencedTaskTag: itt,
        cmdSN: c.cmdSN,
        expStatSN: c.expStatSN,
        refCmdSN: (c.cmdSN - 1) >>> 0,
        expDataSN: 0,
      }),
    );
    const tmf = await expectKind(c, 'task-mgmt-response');
    assert.equal(tmf.response, 0);
    assert.equal(await c.recv(300), 'timeout', 'the aborted task sends no response');
    // ABORT TASK of an unknown tag: task does not exist.
    c.send(
      encodeTaskMgmtRequest({
        immediate: true,
        func: 1,
        lun: 0n,
        itt: 0x7001,
        referencedTaskTag: 0xdead,
        cmdSN: c.cmdSN,
        expStatSN: c.expStatSN,
        refCmdSN: (c.cmdSN - 5) >>> 0,
        expDataSN: 0,
      }),
    );
    assert.equal((await expectKind(c, 'task-mgmt-response')).response, 1);
    // LUN RESET: complete; the next command from this nexus sees the reset unit attention.
    c.send(
      encodeTaskMgmtRequest({
        immediate: true,
        func: 5,
        lun: 0n,
        itt: 0x7002,
        referencedTaskTag: 0xffffffff,
        cmdSN: c.cmdSN,
        expStatSN: c.expStatSN,
        refCmdSN: 0,
        expDataSN: 0,
      }),
    );
    assert.equal((await expectKind(c, 'task-mgmt-response')).response, 0);
    const ua = await c.response(c.command(TUR));
    assert.equal(ua.status, 2);
    assert.equal(ua.sense[2] & 0x0f, 0x06, 'UNIT ATTENTION after LUN RESET');
    assert.equal(ua.sense[12], 0x29);
    c.close();
  });

  it('hands out a long SendTargets answer in pieces (C bit) and logs out cleanly', async () => {
    const c = await TestInitiator.connect(target.port);
    await c.login({ keys: [] });
    c.send(
      encodeTextRequest({
        immediate: true,
        final: true,
        cont: false,
        lun: 0n,
        itt: 0x50,
        ttt: 0xffffffff,
        cmdSN: c.cmdSN,
        expStatSN: c.expStatSN,
        data: serializeText([
          ['MaxRecvDataSegmentLength', '512'],
          ['SendTargets', 'All'],
          ['X-unknown', '1'],
        ]),
      }),
    );
    const first = await expectKind(c, 'text-response');
    const parts = [first.data];
    let last = first;
    while (last.cont) {
      c.send(
        encodeTextRequest({
          immediate: true,
          final: true,
          cont: false,
          lun: 0n,
          itt: 0x50,
          ttt: last.ttt,
          cmdSN: c.cmdSN,
          expStatSN: c.expStatSN,
          data: Buffer.alloc(0),
        }),
      );
      last = await expectKind(c, 'text-response');
      parts.push(last.data);
    }
    assert.equal(last.final, true);
    const text = Object.fromEntries(parseText(Buffer.concat(parts)));
    assert.equal(text.TargetName, TEST_IQN);
    assert.equal(text.TargetAddress, `127.0.0.1:${target.port},1`);
    assert.equal(text['X-unknown'], 'NotUnderstood');
    c.logout();
    const lo = await expectKind(c, 'logout-response');
    assert.equal(lo.response, 0);
    assert.equal(await c.recv(), 'closed');
  });

  it('reinstates a session that logs in again with the same ISID', async () => {
    const a = await session(target.port);
    const b = await TestInitiator.connect(target.port);
    await b.login({ target: TEST_IQN });
    assert.equal(await a.recv(), 'closed', 'the old session is closed by the reinstatement');
    b.close();
  });
});
