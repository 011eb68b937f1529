import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listAll } from '../../src/storage/object-store';
import { mustRun, qemuIo, run } from '../harness/exec';
import { FaultProxy, type Forwarded } from '../harness/fault-proxy';
import { Rgw } from '../harness/rgw';
import { listObjects, s3Target } from '../harness/s3-target';
import { type TargetProcess, TEST_IQN } from '../harness/target';
import { TestInitiator } from '../lib/initiator';

const MiB = 1024 * 1024;
const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const BUCKET = 'at-rest';
const chunkKey = (lun: string, i: number): string => `luns/${lun}/chunks/${i.toString(16).padStart(16, '0')}`;
const text = (n: number): Buffer => {
  const words = 'block storage on objects keeps each chunk as its own key and reads a hole as zeros; ';
  return Buffer.from(words.repeat(Math.ceil(n / words.length)).slice(0, n));
};

/** The billed class of a request the proxy forwarded, and the LUN whose key it names (null: another LUN's or none). */
function classify(f: Forwarded, lun: string): string | null {
  const [p, q = ''] = f.path.split('?');
  const query = new URLSearchParams(q);
  if (query.has('list-type')) return (query.get('prefix') ?? '').startsWith(`luns/${lun}/`) ? 'LIST' : null;
  if (f.method === 'POST' && query.has('delete')) return 'DELETE';
  if (!decodeURIComponent(p).startsWith(`/${BUCKET}/luns/${lun}/`)) return null;
  return { GET: 'GET', HEAD: 'HEAD', PUT: 'PUT', DELETE: 'DELETE' }[f.method] ?? null;
}

/** The bytes of qemu-io's `read -v` dump ("0000a000:  68 65 6c ...  hel..."; commands on stdin prompt "qemu-io> "). */
function dumped(out: string): Buffer {
  const lines = out
    .split('\n')
    .map((l) => l.replace(/^(qemu-io> )+/, ''))
    .filter((l) => /^[0-9a-f]{8}: {2}/.test(l));
  return Buffer.from(lines.map((l) => l.slice(11, 11 + 16 * 3).replaceAll(' ', '')).join(''), 'hex');
}

