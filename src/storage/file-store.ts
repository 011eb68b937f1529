import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { abortReason } from '../util/clock';
import { StorageError } from './errors';
import { HandleCache } from './file-handles';
import { readFully, syncDir, writeAll } from './file-io';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

/**
 * The local chunk store: the S3 layout in a directory, one file per object. Writes are atomic
 * and durable (temporary file, fsync, rename, fsync of the directory). User metadata (the
 * chunk CRCs) rides in a small trailer after the body, so body and checksum change together:
 *   [body][metadata JSON][u32 BE length of the JSON]["S3TGTMD1"]
 */
const MAGIC = Buffer.from('S3TGTMD1');
const TRAILER_FIXED = 4 + MAGIC.length;
const TEMP_MARK = '.tmp-';
const LOCK_SUFFIX = '.lock';

interface Opened {
  readonly fh: fs.FileHandle;
  readonly meta: ObjectMeta;
}

export class FileObjectStore implements ObjectStore {
  readonly description: string;
  /**
   * Ranged reads (only chunk reads make them) reuse open handles. Whole-object reads and
   * heads always open afresh: lease.json is written by other processes, and its ETag must be
   * the file's current one.
   */
  private readonly handles = new HandleCache<Opened>(
    1024, // a 1 GiB working set of chunks; file descriptors are plentiful (Node raises RLIMIT_NOFILE)
    (key) => this.open(key),
    (o) => o.fh.close(),
  );

  /** Directories known to exist (a put would otherwise mkdir every time). */
  private readonly dirs = new Set<string>();

  /** The rest of each listing in progress, by prefix and continuation token. */
  private readonly cursors = new Map<string, { readonly keys: string[]; readonly at: number }>();

  /** Tree walks made for listings (tests: one per listing, not one per page). */
  walks = 0;

  constructor(private readonly root: string) {
    this.description = `file:${path.resolve(root)}`;
  }

  private pathOf(key: string): string {
    if (key.split('/').some((p) => p === '..' || p === '') || key.includes('\0')) {
      throw new StorageError('invalid', `invalid object key "${key}"`);
    }
    return path.join(this.root, ...key.split('/'));
  }

