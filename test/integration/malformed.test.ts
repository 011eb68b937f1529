import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { TUR } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';

/** A normal-session login that has consumed the POWER ON unit attention. */
async function loggedIn(port: number): Promise<TestInitiator> {
  const c = await TestInitiator.connect(port);
  await c.login({ target: TEST_IQN });
  await c.response(c.command(TUR));
  return c;
}

async function stillServes(port: number): Promise<void> {
  const c = await loggedIn(port);
  const r = await c.response(c.command(TUR));
  assert.equal(r.status, 0, 'a fresh session still works');
  c.close();
}

describe('malformed PDUs get a Reject or a closed connection, never a crash (issue 2 acceptance)', () => {
  const target = new TargetProcess();
  before(() => target.start());
  after(() => target.stop());

  it('an unknown opcode is rejected (reason 0x05) and the session goes on', async () => {
    const c = await loggedIn(target.port);
    const bad = Buffer.alloc(48);
    bad[0] = 0x1d; // not an initiator opcode
    bad.writeUInt32BE(0x77, 16);
    c.sendRaw(bad);
    const r = await c.recv();
    assert.ok(r !== 'closed' && r !== 'timeout' && r.kind === 'reject', `got ${typeof r === 'string' ? r : r.kind}`);
    if (r.kind === 'reject') {
      assert.equal(r.reason, 0x05);
      assert.equal(r.rejectedHeader.readUInt32BE(16), 0x77, 'the Reject carries the offending header');
    }
    const ok = await c.response(c.command(TUR));
    assert.equal(ok.status, 0);
    c.close();
  });

  it('a DataSegmentLength above MaxRecvDataSegmentLength is rejected and the connection closed', async () => {
    const c = await loggedIn(target.port);
    const bad = Buffer.alloc(48);
    bad[0] = 0x00; // NOP-Out
    bad[1] = 0x80;
    bad.writeUIntBE(0xfffff0, 5, 3);
    c.sendRaw(bad);
    const r = await c.recv();
    assert.ok(r !== 'timeout', 'the target answered');
    if (r !== 'closed') {
      assert.equal(r.kind, 'reject');
      assert.equal(await c.recv(), 'closed');
    }
    await stillServes(target.port);
  });

  it('a truncated header followed by a close leaves the target serving', async () => {
    const c = await TestInitiator.connect(target.port);
    c.sendRaw(Buffer.from([0x43, 0x87, 0, 0, 0, 0, 0, 0x10]));
    c.close();
    await stillServes(target.port);
  });

  it('garbage instead of a login closes the connection', async () => {
    const c = await TestInitiator.connect(target.port);
    c.sendRaw(Buffer.alloc(48, 0xff));
    assert.equal(await c.recv(), 'closed');
    await stillServes(target.port);
  });

  it('a SCSI command in a discovery session is rejected', async () => {
    const c = await TestInitiator.connect(target.port);
    await c.login();
    c.command(TUR);
    const r = await c.recv();
    assert.ok(r !== 'closed' && r !== 'timeout' && r.kind === 'reject');
    c.close();
  });

  it('a login to an unknown target fails with 0x0203 (target not found)', async () => {
    const c = await TestInitiator.connect(target.port);
    await assert.rejects(c.login({ target: 'iqn.2026-11.io.s3tgt:nope' }), /status 0x203/);
    c.close();
  });

  it('the target process is still alive', () => {
    assert.ok(target.alive, target.output.slice(-2000));
  });
});