describe('data at rest against RGW: encryption, compression, cost counters (issue 19 acceptance)', () => {
  let rgw: Rgw;
  let proxy: FaultProxy;
  let target: TargetProcess;
  const key = randomBytes(32).toString('hex');
  // LUN 0 "disk0": compressed and encrypted; LUN 1 "disk1": compressed only.
  const make = (k: string, keyId = 'k1', previous = '', disk1Compression = 'zstd'): TargetProcess =>
    s3Target(rgw, {
      bucket: BUCKET,
      endpoint: proxy.endpoint,
      size: '256MiB',
      cache: '{ size: 32MiB, flushDelay: 50ms }',
      // Nothing here is killed: the production lease timing, not the short one of the kill tests.
      lease: '{ ttl: 20s, renewInterval: 3s }',
      lun0Yaml: `        compression: zstd\n        encryption: { keyId: ${keyId}, key: "${k}"${previous ? `, previous: [${previous}]` : ''} }`,
      moreLunsYaml: `      - lun: 1
        name: disk1
        size: 256MiB
        store: s3
        cache: { size: 32MiB, flushDelay: 50ms }
        compression: ${disk1Compression}`,
    });
  const pattern = randomBytes(4096);
  // disk0's key after the rotation test.
  const k2 = randomBytes(32).toString('hex');

  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket(BUCKET);
    proxy = new FaultProxy(rgw.port);
    await proxy.start();
    target = make(key);
    await target.start();
  });
  after(async () => {
    await target?.stop();
    await proxy?.stop();
    await rgw?.stop();
  });

  it('no object in the bucket holds a 4 KiB pattern written through iSCSI, and the LUN reads it back', async () => {
    const image = path.join(target.dir, 'pattern.img');
    writeFileSync(image, Buffer.concat(Array.from({ length: 8 * 256 }, () => pattern)));
    await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', image, target.url(0)]);
    const store = rgw.store(BUCKET);
    try {
      let objects = 0;
      for await (const e of listAll(store, '')) {
        const got = await store.get(e.key);
        assert.ok(got, e.key);
        assert.ok(!got.body.includes(pattern), `${e.key} holds the pattern in clear`);
        if (e.key.startsWith('luns/disk0/chunks/')) {
          assert.equal(got.meta.metadata['s3tgt-codec'], 'v1/zstd/aes-256-gcm');
          assert.equal(got.meta.metadata['s3tgt-crc32c'], undefined, 'no plaintext checksum in the clear');
          objects++;
        }
      }
      assert.equal(objects, 8, 'eight sealed chunk objects');
    } finally {
      await store.close();
    }
    assert.equal(await target.stop(), 0);
    await target.start();
    const back = path.join(target.dir, 'back.img');
    await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=8', `if=${target.url(0)}`, `of=${back}`]);
    assert.ok(readFileSync(back).equals(readFileSync(image)));
  });

  it('two swapped chunk objects read as MEDIUM ERROR; swapped back they read again', async () => {
    assert.equal(await target.stop(), 0);
    const store = rgw.store(BUCKET);
    const swap = async (): Promise<void> => {
      const [a, b] = await Promise.all([store.get(chunkKey('disk0', 0)), store.get(chunkKey('disk0', 1))]);
      assert.ok(a && b);
      await store.put(chunkKey('disk0', 0), b.body, { metadata: b.meta.metadata });
      await store.put(chunkKey('disk0', 1), a.body, { metadata: a.meta.metadata });
    };
    const read = async (lba: number): Promise<{ status: number; key: number }> => {
      const c = await TestInitiator.connect(target.port);
      try {
        await c.login({ target: TEST_IQN });
        const cdb = Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]); // READ(10), 8 blocks
        cdb.writeUInt32BE(lba, 2);
        // The first command after the restart gets the power-on UNIT ATTENTION.
        for (let attempt = 0; ; attempt++) {
          const r = await c.response(c.command(cdb, { read: 4096 }), 60_000);
          const key = r.sense.length ? r.sense[2] & 0x0f : 0;
          if (key !== 6 || attempt === 2) return { status: r.status, key };
        }
      } finally {
        c.close();
      }
    };
    try {
      await swap();
      await target.start();
      for (const lba of [0, 2048]) assert.deepEqual(await read(lba), { status: 2, key: 3 }, `LBA ${lba}: CHECK CONDITION, MEDIUM ERROR`);
      assert.ok((await target.metric('s3tgt_checksum_errors_total{name="disk0"}')) >= 2);
      assert.equal(await target.stop(), 0);
      await swap();
      await target.start();
      assert.deepEqual(await read(0), { status: 0, key: 0 });
    } finally {
      await store.close();
    }
  });

  it('a restart with a wrong key refuses to serve the LUN, naming the key; the right key serves it again', async () => {
    assert.equal(await target.stop(), 0);
    const wrong = make(randomBytes(32).toString('hex'));
    await assert.rejects(wrong.start(), /key "k1" is not the key its chunks were sealed with/);
    await wrong.stop();
    await target.start();
    const r = await qemuIo(target.url(0), [`read -P 0 ${8 * MiB} 1M`]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('compression: text stores at most half its bytes; random data costs at most 1 % more than raw, encrypted or not', async () => {
    const txt = path.join(target.dir, 'text.img');
    writeFileSync(txt, text(64 * MiB));
    const rnd = path.join(target.dir, 'random.img');
    writeFileSync(rnd, randomBytes(32 * MiB));
    await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', txt, target.url(1)]);
    for (const lun of [0, 1]) {
      const r = await qemuIo(target.url(lun), [`write -s ${rnd} ${128 * MiB} ${32 * MiB}`, 'flush']);
      assert.equal(r.code, 0, r.stderr);
    }
    const sum = (objects: Map<string, number>, from: number, to: number, lun: string): number => {
      let n = 0;
      for (let i = from; i < to; i++) n += objects.get(chunkKey(lun, i)) ?? Number.NaN;
      return n;
    };
    const d1 = await listObjects(rgw, BUCKET, 'luns/disk1/');
    const textStored = sum(d1, 0, 64, 'disk1');
    assert.ok(textStored <= 32 * MiB, `64 MiB of text stored in ${textStored} bytes`);
    for (const lun of ['disk0', 'disk1']) {
      const stored = sum(await listObjects(rgw, BUCKET, `luns/${lun}/`), 128, 160, lun);
      assert.ok(stored <= 32 * MiB * 1.01, `${lun}: 32 MiB of random data stored in ${stored} bytes`);
    }
    const back = path.join(target.dir, 'text-back.img');
    await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=64', `if=${target.url(1)}`, `of=${back}`]);
    assert.ok(readFileSync(back).equals(readFileSync(txt)));
  });

  it('with compression turned off, the compressed chunks read back as written, in 4 KiB and in 1 MiB reads', async () => {
    assert.equal(await target.stop(), 0);
    const plain = make(key, 'k1', '', 'off');
    try {
      await plain.start();
      const want = text(64 * MiB);
      // A 4 KiB read first (a ranged GET past the end of the small compressed object: S3's 416).
      const at = 20 * MiB + MiB / 2;
      const r = await qemuIo(plain.url(1), [`read -v ${at} 4096`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(dumped(r.stdout).toString(), want.subarray(at, at + 4096).toString(), 'a 4 KiB read');
      const whole = path.join(plain.dir, 'text-off.img');
      await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=64', `if=${plain.url(1)}`, `of=${whole}`]);
      assert.ok(readFileSync(whole).equals(want), 'read in 1 MiB commands');
      assert.equal(await plain.stop(), 0);
    } finally {
      await plain.stop();
    }
    await target.start();
  });

  it('export, import and defrag go through the codec: plaintext out, sealed in, nothing corrupt', async () => {
    assert.equal(await target.stop(), 0);
    const cli = (args: string[]) => run(process.execPath, [MAIN, ...args, '-c', target.configFile], { env: rgw.env(), timeoutMs: 300_000 });
    const out = path.join(target.dir, 'export.img');
    const ex = await cli(['export', 'disk0', out]);
    assert.equal(ex.code, 0, ex.stderr);
    const exported = readFileSync(out);
    const pattern8 = Buffer.concat(Array.from({ length: 8 * 256 }, () => pattern));
    assert.ok(exported.subarray(0, 8 * MiB).equals(pattern8), 'the export holds the plaintext');
    // Import it back shifted by 1 MiB into the compression-only LUN's neighbour: disk0 itself, over its data.
    const shifted = path.join(target.dir, 'shifted.img');
    writeFileSync(shifted, Buffer.concat([Buffer.alloc(MiB), pattern8]));
    const im = await cli(['import', 'disk0', shifted]);
    assert.equal(im.code, 0, im.stderr);
    const store = rgw.store(BUCKET);
    try {
      for (let i = 1; i <= 8; i++) {
        const got = await store.get(chunkKey('disk0', i));
        assert.ok(got && !got.body.includes(pattern), `chunk ${i} sealed after the import`);
        assert.equal(got.meta.metadata['s3tgt-codec'], 'v1/zstd/aes-256-gcm');
      }
    } finally {
      await store.close();
    }
    const df = await cli(['defrag', 'disk0', '--json']);
    assert.equal(df.code, 0, df.stdout + df.stderr);
    assert.deepEqual(JSON.parse(df.stdout).corrupt, []);
    await target.start();
    const r = await qemuIo(target.url(0), [`read -P 0 0 1M`]);
    assert.equal(r.code, 0, r.stderr);
    const back = path.join(target.dir, 'back2.img');
    await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=9', `if=${target.url(0)}`, `of=${back}`]);
    assert.ok(readFileSync(back).subarray(MiB).equals(pattern8));
  });

  it("the LUN's cost counters match the requests the proxy forwarded for it, within 1 %", async () => {
    assert.equal(await target.stop(), 0);
    const from = proxy.forwarded.length;
    await target.start();
    // A scripted workload: a cold read, new writes, a discard, a flush.
    const small = Array.from({ length: 64 }, (_, i) => `write -P ${i + 1} ${(192 + i) * MiB + 4096} 4k`);
    const r = await qemuIo(target.url(0), ['read 0 160M', `write -P 0x3c ${160 * MiB} 32M`, ...small, `discard ${128 * MiB} 16M`, 'flush']);
    assert.equal(r.code, 0, r.stderr);
    await new Promise((res) => setTimeout(res, 500));
    const counted: Record<string, number> = {};
    for (const k of ['PUT', 'GET', 'HEAD', 'LIST', 'COPY', 'DELETE'])
      counted[k] = await target.metric(`s3tgt_lun_store_requests_total{name="disk0",request="${k}"}`);
    const seen: Record<string, number> = { PUT: 0, GET: 0, HEAD: 0, LIST: 0, COPY: 0, DELETE: 0 };
    for (const f of proxy.forwarded.slice(from)) {
      const k = classify(f, 'disk0');
      if (k) seen[k]++;
    }
    const total = (x: Record<string, number>): number => Object.values(x).reduce((a, b) => a + b, 0);
    assert.ok(total(seen) >= 120, `a workload of ${total(seen)} requests: ${JSON.stringify(seen)}`);
    // A lease renewal may land between the scrape and the count: one request of slack per class.
    for (const k of Object.keys(seen))
      assert.ok(Math.abs(counted[k] - seen[k]) <= Math.max(1, seen[k] * 0.01), `${k}: counted ${counted[k]}, proxy ${seen[k]}`);
    assert.ok(Math.abs(total(counted) - total(seen)) <= total(seen) * 0.01, `${JSON.stringify(counted)} vs ${JSON.stringify(seen)}`);
    assert.ok((await target.metric('s3tgt_lun_store_received_bytes_total{name="disk0"}')) > 0);
    assert.ok((await target.metric('s3tgt_lun_estimated_monthly_cost_dollars{name="disk0",component="storage"}')) > 0);
    // `lun info` shows the encoding, the stored bytes' cost and the served LUN's counters.
    const info = await run(process.execPath, [MAIN, 'lun', 'info', 'disk0', '-c', target.configFile], { env: rgw.env(), timeoutMs: 60_000 });
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /encoding: +zstd compression, AES-256-GCM with key "k1"/);
    assert.match(info.stdout, /storage cost: +\$\d+\.\d\d a month at s3.prices/);
    assert.match(info.stdout, /requests: +PUT (\d+), GET (\d+),/);
    const [, put] = /requests: +PUT (\d+)/.exec(info.stdout) ?? [];
    assert.ok(Number(put) >= counted.PUT, info.stdout);
  });

  it('a rotation, then defrag --rekey: every chunk sealed with the new key, the old one no longer needed', async () => {
    assert.equal(await target.stop(), 0);
    const rotated = make(k2, 'k2', `{ keyId: k1, key: "${key}" }`);
    await rotated.start();
    // A snapshot (served: through the admin endpoint), then an overwrite: the snapshot keeps
    // chunk 1 as it was, sealed with k1.
    const snap = await run(process.execPath, [MAIN, 'snapshot', 'create', 'disk0', 'before', '-c', rotated.configFile], {
      env: rgw.env(),
      timeoutMs: 60_000,
    });
    assert.equal(snap.code, 0, snap.stderr);
    const w = await qemuIo(rotated.url(0), [`write -P 0x77 ${200 * MiB} 1M`, `write -P 0x78 ${MiB} 4k`, 'flush']);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(await rotated.stop(), 0);
    const keysOf = async (): Promise<Map<string, number>> => {
      const store = rgw.store(BUCKET);
      const byKey = new Map<string, number>();
      try {
        for await (const e of listAll(store, 'luns/disk0/')) {
          if (!/\/chunks\/[0-9a-f]{16}$/.test(e.key) || e.size === 0) continue;
          const id = (await store.head(e.key))?.metadata['s3tgt-key'] ?? 'none';
          byKey.set(id, (byKey.get(id) ?? 0) + 1);
        }
      } finally {
        await store.close();
      }
      return byKey;
    };
    const before = await keysOf();
    assert.ok((before.get('k1') ?? 0) > 0 && (before.get('k2') ?? 0) > 0, JSON.stringify([...before]));
    const r = await run(process.execPath, [MAIN, 'defrag', 'disk0', '--rekey', '--json', '-c', rotated.configFile], {
      env: rgw.env(),
      timeoutMs: 300_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.rekey.forgottenKeys, ['k1']);
    assert.ok(report.rekey.snapshotChunks >= 1, JSON.stringify(report.rekey));
    assert.equal(report.rekey.complete, true);
    assert.deepEqual([...(await keysOf()).keys()], ['k2']);
    // The old key can leave the configuration now.
    const only = make(k2, 'k2');
    await only.start();
    try {
      const back = path.join(only.dir, 'rekeyed.img');
      await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=9', `if=${only.url(0)}`, `of=${back}`]);
      const live = Buffer.concat(Array.from({ length: 8 * 256 }, () => pattern));
      live.fill(0x78, 0, 4096);
      assert.ok(readFileSync(back).subarray(MiB).equals(live));
      const p = await qemuIo(only.url(0), [`read -P 0x77 ${200 * MiB} 1M`, `read -P 0x78 ${MiB} 4k`]);
      assert.equal(p.code, 0, p.stderr);
      assert.doesNotMatch(p.stdout, /Pattern verification failed/);
    } finally {
      await only.stop();
    }
    const ex = await run(
      process.execPath,
      [MAIN, 'export', 'disk0', path.join(target.dir, 'snap.img'), '--snapshot', 'before', '-c', only.configFile],
      {
        env: rgw.env(),
        timeoutMs: 120_000,
      },
    );
    assert.equal(ex.code, 0, ex.stderr);
    const snapImage = readFileSync(path.join(target.dir, 'snap.img'));
    assert.ok(snapImage.subarray(MiB, 9 * MiB).equals(Buffer.concat(Array.from({ length: 8 * 256 }, () => pattern))));
  });

  it("an encrypted clone: refused without its parent's key; hydrated, every chunk sealed as its own; then it needs neither", async () => {
    const base = make(k2, 'k2');
    await base.start();
    assert.equal(await base.stop(), 0);
    const k3 = randomBytes(32).toString('hex');
    const withClone = (previous: string): string => {
      const file = path.join(base.dir, `clone-${previous ? 'both' : 'own'}.yaml`);
      const entry = `      - { lun: 2, name: vault2, size: 256MiB, store: s3, encryption: { keyId: k3, key: "${k3}"${previous ? `, previous: [${previous}]` : ''} } }`;
      writeFileSync(file, `${readFileSync(base.configFile, 'utf8').trimEnd()}\n${entry}\n`);
      return file;
    };
    const both = withClone(`{ keyId: k2, key: "${k2}" }`);
    const own = withClone('');
    const cli = (config: string, args: string[]) => run(process.execPath, [MAIN, ...args, '-c', config], { env: rgw.env(), timeoutMs: 300_000 });
    const ok = async (config: string, args: string[]): Promise<string> => {
      const r = await cli(config, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    await ok(both, ['snapshot', 'create', 'disk0', 'gold']);
    await ok(both, ['lun', 'clone', 'disk0@gold', 'vault2']);
    const gold = path.join(base.dir, 'gold.img');
    await ok(both, ['export', 'disk0', gold, '--snapshot', 'gold']);
    const refused = await cli(own, ['export', 'vault2', path.join(base.dir, 'no.img')]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /clone vault2: its parent "disk0" has chunks sealed with key "k2": give it under encryption.previous/);
    assert.match(await ok(both, ['lun', 'hydrate', 'vault2']), /hydrated "vault2": \d+ chunks copied/);
    const store = rgw.store(BUCKET);
    try {
      const uuid = JSON.parse((await store.get('luns/vault2/volume.json'))?.body.toString() ?? '{}').uuid;
      let sealed = 0;
      for await (const e of listAll(store, 'luns/vault2/chunks/')) {
        if (e.size === 0) continue;
        const meta = await store.head(e.key);
        assert.deepEqual([meta?.metadata['s3tgt-lun'], meta?.metadata['s3tgt-key']], [uuid, 'k3'], `${e.key} sealed as vault2's`);
        sealed++;
      }
      assert.ok(sealed >= 9, `${sealed} chunks with data`);
    } finally {
      await store.close();
    }
    await ok(both, ['snapshot', 'delete', 'disk0', 'gold']);
    const back = path.join(base.dir, 'vault2.img');
    await ok(own, ['export', 'vault2', back]);
    assert.ok(readFileSync(back).equals(readFileSync(gold)), 'the hydrated clone reads as the snapshot, with its own key alone');
  });
});
