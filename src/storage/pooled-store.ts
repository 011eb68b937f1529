import type { IoPool } from './io-pool';
import type { GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

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

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.pool.run(opts?.lane ?? 'background', () => this.inner.listPage(prefix, token, opts));
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
