import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/config';
import { ConfigError } from '../../src/config/errors';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { ChunkCodec, CODEC_META_KEY, KEY_META_KEY, LUN_META_KEY, SEAL_OVERHEAD } from '../../src/storage/codec/chunk-codec';
import { CodecStore } from '../../src/storage/codec/codec-store';
import { decompress } from '../../src/storage/codec/compression';
import { checkKeys } from '../../src/storage/codec/encryption-record';
import { KeyRing, parseKeyMaterial } from '../../src/storage/codec/keys';
import { isStorageError, type StorageError } from '../../src/storage/errors';
import { CRC_META_KEY, segmentCrcs } from '../../src/storage/integrity';
import { CHUNK_SIZE, LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { listAll, type ObjectStore } from '../../src/storage/object-store';
import { lunDataStore } from '../../src/storage/snapshots/preserving-store';
import { createVolume } from '../../src/storage/volume-meta';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { MiB, testOptions } from '../lib/volumes';

const K1 = { id: 'k1', key: randomBytes(32) };
const K2 = { id: 'k2', key: randomBytes(32) };
const UUID_A = '11111111-1111-4111-8111-111111111111';
const UUID_B = '22222222-2222-4222-8222-222222222222';
const text = (n: number): Buffer => Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(Math.ceil(n / 45)).slice(0, n));
const isData = (e: unknown): boolean => isStorageError(e, 'data');

function sealed(codec: ChunkCodec, plain: Buffer, index = 3, uuid = UUID_A) {
  return codec.encode(plain, { [CRC_META_KEY]: segmentCrcs(plain) }, uuid, { key: `p/a/chunks/${index}`, index });
}

