import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { isStorageError } from '../../src/storage/errors';
import { encodeHeader, type JournalRecord, type RecordKind } from '../../src/storage/journal/record';
import { ReplicaServer } from '../../src/storage/journal/replication/replica-server';
import { ReplicaStore } from '../../src/storage/journal/replication/replica-store';
import { Replicator } from '../../src/storage/journal/replication/replicator';
import { ReplicationStats } from '../../src/storage/journal/replication/stats';
import { encodeFrame, FrameReader, FrameType, json, parseJson } from '../../src/storage/journal/replication/wire';
import { Lease, type LeaseTiming, readLease } from '../../src/storage/lease';
import { MemoryObjectStore } from '../../src/storage/memory-store';

const LUN = '11111111-2222-3333-4444-555555555555';
const LUN_HEX = LUN.replaceAll('-', '');
const HOLDER = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const HOLDER_HEX = HOLDER.replaceAll('-', '');
const SECRET = 'unit-test-secret-0123456789';
const SLOW: LeaseTiming = { ttlMs: 60_000, renewEveryMs: 60_000, marginMs: 0 };

const tmp = (): Promise<string> => fs.mkdtemp(path.join(os.tmpdir(), 's3tgt-repl-'));
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

let seq = 0;
/** One encoded record of LUN (header + data), as a journal commit group carries it. */
function rec(kind: RecordKind, data = Buffer.alloc(0), holder = HOLDER, lun = LUN, chunk = 3): { parts: Buffer[]; sequence: number } {
  seq++;
  const r: JournalRecord = {
    kind,
    lun,
    holder,
    sequence: seq,
    group: seq,
    indexInGroup: 0,
    groupSize: 1,
    chunk,
    offset: 512,
    length: kind === 'checkpoint' ? 0 : Math.max(data.length, 4096),
    data,
  };
  const h = encodeHeader(r);
  return { parts: kind === 'write' ? [h, data] : [h], sequence: seq };
}
const bytesOf = (parts: readonly Buffer[]): number => parts.reduce((n, p) => n + p.length, 0);

/** Node "b"'s replica server on `port` (0: any), keeping node "a"'s groups under `dir`. */
const receiver = (
  dir: string,
  port: number,
  stats = new ReplicationStats(),
  accepts: (lun: string) => boolean = () => true,
): Promise<ReplicaServer> =>
  ReplicaServer.start({ host: '127.0.0.1', port, self: 'b', peers: ['a'], secret: SECRET, journalDir: dir, accepts, stats });

/** A receiving node "b" and a Replicator of node "a" sending to it, with one lease of a's. */
async function pair(o: { secret?: string; accepts?: (lun: string) => boolean; timeoutMs?: number } = {}) {
  const dir = await tmp();
  dirs.push(dir);
  const rx = new ReplicationStats();
  const server = await receiver(dir, 0, rx, o.accepts);
  const s3 = new MemoryObjectStore();
  const lease = await Lease.claim(s3, 'luns/x/lease.json', null, 'a', SLOW, () => []);
  const tx = new ReplicationStats();
  let uploadedBelow = 1;
  const replicator = new Replicator({
    self: 'a',
    peers: [{ name: 'b', host: '127.0.0.1', port: server.port }],
    secret: o.secret ?? SECRET,
    stats: tx,
    timeoutMs: o.timeoutMs ?? 2_000,
    leaseOf: (lun) => (lun === LUN_HEX ? lease : undefined),
    leases: () => [lease],
  });
  const position = {
    get nextSequence() {
      return seq + 1;
    },
    get uploadedBelow() {
      return uploadedBelow;
    },
  };
  const close = async (): Promise<void> => {
    replicator.close();
    await server.close();
    await lease.release();
  };
  return {
    dir,
    rx,
    tx,
    server,
    s3,
    lease,
    replicator,
    position,
    setUploaded: (n: number) => {
      uploadedBelow = n;
    },
    close,
  };
}

