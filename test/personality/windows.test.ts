import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chapResponse, decodeBinary } from '../../src/iscsi/login/chap';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { read10, SYNC_CACHE, TUR, write10, write10Fua } from '../lib/cdb';
import {
  inquiry,
  modeSelect6,
  modeSense6,
  READ_CAPACITY10,
  RELEASE6,
  RELEASE10,
  RESERVE6,
  RESERVE10,
  readCapacity16,
  unmapMany,
  verify10,
} from './cdbs';
import { type LoginStep, Peer, senseOf } from './peer';
import { windows } from './profiles';

/**
 * The Microsoft iSCSI Initiator and the Windows disk class driver, as documented: what they send
 * at login, at disk arrival, and when a reservation is taken. Each test names its source; the
 * sources are listed in docs/initiator-personalities.md.
 */

const CHAP_IQN = 'iqn.2026-11.io.s3tgt:chap';
const USER = 'iqn.1991-05.com.microsoft:node1';
const SECRET12 = 'win-secret12'; // 12 bytes: the Windows minimum
const SECRET16 = 'win-secret-16byt'; // 16 bytes: the Windows maximum
const TGT_SECRET = 'target-secret-99';
const serialGE = (a: number, b: number): boolean => ((a - b) | 0) >= 0;

/** RFC 7143 §11.13: every login response carries a window; MaxCmdSN ≥ ExpCmdSN − 1 (here ≥ ExpCmdSN: it must be open). */
function assertWindows(steps: readonly LoginStep[]): void {
  assert.ok(steps.length > 0);
  for (const s of steps) assert.ok(serialGE(s.maxCmdSN, s.expCmdSN), `login response window closed: ExpCmdSN ${s.expCmdSN} MaxCmdSN ${s.maxCmdSN}`);
}

async function arrived(port: number, host = 'node1', qualifier = 0): Promise<Peer> {
  const p = await Peer.connect(port, windows(host, qualifier));
  assert.equal(await p.login(TEST_IQN), 0);
  await p.execRetryUa(Buffer.from([0, 0, 0, 0, 0, 0]));
  return p;
}

