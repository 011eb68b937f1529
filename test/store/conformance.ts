import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { type ListEntry, listAll, type ObjectStore } from '../../src/storage/object-store';

/**
 * The ObjectStore contract, run against every backend (object_store's integration.rs idea):
 * the chunk volume relies on exactly these behaviours.
 */
export function storeConformance(name: string, makeStore: () => Promise<ObjectStore>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    // Every store a test makes is closed (the local store keeps read handles open).
    const made = new Set<ObjectStore>();
    const make = async (): Promise<ObjectStore> => {
      const s = await makeStore();
      made.add(s);
      return s;
    };
    after(async () => {
      for (const s of made) await s.close();
    });
    let n = 0;
    const prefix = (): string => `conf-${process.pid}-${Date.now()}-${n++}/`;

    it('a missing object is null, not an error', async () => {
      const s = await make();
      const p = prefix();
      assert.equal(await s.get(`${p}nope`), null);
      assert.equal(await s.get(`${p}nope`, { offset: 0, length: 10 }), null);
      assert.equal(await s.head(`${p}nope`), null);
      await s.delete(`${p}nope`); // deleting a missing key succeeds
    });

    it('put then get returns the bytes, the metadata and an ETag; a ranged get returns exactly the range', async () => {
      const s = await make();
      const key = `${prefix()}chunks/0000000000000000`;
      const body = randomBytes(1024 * 1024);
      const { etag } = await s.put(key, body, { metadata: { 's3tgt-crc32c': 'abcdef01' } });
      assert.ok(etag.length > 0);
      assert.ok(!etag.startsWith('"'), 'ETag without quotes');
      const got = await s.get(key);
      assert.ok(got?.body.equals(body));
      assert.equal(got?.meta.metadata['s3tgt-crc32c'], 'abcdef01');
      assert.equal(got?.meta.size, body.length);
      const part = await s.get(key, { offset: 65536, length: 131072 });
      assert.ok(part?.body.equals(body.subarray(65536, 196608)));
      assert.equal(part?.meta.size, body.length, 'size is the whole object for a ranged read');
      const head = await s.head(key);
      assert.equal(head?.size, body.length);
      assert.equal(head?.metadata['s3tgt-crc32c'], 'abcdef01');
    });

    it('an overwrite is seen by the next read; an empty object reads empty', async () => {
      const s = await make();
      const key = `${prefix()}k`;
      for (let i = 0; i < 3; i++) await s.put(key, Buffer.alloc(4096, i));
      assert.equal((await s.get(key))?.body[0], 2);
      await s.put(`${key}0`, Buffer.alloc(0));
      assert.equal((await s.get(`${key}0`))?.body.length, 0);
    });

    it('conditional puts: If-None-Match: * creates only; If-Match replaces only the version named', async () => {
      const s = await make();
      const key = `${prefix()}lease.json`;
      const first = await s.put(key, Buffer.from('a'), { ifNoneMatch: '*' });
      await assert.rejects(s.put(key, Buffer.from('b'), { ifNoneMatch: '*' }), { kind: 'precondition' });
      const second = await s.put(key, Buffer.from('c'), { ifMatch: first.etag });
      await assert.rejects(s.put(key, Buffer.from('d'), { ifMatch: first.etag }), { kind: 'precondition' });
      assert.equal((await s.get(key))?.body.toString(), 'c');
      assert.equal((await s.head(key))?.etag, second.etag);
      await assert.rejects(s.put(`${key}.missing`, Buffer.from('e'), { ifMatch: first.etag }), { kind: 'precondition' });
    });

    it('conditional chunk writes: a listing gives the ETag If-Match takes; hole markers; the writer in the metadata', async () => {
      const s = await make();
      const p = prefix();
      const key = `${p}chunks/0000000000000003`;
      const a = await s.put(key, Buffer.alloc(1024 * 1024, 1), { ifNoneMatch: '*', metadata: { 's3tgt-writer': 'w1.1' } });
      const listed: ListEntry[] = [];
      for await (const e of listAll(s, `${p}chunks/`)) listed.push(e);
      assert.equal(listed.length, 1);
      assert.equal(listed[0].etag, a.etag, 'the listed ETag is the one the PUT answered, unquoted');
      // A hole marker over it (If-Match on the listed ETag), then data over the hole marker.
      const hole = await s.put(key, Buffer.alloc(0), { ifMatch: listed[0].etag as string, metadata: { 's3tgt-writer': 'w1.2' } });
      await assert.rejects(s.put(key, Buffer.alloc(16), { ifMatch: a.etag }), { kind: 'precondition' });
      await assert.rejects(s.put(key, Buffer.alloc(16), { ifNoneMatch: '*' }), { kind: 'precondition' }, 'a hole marker is an object');
      const head = await s.head(key);
      assert.equal(head?.size, 0);
      assert.equal(head?.etag, hole.etag);
      assert.equal(head?.metadata['s3tgt-writer'], 'w1.2');
      for await (const e of listAll(s, `${p}chunks/`)) assert.deepEqual([e.size, e.etag], [0, hole.etag]);
      await s.put(key, Buffer.alloc(1024 * 1024, 2), { ifMatch: hole.etag });
      assert.equal((await s.get(key))?.body[0], 2);
    });

    it('copy: server-side, bytes and metadata, independent of its source afterwards; a missing source is null', async () => {
      const s = await make();
      const p = prefix();
      const body = randomBytes(1024 * 1024);
      await s.put(`${p}chunks/0000000000000001`, body, { metadata: { 's3tgt-crc32c': '0badf00d' } });
      const copied = await s.copy(`${p}chunks/0000000000000001`, `${p}snapshots/a/chunks/0000000000000001`);
      assert.ok(copied && copied.etag.length > 0 && !copied.etag.startsWith('"'));
      const got = await s.get(`${p}snapshots/a/chunks/0000000000000001`);
      assert.ok(got?.body.equals(body));
      assert.equal(got?.meta.metadata['s3tgt-crc32c'], '0badf00d', 'metadata travels with the copy');
      assert.equal((await s.head(`${p}snapshots/a/chunks/0000000000000001`))?.etag, copied.etag);
      // The copy is independent of its source afterwards.
      await s.put(`${p}chunks/0000000000000001`, Buffer.alloc(16, 1));
      assert.ok((await s.get(`${p}snapshots/a/chunks/0000000000000001`))?.body.equals(body));
      assert.equal(await s.copy(`${p}chunks/0000000000000002`, `${p}snapshots/a/chunks/0000000000000002`), null);
      assert.equal(await s.head(`${p}snapshots/a/chunks/0000000000000002`), null, 'nothing created for a missing source');
    });

    it('lists a prefix in order across pages, and deleteMany removes more than one batch', async () => {
      const s = await make();
      const p = prefix();
      const keys = Array.from({ length: 1050 }, (_, i) => `${p}chunks/${i.toString(16).padStart(16, '0')}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => s.put(k, Buffer.from(k))));
      await s.put(`${p}volume.json`, Buffer.from('{}'));
      const listed: string[] = [];
      for await (const e of listAll(s, `${p}chunks/`)) listed.push(e.key);
      assert.deepEqual(listed, keys);
      await s.deleteMany([...keys, `${p}chunks/ffffffffffffffff`]);
      const left: string[] = [];
      for await (const e of listAll(s, p)) left.push(e.key);
      assert.deepEqual(left, [`${p}volume.json`]);
    });
  });
}
