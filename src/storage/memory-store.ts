import { createHash } from 'node:crypto';
import { StorageError } from './errors';
import type { GetResult, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

interface Entry {
  readonly body: Buffer;
  readonly meta: ObjectMeta;
}

/** An in-process object store: for unit tests and the protocol-path benchmark. */
export class MemoryObjectStore implements ObjectStore {
  readonly description = 'memory';
  private readonly objects = new Map<string, Entry>();
  private versions = 0;

  /**
   * `versions` (the default): a fresh tag per version. `md5`: the tag S3 and RGW give a
   * single-part PUT, the MD5 of the body, so identical bodies share a tag (every zero-length
   * hole marker has the same one): what conditional writes must cope with (ABA).
   */
  constructor(private readonly etags: 'versions' | 'md5' = 'versions') {}

  async get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    const e = this.objects.get(key);
    if (!e) return null;
    const body = range ? e.body.subarray(range.offset, Math.min(e.body.length, range.offset + range.length)) : e.body;
    const into = opts?.bodyBuffer?.(body.length);
    if (into) body.copy(into);
    return { body: into ?? Buffer.from(body), meta: e.meta };
  }

  async head(key: string): Promise<ObjectMeta | null> {
    return this.objects.get(key)?.meta ?? null;
  }

  async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<{ etag: string }> {
    const cur = this.objects.get(key);
    if (opts.ifNoneMatch === '*' && cur) throw new StorageError('precondition', `${key} exists`);
    if (opts.ifMatch !== undefined && cur?.meta.etag !== opts.ifMatch) throw new StorageError('precondition', `${key} changed`);
    // A fresh tag per version is all the contract asks (no content hash: the simulation stores a lot).
    const etag =
      this.etags === 'md5' ? createHash('md5').update(body).digest('hex') : `${(++this.versions).toString(16)}-${body.length.toString(16)}`;
    this.objects.set(key, { body: Buffer.from(body), meta: { size: body.length, etag, metadata: { ...(opts.metadata ?? {}) } } });
    return { etag };
  }

  async copy(from: string, to: string): Promise<{ etag: string } | null> {
    const src = this.objects.get(from);
    if (!src) return null;
    return this.put(to, src.body, { metadata: src.meta.metadata });
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }

  async listPage(prefix: string, token: string | undefined): Promise<ListPage> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && (token === undefined || k > token)).sort();
    const page = keys.slice(0, 1000);
    const entries = page.map((key) => {
      const meta = this.objects.get(key)?.meta;
      return { key, size: meta?.size ?? 0, etag: meta?.etag ?? '' };
    });
    return keys.length > 1000 ? { entries, next: page[page.length - 1] } : { entries };
  }

  async close(): Promise<void> {}

  /** Test hook: the number of stored objects under a prefix. */
  count(prefix = ''): number {
    let n = 0;
    for (const k of this.objects.keys()) if (k.startsWith(prefix)) n++;
    return n;
  }

  /** Test hook: the stored bytes of a key, synchronously (the simulation's oracle). */
  peek(key: string): Buffer | undefined {
    return this.objects.get(key)?.body;
  }

  /** Test hook: replaces stored bytes without touching metadata (simulates corruption). */
  corrupt(key: string, offset: number): void {
    const e = this.objects.get(key);
    if (e) e.body[offset] ^= 0xff;
  }
}
