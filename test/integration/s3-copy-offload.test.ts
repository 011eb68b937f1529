import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { s3Target } from '../harness/s3-target';
import { type TargetProcess, TEST_IQN } from '../harness/target';
import { read10, SYNC_CACHE, TUR } from '../lib/cdb';
import { parseTokenInformation, populateTokenList, type Range, rrtiCdb, tokenCdb, writeUsingTokenList } from '../lib/odx';
import { extendedCopy, inquiry, naaDesignator } from '../personality/cdbs';
import { Peer, senseOf } from '../personality/peer';
import { esxi, windows } from '../personality/profiles';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** LUN 1 in the 8-byte LUN field (SAM-5 §4.7, peripheral device addressing). */
const LUN1 = 0x0001_0000_0000_0000n;
/** 16 MiB per segment (the field counts at most 65535 blocks), 16 segments per command. */
const SEGMENT_BLOCKS = (16 * MiB) / 512;

/** A counter's value; a series not exported yet (nothing counted) is 0. */
const metric = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);

/**
 * EXTENDED COPY and ODX between two LUNs of one bucket against RGW (issue 16): 1 GiB copied as
 * ESXi's full copy sends it moves (almost) no data through s3tgt: the store byte counters
 * grow by less than 1 % of what was copied, every chunk is one CopyObject, and the copy
 * reads back equal to its source through qemu's iSCSI driver.
 */
