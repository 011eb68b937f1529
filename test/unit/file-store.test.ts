import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { FileObjectStore } from '../../src/storage/file-store';
import { listAll } from '../../src/storage/object-store';
import { tempDir } from '../lib/temp-dir';

const MiB = 1024 * 1024;
const STORE = path.resolve(__dirname, '../../src/storage/file-store.js');

/**
 * Issue 13, defect 8: the local chunk store under a full disk or a file size limit, fsync of a
 * delete, and the cost of a listing. Each test fails on the commit before the fix.
 */
describe('local chunk store (issue 13, defect 8)', () => {
  it('a short write (the file size limit hit mid-chunk) fails the put and leaves the previous object intact', async () => {
    const dir = tempDir('s3tgt-fs-');
    const good = Buffer.alloc(MiB, 1);
    const store = new FileObjectStore(dir);
    await store.put('lun/chunks/0000000000000000', good, { metadata: { a: 'b' } });
    await store.close();
    // A child whose writes stop at 512 KiB (RLIMIT_FSIZE; SIGXFSZ ignored, so write() returns
    // short, then EFBIG), as on a disk that fills up in the middle of a chunk.
    const child = `const { FileObjectStore } = require(${JSON.stringify(STORE)});
      new FileObjectStore(${JSON.stringify(dir)}).put('lun/chunks/0000000000000000', Buffer.alloc(${MiB}, 2), { metadata: { a: 'c' } })
        .then(() => console.log('stored'), (e) => console.log('rejected', e.code));`;
    const r = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 512; exec "${process.execPath}" -e "$0"`, child], { encoding: 'utf8' });
    assert.match(r.stdout, /^rejected STORE_ERR_UNAVAILABLE/, r.stdout + r.stderr);
    const back = new FileObjectStore(dir);
    const got = await back.get('lun/chunks/0000000000000000');
    assert.ok(got?.body.equals(good), 'the previous object is intact');
    assert.equal(got?.meta.metadata.a, 'b');
    await back.close();
  });

  it('a delete is durable when it returns: the directory is fsynced', async () => {
    const dir = tempDir('s3tgt-fs-');
    const store = new FileObjectStore(dir);
    await store.put('lun/chunks/0000000000000001', Buffer.alloc(4096, 3));
    const chunks = path.join(dir, 'lun', 'chunks');
    const synced: string[] = [];
    const open = fsp.open;
    fsp.open = (async (file: Parameters<typeof fsp.open>[0], ...rest: unknown[]) => {
      const fh = await (open as (...a: unknown[]) => Promise<Awaited<ReturnType<typeof fsp.open>>>)(file, ...rest);
      const sync = fh.sync.bind(fh);
      fh.sync = async () => {
        synced.push(String(file));
        return sync();
      };
      return fh;
    }) as typeof fsp.open;
    try {
      await store.delete('lun/chunks/0000000000000001');
    } finally {
      fsp.open = open;
    }
    assert.ok(synced.includes(chunks), `fsynced after the unlink: ${JSON.stringify(synced)}`);
    await store.close();
  });

  it('a listing walks the tree once, not once per page', async () => {
    const dir = tempDir('s3tgt-fs-');
    const chunks = path.join(dir, 'lun', 'chunks');
    mkdirSync(chunks, { recursive: true });
    for (let i = 0; i < 2500; i++) writeFileSync(path.join(chunks, i.toString(16).padStart(16, '0')), 'x');
    const store = new FileObjectStore(dir);
    let walks = 0;
    const readdir = fsp.readdir;
    fsp.readdir = (async (...a: unknown[]) => {
      walks++;
      return (readdir as (...x: unknown[]) => Promise<unknown>)(...a);
    }) as typeof fsp.readdir;
    let keys = 0;
    try {
      for await (const _ of listAll(store, 'lun/chunks/')) keys++;
    } finally {
      fsp.readdir = readdir;
    }
    assert.equal(keys, 2500);
    assert.equal(walks, 1, 'three pages, one walk of the one directory');
    await store.close();
  });
});
