import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mustRun } from '../harness/exec';
import { TargetProcess, TEST_IQN } from '../harness/target';

describe('libiscsi tools against s3tgt (issue 2 acceptance)', () => {
  const target = new TargetProcess();
  before(() => target.start());
  after(() => target.stop());

  it('iscsi-ls -s lists the target and its 1 GiB LUN', async () => {
    const out = await mustRun('iscsi-ls', ['-s', target.portal]);
    assert.match(out, new RegExp(`Target:${TEST_IQN.replace(/\./g, '\\.')} Portal:127\\.0\\.0\\.1:${target.port},1`));
    // libiscsi prints (last LBA) * block size, i.e. 1 GiB - 512 bytes, as 1023M.
    assert.match(out, /Lun:0\s+Type:DIRECT_ACCESS \(Size:1023M\)/);
  });

  it('iscsi-inq answers the standard INQUIRY and VPD pages', async () => {
    const std = await mustRun('iscsi-inq', [target.url(0)]);
    assert.match(std, /Peripheral Device Type:DIRECT_ACCESS/);
    assert.match(std, /Vendor:S3TGT/);
    assert.match(std, /CmdQue:1/);
    const serial = await mustRun('iscsi-inq', ['-e', '1', '-c', '128', target.url(0)]);
    assert.match(serial, /Unit Serial Number:\[[0-9a-f]{32}\]/);
    const ids = await mustRun('iscsi-inq', ['-e', '1', '-c', '131', target.url(0)]);
    assert.match(ids, /Designator Type:\(3\) NAA/);
    assert.match(ids, /Designator Type:\(1\) T10_VENDORT_ID/);
  });

  it('iscsi-readcapacity16 reports 2097152 blocks of 512 bytes on 4096-byte physical blocks', async () => {
    const out = await mustRun('iscsi-readcapacity16', [target.url(0)]);
    assert.match(out, /RETURNED LOGICAL BLOCK ADDRESS:2097151/);
    assert.match(out, /LOGICAL BLOCK LENGTH IN BYTES:512/);
    assert.match(out, /LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT:3/);
    assert.match(out, /Total size:1073741824/);
  });
});