describe('EXTENDED COPY and ODX offloaded to S3 CopyObject on RGW (issue 16)', () => {
  let rgw: Rgw;
  let t: TargetProcess | undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-xcopy-'));
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('xcopy');
  });
  after(async () => {
    await t?.stop('SIGKILL');
    await rgw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('1 GiB between two LUNs: < 1 % of it in S3 bytes, one CopyObject per chunk, byte-identical', async () => {
    t = s3Target(rgw, {
      bucket: 'xcopy',
      size: '1GiB',
      extraS3: 'concurrency: 32',
      moreLunsYaml: `      - lun: 1
        name: disk1
        size: 1GiB
        store: s3
        cache: { size: 64MiB, flushDelay: 50ms }`,
    });
    await t.start();
    // The source: 1 GiB of random data, written through qemu's iSCSI driver (it flushes at the end).
    const image = path.join(dir, 'src.img');
    const fd = openSync(image, 'w');
    for (let i = 0; i < 16; i++) writeSync(fd, randomBytes(64 * MiB));
    closeSync(fd);
    const fill = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', image, t.url(0)], { timeoutMs: 300_000 });
    assert.equal(fill.code, 0, fill.stderr);
    rmSync(image);

    const p = await Peer.connect(t.port, esxi('xcopy'));
    try {
      assert.equal(await p.login(TEST_IQN), 0);
      await p.execRetryUa(TUR);
      await p.execRetryUa(TUR, { lun: LUN1 });
      const naa = [];
      for (const lun of [0n, LUN1]) {
        const o = await p.exec(inquiry(255, 0x83), { read: 255, lun });
        assert.equal(o.status, 0, `INQUIRY VPD 83h of LUN ${lun}: sense ${senseOf(o)}`);
        naa.push(naaDesignator(o.data));
      }
      // qemu-img convert writes with cache=unsafe (no SYNCHRONIZE CACHE): flush the source
      // now, so that what is measured below is the copy alone.
      assert.equal((await p.exec(SYNC_CACHE, {}, 120_000)).status, 0);
      const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${t?.metricsPort}/metrics`)).text();
      const bytes = (m: string): number =>
        metric(m, /^s3tgt_store_received_bytes_total\{backend="s3"\} (\d+)$/m) + metric(m, /^s3tgt_store_sent_bytes_total\{backend="s3"\} (\d+)$/m);
      const copies = (m: string): number => metric(m, /^s3tgt_store_requests_total\{backend="s3",op="copy",outcome="ok"\} (\d+)$/m);
      const before = await scrape();
      const started = performance.now();
      const perCommand = 16 * SEGMENT_BLOCKS * 512;
      for (let at = 0; at < GiB; at += perCommand) {
        const segments = Array.from({ length: 16 }, (_, k) => {
          const lba = (at + k * SEGMENT_BLOCKS * 512) / 512;
          return { src: 0, dst: 1, blocks: SEGMENT_BLOCKS, srcLba: lba, dstLba: lba };
        });
        const x = extendedCopy(naa, segments);
        const o = await p.exec(x.cdb, { write: x.data }, 120_000);
        assert.equal(o.status, 0, `EXTENDED COPY at ${at / MiB} MiB`);
      }
      const seconds = (performance.now() - started) / 1000;
      const afterCopy = await scrape();
      const moved = bytes(afterCopy) - bytes(before);
      console.log(`XCOPY 1 GiB: ${seconds.toFixed(1)} s, ${moved} bytes to and from S3, ${copies(afterCopy) - copies(before)} CopyObject requests`);
      assert.ok(moved < GiB / 100, `${moved} bytes through s3tgt for 1 GiB copied`);
      assert.ok(copies(afterCopy) - copies(before) >= 1024, 'one CopyObject per chunk at least');
      assert.equal(metric(afterCopy, /^s3tgt_copy_offloaded_bytes_total\{[^}]*name="disk1"\} (\d+)$/m), GiB);
    } finally {
      p.close();
    }
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', t.url(0), t.url(1)], { timeoutMs: 300_000 });
    assert.equal(cmp.code, 0, `qemu-img compare: ${cmp.stdout}${cmp.stderr}`);
  });

  it('ODX as Windows sends it: POPULATE TOKEN of 256 MiB, RRTI, WRITE USING TOKEN in 64 MiB commands: all CopyObject, byte-identical', async () => {
    assert.ok(t, 'the target of the EXTENDED COPY test (LUN 0 holds 1 GiB of random data)');
    const p = await Peer.connect(t.port, windows());
    try {
      assert.equal(await p.login(TEST_IQN), 0);
      await p.execRetryUa(TUR);
      await p.execRetryUa(TUR, { lun: LUN1 });
      const scrape = async (): Promise<number> =>
        metric(
          await (await fetch(`http://127.0.0.1:${t?.metricsPort}/metrics`)).text(),
          /^s3tgt_copy_offloaded_bytes_total\{[^}]*name="disk1"\} (\d+)$/m,
        );
      const before = await scrape();
      // The "file": four 64 MiB extents of LUN 0, out of order; its copy goes to LUN 1 at 512 MiB.
      const extents: Range[] = [3, 0, 2, 1].map((k) => [(k * 128 * MiB) / 512, (64 * MiB) / 512]);
      const pt = populateTokenList(extents, { timeout: 30 });
      assert.equal((await p.exec(tokenCdb(0x10, 1, pt.length), { write: pt }, 30_000)).status, 0);
      const info = parseTokenInformation((await p.exec(rrtiCdb(1, 1024), { read: 1024 })).data);
      assert.equal(info.descriptorsLength, 514);
      const token = info.token as Buffer;
      for (let k = 0; k < 4; k++) {
        const list = writeUsingTokenList(token, [[(512 * MiB + k * 64 * MiB) / 512, (64 * MiB) / 512]], { offset: (k * 64 * MiB) / 512 });
        const w = await p.exec(tokenCdb(0x11, 2 + k, list.length), { write: list, lun: LUN1 }, 60_000);
        assert.equal(w.status, 0, `WRITE USING TOKEN ${k}: ${senseOf(w).join('/')}`);
      }
      assert.equal((await scrape()) - before, 256 * MiB, 'every chunk was copied server-side');
      const hash = async (lun: bigint, ranges: readonly Range[]): Promise<string> => {
        const h = createHash('sha256');
        for (const [lba, blocks] of ranges) {
          for (let at = 0; at < blocks; at += (8 * MiB) / 512) {
            const r = await p.exec(read10(Number(lba) + at, (8 * MiB) / 512), { read: 8 * MiB, lun }, 30_000);
            assert.equal(r.status, 0);
            h.update(r.data);
          }
        }
        return h.digest('hex');
      };
      assert.equal(await hash(LUN1, [[(512 * MiB) / 512, (256 * MiB) / 512]]), await hash(0n, extents), 'LUN 1 holds the file');
    } finally {
      p.close();
    }
  });
});