/** The records a takeover would replay, chunk by chunk (all of chunk 3 here: in sequence order). */
async function recordsOf(st: ReplicaStore, holders: ReadonlySet<string>, streams?: readonly number[]): Promise<JournalRecord[]> {
  const b = await st.backlog(LUN_HEX, holders, streams);
  try {
    const out: JournalRecord[] = [];
    for await (const chunk of b.chunks()) out.push(...chunk);
    return out;
  } finally {
    await b.close();
  }
}

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('journal replication (docs/ha.md, "Journal replication")', () => {
  it('a takeover reads the backlog back one chunk at a time, from files it holds open: a trim meanwhile takes nothing away', async () => {
    const dir = await tmp();
    dirs.push(dir);
    const st = await ReplicaStore.open(dir, 'a');
    try {
      await st.begin();
      const groups = [rec('write', Buffer.alloc(4096, 1), HOLDER, LUN, 5), rec('write', Buffer.alloc(4096, 2), HOLDER, LUN, 3)];
      groups.push(rec('write', Buffer.alloc(4096, 3), HOLDER, LUN, 5), rec('write', Buffer.alloc(4096, 9), HOLDER, '0'.repeat(32), 5));
      for (const g of groups) await st.append(Buffer.concat(g.parts), g.sequence);
      const backlog = await st.backlog(LUN_HEX, new Set([HOLDER_HEX]));
      try {
        assert.equal(backlog.count, 3, "the LUN's three records, not the other LUN's");
        const files = (await fs.readdir(path.join(dir, 'replica', 'a'))).filter((f) => f.endsWith('.log'));
        assert.ok(files.length > 0);
        for (const f of files) await fs.rm(path.join(dir, 'replica', 'a', f));
        const seen: number[][] = [];
        for await (const chunk of backlog.chunks()) seen.push(chunk.map((r) => r.chunk * 100 + r.data[0]));
        assert.deepEqual(seen, [[501, 503], [302]], 'chunk 5 (records 1 and 3), then chunk 3');
      } finally {
        await backlog.close();
      }
    } finally {
      await st.close();
    }
  });

  it('a commit group is acknowledged once the peer has it on disk; the replica gives back the LUN’s records after its last checkpoint', async () => {
    const p = await pair();
    try {
      p.replicator.start(p.position);
      await until('link up', () => p.replicator.connected[0]?.up === true);
      const w1 = rec('write', Buffer.alloc(4096, 1));
      const cp = rec('checkpoint');
      const w2 = rec('write', Buffer.alloc(4096, 2));
      const w3 = rec('write', Buffer.alloc(4096, 3));
      for (const g of [w1, cp, w2, w3]) await p.replicator.mirror(g.parts, bytesOf(g.parts));
      assert.equal(p.tx.sentBatches, 4);
      assert.equal(p.tx.localOnlyBatches, 0);
      assert.equal(p.lease.localOnly, false);
      const st = p.server.store('a');
      assert.ok(st);
      await st.idle();
      const got = await recordsOf(st, new Set([HOLDER_HEX]));
      assert.deepEqual(
        got.map((r) => [r.sequence, r.data[0]]),
        [
          [w2.sequence, 2],
          [w3.sequence, 3],
        ],
        'the writes after the checkpoint, in order',
      );
      assert.deepEqual(await recordsOf(st, new Set(['0'.repeat(32)])), [], 'another holder’s records are not replayed');
      // Consumed: a later takeover here does not apply them again (kept across a reopen).
      await st.consume(LUN_HEX, [HOLDER_HEX]);
      const reopened = await ReplicaStore.open(p.dir, 'a');
      assert.deepEqual(await recordsOf(reopened, new Set([HOLDER_HEX])), []);
      await reopened.close();
    } finally {
      await p.close();
    }
  });

  it('the replica is complete only once a watermark says every record before the stream is in S3', async () => {
    const p = await pair();
    try {
      p.setUploaded(1);
      p.replicator.start(p.position);
      await until('link up', () => p.replicator.connected[0]?.up === true);
      const st = p.server.store('a');
      assert.ok(st);
      // Earlier records of a (before this connection) are not yet in S3: not complete.
      await new Promise((r) => setTimeout(r, 1_300));
      assert.equal(st.complete, false, 'records from before the stream may be missing');
      p.setUploaded(p.position.nextSequence);
      await until('complete', () => st.complete, 3_000);
    } finally {
      await p.close();
    }
  });

  it('a peer that is down: the lease says local-only in S3 before the group is acknowledged', async () => {
    // A port nobody listens on: the link never comes up.
    const p = await pair();
    try {
      await p.server.close();
      p.replicator.start(p.position);
      const g = rec('write', Buffer.alloc(4096, 7));
      await p.replicator.mirror(g.parts, bytesOf(g.parts));
      assert.equal(p.lease.localOnly, true);
      assert.equal(p.tx.localOnlyBatches, 1);
      const stored = await readLease(p.s3, 'luns/x/lease.json');
      assert.equal(stored?.replication, 'local-only', 'the mark is in S3, where a successor reads it');
      assert.equal(p.replicator.degraded, true);
    } finally {
      await p.close();
    }
  });

  it('the mark is cleared once the peer is back and holds every record not yet in S3', async () => {
    const dir = await tmp();
    dirs.push(dir);
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    const s3 = new MemoryObjectStore();
    const lease = await Lease.claim(s3, 'luns/x/lease.json', null, 'a', SLOW, () => []);
    const tx = new ReplicationStats();
    let uploadedBelow = 1;
    const replicator = new Replicator({
      self: 'a',
      peers: [{ name: 'b', host: '127.0.0.1', port }],
      secret: SECRET,
      stats: tx,
      timeoutMs: 2_000,
      leaseOf: () => lease,
      leases: () => [lease],
    });
    let server: ReplicaServer | undefined;
    try {
      replicator.start({
        get nextSequence() {
          return seq + 1;
        },
        get uploadedBelow() {
          return uploadedBelow;
        },
      });
      const g = rec('write', Buffer.alloc(4096, 7));
      await replicator.mirror(g.parts, bytesOf(g.parts));
      assert.equal(lease.localOnly, true);
      server = await receiver(dir, port);
      await until('link up', () => replicator.connected[0]?.up === true);
      await new Promise((r) => setTimeout(r, 1_300));
      assert.equal(lease.localOnly, true, 'the local-only record is not in S3 yet: still unprotected');
      uploadedBelow = seq + 1; // the upload caught up
      await until('mark cleared', () => !lease.localOnly, 4_000);
      assert.equal((await readLease(s3, 'luns/x/lease.json'))?.replication, undefined);
    } finally {
      replicator.close();
      await server?.close();
      await lease.release();
    }
  });

  for (const gap of [false, true]) {
    it(
      gap
        ? 'the receiver restarts and the sender acknowledged a group local-only meanwhile: the streams have a gap, the replica is not replayed until the new stream is complete'
        : 'the receiver restarts while the sender is idle: the new stream continues the old one, whose records a takeover still replays',
      async () => {
        const p = await pair();
        let again: ReplicaServer | undefined;
        try {
          p.setUploaded(p.position.nextSequence); // nothing pending when the link comes up
          p.replicator.start(p.position);
          const st1 = p.server.store('a');
          assert.ok(st1);
          await until('complete', () => st1.complete, 3_000);
          const w1 = rec('write', Buffer.alloc(4096, 1));
          const w2 = rec('write', Buffer.alloc(4096, 2));
          for (const g of [w1, w2]) await p.replicator.mirror(g.parts, bytesOf(g.parts));
          assert.deepEqual(await st1.replayStreams(), [1]);
          // This node restarts (its records are not in S3 yet: the watermark stays below them).
          const port = p.server.port;
          await p.server.close();
          await until('link down', () => p.replicator.connected[0]?.up === false);
          if (gap) {
            const lost = rec('write', Buffer.alloc(4096, 3));
            await p.replicator.mirror(lost.parts, bytesOf(lost.parts));
            assert.equal(p.lease.localOnly, true);
          }
          again = await receiver(p.dir, port);
          const st2 = again.store('a');
          assert.ok(st2);
          await until('link up again', () => again?.connected('a') === true, 5_000);
          await new Promise((r) => setTimeout(r, 300));
          assert.equal(st2.complete, false, 'the new stream alone does not hold the records before it');
          if (gap) {
            assert.equal(await st2.replayStreams(), undefined, 'a gap: records from before it could overwrite newer data');
          } else {
            assert.deepEqual(await st2.replayStreams(), [1, 2]);
            const got = await recordsOf(st2, new Set([HOLDER_HEX]), [1, 2]);
            assert.deepEqual(
              got.map((r) => r.data[0]),
              [1, 2],
            );
          }
        } finally {
          await p.close();
          await again?.close();
        }
      },
    );
  }

  it('a peer that has taken the LUN refuses its records: the write fails (fenced), nothing is kept', async () => {
    let taken = false;
    const p = await pair({ accepts: () => !taken });
    try {
      p.replicator.start(p.position);
      await until('link up', () => p.replicator.connected[0]?.up === true);
      const ok = rec('write', Buffer.alloc(4096, 1));
      await p.replicator.mirror(ok.parts, bytesOf(ok.parts));
      taken = true;
      const late = rec('write', Buffer.alloc(4096, 2));
      await assert.rejects(p.replicator.mirror(late.parts, bytesOf(late.parts)), (e) => isStorageError(e, 'fenced'));
      assert.equal(p.rx.refusedBatches, 1);
      assert.equal(p.tx.refusedByPeer, 1);
      const st = p.server.store('a');
      assert.ok(st);
      assert.deepEqual(
        (await recordsOf(st, new Set([HOLDER_HEX]))).map((r) => r.data[0]),
        [1],
      );
    } finally {
      await p.close();
    }
  });

  it('a sender with another secret is not accepted, and its writes go local-only', async () => {
    const p = await pair({ secret: 'not-the-cluster-secret-000000' });
    try {
      p.replicator.start(p.position);
      // The receiver's CHALLENGE does not verify with the sender's secret: it hangs up (and retries every second).
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(p.replicator.connected[0]?.up, false);
      assert.equal(p.server.connected('a'), false);
      const g = rec('write', Buffer.alloc(4096, 9));
      await p.replicator.mirror(g.parts, bytesOf(g.parts));
      assert.equal(p.lease.localOnly, true);
    } finally {
      await p.close();
    }
  });

  it('the receiver rejects what no sender would send: an unknown node, a batch before the handshake, another version, a wrong proof', async () => {
    const p = await pair();
    try {
      const talk = async (frames: Buffer[][]): Promise<string> => {
        const sock = net.connect({ host: '127.0.0.1', port: p.server.port });
        const reader = new FrameReader();
        const got: string[] = [];
        await new Promise<void>((resolve) => {
          sock.on('connect', () => {
            for (const f of frames) sock.write(Buffer.concat(f));
          });
          sock.on('data', (d: Buffer) => {
            for (const f of reader.push(d)) got.push(f.type === FrameType.ERROR ? `ERROR ${f.payload.toString()}` : String(f.type));
          });
          sock.on('close', () => resolve());
          sock.on('error', () => resolve());
          setTimeout(() => sock.destroy(), 3_000).unref();
        });
        return got.join('; ');
      };
      assert.match(await talk([json(FrameType.HELLO, { v: 1, node: 'z', nonce: 'f'.repeat(64) })]), /ERROR "z" is not a peer/);
      assert.match(await talk([encodeFrame(FrameType.BATCH, Buffer.alloc(16))]), /ERROR expected HELLO/);
      assert.match(await talk([json(FrameType.HELLO, { v: 2, node: 'a', nonce: 'f'.repeat(64) })]), /ERROR protocol version 2/);
      // A well-formed CHALLENGE comes back to a peer's HELLO; a wrong PROOF is refused.
      const out = await talk([json(FrameType.HELLO, { v: 1, node: 'a', nonce: 'f'.repeat(64) }), json(FrameType.PROOF, { mac: '0'.repeat(64) })]);
      assert.match(out, /^2; ERROR authentication failed/);
      assert.equal(p.rx.authFailures, 1);
      assert.equal(parseJson({ type: 2, payload: Buffer.from('{"a":1}') }).a, 1);
      assert.throws(() => new FrameReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1])), /a frame of/);
    } finally {
      await p.close();
    }
  });
});