  async get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    if (range) {
      const { handle, release } = await this.handles.acquire(key);
      if (!handle) return null;
      try {
        return await readRange(handle, range);
      } finally {
        release();
      }
    }
    const o = await this.open(key);
    if (!o) return null;
    try {
      return await readRange(o, { offset: 0, length: o.meta.size }, opts?.bodyBuffer);
    } finally {
      await o.fh.close();
    }
  }

  async head(key: string): Promise<ObjectMeta | null> {
    const o = await this.open(key);
    if (!o) return null;
    await o.fh.close();
    return o.meta;
  }

  private async open(key: string): Promise<Opened | null> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.pathOf(key), 'r');
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return null;
      throw storageErrorOf(e, `open ${key}`);
    }
    try {
      const st = await fh.stat({ bigint: true });
      const fileSize = Number(st.size);
      const etag = `${st.ino.toString(16)}-${st.size.toString(16)}-${st.mtimeNs.toString(16)}`;
      let size = fileSize;
      let metadata: Record<string, string> = {};
      if (fileSize >= TRAILER_FIXED) {
        const tail = Buffer.alloc(TRAILER_FIXED);
        await readFully(fh, tail, fileSize - TRAILER_FIXED);
        if (tail.subarray(4).equals(MAGIC)) {
          const metaLen = tail.readUInt32BE(0);
          if (metaLen > 65536 || metaLen + TRAILER_FIXED > fileSize) throw new StorageError('data', `${key}: corrupt metadata trailer`);
          const json = Buffer.alloc(metaLen);
          await readFully(fh, json, fileSize - TRAILER_FIXED - metaLen);
          metadata = parseMeta(json, key);
          size = fileSize - TRAILER_FIXED - metaLen;
        }
      }
      return { fh, meta: { size, etag, metadata } };
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<{ etag: string }> {
    const final = this.pathOf(key);
    const dir = path.dirname(final);
    const tmp = `${final}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
    let etag = '';
    try {
      const create = (): Promise<fs.FileHandle> => fs.open(tmp, constants.O_CREAT | constants.O_WRONLY | constants.O_TRUNC, 0o644);
      if (!this.dirs.has(dir)) await fs.mkdir(dir, { recursive: true });
      // A directory we knew may have been removed meanwhile (lun delete): make it again.
      const fh = await create().catch(async (e: unknown) => {
        if (errno(e) !== 'ENOENT') throw e;
        await fs.mkdir(dir, { recursive: true });
        return create();
      });
      this.dirs.add(dir);
      try {
        const parts = [body];
        const meta = opts.metadata ?? {};
        if (Object.keys(meta).length > 0) {
          const json = Buffer.from(JSON.stringify(meta));
          const len = Buffer.alloc(4);
          len.writeUInt32BE(json.length);
          parts.push(json, len, MAGIC);
        }
        await writeAll(fh, parts, 0);
        await fh.sync();
        // rename and link keep the inode and its mtime: this is the final file's ETag.
        const st = await fh.stat({ bigint: true });
        etag = `${st.ino.toString(16)}-${st.size.toString(16)}-${st.mtimeNs.toString(16)}`;
      } finally {
        await fh.close();
      }
      // A mutation whose gate shut (or whose time ran out) while the file was written does not
      // land: the rename below is the moment the object changes.
      if (opts.signal?.aborted) throw abortReason(opts.signal);
      if (opts.ifNoneMatch === '*') {
        // link() fails if the name exists: an atomic create-only, across processes.
        try {
          await fs.link(tmp, final);
        } catch (e) {
          if (errno(e) === 'EEXIST') throw new StorageError('precondition', `${key} already exists`);
          throw e;
        }
        await fs.unlink(tmp);
        this.handles.invalidate(key);
      } else if (opts.ifMatch !== undefined) {
        await this.withLock(final, async () => {
          const cur = await this.head(key);
          if (!cur || cur.etag !== opts.ifMatch) throw new StorageError('precondition', `${key} changed`);
          await fs.rename(tmp, final);
          this.handles.invalidate(key);
        });
      } else {
        await fs.rename(tmp, final);
      }
      this.handles.invalidate(key);
      await syncDir(dir);
      return { etag };
    } catch (e) {
      await fs.unlink(tmp).catch(() => undefined);
      throw storageErrorOf(e, `put ${key}`);
    }
  }

  /** A cross-process lock for compare-and-swap: an O_EXCL lock file, stale after 10 s. */
  private async withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
    const lock = `${file}${LOCK_SUFFIX}`;
    for (let attempt = 0; ; attempt++) {
      try {
        const fh = await fs.open(lock, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
        await fh.close();
        break;
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
        const st = await fs.stat(lock).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > 10_000) await fs.unlink(lock).catch(() => undefined);
        if (attempt > 500) throw new StorageError('unavailable', `lock ${lock} held too long`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    try {
      return await fn();
    } finally {
      await fs.unlink(lock).catch(() => undefined);
    }
  }

  /** Deleting is durable when it returns: the directory is fsynced, like after a put. */
  /** A local copy: read, then written like a put (atomic rename), metadata included. */
  async copy(from: string, to: string, opts: CopyOptions = {}): Promise<{ etag: string } | null> {
    const src = await this.get(from);
    if (!src) return null;
    return this.put(to, src.body, { ...opts, metadata: src.meta.metadata });
  }

  async delete(key: string, opts?: RequestOptions): Promise<void> {
    await this.deleteMany([key], opts);
  }

  async deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    const dirs = new Set<string>();
    for (const k of keys) {
      if (opts?.signal?.aborted) throw abortReason(opts.signal);
      const file = this.pathOf(k);
      try {
        await fs.unlink(file);
        this.handles.invalidate(k);
        dirs.add(path.dirname(file));
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw storageErrorOf(e, `delete ${k}`);
      }
    }
    try {
      for (const d of dirs) await syncDir(d);
    } catch (e) {
      throw storageErrorOf(e, `delete: fsync of the directory`);
    }
  }

  /**
   * Pages of 1000 keys; the token is the last key of the previous page (S3 StartAfter). The
   * tree is walked once per listing: the first page keeps the sorted keys for the pages after
   * it (for a minute; a token nobody kept walks again).
   */
  async listPage(prefix: string, token: string | undefined): Promise<ListPage> {
    const cursor = token === undefined ? undefined : this.cursors.get(`${prefix}\0${token}`);
    if (token !== undefined) this.cursors.delete(`${prefix}\0${token}`);
    const matching = cursor?.keys ?? (await this.walkPrefix(prefix)).filter((k) => token === undefined || k > token);
    const page = matching.slice(0, 1000);
    const entries: ListEntry[] = [];
    for (const key of page) {
      const meta = await this.head(key);
      if (meta) entries.push({ key, size: meta.size, etag: meta.etag });
    }
    if (matching.length <= 1000) return { entries };
    const next = page[page.length - 1];
    this.keepCursor(`${prefix}\0${next}`, matching.slice(1000));
    return { entries, next };
  }

  private async walkPrefix(prefix: string): Promise<string[]> {
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const keys: string[] = [];
    await walk(baseKey ? this.pathOf(baseKey) : this.root, baseKey, keys);
    this.walks++;
    return keys.filter((k) => k.startsWith(prefix)).sort();
  }

  private keepCursor(id: string, keys: string[]): void {
    const now = Date.now();
    for (const [k, c] of this.cursors) if (now - c.at > 60_000) this.cursors.delete(k);
    this.cursors.set(id, { keys, at: now });
  }

  /**
   * Temporary files of writes a crash interrupted (older than a minute, so a write in flight
   * is never touched) and stale lock files: keys under `prefix` that `delete` removes.
   */
  async listLeftovers(prefix: string): Promise<ListEntry[]> {
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: ListEntry[] = [];
    await walkAll(baseKey ? this.pathOf(baseKey) : this.root, baseKey, async (key, full) => {
      if (!key.startsWith(prefix) || !(key.includes(TEMP_MARK) || key.endsWith(LOCK_SUFFIX))) return;
      const st = await fs.stat(full).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 60_000) out.push({ key, size: st.size });
    });
    return out;
  }

  async close(): Promise<void> {
    await this.handles.closeAll();
  }
}

async function readRange(o: Opened, range: { offset: number; length: number }, into?: (size: number) => Buffer | undefined): Promise<GetResult> {
  const start = Math.min(range.offset, o.meta.size);
  const end = Math.min(o.meta.size, range.offset + range.length);
  const body = into?.(end - start) ?? Buffer.allocUnsafe(end - start);
  await readFully(o.fh, body, start);
  return { body, meta: o.meta };
}

async function walkAll(dir: string, keyPrefix: string, visit: (key: string, full: string) => Promise<void>): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const ent of entries) {
    const key = keyPrefix ? `${keyPrefix}/${ent.name}` : ent.name;
    if (ent.isDirectory()) await walkAll(path.join(dir, ent.name), key, visit);
    else await visit(key, path.join(dir, ent.name));
  }
}

async function walk(dir: string, keyPrefix: string, out: string[]): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return;
    throw storageErrorOf(e, `list ${dir}`);
  }
  for (const ent of entries) {
    const key = keyPrefix ? `${keyPrefix}/${ent.name}` : ent.name;
    if (ent.isDirectory()) await walk(path.join(dir, ent.name), key, out);
    else if (ent.isFile() && !ent.name.includes(TEMP_MARK) && !ent.name.endsWith(LOCK_SUFFIX)) out.push(key);
  }
}

function parseMeta(json: Buffer, key: string): Record<string, string> {
  try {
    const v: unknown = JSON.parse(json.toString('utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
    return out;
  } catch (e) {
    throw new StorageError('data', `${key}: unreadable metadata trailer (${(e as Error).message})`);
  }
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function storageErrorOf(e: unknown, what: string): StorageError {
  if (e instanceof StorageError) return e;
  const code = errno(e);
  const kind = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'EISDIR' ? 'invalid' : 'unavailable';
  return new StorageError(kind, `${what}: ${(e as Error).message}`, { cause: e });
}
