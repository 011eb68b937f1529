import type { IoPool } from './io-pool';
import type { GetResult, ListEntry, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

/** Decorator: every request of the wrapped store takes a slot of the I/O pool in its lane. */
export class PooledStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly pool: IoPool,
  ) {
    this.description = inner.description;
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.pool.run(opts?.lane ?? 'foreground', () => this.inner.get(key, range, opts));
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.pool.run(opts?.lane ?? 'foreground', () => this.inner.head(key, opts));
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.pool.run(opts?.lane ?? 'foreground', () => this.inner.put(key, body, opts));
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.pool.run(opts?.lane ?? 'foreground', () => this.inner.delete(key, opts));
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.pool.run(opts?.lane ?? 'foreground', () => this.inner.deleteMany(keys, opts));
  }

  list(prefix: string, opts?: RequestOptions): AsyncIterable<ListEntry> {
    // Listing pages are requests too, but the iterator is driven by its consumer; it is
    // issued on the background lane by its callers and not pooled page by page.
    return this.inner.list(prefix, opts);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
