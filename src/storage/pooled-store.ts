import type { IoPool } from './io-pool';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

/**
 * Decorator: every request of the wrapped store takes a slot of the I/O pool in its lane,
 * waiting no longer than the operation's deadline (set by the retry layer above).
 */
export class PooledStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly pool: IoPool,
  ) {
    this.description = inner.description;
  }

  private run<T>(opts: RequestOptions | undefined, fallbackLane: 'foreground' | 'background', fn: () => Promise<T>): Promise<T> {
    return this.pool.run(opts?.lane ?? fallbackLane, fn, { deadline: opts?.deadline, signal: opts?.signal });
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.run(opts, 'foreground', () => this.inner.get(key, range, opts));
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.run(opts, 'foreground', () => this.inner.head(key, opts));
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.run(opts, 'foreground', () => this.inner.put(key, body, opts));
  }

  copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    return this.run(opts, 'foreground', () => this.inner.copy(from, to, opts));
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.run(opts, 'foreground', () => this.inner.delete(key, opts));
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.run(opts, 'foreground', () => this.inner.deleteMany(keys, opts));
  }

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.run(opts, 'background', () => this.inner.listPage(prefix, token, opts));
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