describe('chunk codec: authenticated encryption and compression of chunk objects (issue 19)', () => {
  const enc = new ChunkCodec({ compression: 'zstd', keys: new KeyRing(K1) });
  const lineage = new Set([UUID_A]);

  it('round-trips a compressible and an incompressible chunk; the CRC is sealed, the key id and LUN are not', () => {
    for (const plain of [text(CHUNK_SIZE), randomBytes(CHUNK_SIZE)]) {
      const e = sealed(enc, plain);
      assert.equal(e.metadata[CRC_META_KEY], undefined, 'no plaintext CRC in the clear');
      assert.equal(e.metadata[KEY_META_KEY], 'k1');
      assert.equal(e.metadata[LUN_META_KEY], UUID_A);
      const d = enc.decode(e.body, e.metadata, CHUNK_SIZE, { key: 'k', index: 3 }, lineage);
      assert.ok(d.body.equals(plain));
      assert.equal(d.metadata[CRC_META_KEY], segmentCrcs(plain));
      assert.equal(d.metadata[CODEC_META_KEY], undefined);
    }
    assert.ok(sealed(enc, text(CHUNK_SIZE)).body.length < CHUNK_SIZE / 10, 'text compresses before it is sealed');
    const raw = sealed(enc, randomBytes(CHUNK_SIZE));
    assert.equal(raw.metadata[CODEC_META_KEY], 'v1/raw/aes-256-gcm', 'random data is stored raw');
    assert.equal(
      raw.body.length,
      CHUNK_SIZE + SEAL_OVERHEAD + Buffer.byteLength(JSON.stringify({ [CRC_META_KEY]: segmentCrcs(Buffer.alloc(CHUNK_SIZE)) })),
    );
  });

  it('the same chunk sealed twice gives two different objects (a key and IV per object)', () => {
    const plain = text(CHUNK_SIZE);
    assert.ok(!sealed(enc, plain).body.equals(sealed(enc, plain).body));
  });

  it('an object moved to another index, sealed by another LUN, edited, or under another key id is refused, never decrypted', () => {
    const e = sealed(enc, text(CHUNK_SIZE), 3);
    const at = (index: number) => ({ key: `p/a/chunks/${index}`, index });
    assert.throws(() => enc.decode(e.body, e.metadata, CHUNK_SIZE, at(4), lineage), isData, 'moved to index 4');
    const other = sealed(enc, text(CHUNK_SIZE), 3, UUID_B);
    assert.throws(() => enc.decode(other.body, other.metadata, CHUNK_SIZE, at(3), lineage), /not this LUN or a parent/);
    // The UUID rewritten to ours: the tag binds the sealer's.
    assert.throws(() => enc.decode(other.body, { ...other.metadata, [LUN_META_KEY]: UUID_A }, CHUNK_SIZE, at(3), lineage), /authentication failed/);
    const flipped = Buffer.from(e.body);
    flipped[100] ^= 1;
    assert.throws(() => enc.decode(flipped, e.metadata, CHUNK_SIZE, at(3), lineage), /authentication failed/);
    assert.throws(
      () => enc.decode(e.body, { ...e.metadata, [CODEC_META_KEY]: 'v1/lz4/aes-256-gcm' }, CHUNK_SIZE, at(3), lineage),
      /authentication failed/,
    );
    const rotated = new ChunkCodec({ compression: 'zstd', keys: new KeyRing(K2) });
    assert.throws(() => rotated.decode(e.body, e.metadata, CHUNK_SIZE, at(3), lineage), /key "k1", which is not configured/);
    const wrong = new ChunkCodec({ compression: 'zstd', keys: new KeyRing({ id: 'k1', key: randomBytes(32) }) });
    assert.throws(() => wrong.decode(e.body, e.metadata, CHUNK_SIZE, at(3), lineage), /authentication failed/);
  });

  it('after a rotation new chunks use the new key and old ones stay readable', () => {
    const old = sealed(enc, text(CHUNK_SIZE));
    const ring = new ChunkCodec({ compression: 'zstd', keys: new KeyRing(K2, [K1]) });
    const fresh = sealed(ring, text(CHUNK_SIZE));
    assert.equal(fresh.metadata[KEY_META_KEY], 'k2');
    for (const e of [old, fresh])
      assert.ok(ring.decode(e.body, e.metadata, CHUNK_SIZE, { key: 'k', index: 3 }, lineage).body.equals(text(CHUNK_SIZE)));
  });

  it('a chunk in clear is refused on a LUN created encrypted, and read on one encrypted later', () => {
    const plain = randomBytes(CHUNK_SIZE);
    assert.throws(() => enc.decode(plain, { [CRC_META_KEY]: segmentCrcs(plain) }, CHUNK_SIZE, { key: 'k', index: 0 }, lineage), /not encrypted/);
    const later = new ChunkCodec({ compression: 'off', keys: new KeyRing(K1) });
    later.plainAllowed = true;
    assert.ok(later.decode(plain, {}, CHUNK_SIZE, { key: 'k', index: 0 }, lineage).body.equals(plain));
  });

  it('compression alone: a compressible chunk is marked, an incompressible one stays a plain object', () => {
    for (const compression of ['zstd', 'lz4'] as const) {
      const c = new ChunkCodec({ compression });
      const e = c.encode(text(CHUNK_SIZE), { [CRC_META_KEY]: 'x' }, UUID_A, { key: 'k', index: 0 });
      assert.equal(e.metadata[CODEC_META_KEY], `v1/${compression}/none`);
      assert.equal(e.metadata[CRC_META_KEY], 'x');
      assert.ok(c.decode(e.body, e.metadata, CHUNK_SIZE, { key: 'k', index: 0 }, lineage).body.equals(text(CHUNK_SIZE)));
      const r = c.encode(Buffer.from(randomBytes(CHUNK_SIZE)), {}, UUID_A, { key: 'k', index: 0 });
      assert.equal(r.metadata[CODEC_META_KEY], undefined);
      assert.equal(r.body.length, CHUNK_SIZE);
    }
  });

  it('a frame that declares another size than the chunk is refused before it is decompressed (a bomb costs nothing)', () => {
    const c = new ChunkCodec({ compression: 'zstd' });
    const small = c.encode(text(CHUNK_SIZE), {}, UUID_A, { key: 'k', index: 0 });
    assert.throws(() => decompress('zstd', small.body, 2 * CHUNK_SIZE, 'k'), /declares 1048576 bytes, the chunk is 2097152/);
    const lz = new ChunkCodec({ compression: 'lz4' }).encode(text(CHUNK_SIZE), {}, UUID_A, { key: 'k', index: 0 });
    const bomb = Buffer.from(lz.body);
    bomb.writeUInt32LE(0x7fffffff, 0);
    assert.throws(() => decompress('lz4', bomb, CHUNK_SIZE, 'k'), /declares 2147483647 bytes/);
  });

  it('key material: 64 hex digits, base64 of 32 bytes, or 32 raw bytes; anything else says what a key is', () => {
    const k = randomBytes(32);
    assert.ok((parseKeyMaterial(k.toString('hex')) as Buffer).equals(k));
    assert.ok((parseKeyMaterial(`${k.toString('base64')}\n`) as Buffer).equals(k));
    assert.ok((parseKeyMaterial(k) as Buffer).equals(k));
    assert.match(parseKeyMaterial('secret') as string, /64 hex digits/);
  });
});

