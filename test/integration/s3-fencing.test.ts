import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FaultProxy, type Forwarded } from '../harness/fault-proxy';
import { Rgw } from '../harness/rgw';
import { s3Target } from '../harness/s3-target';
import { type TargetProcess, TEST_IQN } from '../harness/target';
import { read10, SYNC_CACHE, TUR, write10, write10Fua } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';

const LEASE = '{ ttl: 6s, renewInterval: 1s }';

/** Keeps writing 4 KiB blocks into chunks 0-7 of a server, 8 at a time, with a SYNCHRONIZE CACHE every fourth round, until stopped. */
async function writeLoad(t: TargetProcess): Promise<{ stop: () => Promise<number> }> {
  const c = await TestInitiator.connect(t.port);
  await c.login({ target: TEST_IQN });
  await c.response(c.command(TUR));
  let running = true;
  let acked = 0;
  const loop = (async () => {
    for (let n = 0; running && !c.closed; n++) {
      const itts = Array.from({ length: 8 }, (_, k) =>
        c.command(write10(((n * 8 + k) * 8 * 37) % 16_384, 8), { write: Buffer.alloc(4096, n & 0xff) }),
      );
      if (n % 4 === 3) itts.push(c.command(SYNC_CACHE));
      for (const itt of itts) {
        const r = await c.response(itt, 60_000).catch(() => undefined);
        if (r?.status === 0) acked++;
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      c.close();
      await loop.catch(() => undefined);
      return acked;
    },
  };
}

/** Starts `t`, again while it exits because the lease is still held (an HA manager would). */
async function startWhenFree(t: TargetProcess, attempts = 8): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await t.start();
      return;
    } catch (e) {
      if (i >= attempts || !/exited 5/.test((e as Error).message)) throw e;
    }
  }
}

/** When the successor's takeover PUT of lease.json was sent (its earliest possible effect). */
function takeoverAt(successor: Forwarded[]): number {
  const puts = successor.filter((f) => f.method === 'PUT' && f.path.includes('lease.json') && f.status === 200);
  assert.ok(puts.length > 0, 'the successor wrote the lease');
  return puts[0].sentAt;
}

/**
 * Issue 13 acceptance: a second server cannot get a write into S3 while the first still
 * writes, shown with two real s3tgt processes on one RGW. The first is cut off from its lease
 * (the lease path hangs while chunk requests pass), paused (SIGSTOP), or behind a network that
 * answers its lease requests late; the second takes the LUN over. Each server talks to RGW
 * through a proxy that logs when every request was sent and answered: no chunk PUT or DELETE
 * of the first may be answered after the second sent its takeover.
 */
describe('fencing: two servers, one LUN, no overlapping writes (issue 13, defect 2)', () => {
  let rgw: Rgw;
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    await rgw?.stop();
  });

  const scenario = (name: string, cutOff: (first: TargetProcess, proxy: FaultProxy) => void, restore?: (first: TargetProcess) => void) =>
    it(name, async () => {
      const bucket = `fence-${name
        .split(' ')[0]
        .toLowerCase()
        .replace(/[^a-z]/g, '')}`;
      await rgw.createBucket(bucket);
      const p1 = new FaultProxy(rgw.port);
      const p2 = new FaultProxy(rgw.port);
      await p1.start();
      await p2.start();
      const cache = '{ size: 64MiB, flushDelay: 200ms }';
      const first = s3Target(rgw, { bucket, endpoint: p1.endpoint, lease: LEASE, cache, logLevel: 'info' });
      const second = s3Target(rgw, { bucket, endpoint: p2.endpoint, lease: LEASE, cache, logLevel: 'info' });
      try {
        await first.start();
        const load = await writeLoad(first);
        await new Promise((r) => setTimeout(r, 1_500));
        cutOff(first, p1);
        await startWhenFree(second);
        const t = takeoverAt(p2.forwarded);
        // The successor writes; the first goes on (or resumes) for a while.
        const c = await TestInitiator.connect(second.port);
        await c.login({ target: TEST_IQN });
        await c.response(c.command(TUR));
        const mine = Buffer.alloc(4096, 0xee);
        assert.equal((await c.response(c.command(write10Fua(0, 8), { write: mine }), 30_000)).status, 0);
        restore?.(first);
        await new Promise((r) => setTimeout(r, 4_000));
        const acked = await load.stop();
        await first.stop('SIGTERM', 60_000);
        const late = p1.forwarded.filter((f) => f.answeredAt === undefined || f.answeredAt >= t).filter((f) => p1.chunkMutations().includes(f));
        assert.deepEqual(
          late.map((f) => `${f.method} ${f.path} sent ${f.sentAt - t} ms after the takeover`),
          [],
          `the first server wrote after the takeover (${acked} writes acknowledged to it)\n${first.output.slice(-3000)}`,
        );
        assert.ok(p1.chunkMutations().length > 0, 'the first server did write before');
        const back = await c.response(c.command(read10(0, 8), { read: 4096 }));
        assert.ok(back.data.equals(mine), 'the successor reads its own write');
        c.close();
      } finally {
        if (first.alive) first.proc?.kill('SIGCONT');
        await first.stop('SIGKILL');
        await second.stop();
        await p1.stop();
        await p2.stop();
      }
    });

  scenario('hung renewals: the lease path of the first server hangs while its chunk requests pass', (_first, proxy) => {
    proxy.rule({ action: 'black-hole', match: /lease\.json/ });
  });

  scenario(
    'paused: the first server is stopped (SIGSTOP) with dirty data, taken over, then resumed (SIGCONT)',
    (first) => {
      first.proc?.kill('SIGSTOP');
    },
    (first) => {
      first.proc?.kill('SIGCONT');
    },
  );

  scenario('slow network: the answers to the first server lease requests come 12 s late', (_first, proxy) => {
    proxy.rule({ action: 'delay-answer', match: /lease\.json/, delayMs: 12_000 });
  });
});
