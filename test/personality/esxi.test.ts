import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { read10, read16, TUR, write10, write16 } from '../lib/cdb';
import { inquiry, RELEASE6, RESERVE6, reportLuns, reportOpcode, unmapMany } from './cdbs';
import { Peer, senseOf } from './peer';
import { esxi } from './profiles';

/**
 * VMware ESXi's software iSCSI adapter on a file-store LUN: login, aborts, residuals, VAAI
 * probing, reservations and UNMAP patterns. The S3-timing behaviours (keep-alive under slow S3,
 * the ATS heartbeat, outages) are in s3-timing.test.ts. Sources: docs/initiator-personalities.md.
 */

const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32BE((i * 2654435761 + seed) >>> 0, i);
  return b;
};

async function host(port: number, o: { name?: string; immediateData?: boolean; qualifier?: number } = {}): Promise<Peer> {
  const p = await Peer.connect(port, esxi(o.name ?? 'esx1', o));
  assert.equal(await p.login(TEST_IQN), 0);
  await p.execRetryUa(TUR);
  return p;
}

describe('ESXi initiator personality (software iSCSI adapter, VMFS, VAAI)', () => {
  const target = new TargetProcess({
    logLevel: 'info',
    lunsYaml: `      - lun: 0
        name: lun0
        size: 1GiB
        cache: { size: 64MiB, mode: write-back }`,
  });
  before(() => target.start());
  after(() => target.stop());

  for (const immediateData of [true, false]) {
    it(`login with ImmediateData=${immediateData ? 'Yes' : 'No'}: inside LoginTimeout, 128 KiB Data-In, writes with one outstanding R2T`, async () => {
      // Source: esxcli iscsi adapter param get (LoginTimeout 5, MaxRecvDataSegLen 131072,
      // MaxOutstandingR2T 1, ImmediateData settable, digests off).
      const t0 = performance.now();
      const p = await host(target.port, { immediateData });
      const loginMs = performance.now() - t0;
      assert.ok(loginMs < 1000, `login took ${loginMs.toFixed(0)} ms (ESXi gives up after 5 s)`);
      assert.equal(p.answers.ImmediateData, immediateData ? 'Yes' : 'No');
      assert.equal(p.answers.MaxOutstandingR2T, '1');
      assert.equal(p.answers.ErrorRecoveryLevel, '0');
      assert.ok(Number(p.answers.FirstBurstLength) <= Number(p.answers.MaxBurstLength));
      const data = pattern(1024 * 1024, immediateData ? 1 : 2);
      const lba = immediateData ? 10_000 : 14_000;
      assert.equal((await p.exec(write10(lba, 2048), { write: data })).status, 0);
      const back = await p.exec(read10(lba, 2048), { read: data.length });
      assert.equal(back.status, 0);
      assert.ok(back.data.equals(data));
      assert.ok(p.largestDataIn <= 131072, `a Data-In of ${p.largestDataIn} bytes exceeds ESXi's MaxRecvDataSegmentLength`);
      assert.ok(p.largestDataIn > 8192, 'the 128 KiB segments ESXi offers are used');
      assert.equal(p.rejects.length, 0);
      p.close();
    });
  }

  it('device discovery and VMFS format probing: TUR, INQUIRY, VPD 00h/80h/83h, MODE SENSE(6) DBD page 0Ah, READ(10) of LBA 0', async () => {
    // Source: spdk/spdk#405 (an ESXi login's first commands: TEST UNIT READY, standard INQUIRY,
    // VPD 00h, 80h, 83h) and spdk/spdk#1414 (ESXi 6.7 datastore format: MODE SENSE(6) with DBD
    // of the Control page, then READ(10) of LBA 0).
    const p = await Peer.connect(target.port, esxi('esx-scan', { qualifier: 5 }));
    assert.equal(await p.login(TEST_IQN), 0);
    const tur = await p.exec(TUR);
    assert.deepEqual(senseOf(tur).slice(0, 3), [2, 6, 0x29], 'the first command of a new nexus sees the power-on unit attention');
    assert.equal((await p.exec(TUR)).status, 0);
    const std = await p.exec(inquiry(36), { read: 36 });
    assert.equal(std.data[0] & 0x1f, 0, 'direct-access block device');
    assert.ok(std.data[2] >= 5, 'SPC-3 or later (ESXi treats older devices as SCSI-2)');
    const pages = await p.exec(inquiry(255, 0), { read: 255 });
    for (const page of [0x80, 0x83]) {
      assert.ok(pages.data.subarray(4).includes(page));
      const r = await p.exec(inquiry(255, page), { read: 255 });
      assert.equal(r.status, 0);
      assert.equal(r.data[1], page);
    }
    const serial = (await p.exec(inquiry(255, 0x80), { read: 255 })).data;
    assert.ok(
      serial[3] > 0 &&
        /^[\x21-\x7e]+$/.test(
          serial
            .subarray(4, 4 + serial[3])
            .toString('latin1')
            .trim(),
        ),
      'a printable unit serial number',
    );
    const ctl = await p.exec(Buffer.from([0x1a, 0x08, 0x0a, 0, 0xff, 0]), { read: 255 });
    assert.equal(ctl.status, 0);
    assert.equal(ctl.data[3], 0, 'DBD: no block descriptor');
    assert.equal(ctl.data[4] & 0x3f, 0x0a);
    const lba0 = await p.exec(read10(0, 1), { read: 512 });
    assert.equal(lba0.status, 0);
    assert.equal(lba0.data.length, 512);
    p.close();
  });

  it('the largest transfer Block Limits allows, written with one outstanding R2T and read back', async () => {
    // Source: ESXi splits guest I/O at the device's MAXIMUM TRANSFER LENGTH (VPD B0h) or
    // Disk.DiskMaxIOSize (32 MB), whichever is smaller; MaxOutstandingR2T 1 (adapter default).
    const p = await host(target.port);
    const b0 = (await p.exec(inquiry(0x40, 0xb0), { read: 0x40 })).data;
    const maxBytes = Math.min(b0.readUInt32BE(8) * 512, 32 * MiB);
    assert.ok(maxBytes >= MiB);
    const data = pattern(maxBytes, 11);
    const lba = 500 * 2048 + 8; // not chunk aligned: the write spans chunk borders
    const w = await p.exec(write16(BigInt(lba), maxBytes / 512), { write: data }, 60_000);
    assert.equal(w.status, 0, `WRITE of ${maxBytes} bytes: ${senseOf(w)}`);
    const r = await p.exec(read16(BigInt(lba), maxBytes / 512), { read: maxBytes }, 60_000);
    assert.equal(r.status, 0);
    assert.ok(r.data.equals(data));
    assert.ok(p.largestDataIn <= 131072);
    p.close();
  });

  it('ABORT TASK of a WRITE whose R2T was sent and whose Data-Out never comes: answered promptly, nothing written, next commands served', async () => {
    // Source: LIO "scsi: target: iscsi: Handle abort for WRITE_PENDING cmds" and "Fix hang for
    // aborted WRITE_PENDING commands" (ESXi aborted WRITEs whose Data-Out never came, and LIO hung).
    const p = await host(target.port);
    const before = await p.exec(read10(20_000, 1024), { read: 512 * 1024 });
    const { itt, cmdSN, done } = p.start(write10(20_000, 1024), { write: pattern(512 * 1024, 3), immediate: 262144, withhold: true });
    for (let i = 0; i < 100 && p.r2tsOf(itt) === 0; i++) await sleep(20);
    assert.ok(p.r2tsOf(itt) > 0, 'the target solicited the rest of the data');
    const t0 = performance.now();
    assert.equal(await p.tmf(1, { referencedTaskTag: itt, refCmdSN: cmdSN }), 0, 'Function Complete');
    assert.ok(performance.now() - t0 < 1000, 'answered promptly');
    const late = await Promise.race([done.then(() => 'answered'), sleep(300).then(() => 'silent')]);
    assert.equal(late, 'silent', 'an aborted task gets no SCSI Response (RFC 7143 §11.5.1)');
    assert.equal((await p.execRetryUa(TUR)).status, 0);
    const after = await p.exec(read10(20_000, 1024), { read: 512 * 1024 });
    assert.ok(after.data.equals(before.data), 'nothing of the aborted WRITE landed');
    const w = pattern(64 * 1024, 4);
    assert.equal((await p.exec(write10(20_000, 128), { write: w })).status, 0);
    assert.ok((await p.exec(read10(20_000, 128), { read: w.length })).data.equals(w));
    assert.equal(p.rejects.length, 0);
    p.close();
  });

  it('ABORT TASK of a task that already completed, four times: Task does not exist each time, never a Reject', async () => {
    // Source: spdk/spdk#2001 (ESXi 6.7u2 re-sends ABORT TASK 4 times, then drops the connection);
    // openzfs/zfs#3793 (LIO under ESXi: "ABORT_TASK: ref_tag ... already complete"); RFC 7143
    // §11.5.1 c (RefCmdSN below ExpCmdSN: Task does not exist); libiscsi iSCSITMF.AbortTaskSimpleAsync.
    const p = await host(target.port);
    const { itt, cmdSN, done } = p.start(read10(0, 8), { read: 4096 });
    assert.equal((await done).status, 0);
    for (let i = 0; i < 4; i++) {
      const r = await p.tmf(1, { referencedTaskTag: itt, refCmdSN: cmdSN });
      assert.equal(r, 1, `abort ${i + 1}: response ${r}`);
    }
    assert.equal(p.rejects.length, 0);
    assert.equal((await p.exec(TUR)).status, 0);
    p.close();
  });

  it('a 34-block WRITE as 8 KiB immediate data + 9216 bytes of Data-Out: no residual; odd-sized Data-Out with a wrong LUN field is accepted', async () => {
    // Source: ESXi's defaults (ImmediateData Yes, InitialR2T No, FirstBurstLength 262144) let a
    // write arrive as immediate data plus unsolicited Data-Out (RFC 7143 §13.10-13.14); the issue
    // names the 8 KiB + 9216 split. RFC 7143 §11.7: Data-Out is matched by ITT and TTT.
    const p = await host(target.port);
    const data = pattern(34 * 512, 5);
    const r = await p.exec(write10(30_000, 34), { write: data, immediate: 8192, dataOutSize: 9216 });
    assert.equal(r.status, 0);
    assert.equal(r.residual.underflow, false, `underflow of ${r.residual.count}`);
    assert.equal(r.residual.overflow, false);
    assert.ok((await p.exec(read10(30_000, 34), { read: data.length })).data.equals(data));
    const odd = pattern(200 * 512, 6);
    const w = await p.exec(write10(31_000, 200), { write: odd, immediate: 1000, dataOutSize: 1000, dataOutLun: 7n });
    assert.equal(w.status, 0, `odd Data-Out: ${senseOf(w)}`);
    assert.ok((await p.exec(read10(31_000, 200), { read: odd.length })).data.equals(odd));
    assert.equal(p.rejects.length, 0);
    p.close();
  });

  it('TEST UNIT READY with the R bit and an expected length is answered GOOD', async () => {
    // Source: the issue (no public capture found); SAM-5: a command that transfers less than the
    // expected length ends GOOD with an underflow residual, not an error.
    const p = await host(target.port);
    const r = await p.exec(TUR, { readBit: true, expectedLength: 36 });
    assert.equal(r.status, 0, `TUR: ${senseOf(r)}`);
    p.close();
  });

  it('REPORT LUNS with SELECT REPORT 00h, 01h, 02h and an invalid value', async () => {
    // Source: SPC-5 §6.33 (SELECT REPORT codes); TalAloni/iSCSIConsole#6 (ESXi's REPORT LUNS
    // scan and a LUN encoding interop bug).
    const p = await host(target.port);
    const all = await p.exec(reportLuns(0x00), { read: 4096 });
    assert.equal(all.status, 0);
    assert.equal(all.data.readUInt32BE(0), 8, 'one LUN');
    const wellKnown = await p.exec(reportLuns(0x01), { read: 4096 });
    assert.equal(wellKnown.status, 0);
    for (let off = 8; off < 8 + wellKnown.data.readUInt32BE(0); off += 8) assert.equal(wellKnown.data[off] & 0xc0, 0xc0, 'only well-known LUNs');
    const both = await p.exec(reportLuns(0x02), { read: 4096 });
    assert.equal(both.status, 0);
    assert.ok(both.data.readUInt32BE(0) >= 8);
    const bad = await p.exec(reportLuns(0x03), { read: 4096 });
    assert.deepEqual(senseOf(bad), [2, 5, 0x24, 0], 'INVALID FIELD IN CDB');
    p.close();
  });

  it('RESERVE(6) during VMFS creation: metadata writes by the holder, the other host conflicts, RELEASE(6)', async () => {
    // Source: vSphere "Hardware Acceleration for Block Storage Devices" (without ATS, VMFS
    // locks the whole LUN with SCSI reservations); VMware KB 1027963 (LUN RESET breaks them).
    const a = await host(target.port, { name: 'esx1', qualifier: 1 });
    const b = await host(target.port, { name: 'esx2', qualifier: 2 });
    assert.equal((await a.exec(RESERVE6)).status, 0);
    const meta = pattern(1024 * 1024, 7);
    assert.equal((await a.exec(write10(2048, 2048), { write: meta })).status, 0);
    assert.equal((await b.execRetryUa(read10(2048, 8), { read: 4096 })).status, 0x18);
    assert.equal((await b.execRetryUa(RESERVE6)).status, 0x18, 'a second RESERVE conflicts');
    assert.equal((await a.exec(RELEASE6)).status, 0);
    const seen = await b.execRetryUa(read10(2048, 2048), { read: meta.length });
    assert.equal(seen.status, 0);
    assert.ok(seen.data.equals(meta));
    a.close();
    b.close();
  });

  it('a LUN RESET from another host breaks a SCSI-2 reservation left by a failed host', async () => {
    // Source: VMware KB 1027963 (ESXi sends LUN RESET to clear a reservation held by a host
    // that went away); SAM-5 §7.7 / SPC-2 §5.5.1 (a reset releases RESERVE(6) reservations).
    const a = await host(target.port, { name: 'esx-dead', qualifier: 3 });
    const b = await host(target.port, { name: 'esx-alive', qualifier: 4 });
    assert.equal((await a.exec(RESERVE6)).status, 0);
    assert.equal((await b.execRetryUa(write10(4000, 1), { write: Buffer.alloc(512, 1) })).status, 0x18);
    assert.equal(await b.tmf(5), 0, 'LUN RESET: Function Complete');
    const after = await b.execRetryUa(write10(4000, 1), { write: Buffer.alloc(512, 2) });
    assert.equal(after.status, 0, `after the reset: ${senseOf(after)}`);
    const ua = await a.exec(TUR);
    assert.deepEqual(senseOf(ua).slice(0, 3), [2, 6, 0x29], 'the old holder learns of the reset');
    a.close();
    b.close();
  });

  it('VAAI probing: 3PC, and REPORT SUPPORTED OPERATION CODES for COMPARE AND WRITE, EXTENDED COPY, WRITE SAME(16), UNMAP', async () => {
    // Source: VMware KB 1021976 (VAAI primitives: ATS = COMPARE AND WRITE, XCOPY = EXTENDED
    // COPY, Block Zero = WRITE SAME, UNMAP). ESXi itself learns support by trying each offload
    // (vSphere "Hardware Acceleration Support Status"); sg_opcodes and array checks read RSOC.
    const p = await host(target.port);
    const std = await p.exec(inquiry(96), { read: 96 });
    assert.equal(std.data[5] & 0x08, 0x08, '3PC: EXTENDED COPY supported');
    for (const [op, sa] of [[0x89], [0x83, 0x00], [0x93], [0x42]] as Array<[number, number?]>) {
      const r = await p.exec(reportOpcode(op, sa), { read: 512 });
      assert.equal(r.status, 0, `RSOC ${op.toString(16)}h: ${senseOf(r)}`);
      assert.equal(r.data[1] & 0x07, 0x03, `${op.toString(16)}h supported as the standard describes`);
      const cdbLen = r.data.readUInt16BE(2);
      assert.equal(r.data[4], op, 'CDB usage data starts with the opcode');
      assert.ok(cdbLen >= 10);
    }
    const b0 = await p.exec(inquiry(0x40, 0xb0), { read: 0x40 });
    assert.ok(b0.data[5] >= 1, 'MAXIMUM COMPARE AND WRITE LENGTH ≥ 1 (ATS)');
    assert.ok(b0.data.readUInt32BE(20) > 0, 'MAXIMUM UNMAP LBA COUNT');
    p.close();
  });

  it('Block Zero: WRITE SAME(16) of a zero block over 1 MiB-aligned ranges (eager-zeroed thick disks) reads back zeros', async () => {
    // Source: VMware KB 1021976 (VAAI Block Zeroing = WRITE SAME; used to create eager-zeroed
    // thick disks and zero blocks on first write of lazy-zeroed ones).
    const p = await host(target.port);
    const base = 300 * 2048;
    const data = pattern(4 * 1024 * 1024, 9);
    assert.equal((await p.exec(write10(base, 8192), { write: data }, 30_000)).status, 0);
    const ws = Buffer.alloc(16);
    ws[0] = 0x93;
    ws.writeBigUInt64BE(BigInt(base + 2048), 2);
    ws.writeUInt32BE(2 * 2048, 10);
    assert.equal((await p.exec(ws, { write: Buffer.alloc(512) })).status, 0);
    const back = (await p.exec(read10(base, 8192), { read: data.length }, 30_000)).data;
    assert.ok(back.subarray(0, MiB).equals(data.subarray(0, MiB)), 'MiB 0 untouched');
    assert.ok(
      back.subarray(MiB, 3 * MiB).every((x) => x === 0),
      'MiB 1-2 zeroed',
    );
    assert.ok(back.subarray(3 * MiB).equals(data.subarray(3 * MiB)), 'MiB 3 untouched');
    p.close();
  });

  it('UNMAP patterns: VMFS6 automatic reclaim (1 MiB aligned descriptors) and VMFS5 esxcli unmap (unaligned)', async () => {
    // Source: vSphere "Storage Space Reclamation" (VMFS6 automatic UNMAP at the 1 MB VMFS block;
    // VMFS5 `esxcli storage vmfs unmap` with a reclaim unit in blocks, not chunk aligned).
    const p = await host(target.port);
    const base = 200 * 2048;
    const data = pattern(8 * 1024 * 1024, 8);
    assert.equal((await p.exec(write10(base, 16_384), { write: data }, 30_000)).status, 0);
    // VMFS6: every other MiB, one descriptor each.
    const vmfs6 = unmapMany([0, 2, 4, 6].map((i) => [base + i * 2048, 2048] as const));
    assert.equal((await p.exec(vmfs6.cdb, { write: vmfs6.data })).status, 0);
    // VMFS5: an unaligned run inside MiB 1 and across MiB 3 → 5.
    const vmfs5 = unmapMany([
      [base + 2048 + 7, 1000],
      [base + 3 * 2048 + 1500, 2048 + 600],
    ]);
    assert.equal((await p.exec(vmfs5.cdb, { write: vmfs5.data })).status, 0);
    const lbprz = ((await p.exec(inquiry(0x40, 0xb2), { read: 0x40 })).data[5] & 0x04) !== 0;
    const back = (await p.exec(read10(base, 16_384), { read: data.length }, 30_000)).data;
    const zeroed = (lba: number): boolean => {
      const rel = lba - base;
      const mib = Math.floor(rel / 2048);
      if (mib % 2 === 0) return true;
      if (rel >= 2048 + 7 && rel < 2048 + 1007) return true;
      return rel >= 3 * 2048 + 1500 && rel < 3 * 2048 + 1500 + 2048 + 600;
    };
    for (let lba = base; lba < base + 16_384; lba++) {
      const got = back.subarray((lba - base) * 512, (lba - base + 1) * 512);
      const want = data.subarray((lba - base) * 512, (lba - base + 1) * 512);
      if (zeroed(lba)) {
        if (lbprz)
          assert.ok(
            got.every((x) => x === 0),
            `LBA ${lba} unmapped but not zero (LBPRZ=1)`,
          );
      } else assert.ok(got.equals(want), `LBA ${lba} outside the UNMAP ranges changed`);
    }
    p.close();
  });
});