describe('an encrypted, compressed LUN through its volume (issue 19)', () => {
  const layout = new LunLayout('p', 'vault');

  async function open(raw: ObjectStore, keys = new KeyRing(K1)): Promise<{ volume: ChunkVolume; coded: CodecStore }> {
    const codec = new ChunkCodec({ compression: 'zstd', keys });
    const coded = new CodecStore(raw, codec, CHUNK_SIZE);
    const existing = await raw.get(layout.volumeKey);
    const info = existing ? JSON.parse(existing.body.toString()) : await createVolume(raw, layout, 8 * MiB, 512, 65536);
    await checkKeys(raw, layout, info.uuid, codec, !existing);
    const volume = new ChunkVolume(
      await lunDataStore(coded, layout, info),
      layout,
      info,
      { ...testOptions(4 * MiB), wholeChunkReads: true },
      {
        gate: WriteGate.unleased(systemClock, 'vault'),
      },
    );
    return { volume, coded };
  }

  it('no object holds a written 4 KiB pattern; the data reads back; two swapped chunks are MEDIUM ERRORs', async () => {
    const raw = new MemoryObjectStore();
    const { volume } = await open(raw);
    const pattern = randomBytes(4096);
    const chunk = Buffer.alloc(CHUNK_SIZE);
    for (let off = 0; off < CHUNK_SIZE; off += 4096) pattern.copy(chunk, off);
    await volume.write(0, chunk, { fua: true });
    await volume.write(CHUNK_SIZE, text(CHUNK_SIZE), { fua: true });
    await volume.close();
    let objects = 0;
    for await (const e of listAll(raw, '')) {
      const got = await raw.get(e.key);
      assert.ok(got && !got.body.includes(pattern) && !got.body.includes(text(64)), `${e.key} holds plaintext`);
      objects++;
    }
    assert.ok(objects >= 3);
    const again = await open(raw);
    assert.ok((await again.volume.read(0, CHUNK_SIZE)).equals(chunk));
    assert.ok((await again.volume.read(CHUNK_SIZE + 4096, 4096)).equals(text(CHUNK_SIZE).subarray(4096, 8192)));
    await again.volume.close();
    const [a, b] = [layout.chunkKey(0), layout.chunkKey(1)].map(async (k) => raw.get(k));
    const [ga, gb] = await Promise.all([a, b]);
    assert.ok(ga && gb);
    await raw.put(layout.chunkKey(0), gb.body, { metadata: gb.meta.metadata });
    await raw.put(layout.chunkKey(1), ga.body, { metadata: ga.meta.metadata });
    const swapped = await open(raw);
    for (const off of [0, CHUNK_SIZE]) {
      await assert.rejects(swapped.volume.read(off, 4096), (e: StorageError) => isData(e) && /authentication failed/.test(e.message));
    }
    await swapped.volume.close();
  });

  it('a restart with a wrong key, without a recorded key, or without encryption is refused by key (STORE_ERR_KEY)', async () => {
    const raw = new MemoryObjectStore();
    const { volume } = await open(raw);
    await volume.write(0, text(4096), { fua: true });
    await volume.close();
    const info = JSON.parse((await raw.get(layout.volumeKey))?.body.toString() ?? '{}');
    const refused = (e: unknown): boolean => isStorageError(e, 'invalid') && e.code === 'STORE_ERR_KEY';
    await assert.rejects(
      open(raw, new KeyRing({ id: 'k1', key: randomBytes(32) })),
      (e: StorageError) => refused(e) && /key "k1" is not the key/.test(e.message),
    );
    await assert.rejects(
      open(raw, new KeyRing(K2)),
      (e: StorageError) => refused(e) && /sealed with key "k1": give it under encryption.previous/.test(e.message),
    );
    await assert.rejects(checkKeys(raw, layout, info.uuid, new ChunkCodec({ compression: 'off' }), false), refused);
    // Rotation: k2 current, k1 previous; both recorded from then on.
    const rotated = await open(raw, new KeyRing(K2, [K1]));
    assert.ok((await rotated.volume.read(0, 4096)).equals(text(4096)));
    await rotated.volume.close();
    const rec = JSON.parse((await raw.get(layout.recordKey('encryption')))?.body.toString() ?? '{}');
    assert.deepEqual(Object.keys(rec.keys).sort(), ['k1', 'k2']);
    assert.equal(rec.plaintext, false);
  });

  it('a snapshot keeps sealed chunks by server-side copy, and they read back as they were', async () => {
    const raw = new MemoryObjectStore();
    const { volume } = await open(raw);
    await volume.write(0, text(CHUNK_SIZE), { fua: true });
    await volume.close();
    // What a snapshot's preservation does: CopyObject of the sealed chunk.
    const snapKey = layout.snapshotChunkKey(1, 0);
    await raw.copy(layout.chunkKey(0), snapKey);
    const { coded, volume: v2 } = await open(raw);
    const got = await coded.get(snapKey);
    assert.ok(got?.body.equals(text(CHUNK_SIZE)));
    await v2.close();
  });
});

