import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Rng } from '../fuzz/rng';
import { FaultProxy } from '../harness/fault-proxy';
import { Rgw } from '../harness/rgw';
import { s3Target } from '../harness/s3-target';
import { TEST_IQN } from '../harness/target';
import { read10, write10 } from '../lib/cdb';
import { Pipeline } from '../lib/pipeline';

const run = promisify(execFile);
const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const BLOCK = 4096;
/** The blocks the load writes: the first 64 MiB (64 chunks) of the LUN. */
const BLOCKS = 16384;

/** A 4 KiB block that names itself: magic, block number, sequence number, and a fill derived from it. */
function block(n: number, seq: number): Buffer {
  const b = Buffer.alloc(BLOCK, (seq % 251) + 1);
  b.write('JSEQ', 0);
  b.writeUInt32LE(n, 4);
  b.writeUInt32LE(seq, 8);
  return b;
}

/** The sequence number a block holds (0: never written), or an error naming what is wrong. */
function seqOf(n: number, b: Buffer): number {
  if (b.every((x) => x === 0)) return 0;
  assert.equal(b.toString('latin1', 0, 4), 'JSEQ', `block ${n}: not a block of ours`);
  assert.equal(b.readUInt32LE(4), n, `block ${n}: holds block ${b.readUInt32LE(4)}`);
  const seq = b.readUInt32LE(8);
  assert.ok(
    b.subarray(12).every((x) => x === (seq % 251) + 1),
    `block ${n}: torn (sequence ${seq})`,
  );
  return seq;
}

/**
 * Random 4 KiB writes at QD32 (no SYNCHRONIZE CACHE, no FUA) until the connection drops or
 * `stop` says so. Returns, per block, the sequence numbers issued and the highest acknowledged.
 */
