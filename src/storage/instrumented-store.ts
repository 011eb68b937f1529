import { StorageError } from './errors';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

export type StoreOp = 'get' | 'head' | 'put' | 'copy' | 'delete' | 'deleteMany' | 'list';

/** Where request outcomes go (the metrics module implements it with prom-client). */
export interface StoreObserver {
  request(op: StoreOp, outcome: string, seconds: number, bytes: number): void;
}

/** Decorator: every request's operation, outcome (ok or the error kind), latency and bytes. */
export class InstrumentedStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly observer: StoreObserver,
  ) {
    this.description = inner.description;
  }

  private async observe<T>(op: StoreOp, fn: () => Promise<T>, bytesOf: (r: T) => number): Promise<T> {
    const t0 = process.hrtime.bigint();
    try {
      const r = await fn();
      this.observer.request(op, 'ok', Number(process.hrtime.bigint() - t0) / 1e9, bytesOf(r));
      return r;
    } catch (e) {
      this.observer.request(op, e instanceof StorageError ? e.kind : 'internal', Number(process.hrtime.bigint() - t0) / 1e9, 0);
      throw e;
    }
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.observe(
      'get',
      () => this.inner.get(key, range, opts),
      (r) => r?.body.length ?? 0,
    );
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.observe(
      'head',
      () => this.inner.head(key, opts),
      () => 0,
    );
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.observe(
      'put',
      () => this.inner.put(key, body, opts),
      () => body.length,
    );
  }

  /** Bytes: none pass through us (the server copies). */
  copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    return this.observe(
      'copy',
      () => this.inner.copy(from, to, opts),
      () => 0,
    );
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.observe(
      'delete',
      () => this.inner.delete(key, opts),
      () => 0,
    );
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.observe(
      'deleteMany',
      () => this.inner.deleteMany(keys, opts),
      () => 0,
    );
  }

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.observe(
      'list',
      () => this.inner.listPage(prefix, token, opts),
      () => 0,
    );
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