describe('CodecStore reads: scratch buffers never reach a caller', () => {
  it('bodies returned earlier stay intact while later reads reuse the scratch buffers', async () => {
    for (const keys of [undefined, new KeyRing(K1)]) {
      const raw = new MemoryObjectStore();
      const coded = new CodecStore(raw, new ChunkCodec({ compression: 'zstd', ...(keys ? { keys } : {}) }), CHUNK_SIZE);
      coded.vouch('p/s', UUID_A);
      const chunks = Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? randomBytes(CHUNK_SIZE) : text(CHUNK_SIZE).fill(i, 0, 100)));
      for (const [i, c] of chunks.entries())
        await coded.put(`p/s/chunks/${i.toString(16).padStart(16, '0')}`, c, { metadata: { [CRC_META_KEY]: segmentCrcs(c) } });
      const given: Buffer[] = [];
      const bodies: Buffer[] = [];
      for (const [i] of chunks.entries()) {
        const got = await coded.get(`p/s/chunks/${i.toString(16).padStart(16, '0')}`, undefined, {
          bodyBuffer: (n) => {
            const b = Buffer.alloc(n, 0xee);
            given.push(b);
            return b;
          },
        });
        assert.ok(got);
        bodies.push(got.body);
      }
      for (const [i, c] of chunks.entries())
        assert.ok(bodies[i].equals(c), `chunk ${i} (${keys ? 'sealed' : 'compressed'}) changed after later reads`);
      if (keys) assert.ok(bodies.filter((b) => given.includes(b)).length >= 8, "sealed raw chunks decrypt into the caller's buffers");
    }
  });
});