async function writeLoad(
  p: Pipeline,
  rng: Rng,
  stop: () => boolean,
): Promise<{ issued: Map<number, Set<number>>; acked: Map<number, number>; failed: number }> {
  const issued = new Map<number, Set<number>>();
  const acked = new Map<number, number>();
  let seq = 0;
  let failed = 0;
  let broken = false;
  const worker = async (): Promise<void> => {
    while (!broken && !stop()) {
      const n = rng.int(BLOCKS);
      const s = ++seq;
      const set = issued.get(n) ?? new Set<number>();
      set.add(s);
      issued.set(n, set);
      try {
        const r = await p.run(write10(n * 8, 8), { write: block(n, s) });
        if (r.status === 0) acked.set(n, Math.max(acked.get(n) ?? 0, s));
        else failed++;
      } catch {
        broken = true;
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return { issued, acked, failed };
}

/** Reads the 64 MiB back and checks every block: it holds its latest acknowledged write or a later one issued. */
async function verify(port: number, load: { issued: Map<number, Set<number>>; acked: Map<number, number> }): Promise<number> {
  const p = await Pipeline.login(port, TEST_IQN);
  let checked = 0;
  try {
    for (let first = 0; first < BLOCKS; first += 64) {
      const r = await p.run(read10(first * 8, 512), { read: 64 * BLOCK });
      assert.equal(r.status, 0, `READ at block ${first}`);
      for (let k = 0; k < 64; k++) {
        const n = first + k;
        const got = seqOf(n, r.data.subarray(k * BLOCK, (k + 1) * BLOCK));
        const ack = load.acked.get(n) ?? 0;
        if (got === 0) assert.equal(ack, 0, `block ${n}: zeros, but write ${ack} was acknowledged`);
        else {
          assert.ok(load.issued.get(n)?.has(got), `block ${n}: sequence ${got} was never written there`);
          assert.ok(got >= ack, `block ${n}: holds write ${got}, older than the acknowledged ${ack}`);
        }
        if (ack > 0) checked++;
      }
    }
  } finally {
    p.close();
  }
  return checked;
}

/** A journal section over `dir`, and the dir (removed by the test). */
const journalYaml = (dir: string, size = '256MiB', spaceTimeout = '15s'): { dir: string; yaml: string } => ({
  dir,
  yaml: `journal: { dir: ${dir}, size: ${size}, spaceTimeout: ${spaceTimeout} }`,
});
const tempJournalDir = (): string => mkdtempSync(path.join(os.tmpdir(), 's3tgt-journal-'));

describe('the local journal end to end against RGW (issue 14 acceptance)', () => {
  let rgw: Rgw;
  /** A journal LUN whose S3 goes through a fault proxy (short S3 bounds: an outage fails requests fast). */
  const behindProxy = async (bucket: string, cache: string, journal: { dir: string; yaml: string }) => {
    await rgw.createBucket(bucket);
    const proxy = new FaultProxy(rgw.port);
    await proxy.start();
    const target = s3Target(rgw, {
      bucket,
      endpoint: proxy.endpoint,
      cache: `{ size: ${cache}, mode: journal, flushDelay: 200ms }`,
      extraYaml: journal.yaml,
      extraS3: 'requestTimeout: 2s\n  retryDeadline: 4s',
    });
    return { proxy, dir: journal.dir, target };
  };
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    await rgw?.stop();
  });

  it('kill -9 during a QD32 random 4 KiB write load, then again during replay: every acknowledged write reads back', async () => {
    await rgw.createBucket('journal-kill');
    const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-journal-'));
    const target = s3Target(rgw, {
      bucket: 'journal-kill',
      cache: '{ size: 16MiB, mode: journal, flushDelay: 200ms }',
      extraYaml: journalYaml(dir).yaml,
    });
    try {
      await target.start();
      const p = await Pipeline.login(target.port, TEST_IQN);
      const started = Date.now();
      const killer = (async () => {
        await new Promise((r) => setTimeout(r, 6_000));
        await target.stop('SIGKILL');
      })();
      const load = await writeLoad(p, new Rng(14), () => Date.now() - started > 60_000);
      await killer;
      p.close();
      const acked = [...load.acked.values()].length;
      assert.ok(acked > 500, `the load got ${acked} blocks acknowledged before the kill`);
      assert.equal(load.failed, 0, 'no write failed before the kill');
      // Restart, and kill it again as soon as it says it is replaying.
      const proc = await target.spawn();
      const deadline = Date.now() + 30_000;
      while (!/replaying the records/.test(target.output) && Date.now() < deadline && proc.exitCode === null)
        await new Promise((r) => setTimeout(r, 5));
      assert.match(target.output, /replaying the records/, 'the restart replays the journal');
      await target.stop('SIGKILL');
      // Replaying tens of thousands of records through a 16 MiB cache to RGW takes a while.
      await target.start(120_000);
      assert.match(target.output, /replay done/);
      const checked = await verify(target.port, load);
      assert.equal(checked, acked);
    } finally {
      await target.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a 60 s S3 outage: writes keep completing from the journal; after it the backlog drains and a server without a journal reads it all from S3', async () => {
    // A minute of QD32 4 KiB writes at local-disk speed: room for all of it.
    const { proxy, dir, target } = await behindProxy('journal-outage', '16MiB', journalYaml(tempJournalDir(), '3GiB'));
    const plain = s3Target(rgw, { bucket: 'journal-outage', cache: '{ size: 16MiB, mode: write-through }' });
    try {
      await target.start();
      const p = await Pipeline.login(target.port, TEST_IQN);
      proxy.set({ outage: true });
      const t0 = Date.now();
      const load = await writeLoad(p, new Rng(60), () => Date.now() - t0 > 60_000);
      const during = [...load.acked.keys()].length;
      const why = target.output.split('\n').filter((l) => /backend unavailable|storage failure|lease lost/.test(l));
      assert.equal(load.failed, 0, `no write failed during the outage:\n${why.slice(0, 5).join('\n')}`);
      assert.ok(during > 500, `${during} blocks acknowledged during the outage`);
      proxy.set({ outage: false });
      // The backlog drains: a graceful stop uploads everything and checkpoints the journal.
      p.close();
      assert.equal(await target.stop('SIGTERM', 120_000), 0, target.output);
      await plain.start();
      assert.equal(await verify(plain.port, load), during);
    } finally {
      await target.stop();
      await plain.stop();
      await proxy.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a full journal holds writers back, then fails them with the retryable 02/04/01; nothing acknowledged is lost', async () => {
    const { proxy, dir, target } = await behindProxy('journal-full', '8MiB', journalYaml(tempJournalDir(), '16MiB', '2s'));
    try {
      await target.start();
      const p = await Pipeline.login(target.port, TEST_IQN);
      proxy.set({ outage: true });
      const statuses: Array<{ status: number; sense: Buffer }> = [];
      let n = 0;
      const acked = new Map<number, number>();
      const issued = new Map<number, Set<number>>();
      // 16 MiB of journal holds fewer than 4000 records of 4 KiB: write until one fails.
      while (statuses.length === 0 && n < 6000) {
        const batch = await Promise.all(
          Array.from({ length: 16 }, async () => {
            const b = n % BLOCKS;
            const s = ++n;
            issued.set(b, new Set([...(issued.get(b) ?? []), s]));
            const r = await p.run(write10(b * 8, 8), { write: block(b, s) });
            if (r.status === 0) acked.set(b, s);
            return r;
          }),
        );
        for (const r of batch) if (r.status !== 0) statuses.push(r);
      }
      assert.ok(statuses.length > 0, 'writes failed once the journal was full');
      const sense = statuses[0].sense;
      // Fixed-format sense (SPC-5 §4.4.3): key at +2, ASC/ASCQ at +12/+13.
      const body = sense;
      assert.equal(statuses[0].status, 2, 'CHECK CONDITION');
      assert.deepEqual([body[2] & 0x0f, body[12], body[13]], [2, 4, 1], 'NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY');
      assert.match(target.output, /journal is full/);
      proxy.set({ outage: false });
      p.close();
      assert.equal(await target.stop('SIGTERM', 120_000), 0, target.output);
      await target.start();
      assert.equal(await verify(target.port, { issued, acked }), acked.size);
    } finally {
      await target.stop();
      await proxy.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takeover: A dies with records in its journal, B takes the LUN and writes; A's restart refuses to replay, quarantines, and the CLI deals with it", async () => {
    await rgw.createBucket('journal-takeover');
    const dirA = mkdtempSync(path.join(os.tmpdir(), 's3tgt-journal-a-'));
    const dirB = mkdtempSync(path.join(os.tmpdir(), 's3tgt-journal-b-'));
    const cache = '{ size: 16MiB, mode: journal, flushDelay: 1h }';
    const a = s3Target(rgw, { bucket: 'journal-takeover', cache, extraYaml: journalYaml(dirA).yaml });
    const b = s3Target(rgw, { bucket: 'journal-takeover', cache, extraYaml: journalYaml(dirB).yaml });
    try {
      await a.start();
      const pa = await Pipeline.login(a.port, TEST_IQN);
      // A's writes: acknowledged from its journal; with a 1 h flush delay they stay there.
      for (let n = 0; n < 64; n++) assert.equal((await pa.run(write10(n * 8, 8), { write: block(n, 1) })).status, 0);
      await a.stop('SIGKILL');
      pa.close();
      // B waits for A's lease to expire, takes the LUN, writes the same blocks, stops cleanly.
      await b.start();
      const pb = await Pipeline.login(b.port, TEST_IQN);
      for (let n = 0; n < 64; n++) assert.equal((await pb.run(write10(n * 8, 8), { write: block(n, 2) })).status, 0);
      pb.close();
      assert.equal(await b.stop(), 0, b.output);
      // A comes back: its records were written under a lease B has since held.
      await assert.rejects(a.start(), /refusing to replay 64 journal records.*quarantined/s);
      const cli = (...args: string[]) => run(process.execPath, [MAIN, ...args, '--config', a.configFile], { env: { ...process.env, ...rgw.env() } });
      const status = await cli('journal', 'status');
      assert.match(status.stdout, /quarantine/);
      assert.ok(readdirSync(dirA).some((f) => f.startsWith('quarantine-')));
      await assert.rejects(a.start(), /quarantined journal records/, 'it keeps refusing until the operator has looked');
      const out = path.join(dirA, 'a.img');
      assert.match((await cli('journal', 'export', 'disk0', out)).stdout, /wrote 64 quarantined records/);
      await cli('journal', 'discard', 'disk0', '--yes');
      await a.start();
      // Nothing of A's overwrote B's data.
      const pa2 = await Pipeline.login(a.port, TEST_IQN);
      const r = await pa2.run(read10(0, 512), { read: 64 * BLOCK });
      for (let n = 0; n < 64; n++) assert.equal(seqOf(n, r.data.subarray(n * BLOCK, (n + 1) * BLOCK)), 2, `block ${n} is B's`);
      pa2.close();
    } finally {
      await a.stop();
      await b.stop();
      rmSync(dirA, { recursive: true, force: true });
      rmSync(dirB, { recursive: true, force: true });
    }
  });
});