describe('Windows initiator personality (msiscsi, disk.sys/classpnp.sys, clusdisk)', () => {
  const target = new TargetProcess({
    logLevel: 'info',
    lunsYaml: `      - { lun: 0, name: lun0, size: 1GiB }
      - { lun: 1, name: lun1, size: 1GiB }
      - { lun: 2, name: big, size: 4TiB }`,
    moreTargetsYaml: `  - iqn: ${CHAP_IQN}
    chap:
      username: ${USER}
      secretEnv: WIN_CHAP_SECRET
      mutual: { username: ${CHAP_IQN}, secret: ${TGT_SECRET} }
    luns:
      - { lun: 0, name: chap0, size: 64MiB }
  - iqn: ${CHAP_IQN}16
    chap: { username: ${USER}, secret: ${SECRET16} }
    luns:
      - { lun: 0, name: chap16, size: 64MiB }`,
    env: { WIN_CHAP_SECRET: SECRET12 },
  });
  before(() => target.start());
  after(() => target.stop());

  it('login: Windows ISID and proposal; every response keeps the CmdSN window open and FirstBurstLength ≤ MaxBurstLength', async () => {
    // Source: Get-IscsiSession (InitiatorSideIdentifier 4000013700xx, iqn.1991-05.com.microsoft:
    // names); the proposal values are the ones in the issue (no public Microsoft document lists
    // them; see docs/initiator-personalities.md).
    const p = await Peer.connect(target.port, windows());
    assert.equal(await p.login(TEST_IQN), 0);
    assertWindows(p.loginSteps);
    // The security stage answer carries no operational keys (RFC 7143 §6.3: they belong to the operational stage).
    const first = p.loginSteps[0];
    assert.equal(first.text.AuthMethod, 'None');
    for (const k of Object.keys(first.text))
      assert.ok(['AuthMethod', 'TargetPortalGroupTag', 'TargetAlias'].includes(k), `security stage answered ${k}`);
    assert.ok(first.transit && first.nsg === 1);
    const a = p.answers;
    assert.ok(Number(a.FirstBurstLength) <= Number(a.MaxBurstLength), `FirstBurstLength ${a.FirstBurstLength} > MaxBurstLength ${a.MaxBurstLength}`);
    assert.ok(Number(a.MaxBurstLength) <= 262144, 'MaxBurstLength is a minimum function');
    assert.ok(Number(a.FirstBurstLength) <= 65536, 'FirstBurstLength is a minimum function');
    // ErrorRecoveryLevel is a minimum function (RFC 7143 §13.20): the answer is ≤ 2 and a number.
    assert.match(a.ErrorRecoveryLevel ?? '', /^[0-2]$/);
    assert.equal(a.InitialR2T, 'No');
    assert.equal(a.ImmediateData, 'Yes');
    assert.equal(a.HeaderDigest, 'None');
    // Windows moves 64 KiB writes as immediate + unsolicited Data-Out, then R2T for the rest.
    await p.execRetryUa(Buffer.from([0, 0, 0, 0, 0, 0]));
    const data = Buffer.alloc(256 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(i, i);
    assert.equal((await p.exec(write10(4096, 512), { write: data, immediate: 8192, dataOutSize: 8192 })).status, 0);
    const back = await p.exec(read10(4096, 512), { read: data.length });
    assert.equal(back.status, 0);
    assert.ok(back.data.equals(data));
    assert.ok(p.largestDataIn <= 65536, `Data-In of ${p.largestDataIn} bytes beyond Windows' MaxRecvDataSegmentLength`);
    assert.equal(p.rejects.length, 0);
    p.close();
  });

  /** Windows' CHAP: MD5 only (CHAP_A=5), base64 challenge/response accepted, one-way when mutual is configured. */
  async function chapLogin(iqn: string, secret: string, encoding: 'hex' | 'base64'): Promise<{ status: number; steps: LoginStep[] }> {
    const p = await Peer.connect(target.port, windows());
    const status = await p.login(iqn, {
      auth: async (q) => {
        const s1 = await q.securityStep(
          [
            ['InitiatorName', USER],
            ['SessionType', 'Normal'],
            ['TargetName', iqn],
            ['AuthMethod', 'CHAP,None'],
          ],
          false,
        );
        if (s1.status !== 0) return s1.status;
        assert.equal(s1.text.AuthMethod, 'CHAP');
        const s2 = await q.securityStep([['CHAP_A', '5']], false);
        if (s2.status !== 0) return s2.status;
        assert.equal(s2.text.CHAP_A, '5');
        const challenge = decodeBinary(s2.text.CHAP_C) as Buffer;
        assert.ok(challenge && challenge.length >= 16, 'a challenge of at least 16 bytes');
        const r = chapResponse('md5', Number(s2.text.CHAP_I), secret, challenge);
        const enc = encoding === 'hex' ? `0x${r.toString('hex')}` : `0b${r.toString('base64')}`;
        // One-way CHAP: no CHAP_I/CHAP_C of ours, although the target has a mutual secret.
        const s3 = await q.securityStep(
          [
            ['CHAP_N', USER],
            ['CHAP_R', enc],
          ],
          true,
        );
        return s3.status;
      },
    });
    const steps = [...p.loginSteps];
    p.close();
    return { status, steps };
  }

  it('CHAP as Windows does it: 12- and 16-byte secrets, base64 CHAP_R, one-way with mutual configured', async () => {
    // Source: NetApp/Lenovo "Guidelines for using CHAP authentication" (the Microsoft initiator
    // wants 12-16 byte secrets); LIO commit "scsi: target: iscsi: Support base64 in CHAP" (for
    // Windows HLK); RFC 7143 §6.1 (binary values in 0x hex or 0b base64).
    for (const [iqn, secret] of [
      [CHAP_IQN, SECRET12],
      [`${CHAP_IQN}16`, SECRET16],
    ] as const) {
      for (const enc of ['base64', 'hex'] as const) {
        const r = await chapLogin(iqn, secret, enc);
        assert.equal(r.status, 0, `${iqn} ${enc}`);
        assertWindows(r.steps);
      }
      const wrong = await chapLogin(iqn, `${secret}x`, 'base64');
      assert.equal(wrong.status, 0x0201, 'a wrong secret fails authentication');
    }
  });

  it('disk arrival: VPD 00h ascending, B0h full length, B1h, B2h, READ CAPACITY(16) with allocation length 12', async () => {
    // Source: classpnp class.c ClasspGetInquiryVpdSupportInfo (VPD 00h at start), utils.c
    // ClasspDeviceGetBlockLimitsVPDPage / ...BlockDeviceCharacteristicsVPDPage (B1h length 3Ch) /
    // ...LBProvisioningVPDPage; class.c ClassReadDriveCapacity + xferpkt.c
    // SetupDriveCapacityTransferPacket (allocation length sizeof(READ_CAPACITY_DATA_EX) = 12).
    const p = await arrived(target.port);
    const std = await p.exec(inquiry(36), { read: 36 });
    assert.equal(std.status, 0);
    assert.equal(std.data.length, 36);
    const pages = await p.exec(inquiry(255, 0x00), { read: 255 });
    assert.equal(pages.status, 0);
    const list = [...pages.data.subarray(4, 4 + pages.data.readUInt16BE(2))];
    assert.equal(list[0], 0x00, 'the supported pages list starts with 00h');
    for (let i = 1; i < list.length; i++) assert.ok(list[i] > list[i - 1], `pages not strictly ascending: ${list.map((x) => x.toString(16))}`);
    for (const need of [0x80, 0x83, 0xb0, 0xb1, 0xb2]) assert.ok(list.includes(need), `VPD ${need.toString(16)}h missing`);
    const b0 = await p.exec(inquiry(0x40, 0xb0), { read: 0x40 });
    assert.equal(b0.status, 0);
    assert.equal(b0.data.readUInt16BE(2), 0x3c, 'Block Limits page length 3Ch (SBC-4 §6.6.4)');
    assert.equal(b0.data.length, 0x40);
    for (const page of [0xb1, 0xb2]) {
      const r = await p.exec(inquiry(0x40, page), { read: 0x40 });
      assert.equal(r.status, 0);
      assert.equal(r.data[1], page);
    }
    // ClassReadDriveCapacity: READ CAPACITY(10) first; READ CAPACITY(16) with allocation length
    // 12 only when the answer is FFFFFFFFh (a LUN of 2 TiB or more).
    const rc10 = await p.exec(READ_CAPACITY10, { read: 8 });
    assert.equal(rc10.status, 0);
    assert.equal(rc10.data.readUInt32BE(0), (1 << 30) / 512 - 1);
    const LUN2 = 0x0002_0000_0000_0000n;
    const big10 = await p.execRetryUa(READ_CAPACITY10, { read: 8, lun: LUN2 });
    assert.equal(big10.data.readUInt32BE(0), 0xffffffff, 'a 4 TiB LUN answers FFFFFFFFh (SBC-4 §5.19.2)');
    const rc16 = await p.exec(readCapacity16(12), { read: 12, lun: LUN2 });
    assert.equal(rc16.status, 0, 'allocation length 12 is truncation, not an error (SPC-5 §4.2.5.6)');
    assert.equal(rc16.data.length, 12);
    assert.equal(rc16.data.readBigUInt64BE(0), (4n * 2n ** 40n) / 512n - 1n);
    assert.equal(rc16.data.readUInt32BE(8), 512);
    assert.equal(rc16.residual.overflow, false);
    // A larger buffer than the data: GOOD with an underflow residual (RFC 7143 §11.4.5).
    const big = await p.exec(readCapacity16(32), { read: 64 });
    assert.equal(big.status, 0);
    assert.equal(big.data.length, 32);
    assert.ok(big.residual.underflow && big.residual.count === 32);
    p.close();
  });

  it('disk arrival: MODE SENSE(6) 3Fh with allocation length 192, caching page current and changeable, page 1Ch', async () => {
    // Source: disk.h MODE_DATA_SIZE (192); disk.c DiskIoctlGetMediaTypesEx / DiskIoctlIsWritable
    // (page 3Fh), DiskGetCacheInformation (08h current), classpnp utils.c ClasspWriteCacheProperty
    // (08h changeable), disk.c DiskGetInfoExceptionInformation (1Ch, failure prediction).
    const p = await arrived(target.port);
    const all = await p.exec(modeSense6(0x3f, 192), { read: 192 });
    assert.equal(all.status, 0, `MODE SENSE 3Fh: ${senseOf(all)}`);
    assert.ok(all.data.length <= 192 && all.data.length >= 4);
    assert.ok(all.data[0] + 1 >= all.data.length, 'MODE DATA LENGTH counts the whole list even when truncated');
    // Smaller than the data: truncated to the allocation length, never rejected (SPC-5 §4.2.5.6).
    const short = await p.exec(modeSense6(0x3f, 16), { read: 16 });
    assert.equal(short.status, 0);
    assert.equal(short.data.length, 16);
    assert.equal(short.data[0], all.data[0], 'the same MODE DATA LENGTH whatever the allocation length');
    const cur = await p.exec(modeSense6(0x08, 192), { read: 192 });
    assert.equal(cur.status, 0);
    const bd = cur.data[3];
    const page = cur.data.subarray(4 + bd);
    assert.equal(page[0] & 0x3f, 0x08);
    assert.equal(page[1], 0x12, 'caching page length 12h (SBC-4 §6.5.5)');
    const chg = await p.exec(modeSense6(0x08, 192, 1), { read: 192 });
    assert.equal(chg.status, 0);
    const chgPage = chg.data.subarray(4 + chg.data[3]);
    assert.equal(chgPage[0] & 0x3f, 0x08);
    assert.equal(chgPage[2] & 0x04, 0x04, 'WCE is changeable (Windows offers "enable write caching")');
    const ie = await p.exec(modeSense6(0x1c, 192), { read: 192 });
    assert.equal(ie.status, 0, `page 1Ch: ${senseOf(ie)}`);
    const iePage = ie.data.subarray(4 + ie.data[3]);
    assert.equal(iePage[0] & 0x3f, 0x1c);
    assert.equal(iePage[1], 0x0a);
    p.close();
  });

  it('disk arrival: MODE SELECT(6) of the Control page with QERR=0 is accepted and reads back', async () => {
    // Source: classpnp utils.c ClasspZeroQERR, run by ClassPnpStartDevice for thin-provisioned
    // (LBPME=1, as every s3tgt LUN is) or ODX-capable LUNs.
    const p = await arrived(target.port);
    const cur = await p.exec(modeSense6(0x0a, 192, 0, true), { read: 192 });
    assert.equal(cur.status, 0);
    const ctl = Buffer.from(cur.data.subarray(4, 4 + 12));
    assert.equal(ctl[0] & 0x3f, 0x0a);
    ctl[0] &= 0x3f; // PS is reserved in MODE SELECT
    ctl[3] &= ~0x06; // QERR = 00b
    const list = Buffer.concat([Buffer.alloc(4), ctl]);
    const sel = await p.exec(modeSelect6(list.length), { write: list });
    assert.equal(sel.status, 0, `MODE SELECT control page: ${senseOf(sel)}`);
    const again = await p.exec(modeSense6(0x0a, 192, 0, true), { read: 192 });
    assert.equal(again.data[4 + 3] & 0x06, 0);
    p.close();
  });

  it('disk arrival: SYNCHRONIZE CACHE probe, WRITE with FUA, VERIFY with and without BYTCHK', async () => {
    // Source: classpnp utils.c ClasspWriteCacheProperty (SYNCHRONIZE CACHE(10) probe), xferpkt.c
    // SetupReadWriteTransferPacket (FUA from CdbForceUnitAccess; disk.c DiskFdoProcessError turns
    // the write cache off if FUA is refused), disk.c DiskIoctlVerifyThread (VERIFY(10)).
    const p = await arrived(target.port);
    assert.equal((await p.exec(SYNC_CACHE)).status, 0);
    const block = Buffer.alloc(4096, 0x3c);
    assert.equal((await p.exec(write10Fua(800, 8), { write: block })).status, 0);
    assert.equal((await p.exec(verify10(800, 8))).status, 0);
    assert.equal((await p.exec(verify10(800, 8, 1), { write: block })).status, 0);
    const bad = Buffer.from(block);
    bad[1000] ^= 1;
    const miss = await p.exec(verify10(800, 8, 1), { write: bad });
    assert.deepEqual(senseOf(miss).slice(0, 4), [2, 0x0e, 0x1d, 0x00], 'MISCOMPARE DURING VERIFY OPERATION');
    p.close();
  });

  it('Windows TRIM (Optimize-Volume -ReTrim): UNMAP with as many descriptors as Block Limits allows; one more is refused', async () => {
    // Source: classpnp ClasspDeviceTrimProcess / ClasspBlockLimitsDataSnapshot (UNMAP built
    // from MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT and MAXIMUM UNMAP LBA COUNT of VPD B0h).
    const p = await arrived(target.port);
    const b0 = (await p.exec(inquiry(0x40, 0xb0), { read: 0x40 })).data;
    const maxDescriptors = b0.readUInt32BE(24);
    assert.ok(maxDescriptors >= 1);
    const base = 40 * 2048;
    const data = Buffer.alloc(maxDescriptors * 2 * 4096, 0x6b);
    assert.equal((await p.exec(write10(base, data.length / 512), { write: data }, 30_000)).status, 0);
    // Every other 4 KiB of the written range, one descriptor each.
    const extents = Array.from({ length: maxDescriptors }, (_, i) => [base + i * 16, 8] as const);
    const list = unmapMany(extents);
    assert.equal((await p.exec(list.cdb, { write: list.data })).status, 0);
    const back = (await p.exec(read10(base, data.length / 512), { read: data.length }, 30_000)).data;
    for (let i = 0; i < maxDescriptors; i++) {
      assert.ok(
        back.subarray(i * 8192, i * 8192 + 4096).every((x) => x === 0),
        `extent ${i} not zero`,
      );
      assert.ok(
        back.subarray(i * 8192 + 4096, i * 8192 + 8192).every((x) => x === 0x6b),
        `gap ${i} changed`,
      );
    }
    const tooMany = unmapMany([...extents, [base + 1, 1]]);
    assert.deepEqual(senseOf(await p.exec(tooMany.cdb, { write: tooMany.data })), [2, 5, 0x26, 0], 'INVALID FIELD IN PARAMETER LIST');
    p.close();
  });

  it('cluster validation "Validate SCSI device Vital Product Data": a unique NAA designator per LUN, stable across a restart', async () => {
    // Source: Failover Cluster validation report "Validate SCSI device Vital Product Data
    // (VPD)" (page 83h identifiers must be unique per disk); mpio.sys/msdsm identify paths by it.
    const naaOf = async (lun: bigint): Promise<string> => {
      const p = await arrived(target.port);
      const r = await p.execRetryUa(inquiry(255, 0x83), { read: 255, lun });
      p.close();
      assert.equal(r.status, 0);
      const d = r.data;
      for (let off = 4; off + 4 <= 4 + d.readUInt16BE(2); off += 4 + d[off + 3]) {
        if ((d[off + 1] & 0x0f) === 3 && (d[off + 1] & 0x30) === 0) return d.subarray(off + 4, off + 4 + d[off + 3]).toString('hex');
      }
      throw new Error('no NAA designator for the LU');
    };
    // SAM-5 §4.7.7.2 single-level peripheral addressing: LUN 1 is 0001h in the first two bytes.
    const LUN1 = 0x0001_0000_0000_0000n;
    const first = [await naaOf(0n), await naaOf(LUN1)];
    assert.notEqual(first[0], first[1], 'two LUNs share an identifier');
    assert.equal(await target.stop(), 0);
    await target.start();
    assert.deepEqual([await naaOf(0n), await naaOf(LUN1)], first, 'identifiers changed across a restart');
  });

  it('Storport multi-tier reset: LUN RESET, then TARGET WARM RESET, each Function Complete, unit attention 29h, the session goes on', async () => {
    // Source: "Multi-tier reset in Storport" (a timed-out request escalates LUN reset → target
    // reset → bus reset); RFC 7143 §11.5.1 (TARGET WARM RESET keeps the session).
    const p = await arrived(target.port, 'node-reset', 5);
    const other = await arrived(target.port, 'node-other', 6);
    for (const fn of [5, 6]) {
      assert.equal(await p.tmf(fn), 0, `function ${fn}`);
      const ua = await p.exec(TUR);
      assert.deepEqual(senseOf(ua).slice(0, 3), [2, 6, 0x29]);
      assert.equal((await p.execRetryUa(TUR)).status, 0);
      assert.deepEqual(senseOf(await other.exec(TUR)).slice(0, 3), [2, 6, 0x29], 'every nexus is told');
      await other.execRetryUa(TUR);
    }
    const w = Buffer.alloc(4096, 0x2d);
    assert.equal((await p.exec(write10(1200, 8), { write: w })).status, 0);
    assert.ok((await p.exec(read10(1200, 8), { read: 4096 })).data.equals(w));
    p.close();
    other.close();
  });

  it('a flush with the ORDERED task attribute behind queued SIMPLE writes: every write before it is in, nothing reordered', async () => {
    // Source: Storport/classpnp issue SYNCHRONIZE CACHE for a flush with an ordered queue tag
    // (SRB_ORDERED_QUEUE_TAG_REQUEST) so it completes after the writes queued before it; SAM-5 §8.6.
    const p = await arrived(target.port, 'node-ordered', 7);
    const writes = [];
    for (let i = 0; i < 16; i++) writes.push(p.start(write10(6000 + i * 8, 8), { write: Buffer.alloc(4096, 0x10 + i) }).done);
    const flush = p.start(SYNC_CACHE, { attr: 2 }).done;
    const order: string[] = [];
    writes.forEach((w, i) => void w.then(() => order.push(`w${i}`)));
    void flush.then(() => order.push('flush'));
    for (const w of await Promise.all(writes)) assert.equal(w.status, 0);
    assert.equal((await flush).status, 0);
    assert.equal(order[order.length - 1], 'flush', `the ordered flush completed before a write queued ahead of it: ${order}`);
    const back = (await p.exec(read10(6000, 128), { read: 65536 })).data;
    for (let i = 0; i < 16; i++) assert.ok(back.subarray(i * 4096, (i + 1) * 4096).every((x) => x === 0x10 + i));
    p.close();
  });

  it('RESERVE(6) then RELEASE(6), and the 10-byte forms: another initiator conflicts while reserved', async () => {
    // Source: classpnp class.c ClassDeviceControl (IOCTL_STORAGE_RESERVE/RELEASE: the 6-byte
    // CDB, the 10-byte one once ClassInterpretSenseInfo set FDO_HACK_NO_RESERVE6); SPC-2 §5.5.1.
    const a = await arrived(target.port, 'node1', 0);
    const b = await arrived(target.port, 'node2', 1);
    for (const [reserve, release] of [
      [RESERVE6, RELEASE6],
      [RESERVE10, RELEASE10],
    ]) {
      assert.equal((await a.execRetryUa(reserve)).status, 0);
      const w = await b.execRetryUa(write10(900, 1), { write: Buffer.alloc(512, 1) });
      assert.equal(w.status, 0x18, 'RESERVATION CONFLICT for the other initiator');
      assert.equal((await a.exec(write10(900, 1), { write: Buffer.alloc(512, 2) })).status, 0, 'the holder writes');
      assert.equal((await b.execRetryUa(inquiry(36), { read: 36 })).status, 0, 'INQUIRY is allowed under a reservation (SPC-2 §5.5.1)');
      assert.equal((await a.exec(release)).status, 0);
      assert.equal((await b.execRetryUa(write10(900, 1), { write: Buffer.alloc(512, 3) })).status, 0, 'released');
    }
    a.close();
    b.close();
  });
});
