import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeLun } from '../../src/scsi/lun-address';
import { TaskAttribute } from '../../src/scsi/status';
import { FailingStore } from '../lib/failing-store';
import { cdb10, MiB, nexus, ScsiFixture } from '../lib/scsi-fixture';

const compareAndWrite = (lba: number): Buffer => {
  const c = Buffer.alloc(16);
  c[0] = 0x89;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c[13] = 1;
  return c;
};

describe('task abort at a command commit point (issue 15)', () => {
  it('a COMPARE AND WRITE aborted while its read waits on the store is never applied; the retry does not miscompare', async () => {
    const n = nexus('esx');
    // The block holds 0x42, durable in the store; a fresh volume over a slow store reads it cold.
    const seed = new ScsiFixture();
    await seed.ready(n);
    assert.equal((await seed.run(n, cdb10(0x2a, 2048, 1), { dataOut: Buffer.alloc(512, 0x42) })).status, 0);
    await seed.close();
    const slow = new FailingStore(seed.store);
    slow.rules.push({ fault: 'delay', ops: ['get'], delayMs: 300, times: 1 });
    const fx = new ScsiFixture(64 * MiB, 512, slow);
    await fx.ready(n);
    const task = fx.target.submit({
      nexus: n,
      lun: encodeLun(0),
      cdb: compareAndWrite(2048),
      tag: 77,
      attribute: TaskAttribute.Simple,
      dataOutBufferSize: 1024,
    });
    const ran = task.execute([Buffer.concat([Buffer.alloc(512, 0x42), Buffer.alloc(512, 0x77)])]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await fx.target.manage('abort-task', n, encodeLun(0), 77), 'complete');
    assert.equal(await ran, null, 'an aborted task has no outcome');
    const after = await fx.run(n, cdb10(0x28, 2048, 1));
    assert.ok(after.data?.equals(Buffer.alloc(512, 0x42)), 'the aborted COMPARE AND WRITE did not write');
    const retry = await fx.run(n, compareAndWrite(2048), { dataOut: Buffer.concat([Buffer.alloc(512, 0x42), Buffer.alloc(512, 0x77)]) });
    assert.equal(retry.status, 0, 'the retry compares against the old data');
    await fx.close();
  });
});