describe('configuration of data at rest: errors name the file, line and key', () => {
  const lun = (extra: string): string => `s3: { bucket: vault }
targets:
  - iqn: iqn.2026-11.io.s3tgt:x
    luns:
      - lun: 0
        name: v
        store: s3
        size: 1GiB
${extra}`;
  const fails = (extra: string, re: RegExp): void =>
    assert.throws(
      () => parseConfig(lun(extra), 'rest.yaml'),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
    );

  it('reads a key inline, from the environment or from a file relative to the configuration', () => {
    const hex = randomBytes(32).toString('hex');
    process.env.S3TGT_TEST_KEY = randomBytes(32).toString('base64');
    const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-keys-'));
    writeFileSync(path.join(dir, 'old.key'), randomBytes(32));
    try {
      const c = parseConfig(
        lun(`        compression: lz4
        encryption:
          keyId: new
          key: "${hex}"
          previous:
            - { keyId: env, keyEnv: S3TGT_TEST_KEY }
            - { keyId: file, keyFile: old.key }`),
        path.join(dir, 'rest.yaml'),
      );
      const l = c.targets[0].luns[0];
      assert.equal(l.compression, 'lz4');
      assert.equal(l.encryption?.current.key.toString('hex'), hex);
      assert.deepEqual(
        l.encryption?.previous.map((k) => k.id),
        ['env', 'file'],
      );
      assert.equal(c.s3?.prices.storageGbMonth, 0.023, 'the example price table by default');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      delete process.env.S3TGT_TEST_KEY;
    }
  });

  it('refuses a short key, two sources, a missing variable or file, a bad key id, a reused id, an unknown codec', () => {
    fails('        encryption: { keyId: k, key: "abcd" }', /^rest\.yaml:9:.*targets\[0\]\.luns\[0\]\.encryption\.key: a key is 32 bytes/);
    fails(`        encryption: { keyId: k, key: "${'00'.repeat(32)}", keyEnv: X }`, /give exactly one of "key", "keyFile" or "keyEnv"/);
    fails('        encryption: { keyId: k, keyEnv: S3TGT_NO_SUCH_VARIABLE }', /environment variable S3TGT_NO_SUCH_VARIABLE is not set/);
    fails('        encryption: { keyId: k, keyFile: /nonexistent/k.key }', /cannot read key file \/nonexistent\/k\.key: ENOENT/);
    fails(`        encryption: { keyId: "a b", key: "${'00'.repeat(32)}" }`, /encryption\.keyId: a key id is 1-32/);
    fails(
      `        encryption: { keyId: k, key: "${'00'.repeat(32)}", previous: [{ keyId: k, key: "${'11'.repeat(32)}" }] }`,
      /previous\[0\]\.keyId: key id "k" is given twice/,
    );
    const s3 = (sse: string): string => lun('').replace('s3: { bucket: vault }', `s3: { bucket: vault, serverSideEncryption: ${sse} }`);
    assert.deepEqual(parseConfig(s3('{ type: SSE-KMS, kmsKeyId: k-1 }'), 'rest.yaml').s3?.serverSideEncryption, { type: 'SSE-KMS', kmsKeyId: 'k-1' });
    assert.equal(parseConfig(s3(`{ type: SSE-C, key: "${'ab'.repeat(32)}" }`), 'rest.yaml').s3?.serverSideEncryption?.type, 'SSE-C');
    assert.throws(() => parseConfig(s3('{ type: SSE-C }'), 'rest.yaml'), /SSE-C needs exactly one of "key", "keyFile" or "keyEnv"/);
    assert.throws(
      () => parseConfig(s3(`{ type: SSE-S3, key: "${'ab'.repeat(32)}" }`), 'rest.yaml'),
      /serverSideEncryption\.key: SSE-S3 takes no key of ours/,
    );
    assert.throws(() => parseConfig(s3('{ type: SSE-X }'), 'rest.yaml'), /serverSideEncryption\.type: expected one of "SSE-S3", "SSE-KMS", "SSE-C"/);
    fails('        compression: gzip', /compression: expected one of "zstd", "lz4", "off", got "gzip"/);
    assert.throws(
      () => parseConfig(lun('').replace('s3: { bucket: vault }', 's3: { bucket: vault, prices: { put: -1 } }'), 'rest.yaml'),
      /s3\.prices\.put: expected a price in dollars/,
    );
  });
});
